from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from scvi import settings

from scgensynth._utils._checks import check_fraction
from scgensynth._utils._docs import doctest_skip
from scgensynth.module import GMDAModule
from scgensynth.train import GMDATrainingPlan

from .base import BaseGeneratorModel

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


@doctest_skip("trains a generator (minutes)")
class GMDA(BaseGeneratorModel):
    """Generative modelling by density alignment (Lacan, Hanczar & Sebag, ECML-PKDD 2024).

    A small conditional generator (an MLP over ``[z ‖ continuous covariates ‖ embeddings of
    categorical covariates]``, conditioned like :class:`~scgensynth.model.WGANGP`'s
    generator) trained without an adversary: at each step it aligns the mass of real and
    generated samples inside random *probes*, axis-aligned boxes over 2 or 3 random genes
    centred on real samples of the mini-batch, in the model's standardized space:

    - a probe's half-width on each of its ``d`` dimensions is a quantile (at
      ``density ** (1 / d)``) of the distances of real samples to its centre: over the
      samples of the probe's condition, over the whole mini-batch, or (drawn per probe) in
      between, so boxes hold about a share ``density`` of their condition up to of the
      mini-batch;
    - membership is soft, ``Π_j σ(steepness · (w_j - |x_j - c_j|) / w_j)``;
    - probes are conditional: a probe on a sample with categorical covariates ``c`` counts
      only real and generated samples with exactly ``c``; continuous covariates are extra
      box dimensions. Generated samples take the covariates of the real mini-batch
      (``n_generated_per_real`` per real row) and are compared as they will be returned
      (clipped at the data's lower bound);
    - per probe, ``|Σ_real - Σ_gen| / (log(1 + max(Σ_real, Σ_gen)) + 1e-3)`` (masses on
      the real mini-batch's scale), averaged over probes;
    - dark probes, centred on *generated* samples, catch generated mass where no real
      sample lies (our form of the paper's dark-probe term), weighted by ``dark_weight``;
    - persistence: the share ``persistence`` of probes with the highest loss is kept for
      the next step, the rest is redrawn.

    See :class:`~scgensynth.module._gmda.GMDAModule` for the exact rules. The generator is
    an order of magnitude smaller than WGAN-GP (on the bundled GTEx set, 467 genes and 26
    tissues: 33,007 parameters against 391,692 for WGAN-GP's generator and critic, 204,143
    for its generator alone).

    Covariate handling, scaling (inverted on generation), training length in optimiser
    steps, model selection, :meth:`generate` and save/load are those of every scgensynth
    generator. Training defaults: 3,000 steps (``default_n_steps``) of 256 samples (or all
    training samples if fewer), Adam with learning rate ``1e-2`` decayed (cosine) to
    ``5e-4``. On the GTEx 70/30 split this gives a logistic regression trained on generated
    samples 0.82-0.85 of the accuracy of one trained on the real samples (0.83 in the README's
    comparison; about 2 minutes on one CPU core).

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Size of the noise vector.
    n_hidden
        Hidden widths of the generator.
    n_probes
        Probes centred on real samples per step.
    n_probe_genes
        Numbers of genes a probe may span (each probe draws one), e.g. ``(2, 3)``.
    density
        Target share δ of the mini-batch's real samples inside a probe, in (0, 1).
    steepness
        Slope λ of the probes' soft borders (> 0; larger is closer to a hard box).
    persistence
        Share η of highest-loss probes kept for the next step, in [0, 1).
    n_dark_probes
        Dark probes (centred on generated samples) per step; 0 disables the term.
    dark_weight
        Weight of the dark-probe term.
    n_generated_per_real
        Generated samples per real row of a mini-batch.
    scaling
        How expression values are scaled for training (``"auto"`` detects it from the data and
        says which in the log).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_gmda(adata, categorical_covariate_keys=["tissue"])
    >>> liver = model.generate(50, covariates={"tissue": "Liver"}, seed=0)
    """

    description = "small generator trained by aligning real and generated mass in random probes"
    reference = "Lacan et al. 2024"
    quick_kwargs: ClassVar[dict[str, Any]] = {"n_latent": 8, "n_hidden": (16,)}
    _module_cls = GMDAModule
    _training_plan_cls = GMDATrainingPlan

    #: default training length in mini-batches. On the bundled GTEx set (70/30 split, 328
    #: training samples) TSTR/TRTR was 0.47 after 1,000 steps, 0.79 after 2,000, 0.85 after
    #: 3,000 and 0.82 after 4,000 (last weights).
    default_n_steps: int = 3000
    #: default mini-batch size: probes count samples, so larger batches give steadier counts
    default_batch_size: int = 256

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 32,
        n_hidden: Sequence[int] = (64,),
        n_probes: int = 4000,
        n_probe_genes: int | Sequence[int] = (2, 3),
        density: float = 0.1,
        steepness: float = 2.0,
        persistence: float = 0.8,
        n_dark_probes: int = 2000,
        dark_weight: float = 1.0,
        n_generated_per_real: int = 4,
        scaling: str = "auto",
    ):
        super().__init__(adata, scaling=scaling)
        n_hidden = [int(h) for h in n_hidden]
        if not isinstance(n_probe_genes, int):
            n_probe_genes = list(n_probe_genes)
        self._build_module(
            f"latent {n_latent}, hidden {n_hidden}, {n_probes} probes over {n_probe_genes} "
            f"genes + {n_dark_probes} dark, density {density}",
            n_latent=n_latent, n_hidden=n_hidden, n_probes=n_probes,
            n_probe_genes=n_probe_genes, density=density, steepness=steepness,
            persistence=persistence, n_dark_probes=n_dark_probes, dark_weight=dark_weight,
            n_generated_per_real=n_generated_per_real,
        )  # fmt: skip
        self.init_params_ = self._get_init_params(locals())

    def train(
        self,
        max_epochs: int | None = None,
        *,
        batch_size: int | None = None,
        train_size: float = 0.9,
        **kwargs,
    ):
        """Train the generator (see :meth:`BaseGeneratorModel.train`).

        Parameters
        ----------
        max_epochs
            Number of passes over the training data (overrides ``n_steps``).
        batch_size
            Mini-batch size; default ``default_batch_size`` (256), or all training samples
            when there are fewer.
        train_size
            Share of samples used for training; the rest is held out for model selection.
        **kwargs
            ``n_steps`` (default ``default_n_steps``, 3,000), ``selection``, ``patience``, plan
            arguments (``lr``, ``lr_min_ratio``, ``weight_decay``) and Lightning ``Trainer``
            arguments, as for every scgensynth generator.
        """
        if batch_size is None:
            train_size = check_fraction(train_size, "train_size")
            n_train = len(self._split(train_size, int(settings.seed or 0))[0])
            batch_size = max(2, min(self.default_batch_size, n_train))
        return super().train(max_epochs, batch_size=batch_size, train_size=train_size, **kwargs)
