from __future__ import annotations

import math
import warnings

import torch
from torch import nn

SCALING_MODES = ("counts", "log1p", "standardize", "none")


class ExpressionScaling(nn.Module):
    """Invertible map between expression values and the standardized space a network sees.

    ``mode`` chooses the transform (statistics are buffers, so they travel with the weights):

    - ``"counts"``: scale each sample to ``target_sum`` total counts, ``log1p``, standardize each
      gene; the inverse undoes all three and clips at 0, then rescales to a library size.
    - ``"log1p"``: ``log1p`` then standardize (non-negative, already normalised values: TPM,
      FPKM); the inverse clips at 0.
    - ``"standardize"``: per-gene z-score (log-scale, microarray or other continuous values).
    - ``"none"``: identity.

    Constant genes (zero variance after the transform) get unit scale and are generated exactly
    at their constant value. ``lower_bound`` (if finite) clips generated values from below, so a
    non-negative input gives non-negative output.

    Parameters
    ----------
    n_genes
        Number of genes.
    mode
        One of :data:`SCALING_MODES`.

    Examples
    --------
    >>> scaling = ExpressionScaling(3, "standardize")
    >>> scaling.set_statistics([1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [False, False, False])
    >>> x = torch.tensor([[2.0, 2.0, 5.0]])
    >>> torch.allclose(scaling.inverse(scaling(x)), x)
    True
    """

    def __init__(self, n_genes: int, mode: str = "standardize"):
        super().__init__()
        if mode not in SCALING_MODES:
            msg = f"Unknown scaling mode {mode!r}; choose one of {SCALING_MODES}."
            raise ValueError(msg)
        self.mode = mode
        self.register_buffer("mean", torch.zeros(n_genes))
        self.register_buffer("std", torch.ones(n_genes))
        self.register_buffer("constant", torch.zeros(n_genes, dtype=torch.bool))
        self.register_buffer("target_sum", torch.tensor(1.0))
        self.register_buffer("lower_bound", torch.tensor(float("-inf")))

    def set_statistics(
        self,
        mean,
        std,
        constant,
        target_sum: float = 1.0,
        lower_bound: float = float("-inf"),
    ) -> None:
        """Set the fitted statistics (see :func:`scgensynth.pp.fit_scaling`)."""
        device = self.mean.device
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32, device=device))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32, device=device))
        self.constant.copy_(torch.as_tensor(constant, dtype=torch.bool, device=device))
        self.target_sum.fill_(float(target_sum))
        self.lower_bound.fill_(float(lower_bound))

    def pre_standardize(self, x: torch.Tensor) -> torch.Tensor:
        """The transform before standardization (normalisation and ``log1p``)."""
        x = x.float()
        if self.mode == "counts":
            lib = x.sum(dim=-1, keepdim=True).clamp_min(1e-8)
            return torch.log1p(x / lib * self.target_sum)
        if self.mode == "log1p":
            return torch.log1p(x.clamp_min(0))
        return x

    def pre_standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Deprecated spelling of :meth:`pre_standardize`."""
        warnings.warn(
            "pre_standardise was renamed pre_standardize; the old name will be removed in a "
            "later release.",
            FutureWarning,
            stacklevel=2,
        )
        return self.pre_standardize(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Expression values -> standardized network space."""
        if self.mode == "none":
            return x.float()
        return (self.pre_standardize(x) - self.mean) / self.std

    def inverse(self, z: torch.Tensor, library_size: torch.Tensor | None = None) -> torch.Tensor:
        """Standardized network space -> expression values on the input's scale.

        Parameters
        ----------
        z
            Values in network space, shape ``(n, n_genes)``.
        library_size
            ``"counts"`` mode only: total counts to rescale each sample to (shape ``(n,)``);
            by default samples keep ``target_sum`` counts.
        """
        if self.mode == "none":
            x = z
        else:
            y = z * self.std + self.mean
            y = torch.where(self.constant, self.mean, y)
            if self.mode in ("counts", "log1p"):
                # cap log values so that exp and the library sum stay finite in float32 (only
                # a barely trained network reaches the cap: e^78 is ~1e34 counts per gene)
                cap = math.log(torch.finfo(torch.float32).max) - math.log(max(y.shape[-1], 1)) - 1
                x = torch.expm1(y.clamp_max(cap)).clamp_min(0)
                if self.mode == "counts":
                    total = x.sum(dim=-1, keepdim=True).clamp_min(1e-8)
                    lib = (
                        self.target_sum
                        if library_size is None
                        else library_size.reshape(-1, 1).to(x)
                    )
                    x = x / total * lib
            else:
                x = y
        if torch.isfinite(self.lower_bound):
            x = x.clamp_min(self.lower_bound)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, n_genes={self.mean.numel()}"
