"""Nearest-neighbour metrics: precision/recall, density/coverage, adversarial accuracy, DCR."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from scgensynth._utils._deprecation import renamed_arguments

from . import _knn
from ._utils import ArrayOrAnnData, check_k, get_labels, paired, paired_values, subsample

logger = logging.getLogger(__name__)


def _space(
    real: ArrayOrAnnData,
    others: list[ArrayOrAnnData],
    *,
    layer: str | None,
    obsm: str | None,
    n_components: int | None,
    seed: int,
    names: list[str],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Real and other datasets in one space: data (as given), ``obsm`` or real's PCA.

    In a PCA space the other datasets are projected a block of rows at a time (a large or
    backed synthetic set is never loaded whole).
    """
    if n_components is None:
        values = [
            paired_values(real, o, layer=layer, obsm=obsm, names=(names[0], n), dtype=None)
            for o, n in zip(others, names[1:], strict=True)
        ]
        return values[0][0], [v[1] for v in values]
    from sklearn.decomposition import PCA

    if not isinstance(n_components, int | np.integer) or n_components < 1:
        msg = f"n_components must be a positive integer or None, got {n_components!r}."
        raise ValueError(msg)
    streamed = [
        paired(real, o, layer=layer, obsm=obsm, names=(names[0], n), dtype=None)
        for o, n in zip(others, names[1:], strict=True)
    ]
    r = streamed[0][0]
    q = int(min(n_components, r.shape[0] - 1, r.shape[1]))
    if q < 1:
        msg = f"{names[0]} needs at least 2 samples for a PCA space."
        raise ValueError(msg)
    pca = PCA(q, random_state=seed).fit(r)
    return pca.transform(r), [s.map(pca.transform) for _, s in streamed]


