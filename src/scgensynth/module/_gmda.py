from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scvi.module.base import LossOutput

from scgensynth.nn import MLP, CovariateEmbedder, add_rows_

from ._base import ConditionalGeneratorModule, LatentGeneratorMixin

#: smallest probe half-width, in standard deviations of the scaled values: ties (e.g. many
#: samples at the same value) would otherwise give a box of width 0 and infinite steepness
MIN_HALF_WIDTH = 0.05
#: added to the denominator of the per-probe loss (as in the authors' code)
LOSS_EPS = 1e-3


@dataclass
class Probes:
    """A set of ``K`` probes: axis-aligned boxes over a few genes, each tied to a condition.

    Every probe has up to ``D`` gene dimensions (``genes``, ``active`` marks the ones it
    uses, so probes over 2 and 3 genes share one tensor), a centre and a half-width per
    dimension, the categorical covariates of the sample it was centred on (``cat``: only
    samples with exactly these covariates are counted) and, with continuous covariates, a
    centre and half-width per covariate (extra box dimensions, in standardized units).

    Examples
    --------
    >>> probes = Probes(
    ...     genes=torch.tensor([[0, 1]]), active=torch.tensor([[True, True]]),
    ...     centre=torch.zeros(1, 2), half_width=torch.ones(1, 2),
    ... )
    >>> len(probes)
    1
    """

    genes: torch.Tensor
    active: torch.Tensor
    centre: torch.Tensor
    half_width: torch.Tensor
    cat: torch.Tensor | None = None
    cont_centre: torch.Tensor | None = None
    cont_half_width: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.genes.shape[0]

    @property
    def n_genes(self) -> torch.Tensor:
        """Number of genes of each probe, shape ``(K,)``."""
        return self.active.sum(-1)

    def _fields(self) -> dict[str, torch.Tensor | None]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def select(self, idx: torch.Tensor) -> Probes:
        """The probes at ``idx`` (detached)."""
        return Probes(
            **{k: None if v is None else v[idx].detach() for k, v in self._fields().items()}
        )

    def concat(self, other: Probes | None) -> Probes:
        """These probes followed by ``other``'s."""
        if other is None or not len(other):
            return self
        parts = {}
        for (k, a), b in zip(self._fields().items(), other._fields().values(), strict=True):
            parts[k] = None if a is None else torch.cat([a, b.to(a.device)])
        return Probes(**parts)

    def to(self, device) -> Probes:
        """The probes on ``device``."""
        return Probes(
            **{k: None if v is None else v.to(device) for k, v in self._fields().items()}
        )


def alignment_loss(mass_real: torch.Tensor, mass_generated: torch.Tensor) -> torch.Tensor:
    """Per-probe GMDA loss ``|Σ_real - Σ_gen| / (log(1 + max(Σ_real, Σ_gen)) + 1e-3)``.

    Examples
    --------
    >>> alignment_loss(torch.tensor([3.0]), torch.tensor([1.0]))  # 2 / (log 4 + 1e-3)
    tensor([1.4417])
    """
    top = torch.maximum(mass_real, mass_generated)
    return (mass_real - mass_generated).abs() / (torch.log1p(top) + LOSS_EPS)


def keep_hardest(probes: Probes, losses: torch.Tensor, share: float) -> Probes | None:
    """The ``floor(share · K)`` probes of highest loss (probe persistence), or ``None``.

    Examples
    --------
    >>> probes = Probes(torch.arange(4)[:, None], torch.ones(4, 1, dtype=torch.bool),
    ...                 torch.zeros(4, 1), torch.ones(4, 1))
    >>> keep_hardest(probes, torch.tensor([0.1, 0.9, 0.5, 0.2]), 0.5).genes.ravel()
    tensor([1, 2])
    """
    n_keep = math.floor(share * len(probes) + 1e-9)
    if n_keep < 1:
        return None
    idx = torch.topk(losses.detach(), n_keep).indices
    return probes.select(idx)


def sort_runs(values: torch.Tensor, lengths: Sequence[int] | None = None) -> torch.Tensor:
    """Sort ``values`` (2-D, modified in place and returned) along the last axis, run by run.

    ``lengths``: the lengths of consecutive runs of columns, each sorted on its own (default:
    one run). NaN go last. On the CPU through numpy's vectorised sort (about 30x faster than
    ``torch.sort`` there on rows of a few hundred values); the sorted values are the same.

    Examples
    --------
    >>> sort_runs(torch.tensor([[3.0, 1.0, 2.0, 9.0, 7.0]]), [3, 2])
    tensor([[1., 2., 3., 7., 9.]])
    """
    bounds = [0, *itertools.accumulate([values.shape[-1]] if lengths is None else lengths)]
    on_cpu = values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64)
    array = values.numpy() if on_cpu else None
    for s0, s1 in itertools.pairwise(bounds):
        if on_cpu:
            array[:, s0:s1].sort(axis=-1)
        else:
            values[:, s0:s1] = values[:, s0:s1].sort(dim=-1).values
    return values


