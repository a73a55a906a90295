"""Classifier-based quality indicators: TSTR/TRTS, augmentation gain, two-sample test.

The small MLP classifiers follow the protocol of Lacan et al. (2023), *GAN-based data
augmentation for transcriptomics: survey and comparative assessment*, Bioinformatics 39,
i111-i120; they are trained by :func:`~scgensynth.metrics._mlp.fit_classifier`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from scgensynth._utils._deprecation import renamed_arguments

from ._docs import fill_doc
from ._mlp import check_kind, fit_classifier
from ._standardize import apply_standardization, standardization, standardized_pca
from ._utils import (
    ArrayOrAnnData,
    canonical_order,
    check_two_classes,
    get_labels,
    paired_values,
)

logger = logging.getLogger(__name__)

#: level of augmentation_gain's progress lines: info when called alone, debug inside
#: :func:`~scgensynth.metrics.evaluate` (which logs one line per call)
PROGRESS_LEVEL: ContextVar[int] = ContextVar("augmentation_gain_progress", default=logging.INFO)
#: augmentation_gain logs its progress every this many classifier fits
_PROGRESS_EVERY = 10
_LABELS_KEY = {"label_key": "labels_key"}


def _accuracy_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    acc = float(accuracy_score(y_true, y_pred))
    f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    return acc, f1


def _labelled_pair(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    labels_key: str,
    *,
    layer: str | None,
    obsm: str | None = None,
    names: tuple[str, str] = ("real", "synthetic"),
    dtype: type | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values and labels of two datasets: ``X_real, y_real, X_synth, y_synth``."""
    Xr, Xs = paired_values(real, synth, layer=layer, obsm=obsm, names=names, dtype=dtype)
    yr = get_labels(real, labels_key, names[0])
    ys = get_labels(synth, labels_key, names[1])
    return Xr, yr, Xs, ys


