"""Gene rankings in the structure of :func:`scanpy.tl.rank_genes_groups`.

Both in-silico perturbation tools (:func:`scgensynth.tl.perturb` and
:func:`scgensynth.tl.counterfactual`) rank genes by how much they move, per group, and
write the result where scanpy users look for it, so ``sc.get.rank_genes_groups_df`` and
``sc.pl.rank_genes_groups`` work on it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

#: ranking statistics accepted by ``rank_by``
RANK_BY = ("mean", "effect", "sign")


def benjamini_hochberg(pvals: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN), as scanpy's ``corr_method``."""
    p = np.asarray(pvals, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    order = np.argsort(q)
    ranked = q[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


def difference_statistics(diff: np.ndarray, *, pvalues: bool = True) -> dict[str, np.ndarray]:
    """Per-gene statistics of paired differences ``diff`` (samples x genes).

    Returns ``mean`` (mean difference), ``effect`` (mean / standard deviation; finite but
    huge when the differences do not vary), ``sign`` (share of samples whose difference has
    the sign of the mean; 0 counted as disagreement), ``pvals`` (two-sided one-sample t-test
    of mean 0; NaN when ``pvalues=False`` or for fewer than 2 samples) and ``pvals_adj``
    (Benjamini-Hochberg).

    Examples
    --------
    >>> import numpy as np
    >>> st = difference_statistics(np.array([[1.0, -2.0, 0.5], [3.0, -2.0, -0.5]]))
    >>> st["mean"].tolist(), st["sign"].tolist()
    ([2.0, -2.0, 0.0], [1.0, 1.0, 0.0])
    """
    diff = np.asarray(diff, dtype=np.float64)
    if diff.ndim != 2 or diff.shape[0] == 0:
        msg = f"diff must be a non-empty samples x genes matrix, not shape {diff.shape}."
        raise ValueError(msg)
    mean = diff.mean(0)
    sd = diff.std(0, ddof=1) if diff.shape[0] > 1 else np.zeros(diff.shape[1])
    # no spread: the effect has no bound; a floor keeps it finite for sorting and plots
    effect = mean / np.maximum(sd, 1e-8 * (1.0 + np.abs(mean)))
    direction = np.sign(mean)
    sign = (np.sign(diff) == direction[None, :]).mean(0)
    sign = np.where(direction == 0, 0.0, sign)
    p = np.full(diff.shape[1], np.nan)
    if pvalues and diff.shape[0] > 1:
        spread = sd > 0
        p[~spread] = np.where(mean[~spread] != 0, 0.0, 1.0)  # no spread: certain, or no change
        if spread.any():
            p[spread] = stats.ttest_1samp(diff[:, spread], 0.0, axis=0).pvalue
    return {
        "mean": mean,
        "effect": effect,
        "sign": sign,
        "pvals": p,
        "pvals_adj": benjamini_hochberg(p),
    }


def rank_genes_structure(
    diffs: Mapping[str, np.ndarray],
    var_names: Sequence[str],
    *,
    method: str,
    groupby: str,
    reference: str,
    rank_by: str = "mean",
    pvalues: bool = True,
    layer: str | None = None,
    extra_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``uns`` entry shaped like the output of :func:`scanpy.tl.rank_genes_groups`.

    Parameters
    ----------
    diffs
        ``{group: differences}`` with a samples x genes matrix of paired differences per
        group (a perturbation, or target minus reference for one latent draw).
    var_names
        Gene names, one per column.
    method
        Recorded in ``params["method"]`` (e.g. ``"tspg"``, ``"counterfactual"``).
    groupby, reference
        Recorded in ``params`` as scanpy does (the ``obs`` column the groups come from, and
        what they are compared with).
    rank_by
        Statistic in ``scores``, by which genes are sorted (descending, so the most
        increased genes come first and the most decreased last): ``"mean"`` (mean
        difference), ``"effect"`` (standardized: mean / standard deviation) or ``"sign"``
        (share of samples with the mean's sign, signed by the mean's direction).
    pvalues
        Compute one-sample t-test p-values (else NaN).
    layer
        Recorded in ``params["layer"]``.
    extra_params
        Added to ``params``.

    Returns
    -------
    ``{"params", "names", "scores", "logfoldchanges", "pvals", "pvals_adj", "mean_difference",
    "effect", "sign_agreement"}``, each ranking field a record array with one field per group
    and one row per gene. ``logfoldchanges`` holds the mean difference in the data's units: a
    log fold change when the values are log expression.
    """
    if rank_by not in RANK_BY:
        msg = f"rank_by must be one of {RANK_BY}, not {rank_by!r}."
        raise ValueError(msg)
    names = np.asarray(var_names).astype(str)
    groups = [str(g) for g in diffs]
    if not groups:
        msg = "No groups to rank."
        raise ValueError(msg)
    columns: dict[str, dict[str, np.ndarray]] = {
        k: {}
        for k in (
            "names",
            "scores",
            "logfoldchanges",
            "pvals",
            "pvals_adj",
            "mean_difference",
            "effect",
            "sign_agreement",
        )
    }
    for group, diff in zip(groups, diffs.values(), strict=True):
        diff = np.asarray(diff)
        if diff.ndim != 2 or diff.shape[1] != len(names):
            msg = f"Group {group!r}: differences of shape {diff.shape} for {len(names)} genes."
            raise ValueError(msg)
        st = difference_statistics(diff, pvalues=pvalues)
        score = {
            "mean": st["mean"],
            "effect": st["effect"],
            "sign": np.sign(st["mean"]) * st["sign"],
        }[rank_by]
        # descending by score; ties by mean difference (so the most decreased come last)
        order = np.lexsort((-st["mean"], -score))
        columns["names"][group] = names[order]
        columns["scores"][group] = score[order].astype(np.float32)
        columns["logfoldchanges"][group] = st["mean"][order].astype(np.float32)
        columns["pvals"][group] = st["pvals"][order]
        columns["pvals_adj"][group] = st["pvals_adj"][order]
        columns["mean_difference"][group] = st["mean"][order].astype(np.float32)
        columns["effect"][group] = st["effect"][order].astype(np.float32)
        columns["sign_agreement"][group] = st["sign"][order].astype(np.float32)
    out: dict[str, Any] = {
        "params": {
            "groupby": groupby,
            "reference": reference,
            "method": method,
            "use_raw": False,
            "layer": layer,
            "corr_method": "benjamini-hochberg" if pvalues else None,
            "rank_by": rank_by,
            **dict(extra_params or {}),
        }
    }
    for key, per_group in columns.items():
        out[key] = np.rec.fromarrays(list(per_group.values()), names=groups)
    return out