def _kth_distance(
    flat: torch.Tensor,
    base: torch.Tensor,
    count: torch.Tensor,
    centre: torch.Tensor,
    j: torch.Tensor,
) -> torch.Tensor:
    """``j[k]``-th smallest (0-based) of ``|v - centre[k, d]|`` over a sorted run ``v``.

    ``v = flat[base[k, d] : base[k, d] + count[k]]`` and ``0 <= j < count``. The ``j + 1``
    values nearest a point are consecutive: of the windows ``v[i : i + j + 1]`` the tightest
    is the first one with ``v[i] + v[i + j] >= 2 · centre`` (a binary search: ``v[i] +
    v[i + j]`` grows with ``i``) or the one before it, so a probe costs ``log2(count)``
    look-ups, not ``count`` distances.
    """
    jj = j[:, None].expand_as(base)
    windows = (count - j)[:, None].expand_as(base)  # >= 1
    lo, hi = torch.zeros_like(base), windows.clone()
    for _ in range(int(windows.max()).bit_length()):
        mid = (lo + hi) // 2
        first = base + torch.minimum(mid, windows - 1)
        reach = flat[first] + flat[first + jj] >= 2 * centre
        searching = lo < hi
        hi = torch.where(searching & reach, mid, hi)
        lo = torch.where(searching & ~reach, mid + 1, lo)
    right = flat[base + torch.minimum(lo, windows - 1) + jj] - centre
    right = torch.where(lo < windows, right, torch.inf)
    left = centre - flat[base + (lo - 1).clamp_min(0)]
    left = torch.where(lo > 0, left, torch.inf)
    return torch.minimum(left, right)


def run_distance_quantile(
    columns: torch.Tensor,
    index: torch.Tensor,
    start: torch.Tensor,
    count: torch.Tensor,
    centre: torch.Tensor,
    q: torch.Tensor,
) -> torch.Tensor:
    """Quantile ``q`` (linear interpolation, as :func:`torch.quantile`) of ``|v - centre|``.

    Entry ``[k, j]`` is the ``q[k]``-quantile of ``|v - centre[k, j]|`` over the values
    ``v = columns[index[k, j], start[k] : start[k] + count[k]]``, a run of sorted values
    (see :func:`sort_runs`); ``count >= 1``.

    Examples
    --------
    >>> columns = torch.tensor([[5.0, 0.0, 1.0, 3.0, 7.0]])  # runs [5] and [0, 1, 3, 7]
    >>> index, centre = torch.tensor([[0]]), torch.tensor([[1.0]])
    >>> run_distance_quantile(columns, index, torch.tensor([1]), torch.tensor([4]), centre,
    ...                       torch.tensor([0.5]))  # of 1, 0, 2, 6
    tensor([[1.5000]])
    """
    flat = columns.reshape(-1)
    base = index * columns.shape[-1] + start[:, None]
    pos = q * (count - 1)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, count - 1)
    d_lo = _kth_distance(flat, base, count, centre, lo)
    d_hi = _kth_distance(flat, base, count, centre, hi)
    return d_lo + (pos - lo)[:, None] * (d_hi - d_lo)


def distance_quantile(
    columns: torch.Tensor, index: torch.Tensor, centre: torch.Tensor, q: torch.Tensor
) -> torch.Tensor:
    """Quantile ``q`` (linear interpolation, as :func:`torch.quantile`) of ``|v - centre|``.

    ``columns`` holds sorted values, one row per variable (``(n_vars, n)``); entry ``[k, j]``
    of the result is the ``q[k]``-quantile of ``|columns[index[k, j]] - centre[k, j]|``
    (:func:`run_distance_quantile` over whole rows).

    Examples
    --------
    >>> columns = torch.tensor([[0.0, 1.0, 3.0, 7.0]])
    >>> index, centre = torch.tensor([[0]]), torch.tensor([[1.0]])
    >>> distance_quantile(columns, index, centre, torch.tensor([0.5]))  # of 1, 0, 2, 6
    tensor([[1.5000]])
    """
    start = torch.zeros(len(q), dtype=torch.long, device=columns.device)
    count = torch.full_like(start, columns.shape[-1])
    return run_distance_quantile(columns, index, start, count, centre, q)


def _rows_by_condition(
    codes: torch.Tensor | None, run_codes: torch.Tensor | None, n_runs: int
) -> list[torch.Tensor | None]:
    """For each condition in ``run_codes``, the rows whose code is it (in input order).

    ``None`` for every run when every row counts for every probe (``codes`` or
    ``run_codes`` is ``None``).
    """
    if codes is None or run_codes is None:
        return [None] * n_runs
    order = torch.argsort(codes, stable=True)
    ordered = codes[order]
    starts = torch.searchsorted(ordered, run_codes).tolist()
    stops = torch.searchsorted(ordered, run_codes, right=True).tolist()
    return [order[s0:s1] for s0, s1 in zip(starts, stops, strict=True)]


def _gather(x: torch.Tensor, rows: torch.Tensor | None, columns: torch.Tensor) -> torch.Tensor:
    """``x[rows][:, columns]`` transposed and contiguous, ``(len(columns), len(rows))``."""
    values = x[:, columns] if rows is None else x[rows[:, None], columns]
    return values.T.contiguous()


#: probes x samples handled at once by :class:`_BoxMass` on the CPU (its temporaries stay
#: in cache); 64 times more on an accelerator, where fewer, larger operations pay
BLOCK_ELEMENTS = 1 << 18


@dataclass
class _Segment:
    """Probes ``k0:k1`` of a :class:`_BoxLayout`, all of one condition.

    The probes read the genes ``genes`` and the continuous covariates ``covs`` (``None``:
    none) of the samples, stacked in this order; ``rows`` (``(k1 - k0, E)``) indexes that
    stack per probe dimension, and probes ``firsts[j]:k1`` use dimension ``j`` (the others
    have fewer dimensions).
    """

    k0: int
    k1: int
    genes: torch.Tensor
    covs: torch.Tensor | None
    rows: torch.Tensor
    firsts: list[int]

    def values(
        self, x: torch.Tensor, cont: torch.Tensor | None, samples: torch.Tensor | None
    ) -> torch.Tensor:
        """What the probes read of the rows ``samples`` (``None``: all), ``(E_rows, s)``."""
        values = _gather(x, samples, self.genes)
        if self.covs is None:
            return values
        return torch.cat([values, _gather(cont.to(x.dtype), samples, self.covs)])


