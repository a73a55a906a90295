from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar

import torch
from scvi.module.base import LossOutput

from scgensynth._utils._random import RowNoise
from scgensynth.nn import ConditionalDenoiser

from ._base import ConditionalGeneratorModule
from ._diffusion import SAMPLERS, GaussianDiffusion


class DDPMModule(ConditionalGeneratorModule):
    """Conditional denoising diffusion model on scaled expression (ε-prediction).

    A :class:`~scgensynth.nn.ConditionalDenoiser` (the network) and a
    :class:`GaussianDiffusion` (the process) kept apart, as in lucidrains'
    denoising-diffusion-pytorch. Training minimises ``‖ε - ε_θ(x_t, t, c)‖²`` with uniform
    ``t``; with probability ``p_uncond`` a sample's covariates are replaced by the learned null
    condition, so the same network also learns the unconditional noise and classifier-free
    guidance (Ho & Salimans 2022) works at sampling:
    ``ε̃ = ε_θ(x_t, t, ∅) + w (ε_θ(x_t, t, c) - ε_θ(x_t, t, ∅))``, ``w = guidance_scale``
    (1: plain conditional sampling, > 1: sharper conditions, 0: unconditional).

    An exponential moving average of the network's weights (``ema_decay``) is kept in
    ``ema_denoiser`` and used for sampling.

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov, n_continuous_cov
        Covariates.
    n_hidden, n_blocks, n_time_embedding, embedding_dims, dropout
        Network (see :class:`~scgensynth.nn.ConditionalDenoiser`).
    n_timesteps, beta_schedule, beta_start, beta_end
        Process (see :class:`GaussianDiffusion`).
    p_uncond
        Rate at which covariates are dropped during training (0 disables guidance).
    ema_decay
        Decay of the weight average (0 disables it).
    sampler, n_sampling_steps, eta, guidance_scale
        Default sampling settings, used by model selection and ``generate``.
    scaling
        Scaling mode (see :class:`~scgensynth.nn.ExpressionScaling`).

    Examples
    --------
    >>> module = DDPMModule(n_input=30, n_cats_per_cov=[3], n_hidden=32, n_blocks=1)
    >>> cat = torch.tensor([[0], [2]])
    >>> module.generate_scaled(2, cat, n_sampling_steps=10).shape
    torch.Size([2, 30])
    """

    noise_input: ClassVar[str | None] = "noise"

    @property
    def noise_width(self) -> int:
        """Width of the starting point ``x_T`` (one value per gene)."""
        return int(self.n_input)

    def covariate_embedder(self):
        """The covariate embedding of the denoiser used for sampling (the weight average)."""
        return self.generator_embedding

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        n_hidden: int = 256,
        n_blocks: int = 3,
        n_time_embedding: int = 128,
        embedding_dims: Sequence[int] | None = None,
        dropout: float = 0.0,
        n_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        p_uncond: float = 0.1,
        ema_decay: float = 0.999,
        sampler: str = "ddim",
        n_sampling_steps: int = 50,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        scaling: str = "standardize",
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        if not 0 <= p_uncond < 1:
            msg = f"p_uncond (covariate dropout rate) must be in [0, 1), not {p_uncond}."
            raise ValueError(msg)
        if not 0 <= ema_decay < 1:
            msg = f"ema_decay must be in [0, 1) (0 disables the average), not {ema_decay}."
            raise ValueError(msg)
        self.denoiser = ConditionalDenoiser(
            self.n_input, self.n_cats_per_cov, self.n_continuous_cov, n_hidden=n_hidden,
            n_blocks=n_blocks, n_time_embedding=n_time_embedding, embedding_dims=embedding_dims,
            dropout=dropout,
        )  # fmt: skip
        self.ema_denoiser = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.diffusion = GaussianDiffusion(n_timesteps, beta_schedule, beta_start, beta_end)
        self.p_uncond = float(p_uncond)
        self.ema_decay = float(ema_decay)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self.sampling_defaults = {
            "sampler": sampler,
            "n_sampling_steps": int(n_sampling_steps),
            "eta": float(eta),
            "guidance_scale": float(guidance_scale),
        }
        self.check_sampling(**self.sampling_defaults)

    @property
    def generator_embedding(self):
        """Covariate embeddings used for generation (those of the weight average)."""
        return self.ema_denoiser.embedding

    # -- training -----------------------------------------------------------------------------
    def diffusion_loss(self, x_scaled, cat=None, cont=None) -> torch.Tensor:
        """Per-sample mean squared error of the noise prediction, shape ``(n,)``."""
        n = x_scaled.shape[0]
        t = self.diffusion.sample_timesteps(n, x_scaled.device)
        noise = torch.randn_like(x_scaled)
        x_t = self.diffusion.q_sample(x_scaled, t, noise)
        drop = None
        if self.p_uncond > 0 and self.denoiser.n_condition:
            drop = torch.rand(n, device=x_scaled.device) < self.p_uncond
        eps = self.denoiser(x_t, t, cat, self.standardize_continuous(cont), drop_condition=drop)
        return ((eps - noise) ** 2).mean(-1)

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the weight average towards the current weights.

        The decay warms up as ``min(ema_decay, (1 + k) / (10 + k))`` after ``k`` updates, so
        the average does not remember the random initial weights.
        """
        k = int(self.ema_updates)
        decay = min(self.ema_decay, (1 + k) / (10 + k))
        for ema, p in zip(self.ema_denoiser.parameters(), self.denoiser.parameters()):
            ema.lerp_(p.detach(), 1 - decay)
        for ema, b in zip(self.ema_denoiser.buffers(), self.denoiser.buffers()):
            ema.copy_(b)
        self.ema_updates += 1

    # -- the scvi-tools interface -----------------------------------------------------------
    def _get_generative_input(self, tensors, inference_outputs, **kwargs):
        return {
            "x_scaled": inference_outputs["x_scaled"],
            "cat": inference_outputs["cat"],
            "cont": inference_outputs["cont"],
        }

    def generative(self, x_scaled=None, cat=None, cont=None, n=None, **kwargs):
        """Noise-prediction errors of a mini-batch (or samples when no data are given)."""
        if x_scaled is None:
            n = n if n is not None else self._batch_size(cat, cont)
            return {"x_scaled": self.generate_scaled(n, cat, cont, **kwargs)}
        return {"mse": self.diffusion_loss(x_scaled, cat, cont)}

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Mean noise-prediction error of the mini-batch."""
        mse = generative_outputs["mse"]
        return LossOutput(loss=mse.mean(), reconstruction_loss=mse, n_obs_minibatch=len(mse))

    # -- sampling -----------------------------------------------------------------------------
    def check_sampling(self, sampler, n_sampling_steps, eta, guidance_scale) -> None:
        """Refuse sampling settings that make no sense, saying why."""
        if sampler not in SAMPLERS:
            msg = f"sampler must be one of {SAMPLERS}, not {sampler!r}."
            raise ValueError(msg)
        if sampler == "ddim":
            self.diffusion.ddim_timesteps(n_sampling_steps)
        if eta < 0:
            msg = f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like), not {eta}."
            raise ValueError(msg)
        if guidance_scale < 0:
            msg = (
                "guidance_scale must be >= 0 (1: conditional, 0: unconditional), "
                f"not {guidance_scale}."
            )
            raise ValueError(msg)
        if guidance_scale != 1 and not self.denoiser.n_condition:
            msg = "guidance_scale needs covariates; this model is unconditional (use 1.0)."
            raise ValueError(msg)
        if guidance_scale != 1 and self.p_uncond == 0:
            msg = (
                "guidance_scale != 1 needs a model trained with covariate dropout "
                "(p_uncond > 0); this one was trained with p_uncond=0."
            )
            raise ValueError(msg)

    def noise_fn(self, cat=None, cont=None, cat_embedded=None, guidance_scale: float = 1.0):
        """``eps_fn(x_t, t)`` of the weight-averaged network for fixed covariates."""
        net = self.ema_denoiser if self.ema_decay > 0 else self.denoiser
        cont = self.standardize_continuous(cont)

        def conditional(x, t):
            return net(x, t, cat, cont, cat_embedded=cat_embedded)

        if guidance_scale == 1:
            return conditional
        drop_all = None

        def guided(x, t):
            nonlocal drop_all
            if drop_all is None:
                drop_all = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            uncond = net(x, t, drop_condition=drop_all)
            if guidance_scale == 0:
                return uncond
            return uncond + guidance_scale * (conditional(x, t) - uncond)

        return guided

    def generate_scaled(
        self,
        n: int,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
        cat_embedded=None,
        noise: torch.Tensor | None = None,
        sampler: str | None = None,
        n_sampling_steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Samples in network space.

        ``noise`` (shape ``(n, n_input)``) fixes the starting point ``x_T``; with
        ``sampler="ddim"`` and ``eta=0`` the sample is then a deterministic function of it.
        Unset sampling arguments take the module's ``sampling_defaults``.
        """
        d = self.sampling_defaults
        sampler = d["sampler"] if sampler is None else sampler
        n_sampling_steps = d["n_sampling_steps"] if n_sampling_steps is None else n_sampling_steps
        eta = d["eta"] if eta is None else float(eta)
        guidance_scale = d["guidance_scale"] if guidance_scale is None else float(guidance_scale)
        self.check_sampling(sampler, n_sampling_steps, eta, guidance_scale)
        device = self.scaling.mean.device
        if noise is None:
            noise = self.diffusion.noise_like(
                torch.empty(n, self.n_input, device=device), generator
            )
        x_T = noise.to(device)
        eps_fn = self.noise_fn(cat, cont, cat_embedded, guidance_scale)
        if sampler == "ddpm":
            return self.diffusion.sample_ddpm(eps_fn, x_T, generator=generator)
        return self.diffusion.sample_ddim(eps_fn, x_T, n_sampling_steps, eta, generator=generator)
