from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scgensynth._utils._random import RowNoise, draw_noise

from ._base import ConditionalGeneratorModule, FittedStatisticsMixin

_DATA_BUFFERS = ("data", "data_cat", "data_cont")


class NoiseModule(FittedStatisticsMixin, ConditionalGeneratorModule):
    """Stored real samples plus Gaussian noise: the noise-augmentation baseline.

    The module keeps the training samples in network space (per-gene standardized) and their
    covariates as buffers, so they are saved and loaded with the model. A sample for a
    covariate row is a stored sample with exactly that row's categorical covariates (drawn
    uniformly among them) plus ``N(0, noise_variance)`` noise on every gene. With continuous
    covariates the draw is among the stored samples of that categorical combination whose
    standardized continuous covariates are nearest to the requested ones (uniformly among
    ties), so asking for the covariates of a training sample resamples that sample (or one
    with the same covariates).

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov
        Number of categories of each categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    noise_variance
        Variance of the Gaussian noise added in network space.
    scaling
        Scaling mode (see :class:`~scgensynth.nn.ExpressionScaling`).

    Examples
    --------
    >>> module = NoiseModule(n_input=3, n_cats_per_cov=[2], noise_variance=0.1)
    >>> module.set_data(torch.zeros(4, 3), cat=torch.tensor([[0], [0], [1], [1]]))
    >>> module.n_stored
    4
    >>> gen = torch.Generator().manual_seed(0)
    >>> module.generate_scaled(5, cat=torch.ones(5, 1, dtype=torch.long), generator=gen).shape
    torch.Size([5, 3])
    """

    fitted_buffers = _DATA_BUFFERS

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        noise_variance: float = 0.1,
        scaling: str = "standardize",
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        if not np.isfinite(noise_variance) or noise_variance < 0:
            msg = f"noise_variance must be a finite number >= 0, not {noise_variance}."
            raise ValueError(msg)
        self.noise_variance = float(noise_variance)
        n_cat = len(self.n_cats_per_cov)
        self.register_buffer("data", torch.zeros(0, self.n_input))
        self.register_buffer("data_cat", torch.zeros(0, n_cat, dtype=torch.long))
        self.register_buffer("data_cont", torch.zeros(0, self.n_continuous_cov))

    @property
    def n_stored(self) -> int:
        """Number of stored real samples."""
        return int(self.data.shape[0])

    def set_data(
        self,
        x_scaled: torch.Tensor,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
    ) -> None:
        """Store real samples (network space) and their covariates (codes, raw values)."""
        n = x_scaled.shape[0]
        device = self.scaling.mean.device
        n_cat = len(self.n_cats_per_cov)
        if cat is None:
            cat = torch.zeros(n, n_cat, dtype=torch.long)
        if cont is None:
            cont = torch.zeros(n, self.n_continuous_cov)
        if x_scaled.shape[1] != self.n_input or cat.shape != (n, n_cat):
            msg = (
                f"Expected {self.n_input} genes and {n_cat} categorical covariate(s), got "
                f"samples of shape {tuple(x_scaled.shape)} and codes of {tuple(cat.shape)}."
            )
            raise ValueError(msg)
        self.data = x_scaled.detach().float().to(device)
        self.data_cat = cat.detach().long().to(device)
        self.data_cont = cont.detach().float().reshape(n, self.n_continuous_cov).to(device)

    # -- sampling -----------------------------------------------------------------------------
    def source_indices(
        self,
        n: int,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
    ) -> torch.Tensor:
        """Index of the stored sample each generated sample starts from, shape ``(n,)``."""
        if self.n_stored == 0:
            msg = "The module stores no samples yet; train the model (or call set_data) first."
            raise RuntimeError(msg)
        u = draw_noise(generator, (n,), dtype=torch.float64, uniform=True)  # one draw per row
        has_cat = cat is not None and len(self.n_cats_per_cov) > 0
        has_cont = cont is not None and self.n_continuous_cov > 0
        stored_keys = self.combination_keys(self.data_cat).cpu() if has_cat else None
        keys = self.combination_keys(cat.cpu()) if has_cat else torch.zeros(n, dtype=torch.long)
        if has_cont:  # in float64, so equal distances (ties) stay equal
            mean, std = self.cont_mean.double().cpu(), self.cont_std.double().cpu()
            cont_std = (cont.double().cpu() - mean) / std
            data_cont = (self.data_cont.double().cpu() - mean) / std
        out = torch.empty(n, dtype=torch.long)
        for key in torch.unique(keys).tolist():
            rows = torch.nonzero(keys == key).ravel()
            if has_cat:
                pool = torch.nonzero(stored_keys == key).ravel()
            else:
                pool = torch.arange(self.n_stored)
            if len(pool) == 0:
                codes = cat[rows[0]].tolist()
                msg = (
                    f"No stored sample has the categorical covariate codes {codes}; the noise "
                    "baseline can only resample combinations seen in training."
                )
                raise ValueError(msg)
            if not has_cont:
                pick = (u[rows] * len(pool)).long().clamp_max(len(pool) - 1)
                out[rows] = pool[pick]
                continue
            d = torch.cdist(cont_std[rows], data_cont[pool])  # rows x pool
            nearest = d <= d.min(dim=1, keepdim=True).values + 1e-9
            n_ties = nearest.sum(dim=1)
            pick = (u[rows] * n_ties).long().clamp_max(n_ties - 1)  # which of the ties
            rank = nearest.long().cumsum(dim=1) - 1  # order of each tie within its row
            col = ((rank == pick[:, None]) & nearest).long().argmax(dim=1)
            out[rows] = pool[col]
        return out

    def generate_scaled(
        self,
        n: int,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Stored samples matching the covariates plus Gaussian noise, in network space."""
        idx = self.source_indices(n, cat, cont, generator)
        noise = draw_noise(generator, (n, self.n_input))
        noise = noise.to(self.data.device) * self.noise_variance**0.5
        return self.data[idx.to(self.data.device)] + noise
