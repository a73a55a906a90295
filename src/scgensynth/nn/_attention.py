"""Sparse gene–gene self-attention over a gene graph (the AttGAN refinement layer)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import nn

logger = logging.getLogger(__name__)

#: what :class:`SparseGeneAttention` accepts as a graph
GraphLike = Any


def edge_index(graph: GraphLike, n_genes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coalesced edge index ``(src, dst)`` of a gene graph: edge ``j -> i`` lets gene i see gene j.

    Parameters
    ----------
    graph
        One of

        - a scipy sparse ``n_genes x n_genes`` matrix (or sparse array) whose **row is the
          target gene i and column the neighbour j** (the layout of
          :func:`~scgensynth.pp.coexpression_graph`); stored values (edge weights) are ignored,
          explicitly stored zeros count as edges;
        - a pair ``(src, dst)`` of integer tensors or arrays of equal length: neighbour j and
          target i of every edge;
        - a ``2 x E`` integer tensor or array ``[src; dst]`` (PyTorch Geometric's
          ``edge_index`` with its default ``source_to_target`` flow);
        - ``None``: no edges.
    n_genes
        Number of genes.

    Returns
    -------
    ``src`` and ``dst`` as int64 CPU tensors, duplicates removed, sorted by ``dst`` then
    ``src``.

    Examples
    --------
    >>> from scipy import sparse
    >>> g = sparse.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 2], [1, 2, 1])), shape=(3, 3))
    >>> src, dst = edge_index(g, 3)
    >>> src.tolist(), dst.tolist()
    ([1, 2, 1], [0, 0, 2])
    """
    n_genes = int(n_genes)
    if graph is None:
        src = dst = torch.zeros(0, dtype=torch.long)
    elif sparse.issparse(graph):
        src, dst = _matrix_edges(graph, n_genes)
    else:
        src, dst = _listed_edges(graph)
    if src.numel():
        _check_edge_range(src, dst, n_genes)
        key = torch.unique(dst * n_genes + src)  # sorted: by dst, then src
        dst, src = key // n_genes, key % n_genes
    return src.contiguous(), dst.contiguous()


def _matrix_edges(graph: Any, n_genes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, dst)`` of the stored entries of a sparse ``n_genes x n_genes`` matrix."""
    if graph.shape != (n_genes, n_genes):
        msg = (
            f"The gene graph has shape {graph.shape} but n_genes={n_genes}: it must be an "
            "n_genes x n_genes matrix with rows = target genes and columns = neighbours, "
            "in the order of adata.var_names."
        )
        raise ValueError(msg)
    coo = sparse.coo_matrix(graph)
    dst = torch.as_tensor(np.asarray(coo.row, dtype=np.int64))
    src = torch.as_tensor(np.asarray(coo.col, dtype=np.int64))
    return src, dst


def _listed_edges(graph: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, dst)`` of a ``(src, dst)`` pair or a ``2 x E`` edge index, checked."""
    if isinstance(graph, torch.Tensor | np.ndarray) and graph.ndim == 2:
        if graph.shape[0] != 2:
            msg = (
                f"An edge index array must have shape (2, n_edges) ([src; dst]); got "
                f"{tuple(graph.shape)}. Pass a scipy sparse matrix or a (src, dst) pair."
            )
            raise ValueError(msg)
        pair: Sequence[Any] = (graph[0], graph[1])
    elif isinstance(graph, Sequence) and len(graph) == 2:
        pair = graph
    else:
        msg = (
            f"Cannot read a gene graph from {type(graph).__name__}. Pass a scipy sparse "
            "n_genes x n_genes matrix (rows = targets, columns = neighbours), a (src, dst) "
            "pair of integer tensors, or a 2 x n_edges edge index."
        )
        raise TypeError(msg)
    src, dst = (torch.as_tensor(np.asarray(_to_numpy(p))) for p in pair)
    for name, t in (("src", src), ("dst", dst)):
        if t.ndim != 1 or t.dtype.is_floating_point or t.dtype == torch.bool:
            msg = f"Edge index {name!r} must be a 1-D integer array; got {t.dtype} {t.shape}."
            raise ValueError(msg)
    if src.shape != dst.shape:
        msg = f"src and dst must have the same length; got {len(src)} and {len(dst)}."
        raise ValueError(msg)
    return src.long(), dst.long()


