from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd

from scgensynth._utils._anndata import get_matrix, in_memory
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._keys import SOURCE_KEY

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model.base import BaseGeneratorModel


@doctest_skip("needs a trained model")
def generate(
    model: BaseGeneratorModel,
    n_obs: int | None = None,
    covariates: pd.DataFrame | Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    batch_size: int = 4096,
    filename: str | os.PathLike | None = None,
    overwrite: bool = False,
    counts: str | None = None,
    **kwargs,
) -> AnnData:
    """Generate synthetic samples from a trained model.

    The same ``seed`` gives the same samples whatever ``batch_size``, in memory or in a file.
    A model trained on raw counts generates integer counts by default (see ``counts``).

    Parameters
    ----------
    model
        A trained generator (e.g. from :func:`train_wgan`).
    n_obs
        Number of samples; without ``covariates`` the covariate rows are resampled from the
        training data (class proportions kept).
    covariates
        DataFrame with a row per sample and a column per covariate, or a dict
        ``{covariate: value}`` repeated ``n_obs`` times.
    seed
        Random seed of this draw.
    batch_size
        Samples generated at a time.
    filename
        Write the samples to this ``.h5ad`` file a batch at a time and return it backed
        (see :meth:`~scgensynth.model.base.BaseGeneratorModel.generate`): for sets larger
        than memory.
    overwrite
        Replace an existing ``filename`` (refused otherwise). A file open in this session
        (an AnnData read backed from it) is always refused.
    counts
        Models trained on raw counts (``scaling="counts"``) only: ``"sample"`` (their
        default) makes integer counts from the generated mean (unbiased random rounding),
        with library sizes drawn from the training samples'; ``"poisson"`` draws Poisson
        counts around the mean; ``"mean"`` returns the mean itself (expected counts,
        floats). See :meth:`~scgensynth.model.base.BaseGeneratorModel.generate`.
    **kwargs
        The model's own sampling options, e.g. ``sampler``, ``n_sampling_steps``, ``eta`` and
        ``guidance_scale`` of :meth:`~scgensynth.model.DDPM.generate`.

    Returns
    -------
    A new AnnData: values on the input's scale in ``X`` (integer-valued float32 counts for a
    count model with ``counts="sample"``), the training ``var``, the covariates in ``obs``,
    parameters in ``uns["sgs"]``.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, n_obs=1000)
    >>> liver = sgs.tl.generate(model, covariates=pd.DataFrame({"tissue": ["Liver"] * 50}))
    >>> big = sgs.tl.generate(model, n_obs=50_000, filename="synth.h5ad")  # on disk
    >>> expected = sgs.tl.generate(model, n_obs=1000, counts="mean")  # a count model's mean
    """
    if filename is not None:
        kwargs["filename"] = filename
        kwargs["overwrite"] = overwrite
    if counts is not None:
        kwargs["counts"] = counts
    return model.generate(n_obs, covariates, seed=seed, batch_size=batch_size, **kwargs)


@doctest_skip("needs a trained model")
def augment(
    adata: AnnData,
    model: BaseGeneratorModel,
    n_obs: int,
    covariates: pd.DataFrame | Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    layer: str | None = None,
    key_added: str = SOURCE_KEY,
    counts: str | None = None,
    **kwargs,
) -> AnnData:
    """Real samples plus synthetic ones, in one AnnData.

    Parameters
    ----------
    adata
        The real samples (same genes as the model's training data).
    model
        A trained generator.
    n_obs
        Number of synthetic samples to add.
    covariates
        Covariates of the synthetic samples (see :func:`generate`).
    seed
        Random seed of the synthetic draw.
    layer
        Take the real values from this layer (the one the model was trained on).
    key_added
        ``.obs`` column that says which samples are real and which synthetic; it must not be
        a column of ``adata`` already (pass another name to keep yours).
    counts
        For a model trained on raw counts: ``"sample"`` (default: integer counts, like the
        real ones), ``"poisson"`` or ``"mean"`` (see :func:`generate`).
    **kwargs
        The model's own sampling options (see :func:`generate`).

    Returns
    -------
    ``anndata.concat`` of real and synthetic samples (outer join on ``obs``), with a
    categorical ``obs[key_added]`` (``"real"`` / ``"synthetic"``, default
    ``obs["sgs_source"]``); ``adata`` is unchanged.

    Examples
    --------
    >>> both = sgs.tl.augment(adata, model, n_obs=2000)
    >>> both.obs["sgs_source"].value_counts()
    """
    if "filename" in kwargs:
        msg = (
            "augment returns the real and synthetic samples together, in memory, and takes no "
            "filename. To write a large synthetic set to disk, use "
            "sgs.tl.generate(model, n_obs, filename=...)."
        )
        raise TypeError(msg)
    model_genes = np.asarray(model.adata.var_names)
    if adata.n_vars != len(model_genes) or (np.asarray(adata.var_names) != model_genes).any():
        msg = (
            "The real AnnData's genes differ from the model's training genes; subset them as "
            "at training: `adata[:, model.adata.var_names]`."
        )
        raise ValueError(msg)
    missing = [k for k in model.categorical_covariate_keys if k not in adata.obs.columns]
    if missing:
        msg = (
            f"The real AnnData lacks the model's covariate column(s) {missing} in .obs; "
            "augment the AnnData the model was trained on, or add those columns."
        )
        raise KeyError(msg)
    if key_added in adata.obs.columns:
        msg = (
            f"adata.obs already has a column {key_added!r}; augment marks real and synthetic "
            "samples in that column and would replace yours. Pass key_added='...' (another "
            "name), or rename your column."
        )
        raise ValueError(msg)
    X = get_matrix(adata, layer)
    if X is None:
        msg = "adata.X is None; pass the layer that holds the expression values with layer=..."
        raise ValueError(msg)
    if counts is not None:
        kwargs["counts"] = counts
    synth = model.generate(n_obs, covariates, seed=seed, **kwargs)
    real = ad.AnnData(
        X=in_memory(X),
        obs=adata.obs.copy(),
        var=adata.var.copy(),
    )
    synth.obs.index = pd.Index([f"synth_{i}" for i in range(synth.n_obs)])
    both = ad.concat(
        {"real": real, "synthetic": synth},
        label=key_added,
        join="outer",
        merge="first",
        index_unique=None,
    )
    both.obs[key_added] = pd.Categorical(both.obs[key_added], categories=["real", "synthetic"])
    for key in model.categorical_covariate_keys:
        seen = pd.Index(adata.obs[key].dropna().unique())  # a missing value stays missing
        cats = pd.Index(model.categories[key]).union(seen, sort=False)
        both.obs[key] = pd.Categorical(both.obs[key].astype(object), categories=cats)
    both.uns["sgs"] = synth.uns["sgs"]
    if not both.obs_names.is_unique:
        both.obs_names_make_unique()
    return both
