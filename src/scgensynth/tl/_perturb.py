"""TSPG in one call: train it, and perturb samples to a target class."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import scvi

from scgensynth._utils._anndata import get_matrix
from scgensynth._utils._checks import check_count, check_seed
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._logging import quiet_training
from scgensynth.pp import iter_row_chunks

from ._interpolate import match_category
from ._rank import RANK_BY, rank_genes_structure
from ._train import _model_arg_names

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model import TSPG

logger = logging.getLogger(__name__)


@doctest_skip("trains a generator (minutes)")
def train_tspg(
    adata: AnnData,
    labels_key: str,
    *,
    layer: str | None = None,
    gene_set: str | Sequence[str] | None = None,
    gene_sets: str | PathLike | Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    **kwargs,
) -> TSPG:
    """Train a TSPG model (Targonski et al. 2020) on ``adata`` in one call.

    A target classifier is trained on the labels first, then a generator that perturbs a
    sample of any class towards any other (see :class:`~scgensynth.model.TSPG`). Your AnnData
    is not modified: the model registers a private proxy of it.

    Parameters
    ----------
    adata
        Samples x genes, log expression in ``X`` or ``layer``.
    labels_key
        ``.obs`` column of the classes (tissue, subtype, ...).
    layer
        Layer with the expression values.
    gene_set
        Restrict the model to a gene set: a list of genes, or the name of a set in
        ``gene_sets``.
    gene_sets
        A GMT file (:func:`scgensynth.read_gmt`) or a dict ``{name: genes}``.
    seed
        Random seed (``scvi.settings.seed``): the same seed gives the same model on CPU.
    **kwargs
        :class:`~scgensynth.model.TSPG`'s arguments (``targets``, ``missing_genes``,
        ``classifier``, ``n_hidden_*``, the loss weights, ``kappa``, ``target_covariance``)
        and :meth:`~scgensynth.model.TSPG.train`'s (``n_steps``, ``classifier_steps``,
        ``batch_size``, ``train_size``, learning rates, ``enable_progress_bar``, ...).

    Returns
    -------
    The trained :class:`~scgensynth.model.TSPG`.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_tspg(adata, "tissue")
    >>> liver = sgs.tl.perturb(adata, model, target="Liver")
    """
    from scgensynth.model import TSPG

    model_args = _model_arg_names(TSPG)
    model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in model_args}
    with quiet_training():  # Lightning says "Seed set to ..."
        scvi.settings.seed = check_seed(seed)
    proxy = TSPG.setup_proxy(adata, labels_key, layer)
    model = TSPG(proxy, gene_set=gene_set, gene_sets=gene_sets, **model_kwargs)
    model.train(**kwargs)
    return model


def _as_list(value) -> list:
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray | pd.Index):
        return [value]
    return list(value)


@doctest_skip("trains a generator (minutes)")
def perturb(
    adata: AnnData,
    model: TSPG,
    source: Any | Sequence[Any] | None = None,
    target: Any = None,
    *,
    labels_key: str | None = None,
    key_added: str = "rank_genes_groups",
    rank_by: str = "mean",
    batch_size: int = 1024,
) -> AnnData:
    """Perturb samples of ``adata`` to a target class with a trained TSPG model.

    Samples whose class (``labels_key``) is in ``source`` are moved towards ``target``; the
    genes they change the most, per source class, are ranked in the structure of
    :func:`scanpy.tl.rank_genes_groups`, so ``sc.get.rank_genes_groups_df(perturbed, "Lung")``
    and ``sc.pl.rank_genes_groups(perturbed)`` work on the result.

    Parameters
    ----------
    adata
        Samples x genes with the model's genes (``model.var_names``; others are ignored) and
        the labels column. Not modified.
    model
        A trained :class:`~scgensynth.model.TSPG`.
    source
        A class or list of classes to perturb; ``None``: every class of ``adata`` but the
        target.
    target
        The class to perturb to (one the model was trained for: ``model.targets``).
    labels_key
        ``.obs`` column of the classes (default: the model's).
    key_added
        ``uns`` key of the ranking.
    rank_by
        Statistic genes are ranked by (``scores``): ``"mean"`` (mean perturbation),
        ``"effect"`` (mean / standard deviation) or ``"sign"`` (share of samples moved in the
        mean's direction, signed).
    batch_size
        Samples perturbed at a time.

    Returns
    -------
    A new AnnData of the perturbed samples, one per selected sample of ``adata``, with the
    model's genes (a gene-set model's set) as ``var``:

    - ``X``: perturbed values ``x_adv`` on the input scale (inside each gene's training
      range);
    - ``layers["perturbation"]``: ``x_adv - x``; ``layers["original"]``: ``x``;
    - ``obs``: the samples' ``obs``, plus ``source`` (their class), ``target``,
      ``target_probability`` (the target classifier's probability of the target for
      ``x_adv``) and ``predicted`` (its label for ``x_adv``);
    - ``var["target_mean"]``: the target class's mean over the model's training data;
    - ``uns[key_added]``: the ranking of the perturbation per source class (most increased
      genes first, most decreased last; ``logfoldchanges`` is the mean perturbation; ``pvals``
      are one-sample t-tests over the source's real samples of a mean perturbation of 0: they
      say how consistently the model moves a gene across samples, not that the gene is
      differentially expressed between the classes);
    - ``uns["tspg"]``: what was done (target, sources, labels key, model genes).

    Examples
    --------
    >>> import scanpy as sc
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_tspg(adata, "tissue")
    >>> liver = sgs.tl.perturb(adata, model, source=["Lung", "Brain"], target="Liver")
    >>> sc.get.rank_genes_groups_df(liver, "Lung").head()
    >>> sgs.pl.perturbation_heatmap(liver, sample=0)
    """
    target = _check_target(model, target, rank_by)
    batch_size = check_count(batch_size, "batch_size")
    labels_key = model.labels_key if labels_key is None else labels_key
    labels = _labels(adata, labels_key)
    sources = _sources(labels, labels_key, source, target)
    cols = _gene_columns(adata, model.var_names)
    label_str = labels.astype(str).to_numpy()
    source_str = [str(s) for s in sources]
    rows = np.flatnonzero(np.isin(label_str, source_str))
    X = get_matrix(adata, model.layer)
    X = np.concatenate([b[:, cols] for b in iter_row_chunks(X, 4096, rows)])
    if not np.isfinite(X).all():
        msg = "The samples to perturb have missing or infinite values; impute or drop them."
        raise ValueError(msg)
    x_adv, probs = model.perturb_values(X, target, batch_size=batch_size)
    _check_finite_result(adata, rows, X, x_adv)
    out = _perturbed(adata, model, rows, cols, X, x_adv, probs, label_str, source_str, target)
    _add_ranking(out, label_str[rows], source_str, target, key_added, rank_by)
    out.uns["tspg"] = {
        "target": str(target), "sources": source_str, "labels_key": labels_key,
        "model_labels_key": model.labels_key, "n_genes": len(model.var_names),
        "gene_set": model.gene_set_ is not None, "rank_key": key_added,
    }  # fmt: skip
    return out


def _check_target(model: TSPG, target: Any, rank_by: str) -> Any:
    """The model (a trained TSPG) and the class it perturbs to (one of its targets)."""
    from scgensynth.model import TSPG

    if not isinstance(model, TSPG):
        msg = f"model must be a trained sgs.model.TSPG, not {type(model).__name__}."
        raise TypeError(msg)
    if not model.is_trained_:
        msg = "The TSPG model is not trained; call model.train() (or use sgs.tl.train_tspg)."
        raise ValueError(msg)
    if rank_by not in RANK_BY:
        msg = f"rank_by must be one of {RANK_BY}, not {rank_by!r}."
        raise ValueError(msg)
    if target is None:
        msg = f"Pass the class to perturb to, e.g. target={model.targets[0]!r}."
        raise ValueError(msg)
    target = match_category(target, model.categories, "target", repr(model.labels_key), "class")
    if target not in model.targets:
        msg = (
            f"The model was not trained to perturb to {target!r}; it knows the targets "
            f"{model.targets}. Train a model with targets=None (all classes) or a list that "
            f"includes {target!r}."
        )
        raise ValueError(msg)
    return target


def _labels(adata: AnnData, labels_key: str) -> pd.Series:
    if labels_key not in adata.obs.columns:
        msg = (
            f"adata.obs has no column {labels_key!r} with the samples' classes; pass "
            f"labels_key=<column> (available: {list(adata.obs.columns)})."
        )
        raise KeyError(msg)
    return adata.obs[labels_key]


def _sources(labels: pd.Series, labels_key: str, source: Any, target: Any) -> list:
    """The classes of ``adata`` to perturb (all but the target by default)."""
    present = list(pd.unique(labels.dropna()))
    if isinstance(labels.dtype, pd.CategoricalDtype):
        present = [c for c in labels.cat.categories if c in set(present)]
    if source is None:
        sources = [c for c in present if str(c) != str(target)]
        if not sources:
            msg = (
                f"Every sample of adata is of the target class {target!r} (in "
                f"{labels_key!r}); there is nothing to perturb. Pass samples of other classes."
            )
            raise ValueError(msg)
        return sources
    sources = []
    for s in _as_list(source):
        s = match_category(s, present, "source", f"{labels_key!r} in adata", "class")
        if str(s) == str(target):
            msg = (
                f"source and target are both {target!r}: a class is not perturbed to "
                "itself. Choose other source classes, or source=None for all classes but "
                "the target."
            )
            raise ValueError(msg)
        if s not in sources:
            sources.append(s)
    if not sources:
        msg = (
            f"source is empty; name the classes of {labels_key!r} to perturb (e.g. "
            f"{[str(c) for c in present[:3]]}), or pass source=None for every class but "
            "the target."
        )
        raise ValueError(msg)
    return sources


def _gene_columns(adata: AnnData, genes: Sequence[str]) -> np.ndarray:
    """Columns of ``adata`` holding the model's genes, in the model's order."""
    var_index = pd.Index(np.asarray(adata.var_names).astype(str))
    if not var_index.is_unique:
        dup = var_index[var_index.duplicated()].unique()[:5].tolist()
        msg = f"adata's gene names are not unique (e.g. {dup}); call var_names_make_unique()."
        raise ValueError(msg)
    cols = var_index.get_indexer(genes)
    if (cols < 0).any():
        missing = [g for g, c in zip(genes, cols) if c < 0]
        msg = (
            f"adata lacks {len(missing)} of the model's {len(genes)} genes (e.g. "
            f"{missing[:5]}); perturb an AnnData with the genes the model was trained on "
            "(model.var_names)."
        )
        raise ValueError(msg)
    return cols


def _check_finite_result(adata: AnnData, rows, X: np.ndarray, x_adv: np.ndarray) -> None:
    failed = ~np.isfinite(x_adv).all(1)
    if failed.any():
        first = adata.obs_names[rows[np.flatnonzero(failed)[0]]]
        msg = (
            f"{failed.sum()} sample(s) gave non-finite perturbed values (e.g. {first!r}): their "
            f"values (up to {np.abs(X[failed]).max():.3g}) lie far outside the range the model "
            "was trained on. Perturb data on the training data's scale."
        )
        raise ValueError(msg)


def _perturbed(adata, model, rows, cols, X, x_adv, probs, label_str, source_str, target):
    """The perturbed samples as an AnnData (values, perturbation, original, predictions)."""
    target_code = model.categories.index(target)
    perturbation = (x_adv.astype(np.float64) - X).astype(np.float32)
    obs = adata.obs.iloc[rows].copy()
    obs["source"] = pd.Categorical(label_str[rows], categories=source_str)
    obs["target"] = pd.Categorical([str(target)] * len(rows), categories=[str(target)])
    obs["target_probability"] = probs[:, target_code].astype(np.float32)
    classes = np.asarray([str(c) for c in model.categories], dtype=object)
    obs["predicted"] = pd.Categorical(classes[probs.argmax(1)], categories=list(classes))
    var = adata.var.iloc[cols].copy()
    var["target_mean"] = model.target_mean(target).astype(np.float32)
    return ad.AnnData(
        X=x_adv.astype(np.float32),
        obs=obs,
        var=var,
        layers={"perturbation": perturbation, "original": X.astype(np.float32)},
    )


def _add_ranking(out: AnnData, labels, source_str, target, key_added: str, rank_by: str):
    """Rank the genes each source class's perturbation moves (``uns[key_added]``)."""
    perturbation = out.layers["perturbation"]
    groups = {s: perturbation[labels == s] for s in source_str}
    groups = {s: d for s, d in groups.items() if len(d)}
    empty = [s for s in source_str if s not in groups]
    if empty:
        logger.warning("No samples of %s in adata to perturb.", empty)
    if groups:
        out.uns[key_added] = rank_genes_structure(
            groups, out.var_names, method="tspg", groupby="source",
            reference=str(target), rank_by=rank_by, layer="perturbation",
        )  # fmt: skip
