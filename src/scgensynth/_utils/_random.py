"""Random draws of generation that depend on the seed and the sample's row, not the batching.

A generator's noise is drawn in fixed blocks of :data:`ROW_BLOCK` samples, each from its own
stream keyed by ``(seed, draw, block)``: the ``draw``-th noise tensor a module asks for in a
batch (the latent vector, then each diffusion step's noise, ...) gives row ``i`` the values of
row ``i % ROW_BLOCK`` of block ``i // ROW_BLOCK``. Sample ``i`` therefore gets the same noise
whether it is generated alone, in a batch of 7 or of 4,096, in memory or into a file.
"""

from __future__ import annotations

import numpy as np
import torch

#: samples per noise block: batches that are multiples of it draw each block once
ROW_BLOCK = 256


def stream_seed(*key: int) -> int:
    """A 64-bit seed for the stream ``key`` (non-negative integers), well mixed.

    Examples
    --------
    >>> stream_seed(0, 1) != stream_seed(1, 0)
    True
    """
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0])


class RowNoise:
    """Noise for the samples ``start:stop`` of a generation, keyed by their row numbers.

    Pass it as the ``generator`` of a module's ``sample``/``generate_scaled``; modules draw
    through :func:`draw_noise`, which also takes a ``torch.Generator`` (or ``None``) as before.

    Examples
    --------
    >>> noise = RowNoise(seed=0)
    >>> noise.window(0, 10)
    >>> whole = draw_noise(noise, (10, 3))
    >>> noise.window(4, 6)
    >>> torch.equal(draw_noise(noise, (2, 3)), whole[4:6])
    True
    """

    def __init__(self, seed: int, start: int = 0, stop: int = 0):
        self.seed = int(seed)
        self.window(start, stop)

    def window(self, start: int, stop: int) -> None:
        """Draw for the samples ``start:stop`` next (and restart the count of draws)."""
        self.start, self.stop = int(start), int(stop)
        self._draws = 0

    def draw(
        self,
        shape: tuple[int, ...],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        uniform: bool = False,
    ) -> torch.Tensor:
        """The next normal (or uniform on [0, 1)) tensor, one row per sample of the window."""
        n, tail = int(shape[0]), tuple(int(s) for s in shape[1:])
        if n != self.stop - self.start:
            msg = f"RowNoise holds samples {self.start}:{self.stop}, not {n} rows."
            raise ValueError(msg)
        draw, self._draws = self._draws, self._draws + 1
        parts = []
        for block in range(self.start // ROW_BLOCK, -(-self.stop // ROW_BLOCK)):
            gen = torch.Generator().manual_seed(stream_seed(self.seed, draw, block))
            sample = torch.rand if uniform else torch.randn
            values = sample((ROW_BLOCK, *tail), generator=gen, dtype=dtype)
            lo = max(self.start - block * ROW_BLOCK, 0)
            hi = min(self.stop - block * ROW_BLOCK, ROW_BLOCK)
            parts.append(values[lo:hi])
        out = torch.cat(parts) if parts else torch.empty((0, *tail), dtype=dtype)
        return out if device is None else out.to(device)


def draw_noise(
    generator: torch.Generator | RowNoise | None,
    shape: tuple[int, ...],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    uniform: bool = False,
) -> torch.Tensor:
    """Standard normal (or uniform) noise of ``shape`` from ``generator``, on ``device``.

    ``generator`` is a :class:`RowNoise` (generation: rows keyed by sample), a
    ``torch.Generator`` (on any device) or ``None`` (torch's global random state).

    Examples
    --------
    >>> draw_noise(torch.Generator().manual_seed(0), (2, 3)).shape
    torch.Size([2, 3])
    """
    if isinstance(generator, RowNoise):
        return generator.draw(shape, device=device, dtype=dtype, uniform=uniform)
    sample = torch.rand if uniform else torch.randn
    if generator is not None and device is not None and generator.device != torch.device(device):
        return sample(shape, generator=generator, dtype=dtype).to(device)
    if generator is not None and device is None:
        return sample(shape, generator=generator, dtype=dtype)
    return sample(shape, generator=generator, dtype=dtype, device=device)
