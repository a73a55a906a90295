"""The Gaussian diffusion process: noise schedules, the forward process and the samplers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from scgensynth._utils._random import RowNoise, draw_noise

SCHEDULES = ("linear", "quadratic")
SAMPLERS = ("ddpm", "ddim")

#: ``eps_fn(x_t, t) -> predicted noise``, with ``t`` a tensor of shape ``(n,)``
NoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def beta_schedule(
    kind: str, n_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> np.ndarray:
    """Variances ``β_1..β_T`` of the forward process (Ho et al. 2020).

    ``"linear"``: evenly spaced from ``beta_start`` to ``beta_end``; ``"quadratic"``: evenly
    spaced in ``sqrt(β)`` then squared (smaller steps early, as in Nichol & Dhariwal's
    comparison).

    Examples
    --------
    >>> b = beta_schedule("linear", 1000)
    >>> float(b[0]), float(b[-1])
    (0.0001, 0.02)
    """
    if kind not in SCHEDULES:
        msg = f"beta_schedule must be one of {SCHEDULES}, not {kind!r}."
        raise ValueError(msg)
    if int(n_timesteps) < 2:
        msg = f"n_timesteps must be at least 2, not {n_timesteps}."
        raise ValueError(msg)
    if not 0 < beta_start < beta_end < 1:
        msg = f"Need 0 < beta_start < beta_end < 1, got {beta_start} and {beta_end}."
        raise ValueError(msg)
    if kind == "linear":
        return np.linspace(beta_start, beta_end, int(n_timesteps), dtype=np.float64)
    return np.linspace(beta_start**0.5, beta_end**0.5, int(n_timesteps), dtype=np.float64) ** 2


class GaussianDiffusion(nn.Module):
    """Forward noising and reverse samplers of a denoising diffusion model (ε-prediction).

    The process knows nothing of the network: samplers take a function
    ``eps_fn(x_t, t)`` that predicts the noise. Time steps are 0-based, ``t = 0 .. T-1``.

    - forward: ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε`` (:meth:`q_sample`);
    - ancestral DDPM (Ho et al. 2020): ``T`` steps with the posterior variance ``β̃_t``
      (:meth:`sample_ddpm`);
    - DDIM (Song et al. 2021): any number of evenly spaced steps, ``eta = 0`` deterministic,
      ``eta = 1`` the DDPM-like stochastic sampler (:meth:`sample_ddim`).

    Parameters
    ----------
    n_timesteps
        Number of diffusion steps ``T``.
    schedule
        ``"linear"`` or ``"quadratic"`` β schedule (:func:`beta_schedule`).
    beta_start, beta_end
        First and last ``β``.

    Examples
    --------
    >>> diffusion = GaussianDiffusion(1000)
    >>> x0 = torch.randn(8, 5)
    >>> xt = diffusion.q_sample(x0, torch.full((8,), 999), torch.randn(8, 5))
    >>> out = diffusion.sample_ddim(lambda x, t: torch.zeros_like(x), torch.randn(8, 5), 50)
    >>> out.shape
    torch.Size([8, 5])
    """

    def __init__(
        self,
        n_timesteps: int = 1000,
        schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ):
        super().__init__()
        betas = beta_schedule(schedule, n_timesteps, beta_start, beta_end)
        alphas_cumprod = np.cumprod(1.0 - betas)
        prev = np.concatenate([[1.0], alphas_cumprod[:-1]])
        posterior_var = betas * (1.0 - prev) / (1.0 - alphas_cumprod)
        self.n_timesteps = int(n_timesteps)
        self.schedule = schedule

        def buf(name, values):
            self.register_buffer(name, torch.as_tensor(values, dtype=torch.float32), False)

        buf("betas", betas)
        buf("alphas_cumprod", alphas_cumprod)
        buf("sqrt_alphas_cumprod", np.sqrt(alphas_cumprod))
        buf("sqrt_one_minus_alphas_cumprod", np.sqrt(1.0 - alphas_cumprod))
        buf("sqrt_recip_alphas", 1.0 / np.sqrt(1.0 - betas))
        buf("eps_coef", betas / np.sqrt(1.0 - alphas_cumprod))
        buf("posterior_std", np.sqrt(posterior_var))

    @staticmethod
    def _at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return values[t][:, None]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noisy ``x_t`` drawn from ``q(x_t | x_0)`` with the given noise."""
        return (
            self._at(self.sqrt_alphas_cumprod, t) * x0
            + self._at(self.sqrt_one_minus_alphas_cumprod, t) * noise
        )

    def sample_timesteps(self, n: int, device=None) -> torch.Tensor:
        """Uniform random time steps for training."""
        return torch.randint(0, self.n_timesteps, (n,), device=device)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``x_0`` implied by ``x_t`` and a noise estimate."""
        return (x_t - self._at(self.sqrt_one_minus_alphas_cumprod, t) * eps) / self._at(
            self.sqrt_alphas_cumprod, t
        )

    @staticmethod
    def noise_like(x: torch.Tensor, generator: torch.Generator | RowNoise | None) -> torch.Tensor:
        """Standard normal noise shaped like ``x`` (see :func:`draw_noise`)."""
        return draw_noise(generator, tuple(x.shape), device=x.device)

    def sample_ddpm(
        self,
        eps_fn: NoiseFn,
        x_T: torch.Tensor,
        generator: torch.Generator | RowNoise | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling through all ``T`` steps (Ho et al. 2020, Algorithm 2).

        ``x_{t-1} = (x_t - β_t / sqrt(1 - ᾱ_t) ε) / sqrt(α_t) + σ_t z`` with
        ``σ_t² = β̃_t`` (the posterior variance) and no noise at the last step.
        """
        x = x_T
        n = x.shape[0]
        for step in range(self.n_timesteps - 1, -1, -1):
            t = torch.full((n,), step, device=x.device, dtype=torch.long)
            eps = eps_fn(x, t)
            x = self.sqrt_recip_alphas[step] * (x - self.eps_coef[step] * eps)
            if step > 0:
                x = x + self.posterior_std[step] * self.noise_like(x, generator)
        return x

    def ddim_timesteps(self, n_steps: int) -> np.ndarray:
        """The ``n_steps`` evenly spaced time steps DDIM visits, in decreasing order."""
        n_steps = int(n_steps)
        if not 1 <= n_steps <= self.n_timesteps:
            msg = f"n_sampling_steps must be between 1 and {self.n_timesteps}, not {n_steps}."
            raise ValueError(msg)
        steps = np.linspace(0, self.n_timesteps - 1, n_steps).round().astype(np.int64)
        return np.unique(steps)[::-1].copy()

    def sample_ddim(
        self,
        eps_fn: NoiseFn,
        x_T: torch.Tensor,
        n_steps: int = 50,
        eta: float = 0.0,
        generator: torch.Generator | RowNoise | None = None,
    ) -> torch.Tensor:
        """DDIM sampling (Song et al. 2021, eq. 12) over ``n_steps`` evenly spaced steps.

        ``x_prev = sqrt(ᾱ_prev) x̂_0 + sqrt(1 - ᾱ_prev - σ²) ε + σ z`` with
        ``σ = eta · sqrt((1 - ᾱ_prev) / (1 - ᾱ_t)) · sqrt(1 - ᾱ_t / ᾱ_prev)``.
        """
        if eta < 0:
            msg = f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like), not {eta}."
            raise ValueError(msg)
        steps = self.ddim_timesteps(n_steps)
        x = x_T
        n = x.shape[0]
        ones = torch.ones((), device=x.device)
        for i, step in enumerate(steps):
            t = torch.full((n,), int(step), device=x.device, dtype=torch.long)
            eps = eps_fn(x, t)
            a_t = self.alphas_cumprod[step]
            a_prev = self.alphas_cumprod[steps[i + 1]] if i + 1 < len(steps) else ones
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            sigma = eta * ((1 - a_prev) / (1 - a_t)).sqrt() * (1 - a_t / a_prev).sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp_min(0).sqrt() * eps
            if eta > 0 and i + 1 < len(steps):
                x = x + sigma * self.noise_like(x, generator)
        return x