@dataclass
class _BoxLayout:
    """Probes as :class:`_BoxMass` reads them: sorted by condition, then number of dimensions.

    ``centre``, ``slope`` (``(K, E)``): per probe dimension (active ones first) the box
    centre and ``steepness / half-width``; ``segments``: one :class:`_Segment` per condition,
    whose codes are ``codes`` (``None``: one segment, no condition); ``order``: the probes'
    order before sorting.
    """

    centre: torch.Tensor
    slope: torch.Tensor
    steepness: float
    segments: list[_Segment]
    codes: torch.Tensor | None
    order: torch.Tensor


def _box_block(
    values: torch.Tensor, layout: _BoxLayout, seg: _Segment, c0: int, c1: int, parts=None
) -> torch.Tensor:
    """Memberships ``Π_j σ(λ - slope_j · |x_j - c_j|)`` of probes ``c0:c1`` of ``seg``.

    ``values``: the segment's :meth:`_Segment.values`. With ``parts`` (a list) the
    per-dimension ``(first probe, σ_j, sign(x_j - c_j))`` are appended to it, for the
    backward pass.
    """
    member = None
    for j, first in enumerate(seg.firsts):
        lo = max(c0, first)
        if lo >= c1:
            break
        diff = values.index_select(0, seg.rows[lo - seg.k0 : c1 - seg.k0, j])
        diff = diff.sub_(layout.centre[lo:c1, j, None])
        sign = None if parts is None else diff.sign()
        inside = diff.abs_().mul_(-layout.slope[lo:c1, j, None]).add_(layout.steepness)
        inside = inside.sigmoid_()
        if parts is not None:
            parts.append((lo, inside, sign))
        if member is None and lo == c0:
            member = inside if parts is None else inside.clone()
            continue
        if member is None:
            member = values.new_ones(c1 - c0, values.shape[1])
        member[lo - c0 :].mul_(inside)
    return values.new_ones(c1 - c0, values.shape[1]) if member is None else member


def _blocks(k0: int, k1: int, values: torch.Tensor):
    """``(c0, c1)`` ranges of probes over ``k0:k1`` of about :data:`BLOCK_ELEMENTS` entries."""
    budget = BLOCK_ELEMENTS if values.device.type == "cpu" else BLOCK_ELEMENTS << 6
    step = max(1, budget // max(1, values.shape[1]))
    for c0 in range(k0, k1, step):
        yield c0, min(k1, c0 + step)


class _BoxMass(torch.autograd.Function):
    """Probe masses ``Σ_i Π_j σ(λ - slope_j |x_ij - c_j|)`` over each probe's samples.

    The same numbers as ``membership(...).sum(-1)``, computed per condition on the genes its
    probes read, in blocks of probes x samples (never a ``probes x samples x dimensions``
    tensor), with a hand-written backward pass that recomputes each block instead of
    storing it: ``∂mass / ∂x_ij = μ_i (σ_j - 1) slope_j sign(x_ij - c_j)``. Continuous
    covariates get no gradient. The gradients of the probe dimensions that read the same
    value are summed in a fixed order (:func:`~scgensynth.nn.add_rows_`: no
    atomic additions on CUDA), so a seeded run is reproducible there.
    """

    @staticmethod
    def forward(ctx, x, cont, layout: _BoxLayout, samples: list[torch.Tensor | None]):
        ctx.save_for_backward(x, cont)
        ctx.layout, ctx.samples = layout, samples
        mass = x.new_zeros(layout.centre.shape[0])
        for seg, rows in zip(layout.segments, samples, strict=True):
            if rows is not None and not len(rows):
                continue  # no sample of the condition: mass 0
            values = seg.values(x, cont, rows)
            for c0, c1 in _blocks(seg.k0, seg.k1, values):
                mass[c0:c1] = _box_block(values, layout, seg, c0, c1).sum(1)
        return mass

    @staticmethod
    def backward(ctx, grad_mass: torch.Tensor):
        x, cont = ctx.saved_tensors
        layout = ctx.layout
        grad = torch.zeros_like(x)
        for seg, rows in zip(layout.segments, ctx.samples, strict=True):
            if rows is not None and not len(rows):
                continue
            values = seg.values(x, cont, rows)
            grad_values = torch.zeros_like(values)
            for c0, c1 in _blocks(seg.k0, seg.k1, values):
                parts: list = []
                member = _box_block(values, layout, seg, c0, c1, parts)
                member.mul_(grad_mass[c0:c1, None])
                for j, (lo, inside, sign) in enumerate(parts):
                    inside.sub_(1).mul_(sign).mul_(member[lo - c0 :])
                    inside.mul_(layout.slope[lo:c1, j, None])
                    add_rows_(grad_values, seg.rows[lo - seg.k0 : c1 - seg.k0, j], inside)
            grad_genes = grad_values[: len(seg.genes)].T
            if rows is None:
                grad[:, seg.genes] = grad_genes
            else:
                grad[rows[:, None], seg.genes] = grad_genes
        return grad, None, None, None


def check_gmda_arguments(
    n_genes: int,
    n_probes: int,
    n_probe_genes: int | Sequence[int],
    density: float,
    steepness: float,
    persistence: float,
    n_dark_probes: int,
    dark_weight: float,
    n_generated_per_real: int,
) -> tuple[int, ...]:
    """Validate GMDA's probe arguments; returns the allowed numbers of genes per probe.

    Raises
    ------
    ValueError
        Naming the argument and a valid value.
    """
    sizes = _probe_sizes(n_probe_genes, n_genes)
    if not 0 < density < 1:
        msg = (
            f"density must be in (0, 1) (the share of real samples a probe holds), not "
            f"{density!r}; e.g. density=0.1."
        )
        raise ValueError(msg)
    if not steepness > 0:
        msg = (
            f"steepness must be > 0 (the slope of the probes' soft borders), not {steepness!r}; "
            "e.g. steepness=5."
        )
        raise ValueError(msg)
    if not 0 <= persistence < 1:
        msg = (
            f"persistence must be in [0, 1) (the share of highest-loss probes kept for the next "
            f"step), not {persistence!r}; e.g. persistence=0.5, or 0 to redraw every probe."
        )
        raise ValueError(msg)
    if not _is_whole(n_probes, 1):
        msg = f"n_probes must be an integer >= 1, not {n_probes!r}; e.g. n_probes=1000."
        raise ValueError(msg)
    if not _is_whole(n_dark_probes, 0):
        msg = (
            f"n_dark_probes must be an integer >= 0 (0 disables the dark-probe term), not "
            f"{n_dark_probes!r}."
        )
        raise ValueError(msg)
    if not dark_weight >= 0:
        msg = f"dark_weight must be >= 0, not {dark_weight!r}."
        raise ValueError(msg)
    if not _is_whole(n_generated_per_real, 1):
        msg = f"n_generated_per_real must be an integer >= 1, not {n_generated_per_real!r}."
        raise ValueError(msg)
    return sizes


def _probe_sizes(n_probe_genes: int | Sequence[int], n_genes: int) -> tuple[int, ...]:
    """The sorted distinct numbers of genes a probe may span, checked against ``n_genes``."""
    if isinstance(n_probe_genes, bool) or not isinstance(n_probe_genes, int | Sequence):
        sizes: tuple = ()
    else:
        raw = [n_probe_genes] if isinstance(n_probe_genes, int) else list(n_probe_genes)
        ok = all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw)
        sizes = tuple(sorted({int(d) for d in raw})) if ok else ()
    if not sizes:
        msg = (
            f"n_probe_genes must be a positive integer or a list of them (the numbers of genes "
            f"a probe may span, e.g. (2, 3)), not {n_probe_genes!r}."
        )
        raise ValueError(msg)
    if sizes[-1] > n_genes:
        msg = (
            f"n_probe_genes={n_probe_genes!r} asks for probes over {sizes[-1]} genes but the data "
            f"have {n_genes}; pass n_probe_genes at most {n_genes} (e.g. n_probe_genes="
            f"{min(2, n_genes)})."
        )
        raise ValueError(msg)
    return sizes


