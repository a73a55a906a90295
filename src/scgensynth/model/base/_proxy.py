"""The private AnnData a model registers on, sharing the user's matrix (never writing to it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import sparse

from scgensynth._utils._anndata import get_matrix

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def proxy_anndata(
    adata: AnnData,
    layer: str | None,
    categorical_covariate_keys: Sequence[str],
    continuous_covariate_keys: Sequence[str],
    *,
    warn_unused: bool = True,
) -> AnnData:
    """A private AnnData that shares the expression matrix with ``adata`` (no copy).

    The generators register their scvi-tools fields on this proxy, so the user's AnnData
    is never written to. Categories without samples are left out of its covariates (with a
    warning unless ``warn_unused=False``, as when a saved model is loaded).
    """
    X = get_matrix(adata, layer)
    if X is None:
        msg = "adata.X is None; pass the layer that holds expression values with layer=..."
        raise ValueError(msg)
    if isinstance(X, h5py.Dataset):  # a backed dense matrix stays on disk
        X = _RowsInAnyOrder(X.id)
    keys = [*categorical_covariate_keys, *continuous_covariate_keys]
    obs = adata.obs[keys].copy()
    obs.index = pd.RangeIndex(adata.n_obs).astype(str)  # unique even if obs_names are not
    for key in categorical_covariate_keys:
        obs[key] = _without_unused_categories(obs[key], key, warn_unused)
    var = adata.var.copy()
    with np.errstate(all="ignore"):
        if layer is None:
            return ad.AnnData(X=X, obs=obs, var=var)
        return ad.AnnData(obs=obs, var=var, layers={layer: X})


def data_free_proxy(
    var: pd.DataFrame,
    covariates: pd.DataFrame,
    layer: str | None,
    categorical_covariate_keys: Sequence[str],
    continuous_covariate_keys: Sequence[str],
) -> AnnData:
    """The AnnData a model loaded without its training data registers on.

    What generation needs is in the model file: the genes (``var``), the training
    covariates (``covariates``, resampled by ``generate``), the scaling and the weights. The
    proxy holds the genes, the training covariates (so the registry and the split are those
    of the training data) and no values: an all-zero sparse matrix, which
    :func:`withhold_training_data` then makes unreadable.
    """
    obs = covariates[[*categorical_covariate_keys, *continuous_covariate_keys]].copy()
    obs.index = pd.RangeIndex(len(obs)).astype(str)
    X = sparse.csr_matrix((len(obs), var.shape[0]), dtype=np.float32)
    if layer is None:
        return ad.AnnData(X=X, obs=obs, var=var)
    return ad.AnnData(obs=obs, var=var, layers={layer: X})


#: why a model loaded without its training data cannot do what was asked
NO_TRAINING_DATA = (
    "This model was loaded without its training data (load_model(path) or load(path) with no "
    "adata): it generates samples, but reading its training samples (to train it further, "
    "encode them or save them) needs the data. Load it with adata=<the AnnData it was trained "
    "on>."
)


class NoTrainingData(sparse.csr_matrix):
    """The expression matrix of a model loaded without its training data: it cannot be read.

    Anything that would read training samples (training, latent representations of the
    training data, ``save(save_anndata=True)``) fails with :data:`NO_TRAINING_DATA` instead
    of silently using zeros.
    """

    def __getitem__(self, key):
        raise ValueError(NO_TRAINING_DATA)

    def toarray(self, *args, **kwargs):
        raise ValueError(NO_TRAINING_DATA)

    def todense(self, *args, **kwargs):
        raise ValueError(NO_TRAINING_DATA)


def withhold_training_data(proxy: AnnData, layer: str | None) -> None:
    """Make the (all-zero) matrix of a :func:`data_free_proxy` unreadable."""
    if layer is None:
        proxy.X = NoTrainingData(proxy.X)
    else:
        proxy.layers[layer] = NoTrainingData(proxy.layers[layer])


def _without_unused_categories(col: pd.Series, key: str, warn: bool = True) -> pd.Series:
    """A categorical column without the categories no sample has (with a warning).

    A category without samples would get an embedding that training never updates, and
    generating it would give noise that looks like data.
    """
    if not isinstance(col.dtype, pd.CategoricalDtype):
        return col
    unused = col.cat.categories[~col.cat.categories.isin(col.dropna().unique())]
    if len(unused) and warn:
        logger.warning(
            "Categorical covariate %r has %d categor%s without samples (%s); the model leaves "
            "%s out and cannot generate %s. Drop them with "
            "`adata.obs[%r] = adata.obs[%r].cat.remove_unused_categories()` to silence this.",
            key,
            len(unused),
            "y" if len(unused) == 1 else "ies",
            list(unused[:5]),
            "it" if len(unused) == 1 else "them",
            "it" if len(unused) == 1 else "them",
            key,
            key,
        )
    return col.cat.remove_unused_categories() if len(unused) else col


class _RowsInAnyOrder(h5py.Dataset):
    """An on-disk (backed) matrix whose rows can be read in any order.

    h5py reads only increasing row indices; scvi-tools sorts mini-batch indices only for
    AnnData objects that are themselves backed, which the private proxy is not. Rows are
    read in increasing order and returned in the order asked for, so a mini-batch from a
    backed file is the one the same seed gives in memory.
    """

    def __getitem__(self, args):
        rows = args[0] if isinstance(args, tuple) else args
        if isinstance(rows, list | np.ndarray) and np.ndim(rows) == 1 and len(rows) > 1:
            rows = np.asarray(rows)
            order = np.argsort(rows, kind="stable")
            unique, inverse = np.unique(rows[order], return_inverse=True)
            rest = args[1:] if isinstance(args, tuple) else ()
            block = super().__getitem__((unique, *rest)) if rest else super().__getitem__(unique)
            out = np.empty((len(rows), *block.shape[1:]), dtype=block.dtype)
            out[order] = block[inverse]
            return out
        return super().__getitem__(args)