def _check_edge_range(src: torch.Tensor, dst: torch.Tensor, n_genes: int) -> None:
    """Refuse (non-empty) edge indices outside ``[0, n_genes)``."""
    low = min(int(src.min()), int(dst.min()))
    high = max(int(src.max()), int(dst.max()))
    if low < 0 or high >= n_genes:
        msg = (
            f"Edge indices must lie in [0, {n_genes}) (n_genes={n_genes}); got values from "
            f"{low} to {high}."
        )
        raise ValueError(msg)


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


#: devices whose ``index_put_(..., accumulate=True)`` sums duplicate indices in a fixed order
#: (a stable sort of the indices, then one sequential sum per index: no atomics). There
#: :func:`select_rows` and :func:`sum_rows` use it, and a seeded training run is
#: reproducible; ``index_add_`` and the gradient of ``index_select`` use atomic additions
#: there, whose order (hence the rounding of the sums) changes from run to run. On the CPU
#: those two are sequential, hence deterministic, and are kept (:func:`add_rows_` too).
SORTED_ACCUMULATION_DEVICES = frozenset({"cuda"})


def select_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``t[index]``, with a gradient summed in a fixed order (on the CPU and on CUDA).

    On the devices of :data:`SORTED_ACCUMULATION_DEVICES` this is advanced indexing, whose
    gradient is ``index_put_(..., accumulate=True)`` (sorted, sequential sums); elsewhere
    :meth:`torch.Tensor.index_select`, whose gradient is ``index_add_`` (sequential on the
    CPU). The values are the same either way.

    Examples
    --------
    >>> select_rows(torch.arange(6.0).reshape(3, 2), torch.tensor([2, 0, 2]))
    tensor([[4., 5.],
            [0., 1.],
            [4., 5.]])
    """
    if t.device.type in SORTED_ACCUMULATION_DEVICES:
        return t[index]
    return t.index_select(0, index)


def add_rows_(target: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``target[index[j]] += values[j]`` for every ``j``, in place, in a fixed order (CPU, CUDA).

    ``index_put_(..., accumulate=True)`` on the devices of
    :data:`SORTED_ACCUMULATION_DEVICES`, ``index_add_`` (sequential, in the order of
    ``index``) elsewhere; rows ``index`` may repeat. Returns ``target``.

    Examples
    --------
    >>> add_rows_(torch.ones(3, 2), torch.tensor([0, 2, 0]), torch.ones(3, 2))
    tensor([[3., 3.],
            [1., 1.],
            [2., 2.]])
    """
    if target.device.type in SORTED_ACCUMULATION_DEVICES:
        return target.index_put_((index,), values, accumulate=True)
    return target.index_add_(0, index, values)