# -- TSTR / TRTS -------------------------------------------------------------------------------
@renamed_arguments(_LABELS_KEY)
@fill_doc
def reverse_validation(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    labels_key: str,
    *,
    reference: ArrayOrAnnData | None = None,
    classifier: str = "mlp",
    layer: str | None = None,
    obsm: str | None = None,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> dict[str, float]:
    """Train on synthetic, test on real (TSTR), optionally beside train on real (TRTR).

    A classifier learns ``labels_key`` from the synthetic samples and classifies the real
    samples, which should be held out from the generator's training set. With ``reference``
    (real training samples, disjoint from ``real``) the same classifier is also trained on
    ``reference`` and tested on ``real``, so the synthetic score can be read against what
    real data achieve.

    Labels of ``real`` that the training set lacks can never be predicted: those samples
    count as errors (they are not dropped), and their class contributes an F1 of 0 to the
    macro average.

    Parameters
    ----------
    real
        Held-out real samples (AnnData with ``labels_key`` in ``.obs``).
    synth
        Synthetic samples (AnnData with ``labels_key`` in ``.obs``); genes are matched to
        ``real`` by name.
    {labels_key}
    reference
        Optional real training samples (AnnData) for the TRTR baseline.
    classifier
        ``"mlp"`` (the survey's protocol, see :func:`fit_classifier`: one hidden layer of 512
        units, Adam with learning rate 1e-4, minibatches of 32, 35 epochs) or
        ``"logistic"`` (scikit-learn logistic regression, faster).
    {layer}
    obsm
        Key of ``.obsm`` to read instead of genes: a representation computed the same way
        for every dataset (e.g. a PCA fitted on real data and applied to the others);
        ``reference`` is read from the same key. Not together with ``layer``.
    seed
        Seed of the classifier.
    {classifier_kwargs}

    Returns
    -------
    ``accuracy`` and ``macro_f1`` of the TSTR classifier on ``real``; with ``reference``
    also ``reference_accuracy``, ``reference_macro_f1`` and ``ratio`` =
    ``macro_f1 / reference_macro_f1`` (NaN if the reference scores 0).

    Examples
    --------
    >>> import anndata as ad
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 40)
    >>> shift = 2.0 * (y == "b")[:, None]
    >>> real = ad.AnnData(rng.normal(size=(80, 20)) + shift, obs={"group": y})
    >>> synth = ad.AnnData(rng.normal(size=(80, 20)) + shift, obs={"group": y})
    >>> train = ad.AnnData(rng.normal(size=(80, 20)) + shift, obs={"group": y})
    >>> rv = sgs.metrics.reverse_validation(real, synth, "group", reference=train)
    >>> {k: round(v, 2) for k, v in rv.items()}
    {'accuracy': 1.0, 'macro_f1': 1.0, 'reference_accuracy': 1.0, 'reference_macro_f1': 1.0, 'ratio': 1.0}
    """  # noqa: E501
    check_kind(classifier)
    Xr, yr, Xs, ys = _labelled_pair(real, synth, labels_key, layer=layer, obsm=obsm)
    check_two_classes(ys, "synthetic", labels_key)
    fit = {"kind": classifier, "seed": seed, **classifier_kwargs}
    out = {}
    out["accuracy"], out["macro_f1"] = _accuracy_f1(yr, fit_classifier(Xs, ys, **fit).predict(Xr))
    if reference is not None:
        _, _, Xref, yref = _labelled_pair(
            real, reference, labels_key, layer=layer, obsm=obsm, names=("real", "reference")
        )
        check_two_classes(yref, "reference", labels_key)
        pred = fit_classifier(Xref, yref, **fit).predict(Xr)
        out["reference_accuracy"], out["reference_macro_f1"] = _accuracy_f1(yr, pred)
        ref = out["reference_macro_f1"]
        out["ratio"] = out["macro_f1"] / ref if ref > 0 else float("nan")
    return out


@renamed_arguments(_LABELS_KEY)
@fill_doc
def label_preservation(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    labels_key: str,
    *,
    classifier: str = "mlp",
    layer: str | None = None,
    obsm: str | None = None,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> dict[str, float]:
    """Train on real, test on synthetic (TRTS): do synthetic samples match their labels.

    A classifier learns ``labels_key`` from the real samples and predicts the label of each
    synthetic sample; the scores compare the predictions with the labels the synthetic
    samples were generated for. Synthetic labels absent from ``real`` count as errors.

    Parameters
    ----------
    {real_synth_labelled}
    {labels_key}
    classifier
        ``"mlp"`` or ``"logistic"``, as in :func:`reverse_validation`.
    {layer}
    {obsm}
    seed
        Seed of the classifier.
    {classifier_kwargs}

    Returns
    -------
    ``{"accuracy", "macro_f1"}`` of the predicted synthetic labels.

    Examples
    --------
    >>> import anndata as ad
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 40)
    >>> shift = 2.0 * (y == "b")[:, None]
    >>> real = ad.AnnData(rng.normal(size=(80, 20)) + shift, obs={"group": y})
    >>> synth = ad.AnnData(rng.normal(size=(80, 20)) + shift, obs={"group": y[::-1]})
    >>> lp = sgs.metrics.label_preservation(real, synth, "group", classifier="logistic")
    >>> {k: round(v, 2) for k, v in lp.items()}  # labels swapped: every sample is wrong
    {'accuracy': 0.0, 'macro_f1': 0.0}
    """
    check_kind(classifier)
    Xr, yr, Xs, ys = _labelled_pair(real, synth, labels_key, layer=layer, obsm=obsm)
    check_two_classes(yr, "real", labels_key)
    clf = fit_classifier(Xr, yr, kind=classifier, seed=seed, **classifier_kwargs)
    acc, f1 = _accuracy_f1(ys, clf.predict(Xs))
    return {"accuracy": acc, "macro_f1": f1}


# -- augmentation gain -------------------------------------------------------------------------
def _stratified_draw(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` samples drawn without replacement, stratified by label.

    Classes get shares in proportion (largest remainders, ties broken at random), each at least
    one sample when ``n`` allows it.
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if n >= len(labels):
        return np.arange(len(labels))
    share = n * counts / counts.sum()
    alloc = np.floor(share).astype(int)
    # largest remainders first; ties (e.g. equal classes) broken at random, not by name
    shuffled = rng.permutation(len(classes))
    remainder_order = shuffled[np.argsort(-(share - alloc)[shuffled], kind="stable")]
    alloc[remainder_order[: n - alloc.sum()]] += 1
    if n >= len(classes):
        for j in np.flatnonzero(alloc == 0):
            alloc[np.argmax(alloc)] -= 1  # the largest class gives one up
            alloc[j] = 1
    parts = [
        rng.choice(np.flatnonzero(inverse == c), alloc[c], replace=False)
        for c in range(len(classes))
        if alloc[c] > 0
    ]
    return np.sort(np.concatenate(parts))


def _sizes(values, name: str, *, minimum: int) -> tuple[int, ...]:
    values = (values,) if isinstance(values, int | np.integer) else tuple(values)
    if not values or any(not isinstance(v, int | np.integer) or v < minimum for v in values):
        what = "positive" if minimum > 0 else "non-negative"
        msg = f"{name} must be {what} integers, got {values!r}."
        raise ValueError(msg)
    return tuple(sorted({int(v) for v in values}))


def _in_canonical_order(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (and labels) in an order that depends on their contents, not on the input's."""
    order = canonical_order(X, np.unique(y, return_inverse=True)[1])
    return X[order], y[order]


def _augmentation_sets(real_train, real_test, synth, labels_key, layer, n_real, n_synth):
    """``(X, y)`` of the training pool, the test set and the synthetic pool, checked."""
    Xtr, ytr, Xte, yte = _labelled_pair(
        real_train, real_test, labels_key, layer=layer, names=("real_train", "real_test")
    )
    _, _, Xs, ys = _labelled_pair(
        real_train, synth, labels_key, layer=layer, names=("real_train", "synthetic")
    )
    check_two_classes(ytr, "real_train", labels_key)
    if max(n_real) > len(ytr):
        msg = (
            f"n_real={max(n_real)} is larger than real_train ({len(ytr)} samples); "
            f"use n_real values of at most {len(ytr)}."
        )
        raise ValueError(msg)
    if max(n_synth) > len(ys):
        msg = (
            f"n_synth={max(n_synth)} is larger than synth ({len(ys)} samples): generate more "
            f"synthetic samples or use n_synth values of at most {len(ys)}."
        )
        raise ValueError(msg)
    # draws depend on the samples' contents, not on the order they were passed in
    return _in_canonical_order(Xtr, ytr), (Xte, yte), _in_canonical_order(Xs, ys)


class _Scorer:
    """Trains a classifier and returns its test accuracy, logging the progress of the fits."""

    def __init__(self, test: tuple[np.ndarray, np.ndarray], options: dict, n_fits: int):
        self.test, self.options, self.n_fits, self.done = test, options, n_fits, 0

    def __call__(self, X: np.ndarray, y: np.ndarray, seed: int) -> float:
        clf = fit_classifier(X, y, seed=seed, **self.options)
        self.done += 1
        if self.done % _PROGRESS_EVERY == 0 or self.done == self.n_fits:
            level = PROGRESS_LEVEL.get()
            logger.log(level, "augmentation_gain: %d/%d fits", self.done, self.n_fits)
        X_test, y_test = self.test
        return float(accuracy_score(y_test, clf.predict(X_test)))


def _gains(train, pool, n: int, n_synth, seeds: int, seed: int, score: _Scorer):
    """Accuracies and gains over ``seeds`` draws of ``n`` real samples, per ``n_synth``."""
    (Xtr, ytr), (Xs, ys) = train, pool
    acc = {m: [] for m in n_synth}
    delta = {m: [] for m in n_synth}
    for s in range(seeds):
        real_idx = _stratified_draw(ytr, n, np.random.default_rng([seed, n, s, 0]))
        clf_seed = int(np.random.SeedSequence([seed, n, s, 1]).generate_state(1)[0])
        Xn, yn = Xtr[real_idx], ytr[real_idx]
        base = score(Xn, yn, clf_seed)
        for m in n_synth:
            if m == 0:
                a = base
            else:
                idx = _stratified_draw(ys, m, np.random.default_rng([seed, n, s, m, 2]))
                a = score(np.concatenate([Xn, Xs[idx]]), np.concatenate([yn, ys[idx]]), clf_seed)
            acc[m].append(a)
            delta[m].append(a - base)
        logger.debug("augmentation_gain: n_real=%d, seed %d done.", n, s)
    return acc, delta


def _mean_std(values: list[float], prefix: str) -> dict[str, float]:
    """Mean and standard deviation (ddof=1, NaN for a single value) as ``prefix_mean/_std``."""
    x = np.array(values)
    std = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_std": std}


@renamed_arguments(_LABELS_KEY)
@fill_doc
def augmentation_gain(
    real_train: ArrayOrAnnData,
    real_test: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    labels_key: str,
    *,
    n_real: int | Sequence[int] = (50, 100),
    n_synth: int | Sequence[int] = (0, 100, 500, 1000, 3000),
    seeds: int = 5,
    layer: str | None = None,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 32,
    hidden: int | Sequence[int] | None = None,
    classifier: str = "mlp",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Accuracy gained by adding synthetic samples to a few real ones (ΔAcc table).

    The protocol of Lacan et al. (2023): for each ``n`` in ``n_real``, ``m`` in ``n_synth``
    and each of ``seeds`` repetitions, ``n`` real training samples and ``m`` synthetic
    samples are drawn, each stratified by label (classes in proportion, every class at least
    once when ``n`` allows, classes left out at random when it does not), a classifier is
    trained on their union and tested on ``real_test``.
    ``ΔAcc = acc(n real + m synthetic) - acc(n real only)``, with the same real draw and
    classifier seed, so ``m = 0`` gives exactly 0. Test labels that the training draw lacks
    count as errors.

    Cost: ``len(n_real) * seeds * (1 + number of m > 0)`` classifier fits (50 with the
    defaults, a few seconds each on a CPU for a few thousand samples and genes); the
    progress is logged at INFO level every 10 fits.

    Parameters
    ----------
    real_train
        Real samples to draw the ``n`` real training samples from (AnnData).
    real_test
        Held-out real samples the classifiers are scored on (AnnData).
    synth
        Synthetic samples to draw the ``m`` added samples from (AnnData); generate at least
        ``max(n_synth)``.
    labels_key
        Column of ``.obs`` (in all three) holding the labels to classify.
    n_real
        Numbers of real training samples (each at most ``real_train.n_obs``).
    n_synth
        Numbers of synthetic samples added (each at most ``synth.n_obs``).
    seeds
        Repetitions (different draws and initialisations) per ``(n, m)``.
    {layer}
    epochs, lr, batch_size
        MLP training: Adam with learning rate ``lr`` (default 1e-3, Adam's own default: the
        survey does not state one that we could find), minibatches of ``batch_size``.
    hidden
        Hidden layer widths of the MLP; default one layer of 256 units for binary labels and
        64 for more classes.
    classifier
        ``"mlp"`` or ``"logistic"`` (which ignores ``epochs``, ``lr``, ``batch_size``,
        ``hidden``).
    seed
        Base seed of the draws and of the classifiers.
    device
        Torch device of the MLPs.

    Returns
    -------
    A DataFrame with one row per ``(n_real, n_synth)`` and columns ``n_real``, ``n_synth``,
    ``accuracy_mean``, ``accuracy_std``, ``delta_mean``, ``delta_std`` (standard deviations
    over seeds with ddof=1, NaN for a single seed) and ``n_seeds``.

    Examples
    --------
    >>> import anndata as ad
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> def toy(n):
    ...     y = np.repeat(["a", "b"], n // 2)
    ...     X = rng.normal(size=(n, 10)) + 1.5 * (y == "b")[:, None]
    ...     return ad.AnnData(X, obs={"group": y})
    >>> train, test, synth = toy(40), toy(200), toy(200)
    >>> table = sgs.metrics.augmentation_gain(
    ...     train, test, synth, "group", n_real=4, n_synth=(0, 100), seeds=2, epochs=10
    ... )
    >>> table[["n_real", "n_synth", "n_seeds"]].values.tolist()
    [[4, 0, 2], [4, 100, 2]]
    >>> bool(table["delta_mean"].iloc[1] > 0)
    True
    """
    check_kind(classifier)
    n_real = _sizes(n_real, "n_real", minimum=1)
    n_synth = _sizes(n_synth, "n_synth", minimum=0)
    if not isinstance(seeds, int | np.integer) or seeds < 1:
        msg = f"seeds must be a positive integer, got {seeds!r}."
        raise ValueError(msg)
    train, test, pool = _augmentation_sets(
        real_train, real_test, synth, labels_key, layer, n_real, n_synth
    )
    if hidden is None:
        hidden = (256,) if len(np.unique(train[1])) == 2 else (64,)
    options = {"kind": classifier, "hidden": hidden, "lr": lr, "batch_size": batch_size}
    options |= {"epochs": epochs, "device": device}
    n_fits = len(n_real) * seeds * (1 + sum(m > 0 for m in n_synth))
    logger.log(PROGRESS_LEVEL.get(), "augmentation_gain: %d classifier fits.", n_fits)
    score = _Scorer(test, options, n_fits)
    rows = []
    for n in n_real:
        acc, delta = _gains(train, pool, n, n_synth, seeds, seed, score)
        rows += [
            {"n_real": n, "n_synth": m, **_mean_std(acc[m], "accuracy"),
             **_mean_std(delta[m], "delta"), "n_seeds": int(seeds)}
            for m in n_synth
        ]  # fmt: skip
    return pd.DataFrame(rows)


# -- two-sample test and centroids -------------------------------------------------------------
@fill_doc
def classifier_two_sample_auc(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    n_components: int | None = 50,
    n_splits: int = 5,
    classifier: str = "logistic",
    layer: str | None = None,
    obsm: str | None = None,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> float:
    """Classifier two-sample test: cross-validated ROC AUC of telling real from synthetic.

    The larger set is subsampled to the size of the smaller one; a classifier separates real
    from synthetic samples with ``n_splits``-fold stratified cross-validation, and the AUC of
    the out-of-fold scores is returned: 0.5 means indistinguishable, 1 perfectly separable.

    In each fold the genes are standardized and projected on ``n_components`` principal
    components fitted on that fold's training rows only, real and synthetic together, and
    the fold's test rows are transformed with them: nothing about a test row is learnt
    before it is scored. The fit pools both classes because it ignores the labels and so
    treats real and synthetic rows alike; a PCA fitted on real rows alone would make those
    rows in-sample and the synthetic ones out-of-sample (their projections differ in
    spread), a difference a classifier can pick up even when both come from one
    distribution.

    The default logistic regression is linear: it sees differences of means (and of
    anything linear), but is nearly blind to data whose genes have the right distributions
    and the wrong correlations; ``classifier="mlp"`` also sees those, at the cost of
    ``n_splits`` MLP fits. With few samples per dimension the out-of-fold AUC of two samples
    of the same distribution falls below 0.5 (each fold's classifier leans away from the
    samples it did not see); read values around or below 0.5 as "indistinguishable".

    Parameters
    ----------
    {real_synth}
    n_components
        PCA components (``None``: the standardized gene space); capped at the number of a
        fold's training rows - 1 and of genes.
    n_splits
        Cross-validation folds.
    classifier
        ``"logistic"`` (scikit-learn logistic regression on standardized components) or
        ``"mlp"`` (see :func:`fit_classifier`).
    {layer}
    {obsm}
        It is then standardized and projected like genes (``n_components`` is capped at its
        number of columns).
    seed
        Seed of the subsampling, folds, PCA and classifier.
    {classifier_kwargs}

    Returns
    -------
    The ROC AUC, a float in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(100, 20))
    >>> round(sgs.metrics.classifier_two_sample_auc(real, real + 3.0), 2)
    1.0
    """
    check_kind(classifier)
    r, s = paired_values(real, synth, layer=layer, obsm=obsm)
    if not isinstance(n_splits, int | np.integer) or n_splits < 2:
        msg = f"n_splits must be an integer >= 2, got {n_splits!r}."
        raise ValueError(msg)
    n = min(len(r), len(s))
    if n < n_splits:
        msg = (
            f"{n_splits}-fold cross-validation needs at least {n_splits} samples in each set; "
            f"the smaller set has {n}. Lower n_splits or add samples."
        )
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    r = r[canonical_order(r)]
    s = s[canonical_order(s)]
    r = r[rng.choice(len(r), n, replace=False)]
    s = s[rng.choice(len(s), n, replace=False)]
    X = np.vstack([r, s])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    scores = np.zeros(len(y))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y)
    for fold, (tr, te) in enumerate(folds):
        # standardization and PCA see this fold's training rows only, of both classes alike
        Xtr, (Xte,) = standardized_pca(X[tr], [X[te]], n_components, seed)
        clf = fit_classifier(Xtr, y[tr], kind=classifier, seed=seed, **classifier_kwargs)
        scores[te] = clf.predict_proba(Xte)[:, 1]
        logger.debug("classifier_two_sample_auc: fold %d/%d done.", fold + 1, n_splits)
    return float(roc_auc_score(y, scores))


@renamed_arguments(_LABELS_KEY)
@fill_doc
def nearest_centroid_agreement(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    labels_key: str,
    *,
    layer: str | None = None,
) -> float:
    """Share of synthetic samples whose nearest real class centroid is their own class.

    Centroids are the class means of the real samples in the gene space standardized with
    the real samples' mean and standard deviation (zero-variance genes: 1). Synthetic
    samples with a label absent from ``real`` count as disagreeing.

    Parameters
    ----------
    {real_synth_labelled}
    {labels_key}
    {layer}

    Returns
    -------
    The agreement, a float in [0, 1].

    Examples
    --------
    >>> import anndata as ad
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 20)
    >>> real = ad.AnnData(rng.normal(size=(40, 5)) + 4 * (y == "b")[:, None], obs={"t": y})
    >>> synth = ad.AnnData(rng.normal(size=(40, 5)) + 4 * (y == "b")[:, None], obs={"t": y})
    >>> sgs.metrics.nearest_centroid_agreement(real, synth, "t")
    1.0
    """
    r, yr, s, ys = _labelled_pair(real, synth, labels_key, layer=layer, dtype=np.float64)
    check_two_classes(yr, "real", labels_key)
    mean, std = standardization(r)
    r, s = apply_standardization(r, mean, std), apply_standardization(s, mean, std)
    classes = np.unique(yr)
    centroids = np.stack([r[yr == c].mean(0) for c in classes])
    d2 = (s**2).sum(1)[:, None] + (centroids**2).sum(1)[None, :] - 2 * s @ centroids.T
    return float((classes[d2.argmin(1)] == ys).mean())


__all__ = [
    "augmentation_gain",
    "classifier_two_sample_auc",
    "label_preservation",
    "nearest_centroid_agreement",
    "reverse_validation",
]