def _is_whole(value: float, minimum: int) -> bool:
    """Whether ``value`` is a whole number (not a bool) ``>= minimum``; ``2.0`` counts."""
    return not (isinstance(value, bool) or int(value) != value or value < minimum)


class GMDAModule(LatentGeneratorMixin, ConditionalGeneratorModule):
    """Generator and probe loss of GMDA (Lacan, Hanczar & Sebag, ECML-PKDD 2024).

    Generator: MLP over ``[z ‖ continuous covariates ‖ embeddings]`` -> genes, built like
    :class:`~scgensynth.module.WGANGPModule`'s generator (same :class:`CovariateEmbedder`,
    stored as ``generator_embedding``); there is no critic. It is trained by aligning the
    mass of real and generated samples inside random probes (see :meth:`gmda_loss`):

    - **Probe.** An axis-aligned box over ``d`` genes (``d`` drawn per probe from
      ``n_probe_genes``) centred on a real sample ``c`` of the mini-batch, in the scaled
      (standardized) space.
    - **Width rule.** With ``k`` continuous covariates a probe has ``d + k`` dimensions and
      each dimension gets the share ``p = density ** (1 / (d + k))``. On each dimension
      ``w_batch`` is the ``p``-quantile (linear interpolation) of ``|x_j - c_j|`` over all
      real samples of the mini-batch and ``w_cond`` the same over the real samples with the
      probe's categorical covariates; the half-width is ``w_cond + u · (w_batch - w_cond)``
      with ``u ~ U(0, 1)`` drawn per probe, and at least 0.05 (ties, e.g. many zeros,
      would give width 0). For independent dimensions a box thus holds a share
      ``density`` of its condition's samples (``u = 0``) up to a share ``density`` of the
      whole mini-batch (``u = 1``). Why a range of scales: a tissue that stands apart
      (testis on its marker genes) gets huge ``w_batch`` boxes, which reach the generated
      samples from afar but are blind to where they sit inside; ``w_cond`` boxes resolve
      the tissue's own spread but do not reach far. Probes in between pull generated mass
      all the way (measured on GTEx: generated tissue means shrunk to ~0.6 of the real ones
      with ``w_batch`` alone). Without covariates ``w_cond = w_batch``.
    - **Membership.** ``μ(x) = Π_j σ(steepness · (w_j - |x_j - c_j|) / w_j)`` over the
      probe's dimensions (0.5 on the border, ``σ(steepness)`` at the centre), times an
      exact-match factor: 1 if ``x`` has the categorical covariates of the probe's centre,
      else 0. Probes are therefore conditional: a probe on a liver sample counts liver
      samples only, so masses are aligned per condition. Continuous covariates are the
      extra box dimensions above. Without covariates this is plain GMDA.
    - **Generated samples as returned.** Before counting, generated values are clipped at
      the data's lower bound (e.g. 0 expression: :meth:`clip_like_output`) with a
      straight-through gradient, so a probe sees the values :meth:`sample` will return;
      otherwise mass could hide below zero, where no real sample is, and come out as
      zeros (zero-inflated genes then lose their expressing tissues).
    - **Masses and loss.** ``Σ_real = Σ_i μ(x_i)`` over the real mini-batch;
      ``n_generated_per_real`` samples are generated per real row with its covariates and
      ``Σ_gen = Σ_j μ(x̃_j) / n_generated_per_real`` (counts on the same scale). The probe's
      loss is ``|Σ_real - Σ_gen| / (log(1 + max(Σ_real, Σ_gen)) + 1e-3)``
      (:func:`alignment_loss`); ``gmda_loss`` is its mean over probes.
    - **Dark probes.** Probes centred on real samples never look where the generator puts
      mass far from every real sample, so nothing pushes that mass back. The paper adds a
      term for such regions; we implement it with ``n_dark_probes`` probes centred on
      *generated* samples: for a real row ``r`` and genes ``g`` the box is the one a real
      probe on ``r`` would get (same width rule), moved onto a generated sample made with
      ``r``'s covariates (its values detached), with ``r``'s condition. The same
      alignment loss is averaged over them (``dark_loss``) and added with weight
      ``dark_weight``: ``loss = gmda_loss + dark_weight · dark_loss``.
    - **Persistence.** The caller may pass probes kept from the previous step (see
      :func:`keep_hardest`; the training plan keeps the share ``persistence`` of real probes
      with the highest loss, with their genes, centre values, widths and conditions); the
      rest up to ``n_probes`` are drawn anew. Dark probes are redrawn every step.
    - **Cost.** Per step, about ``(n_probes + n_dark_probes) · d · (1 + n_generated_per_real)
      · n_c`` membership terms, ``n_c`` the mini-batch rows of a probe's condition: masses
      are computed per condition, on the genes its probes read, in blocks of probes x samples
      with a hand-written backward pass (:meth:`mass`), and widths from one sort per
      condition of the genes its new probes read (:meth:`probe_widths`). Apart from the
      generator and its output, nothing grows with the number of genes, and nothing with
      the size of the data set.

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov
        Number of categories of each categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    n_latent
        Size of the noise vector ``z``.
    n_hidden
        Hidden layer widths of the generator.
    n_probes
        Probes centred on real samples per step.
    n_probe_genes
        Number(s) of genes a probe may span; each probe draws one uniformly.
    density
        Target share δ of real samples inside a probe.
    steepness
        Slope λ of the probes' soft borders.
    persistence
        Share η of highest-loss probes kept for the next step.
    n_dark_probes
        Probes centred on generated samples per step (0: no dark-probe term).
    dark_weight
        Weight of the dark-probe term.
    n_generated_per_real
        Generated samples per real row of the mini-batch.
    scaling
        Scaling mode (see :class:`~scgensynth.nn.ExpressionScaling`).

    Examples
    --------
    >>> module = GMDAModule(n_input=467, n_cats_per_cov=[26], n_latent=8)
    >>> cat = torch.tensor([[3], [3], [7]])
    >>> module.generate_scaled(3, cat).shape
    torch.Size([3, 467])
    >>> out = module.gmda_loss(torch.randn(3, 467), cat)
    >>> sorted(k for k in out if k.endswith("loss"))
    ['dark_loss', 'gmda_loss', 'loss']
    """

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        n_latent: int = 32,
        n_hidden: Sequence[int] = (64,),
        n_probes: int = 4000,
        n_probe_genes: int | Sequence[int] = (2, 3),
        density: float = 0.1,
        steepness: float = 2.0,
        persistence: float = 0.8,
        n_dark_probes: int = 2000,
        dark_weight: float = 1.0,
        n_generated_per_real: int = 4,
        scaling: str = "standardize",
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        self.probe_sizes = check_gmda_arguments(
            self.n_input, n_probes, n_probe_genes, density, steepness, persistence,
            n_dark_probes, dark_weight, n_generated_per_real,
        )  # fmt: skip
        self.n_latent = int(n_latent)
        self.n_probes = int(n_probes)
        self.density = float(density)
        self.steepness = float(steepness)
        self.persistence = float(persistence)
        self.n_dark_probes = int(n_dark_probes)
        self.dark_weight = float(dark_weight)
        self.n_generated_per_real = int(n_generated_per_real)
        self.generator_embedding = CovariateEmbedder(self.n_cats_per_cov, self.n_continuous_cov)
        self.generator = MLP(
            self.n_latent + self.generator_embedding.n_output, self.n_input, list(n_hidden)
        )

    def kept_probes(self, probes: Probes, losses: torch.Tensor) -> Probes | None:
        """The probes kept for the next step: the hardest share ``persistence`` of them."""
        return keep_hardest(probes, losses, self.persistence)

    @staticmethod
    def restore_probes(fields: dict[str, torch.Tensor | None]) -> Probes:
        """Probes from their tensors (as a checkpoint holds them)."""
        return Probes(**fields)

    def scaled_lower_bound(self) -> torch.Tensor | None:
        """Per gene, the network-space value below which generated values are clipped on output.

        ``None`` when the scaling clips nothing (no lower bound).
        """
        sc = self.scaling
        if sc.mode in ("counts", "log1p"):  # the inverse clips expm1(y) at 0, i.e. y >= 0
            bound = torch.zeros_like(sc.mean)
        elif torch.isfinite(sc.lower_bound):
            bound = sc.lower_bound.expand_as(sc.mean)
        else:
            return None
        if sc.mode == "none":
            return bound
        return (bound - sc.mean) / sc.std

    def clip_like_output(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Generated values as they will be returned (clipped at the data's lower bound).

        The gradient passes through unchanged (straight-through), so samples below the bound
        are still moved by the loss.
        """
        bound = self.scaled_lower_bound()
        if bound is None:
            return x_scaled
        return x_scaled + (torch.maximum(x_scaled, bound) - x_scaled).detach()

    # -- probes -------------------------------------------------------------------------------
    def _gene_pool(self) -> torch.Tensor:
        """Genes probes may span: the non-constant ones (all if too few vary)."""
        pool = torch.nonzero(~self.scaling.constant).ravel()
        if len(pool) < self.probe_sizes[-1]:
            pool = torch.arange(self.n_input, device=self.scaling.mean.device)
        return pool

    def draw_genes(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random gene sets: indices ``(n, D)`` and the mask of used columns."""
        device = self.scaling.mean.device
        pool = self._gene_pool()
        sizes = torch.tensor(self.probe_sizes, device=device)
        d_max = int(sizes.max())
        n_genes = sizes[torch.randint(len(sizes), (n,), device=device)]
        active = torch.arange(d_max, device=device)[None, :] < n_genes[:, None]
        idx = torch.randint(len(pool), (n, d_max), device=device)
        for _ in range(1000):  # redraw the rows that repeat a gene (rare with many genes)
            same = (idx[:, :, None] == idx[:, None, :]) & active[:, :, None] & active[:, None, :]
            bad = (same.sum((1, 2)) > n_genes).nonzero().ravel()
            if not len(bad):
                break
            idx[bad] = torch.randint(len(pool), (len(bad), d_max), device=device)
        genes = pool[idx]
        return torch.where(active, genes, genes[:, :1]), active

    def probe_widths(
        self,
        x: torch.Tensor,
        centre: torch.Tensor,
        genes: torch.Tensor,
        active: torch.Tensor,
        cat: torch.Tensor | None = None,
        probe_cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        cont_centre: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Half-widths of probes centred in the real samples ``x`` (see the class docstring).

        On each dimension, with ``p = density ** (1 / n_dims)``: ``w_batch``, the
        ``p``-quantile of ``|x_j - c_j|`` over all rows of ``x``, and ``w_cond``, the same
        over the rows with the probe's categorical covariates; the half-width is
        ``w_cond + scale * (w_batch - w_cond)``, at least :data:`MIN_HALF_WIDTH`.

        Parameters
        ----------
        x
            Real samples in network space, ``(n, n_genes)``.
        centre
            Probe centres on their genes, ``(K, D)``.
        genes, active
            Gene indices and used columns, ``(K, D)``.
        cat, probe_cat
            Categorical covariates of ``x`` and of the probes (``None``: one condition).
        cont, cont_centre
            Standardized continuous covariates of ``x`` and of the centres.
        scale
            Per-probe position between the condition's and the batch's widths, in [0, 1]
            (default: uniform random).
        """
        n_dims = active.sum(-1).float() + (0 if cont is None else cont.shape[1])
        share = self.density ** (1.0 / n_dims)  # (K,)
        used, index = torch.unique(genes, return_inverse=True)  # sort only the genes probes read
        ordered = sort_runs(_gather(x, None, used))
        width = distance_quantile(ordered, index, centre, share)
        cont_width = None
        if cont is not None:
            cont_index = torch.arange(cont.shape[1], device=cont.device).expand(len(share), -1)
            ordered_c = sort_runs(cont.T.clone(memory_format=torch.contiguous_format))
            cont_width = distance_quantile(ordered_c, cont_index, cont_centre, share)
        if probe_cat is not None and cat is not None:  # towards the widths within the condition
            if scale is None:
                scale = torch.rand(len(share), device=x.device)
            scale = scale[:, None]
            within, within_c = self._condition_widths(
                x, genes, centre, share, cat, probe_cat, cont, cont_centre, (width, cont_width)
            )
            width = within + scale * (width - within)
            if cont is not None:
                cont_width = within_c + scale * (cont_width - within_c)
        width = width.clamp_min(MIN_HALF_WIDTH)
        if cont_width is not None:
            cont_width = cont_width.clamp_min(MIN_HALF_WIDTH)
        return width, cont_width

    def _condition_widths(
        self,
        x: torch.Tensor,
        genes: torch.Tensor,
        centre: torch.Tensor,
        share: torch.Tensor,
        cat: torch.Tensor,
        probe_cat: torch.Tensor,
        cont: torch.Tensor | None,
        cont_centre: torch.Tensor | None,
        fallback: tuple[torch.Tensor, torch.Tensor | None],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``w_cond`` of :meth:`probe_widths`: distance quantiles within each probe's condition.

        The samples are ordered by condition and each condition's run of them sorted on the
        genes the probes read (one sort per condition); a probe whose condition has no
        sample in ``x`` keeps its ``fallback`` widths.
        """
        n = cat.shape[0]
        codes = self._condition_code(torch.cat([cat, probe_cat]))
        order = torch.argsort(codes[:n], stable=True)
        sorted_codes = codes[:n][order]
        lengths = torch.unique_consecutive(sorted_codes, return_counts=True)[1].tolist()
        start = torch.searchsorted(sorted_codes, codes[n:])
        count = torch.searchsorted(sorted_codes, codes[n:], right=True) - start
        found = count > 0
        start, count = start.clamp(max=n - 1), count.clamp_min(1)
        used, index = torch.unique(genes, return_inverse=True)
        ordered = sort_runs(_gather(x, order, used), lengths)
        within = run_distance_quantile(ordered, index, start, count, centre, share)
        within = torch.where(found[:, None], within, fallback[0])
        within_c = None
        if cont is not None:
            covs = torch.arange(cont.shape[1], device=cont.device)
            ordered_c = sort_runs(_gather(cont, order, covs), lengths)
            index_c = covs.expand(len(share), -1)
            within_c = run_distance_quantile(ordered_c, index_c, start, count, cont_centre, share)
            within_c = torch.where(found[:, None], within_c, fallback[1])
        return within, within_c

    def draw_probes(
        self,
        x: torch.Tensor,
        cat: torch.Tensor | None,
        cont: torch.Tensor | None,
        n: int,
    ) -> tuple[Probes, torch.Tensor]:
        """``n`` probes on random real rows of ``x`` (continuous covariates standardized).

        Returns the probes and the rows of ``x`` they are centred on.
        """
        rows = torch.randint(x.shape[0], (n,), device=x.device)
        genes, active = self.draw_genes(n)
        centre = x[rows[:, None], genes]
        cont_centre = None if cont is None else cont[rows]
        probe_cat = None if cat is None else cat[rows]
        width, cont_width = self.probe_widths(
            x, centre, genes, active, cat, probe_cat, cont, cont_centre
        )
        probes = Probes(
            genes=genes,
            active=active,
            centre=centre.detach(),
            half_width=width.detach(),
            cat=probe_cat,
            cont_centre=cont_centre,
            cont_half_width=cont_width,
        )
        return probes, rows

    def _log_membership(
        self, probes: Probes, values: torch.Tensor, cont_values: torch.Tensor | None
    ) -> torch.Tensor:
        """Log of the box part of the membership; values ``(K, D, s)``, cont ``(K, k, s)``."""
        lam = self.steepness
        rel = (values - probes.centre[:, :, None]).abs() / probes.half_width[:, :, None]
        log_in = torch.nn.functional.logsigmoid(lam * (1 - rel))
        log_in = (log_in * probes.active[:, :, None]).sum(1)  # (K, s)
        if probes.cont_centre is not None and cont_values is not None:
            rel_c = (cont_values - probes.cont_centre[:, :, None]).abs()
            rel_c = rel_c / probes.cont_half_width[:, :, None]
            log_in = log_in + torch.nn.functional.logsigmoid(lam * (1 - rel_c)).sum(1)
        return log_in

    def membership(
        self, probes: Probes, x: torch.Tensor, cat: torch.Tensor | None, cont: torch.Tensor | None
    ) -> torch.Tensor:
        """Soft membership of each sample in each probe, shape ``(K, n)`` (see class doc).

        ``cont`` is standardized (:meth:`standardize_continuous`).
        """
        cont_values = None if cont is None else cont.T[None]
        member = self._log_membership(probes, x.T[probes.genes], cont_values).exp()
        if probes.cat is not None and cat is not None:
            member = member * (cat[None, :, :] == probes.cat[:, None, :]).all(-1)
        return member

    def _condition_code(self, cat: torch.Tensor) -> torch.Tensor:
        """One integer per joint combination of categorical covariates."""
        code = torch.zeros(cat.shape[0], dtype=torch.long, device=cat.device)
        for i, n_cats in enumerate(self.n_cats_per_cov or [int(cat.max()) + 1] * cat.shape[1]):
            code = code * max(1, n_cats) + cat[:, i].long()
        return code

    def _box_layout(
        self, probes: Probes, n_genes: int, n_cont: int, codes: torch.Tensor | None
    ) -> _BoxLayout:
        """The probes as :class:`_BoxMass` reads them, with ``n_cont`` covariate dimensions.

        ``codes``: the probes' condition codes (``None``: one condition for all).
        """
        rows, centre, half, active = probes.genes, probes.centre, probes.half_width, probes.active
        if n_cont:  # continuous covariates: extra box dimensions, read after the genes
            extra = torch.arange(n_genes, n_genes + n_cont, device=rows.device)
            rows = torch.cat([rows, extra.expand(len(probes), n_cont)], 1)
            centre = torch.cat([centre, probes.cont_centre], 1)
            half = torch.cat([half, probes.cont_half_width], 1)
            active = torch.cat([active, torch.ones_like(active[:, :1]).expand(-1, n_cont)], 1)
        n_active = active.sum(1)
        order = torch.argsort(n_active, stable=True)
        bounds, run_codes = [(0, len(probes))], None
        if codes is not None:
            order = order[torch.argsort(codes[order], stable=True)]
            run_codes, counts = torch.unique_consecutive(codes[order], return_counts=True)
            ends = torch.cumsum(counts, 0).tolist()
            bounds = list(zip([0, *ends[:-1]], ends, strict=True))
        first = torch.argsort((~active).to(torch.uint8), dim=1, stable=True)  # active first
        pick = order[:, None], first[order]
        rows = rows[pick]
        counts = n_active[order].tolist()  # ascending within each condition
        segments = []
        for k0, k1 in bounds:
            columns, local = torch.unique(rows[k0:k1], return_inverse=True)
            is_gene = columns < n_genes
            covs = None if is_gene.all() else columns[~is_gene] - n_genes
            firsts = [bisect_right(counts, j, k0, k1) for j in range(rows.shape[1])]
            segments.append(_Segment(k0, k1, columns[is_gene], covs, local, firsts))
        return _BoxLayout(
            centre=centre[pick], slope=self.steepness / half[pick], steepness=self.steepness,
            segments=segments, codes=run_codes, order=order,
        )  # fmt: skip

    def _masses(
        self,
        probes: Probes,
        samples: Sequence[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]],
    ) -> list[torch.Tensor]:
        """:meth:`mass` of the probes in each ``(x, cat, cont)`` of ``samples``.

        The probes are laid out once (per use of continuous covariates) for all of them.
        """
        probe_code, codes = None, [None] * len(samples)
        if probes.cat is not None:
            given = [cat for _, cat, _ in samples if cat is not None]
            joint = self._condition_code(torch.cat([probes.cat, *given]))
            probe_code, pos = joint[: len(probes)], len(probes)
            for i, (_, cat, _) in enumerate(samples):
                if cat is not None:
                    codes[i], pos = joint[pos : pos + len(cat)], pos + len(cat)
        layouts: dict[int, _BoxLayout] = {}
        masses = []
        for (x, _, cont), code in zip(samples, codes, strict=True):
            n_cont = 0 if probes.cont_centre is None or cont is None else cont.shape[1]
            if n_cont not in layouts:
                layouts[n_cont] = self._box_layout(probes, x.shape[1], n_cont, probe_code)
            layout = layouts[n_cont]
            rows = _rows_by_condition(code, layout.codes, len(layout.segments))
            mass = _BoxMass.apply(x, cont, layout, rows)
            masses.append(mass[torch.argsort(layout.order)])
        return masses

    def mass(
        self, probes: Probes, x: torch.Tensor, cat: torch.Tensor | None, cont: torch.Tensor | None
    ) -> torch.Tensor:
        """``membership(probes, x, cat, cont).sum(-1)``, computed on matching rows only.

        Probes are grouped by condition and each group counts only the samples of its
        condition, on the genes its probes read, in blocks of probes x samples
        (:class:`_BoxMass`); gradients reach ``x``.
        """
        return self._masses(probes, [(x, cat, cont)])[0]

    def probe_losses(
        self,
        probes: Probes,
        real: torch.Tensor,
        fake: torch.Tensor,
        cat: torch.Tensor | None,
        cont: torch.Tensor | None,
        fake_cat: torch.Tensor | None,
        fake_cont: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-probe loss, real mass and generated mass (scaled to the real batch size).

        Continuous covariates are standardized.
        """
        mass_real, mass_fake = self._masses(
            probes, [(real, cat, cont), (fake, fake_cat, fake_cont)]
        )
        mass_fake = mass_fake * (real.shape[0] / fake.shape[0])
        return alignment_loss(mass_real, mass_fake), mass_real, mass_fake

    def gmda_loss(
        self,
        x_scaled: torch.Tensor,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        kept: Probes | None = None,
    ) -> dict:
        """GMDA loss of a real mini-batch in network space (see the class docstring).

        Parameters
        ----------
        x_scaled
            Real samples in network space.
        cat, cont
            Their covariates (continuous ones on the input's scale).
        kept
            Probes kept from the previous step; ``n_probes - len(kept)`` are drawn anew.

        Returns
        -------
        dict with ``loss``, ``gmda_loss``, ``dark_loss`` (tensors), ``probes`` (the real
        probes used) and ``probe_losses`` (their losses, for persistence).
        """
        n, m = x_scaled.shape[0], self.n_generated_per_real
        fake_cat = None if cat is None else cat.repeat(m, 1)
        fake_cont = None if cont is None else cont.repeat(m, 1)
        fake = self.clip_like_output(self.generate_scaled(n * m, fake_cat, fake_cont))
        cont_s = self.standardize_continuous(cont)
        n_kept = 0 if kept is None else len(kept)
        n_new = max(0, self.n_probes - n_kept)
        n_dark = self.n_dark_probes if self.dark_weight > 0 else 0
        probes = kept
        if n_new + n_dark:  # draw real and dark probes together: one sort of the batch
            drawn, rows = self.draw_probes(x_scaled, cat, cont_s, n_new + n_dark)
            if n_dark:  # move the dark boxes onto generated samples of the same rows
                dark_rows = rows[n_new:] + n * torch.randint(m, (n_dark,), device=rows.device)
                centres = fake[dark_rows].detach().gather(1, drawn.genes[n_new:])
                drawn.centre = torch.cat([drawn.centre[:n_new], centres])
            probes = drawn if kept is None else kept.concat(drawn)
        losses, _, _ = self.probe_losses(
            probes, x_scaled, fake, cat, cont_s, fake_cat, self.standardize_continuous(fake_cont)
        )
        n_real = n_kept + n_new
        gmda = losses[:n_real].mean()
        dark = losses[n_real:].mean() if n_dark else torch.zeros((), device=x_scaled.device)
        probes = probes.select(torch.arange(n_real, device=x_scaled.device))
        losses = losses[:n_real]
        return {
            "loss": gmda + self.dark_weight * dark,
            "gmda_loss": gmda,
            "dark_loss": dark,
            "probes": probes,
            "probe_losses": losses.detach(),
        }

    # -- the scvi-tools interface -------------------------------------------------------------
    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """GMDA loss of a mini-batch with fresh probes (no persistence)."""
        out = self.gmda_loss(
            inference_outputs["x_scaled"], inference_outputs["cat"], inference_outputs["cont"]
        )
        return LossOutput(
            loss=out["loss"],
            n_obs_minibatch=inference_outputs["x_scaled"].shape[0],
            extra_metrics={"gmda_loss": out["gmda_loss"], "dark_loss": out["dark_loss"]},
        )
