"""Classifier-based quality indicators: TSTR/TRTS, augmentation gain, two-sample test.

The small MLP classifiers follow the protocol of Lacan et al. (2023), *GAN-based data
augmentation for transcriptomics: survey and comparative assessment*, Bioinformatics 39,
i111-i120. :func:`fit_classifier` is the one trainer they all share: a plain, deterministic
PyTorch loop (or a scikit-learn logistic regression) on inputs standardised with the training
set's statistics.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from torch import nn

from ._utils import (
    ArrayOrAnnData,
    check_two_classes,
    get_labels,
    paired_values,
)

logger = logging.getLogger(__name__)

#: rows standardised / predicted at once (bounds the memory of large inputs)
_CHUNK = 4096
_KINDS = ("mlp", "logistic")
#: augmentation_gain logs its progress every this many classifier fits
_PROGRESS_EVERY = 10


# -- shared helpers ---------------------------------------------------------------------------
def _standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (ddof=0); zero-variance features get 1."""
    mean = X.mean(0, dtype=np.float64)
    std = X.std(0, dtype=np.float64)
    std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    return mean, std


def _standardise(
    X: np.ndarray, mean: np.ndarray, std: np.ndarray, dtype: type = np.float64
) -> np.ndarray:
    out = np.empty(X.shape, dtype=dtype)
    for start in range(0, X.shape[0], _CHUNK):
        block = np.asarray(X[start : start + _CHUNK], dtype=np.float64)
        out[start : start + _CHUNK] = (block - mean) / std
    return out


def _fit_standardised_pca(fit: np.ndarray, n_components: int | None, seed: int):
    """Standardise on ``fit`` and fit its PCA: ``fit`` embedded, and the row-wise map.

    ``n_components=None`` keeps the standardised feature space. The number of components is
    capped at ``min(n_fit - 1, n_features)``.
    """
    mean, std = _standardisation(fit)
    r = _standardise(fit, mean, std)
    if n_components is None:
        return r, lambda x: _standardise(x, mean, std)
    if not isinstance(n_components, int | np.integer) or n_components < 1:
        msg = f"n_components must be a positive integer or None, got {n_components!r}."
        raise ValueError(msg)
    q = min(int(n_components), r.shape[0] - 1, r.shape[1])
    if q < 1:
        msg = f"real has {r.shape[0]} samples: a PCA needs at least 2."
        raise ValueError(msg)
    pca = PCA(q, random_state=seed).fit(r)
    return pca.transform(r), lambda x: pca.transform(_standardise(x, mean, std))


