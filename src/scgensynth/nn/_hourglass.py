"""Normalised MLP blocks of TSPG: the hourglass generator and the discriminator."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._blocks import SequentialNet, stack_layers

NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, None: None}


def _norm(kind: str | None, n_units: int) -> nn.Module:
    if kind not in NORMS:
        msg = f"norm must be one of {list(NORMS)}, not {kind!r}."
        raise ValueError(msg)
    return nn.Identity() if kind is None else NORMS[kind](n_units)


def dense_norm(
    n_input: int, n_output: int, activation: nn.Module, norm: str | None = "batch"
) -> nn.Sequential:
    """``Linear -> normalisation (BatchNorm1d by default) -> activation``.

    Examples
    --------
    >>> block = dense_norm(4, 8, nn.ReLU())
    >>> block(torch.randn(5, 4)).shape
    torch.Size([5, 8])
    """
    return nn.Sequential(nn.Linear(n_input, n_output), _norm(norm, n_output), activation)


class ResidualBlock(nn.Module):
    """``x + N(Linear(ReLU(N(Linear(x)))))``, ``N`` a normalisation (AdvGAN / TSPG's block).

    Examples
    --------
    >>> block = ResidualBlock(16)
    >>> block(torch.randn(3, 16)).shape
    torch.Size([3, 16])
    """

    def __init__(self, n_units: int, norm: str | None = "batch"):
        super().__init__()
        self.net = nn.Sequential(
            dense_norm(n_units, n_units, nn.ReLU(), norm),
            nn.Linear(n_units, n_units),
            _norm(norm, n_units),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return x + self.net(x)


class HourglassMLP(SequentialNet):
    """Encoder -> residual blocks -> decoder, with a ``tanh`` output in ``[-1, 1]``.

    The generator of TSPG (Targonski et al. 2020), after AdvGAN's (Xiao et al. 2018):
    ``Linear -> norm -> ReLU`` layers narrowing over ``n_hidden``, ``n_residual`` residual
    blocks at the narrowest width, ``Linear -> norm -> ReLU`` layers widening over
    ``n_hidden`` in reverse (its widest layer excluded), then ``Linear -> tanh``.

    Parameters
    ----------
    n_input
        Input width.
    n_output
        Output width.
    n_hidden
        Widths of the encoder (TSPG: 512, 256, 128); the decoder mirrors them.
    n_residual
        Residual blocks at the bottleneck (TSPG: 3).
    norm
        ``"batch"`` (TSPG's BatchNorm1d), ``"layer"`` (LayerNorm) or ``None``.

    Examples
    --------
    >>> net = HourglassMLP(20, 10, n_hidden=(32, 16, 8), n_residual=2)
    >>> [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
    [32, 16, 8, 8, 8, 8, 8, 16, 32, 10]
    >>> out = net(torch.randn(4, 20))
    >>> out.shape, bool(out.abs().max() <= 1)
    (torch.Size([4, 10]), True)
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_hidden: Sequence[int] = (512, 256, 128),
        n_residual: int = 3,
        norm: str | None = "batch",
    ):
        super().__init__()
        n_hidden = [int(h) for h in n_hidden]
        if not n_hidden:
            msg = "n_hidden needs at least one width for the hourglass generator."
            raise ValueError(msg)

        def hidden_layer(n_in: int, n_out: int) -> list[nn.Module]:
            return [dense_norm(n_in, n_out, nn.ReLU(), norm)]

        encoder, width = stack_layers(n_input, n_hidden, hidden_layer)
        residual = [ResidualBlock(width, norm) for _ in range(int(n_residual))]
        decoder, width = stack_layers(width, reversed(n_hidden[:-1]), hidden_layer)
        output = [nn.Linear(width, int(n_output)), nn.Tanh()]
        self.net = nn.Sequential(*encoder, *residual, *decoder, *output)


class BatchNormMLP(SequentialNet):
    """``Linear -> BatchNorm -> LeakyReLU`` per hidden layer, then a linear output.

    TSPG's discriminator (512-256-128, leaky ReLU slope 0.2).

    Examples
    --------
    >>> net = BatchNormMLP(10, 1, n_hidden=(16, 8))
    >>> net(torch.randn(4, 10)).shape
    torch.Size([4, 1])
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_hidden: Sequence[int] = (512, 256, 128),
        negative_slope: float = 0.2,
    ):
        super().__init__()
        layers, width = stack_layers(
            n_input,
            n_hidden,
            lambda n_in, n_out: [dense_norm(n_in, n_out, nn.LeakyReLU(negative_slope))],
        )
        self.net = nn.Sequential(*layers, nn.Linear(width, int(n_output)))
