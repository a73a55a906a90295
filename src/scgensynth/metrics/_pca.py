"""Principal-subspace metrics: reconstruction error (REM) and explained-variance curves."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.extmath import randomized_svd

from scgensynth._utils._keys import check_new_key

from ._docs import fill_doc
from ._utils import is_anndata, paired, paired_values

if TYPE_CHECKING:
    from ._utils import ArrayOrAnnData, Streamed

logger = logging.getLogger(__name__)

#: rows per block when computing residuals (bounds memory to block x genes floats)
_CHUNK = 1024
#: the `collapse` rule of reconstruction_error
_COLLAPSE_RATIO = 0.5
_COLLAPSE_PVALUE = 0.01


# -- PCA pieces --------------------------------------------------------------------------------
def _rank(singular_values: np.ndarray, shape: tuple[int, int]) -> int:
    """Numerical rank, with numpy's ``matrix_rank`` tolerance."""
    if singular_values.size == 0 or singular_values[0] == 0:
        return 0
    tol = singular_values[0] * max(shape) * np.finfo(np.float64).eps
    return int((singular_values > tol).sum())


def _use_randomized(n_components: int, shape: tuple[int, int]) -> bool:
    """Randomized SVD for large matrices when few components are needed."""
    small = min(shape)
    return small > 1000 and n_components < 0.3 * small


def _components_for_share(singular_values: np.ndarray, share: float) -> int:
    """Fewest components whose cumulative explained variance reaches ``share``."""
    variance = singular_values**2
    cumulative = np.cumsum(variance) / variance.sum()
    return int(np.searchsorted(cumulative, share - 1e-12) + 1)


def _fit_pca(X: np.ndarray, n_components: int | float, seed: int, *, overwrite: bool = False):
    """Mean, orthonormal components (rows), components used, and whether they reach the rank.

    ``n_components``: an int (capped at the rank, so no arbitrary null-space direction is
    ever used) or a share of variance in (0, 1). ``overwrite``: centre ``X`` in place (for
    a temporary copy, to save memory on large data). The last value is true when the
    components span the whole centred data, which are then reconstructed exactly.
    """
    mean = X.mean(axis=0)
    if overwrite:
        X -= mean
        Xc = X
    else:
        Xc = X - mean
    randomized = not isinstance(n_components, float) and _use_randomized(n_components, Xc.shape)
    if randomized:
        _, sv, vt = randomized_svd(Xc, n_components, random_state=seed)
    else:
        _, sv, vt = np.linalg.svd(Xc, full_matrices=False)
    rank = _rank(sv, Xc.shape)
    if isinstance(n_components, float):
        wanted = _components_for_share(sv, n_components) if rank else 0
    else:
        wanted = n_components
    used = min(wanted, rank)
    # a randomized SVD computes `wanted` values only: the rank is reached if some are ~0
    exact = rank < wanted if randomized else wanted >= rank
    return mean, vt[:used], used, exact


