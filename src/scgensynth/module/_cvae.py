from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from scvi.module.base import LossOutput
from scvi.nn import Encoder, FCLayers
from torch import nn
from torch.distributions import Normal, kl_divergence

from scgensynth._utils._random import RowNoise, draw_noise

from ._base import ConditionalGeneratorModule


class CVAEModule(ConditionalGeneratorModule):
    """Conditional variational autoencoder on scaled expression (Gaussian likelihood).

    Encoder (scvi-tools' :class:`~scvi.nn.Encoder`) over ``[x ‖ continuous covariates]``
    with the categorical covariates injected (one-hot) into every layer gives
    ``q(z | x, c)``; the decoder (scvi-tools' :class:`~scvi.nn.FCLayers`, covariates injected
    likewise) maps ``[z ‖ continuous covariates]`` to the mean of a Gaussian over the
    per-gene standardized values, with one learned variance per gene. Loss: negative
    log-likelihood plus ``kl_weight`` x KL(q(z | x, c) ‖ N(0, I)).

    Generation draws ``z ~ N(0, I)`` and decodes it with the requested covariates; the
    decoder mean is returned, plus the learned per-gene noise when ``sample_noise``.

    Encoder and decoder layers use batch norm (``use_batch_norm``, scvi-tools' default);
    batch norm mixes the samples of a mini-batch, so differentially private training
    (:class:`~scgensynth.train.PrivateCVAETrainingPlan`) needs ``use_batch_norm=False``, with
    ``use_layer_norm=True`` for a per-sample normalisation instead.

    Examples
    --------
    >>> module = CVAEModule(n_input=50, n_cats_per_cov=[3], n_latent=4, n_hidden=16)
    >>> cat = torch.tensor([[0], [2]])
    >>> module.generate_scaled(2, cat).shape
    torch.Size([2, 50])
    >>> module.encode(torch.rand(2, 50), cat).loc.shape  # q(z | x, c)
    torch.Size([2, 4])
    """

    noise_input: ClassVar[str | None] = "z"

    @property
    def noise_width(self) -> int:
        """Width of the latent ``z`` the decoder maps to expression values."""
        return int(self.n_latent)

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        n_latent: int = 32,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.1,
        sample_noise: bool = False,
        scaling: str = "standardize",
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        self.n_latent = int(n_latent)
        norms = {"use_batch_norm": bool(use_batch_norm), "use_layer_norm": bool(use_layer_norm)}
        self.sample_noise = bool(sample_noise)
        cats = self.n_cats_per_cov
        self.encoder = Encoder(
            self.n_input + self.n_continuous_cov,
            self.n_latent,
            n_cat_list=cats,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
            return_dist=True,
            **norms,
        )
        self.decoder = FCLayers(
            self.n_latent + self.n_continuous_cov,
            n_hidden,
            n_cat_list=cats,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=0.0,
            **norms,
        )
        self.px_mean = nn.Linear(n_hidden, self.n_input)
        self.px_log_var = nn.Parameter(torch.zeros(self.n_input))

    def _with_cont(self, t: torch.Tensor, cont: torch.Tensor | None) -> torch.Tensor:
        cont = self.standardize_continuous(cont)
        return t if cont is None else torch.cat([t, cont], dim=1)

    @staticmethod
    def _cats(cat: torch.Tensor | None) -> list[torch.Tensor]:
        return [] if cat is None else [cat[:, i : i + 1] for i in range(cat.shape[1])]

    # -- the scvi-tools interface -----------------------------------------------------------
    def inference(self, x, cat=None, cont=None, **kwargs):
        """``q(z | x, c)`` and a reparametrised sample."""
        x_scaled = self.scaling(x)
        qz, z = self.encoder(self._with_cont(x_scaled, cont), *self._cats(cat))
        return {"x_scaled": x_scaled, "qz": qz, "z": z, "cat": cat, "cont": cont}

    def encode(
        self, x: torch.Tensor, cat: torch.Tensor | None = None, cont: torch.Tensor | None = None
    ) -> Normal:
        """The posterior ``q(z | x, c)`` of expression values ``x`` (on the input's scale)."""
        qz, _ = self.encoder(self._with_cont(self.scaling(x), cont), *self._cats(cat))
        return qz

    def _get_generative_input(self, tensors, inference_outputs, **kwargs):
        return {
            "z": inference_outputs["z"],
            "cat": inference_outputs["cat"],
            "cont": inference_outputs["cont"],
        }

    def generative(self, z=None, cat=None, cont=None, n: int | None = None, **kwargs):
        """Decoder mean in network space."""
        if z is None:
            return {"x_scaled": self.generate_scaled(n or self._batch_size(cat, cont), cat, cont)}
        return {"px_mean": self.decode(z, cat, cont)}

    def decode(self, z, cat=None, cont=None) -> torch.Tensor:
        """Mean of ``p(x | z, c)`` in network space."""
        h = self.decoder(self._with_cont(z, cont), *self._cats(cat))
        return self.px_mean(h)

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0):
        """Gaussian negative log-likelihood (summed over genes) + weighted KL, batch mean."""
        x = inference_outputs["x_scaled"]
        mean = generative_outputs["px_mean"]
        nll = -Normal(mean, torch.exp(0.5 * self.px_log_var)).log_prob(x).sum(-1)
        qz = inference_outputs["qz"]
        kl = kl_divergence(qz, Normal(torch.zeros_like(qz.loc), torch.ones_like(qz.scale))).sum(-1)
        loss = torch.mean(nll + kl_weight * kl)
        return LossOutput(loss=loss, reconstruction_loss=nll, kl_local=kl)

    def generate_scaled(
        self,
        n: int,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Decode ``z ~ N(0, I)`` (or the given ``z``) with the covariates."""
        device = self.px_log_var.device
        if z is None:
            z = draw_noise(generator, (n, self.n_latent), device=device)
        x = self.decode(z, cat, cont)
        if self.sample_noise:
            noise = draw_noise(generator, tuple(x.shape), device=device)
            x = x + noise * torch.exp(0.5 * self.px_log_var)
        return x
