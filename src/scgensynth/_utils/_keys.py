"""Writing results into a user's AnnData without losing what was there."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: ``.obs`` column that tells real samples from synthetic ones ("real" / "synthetic")
SOURCE_KEY = "sgs_source"


def check_params_key(adata: AnnData, key: str) -> None:
    """Refuse a ``key_added`` whose ``adata.uns`` entry cannot take a ``"params"`` record.

    Examples
    --------
    >>> import anndata as ad
    >>> adata = ad.AnnData(uns={"wgan": "my notes"})
    >>> check_params_key(adata, "wgan")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: adata.uns['wgan'] holds a str, ...
    """
    if not isinstance(key, str) or not key:
        msg = f"key_added must be a non-empty string, not {key!r}."
        raise TypeError(msg)
    existing = adata.uns.get(key)
    if existing is not None and not isinstance(existing, Mapping):
        msg = (
            f"adata.uns[{key!r}] holds a {type(existing).__name__}, where the parameters "
            f"would be recorded as adata.uns[{key!r}]['params']; pass another key_added=... "
            "so that it is kept."
        )
        raise ValueError(msg)


def record_params(adata: AnnData, key: str, params: dict[str, Any]) -> None:
    """Set ``adata.uns[key]["params"]``, keeping whatever else ``adata.uns[key]`` holds.

    Examples
    --------
    >>> import anndata as ad
    >>> adata = ad.AnnData(uns={"wgan": {"notes": "x"}})
    >>> record_params(adata, "wgan", {"seed": 0})
    >>> adata.uns["wgan"]
    {'notes': 'x', 'params': {'seed': 0}}
    """
    if adata.is_view and adata.isbacked:
        logger.warning(
            "adata is a view of a backed AnnData, whose .uns cannot be written; the "
            "parameters were not recorded in adata.uns[%r]. Pass `adata.to_memory()` (or "
            "the backed AnnData itself) to record them.",
            key,
        )
        return
    existing = adata.uns.get(key)
    if isinstance(existing, MutableMapping) and not adata.is_view:
        existing["params"] = params  # the user's own dict, updated in place
    elif isinstance(existing, Mapping):
        adata.uns[key] = {**existing, "params": params}
    else:
        adata.uns[key] = {"params": params}


def check_new_key(container: Any, key: str, where: str, overwrite: bool) -> None:
    """Refuse to write ``where[key]`` over something the user had, unless ``overwrite``.

    Examples
    --------
    >>> check_new_key({"x": 1}, "x", "adata.obs", overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: adata.obs['x'] already exists; ...
    """
    if not isinstance(key, str) or not key:
        msg = f"key_added must be a non-empty string, not {key!r}."
        raise TypeError(msg)
    if key in container and not overwrite:
        msg = (
            f"{where}[{key!r}] already exists; pass another key_added=... to keep it, or "
            "overwrite=True to replace it."
        )
        raise ValueError(msg)
