"""The small classifiers of the classifier-based metrics: one deterministic trainer.

:func:`fit_classifier` trains the MLP of the protocol of Lacan et al. (2023), *GAN-based data
augmentation for transcriptomics: survey and comparative assessment*, Bioinformatics 39,
i111-i120 (or a scikit-learn logistic regression): a plain, deterministic PyTorch loop on
inputs standardized with the training set's statistics.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from ._standardize import apply_standardization, standardization
from ._utils import canonical_order

logger = logging.getLogger(__name__)

#: rows predicted at once (bounds the memory of large inputs)
_CHUNK = 4096
KINDS = ("mlp", "logistic")


def check_kind(kind: str, param: str = "classifier") -> None:
    """``kind`` must name one of the classifiers :func:`fit_classifier` trains."""
    if kind not in KINDS:
        msg = f"{param} must be one of {KINDS}, not {kind!r}."
        raise ValueError(msg)


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
    """A classifier returned by :func:`fit_classifier` (inputs are standardized inside).

    Attributes
    ----------
    classes_
        The training labels, sorted; columns of :meth:`predict_proba`.
    kind
        ``"mlp"`` or ``"logistic"``.
    mean_, scale_
        The training set's per-feature mean and standard deviation used to standardize.
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

    def _chunks(self, X: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, X.shape[0], _CHUNK):
            yield apply_standardization(
                X[start : start + _CHUNK], self.mean_, self.scale_, np.float32
            )

    def _net_outputs(self, X: np.ndarray, fn: Callable[[torch.Tensor], torch.Tensor]) -> list:
        """``fn`` of the MLP on each standardized chunk of ``X``, on the CPU."""
        out = []
        self._model.eval()
        with torch.inference_mode():
            for Z in self._chunks(X):
                out.append(fn(torch.from_numpy(Z).to(self._device)).cpu())
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, samples x ``len(classes_)``."""
        X = self._check(X)
        if len(self.classes_) == 1:
            return np.ones((X.shape[0], 1))
        if self.kind == "logistic":
            return np.vstack([self._model.predict_proba(Z) for Z in self._chunks(X)])
        out = self._net_outputs(X, lambda z: torch.softmax(self._model(z), 1).double())
        return np.vstack([p.numpy() for p in out]) if out else np.empty((0, len(self.classes_)))

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
        out = self._net_outputs(self._check(X), self._model.hidden)
        if not out:
            return np.empty((0, self._model.linears[-1].in_features), dtype=np.float32)
        return torch.cat(out).numpy()


def _check_training_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y).astype(str)
    if X.ndim != 2 or X.shape[0] == 0:
        msg = f"X must be a non-empty samples x features matrix, got shape {X.shape}."
        raise ValueError(msg)
    if len(y) != X.shape[0]:
        msg = f"{len(y)} labels for {X.shape[0]} samples."
        raise ValueError(msg)
    return X, y


def _check_mlp_options(hidden, lr, batch_size, epochs) -> tuple[int, ...]:
    """The hidden widths as a tuple, once every MLP option is checked."""
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
    return hidden


def _train_mlp(
    Z: torch.Tensor,
    codes: np.ndarray,
    n_classes: int,
    hidden: tuple[int, ...],
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int,
    device: torch.device,
) -> _MLPNet:
    """Adam on the cross-entropy, minibatches drawn from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(int(seed))
    net = _MLPNet(Z.shape[1], n_classes, hidden, generator, device)
    Z = Z.to(device)
    target = torch.from_numpy(codes.astype(np.int64)).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    n_obs = Z.shape[0]
    for _ in range(int(epochs)):
        perm = torch.randperm(n_obs, generator=generator).to(device)
        for start in range(0, n_obs, int(batch_size)):
            idx = perm[start : start + int(batch_size)]
            loss = loss_fn(net(Z[idx]), target[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    logger.debug(
        "Trained an MLP %s on %d samples x %d features (%d classes, %d epochs), last loss %.4g.",
        hidden,
        n_obs,
        Z.shape[1],
        n_classes,
        epochs,
        loss.item(),
    )
    return net


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

    Inputs are standardized with the training set's mean and standard deviation
    (zero-variance features: standard deviation 1). ``kind="mlp"``: ``Linear -> ReLU`` per
    ``hidden`` layer and a linear output, trained with Adam(``lr``) on the cross-entropy in
    float32, shuffled minibatches drawn from a seeded local :class:`torch.Generator`
    (PyTorch's and NumPy's global random states are not touched). ``kind="logistic"``: a
    scikit-learn ``LogisticRegression(max_iter=2000)`` on the standardized data (fast; the
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
    >>> from scgensynth.metrics._mlp import fit_classifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["a", "b"], 30)
    >>> X = rng.normal(size=(60, 5)) + 4 * (y == "b")[:, None]
    >>> clf = fit_classifier(X, y, hidden=(16,), lr=1e-2, epochs=20)
    >>> float((clf.predict(X) == y).mean())
    1.0
    >>> clf.embed(X).shape
    (60, 16)
    """
    check_kind(kind, "kind")
    X, y = _check_training_data(X, y)
    hidden = _check_mlp_options(hidden, lr, batch_size, epochs)
    classes, codes = np.unique(y, return_inverse=True)
    order = canonical_order(X, codes)
    X, codes = X[order], codes[order]
    mean, std = standardization(X)
    device = torch.device(device)
    if len(classes) == 1:  # nothing to learn: always the one class
        return FittedClassifier(kind, classes, mean, std, None, device)
    if kind == "logistic":
        model = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(apply_standardization(X, mean, std), codes)
        return FittedClassifier(kind, classes, mean, std, model, device)
    Z = torch.from_numpy(apply_standardization(X, mean, std, np.float32))
    net = _train_mlp(
        Z, codes, len(classes), hidden, lr=lr, batch_size=batch_size, epochs=epochs,
        seed=seed, device=device,
    )  # fmt: skip
    return FittedClassifier(kind, classes, mean, std, net, device)


__all__ = ["KINDS", "FittedClassifier", "check_kind", "fit_classifier"]
