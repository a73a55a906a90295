from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn


def embedding_dim(n_categories: int) -> int:
    """Size of a covariate embedding: ``floor(sqrt(n_categories)) + 1`` (Viñas et al. 2022).

    Examples
    --------
    >>> embedding_dim(26)
    6
    """
    return math.isqrt(int(n_categories)) + 1


def stack_layers(
    n_input: int,
    n_hidden: Iterable[int],
    hidden_layer: Callable[[int, int], list[nn.Module]],
) -> tuple[list[nn.Module], int]:
    """The layers ``hidden_layer(width_in, width_out)`` over the widths ``n_hidden``.

    Returns the layers, in order, and the width of the last one (``n_input`` if none).

    Examples
    --------
    >>> layers, width = stack_layers(10, (8, 4), lambda n_in, n_out: [nn.Linear(n_in, n_out)])
    >>> [m.out_features for m in layers], width
    ([8, 4], 4)
    """
    layers: list[nn.Module] = []
    width = int(n_input)
    for h in n_hidden:
        layers += hidden_layer(width, int(h))
        width = int(h)
    return layers, width


class SequentialNet(nn.Module):
    """A network that is the :class:`torch.nn.Sequential` of its layers, ``self.net``."""

    net: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network."""
        return self.net(x)


class MLP(SequentialNet):
    """Fully connected network: ``Linear -> activation`` per hidden layer, then a linear output.

    Parameters
    ----------
    n_input
        Input width.
    n_output
        Output width.
    n_hidden
        Widths of the hidden layers (may be empty: a single linear map).
    activation
        Module class used after every hidden layer.
    dropout
        Dropout rate after each hidden activation (0 disables it).

    Examples
    --------
    >>> net = MLP(10, 3, n_hidden=(32, 32))
    >>> net(torch.zeros(4, 10)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_hidden: Sequence[int] = (256, 256),
        activation: type[nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ):
        super().__init__()

        def hidden_layer(n_in: int, n_out: int) -> list[nn.Module]:
            drop = [nn.Dropout(dropout)] if dropout > 0 else []
            return [nn.Linear(n_in, n_out), activation(), *drop]

        layers, width = stack_layers(n_input, n_hidden, hidden_layer)
        self.net = nn.Sequential(*layers, nn.Linear(width, n_output))


class CovariateEmbedder(nn.Module):
    """Concatenate continuous covariates with learnable embeddings of categorical ones.

    One :class:`torch.nn.Embedding` per categorical covariate, of size
    :func:`embedding_dim` unless ``embedding_dims`` says otherwise.

    Parameters
    ----------
    n_cats_per_cov
        Number of categories of each categorical covariate.
    n_continuous
        Number of continuous covariates (passed through unchanged).
    embedding_dims
        Optional explicit embedding size per categorical covariate.

    Examples
    --------
    >>> emb = CovariateEmbedder([26, 2], n_continuous=1)
    >>> emb.n_output
    9
    >>> emb(torch.tensor([[3, 1], [0, 0]]), torch.zeros(2, 1)).shape
    torch.Size([2, 9])
    """

    def __init__(
        self,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous: int = 0,
        embedding_dims: Sequence[int] | None = None,
    ):
        super().__init__()
        n_cats_per_cov = [int(n) for n in n_cats_per_cov]
        if embedding_dims is None:
            embedding_dims = [embedding_dim(n) for n in n_cats_per_cov]
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, d) for n, d in zip(n_cats_per_cov, embedding_dims, strict=True)
        )
        self.n_continuous = int(n_continuous)
        self.n_output = int(sum(embedding_dims)) + self.n_continuous

    def embed(self, i: int, codes: torch.Tensor) -> torch.Tensor:
        """Embedding vectors of covariate ``i`` for integer ``codes``."""
        return self.embeddings[i](codes.long())

    def forward(
        self,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        cat_embedded: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor | None:
        """Covariate vector ``[continuous ‖ embedding_1 ‖ … ‖ embedding_k]``.

        Parameters
        ----------
        cat
            Integer codes, shape ``(n, n_categorical)``.
        cont
            Continuous covariates, shape ``(n, n_continuous)``.
        cat_embedded
            Optional precomputed embedding vectors per covariate (``None`` entries are looked up
            from ``cat``): used to feed interpolated embeddings.
        """
        parts: list[torch.Tensor] = []
        if self.n_continuous:
            parts.append(cont.float())
        for i in range(len(self.embeddings)):
            given = None if cat_embedded is None else cat_embedded[i]
            parts.append(given if given is not None else self.embed(i, cat[:, i]))
        if not parts:
            return None
        return torch.cat(parts, dim=-1)
