"""Membership-inference audit: whether an attacker can tell training samples from new ones.

Every attack scores each *member* (a training sample) and each *non-member* (a held-out
real sample the generator never saw) from the synthetic samples alone; the AUC of members
against non-members says how well it tells them apart (0.5: not at all; 1: perfectly).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import stats

from scgensynth._utils._checks import check_count, check_seed

from . import _knn
from ._neighbors import distance_to_closest_record
from ._utils import ArrayOrAnnData, canonical_order, paired, paired_values

logger = logging.getLogger(__name__)

ATTACKS = ("distance", "logan", "domias")
#: fewest members, scored non-members, reference and synthetic samples an audit accepts
MIN_SAMPLES = 10
#: binomial tail probability below which a count of close synthetic samples fails the report
_ALPHA = 1e-3


@dataclass
class _Audit:
    """Everything the attacks and the report need, in one space."""

    members: np.ndarray
    nonmembers: np.ndarray
    reference: np.ndarray
    synthetic: np.ndarray
    holdout: np.ndarray  # every held-out sample (non-members and the reference half)
    exact_copies: int


def _row_digests(blocks) -> list[bytes]:
    """A 128-bit digest of each row's float64 values (``-0.0`` counted as ``0.0``)."""
    out = []
    for block in blocks:
        rows = np.ascontiguousarray(block, dtype=np.float64) + 0.0
        out += [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]
    return out


def _check_size(n: int, name: str, hint: str) -> None:
    if n < MIN_SAMPLES:
        msg = f"{name} has {n} samples; a membership-inference audit needs {MIN_SAMPLES}. {hint}"
        raise ValueError(msg)