def _standardised_pca(
    fit: np.ndarray, others: Sequence[np.ndarray], n_components: int | None, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Standardise on ``fit``, then project ``fit`` and ``others`` on ``fit``'s PCA."""
    r, embed = _fit_standardised_pca(fit, n_components, seed)
    return r, [embed(x) for x in others]


def _canonical_order(X: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
    """A row order that depends on the rows' contents only (bytes, then label code).

    Training on the rows in this order makes minibatch training invariant to the order in
    which the user passed the samples.
    """
    Xc = np.ascontiguousarray(X)
    rows = Xc.view(np.dtype((np.void, Xc.dtype.itemsize * Xc.shape[1]))).ravel()
    if codes is None:
        return np.argsort(rows, kind="stable")
    first = np.argsort(codes, kind="stable")
    return first[np.argsort(rows[first], kind="stable")]


def _check_kind(kind: str, param: str = "classifier") -> None:
    if kind not in _KINDS:
        msg = f"{param} must be one of {_KINDS}, not {kind!r}."
        raise ValueError(msg)


def _accuracy_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    acc = float(accuracy_score(y_true, y_pred))
    f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    return acc, f1


# -- the trainer -------------------------------------------------------------------------------
class _MLPNet(nn.Module):
    """``Linear -> ReLU`` per hidden layer, then a linear output; explicitly initialised."""

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int], generator, device):
        super().__init__()
        widths = [n_in, *[int(h) for h in hidden], n_out]
        self.linears = nn.ModuleList()
        for a, b in itertools.pairwise(widths):
            # skip_init builds the layer without PyTorch's default (global-RNG) initialisation
            layer = torch.nn.utils.skip_init(nn.Linear, a, b, device=device)
            bound = 1.0 / math.sqrt(a)  # PyTorch's default Linear init, from a local generator
            with torch.no_grad():
                layer.weight.copy_((torch.rand((b, a), generator=generator) * 2 - 1) * bound)
                layer.bias.copy_((torch.rand(b, generator=generator) * 2 - 1) * bound)
            self.linears.append(layer)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.linears[:-1]:
            x = torch.relu(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linears[-1](self.hidden(x))


class FittedClassifier:
    """A classifier returned by :func:`fit_classifier` (inputs are standardised inside).

    Attributes
    ----------
    classes_
        The training labels, sorted; columns of :meth:`predict_proba`.
    kind
        ``"mlp"`` or ``"logistic"``.
    mean_, scale_
        The training set's per-feature mean and standard deviation used to standardise.
    """

    def __init__(self, kind, classes, mean, scale, model, device="cpu"):
        self.kind = kind
        self.classes_ = classes
        self.mean_ = mean
        self.scale_ = scale
        self._model = model
        self._device = device

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            msg = (
                f"Expected a samples x {self.mean_.shape[0]} matrix (the training features), "
                f"got shape {X.shape}."
            )
            raise ValueError(msg)
        return X

    def _chunks(self, X: np.ndarray):
        for start in range(0, X.shape[0], _CHUNK):
            yield _standardise(X[start : start + _CHUNK], self.mean_, self.scale_, np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, samples x ``len(classes_)``."""
        X = self._check(X)
        if len(self.classes_) == 1:
            return np.ones((X.shape[0], 1))
        if self.kind == "logistic":
            return np.vstack([self._model.predict_proba(Z) for Z in self._chunks(X)])
        out = []
        self._model.eval()
        with torch.inference_mode():
            for Z in self._chunks(X):
                logits = self._model(torch.from_numpy(Z).to(self._device))
                out.append(torch.softmax(logits, 1).double().cpu().numpy())
        return np.vstack(out) if out else np.empty((0, len(self.classes_)))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    def embed(self, X) -> np.ndarray:
        """Activations of the last hidden layer (MLP only), samples x last hidden width."""
        if self.kind != "mlp" or self._model is None or len(self._model.linears) < 2:
            msg = (
                "embed() needs an MLP classifier with at least one hidden layer, trained on "
                "two classes or more."
            )
            raise ValueError(msg)
        X = self._check(X)
        out = []
        self._model.eval()
        with torch.inference_mode():
            for Z in self._chunks(X):
                out.append(self._model.hidden(torch.from_numpy(Z).to(self._device)).cpu())
        if not out:
            return np.empty((0, self._model.linears[-1].in_features), dtype=np.float32)
        return torch.cat(out).numpy()


def fit_classifier(
    X: np.ndarray,
    y: np.ndarray,
    *,
    kind: str = "mlp",
    hidden: int | Sequence[int] = (512,),
    lr: float = 1e-4,
    batch_size: int = 32,
    epochs: int = 35,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> FittedClassifier:
    """Train a small classifier, deterministically for a given ``seed``.

    Inputs are standardised with the training set's mean and standard deviation
    (zero-variance features: standard deviation 1). ``kind="mlp"``: ``Linear -> ReLU`` per
    ``hidden`` layer and a linear output, trained with Adam(``lr``) on the cross-entropy in
    float32, shuffled minibatches drawn from a seeded local :class:`torch.Generator`
    (PyTorch's and NumPy's global random states are not touched). ``kind="logistic"``: a
    scikit-learn ``LogisticRegression(max_iter=2000)`` on the standardised data (fast; the
    MLP options are ignored). The training rows are put in an order that depends on their
    contents only, so the result does not depend on the order of the samples. Results are
    bit-for-bit reproducible on CPU; GPUs may differ in the last digits.

    Parameters
    ----------
    X
        Training samples x features.
    y
        Training labels (any values; compared as strings).
    kind
        ``"mlp"`` or ``"logistic"``.
    hidden
        Widths of the MLP's hidden layers.
    lr
        Adam learning rate.
    batch_size
        Minibatch size.
    epochs
        Passes over the training set.
    seed
        Seed of the initialisation and of the minibatch order.
    device
        Torch device of the MLP.

    Returns
    -------
    A :class:`FittedClassifier` with ``predict``, ``predict_proba``, ``embed`` and
    ``classes_``.

    Examples
    --------
    >>> import numpy as np
    >>> from scgensynth.metrics._classifier import fit_classifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 30)
    >>> X = rng.normal(size=(60, 5)) + 4 * (y == "b")[:, None]
    >>> clf = fit_classifier(X, y, hidden=(16,), lr=1e-2, epochs=20)
    >>> float((clf.predict(X) == y).mean())
    1.0
    >>> clf.embed(X).shape
    (60, 16)
    """
    _check_kind(kind, "kind")
    X = np.asarray(X)
    y = np.asarray(y).astype(str)
    if X.ndim != 2 or X.shape[0] == 0:
        msg = f"X must be a non-empty samples x features matrix, got shape {X.shape}."
        raise ValueError(msg)
    if len(y) != X.shape[0]:
        msg = f"{len(y)} labels for {X.shape[0]} samples."
        raise ValueError(msg)
    hidden = (hidden,) if isinstance(hidden, int | np.integer) else tuple(hidden)
    for name, value in {"batch_size": batch_size, "epochs": epochs}.items():
        if not isinstance(value, int | np.integer) or value < 1:
            msg = f"{name} must be a positive integer, got {value!r}."
            raise ValueError(msg)
    if any(int(h) < 1 for h in hidden):
        msg = f"hidden layer widths must be positive, got {hidden}."
        raise ValueError(msg)
    if not lr > 0:
        msg = f"lr must be positive, got {lr!r}."
        raise ValueError(msg)

    classes, codes = np.unique(y, return_inverse=True)
    order = _canonical_order(X, codes)
    X, codes = X[order], codes[order]
    mean, std = _standardisation(X)
    device = torch.device(device)
    if len(classes) == 1:  # nothing to learn: always the one class
        return FittedClassifier(kind, classes, mean, std, None, device)

    if kind == "logistic":
        model = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(_standardise(X, mean, std), codes)
        return FittedClassifier(kind, classes, mean, std, model, device)

    generator = torch.Generator().manual_seed(int(seed))
    net = _MLPNet(X.shape[1], len(classes), hidden, generator, device)
    Z = torch.from_numpy(_standardise(X, mean, std, np.float32)).to(device)
    target = torch.from_numpy(codes.astype(np.int64)).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    n = Z.shape[0]
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, int(batch_size)):
            idx = perm[start : start + int(batch_size)]
            loss = loss_fn(net(Z[idx]), target[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    logger.debug(
        "Trained an MLP %s on %d samples x %d features (%d classes, %d epochs), last loss %.4g.",
        hidden,
        n,
        X.shape[1],
        len(classes),
        epochs,
        loss.item(),
    )
    return FittedClassifier(kind, classes, mean, std, net, device)


# -- TSTR / TRTS -------------------------------------------------------------------------------
def reverse_validation(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    label_key: str,
    *,
    reference: ArrayOrAnnData | None = None,
    classifier: str = "mlp",
    layer: str | None = None,
    obsm: str | None = None,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> dict[str, float]:
    """Train on synthetic, test on real (TSTR), optionally beside train on real (TRTR).

    A classifier learns ``label_key`` from the synthetic samples and classifies the real
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
        Held-out real samples (AnnData with ``label_key`` in ``.obs``).
    synth
        Synthetic samples (AnnData with ``label_key`` in ``.obs``); genes are matched to
        ``real`` by name.
    label_key
        Column of ``.obs`` holding the labels.
    reference
        Optional real training samples (AnnData) for the TRTR baseline.
    classifier
        ``"mlp"`` (the survey's protocol, see :func:`fit_classifier`: one hidden layer of 512
        units, Adam with learning rate 1e-4, minibatches of 32, 35 epochs) or
        ``"logistic"`` (scikit-learn logistic regression, faster).
    layer
        AnnData layer to read instead of ``.X``.
    obsm
        Key of ``.obsm`` to read instead of genes: a representation computed the same way
        for every dataset (e.g. a PCA fitted on real data and applied to the others);
        ``reference`` is read from the same key. Not together with ``layer``.
    seed
        Seed of the classifier.
    **classifier_kwargs
        Options of the MLP: ``hidden``, ``lr``, ``batch_size``, ``epochs``, ``device``.

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
    _check_kind(classifier)
    Xr, Xs = paired_values(real, synth, layer=layer, obsm=obsm, dtype=None)
    yr = get_labels(real, label_key, "real")
    ys = get_labels(synth, label_key, "synthetic")
    check_two_classes(ys, "synthetic", label_key)
    fit = {"kind": classifier, "seed": seed, **classifier_kwargs}
    out = {}
    out["accuracy"], out["macro_f1"] = _accuracy_f1(yr, fit_classifier(Xs, ys, **fit).predict(Xr))
    if reference is not None:
        _, Xref = paired_values(
            real, reference, layer=layer, obsm=obsm, names=("real", "reference"), dtype=None
        )
        yref = get_labels(reference, label_key, "reference")
        check_two_classes(yref, "reference", label_key)
        pred = fit_classifier(Xref, yref, **fit).predict(Xr)
        out["reference_accuracy"], out["reference_macro_f1"] = _accuracy_f1(yr, pred)
        ref = out["reference_macro_f1"]
        out["ratio"] = out["macro_f1"] / ref if ref > 0 else float("nan")
    return out


def label_preservation(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    label_key: str,
    *,
    classifier: str = "mlp",
    layer: str | None = None,
    obsm: str | None = None,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> dict[str, float]:
    """Train on real, test on synthetic (TRTS): do synthetic samples match their labels.

    A classifier learns ``label_key`` from the real samples and predicts the label of each
    synthetic sample; the scores compare the predictions with the labels the synthetic
    samples were generated for. Synthetic labels absent from ``real`` count as errors.

    Parameters
    ----------
    real
        Real samples (AnnData with ``label_key`` in ``.obs``).
    synth
        Synthetic samples (AnnData with ``label_key`` in ``.obs``); genes are matched to
        ``real`` by name.
    label_key
        Column of ``.obs`` holding the labels.
    classifier
        ``"mlp"`` or ``"logistic"``, as in :func:`reverse_validation`.
    layer
        AnnData layer to read instead of ``.X``.
    obsm
        Key of ``.obsm`` to read instead of genes: a representation computed the same way
        for both datasets. Not together with ``layer``.
    seed
        Seed of the classifier.
    **classifier_kwargs
        Options of the MLP: ``hidden``, ``lr``, ``batch_size``, ``epochs``, ``device``.

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
    _check_kind(classifier)
    Xr, Xs = paired_values(real, synth, layer=layer, obsm=obsm, dtype=None)
    yr = get_labels(real, label_key, "real")
    ys = get_labels(synth, label_key, "synthetic")
    check_two_classes(yr, "real", label_key)
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


def augmentation_gain(
    real_train: ArrayOrAnnData,
    real_test: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    label_key: str,
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
    label_key
        Column of ``.obs`` (in all three) holding the labels to classify.
    n_real
        Numbers of real training samples (each at most ``real_train.n_obs``).
    n_synth
        Numbers of synthetic samples added (each at most ``synth.n_obs``).
    seeds
        Repetitions (different draws and initialisations) per ``(n, m)``.
    layer
        AnnData layer to read instead of ``.X``.
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
    _check_kind(classifier)
    n_real = _sizes(n_real, "n_real", minimum=1)
    n_synth = _sizes(n_synth, "n_synth", minimum=0)
    if not isinstance(seeds, int | np.integer) or seeds < 1:
        msg = f"seeds must be a positive integer, got {seeds!r}."
        raise ValueError(msg)
    Xtr, Xte = paired_values(
        real_train, real_test, layer=layer, names=("real_train", "real_test"), dtype=None
    )
    _, Xs = paired_values(
        real_train, synth, layer=layer, names=("real_train", "synthetic"), dtype=None
    )
    ytr = get_labels(real_train, label_key, "real_train")
    yte = get_labels(real_test, label_key, "real_test")
    ys = get_labels(synth, label_key, "synthetic")
    check_two_classes(ytr, "real_train", label_key)
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
    if hidden is None:
        hidden = (256,) if len(np.unique(ytr)) == 2 else (64,)
    fit = {"kind": classifier, "hidden": hidden, "lr": lr, "batch_size": batch_size}
    fit |= {"epochs": epochs, "device": device}

    # draws depend on the samples' contents, not on the order they were passed in
    o = _canonical_order(Xtr, np.unique(ytr, return_inverse=True)[1])
    Xtr, ytr = Xtr[o], ytr[o]
    o = _canonical_order(Xs, np.unique(ys, return_inverse=True)[1])
    Xs, ys = Xs[o], ys[o]

    n_fits = len(n_real) * seeds * (1 + sum(m > 0 for m in n_synth))
    logger.info("augmentation_gain: %d classifier fits.", n_fits)
    done = 0

    def fit_and_score(X: np.ndarray, y: np.ndarray, clf_seed: int) -> float:
        nonlocal done
        clf = fit_classifier(X, y, seed=clf_seed, **fit)
        done += 1
        if done % _PROGRESS_EVERY == 0 or done == n_fits:
            logger.info("augmentation_gain: %d/%d fits", done, n_fits)
        return float(accuracy_score(yte, clf.predict(Xte)))

    rows = []
    for n in n_real:
        acc = {m: [] for m in n_synth}
        delta = {m: [] for m in n_synth}
        for s in range(seeds):
            real_idx = _stratified_draw(ytr, n, np.random.default_rng([seed, n, s, 0]))
            clf_seed = int(np.random.SeedSequence([seed, n, s, 1]).generate_state(1)[0])
            Xn, yn = Xtr[real_idx], ytr[real_idx]
            base = fit_and_score(Xn, yn, clf_seed)
            for m in n_synth:
                if m == 0:
                    a = base
                else:
                    idx = _stratified_draw(ys, m, np.random.default_rng([seed, n, s, m, 2]))
                    X = np.concatenate([Xn, Xs[idx]])
                    y = np.concatenate([yn, ys[idx]])
                    a = fit_and_score(X, y, clf_seed)
                acc[m].append(a)
                delta[m].append(a - base)
            logger.debug("augmentation_gain: n_real=%d, seed %d done.", n, s)
        for m in n_synth:
            a, d = np.array(acc[m]), np.array(delta[m])
            rows.append(
                {
                    "n_real": n,
                    "n_synth": m,
                    "accuracy_mean": float(a.mean()),
                    "accuracy_std": float(a.std(ddof=1)) if seeds > 1 else float("nan"),
                    "delta_mean": float(d.mean()),
                    "delta_std": float(d.std(ddof=1)) if seeds > 1 else float("nan"),
                    "n_seeds": int(seeds),
                }
            )
    return pd.DataFrame(rows)


# -- two-sample test and centroids -------------------------------------------------------------
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

    In each fold the genes are standardised and projected on ``n_components`` principal
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
    real, synth
        AnnData (genes matched by name) or samples x genes arrays.
    n_components
        PCA components (``None``: the standardised gene space); capped at the number of a
        fold's training rows - 1 and of genes.
    n_splits
        Cross-validation folds.
    classifier
        ``"logistic"`` (scikit-learn logistic regression on standardised components) or
        ``"mlp"`` (see :func:`fit_classifier`).
    layer
        AnnData layer to read instead of ``.X``.
    obsm
        Key of ``.obsm`` to read instead of genes: a representation computed the same way
        for both datasets, then standardised and projected like genes (``n_components`` is
        capped at its number of columns). Not together with ``layer``.
    seed
        Seed of the subsampling, folds, PCA and classifier.
    **classifier_kwargs
        Options of the MLP: ``hidden``, ``lr``, ``batch_size``, ``epochs``, ``device``.

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
    _check_kind(classifier)
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
    r = r[_canonical_order(r)]
    s = s[_canonical_order(s)]
    r = r[rng.choice(len(r), n, replace=False)]
    s = s[rng.choice(len(s), n, replace=False)]
    X = np.vstack([r, s])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    scores = np.zeros(len(y))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y)
    for fold, (tr, te) in enumerate(folds):
        # standardisation and PCA see this fold's training rows only, of both classes alike
        Xtr, (Xte,) = _standardised_pca(X[tr], [X[te]], n_components, seed)
        clf = fit_classifier(Xtr, y[tr], kind=classifier, seed=seed, **classifier_kwargs)
        scores[te] = clf.predict_proba(Xte)[:, 1]
        logger.debug("classifier_two_sample_auc: fold %d/%d done.", fold + 1, n_splits)
    return float(roc_auc_score(y, scores))


def nearest_centroid_agreement(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    label_key: str,
    *,
    layer: str | None = None,
) -> float:
    """Share of synthetic samples whose nearest real class centroid is their own class.

    Centroids are the class means of the real samples in the gene space standardised with
    the real samples' mean and standard deviation (zero-variance genes: 1). Synthetic
    samples with a label absent from ``real`` count as disagreeing.

    Parameters
    ----------
    real, synth
        AnnData with ``label_key`` in ``.obs`` (genes matched by name).
    label_key
        Column of ``.obs`` holding the labels.
    layer
        AnnData layer to read instead of ``.X``.

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
    r, s = paired_values(real, synth, layer=layer)
    yr = get_labels(real, label_key, "real")
    ys = get_labels(synth, label_key, "synthetic")
    check_two_classes(yr, "real", label_key)
    mean, std = _standardisation(r)
    r, s = _standardise(r, mean, std), _standardise(s, mean, std)
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
