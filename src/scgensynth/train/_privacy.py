"""Differentially private SGD: the budget, its accountant, Poisson batches, clipped noisy sums.

The pieces of DP-SGD (Abadi et al. 2016) that every private training plan shares. The
privacy accounting is Opacus' (RDP by default, PRV on request); the per-sample gradients are
computed with :mod:`torch.func`, which, unlike Opacus' hooks, also differentiates losses that
hold a gradient themselves (WGAN-GP's gradient penalty).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from scgensynth._utils._docs import doctest_skip

_ACCOUNTANTS = ("rdp", "prv")
_KEYS = ("epsilon", "delta", "max_grad_norm", "accountant")
#: Rényi orders: Opacus' defaults and larger ones, which large ε over few steps needs
RDP_ORDERS = (
    *[1 + x / 10.0 for x in range(1, 100)],
    *range(12, 64),
    *(64, 80, 96, 128, 192, 256, 384, 512, 1024),
)


def _opacus_accountant(name: str):
    """A fresh Opacus accountant (imported here: ``import opacus`` costs seconds)."""
    from opacus.accountants import PRVAccountant, RDPAccountant

    return RDPAccountant() if name == "rdp" else PRVAccountant()


def _positive(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        msg = f"privacy[{name!r}] must be a number, not {value!r}."
        raise TypeError(msg) from None
    if not math.isfinite(value) or value <= 0:
        msg = (
            f"privacy[{name!r}] must be a finite number > 0, not {value!r}. "
            "For training without differential privacy pass privacy=None."
        )
        raise ValueError(msg)
    return value


@dataclass(frozen=True)
class PrivacySpec:
    """What a user asks of a differentially private training run.

    Parameters
    ----------
    epsilon
        Target ε of the (ε, δ) guarantee over the whole run, > 0.
    delta
        Target δ; must be below ``1 / n`` for ``n`` training samples. ``None`` (the default)
        resolves to ``1 / (10 n)`` in :meth:`resolve`.
    max_grad_norm
        Bound ``C`` on each training sample's gradient norm (per-sample clipping).
    accountant
        ``"rdp"`` (Rényi DP, Mironov 2017) or ``"prv"`` (privacy random variables, tighter).

    Examples
    --------
    >>> spec = PrivacySpec.from_user({"epsilon": 10}).resolve(n_train=500)
    >>> spec.delta
    0.0002
    """

    epsilon: float
    delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "rdp"

    @classmethod
    def from_user(cls, privacy: PrivacySpec | Mapping[str, Any]) -> PrivacySpec:
        """Validate a ``privacy=`` argument (a mapping with the fields above, or a spec)."""
        if isinstance(privacy, PrivacySpec):
            privacy = privacy.as_dict()
        if not isinstance(privacy, Mapping):
            msg = (
                "privacy must be a dict such as {'epsilon': 10, 'delta': None, "
                f"'max_grad_norm': 1.0}}, not {type(privacy).__name__}."
            )
            raise TypeError(msg)
        unknown = sorted(set(privacy) - set(_KEYS))
        if unknown:
            msg = f"Unknown privacy key(s) {unknown}; the keys are {list(_KEYS)}."
            raise ValueError(msg)
        if "epsilon" not in privacy:
            msg = "privacy needs 'epsilon', the target privacy budget (for example 10)."
            raise ValueError(msg)
        accountant = privacy.get("accountant", "rdp")
        if accountant not in _ACCOUNTANTS:
            msg = f"privacy['accountant'] must be one of {_ACCOUNTANTS}, not {accountant!r}."
            raise ValueError(msg)
        delta = privacy.get("delta")
        return cls(
            epsilon=_positive("epsilon", privacy["epsilon"]),
            delta=None if delta is None else _positive("delta", delta),
            max_grad_norm=_positive("max_grad_norm", privacy.get("max_grad_norm", 1.0)),
            accountant=accountant,
        )

    def resolve(self, n_train: int) -> PrivacySpec:
        """The spec with δ set for ``n_train`` samples; an error if δ is not below 1/n."""
        n_train = int(n_train)
        if n_train < 1:
            msg = "Private training needs at least one training sample."
            raise ValueError(msg)
        if self.delta is None:
            return PrivacySpec(self.epsilon, 0.1 / n_train, self.max_grad_norm, self.accountant)
        if self.delta >= 1.0 / n_train:
            msg = (
                f"privacy['delta'] = {self.delta:g} is not below 1/n = {1.0 / n_train:g} for "
                f"{n_train} training samples: such a δ allows releasing a whole sample. Pass a "
                "smaller delta or None (1 / (10 n))."
            )
            raise ValueError(msg)
        return self

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for ``uns`` and model files)."""
        return {key: getattr(self, key) for key in _KEYS}


