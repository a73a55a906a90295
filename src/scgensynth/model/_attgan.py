from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
from lightning.pytorch.callbacks import Callback
from scipy import sparse

from scgensynth._utils._docs import doctest_skip
from scgensynth.module import AttGANModule
from scgensynth.pp import coexpression_matrix, graph_from_edges, random_graph

from ._wgan import WGANGP

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: the graphs AttGAN builds itself
GRAPHS = ("coexpression", "random")


class _PretrainWithoutAttention(Callback):
    """Keep the attention layer off for the first ``n_batches`` training batches."""

    def __init__(self, n_batches: int):
        self.n_batches = int(n_batches)
        self.seen = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        attention = pl_module.module.attention
        attention.enabled = self.seen >= self.n_batches
        if self.seen == self.n_batches and self.n_batches:
            logger.info("AttGAN: attention switched on after %d pre-training steps", self.seen)
        self.seen += 1

    def on_train_end(self, trainer, pl_module):
        pl_module.module.attention.enabled = True


@doctest_skip("trains a generator (minutes)")
class AttGAN(WGANGP):
    """WGAN-GP with sparse gene–gene self-attention on the generator's output (AttGAN).

    The conditional WGAN-GP of :class:`~scgensynth.model.WGANGP` whose generated sample is
    refined gene by gene from its neighbours in a gene graph (Lacan et al. 2023):
    ``x_i <- x_i + γ Σ_{j ∈ N(i)} α_ji W_V x_j`` with ``α`` a softmin of
    ``|W_K x_i - W_Q x_j|`` (see :class:`~scgensynth.nn.SparseGeneAttention`). Memory and
    time are linear in the number of edges, so ~20,000 genes with 100,000s of edges fit.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    graph
        The gene graph ``N`` (default: the class's ``default_graph``, ``"coexpression"``;
        :class:`RandAttGAN`'s is ``"random"``):

        - ``"coexpression"``: each gene's ``top_k`` most correlated genes (absolute Pearson,
          optionally above ``threshold``) over the samples of ``adata`` -- give the model
          only training samples, as :func:`~scgensynth.tl.compare_generators` does;
        - ``"random"``: a random graph with the co-expression graph's degrees (the
          RandAttGAN lesion, :func:`~scgensynth.pp.random_graph`);
        - a scipy sparse ``genes x genes`` matrix (row = target gene, column = neighbour), e.g.
          from :func:`~scgensynth.pp.coexpression_graph` or ``adata.varp[...]``;
        - a DataFrame of gene pairs (columns ``source``, ``target``; e.g. STRING
          protein–protein interactions), read with :func:`~scgensynth.pp.graph_from_edges`.
    top_k, threshold
        Co-expression neighbours per gene and minimum ``|r|`` (for ``"coexpression"`` and
        ``"random"``).
    gamma, learn_gamma
        Strength γ of the attention update, fixed or learned.
    pretrain_steps
        Training steps of the generator without attention before switching it on.
    seed
        Seed of the random graph.
    **kwargs
        The arguments of :class:`~scgensynth.model.WGANGP` (``n_latent``, ``n_hidden``,
        ``n_hidden_critic``, ``gp_weight``, ``scaling``).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train(adata, "attgan", categorical_covariate_keys=["tissue"])
    >>> model.module.attention.n_edges  # top 10 of 460 non-constant genes
    4600
    """

    description = "WGAN-GP refined by sparse gene-gene attention over a co-expression graph"
    reference = "Lacan et al. 2023"
    quick_kwargs: ClassVar[dict[str, Any]] = {"n_latent": 8, "n_hidden": (16, 16), "top_k": 4}
    _module_cls = AttGANModule
    _private_plan_cls = None  # the attention layers are not covered by the private plan
    #: the gene graph when none is given
    default_graph: ClassVar[str] = "coexpression"

    def __init__(
        self,
        adata: AnnData | None = None,
        graph: Any = None,
        top_k: int | None = 10,
        threshold: float | None = None,
        gamma: float = 1.0,
        learn_gamma: bool = False,
        pretrain_steps: int = 0,
        seed: int = 0,
        n_latent: int = 64,
        n_hidden: Sequence[int] = (256, 256),
        n_hidden_critic: Sequence[int] | None = None,
        gp_weight: float = 10.0,
        scaling: str = "auto",
    ):
        graph = self.default_graph if graph is None else graph
        self._graph_args = {
            "graph": graph,
            "top_k": top_k,
            "threshold": threshold,
            "gamma": gamma,
            "learn_gamma": learn_gamma,
            "seed": seed,
        }
        self.pretrain_steps = int(pretrain_steps)
        super().__init__(
            adata,
            n_latent=n_latent,
            n_hidden=n_hidden,
            n_hidden_critic=n_hidden_critic,
            gp_weight=gp_weight,
            scaling=scaling,
        )
        n_edges = self.module.attention.n_edges
        self._model_summary_string = (
            self._model_summary_string
            + f", graph {graph if isinstance(graph, str) else type(graph).__name__} "
            f"({n_edges} edges)"
        )
        self.init_params_ = self._get_init_params(locals())

    def _build_graph(self) -> sparse.csr_matrix:
        args = self._graph_args
        graph = args["graph"]
        if isinstance(graph, str):
            if graph not in GRAPHS:
                msg = (
                    f"graph must be one of {GRAPHS}, a scipy sparse genes x genes matrix or a "
                    f"DataFrame of gene pairs, not {graph!r}."
                )
                raise ValueError(msg)
            X = self.adata_manager.get_from_registry("X")
            built = coexpression_matrix(X, top_k=args["top_k"], threshold=args["threshold"])
            if graph == "random":
                built = random_graph(built, seed=args["seed"])
            return built
        if isinstance(graph, pd.DataFrame):
            return graph_from_edges(self.adata.var_names, graph)
        if sparse.issparse(graph):
            n = self.summary_stats.n_vars
            if graph.shape != (n, n):
                msg = f"graph has shape {graph.shape}; expected ({n}, {n}) for {n} genes."
                raise ValueError(msg)
            return sparse.csr_matrix(graph)
        msg = f"Unsupported graph of type {type(graph).__name__}; see the AttGAN docstring."
        raise TypeError(msg)

    @property
    def _module_kwargs(self) -> dict:
        graph = self._build_graph()
        logger.info("AttGAN: gene graph with %d edges over %d genes", graph.nnz, graph.shape[0])
        return {
            "graph": graph,
            "gamma": self._graph_args["gamma"],
            "learn_gamma": self._graph_args["learn_gamma"],
        }

    def train(self, *args, **kwargs):
        """Train as :meth:`WGANGP.train`; attention starts after ``pretrain_steps`` steps."""
        callbacks = list(kwargs.pop("callbacks", []))
        if self.pretrain_steps:
            callbacks.append(_PretrainWithoutAttention(self.pretrain_steps))
        return super().train(*args, callbacks=callbacks, **kwargs)


@doctest_skip("trains a generator (minutes)")
class RandAttGAN(AttGAN):
    """AttGAN over a random graph with the co-expression graph's degrees (the lesion).

    The control of Lacan et al. (2023): if a graph's biological knowledge mattered, attention
    over this degree-matched random graph would do worse than over the co-expression graph.
    Same parameters as :class:`AttGAN`, with ``graph="random"``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train(adata, "randattgan", categorical_covariate_keys=["tissue"])
    >>> model.module.attention.n_edges  # as many edges as the co-expression graph
    4600
    """

    description = "AttGAN over a degree-matched random graph (the lesion control)"
    default_graph = "random"


__all__ = ["AttGAN", "RandAttGAN"]