def _pair_space(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    labels_key: str | None,
    *,
    layer: str | None,
    obsm: str | None,
    n_components: int | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Real and synthetic samples in one space (see :func:`_space`), and their labels.

    The labels are ``None`` without ``labels_key``.
    """
    R, (S,) = _space(
        real, [synth], layer=layer, obsm=obsm, n_components=n_components, seed=seed,
        names=["real", "synthetic"],
    )  # fmt: skip
    if labels_key is None:
        return R, S, None
    return R, S, (get_labels(real, labels_key, "real"), get_labels(synth, labels_key, "synthetic"))


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _pr_core(R, S, k_real: int, k_synth: int, device) -> dict[str, float]:
    """Precision with real balls of ``k_real``, recall with synthetic balls of ``k_synth``.

    ``k = 0`` on a side means that side cannot form balls (fewer than 2 samples): its
    metric is NaN (precision) or 0 (recall: a single synthetic sample covers nothing).
    """
    with _knn.exact_products():
        a, b, scale = _knn.prepare(S, R, device=device)
        r2_synth = _knn.knn_radii(a, k_synth, scale) if k_synth else None
        with b.cached():  # converted once for both passes over the real samples
            r2_real = _knn.knn_radii(b, k_real, scale) if k_real else np.full(len(R), -1.0)
            res = _knn.ball_tests(a, b, scale, r2_real, r2_synth)
    p = float(res.a_in_b_balls.mean()) if k_real else np.nan
    r = float(res.b_in_a_balls.mean()) if k_synth else 0.0
    return {"precision": p, "recall": r, "f1": _f1(p, r) if k_real else np.nan}


def _precision_recall(R, S, k, device, names=("real", "synthetic")) -> dict[str, float]:
    check_k(k, len(R), names[0])
    check_k(k, len(S), names[1])
    return _pr_core(R, S, k, k, device)


def _group_k(k: int, n: int) -> int:
    return int(min(k, n - 1)) if n >= 2 else 0


def _per_group(fn, R, S, labels, k, columns) -> pd.DataFrame:
    """``fn(R_g, S_g, k_real, k_synth)`` per group, ``k`` lowered to what each group allows."""
    lr, ls = labels
    rows = {}
    for g in sorted(set(lr) | set(ls)):
        mr, ms = lr == g, ls == g
        nr, ns = int(mr.sum()), int(ms.sum())
        kr, ks = _group_k(k, nr), _group_k(k, ns)
        res = dict.fromkeys(columns, np.nan) if nr == 0 else fn(R[mr], S[ms], kr, ks)
        rows[g] = {**res, "n_real": nr, "n_synthetic": ns, "k_real": kr, "k_synthetic": ks}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "group"
    lowered = out.index[(out["k_real"] < k) | (out["k_synthetic"] < k)]
    if len(lowered):
        logger.info(
            "k lowered below %d for %d small groups (see columns k_real, k_synthetic)",
            k, len(lowered),
        )  # fmt: skip
    return out


@renamed_arguments({"groupby": "labels_key"})
def precision_recall(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    k: int = 50,
    labels_key: str | None = None,
    layer: str | None = None,
    obsm: str | None = None,
    n_components: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> dict[str, float] | pd.DataFrame:
    """Improved precision and recall (Kynkäänniemi et al. 2019) and their F1.

    Around each real sample lies a ball reaching its ``k``-th nearest real neighbour; a
    synthetic sample is *precise* if it falls inside at least one of them. Likewise around each
    synthetic sample, reaching its ``k``-th nearest synthetic neighbour; a real sample is
    *recalled* if it falls inside one of those. Precision is the share of precise synthetic
    samples (fidelity), recall the share of recalled real samples (coverage of the real
    distribution).

    Distances are Euclidean in the data as given (``X`` or ``layer``), in ``obsm[obsm]`` of
    both, or in the PCA space of ``real`` (``n_components``). They are computed exactly
    (float32 products in blocks, settled in float64 wherever rounding could matter), on the GPU
    when one is available.

    Parameters
    ----------
    real, synth
        AnnData or samples x genes arrays; AnnData genes are matched by name.
    k
        Neighbourhood size; both sets need more than ``k`` samples (with ``labels_key``,
        ``k`` is lowered per group instead).
    labels_key
        ``.obs`` column present in both (e.g. ``"tissue"``): precision and recall within each
        group of samples with the same label, in the same space. A group without synthetic
        samples gets recall 0.
    layer, obsm
        Read a layer, or a representation in ``.obsm`` of both, instead of ``X``.
    n_components
        Project both on that many principal components of ``real`` first.
    device
        Torch device; default CUDA when available.
    seed
        PCA random state.

    Returns
    -------
    ``{"precision", "recall", "f1"}``; with ``labels_key``, a DataFrame indexed by group with
    those columns and ``n_real``, ``n_synthetic``, ``k_real``, ``k_synthetic``: within a group,
    ``k`` is lowered to what its sample counts allow (a group with one synthetic sample has
    recall 0, one with no synthetic samples also precision NaN). Its
    ``attrs["zero_recall_share"]`` is the share of groups (with real samples) that have
    recall 0 -- the blind spots of Alsamadi et al. -- and ``attrs["zero_recall_sample_share"]``
    the share of real samples that lie in such groups.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(200, 10))
    >>> pr = sgs.metrics.precision_recall(real, rng.normal(size=(200, 10)), k=5)
    >>> pr["precision"] > 0.8, pr["recall"] > 0.8
    (True, True)
    >>> pr = sgs.metrics.precision_recall(real, rng.normal(size=(200, 10)) + 10, k=5)
    >>> pr["precision"], pr["recall"]
    (0.0, 0.0)
    """
    R, S, labels = _pair_space(
        real, synth, labels_key, layer=layer, obsm=obsm, n_components=n_components, seed=seed
    )
    if labels is None:
        return _precision_recall(R, S, k, device)
    if not isinstance(k, int | np.integer) or k < 1:
        check_k(k, len(R), "real")  # the standard message

    def one(r, s, kr, ks):
        if len(s) == 0:
            return {"precision": np.nan, "recall": 0.0, "f1": 0.0}
        return _pr_core(r, s, kr, ks, device)

    out = _per_group(one, R, S, labels, k, ["precision", "recall", "f1"])
    with_real = out["n_real"] > 0
    zero = with_real & (out["recall"] == 0)
    out.attrs["zero_recall_share"] = float(zero.sum() / with_real.sum())
    out.attrs["zero_recall_sample_share"] = float(
        out.loc[zero, "n_real"].sum() / out.loc[with_real, "n_real"].sum()
    )
    return out


def _density_coverage(R, S, k, device, name="real") -> dict[str, float]:
    check_k(k, len(R), name)
    with _knn.exact_products():
        a, b, scale = _knn.prepare(S, R, device=device)
        with b.cached():
            r2_real = _knn.knn_radii(b, k, scale)
            res = _knn.ball_tests(a, b, scale, r2_real, counts=True)
    return {
        "density": float(res.a_in_b_count.sum() / (k * len(S))),
        "coverage": float(res.b_ball_hit.mean()),
    }


@renamed_arguments({"groupby": "labels_key"})
def density_coverage(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    k: int = 5,
    labels_key: str | None = None,
    layer: str | None = None,
    obsm: str | None = None,
    n_components: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> dict[str, float] | pd.DataFrame:
    """Density and coverage (Naeem et al. 2020), fidelity and diversity robust to outliers.

    Only real samples define balls (each reaching its ``k``-th nearest real neighbour), so a
    few outlying synthetic samples cannot inflate the balls as they can for recall:

    - *density*: how many real balls contain each synthetic sample, averaged and divided by
      ``k`` -- about 1 when synthetic samples are distributed like real ones, above 1 when they
      crowd into dense regions, below 1 when they fall outside;
    - *coverage*: the share of real balls that contain at least one synthetic sample.

    Parameters are those of :func:`precision_recall` (``k=5`` as in the paper).

    Returns
    -------
    ``{"density", "coverage"}``; with ``labels_key``, a DataFrame indexed by group (``k``
    lowered per group as for :func:`precision_recall`).

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(300, 5))
    >>> dc = sgs.metrics.density_coverage(real, rng.normal(size=(300, 5)))
    >>> 0.8 < dc["density"] < 1.2, dc["coverage"] > 0.9
    (True, True)
    """
    R, S, labels = _pair_space(
        real, synth, labels_key, layer=layer, obsm=obsm, n_components=n_components, seed=seed
    )
    if labels is None:
        return _density_coverage(R, S, k, device)

    def one(r, s, kr, _ks):
        if len(s) == 0:
            return {"density": np.nan, "coverage": 0.0}
        if kr == 0:
            return {"density": np.nan, "coverage": np.nan}
        return _density_coverage(r, s, kr, device)

    return _per_group(one, R, S, labels, k, ["density", "coverage"])


@renamed_arguments({"n_samples": "n_obs"})
def adversarial_accuracy(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    n_obs: int | None = None,
    layer: str | None = None,
    obsm: str | None = None,
    n_components: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> dict[str, float]:
    r"""Nearest-neighbour adversarial accuracy (Yale et al. 2020; Eq. 5 of Lacan et al. 2023).

    .. math::

        AA_{TS} = \tfrac12 \Big( \tfrac1n \sum_i 1[d_{TS}(i) > d_{TT}(i)]
        + \tfrac1n \sum_i 1[d_{ST}(i) > d_{SS}(i)] \Big)

    where :math:`d_{TS}(i)` is the distance from real sample *i* to its nearest synthetic
    sample and :math:`d_{TT}(i)` to its nearest other real sample (and the same for synthetic
    samples). A 1-nearest-neighbour classifier cannot tell the sets apart at 0.5 (ideal);
    ~1 means separable sets, ~0 synthetic samples copying real ones. Read the two halves as
    well: they can fail in opposite directions and average to 0.5 -- per-gene shuffled
    expression, for instance, gives a real half of 1 (far from every real sample) and a
    synthetic half near 0 (nearer to real samples than to each other).

    Both sets are subsampled (seeded, without replacement, independently of the sample
    order) to the same size ``n = min(n_real, n_synthetic, n_obs)``, as the statistic
    assumes.

    Parameters
    ----------
    n_obs
        Cap on the samples used from each set (cost grows as its square).
    layer, obsm, n_components, device, seed
        As for :func:`precision_recall`; ``seed`` also draws the subsample.

    Returns
    -------
    ``{"adversarial_accuracy", "real", "synthetic"}``: the statistic and its two halves.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(300, 5))
    >>> aa = sgs.metrics.adversarial_accuracy(real, rng.normal(size=(300, 5)))
    >>> 0.4 < aa["adversarial_accuracy"] < 0.6
    True
    >>> sgs.metrics.adversarial_accuracy(real, real + 1e-3)["adversarial_accuracy"]
    0.0
    """
    R, S, _ = _pair_space(
        real, synth, None, layer=layer, obsm=obsm, n_components=n_components, seed=seed
    )
    if n_obs is not None and n_obs < 2:
        msg = f"n_obs must be at least 2, got {n_obs}."
        raise ValueError(msg)
    for X, name in ((R, "real"), (S, "synthetic")):
        if len(X) < 2:
            msg = f"{name} has {len(X)} sample(s); a nearest other sample needs at least 2."
            raise ValueError(msg)
    n = int(min(len(R), len(S), n_obs or np.inf))
    rng = np.random.default_rng(seed)
    R, S = subsample(R, n, rng), subsample(S, n, rng)
    with _knn.exact_products():
        a, b, scale = _knn.prepare(R, S, device=device)
        d_tt = _knn.knn_radii(a, 1, scale)
        d_ss = _knn.knn_radii(b, 1, scale)
        d_ts, d_st = _knn.cross_nearest(a, b, scale)
    aa_real = float((d_ts > d_tt).mean())
    aa_synth = float((d_st > d_ss).mean())
    return {
        "adversarial_accuracy": 0.5 * (aa_real + aa_synth),
        "real": aa_real,
        "synthetic": aa_synth,
    }


def distance_to_closest_record(
    train: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    holdout: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    n_components: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Distance to the closest record: a privacy check against memorised training samples.

    The distance to the closest record (DCR) of a sample is its distance to the nearest
    *training* sample. Held-out real samples, which the generator never saw, show how close an
    honest new sample falls; a generator that memorises puts synthetic samples much closer.

    Parameters
    ----------
    train
        The samples the generator was trained on.
    synth
        Its synthetic samples.
    holdout
        Real samples from the same population that it was not trained on.
    layer, obsm, n_components, device, seed
        As for :func:`precision_recall` (the PCA is fitted on ``train``).

    Returns
    -------
    - ``synthetic_median``, ``holdout_median``: median DCR of each set;
    - ``ratio``: synthetic median / holdout median -- about 1 is good, well below 1 means
      copying;
    - ``closer_than_holdout``: share of synthetic samples closer to a training sample than
      any held-out sample is (below its smallest DCR); near 0 is good;
    - ``copies``: share of synthetic samples identical to a training sample;
    - ``nearer_train``: share of synthetic samples whose nearest real sample is a training
      rather than a held-out one, and ``nearer_train_expected`` = n_train / (n_train +
      n_holdout), its value when synthetic samples are no closer to training samples than to
      new ones (the "holdout" privacy test; well above it means memorisation). Unlike
      ``closer_than_holdout``, it does not hinge on the single closest held-out sample.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    >>> dcr = sgs.metrics.distance_to_closest_record(train, train[:100], holdout)
    >>> dcr["ratio"], dcr["copies"]
    (0.0, 1.0)
    >>> new = rng.normal(size=(200, 5))
    >>> 0.8 < sgs.metrics.distance_to_closest_record(train, new, holdout)["ratio"] < 1.25
    True
    """
    T, (S, H) = _space(
        train,
        [synth, holdout],
        layer=layer,
        obsm=obsm,
        n_components=n_components,
        seed=seed,
        names=["train", "synthetic", "holdout"],
    )
    with _knn.exact_products():
        a, s, scale = _knn.prepare(T, S, device=device)
        _, h, _ = _knn.prepare(T, H, device=device)
        _, d_s = _knn.cross_nearest(a, s, scale)
        _, d_h = _knn.cross_nearest(a, h, scale)
        d_sh, _ = _knn.cross_nearest(s, h, scale)
    med_s, med_h = float(np.median(np.sqrt(d_s))), float(np.median(np.sqrt(d_h)))
    shared = int((d_h == 0).sum())
    if shared:
        logger.warning(
            "%d of %d holdout samples are identical to training samples%s. The holdout must "
            "be real samples the generator was not trained on (e.g. a split made before "
            "training); otherwise the distance to closest record tells nothing.",
            shared,
            len(d_h),
            "; the DCR ratio is undefined (NaN)" if med_h == 0 else "",
        )
    return {
        "synthetic_median": med_s,
        "holdout_median": med_h,
        "ratio": med_s / med_h if med_h > 0 else float("nan"),
        "closer_than_holdout": float((d_s < d_h.min()).mean()),
        "copies": float((d_s == 0).mean()),
        "nearer_train": float((d_s < d_sh).mean()),
        "nearer_train_expected": len(T) / (len(T) + len(H)),
    }