class PrivacyAccountant:
    """Noise for a planned run of DP-SGD steps, and the (ε, δ) spent so far.

    Parameters
    ----------
    spec
        A resolved :class:`PrivacySpec` (δ set).
    sample_rate
        Probability that a training sample is in a mini-batch (Poisson sampling).
    n_steps
        Planned number of private steps; the noise multiplier is the smallest that keeps
        ε at most ``spec.epsilon`` after that many steps.

    Examples
    --------
    >>> spec = PrivacySpec(epsilon=3.0, delta=1e-5)
    >>> accountant = PrivacyAccountant(spec, sample_rate=0.01, n_steps=1000)
    >>> accountant.step(1000)
    >>> accountant.epsilon <= 3.0
    True
    """

    def __init__(self, spec: PrivacySpec, *, sample_rate: float, n_steps: int):
        if spec.delta is None:
            msg = "PrivacyAccountant needs a resolved spec: call spec.resolve(n_train) first."
            raise ValueError(msg)
        if not 0.0 < float(sample_rate) <= 1.0:
            msg = f"sample_rate must be in (0, 1], not {sample_rate!r}."
            raise ValueError(msg)
        if int(n_steps) < 1:
            msg = f"n_steps must be >= 1, not {n_steps!r}."
            raise ValueError(msg)
        from opacus.accountants.utils import get_noise_multiplier

        self.spec = spec
        self.sample_rate = float(sample_rate)
        self.n_steps = int(n_steps)
        self.noise_multiplier = float(
            get_noise_multiplier(
                target_epsilon=spec.epsilon,
                target_delta=spec.delta,
                sample_rate=self.sample_rate,
                steps=self.n_steps,
                accountant=spec.accountant,
                **self._orders(),
            )
        )
        self.steps_taken = 0

    def step(self, n: int = 1) -> None:
        """Record ``n`` private steps."""
        self.steps_taken += int(n)

    @property
    def epsilon(self) -> float:
        """ε spent by the steps taken so far, at the spec's δ (0 before the first step)."""
        if self.steps_taken == 0:
            return 0.0
        accountant = _opacus_accountant(self.spec.accountant)
        accountant.history = [(self.noise_multiplier, self.sample_rate, self.steps_taken)]
        return float(accountant.get_epsilon(delta=self.spec.delta, **self._orders()))

    def _orders(self) -> dict[str, Any]:
        return {"alphas": list(RDP_ORDERS)} if self.spec.accountant == "rdp" else {}

    def spent(self) -> dict[str, float]:
        """What a release states: ε spent, δ, noise multiplier, sample rate, steps."""
        return {
            "epsilon": self.epsilon,
            "delta": float(self.spec.delta),
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps_taken,
            "max_grad_norm": self.spec.max_grad_norm,
            "accountant": self.spec.accountant,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the accounting exactly after a restart."""
        return {
            "spec": self.spec.as_dict(),
            "sample_rate": self.sample_rate,
            "n_steps": self.n_steps,
            "noise_multiplier": self.noise_multiplier,
            "steps_taken": self.steps_taken,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; an error if it was planned for another run."""
        mine = (self.spec.as_dict(), self.sample_rate, self.n_steps)
        theirs = (dict(state["spec"]), float(state["sample_rate"]), int(state["n_steps"]))
        if mine != theirs:
            msg = (
                "The checkpoint's privacy accounting was planned for another run "
                f"({theirs}) than this one ({mine}); resume with the same privacy, batch "
                "size and number of steps."
            )
            raise ValueError(msg)
        self.noise_multiplier = float(state["noise_multiplier"])
        self.steps_taken = int(state["steps_taken"])


class PoissonBatchSampler(torch.utils.data.Sampler):
    """Mini-batches of Poisson sampling: each sample joins each batch with probability ``q``.

    DP-SGD's accounting assumes this sampling; batch sizes vary and can be 0.

    Parameters
    ----------
    n
        Number of training samples.
    sample_rate
        Probability ``q`` per sample and batch.
    n_batches
        Batches per pass (an "epoch"), usually ``round(1 / q)``.
    seed
        Seed of the first pass; pass ``k`` uses ``seed + k``, so a run repeats.
    rank, world_size
        With data parallelism, process ``rank`` of ``world_size`` draws from its share of
        the samples (every ``world_size``-th from ``rank``) with its own random stream; the
        union of the processes' batches is a Poisson sample of all ``n``.

    Examples
    --------
    >>> sampler = PoissonBatchSampler(100, sample_rate=0.1, n_batches=10, seed=0)
    >>> len(list(sampler))
    10
    """

    def __init__(
        self,
        n: int,
        *,
        sample_rate: float,
        n_batches: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= int(rank) < int(world_size):
            msg = f"Need 0 <= rank < world_size, not rank={rank}, world_size={world_size}."
            raise ValueError(msg)
        if int(n) < 1 or not 0.0 < float(sample_rate) <= 1.0 or int(n_batches) < 1:
            msg = (
                f"PoissonBatchSampler needs n >= 1, 0 < sample_rate <= 1 and n_batches >= 1; "
                f"got n={n}, sample_rate={sample_rate}, n_batches={n_batches}."
            )
            raise ValueError(msg)
        self.n = int(n)
        self.sample_rate = float(sample_rate)
        self.n_batches = int(n_batches)
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self._passes = 0

    def __len__(self) -> int:
        return self.n_batches

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass the ``epoch``-th (Lightning calls it, so a resumed run repeats)."""
        self._passes = int(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        if self.world_size == 1:
            rng = np.random.default_rng(self.seed + self._passes)
        else:
            rng = np.random.default_rng((self.seed + self._passes, self.rank))
        self._passes += 1
        mine = np.arange(self.rank, self.n, self.world_size)
        for _ in range(self.n_batches):
            yield mine[rng.random(len(mine)) < self.sample_rate].tolist()


def per_sample_gradients(
    module: torch.nn.Module,
    loss_of_one: Callable[..., torch.Tensor],
    *batch: torch.Tensor,
    parameters: Iterable[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Gradient of ``loss_of_one`` for each sample of a mini-batch separately.

    Parameters
    ----------
    module
        The module whose trainable parameters are differentiated.
    loss_of_one
        ``loss_of_one(call, *sample)``: the scalar loss of one sample, where
        ``call(*inputs)`` runs ``module`` with the parameters being differentiated. Samples
        are the rows of ``batch`` without their batch dimension. Gradients with respect
        to inputs inside the loss (a gradient penalty) must use :func:`torch.func.grad`,
        not :func:`torch.autograd.grad`.
    *batch
        Tensors with the samples along the first dimension.
    parameters
        Names of the parameters to differentiate (default: all that require a gradient);
        the others stay fixed.

    Returns
    -------
    ``{parameter name: tensor of shape (batch size, *parameter shape)}``.

    Examples
    --------
    >>> lin = torch.nn.Linear(3, 1)
    >>> grads = per_sample_gradients(lin, lambda call, x: call(x).sum(), torch.ones(4, 3))
    >>> tuple(grads["weight"].shape)
    (4, 1, 3)
    """
    from torch.func import functional_call, grad, vmap

    wanted = None if parameters is None else set(parameters)
    params = {
        k: v.detach()
        for k, v in module.named_parameters()
        if v.requires_grad and (wanted is None or k in wanted)
    }
    buffers = {k: v.detach() for k, v in module.named_buffers()}
    if not params:
        msg = (
            f"No trainable parameter of {type(module).__name__} to differentiate"
            + ("" if wanted is None else f" among parameters={sorted(wanted)}")
            + f"; its parameters are {[k for k, _ in module.named_parameters()][:10]}."
        )
        raise ValueError(msg)
    if batch[0].shape[0] == 0:  # Poisson sampling can draw an empty batch
        return {k: v.new_zeros((0, *v.shape)) for k, v in params.items()}

    def loss(p, *sample):
        def call(*inputs):
            return functional_call(module, (p, buffers), inputs)

        return loss_of_one(call, *sample)

    return vmap(grad(loss), in_dims=(None,) + (0,) * len(batch), randomness="different")(
        params, *batch
    )


@doctest_skip("needs a module, a loss and a mini-batch")
def clipped_noisy_mean(
    per_sample: Mapping[str, torch.Tensor],
    *,
    max_grad_norm: float,
    noise_multiplier: float,
    expected_batch_size: float,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """DP-SGD's gradient: clip each sample's gradient to norm ``C``, sum, add noise, average.

    Each sample's gradient (all parameters together) is scaled to norm at most
    ``max_grad_norm``; the clipped gradients are summed, Gaussian noise of standard deviation
    ``noise_multiplier * max_grad_norm`` is added to every coordinate, and the sum is divided
    by the expected batch size ``q n`` (not the drawn one, which would leak it).

    Inside a process group of ``W`` processes (data parallelism) each process adds noise of
    variance ``1 / W`` of that and the results are summed over the processes, so the update
    is the same mechanism over the union of their batches (``expected_batch_size`` is then
    the expected size of that union).

    Examples
    --------
    >>> grads = per_sample_gradients(lin, loss_of_one, x)
    >>> noisy = clipped_noisy_mean(grads, max_grad_norm=1.0, noise_multiplier=1.1,
    ...                            expected_batch_size=32)
    >>> for name, p in lin.named_parameters():
    ...     p.grad = noisy[name]
    """
    names = list(per_sample)
    b = per_sample[names[0]].shape[0]
    flat = torch.cat(
        [per_sample[k].reshape(b, math.prod(per_sample[k].shape[1:])) for k in names], 1
    )
    norms = flat.norm(dim=1)
    factor = (max_grad_norm / (norms + 1e-12)).clamp(max=1.0)
    world = _world_size()
    std = noise_multiplier * max_grad_norm / math.sqrt(world)
    out = {}
    for k in names:
        g = per_sample[k]
        summed = torch.einsum("b,b...->...", factor.to(g.dtype), g)
        noise = torch.randn(summed.shape, generator=generator, dtype=g.dtype, device=g.device)
        out[k] = (summed + std * noise) / float(expected_batch_size)
        if world > 1:
            torch.distributed.all_reduce(out[k])
    return out


def _world_size() -> int:
    """Processes of the current process group (1 outside data parallelism)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def clip_rows(z: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Rows of ``z`` scaled to Euclidean norm at most ``max_norm`` (a new tensor).

    Parameters
    ----------
    z
        Samples x features.
    max_norm
        Largest norm a row keeps; longer rows are shrunk onto it, shorter ones unchanged.

    Returns
    -------
    A tensor like ``z``; ``z`` itself is not modified.

    Examples
    --------
    >>> clip_rows(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """
    norms = z.norm(dim=1, keepdim=True)
    return z * (max_norm / norms.clamp_min(1e-12)).clamp(max=1.0)


def private_moments(
    z: torch.Tensor,
    codes: torch.Tensor,
    n_classes: int,
    *,
    max_norm: float,
    noise_multiplier: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class sums and the pooled second moment of clipped rows, by the Gaussian mechanism.

    Two releases, each with L2 sensitivity bounded by clipping every row to norm ``C =
    max_norm``: the per-class sums (classes are disjoint, so adding or removing one sample
    changes one class's sum by at most ``C``) with noise ``N(0, (sigma C)^2)`` per coordinate,
    and the second moment ``sum_i z_i z_i^T`` over all rows (sensitivity ``C^2`` in Frobenius
    norm) with symmetric noise ``N(0, (sigma C^2)^2)`` per entry of the upper triangle. With
    ``sigma = PrivacyAccountant(spec, sample_rate=1.0, n_steps=2).noise_multiplier`` the pair
    is (epsilon, delta)-DP. The class counts are not released (they are the covariate
    frequencies, treated as public).

    Parameters
    ----------
    z
        Samples x features (e.g. coordinates in a public or data-independent subspace).
    codes
        Class of each row, integers in ``[0, n_classes)``.
    n_classes
        Number of classes (a class without rows still gets a noisy sum: its absence is not
        revealed).
    max_norm
        Clipping bound ``C``.
    noise_multiplier
        ``sigma``.
    generator
        Random generator of the noise.

    Returns
    -------
    ``(sums, second_moment)``: ``(n_classes, d)`` and ``(d, d)``, float64.

    Examples
    --------
    >>> z = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    >>> codes = torch.arange(100) % 2
    >>> sums, m2 = private_moments(z, codes, 2, max_norm=3.0, noise_multiplier=0.0)
    >>> tuple(sums.shape), bool(torch.allclose(m2, m2.T))
    ((2, 4), True)
    """
    if max_norm <= 0 or noise_multiplier < 0:
        msg = f"Need max_norm > 0 and noise_multiplier >= 0, not {max_norm}, {noise_multiplier}."
        raise ValueError(msg)
    codes = torch.as_tensor(codes, dtype=torch.long)
    if len(codes) != len(z) or (len(codes) and (codes.min() < 0 or codes.max() >= n_classes)):
        msg = f"codes must hold one class in [0, {n_classes}) per row of z."
        raise ValueError(msg)
    zc = clip_rows(z.double(), max_norm)
    d = zc.shape[1]
    sums = torch.zeros(n_classes, d, dtype=torch.float64).index_add_(0, codes, zc)
    sums += (
        noise_multiplier
        * max_norm
        * torch.randn(n_classes, d, generator=generator, dtype=torch.float64)
    )
    noise = torch.randn(d, d, generator=generator, dtype=torch.float64).triu()
    noise = noise + noise.triu(1).T
    second = zc.T @ zc + noise_multiplier * max_norm**2 * noise
    return sums, second
