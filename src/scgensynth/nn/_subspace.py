from __future__ import annotations

import torch
from torch import nn

from scgensynth._utils._random import RowNoise, draw_noise


class LinearSubspace(nn.Module):
    """The principal subspace of the training data, and per-gene noise for the rest.

    Networks that work in this subspace cost almost nothing more at 20,000 genes than at
    200: a sample ``x`` (network space, genes) is represented by ``h = (x - m) V.T / d``, its
    coordinates on the ``n_components`` leading principal directions ``V`` of the training
    samples in units of their standard deviations ``d`` (so networks see unit-variance
    inputs and targets), and a generated ``h`` is decoded to ``m + (h d) V + r`` with
    ``r = s * e`` (``e`` standard normal, ``s`` the per-gene standard deviation the
    directions leave unexplained) minus its part in the subspace, so every gene keeps
    (nearly) its variance and the decoded sample projects back onto ``h`` exactly. The
    directions are fitted once, before training (:meth:`fit`, a randomised PCA); they are
    buffers, saved with the weights.

    Parameters
    ----------
    n_genes
        Number of genes.
    n_components
        Dimension of the subspace.

    Examples
    --------
    >>> sub = LinearSubspace(n_genes=50, n_components=5)
    >>> x = torch.randn(40, 5) @ torch.randn(5, 50) + 0.1 * torch.randn(40, 50)
    >>> sub.fit(x)
    >>> h = sub.project(x)
    >>> h.shape
    torch.Size([40, 5])
    >>> sub.expand(h, torch.Generator().manual_seed(0)).shape
    torch.Size([40, 50])
    >>> bool(sub.residual_std.max() < 0.2)
    True
    """

    def __init__(self, n_genes: int, n_components: int):
        super().__init__()
        self.n_genes, self.n_components = int(n_genes), int(n_components)
        if not 1 <= self.n_components <= self.n_genes:
            msg = (
                f"n_components must be between 1 and the number of genes ({self.n_genes}), "
                f"not {n_components}."
            )
            raise ValueError(msg)
        self.register_buffer("mean", torch.zeros(self.n_genes))
        self.register_buffer("basis", torch.zeros(self.n_components, self.n_genes))
        self.register_buffer("scale", torch.ones(self.n_components))
        self.register_buffer("residual_std", torch.zeros(self.n_genes))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, seed: int = 0, copy: bool = True) -> None:
        """Fit mean, directions and residual spread to training samples (network space).

        Fewer samples than ``n_components + 1`` give as many directions as there are
        samples minus one; the rest of the basis stays zero (the residual spread covers
        it). ``copy=False`` centres a float32 CPU ``x`` in place instead of copying it.
        """
        x = x.detach()
        if copy or x.dtype != torch.float32 or x.device.type != "cpu":
            x = x.to("cpu", torch.float32, copy=True)
        n = x.shape[0]
        if n < 2:
            msg = "The subspace needs at least two training samples."
            raise ValueError(msg)
        mean = x.mean(0)
        x -= mean  # centred in place (x is our own copy)
        q = min(self.n_components, n - 1, self.n_genes)
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        oversampled = min(q + 10, n, self.n_genes)  # accurate trailing directions
        _, s, v = torch.pca_lowrank(x, q=oversampled, center=False, niter=6)
        torch.random.set_rng_state(state)
        basis = torch.zeros(self.n_components, self.n_genes)
        basis[:q] = v[:, :q].T
        scale = torch.ones(self.n_components)
        sd = s[:q] / (n - 1) ** 0.5
        scale[:q] = torch.where(sd > sd.max() * 1e-6, sd, torch.ones_like(sd))
        explained = torch.zeros(self.n_genes)
        for rows in range(0, n, 256):  # what the directions leave, gene by gene
            block = x[rows : rows + 256]
            left = block - (block @ basis.T) @ basis
            explained += (left.double() ** 2).sum(0).float()
        device = self.mean.device
        self.mean.copy_(mean.to(device))
        self.basis.copy_(basis.to(device))
        self.scale.copy_(scale.to(device))
        self.residual_std.copy_((explained / max(n - 1, 1)).sqrt().to(device))
        self.fitted.fill_(True)

    def project(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Coordinates ``(x - m) V.T / d`` of samples in network space."""
        return (x_scaled - self.mean) @ self.basis.T / self.scale

    def expand(
        self, h: torch.Tensor, generator: torch.Generator | RowNoise | None = None
    ) -> torch.Tensor:
        """Samples ``m + (h d) V + r`` in network space (``r``'s noise from ``generator``)."""
        noise = draw_noise(generator, (h.shape[0], self.n_genes), device=h.device)
        noise = noise * self.residual_std
        noise = noise - (noise @ self.basis.T) @ self.basis  # outside the subspace
        return self.mean + (h * self.scale) @ self.basis + noise

    def extra_repr(self) -> str:
        return f"n_genes={self.n_genes}, n_components={self.n_components}"