def _split_holdout(H: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the reference and of the non-member halves of ``H`` (seeded, order-free)."""
    _check_size(len(H) // 2, "half of holdout", "The holdout is split in halves: add samples.")
    order = canonical_order(H)[np.random.default_rng([seed, 0]).permutation(len(H))]
    return np.sort(order[: len(H) // 2]), np.sort(order[len(H) // 2 :])


def _exact_copies(T: np.ndarray, S) -> int:
    """Synthetic samples identical to a training sample (all genes, exact values)."""
    train_digests = set(_row_digests(T[i : i + 1024] for i in range(0, len(T), 1024)))
    return sum(d in train_digests for d in _row_digests(b for _, b in S.blocks()))


def _load(train, synthetic, holdout, reference, *, layer, n_components, seed) -> _Audit:
    """Gene-aligned values, the holdout split, and all sets in the pooled PCA space."""
    if holdout is None:
        msg = (
            "holdout is required: real samples from the same population that the generator "
            "was NOT trained on (e.g. a split made before training)."
        )
        raise ValueError(msg)
    T, H = paired_values(train, holdout, layer=layer, names=("train", "holdout"), dtype=None)
    _, S = paired(train, synthetic, layer=layer, names=("train", "synthetic"), dtype=None)
    _check_size(len(T), "train", "Pass the samples the generator was trained on.")
    _check_size(S.shape[0], "synthetic", "Generate more synthetic samples.")
    if reference is None:
        ref_rows, non_rows = _split_holdout(H, seed)
        R = None
    else:
        _, R = paired_values(train, reference, layer=layer, names=("train", "reference"),
                             dtype=None)  # fmt: skip
        _check_size(len(H), "holdout", "Add held-out samples.")
        _check_size(len(R), "reference", "Add reference samples.")
    exact = _exact_copies(T, S)
    if n_components is not None and (
        not isinstance(n_components, int | np.integer) or n_components < 1
    ):
        msg = f"n_components must be a positive integer or None, got {n_components!r}."
        raise ValueError(msg)
    if n_components is None:
        f = np.asarray
    else:
        sets = [T, H] if R is None else [T, H, R]
        n_pooled = sum(len(x) for x in sets)
        q = int(min(n_components, n_pooled - 1, T.shape[1]))
        f = _pooled_pca(sets, q, seed)
    Tf, Hf, Sf = f(T), f(H), S.map(f)
    if R is None:
        return _Audit(Tf, Hf[non_rows], Hf[ref_rows], Sf, Hf, exact)
    return _Audit(Tf, Hf, f(R), Sf, Hf, exact)


def _row_blocks(sets, rows: int = 1024):
    """Consecutive blocks of rows of each matrix of ``sets`` in turn."""
    for X in sets:
        for start in range(0, len(X), rows):
            yield start, X[start : start + rows]


def _pooled_pca(sets: list[np.ndarray], q: int, seed: int, n_iter: int = 7):
    """Projection on the top ``q`` principal axes of the rows of ``sets`` taken together.

    A randomized range finder with power iterations (Halko et al. 2011, as scikit-learn's
    ``PCA(svd_solver="randomized")`` with 10 extra directions and 7 iterations), with the
    centring done implicitly and the matrices read a block of rows at a time: neither the
    pooled nor a centred copy of the data is ever made. Products are in float32 when every
    set is float32, else float64.

    Returns
    -------
    A function mapping a samples x genes block to its ``q`` coordinates (float32 blocks in,
    float32 out).
    """
    dt = np.result_type(np.float32, *(x.dtype for x in sets))
    n, p = sum(len(x) for x in sets), sets[0].shape[1]
    mean = sum(x.sum(0, dtype=np.float64) for x in sets) / n
    mu = mean.astype(dt)
    ell = int(min(q + 10, n, p))

    def right(M):  # (X - mean) @ M, n x ell
        parts = [np.asarray(b, dtype=dt) @ M for _, b in _row_blocks(sets)]
        return np.concatenate(parts) - mu @ M

    def left(Y):  # (X - mean).T @ Y, p x ell; Y stacked as the sets are
        out, offset = -np.outer(mu, Y.sum(0)), 0
        for _, b in _row_blocks(sets):
            out += np.asarray(b, dtype=dt).T @ Y[offset : offset + len(b)]
            offset += len(b)
        return out

    Y = right(np.random.default_rng([seed, 2]).standard_normal((p, ell)).astype(dt))
    for _ in range(n_iter):
        Y = right(np.linalg.qr(left(np.linalg.qr(Y)[0]))[0])
    Y = np.linalg.qr(Y)[0]
    B = np.zeros((ell, p), dtype=dt)  # Y.T @ (X - mean), centred explicitly: exact axes
    offset = 0
    for _, b in _row_blocks(sets):
        B += Y[offset : offset + len(b)].T @ (np.asarray(b, dtype=dt) - mu)
        offset += len(b)
    axes = np.linalg.svd(B.astype(np.float64), full_matrices=False)[2][:q].T

    def project(X):
        X = np.asarray(X)
        out_dt = np.result_type(np.float32, X.dtype)
        A, m = axes.astype(out_dt), mean.astype(out_dt)
        out = np.empty((len(X), q), dtype=out_dt)
        for start, b in _row_blocks([X]):
            out[start : start + len(b)] = (b - m) @ A
        return out

    return project


def _nearest_sq(queries: np.ndarray, data: np.ndarray, k: int, device) -> np.ndarray:
    """Exact squared distance of each query row to its ``k``-th nearest row of ``data``."""
    with _knn.exact_products():
        d, q, scale = _knn.prepare(data, queries, device=device)
        return _knn.knn_radii(q, k, scale, b=d)


def _attack_distance(a: _Audit, *, k: int, device, seed: int) -> np.ndarray:
    """Minus the distance to the nearest synthetic sample."""
    Q = np.concatenate([a.members, a.nonmembers])
    return -np.sqrt(_nearest_sq(Q, a.synthetic, 1, device))


def _attack_domias(a: _Audit, *, k: int, device, seed: int) -> np.ndarray:
    """Log kNN density ratio p_synthetic / p_reference (up to a constant and a factor)."""
    Q = np.concatenate([a.members, a.nonmembers])
    tiny = np.finfo(np.float64).tiny
    r2_syn = np.maximum(_nearest_sq(Q, a.synthetic, k, device), tiny)
    r2_ref = np.maximum(_nearest_sq(Q, a.reference, k, device), tiny)
    # kNN density: p(x) ~ k / (n r_k(x)^d); d, k and the sizes only shift or scale the score
    return 0.5 * (np.log(r2_ref) - np.log(r2_syn))


def _attack_logan(a: _Audit, *, k: int, device, seed: int) -> np.ndarray:
    """Probability of "synthetic" by extremely randomized trees, synthetic vs reference.

    200 fully grown trees, each on every sample (no bootstrap), so every synthetic sample
    sits in a leaf of each tree: as strong as a 200-tree random forest where synthetic
    samples pile up on training samples (slightly stronger in benchmarks/bench_privacy_audit
    data) and 4-5x faster to fit, split thresholds being drawn rather than searched.
    """
    from sklearn.ensemble import ExtraTreesClassifier

    X = np.concatenate([a.synthetic, a.reference])
    y = np.r_[np.ones(len(a.synthetic)), np.zeros(len(a.reference))]
    clf = ExtraTreesClassifier(
        n_estimators=200, class_weight="balanced", random_state=seed, n_jobs=1
    ).fit(X, y)
    return clf.predict_proba(np.concatenate([a.members, a.nonmembers]))[:, 1]


_ATTACK_FNS = {"distance": _attack_distance, "logan": _attack_logan, "domias": _attack_domias}


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC: the chance a member outscores a non-member (ties count half)."""
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _bootstrap_aucs(pos: np.ndarray, neg: np.ndarray, counts_pos, counts_neg) -> np.ndarray:
    """AUCs of many resamples at once, all from one sort of the non-members' scores.

    Resample ``b`` takes member ``i`` ``counts_pos[b, i]`` times and non-member ``j``
    ``counts_neg[b, j]`` times. Each member's rank among the sorted non-members is found
    once; per resample, the non-members below (and tied with) it are cumulative sums of the
    counts.
    """
    order = np.argsort(neg, kind="stable")
    below = np.searchsorted(neg[order], pos, side="left")
    upto = np.searchsorted(neg[order], pos, side="right")
    cum = np.zeros((len(counts_neg), len(neg) + 1))
    np.cumsum(counts_neg[:, order], axis=1, out=cum[:, 1:])
    wins = cum[:, below] + cum[:, upto]  # twice (non-members below + half the ties)
    return np.einsum("bi,bi->b", counts_pos, wins) / (2.0 * len(pos) * len(neg))


def _resample_counts(n: int, n_bootstrap: int, draws) -> np.ndarray:
    """How often each of ``n`` items is drawn in each resample of ``draws``."""
    if not n_bootstrap:
        return np.zeros((0, n))
    rows = np.repeat(np.arange(n_bootstrap), n) * n
    return np.bincount(rows + np.concatenate(draws), minlength=n_bootstrap * n).reshape(-1, n)


def _check_attacks(attacks) -> tuple[str, ...]:
    names = (attacks,) if isinstance(attacks, str) else tuple(attacks)
    unknown = [a for a in names if a not in ATTACKS]
    if unknown or not names:
        msg = f"attacks must be a non-empty selection of {ATTACKS}, got {attacks!r}."
        raise ValueError(msg)
    return tuple(dict.fromkeys(names))


def _attack_table(a: _Audit, attacks, *, k, n_bootstrap, seed, device) -> pd.DataFrame:
    n_m, n_n = len(a.members), len(a.nonmembers)
    rng = np.random.default_rng([seed, 1])
    # the same resamples for every attack, so their intervals are comparable
    boot = [(rng.integers(0, n_m, n_m), rng.integers(0, n_n, n_n)) for _ in range(n_bootstrap)]
    counts_m = _resample_counts(n_m, n_bootstrap, [i for i, _ in boot])
    counts_n = _resample_counts(n_n, n_bootstrap, [j for _, j in boot])
    del boot
    rows = []
    for name in attacks:
        score = _ATTACK_FNS[name](a, k=k, device=device, seed=seed)
        pos, neg = score[:n_m], score[n_m:]
        aucs = _bootstrap_aucs(pos, neg, counts_m, counts_n)
        low, high = np.quantile(aucs, [0.025, 0.975]) if len(aucs) else (np.nan, np.nan)
        rows.append({"attack": name, "auc": _auc(pos, neg), "auc_low": float(low),
                     "auc_high": float(high), "n_members": n_m, "n_nonmembers": n_n})  # fmt: skip
    return pd.DataFrame(rows)


def membership_inference(
    train: ArrayOrAnnData,
    synthetic: ArrayOrAnnData,
    holdout: ArrayOrAnnData,
    *,
    attacks: tuple[str, ...] | list[str] = ATTACKS,
    reference: ArrayOrAnnData | None = None,
    n_components: int | None = 50,
    k: int = 1,
    n_bootstrap: int = 200,
    layer: str | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Membership-inference attacks: whether synthetic data gives its training samples away.

    Each attack sees only the synthetic samples (and real samples the generator never saw)
    and scores every *member* (a ``train`` sample) and every *non-member* (a held-out sample);
    a higher score means "more likely a member". The AUC of members against non-members is
    0.5 when the attack cannot tell them apart and 1 when it always can.

    - ``"distance"``: minus the distance to the nearest synthetic sample (a generator that
      copies or sits near its training samples gives members close synthetic neighbours);
    - ``"logan"``: black-box LOGAN (Hayes et al. 2019): a classifier (200 fully grown
      extremely randomized trees, which overfit where synthetic samples pile up) is trained
      to tell synthetic samples from reference samples; the score is its probability of
      "synthetic";
    - ``"domias"``: DOMIAS (van Breugel et al. 2023): the density ratio
      :math:`p_\text{synthetic}(x) / p_\text{reference}(x)` with k-nearest-neighbour
      densities -- overfitting shows as synthetic density above the real density around
      training samples, which calibrates away regions that are merely dense.

    The *reference* samples stand for what an attacker knows of the population: without
    ``reference``, ``holdout`` is split in halves (seeded, independently of its row order),
    one half is the reference and only the other half is scored as non-members.

    All distances and the classifier work in a PCA space fitted on ``train`` and ``holdout``
    (and ``reference``) together -- every scored sample took part in the fit, so neither
    side is favoured, and the synthetic samples do not shape it -- computed exactly in
    float32 blocks (:func:`precision_recall`), on the GPU when one is available.

    Parameters
    ----------
    train
        The samples the generator was trained on (members). AnnData (genes matched by
        ``var_names``) or samples x genes arrays.
    synthetic
        The generator's samples.
    holdout
        Real samples from the same population the generator was not trained on.
    attacks
        Which attacks to run, among ``"distance"``, ``"logan"`` and ``"domias"``.
    reference
        Other real samples unseen by the generator, used instead of half of ``holdout``.
    n_components
        Principal components of the space; ``None``: the genes as given.
    k
        Neighbour of the kNN densities of ``"domias"`` (1: the nearest, most sensitive to
        samples sitting on training samples).
    n_bootstrap
        Resamples of members and of non-members (with replacement) for the 95 % interval;
        0 leaves the interval NaN.
    layer
        AnnData layer to read instead of ``.X``.
    device
        Torch device of the distance computations; default CUDA when available.
    seed
        Seeds the holdout split, the PCA, the classifier and the bootstrap.

    Returns
    -------
    One row per attack: ``attack``, ``auc``, ``auc_low`` and ``auc_high`` (2.5 and 97.5
    percentiles of the bootstrap AUCs), ``n_members``, ``n_nonmembers``.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    >>> copies = train + 0.01 * rng.normal(size=train.shape)
    >>> mi = sgs.metrics.membership_inference(train, copies, holdout, n_bootstrap=20)
    >>> mi.set_index("attack")["auc"].gt(0.9).to_dict()
    {'distance': True, 'logan': True, 'domias': True}
    >>> new = rng.normal(size=(200, 5))
    >>> mi = sgs.metrics.membership_inference(train, new, holdout, n_bootstrap=20)
    >>> mi["auc"].between(0.35, 0.65).all()
    np.True_
    """
    names = _check_attacks(attacks)
    k = check_count(k, "k")
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap", minimum=0)
    seed = check_seed(seed)
    a = _load(train, synthetic, holdout, reference, layer=layer, n_components=n_components,
              seed=seed)  # fmt: skip
    if k >= min(len(a.synthetic), len(a.reference)):
        msg = f"k={k} needs more than k synthetic and reference samples; lower k."
        raise ValueError(msg)
    return _attack_table(a, names, k=k, n_bootstrap=n_bootstrap, seed=seed, device=device)


@dataclass
class PrivacyReport:
    """What :func:`privacy_report` found; ``str(report)`` reads as a short verdict.

    Attributes
    ----------
    attacks
        The table of :func:`membership_inference`.
    dcr
        :func:`distance_to_closest_record` in the same space.
    exact_copies
        Synthetic samples identical to a training sample (all genes, exact values).
    near_copies
        Synthetic samples nearer to a training sample than ``near_copy_distance``
        (exact copies included), and ``near_copies_expected``: how many a set of new real
        samples of the same size would have.
    threshold
        The AUC above which an attack counts as successful.
    failed
        Plain-language descriptions of the failed checks; empty when ``safe``.
    """

    attacks: pd.DataFrame
    dcr: dict[str, float]
    exact_copies: int
    near_copies: int
    near_copies_expected: float
    near_copy_distance: float
    threshold: float
    failed: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """Whether every check passed."""
        return not self.failed

    @property
    def verdict(self) -> str:
        """The verdict in plain words, one line per failed check."""
        if self.safe:
            return f"Looks safe to share at AUC threshold {self.threshold:g}: every check passed."
        lines = [f"Not safe to share at AUC threshold {self.threshold:g}; failed checks:"]
        return "\n".join(lines + [f"- {f}" for f in self.failed])

    def __str__(self) -> str:
        table = self.attacks[["attack", "auc", "auc_low", "auc_high"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"
        )
        dcr = self.dcr
        return (
            f"{self.verdict}\n\n{table}\n\n"
            f"nearer to training than to holdout: {dcr['nearer_train']:.3f} "
            f"(expected {dcr['nearer_train_expected']:.3f}); DCR ratio {dcr['ratio']:.3f}\n"
            f"exact copies: {self.exact_copies}; near copies: {self.near_copies} "
            f"(expected {self.near_copies_expected:.1f})"
        )

    def __repr__(self) -> str:
        return f"<PrivacyReport: {self.verdict}>"

    def _repr_pretty_(self, p, cycle) -> None:  # IPython shows the full report
        p.text(str(self))


def _close_sample_checks(a: _Audit, dcr, q: float, device) -> tuple[list[str], dict]:
    """Exact copies, near copies and the nearer-to-training share, against chance."""
    n_s = len(a.synthetic)
    d_s = np.sqrt(_nearest_sq(a.synthetic, a.members, 1, device))
    d_h = np.sqrt(_nearest_sq(a.holdout, a.members, 1, device))
    cut = float(np.quantile(d_h, q))
    near = int((d_s <= cut).sum()) if cut > 0 else int((d_s == 0).sum())
    failed = []
    if a.exact_copies:
        failed.append(
            f"{a.exact_copies} of {n_s} synthetic samples are exact copies of training samples"
        )
    if stats.binom.sf(near - 1, n_s, q) < _ALPHA:
        failed.append(
            f"{near} synthetic samples are near copies (closer to a training sample than "
            f"{1 - q:.0%} of held-out samples are; about {q * n_s:.1f} expected)"
        )
    if _nearer_train_pvalue(a, device) < _ALPHA:
        failed.append(
            f"{dcr['nearer_train']:.0%} of synthetic samples are nearer to a training sample "
            f"than to a held-out one ({dcr['nearer_train_expected']:.0%} expected)"
        )
    info = {"near_copies": near, "near_copies_expected": q * n_s, "near_copy_distance": cut}
    return failed, info


def _nearest_owner(synthetic: np.ndarray, real: np.ndarray, device) -> np.ndarray:
    """Index of each synthetic sample's nearest real sample (float32 blocks; ties arbitrary)."""
    dev = _knn.resolve_device(device)
    r = torch.as_tensor(real, dtype=torch.float32, device=dev)
    out = []
    for start in range(0, len(synthetic), 1024):
        q = torch.as_tensor(synthetic[start : start + 1024], dtype=torch.float32, device=dev)
        out.append(torch.cdist(q, r).argmin(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def _nearer_train_pvalue(a: _Audit, device, n_perm: int = 2000, seed: int = 0) -> float:
    """P-value of "more synthetic samples nearest a training sample than chance".

    The unit is the real sample, not the synthetic one: synthetic samples all come from one
    model fitted on one training set, so they are not independent trials (a binomial test
    over them flags any model's tiny pull towards its training means once enough samples
    are drawn). Each real sample counts the synthetic samples it is nearest to; under the
    null hypothesis that the model does not depend on which samples were training ones,
    the training/held-out labels are exchangeable among real samples, and the p-value is
    the share of ``n_perm`` random relabellings whose training samples count at least as
    many.
    """
    real = np.concatenate([a.members, a.holdout])
    hits = np.bincount(_nearest_owner(a.synthetic, real, device), minlength=len(real))
    n_m = len(a.members)
    observed = hits[:n_m].sum()
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, n_perm, 100):
        keys = rng.random((min(100, n_perm - start), len(real)), dtype=np.float32)
        chosen = np.argpartition(keys, n_m - 1, axis=1)[:, :n_m]
        exceed += int((hits[chosen].sum(1) >= observed).sum())
    return (1 + exceed) / (1 + n_perm)


def privacy_report(
    train: ArrayOrAnnData,
    synthetic: ArrayOrAnnData,
    holdout: ArrayOrAnnData,
    *,
    threshold: float = 0.6,
    near_copy_quantile: float = 0.01,
    reference: ArrayOrAnnData | None = None,
    n_components: int | None = 50,
    k: int = 1,
    n_bootstrap: int = 200,
    layer: str | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> PrivacyReport:
    """Whether synthetic data looks safe to share: membership inference and closeness checks.

    Runs every attack of :func:`membership_inference` and checks the synthetic samples'
    closeness to training samples against what new real samples (``holdout``) show. The
    report fails, naming each failed check, if

    - an attack's AUC exceeds ``threshold``;
    - any synthetic sample is an exact copy of a training sample (all genes, exact values);
    - there are more *near copies* than chance allows: synthetic samples whose distance to
      the nearest training sample is below the ``near_copy_quantile`` quantile (1st
      percentile) of the held-out samples' distances to their nearest training sample --
      new real samples fall there ``near_copy_quantile`` of the time;
    - more synthetic samples are nearer to a training sample than to a held-out one than
      chance allows (``nearer_train`` of :func:`distance_to_closest_record`; chance gives
      n_train / (n_train + n_holdout)).

    "Than chance allows" means a one-sided test at p < 0.001: binomial over synthetic
    samples for near copies; for the nearer-to-training share, a permutation test with the
    real samples as units (each counts the synthetic samples it is nearest to; training and
    held-out labels are shuffled among them), because synthetic samples from one model are
    not independent trials. All distances are in the PCA space of
    :func:`membership_inference`; exact copies are found in the genes.

    Parameters
    ----------
    train, synthetic, holdout
        As for :func:`membership_inference`.
    threshold
        AUC above which an attack counts as successful (0.5: chance).
    near_copy_quantile
        Quantile of the held-out samples' nearest-training distances below which a
        synthetic sample is a near copy.
    reference, n_components, k, n_bootstrap, layer, device, seed
        As for :func:`membership_inference`.

    Returns
    -------
    A :class:`PrivacyReport`: ``safe``, ``verdict``, ``failed``, the attack table, the DCR
    summary and the copy counts; printing it gives the verdict and the table.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    >>> report = sgs.metrics.privacy_report(train, train[:100], holdout, n_bootstrap=20)
    >>> report.safe, report.exact_copies
    (False, 100)
    >>> report = sgs.metrics.privacy_report(train, rng.normal(size=(200, 5)), holdout)
    >>> report.verdict
    'Looks safe to share at AUC threshold 0.6: every check passed.'
    """
    if not isinstance(threshold, int | float) or not 0.5 <= threshold <= 1:
        msg = f"threshold must be an AUC between 0.5 and 1, got {threshold!r}."
        raise ValueError(msg)
    if not isinstance(near_copy_quantile, int | float) or not 0 < near_copy_quantile < 1:
        msg = f"near_copy_quantile must be between 0 and 1, got {near_copy_quantile!r}."
        raise ValueError(msg)
    k = check_count(k, "k")
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap", minimum=0)
    seed = check_seed(seed)
    a = _load(train, synthetic, holdout, reference, layer=layer, n_components=n_components,
              seed=seed)  # fmt: skip
    table = _attack_table(a, ATTACKS, k=k, n_bootstrap=n_bootstrap, seed=seed, device=device)
    dcr = distance_to_closest_record(a.members, a.synthetic, a.holdout, device=device)
    failed = [
        f"the {r.attack} attack tells training samples from new ones (AUC {r.auc:.3f} > "
        f"{threshold:g})"
        for r in table.itertuples()
        if r.auc > threshold
    ]
    close_failed, info = _close_sample_checks(a, dcr, near_copy_quantile, device)
    return PrivacyReport(table, dcr, a.exact_copies, threshold=threshold,
                         failed=failed + close_failed, **info)  # fmt: skip
