"""TSPG: the Transcriptome State Perturbation Generator (Targonski et al. 2020)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField
from scvi.dataloaders import DataSplitter
from torch import nn

from scgensynth._utils._anndata import get_matrix
from scgensynth._utils._checks import check_count
from scgensynth._utils._docs import doctest_skip
from scgensynth.module import TSPGModule
from scgensynth.pp import detect_scaling
from scgensynth.train import TSPGTrainingPlan

from .base._model import SgsModel
from .base._proxy import proxy_anndata
from .base._run import TrainingRun
from .base._validation import check_covariates, check_shape

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: accepted values of ``missing_genes``
MISSING_GENES = ("raise", "ignore")


def resolve_gene_set(
    gene_set: str | Sequence[str] | None,
    gene_sets: str | PathLike | Mapping[str, Sequence[str]] | None,
    var_names: Sequence[str],
    missing_genes: str = "raise",
) -> list[str] | None:
    """The genes of ``gene_set`` found in ``var_names`` (``None``: every gene).

    ``gene_set`` is a list of genes, or the name of a set in ``gene_sets`` (a GMT file or a
    dict ``{name: genes}``). Genes missing from ``var_names`` raise an error naming them unless
    ``missing_genes="ignore"``; fewer than 2 remaining genes always do.

    Examples
    --------
    >>> resolve_gene_set("up", {"up": ["b", "a", "b"]}, ["a", "b", "c"])
    ['b', 'a']
    >>> resolve_gene_set(["a", "zz"], None, ["a", "b", "c"], missing_genes="ignore")
    Traceback (most recent call last):
    ...
    ValueError: Only 1 gene(s) of the gene set are in the data (['a']); TSPG needs at least 2.
    """
    if missing_genes not in MISSING_GENES:
        msg = f"missing_genes must be one of {MISSING_GENES}, not {missing_genes!r}."
        raise ValueError(msg)
    if gene_set is None:
        if gene_sets is not None:
            names = list(_as_gene_sets(gene_sets))
            msg = (
                f"gene_sets is given but not gene_set; name the set to use, e.g. "
                f"gene_set={names[0]!r} (sets: {names[:5]}{' ...' if len(names) > 5 else ''})."
            )
            raise ValueError(msg)
        return None
    label = "the gene set"
    if isinstance(gene_set, str):
        if gene_sets is None:
            msg = (
                f"gene_set={gene_set!r} is a name, but no gene_sets were given to look it up "
                "in; pass gene_sets=<GMT file or dict of gene lists>, or a list of genes as "
                "gene_set."
            )
            raise ValueError(msg)
        sets = _as_gene_sets(gene_sets)
        if gene_set not in sets:
            names = list(sets)
            msg = (
                f"Gene set {gene_set!r} is not in gene_sets ({len(names)} sets, e.g. {names[:5]})."
            )
            raise ValueError(msg)
        label = f"gene set {gene_set!r}"
        gene_set = sets[gene_set]
    genes = list(dict.fromkeys(str(g) for g in gene_set))  # unique, in order
    known = pd.Index(np.asarray(var_names).astype(str))
    missing = [g for g in genes if g not in known]
    if missing and missing_genes == "raise":
        msg = (
            f"{len(missing)} of the {len(genes)} genes of {label} are not in adata.var_names "
            f"(e.g. {missing[:5]}). Check that both use the same identifiers (symbols vs. "
            "Ensembl IDs, version suffixes), or pass missing_genes='ignore' to use the "
            f"{len(genes) - len(missing)} genes found."
        )
        raise ValueError(msg)
    found = [g for g in genes if g in known]
    if len(found) < 2:
        msg = (
            f"Only {len(found)} gene(s) of the gene set are in the data ({found}); TSPG needs "
            "at least 2."
        )
        raise ValueError(msg)
    if missing:
        logger.info(
            "%d gene(s) of %s are not in the data and are ignored (e.g. %s).",
            len(missing),
            label,
            missing[:5],
        )
    return found


def _as_gene_sets(gene_sets) -> Mapping[str, Sequence[str]]:
    if isinstance(gene_sets, Mapping):
        return gene_sets
    if isinstance(gene_sets, str | PathLike):
        from scgensynth.io import read_gmt

        return read_gmt(gene_sets)
    msg = (
        "gene_sets must be a GMT file path or a dict {name: list of genes}, not "
        f"{type(gene_sets).__name__}."
    )
    raise TypeError(msg)


_USER_MODULE = "user module: "


@doctest_skip("trains a generator (minutes)")
class TSPG(SgsModel):
    """Transcriptome State Perturbation Generator (Targonski et al. 2020), for any target.

    TSPG learns to move a sample to a target class with a small perturbation. A target
    classifier ``f`` is trained on the labelled data first (or given); then a generator
    ``G`` learns perturbations ``p`` so that ``x_adv = clip(x + p)`` (min-max-scaled to
    ``[0, 1]`` per gene) is classified as the target by ``f`` (Carlini–Wagner margin with
    confidence ``kappa``), looks like a real sample of the target class to a discriminator
    ``D`` (least-squares GAN), stays close to ``x`` (L2 norm of ``p``) and close to draws of
    the target class's Gaussian (L1 distance). See :class:`~scgensynth.module.TSPGModule` for
    the networks and losses.

    Unlike the original, which trains one generator per target, ``G`` and ``D`` are
    conditioned on the target class (one-hot), and training pairs every sample with a target
    drawn uniformly among the classes other than its own: one model reaches any target.
    ``targets=["Liver"]`` restricts it to some (one: the paper's model).

    TSPG works on log expression: normalise counts first (``sc.pp.normalize_total``,
    ``sc.pp.log1p``). Perturbed samples (:func:`scgensynth.tl.perturb`) are returned on the
    input's scale and inside each gene's training range.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    targets
        Classes the generator learns to perturb to (default: all).
    gene_set
        Restrict the model to a gene set, as TSPG runs per gene set: a list of genes, or the
        name of a set in ``gene_sets``. Classifier, generator and discriminator then see only
        these genes, and perturbed AnnData have only these genes.
    gene_sets
        A GMT file (see :func:`scgensynth.read_gmt`) or a dict ``{name: genes}``.
    missing_genes
        Genes of the set that are not in ``adata``: ``"raise"`` (an error that names them) or
        ``"ignore"`` (use the genes found; at least 2).
    classifier
        A trained torch module mapping min-max-scaled samples (the model's genes, each
        scaled as ``(x - min) / (max - min)`` over ``adata``, constant genes at 0) to logits
        over the label categories, in their order; used as ``f`` (frozen) instead of training
        an MLP. It must be picklable (its class importable) to save the model.
    n_hidden_classifier
        Hidden widths of the target classifier (TSPG: 1024, 512, 128).
    classifier_dropout
        Dropout after each hidden layer of the classifier.
    n_hidden_generator
        Encoder widths of the hourglass generator (TSPG: 512, 256, 128; mirrored back).
    n_residual
        Residual blocks at the generator's bottleneck (TSPG: 3).
    generator_norm
        Normalisation in the generator's layers: ``"layer"`` (default), ``"batch"`` (TSPG's)
        or ``None``. With batch norm, samples of outlying classes (GTEx's liver and testis)
        drive the ``tanh`` output into saturation and are never perturbed successfully; layer
        norm normalises each sample on its own.
    n_hidden_discriminator
        Hidden widths of the discriminator (TSPG: 512, 256, 128).
    gan_weight, adv_weight, norm_weight, target_weight
        Weights of the generator losses ``L_GAN``, ``L_adv``, ``L_norm`` and ``L_td``.
    kappa
        Confidence of the Carlini–Wagner margin (logit units): the target's logit must beat
        every other by ``kappa``.
    target_covariance
        ``"diag"`` or ``"full"`` (Ledoit–Wolf shrinkage, positive definite on few samples):
        covariance of the target-class Gaussians of ``L_td``.

    Notes
    -----
    Defaults were chosen on the bundled GTEx set (26 tissues, 324 training samples): with
    TSPG's learning rates (Adam, 2e-4 generator, 1e-4 discriminator) and the per-gene norms
    of :class:`~scgensynth.module.TSPGModule`, ``target_weight=40`` makes every perturbed
    held-out sample of the other tissues reach the target, both for ``f`` and for an
    independent logistic regression, after 2,000 steps (all of them, for five targets and
    six seeds), while each keeps its own deviation from its tissue's mean (cosine 0.7-0.8).
    With weight 20 the most distant tissues (liver, testis) sometimes stay behind (0.93 for
    some targets); with weight 1 or 5 the samples fool ``f`` without resembling the target
    (the logistic regression: 0.0-0.8 by target). A larger ``adv_weight`` (5, 10) does the
    same. ``"diag"`` covariances are the default: ``"full"`` ones cost
    ``n_classes x n_genes^2`` memory for no measured gain.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> sgs.model.TSPG.setup_anndata(adata, labels_key="tissue")
    >>> model = sgs.model.TSPG(adata)
    >>> model.train()
    >>> liver = sgs.tl.perturb(adata, model, target="Liver")
    """

    _module_cls = TSPGModule
    _training_plan_cls = TSPGTrainingPlan
    _data_splitter_cls = DataSplitter

    #: default training length of the adversarial phase, in mini-batches
    default_n_steps: int = 2000
    #: default training length of the classifier phase, in mini-batches
    default_classifier_steps: int = 600

    def __init__(
        self,
        adata: AnnData | None = None,
        targets: Sequence | None = None,
        gene_set: str | Sequence[str] | None = None,
        gene_sets: str | PathLike | Mapping[str, Sequence[str]] | None = None,
        missing_genes: str = "raise",
        classifier: nn.Module | None = None,
        n_hidden_classifier: Sequence[int] = (1024, 512, 128),
        classifier_dropout: float = 0.5,
        n_hidden_generator: Sequence[int] = (512, 256, 128),
        n_residual: int = 3,
        generator_norm: str | None = "layer",
        n_hidden_discriminator: Sequence[int] = (512, 256, 128),
        gan_weight: float = 1.0,
        adv_weight: float = 1.0,
        norm_weight: float = 1.0,
        target_weight: float = 40.0,
        kappa: float = 1.0,
        target_covariance: str = "diag",
    ):
        super().__init__(adata)
        check_shape(self.adata)
        genes = resolve_gene_set(gene_set, gene_sets, self.adata.var_names, missing_genes)
        all_names = np.asarray(self.adata.var_names).astype(str)
        if genes is None:
            self.gene_index_ = np.arange(self.adata.n_vars)
        else:
            self.gene_index_ = pd.Index(all_names).get_indexer(genes)
        self.var_names_ = all_names[self.gene_index_].tolist()
        self.gene_set_ = None if genes is None else list(genes)
        classes = self.categories
        if len(classes) < 2:
            msg = (
                f"The labels {self.labels_key!r} have {len(classes)} class(es) ({classes}); "
                "TSPG moves samples between classes and needs at least 2."
            )
            raise ValueError(msg)
        present = np.unique(self._labels())
        target_codes = present.tolist()  # default: every class with samples
        if targets is not None:
            targets = [targets] if isinstance(targets, str) else list(targets)
            target_codes = [self._class_code(t, "targets") for t in targets]
            targets = [classes[c] for c in target_codes]
        elif len(present) < len(classes):
            logger.info(
                "Classes without samples are not targets: %s.",
                [c for i, c in enumerate(classes) if i not in set(present.tolist())],
            )
        if classifier is not None:
            self._check_classifier(classifier, len(self.var_names_), len(classes))
        n_bytes = 4 * len(classes) * len(self.var_names_) ** 2
        if target_covariance == "full" and n_bytes > 2**32:
            msg = (
                f"Full covariances of {len(classes)} classes over {len(self.var_names_)} genes "
                f"need {n_bytes / 2**30:.0f} GiB; use target_covariance='diag', or a gene set "
                "(gene_set=...)."
            )
            raise ValueError(msg)
        x_layer = self.layer
        if detect_scaling(self.adata, layer=x_layer) == "counts":
            logger.warning(
                "The expression values look like raw counts; TSPG works on log expression. "
                "Normalise first: `sc.pp.normalize_total(adata)` then `sc.pp.log1p(adata)`."
            )
        self.module = self._module_cls(
            n_input=len(self.var_names_),
            n_classes=len(classes),
            targets=target_codes,
            n_hidden_classifier=n_hidden_classifier,
            classifier_dropout=classifier_dropout,
            n_hidden_generator=n_hidden_generator,
            n_residual=n_residual,
            generator_norm=generator_norm,
            n_hidden_discriminator=n_hidden_discriminator,
            gan_weight=gan_weight,
            adv_weight=adv_weight,
            norm_weight=norm_weight,
            target_weight=target_weight,
            kappa=kappa,
            target_covariance=target_covariance,
            classifier=classifier,
            gene_index=None if genes is None else self.gene_index_,
        )
        self._fit_statistics()
        n_params = {
            k: sum(p.numel() for p in getattr(self.module, k).parameters())
            for k in ("classifier", "generator", "discriminator")
        }
        self._model_summary_string = (
            f"TSPG: {len(self.var_names_)} genes, {len(classes)} classes of "
            f"{self.labels_key!r}, targets {self.targets if targets is not None else 'all'}, "
            f"parameters {n_params}"
        )
        # save/load reproduce the resolved genes, not a GMT file that may have moved
        gene_set, gene_sets, missing_genes = self.gene_set_, None, "raise"
        self.init_params_ = self._get_init_params(locals())

    # -- registry -----------------------------------------------------------------------------
    @classmethod
    def setup_anndata(
        cls, adata: AnnData, labels_key: str, layer: str | None = None, **kwargs
    ) -> None:
        """Register expression values and class labels with scvi-tools.

        Like every scvi-tools ``setup_anndata``, this adds scvi-tools' registry entries to
        ``adata``; :func:`scgensynth.tl.train_tspg` registers a private proxy instead and
        leaves your AnnData untouched.

        Parameters
        ----------
        adata
            Samples x genes (log expression).
        labels_key
            ``.obs`` column of the classes (tissue, subtype, ...).
        layer
            Layer with the expression values (default ``adata.X``); dense or sparse.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        if not isinstance(labels_key, str):
            msg = f"labels_key must be the name of an .obs column, not {labels_key!r}."
            raise TypeError(msg)
        check_shape(adata)
        get_matrix(adata, layer)
        check_covariates(adata, [labels_key], [])
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
        ]
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    @classmethod
    def setup_proxy(cls, adata: AnnData, labels_key: str, layer: str | None = None) -> AnnData:
        """A private AnnData sharing ``adata``'s values, registered with :meth:`setup_anndata`.

        What :func:`scgensynth.tl.train_tspg` trains on: ``adata`` is checked and never
        written to (see :meth:`scgensynth.model.BaseGeneratorModel.setup_proxy`).
        """
        check_shape(adata)
        if not isinstance(labels_key, str):
            msg = f"labels_key must be the name of an .obs column, not {labels_key!r}."
            raise TypeError(msg)
        check_covariates(adata, [labels_key], [])
        proxy = proxy_anndata(adata, layer, [labels_key], [])
        cls.setup_anndata(proxy, labels_key=labels_key, layer=layer)
        return proxy

    @property
    def labels_key(self) -> str:
        """The ``.obs`` column of the classes."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        return state["original_key"]

    @property
    def categories(self) -> list:
        """The classes, in the order of the classifier's outputs."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.LABELS_KEY)
        return list(state["categorical_mapping"])

    @property
    def targets(self) -> list:
        """The classes the generator has learnt to perturb to."""
        mask = self.module.target_mask.cpu().numpy()
        return [c for c, m in zip(self.categories, mask) if m]

    @property
    def var_names(self) -> list[str]:
        """The genes the model works on (a gene set's, or all)."""
        return list(self.var_names_)

    def _class_code(self, value, name: str) -> int:
        classes = self.categories
        if value in classes:
            return classes.index(value)
        by_str = [str(c) for c in classes]
        if str(value) in by_str:
            return by_str.index(str(value))
        msg = (
            f"{name}: {value!r} is not a class of {self.labels_key!r}; the model knows {classes}."
        )
        raise ValueError(msg)

    @staticmethod
    def _check_classifier(classifier, n_genes: int, n_classes: int) -> None:
        if not isinstance(classifier, nn.Module):
            msg = (
                "classifier must be a torch.nn.Module mapping min-max-scaled samples to "
                f"logits, not {type(classifier).__name__}."
            )
            raise TypeError(msg)
        was_training = classifier.training
        classifier.eval()
        try:
            with torch.no_grad():
                device = next(iter(classifier.parameters()), torch.zeros(0)).device
                out = classifier(torch.full((2, n_genes), 0.5, device=device))
        except Exception as err:
            msg = (
                f"The classifier failed on a batch of 2 samples x {n_genes} genes "
                f"({type(err).__name__}: {err}); it must take the model's genes, min-max "
                "scaled."
            )
            raise ValueError(msg) from err
        finally:
            classifier.train(was_training)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_classes):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            msg = (
                f"The classifier must return logits of shape (n_samples, {n_classes}) (one per "
                f"class of the labels, in model.categories' order); it returned {shape} for 2 "
                "samples."
            )
            raise ValueError(msg)

    # -- statistics ---------------------------------------------------------------------------
    def _read_rows(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Expression values of the model's genes (input scale, float64)."""
        blocks = [b[:, self.gene_index_] for b in self._iter_rows(rows)]
        return np.concatenate(blocks) if blocks else np.zeros((0, len(self.gene_index_)))

    def _labels(self) -> np.ndarray:
        codes = self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)
        return np.asarray(codes).reshape(-1).astype(np.int64)

    def _fit_statistics(self) -> None:
        """Per-gene minimum and maximum, and each class's mean, read in row blocks."""
        labels = self._labels()
        n_genes, n_classes = len(self.gene_index_), len(self.categories)
        x_min, x_max = np.full(n_genes, np.inf), np.full(n_genes, -np.inf)
        sums, counts = np.zeros((n_classes, n_genes)), np.bincount(labels, minlength=n_classes)
        start = 0
        for block in self._iter_rows():
            block = block[:, self.gene_index_]
            if not np.isfinite(block).all():
                msg = (
                    "The expression matrix has missing or infinite values (e.g. in row "
                    f"{start + int(np.flatnonzero(~np.isfinite(block).all(1))[0])}). Impute or "
                    "drop them before training TSPG."
                )
                raise ValueError(msg)
            x_min, x_max = np.minimum(x_min, block.min(0)), np.maximum(x_max, block.max(0))
            np.add.at(sums, labels[start : start + len(block)], block)
            start += len(block)
        constant = np.flatnonzero(x_max <= x_min)
        if len(constant):
            logger.warning(
                "%d gene(s) are constant (e.g. %s); TSPG never perturbs them.",
                len(constant),
                [self.var_names_[i] for i in constant[:5]],
            )
        self.module.set_scaling(x_min, x_max)
        means = sums / np.maximum(counts, 1)[:, None]
        self.module.class_mean.copy_(torch.as_tensor(self._scale(means)))

    def _scale(self, X: np.ndarray) -> np.ndarray:
        """Min-max scaling of samples on the input scale (the model's genes), as float32."""
        x_min = self.module.x_min.detach().cpu().numpy().astype(np.float64)
        width = self.module.x_width.detach().cpu().numpy().astype(np.float64)
        varying = width > 0
        out = np.zeros(np.shape(X), dtype=np.float64)
        out[:, varying] = (np.asarray(X)[:, varying] - x_min[varying]) / width[varying]
        return out.astype(np.float32)

    # -- training -----------------------------------------------------------------------------
    def _strata(self) -> np.ndarray:
        """The classes: the split keeps each class's share (and a training sample of it)."""
        return self._labels()

    def train(
        self,
        max_epochs: int | None = None,
        *,
        n_steps: int | None = None,
        classifier_steps: int | None = None,
        batch_size: int = 32,
        train_size: float = 0.9,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        datasplitter_kwargs: dict | None = None,
        checkpoint_dir: str | PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        **kwargs,
    ):
        """Train the target classifier, then the generator and discriminator.

        Training length is counted in mini-batches: ``classifier_steps`` for the classifier
        (none with a user-supplied classifier), then ``n_steps`` adversarial ones.

        Parameters
        ----------
        max_epochs
            Passes over the training data in all (overrides ``n_steps``).
        n_steps
            Mini-batches of the adversarial phase (default ``default_n_steps``, 2,000).
        classifier_steps
            Mini-batches of the classifier phase (default ``default_classifier_steps``, 600).
        batch_size
            Mini-batch size.
        train_size
            Share of samples used for training; the rest (stratified by class) is held out to
            report the classifier's accuracy (``classifier_accuracy_``, and
            ``classifier_accuracy_validation`` in ``history``) and the perturbation success
            (``success_validation``). ``1.0`` holds out nothing.
        accelerator, devices
            Passed to Lightning's ``Trainer``.
        plan_kwargs
            Training-plan arguments (``lr_classifier``, ``lr_generator``,
            ``lr_discriminator``, ``weight_decay_classifier``).
        datasplitter_kwargs
            Extra arguments of scvi-tools' ``DataSplitter``.
        checkpoint_dir, checkpoint_every, resume
            Resumable checkpoints, as for every generator (see
            :meth:`~scgensynth.model.base.BaseGeneratorModel.train`): a killed run called
            again with ``resume=True`` ends with exactly the weights of an uninterrupted one
            on CPU, whichever phase it was killed in.
        **kwargs
            Plan arguments by name, or arguments of Lightning's ``Trainer``
            (``enable_progress_bar``, ``strategy="ddp"`` with ``devices=2``, ...). With data
            parallelism, step counts are optimiser steps of each process, which takes its
            share of every epoch's batches.
        """
        classifier_steps = check_count(
            classifier_steps, "classifier_steps", minimum=0, allow_none=True
        )
        plan_kwargs = dict(plan_kwargs or {})
        if classifier_steps is not None:
            plan_kwargs["classifier_steps"] = classifier_steps
        if self.module.user_classifier:
            plan_kwargs["classifier_steps"] = 0
        n_classifier = int(
            plan_kwargs.setdefault("classifier_steps", self.default_classifier_steps)
        )
        run = TrainingRun.plan(
            self, n_steps=n_steps, max_epochs=max_epochs, batch_size=batch_size,
            train_size=train_size, devices=devices, plan_kwargs=plan_kwargs, kwargs=kwargs,
            default_n_steps=self.default_n_steps, extra_steps=n_classifier,
        )  # fmt: skip
        self._check_target_samples(run.train_idx)
        rows = np.sort(run.train_idx)
        run.plan_kwargs["real_x"] = torch.as_tensor(self._scale(self._read_rows(rows)))
        run.plan_kwargs["real_labels"] = torch.as_tensor(self._labels()[rows])
        result = run.launch(
            accelerator=accelerator, devices=devices, datasplitter_kwargs=datasplitter_kwargs,
            checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume,
            what=f" ({n_classifier} for the classifier)", classifier_steps=n_classifier,
        )  # fmt: skip
        self._report_classifier(run.val_idx)
        return result

    def _check_target_samples(self, train_idx: np.ndarray) -> None:
        """Every target class needs training samples (the generator learns to reach them)."""
        counts = np.bincount(self._labels()[train_idx], minlength=len(self.categories))
        empty = [self.categories[c] for c in np.flatnonzero(counts == 0) if c in self._codes()]
        if empty:
            msg = (
                f"Target class(es) {empty} have no samples in the data; pass targets=[...] "
                "without them, or add their samples."
            )
            raise ValueError(msg)

    def _report_classifier(self, val_idx: np.ndarray) -> None:
        """The target classifier's accuracy on the held-out samples (NaN without any)."""
        self.classifier_accuracy_ = float("nan")
        if len(val_idx):
            probs = self._predict_proba(self._read_rows(val_idx))
            labels = self._labels()[val_idx]
            self.classifier_accuracy_ = float((probs.argmax(1) == labels).mean())
            logger.info(
                "Target classifier: accuracy %.3f on %d held-out samples.",
                self.classifier_accuracy_,
                len(val_idx),
            )

    def _codes(self) -> list[int]:
        return np.flatnonzero(self.module.target_mask.cpu().numpy()).tolist()

    # -- inference ----------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return self.module.x_min.device

    @torch.inference_mode()
    def _predict_proba(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities of ``f`` for samples on the input scale (the model's genes)."""
        module = self.module
        module.eval()
        out = []
        for start in range(0, len(X), batch_size):
            x = torch.as_tensor(X[start : start + batch_size], dtype=torch.float32)
            logits = module.classify(module.scale(x.to(self._device())))
            out.append(torch.softmax(logits, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.categories)))

    @doctest_skip("needs a trained model")
    def predict(self, X: np.ndarray, *, probabilities: bool = False) -> np.ndarray:
        """Classes (or class probabilities) the target classifier ``f`` gives samples.

        Parameters
        ----------
        X
            Samples x the model's genes (:attr:`var_names`), on the input scale.
        probabilities
            Return the samples x classes probabilities instead of labels.

        Examples
        --------
        >>> model.predict(adata[:, model.var_names].X)[:3]
        """
        self._check_if_trained(warn=False)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.var_names_):
            msg = f"X must be samples x {len(self.var_names_)} genes (model.var_names)."
            raise ValueError(msg)
        probs = self._predict_proba(X)
        if probabilities:
            return probs
        return np.asarray(self.categories, dtype=object)[probs.argmax(1)]

    @torch.inference_mode()
    def perturb_values(
        self, X: np.ndarray, target: Any, batch_size: int = 1024
    ) -> tuple[np.ndarray, np.ndarray]:
        """Samples moved to ``target``: ``(x_adv, class probabilities of f on x_adv)``.

        ``X`` holds samples x the model's genes (:attr:`var_names`) on the input scale;
        :func:`scgensynth.tl.perturb` takes an AnnData instead and ranks the genes moved.

        Examples
        --------
        >>> x_adv, probs = model.perturb_values(X, "Liver")  # doctest: +SKIP
        """
        target = self._class_code(target, "target")
        module = self.module
        module.eval()
        device = self._device()
        adv, probs = [], []
        for start in range(0, len(X), int(batch_size)):
            x = torch.as_tensor(X[start : start + int(batch_size)], dtype=torch.float32)
            t = torch.full((len(x),), int(target), dtype=torch.long, device=device)
            x_adv, _ = module.perturb_scaled(module.scale(x.to(device)), t)
            probs.append(torch.softmax(module.classify(x_adv), 1).cpu().numpy())
            adv.append(module.unscale(x_adv).cpu().numpy())
        n = len(self.categories)
        if not adv:
            return np.zeros((0, X.shape[1]), np.float32), np.zeros((0, n), np.float32)
        return np.concatenate(adv), np.concatenate(probs)

    def target_mean(self, target) -> np.ndarray:
        """Mean of a class over the training data, on the input scale (the model's genes)."""
        code = self._class_code(target, "target")
        with torch.no_grad():
            return self.module.unscale(self.module.class_mean[code]).cpu().numpy()

    # -- save / load --------------------------------------------------------------------------
    def _init_params_to_save(self, init: dict[str, Any]) -> dict[str, Any]:
        # a user's classifier is code: the file keeps its weights (in the module's state)
        # and its class name, and load() asks for a new instance
        arguments = dict(init["non_kwargs"])
        clf = arguments.get("classifier")
        if isinstance(clf, nn.Module):
            arguments["classifier"] = (
                f"{_USER_MODULE}{type(clf).__module__}.{type(clf).__qualname__}"
            )
        return {"non_kwargs": arguments, "kwargs": init["kwargs"]}

    @classmethod
    def _check_restored_init(cls, arguments: Mapping[str, Any], where: str) -> None:
        clf = arguments.get("classifier")
        if isinstance(clf, str) and clf.startswith(_USER_MODULE):
            msg = (
                f"{where} was trained with your own classifier ({clf[len(_USER_MODULE) :]}). "
                "Model files hold weights, not code: pass a new instance of it, "
                "TSPG.load(dir_path, adata=adata, classifier=YourClassifier(...)); its "
                "weights are restored from the file."
            )
            raise ValueError(msg)

    def _check_loaded_attributes(self) -> tuple[str, str] | None:
        """The restored gene list must name genes of the registered data (see load)."""
        names = self.var_names_
        known = set(map(str, self.adata.var_names))
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n in known for n in names
        ):
            return "attributes.var_names_", "not a list of the data's gene names"
        return None

    @classmethod
    def _load_proxy(cls, adata: AnnData, setup_args: Mapping[str, Any]) -> AnnData:
        check_covariates(adata, [setup_args["labels_key"]], [])
        return proxy_anndata(
            adata, setup_args.get("layer"), [setup_args["labels_key"]], [], warn_unused=False
        )

    def __repr__(self) -> str:
        return (
            f"TSPG(n_genes={len(self.var_names_)}, labels_key={self.labels_key!r}, "
            f"n_classes={len(self.categories)}, n_targets={len(self.targets)}, "
            f"trained={self.is_trained_})"
        )