def sum_rows(values: torch.Tensor, index: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Segment sum: row ``i`` of the result is the sum of the rows ``values[index == i]``.

    The sums run in a fixed order on the CPU and on CUDA (:func:`add_rows_` into zeros);
    the gradient is a gather, deterministic everywhere.

    Examples
    --------
    >>> sum_rows(torch.ones(3, 2), torch.tensor([0, 2, 0]), 3)
    tensor([[2., 2.],
            [0., 0.],
            [1., 1.]])
    """
    return add_rows_(values.new_zeros((n_rows, *values.shape[1:])), index, values)


class SparseGeneAttention(nn.Module):
    r"""Sparse gene–gene self-attention: each gene attends to its neighbours in a gene graph.

    For a sample ``x`` (one scalar per gene) the layer returns

    .. math::

        x_i \leftarrow x_i + \gamma \sum_{j \in N(i)} \alpha_{ji}\, v_j, \qquad
        \alpha_{ji} = \operatorname{softmin}_{j \in N(i)} |k_i - q_j|,

    with ``k_i = W_K[i] x_i``, ``q_j = W_Q[j] x_j`` and ``v_j = W_V[j] x_j``: per-gene
    learnable scalars (genes are scalars, so the L1 distance replaces the dot product of
    the AttGAN of Lacan et al. 2023). ``N(i)`` is the set of neighbours of gene ``i`` in the
    graph; genes without neighbours are returned unchanged.

    Cost is linear in the number of edges ``E``: per-edge scores (``E x batch``), a
    numerically stable softmin grouped by target (the per-target minimum comes from
    ``scatter_reduce_(..., "amin")`` and is subtracted before ``exp``; denominators and
    messages are summed per target with :func:`sum_rows`). No ``n_genes x n_genes`` tensor
    is ever built; the largest tensors hold ``E x batch`` values. Every sum over edges, in
    the forward and the backward pass, runs in a fixed order on the CPU and on CUDA
    (:func:`select_rows`, :func:`sum_rows`: no atomic additions), so a seeded training run
    gives the same numbers every time.

    Parameters
    ----------
    n_genes
        Number of genes (input width).
    graph
        The gene graph; see :func:`edge_index` for the accepted forms. Convention: **row /
        ``dst`` = target gene i, column / ``src`` = neighbour j** (the layout written by
        :func:`~scgensynth.pp.coexpression_graph`, :func:`~scgensynth.pp.graph_from_edges`
        and :func:`~scgensynth.pp.random_graph`). Edge weights are ignored; duplicate edges
        are merged; self-loops are kept (a gene may attend to itself). The edges are
        registered as the int64 buffers ``src`` and ``dst``: they move with ``.to(device)``
        and are saved in the ``state_dict``; loading a ``state_dict`` replaces the graph, so a
        layer constructed with ``graph=None`` can be restored from a saved one.
    gamma
        Strength γ of the attention update. With ``gamma=0`` and ``learn_gamma=False`` the
        layer is the identity and skips all computation.
    learn_gamma
        Make γ a learnable parameter (initialised to ``gamma``). ``gamma=0,
        learn_gamma=True`` starts as the identity and lets training switch attention on
        smoothly.
    value_init
        Initial value of every ``W_V[j]``. ``W_K`` and ``W_Q`` start at 1, so the initial
        score is ``|x_i - x_j|`` on the (standardized) generator scale: a neighbour whose
        current value is close to gene i's gets the larger weight; with the default
        ``value_init=1`` the initial update adds γ times a weighted mean of the neighbours'
        values. ``value_init=0`` starts as the identity (then γ gets no gradient until
        ``W_V`` moves away from 0, so do not combine it with ``gamma=0``).

    Attributes
    ----------
    enabled
        ``True`` by default. Set to ``False`` to bypass the layer (identity, no computation,
        no gradients to its parameters), e.g. to pre-train a generator without attention,
        then back to ``True``. Not part of the ``state_dict``.

    Examples
    --------
    >>> from scipy import sparse
    >>> graph = sparse.random(100, 100, density=0.05, format="csr", random_state=0)
    >>> attn = SparseGeneAttention(100, graph)
    >>> x = torch.randn(8, 100)
    >>> attn(x).shape
    torch.Size([8, 100])
    >>> attn.n_edges == graph.nnz
    True

    Pre-training without attention:

    >>> attn.enabled = False
    >>> torch.equal(attn(x), x)
    True
    """

    src: torch.Tensor
    dst: torch.Tensor
    _has_neighbours: torch.Tensor

    def __init__(
        self,
        n_genes: int,
        graph: GraphLike = None,
        *,
        gamma: float = 1.0,
        learn_gamma: bool = False,
        value_init: float = 1.0,
    ):
        super().__init__()
        self.n_genes = int(n_genes)
        if self.n_genes < 1:
            msg = f"n_genes must be a positive integer; got {n_genes}."
            raise ValueError(msg)
        src, dst = edge_index(graph, self.n_genes)
        self.register_buffer("src", src)
        self.register_buffer("dst", dst)
        self.register_buffer(
            "_has_neighbours", torch.zeros(self.n_genes, dtype=torch.bool), persistent=False
        )
        self._update_neighbour_mask()
        self.key = nn.Parameter(torch.ones(self.n_genes))
        self.query = nn.Parameter(torch.ones(self.n_genes))
        self.value = nn.Parameter(torch.full((self.n_genes,), float(value_init)))
        self.learn_gamma = bool(learn_gamma)
        if self.learn_gamma:
            self.gamma = nn.Parameter(torch.tensor(float(gamma)))
        else:
            self.gamma = float(gamma)
        self.enabled = True

    # -- graph -------------------------------------------------------------------------------
    @property
    def n_edges(self) -> int:
        """Number of edges ``j -> i`` in the graph."""
        return int(self.src.numel())

    def _update_neighbour_mask(self) -> None:
        mask = torch.zeros(self.n_genes, dtype=torch.bool, device=self.dst.device)
        mask[self.dst] = True
        self._has_neighbours = mask

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        # the graph is data, not architecture: take the saved one whatever its size
        for name in ("src", "dst"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != self._buffers[name].shape:
                self._buffers[name] = torch.empty(
                    saved.shape, dtype=torch.long, device=self._buffers[name].device
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )
        if self.src.shape != self.dst.shape:
            errors.append(f"{prefix}src and {prefix}dst have different lengths.")
        elif self.src.numel() and (
            int(torch.minimum(self.src.min(), self.dst.min())) < 0
            or int(torch.maximum(self.src.max(), self.dst.max())) >= self.n_genes
        ):
            errors.append(f"{prefix}src/dst hold gene indices outside [0, {self.n_genes}).")
        else:
            self._update_neighbour_mask()

    # -- forward -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether :meth:`forward` changes its input (enabled, γ not fixed at 0, edges exist)."""
        fixed_zero = not self.learn_gamma and self.gamma == 0.0
        return self.enabled and not fixed_zero and self.n_edges > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Refine ``x`` (``batch x n_genes``) by attention over each gene's neighbours.

        Parameters
        ----------
        x
            Expression values, one row per sample.

        Returns
        -------
        A tensor of the same shape: ``x + γ · attention(x)``.
        """
        if x.ndim != 2 or x.shape[1] != self.n_genes:
            msg = (
                f"SparseGeneAttention expects a (batch, {self.n_genes}) tensor; got shape "
                f"{tuple(x.shape)}."
            )
            raise ValueError(msg)
        if not self.active:
            return x
        src, dst = self.src, self.dst
        batch = x.shape[0]
        # genes along dim 0: every gather/scatter then moves contiguous rows of `batch` values
        xt = x.t().contiguous()
        k = self.key[:, None] * xt
        q = self.query[:, None] * xt
        v = self.value[:, None] * xt
        n_genes = self.n_genes
        # (E, batch); gathers and sums through select_rows / sum_rows: deterministic gradients
        score = select_rows(k, dst).sub_(select_rows(q, src)).abs()
        with torch.no_grad():  # the softmin does not depend on this shift: no gradient needed
            shift = torch.full_like(k, torch.inf).scatter_reduce_(
                0, dst[:, None].expand(-1, batch), score, reduce="amin", include_self=True
            )  # a minimum is exact whatever the order
        weight = shift.index_select(0, dst).sub_(score).exp_()  # in (0, 1], 1 at the minimum
        numer = sum_rows(weight * select_rows(v, src), dst, n_genes)
        denom = sum_rows(weight, dst, n_genes)
        # >= 1 for genes with neighbours; isolated genes get 0 / 1 = 0
        denom = denom + (~self._has_neighbours)[:, None].to(denom.dtype)
        return x + self.gamma * (numer / denom).t()

    def extra_repr(self) -> str:
        gamma = "learned" if self.learn_gamma else f"{self.gamma:g}"
        return f"n_genes={self.n_genes}, n_edges={self.n_edges}, gamma={gamma}"