def _residual_norms(X: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """``‖x - μ - P Pᵀ (x - μ)‖₂`` for every row, in blocks of rows."""
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _CHUNK):
        block = X[start : start + _CHUNK] - mean
        block -= (block @ components.T) @ components
        out[start : start + _CHUNK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


def _folds(projection: np.ndarray, cv: int) -> np.ndarray:
    """Fold of every row from its projection on a random direction: ranks dealt out in turn.

    Depends on the seed (through the direction) and on the rows' values, not on their order,
    and gives folds whose sizes differ by at most one.
    """
    order = np.argsort(projection, kind="stable")
    folds = np.empty(len(projection), dtype=np.int64)
    folds[order] = np.arange(len(projection)) % cv
    return folds


def _check_n_components(n_components: Any) -> int | float:
    if isinstance(n_components, bool):
        pass
    elif isinstance(n_components, int | np.integer) and n_components >= 1:
        return int(n_components)
    elif isinstance(n_components, float | np.floating) and 0 < n_components < 1:
        return float(n_components)
    msg = (
        "n_components must be a positive integer (number of components) or a float in (0, 1) "
        f"(share of the real variance to explain), got {n_components!r}."
    )
    raise ValueError(msg)


def _check_key_added(
    real: ArrayOrAnnData, synth: ArrayOrAnnData, key_added: str | None, overwrite: bool
) -> None:
    if key_added is None:
        return
    if not isinstance(key_added, str):
        msg = f"key_added must be a string (an .obs column name), got {key_added!r}."
        raise TypeError(msg)
    if not (is_anndata(real) and is_anndata(synth)):
        msg = (
            "key_added writes the errors to .obs, which needs AnnData for both real and "
            "synth; with arrays, leave key_added=None and use the returned arrays."
        )
        raise ValueError(msg)
    check_new_key(real.obs, key_added, "real.obs", overwrite)
    check_new_key(synth.obs, key_added, "synth.obs", overwrite)


def _check_cv(cv: Any, n_obs: int) -> None:
    if cv is None:
        if n_obs < 2:
            msg = f"real has {n_obs} sample; the PCA needs 2 at least."
            raise ValueError(msg)
        return
    if not isinstance(cv, int | np.integer) or isinstance(cv, bool) or cv < 2:
        msg = f"cv must be None or an integer >= 2, got {cv!r}."
        raise ValueError(msg)
    if cv > n_obs or n_obs - -(-n_obs // cv) < 2:
        msg = (
            f"real has {n_obs} samples, too few for cv={cv} (each PCA needs 2 samples at "
            "least); use a smaller cv or cv=None."
        )
        raise ValueError(msg)


#: per PCA fitted: the components used, and whether they reach the rank of the fitted data
Fits = list[tuple[int, bool]]


def _in_sample_errors(
    r: np.ndarray, s: Streamed, n_components: int | float, seed: int
) -> tuple[np.ndarray, np.ndarray, Fits]:
    """Errors of both sets from one PCA fitted on all the real samples."""
    mean, comps, q, full = _fit_pca(r, n_components, seed)
    real_err = _residual_norms(r, mean, comps)
    synth_err = s.map(lambda block: _residual_norms(block, mean, comps))
    return real_err, np.asarray(synth_err, dtype=np.float64), [(q, full)]


def _cross_validated_errors(
    r: np.ndarray, s: Streamed, n_components: int, cv: int, seed: int
) -> tuple[np.ndarray, np.ndarray, Fits]:
    """Errors of each real sample out of fold, of each synthetic one from its fold's PCA."""
    direction = np.random.default_rng(seed).standard_normal(r.shape[1])
    real_fold = _folds(r @ direction, cv)
    synth_fold = _folds(s.map(lambda block: block @ direction), cv)
    real_err = np.empty(r.shape[0])
    synth_err = np.empty(s.shape[0])
    fits = []
    for fold in range(cv):
        mean, comps, q, full = _fit_pca(r[real_fold != fold], n_components, seed, overwrite=True)
        held = real_fold == fold
        real_err[held] = _residual_norms(r[held], mean, comps)
        for start, block in s.blocks():
            stop = start + block.shape[0]
            judged = synth_fold[start:stop] == fold
            errors = synth_err[start:stop]  # a view: filled in place
            errors[judged] = _residual_norms(block[judged], mean, comps)
        fits.append((q, full))
    return real_err, synth_err, fits


def _warn_if_exact(n_components: int | float, fits: Fits) -> None:
    exact = [q for q, full in fits if full]
    if exact:
        logger.warning(
            "reconstruction_error: n_components=%s reaches the rank (%d) of the real data the "
            "PCA is fitted on, so the fitted samples are reconstructed exactly (in-sample errors "
            "~0) and the errors only measure distances to the span of the fitted samples. Pass "
            "a smaller number of components or a share of variance such as 0.9.",
            n_components,
            min(exact),
        )


def _median_ratio(real_median: float, synth_median: float) -> float:
    if real_median > 0:
        return synth_median / real_median
    return 1.0 if synth_median == 0 else float("inf")


def _compare_errors(real_err: np.ndarray, synth_err: np.ndarray) -> dict[str, float]:
    """Medians, their ratio and the Kolmogorov-Smirnov test of the two error samples."""
    real_median = float(np.median(real_err))
    synth_median = float(np.median(synth_err))
    ks = stats.ks_2samp(real_err, synth_err)
    return {
        "real_median": real_median,
        "synthetic_median": synth_median,
        "median_ratio": float(_median_ratio(real_median, synth_median)),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    }


@fill_doc
def reconstruction_error(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    n_components: int | float = 2000,
    layer: str | None = None,
    obsm: str | None = None,
    cv: int | None = 5,
    key_added: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Reconstruction error of synthetic samples in the real principal subspace (REM).

    The reconstruction-error metric of Alsamadi et al. (on the blind spots of GANs): a PCA is
    fitted on the real data, centred on the real mean ``μ``, and every sample ``x`` gets the
    error ``‖x - μ - P Pᵀ (x - μ)‖₂`` (``P``: the principal axes), its distance to the real
    principal subspace. Synthetic samples far off that subspace (noise, structure the real
    data lack) have larger errors than real samples; synthetic samples squeezed onto it (mode
    collapse, over-smoothing) have smaller ones.

    With ``cv=k`` (the default) both sets are judged by equally-fitted models: the real
    samples are split into ``k`` folds, each real sample's error comes from the PCA fitted on
    the other folds (out-of-sample), and each synthetic sample is assigned to one fold and uses
    that fold's PCA. Folds are dealt out by ranking the samples along a random direction drawn
    from ``seed``, so they depend on the seed and not on the order of the samples. ``cv=None``
    fits one PCA on all the real data (the paper's in-sample variant, in which real errors are
    biased low).

    Parameters
    ----------
    {real_synth}
    n_components
        Number of principal axes, or a float in (0, 1): the fewest axes explaining that share
        of the real variance (with ``cv``, counted on all the real data, then used by every
        fold). Capped at the rank of the data each PCA is fitted on (at most the number of
        fitted samples - 1 and the number of genes); when the cap is reached, the fitted
        samples are reconstructed exactly and a warning is logged.
    {layer}
    {obsm}
        The PCA and the errors are then computed in it; ``key_added`` still writes to
        ``.obs``.
    cv
        Number of folds (at least 2), or ``None`` for one in-sample fit.
    key_added
        When given (AnnData input only), write the per-sample errors to
        ``real.obs[key_added]`` and ``synth.obs[key_added]``. This is the only thing the
        function ever writes.
    seed
        Fold assignment and the randomized SVD used for large data with few components.
    overwrite
        Replace ``.obs[key_added]`` columns that already exist; without it they are refused
        before anything is computed.

    Returns
    -------
    A dict with the keys below.

    ``"real"``, ``"synthetic"``
        Per-sample errors (numpy arrays, in the input's row order).
    ``"real_median"``, ``"synthetic_median"``, ``"median_ratio"``
        Medians and their ratio synthetic / real: near 1 for faithful data, ≫ 1 when the
        synthetic samples lie off the real principal subspace, < 1 often means collapse onto
        it.
    ``"ks_statistic"``, ``"ks_pvalue"``
        Two-sample Kolmogorov-Smirnov test between the two error distributions.
    ``"n_components"``
        Number of principal axes actually used (the largest over the folds).
    ``"collapse"``
        ``median_ratio < 0.5`` and ``ks_pvalue < 0.01``: the synthetic samples sit much
        closer to the real subspace than real samples do. (A ratio ≫ 1 is a different
        failure, read from ``median_ratio``.)

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> basis = rng.normal(size=(3, 20))
    >>> real = rng.normal(size=(200, 3)) @ basis + 0.3 * rng.normal(size=(200, 20))
    >>> good = rng.normal(size=(100, 3)) @ basis + 0.3 * rng.normal(size=(100, 20))
    >>> collapsed = rng.normal(size=(100, 3)) @ basis
    >>> rem = sgs.metrics.reconstruction_error(real, good, n_components=3)
    >>> round(rem["median_ratio"], 2), rem["collapse"]
    (1.04, False)
    >>> rem = sgs.metrics.reconstruction_error(real, collapsed, n_components=3)
    >>> round(rem["median_ratio"], 2), rem["collapse"]
    (0.15, True)
    """
    n_components = _check_n_components(n_components)
    _check_key_added(real, synth, key_added, overwrite)
    # the synthetic set is read in blocks (a backed one is never loaded whole); only its
    # per-sample errors and projections are kept
    r, s = paired(real, synth, layer=layer, obsm=obsm)
    _check_cv(cv, r.shape[0])
    if cv is None:
        real_err, synth_err, fits = _in_sample_errors(r, s, n_components, seed)
    else:
        if isinstance(n_components, float):
            sv = np.linalg.svd(r - r.mean(axis=0), compute_uv=False)
            n_components = _components_for_share(sv, n_components) if _rank(sv, r.shape) else 1
        real_err, synth_err, fits = _cross_validated_errors(r, s, n_components, int(cv), seed)
    _warn_if_exact(n_components, fits)
    summary = _compare_errors(real_err, synth_err)
    if key_added is not None:
        real.obs[key_added] = real_err
        synth.obs[key_added] = synth_err
    return {
        "real": real_err,
        "synthetic": synth_err,
        **summary,
        "n_components": int(max(q for q, _ in fits)),
        # much smaller synthetic errors than real ones, and significantly so
        "collapse": bool(
            summary["median_ratio"] < _COLLAPSE_RATIO and summary["ks_pvalue"] < _COLLAPSE_PVALUE
        ),
    }


# -- explained variance ------------------------------------------------------------------------
def _explained_variance_ratio(X: np.ndarray, max_components: int | None) -> np.ndarray:
    """Share of the total variance explained by each principal component (largest first)."""
    Xc = X - X.mean(axis=0)
    total = float(np.einsum("ij,ij->", Xc, Xc))
    if total == 0:
        return np.zeros(0)
    if max_components is not None and _use_randomized(max_components, Xc.shape):
        sv = randomized_svd(Xc, max_components, random_state=0)[1]
    else:
        sv = np.linalg.svd(Xc, compute_uv=False)
    return sv**2 / total


@fill_doc
def pca_variance(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    thresholds: Sequence[float] = (0.9, 0.95, 0.99),
    max_components: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Cumulative explained-variance curves of real and synthetic data, each from its own PCA.

    Each dataset is centred on its own mean and decomposed by PCA; the curve gives, for
    ``j = 1, 2, ...``, the share of the dataset's total variance explained by its first ``j``
    principal components. Mode-collapsed or over-smoothed synthetic data have fewer effective
    dimensions: their curve rises faster and reaches each threshold with far fewer components.

    Parameters
    ----------
    {real_synth}
    {layer}
    {obsm}
        The curves are then computed in it.
    thresholds
        Shares of variance (in (0, 1]) for the ``"components"`` table.
    max_components
        Compute at most this many components (a randomized SVD with a fixed random state on
        large data); ``None``: all of them, up to ``min(n_samples, n_genes)``.

    Returns
    -------
    ``{"curves": DataFrame indexed by component number 1..q with columns "real" and
    "synthetic", "components": DataFrame indexed by threshold with columns "real" and
    "synthetic"}``. A dataset with fewer samples than ``q`` has no further components, so its
    curve stays at 1. ``"components"`` holds the fewest components reaching each threshold
    (nullable integers: ``<NA>`` when not reached within ``max_components``; 0 for a dataset
    without any variance).

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(100, 8)) * [5, 4, 3, 2, 1, 1, 1, 1]
    >>> collapsed = rng.normal(size=(100, 8)) * [5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    >>> pv = sgs.metrics.pca_variance(real, collapsed, thresholds=(0.9,))
    >>> pv["components"].loc[0.9].tolist()  # components reaching 90% of the variance
    [4, 1]
    >>> pv["curves"].loc[1].round(2).tolist()  # variance share of the first component
    [0.4, 1.0]
    """
    thresholds = [float(t) for t in np.atleast_1d(thresholds)]
    if not thresholds or any(not 0 < t <= 1 for t in thresholds):
        msg = f"thresholds must be shares of variance in (0, 1], got {thresholds!r}."
        raise ValueError(msg)
    if max_components is not None and (
        not isinstance(max_components, int | np.integer)
        or isinstance(max_components, bool)
        or max_components < 1
    ):
        msg = f"max_components must be None or a positive integer, got {max_components!r}."
        raise ValueError(msg)
    r, s = paired_values(real, synth, layer=layer, obsm=obsm)
    q = min(r.shape[1], max(r.shape[0], s.shape[0]))
    if max_components is not None:
        q = min(q, int(max_components))

    curves, counts = {}, {}
    for name, X in (("real", r), ("synthetic", s)):
        ratio = _explained_variance_ratio(X, max_components)
        if ratio.size == 0:
            logger.warning("pca_variance: %s has no variance (all samples are equal).", name)
            curves[name] = np.ones(q)
            counts[name] = [0] * len(thresholds)
            continue
        cumulative = np.minimum(np.cumsum(ratio), 1.0)
        counts[name] = [
            int(np.searchsorted(cumulative, t - 1e-12) + 1)
            if cumulative[-1] >= t - 1e-12
            else None
            for t in thresholds
        ]
        counts[name] = [c if c is not None and c <= q else pd.NA for c in counts[name]]
        curve = np.empty(q)
        m = min(q, cumulative.size)
        curve[:m] = cumulative[:m]
        curve[m:] = 1.0  # only when every component was computed: the rest explain nothing
        curves[name] = curve
    index = pd.RangeIndex(1, q + 1, name="component")
    curves_df = pd.DataFrame(curves, index=index)
    components = pd.DataFrame(
        {name: pd.array(counts[name], dtype="Int64") for name in ("real", "synthetic")},
        index=pd.Index(thresholds, name="threshold"),
    )
    return {"curves": curves_df, "components": components}


__all__ = ["pca_variance", "reconstruction_error"]
