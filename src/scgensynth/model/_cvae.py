from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS, settings
from scvi.train import TrainingPlan

from scgensynth._utils._anndata import get_matrix, iter_row_chunks
from scgensynth._utils._checks import check_count, resolve_seed
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._random import RowNoise, draw_noise
from scgensynth.module import CVAEModule
from scgensynth.train import PrivateCVAETrainingPlan

from .base import BaseGeneratorModel
from .base._save import check_gene_names
from .base._validation import check_covariates

logger = logging.getLogger(__name__)


@doctest_skip("trains a generator (minutes)")
class CVAE(BaseGeneratorModel):
    """Conditional variational autoencoder baseline (Lacan et al. 2023).

    An encoder and a decoder built from scvi-tools' :class:`~scvi.nn.Encoder` and
    :class:`~scvi.nn.FCLayers`, conditioned on the covariates (categorical ones injected
    one-hot into every layer, continuous ones standardized and concatenated), trained on the
    per-gene standardized values with a Gaussian likelihood (a learned variance per gene) and
    scvi-tools' :class:`~scvi.train.TrainingPlan` (Adam, KL warm-up). Generation decodes
    ``z ~ N(0, I)`` with the requested covariates and inverts the scaling. Covariate handling,
    scaling, training length in steps, model selection, ``generate`` and save/load are those
    of every scgensynth generator.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Latent dimension.
    n_hidden
        Width of the hidden layers of encoder and decoder.
    n_layers
        Hidden layers of encoder and decoder.
    dropout_rate
        Dropout in the encoder.
    sample_noise
        Add the learned per-gene Gaussian noise to generated samples (default: the decoder
        mean, smoother but closer to the data's structure).
    scaling
        How expression values are scaled for training (see :class:`~scgensynth.model.WGANGP`).
    use_batch_norm, use_layer_norm
        Normalisation of the hidden layers (scvi-tools' ``FCLayers``). Differentially
        private training (``train(privacy=...)``, DP-SGD on every parameter) needs
        ``use_batch_norm=False`` (:attr:`private_kwargs`).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train(adata, "cvae", categorical_covariate_keys=["tissue"])
    >>> synth = model.generate(500, seed=0)
    >>> adata.obsm["X_cvae"] = model.get_latent_representation()  # then sc.pp.neighbors(...)
    """

    description = "conditional variational autoencoder (scvi-tools encoder/decoder blocks)"
    reference = "Lacan et al. 2023 (VAE baseline)"
    quick_kwargs: ClassVar[dict[str, Any]] = {"n_latent": 4, "n_hidden": 16}
    #: constructor arguments ``train(privacy=...)`` needs: batch norm mixes the samples of a
    #: mini-batch, so one sample's gradient could not be clipped alone
    private_kwargs: ClassVar[dict[str, Any]] = {"use_batch_norm": False, "use_layer_norm": True}
    _module_cls = CVAEModule
    _training_plan_cls = TrainingPlan
    _private_plan_cls = PrivateCVAETrainingPlan

    @property
    def logged_losses(self) -> tuple[str, ...]:
        """scvi-tools' training plan logs the evidence lower bound (a private run: nothing)."""
        if getattr(self, "privacy_", None):
            return ()
        return ("elbo_train", "elbo_validation")

    def _check_private_module(self) -> None:
        """Refuse batch norm before a private run changes anything."""
        norms = torch.nn.modules.batchnorm._BatchNorm
        if any(isinstance(m, norms) for m in self.module.modules()):
            msg = (
                "A CVAE with batch norm cannot be trained with privacy=...: batch norm mixes the "
                "samples of a mini-batch, so one sample's gradient cannot be clipped alone. "
                "Build it with use_batch_norm=False, use_layer_norm=True "
                "(sgs.tl.train(adata, 'cvae', ..., **sgs.model.CVAE.private_kwargs))."
            )
            raise ValueError(msg)

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 32,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.1,
        sample_noise: bool = False,
        scaling: str = "auto",
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
    ):
        super().__init__(adata, scaling=scaling)
        self._build_module(
            f"latent {n_latent}, hidden {n_hidden} x {n_layers}", n_latent=n_latent,
            n_hidden=n_hidden, n_layers=n_layers, dropout_rate=dropout_rate,
            sample_noise=sample_noise, use_batch_norm=bool(use_batch_norm),
            use_layer_norm=bool(use_layer_norm),
        )  # fmt: skip
        self.init_params_ = self._get_init_params(locals())

    # -- the latent space ---------------------------------------------------------------------
    @doctest_skip("needs a trained model")
    @torch.inference_mode()
    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
        *,
        return_dist: bool = False,
        seed: int | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The encoder's latent representation ``q(z | x, c)`` of samples (as scvi-tools').

        Parameters
        ----------
        adata
            Samples to encode: the training data (default), or another AnnData with the
            training genes (``var_names``, same order), the expression values in the
            training layer and the model's covariate columns (categories it was trained on).
            It is read, never modified.
        indices
            Positions of the samples of ``adata`` to encode (default: all), in this order.
        give_mean
            The posterior mean (deterministic); ``False``: one draw from the posterior.
        batch_size
            Samples encoded at a time (default ``scvi.settings.batch_size``); the result
            does not depend on it.
        return_dist
            Return the posterior's mean and variance instead.
        seed
            Seed of the draws when ``give_mean=False`` (``None``: one from torch's global
            random state); each sample's draw depends on the seed and its position only.

        Returns
        -------
        Array of ``n_obs x n_latent`` (float32); with ``return_dist``, the tuple
        ``(mean, variance)`` of such arrays.

        Examples
        --------
        >>> adata.obsm["X_cvae"] = model.get_latent_representation()
        >>> sc.pp.neighbors(adata, use_rep="X_cvae")  # doctest: +SKIP
        >>> z_test = model.get_latent_representation(test_adata)  # other samples, same genes
        """
        self._check_if_trained(warn=False)
        X, frame = self._latent_inputs(adata)
        rows = _check_indices(indices, frame.shape[0])
        batch_size = check_count(
            settings.batch_size if batch_size is None else batch_size, "batch_size"
        )
        noise = None if give_mean or return_dist else RowNoise(resolve_seed(seed))
        module = self.module
        was_training = module.training
        module.eval()
        try:
            mean, variance = self._posterior(X, frame, rows, batch_size, noise, adata is None)
        finally:
            module.train(was_training)
        return (mean, variance) if return_dist else mean

    def _posterior(
        self,
        X: Any,
        frame: pd.DataFrame,
        rows: np.ndarray,
        batch_size: int,
        noise: RowNoise | None,
        training: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means (or draws, with ``noise``) and variances of ``rows``, in blocks."""
        device = self.module.px_log_var.device
        means, variances = [], []
        blocks = iter_row_chunks(X, batch_size, rows)
        for start, block in zip(range(0, len(rows), batch_size), blocks, strict=True):
            stop = start + len(block)
            _check_finite(block, rows[start:stop], training)
            cat, cont = self._encode(frame.iloc[rows[start:stop]])
            qz = self.module.encode(
                torch.as_tensor(block, dtype=torch.float32, device=device),
                None if cat is None else torch.as_tensor(cat, device=device),
                None if cont is None else torch.as_tensor(cont, device=device),
            )
            z = qz.loc
            if noise is not None:
                noise.window(start, stop)
                z = z + qz.scale * draw_noise(noise, tuple(z.shape), device=device)
            means.append(z)
            variances.append(qz.scale**2)

        def stack(parts: list[torch.Tensor]) -> np.ndarray:
            out = torch.cat(parts) if parts else torch.zeros(0, self.module.n_latent)
            return out.cpu().numpy().astype(np.float32, copy=False)

        return stack(means), stack(variances)

    def _latent_inputs(self, adata: AnnData | None) -> tuple[Any, pd.DataFrame]:
        """``(expression matrix, covariate frame)`` of the samples to encode, checked."""
        if adata is None:
            return self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY), self.covariates_
        if not isinstance(adata, AnnData):
            msg = f"adata must be an AnnData (samples x genes), not {type(adata).__name__}."
            raise TypeError(msg)
        check_gene_names(list(self.adata.var_names), adata)
        keys = [*self._cat_keys, *self._cont_keys]
        check_covariates(adata, self._cat_keys, self._cont_keys)
        if keys:
            frame = self.check_covariates(adata.obs[keys].reset_index(drop=True))
        else:
            frame = pd.DataFrame(index=pd.RangeIndex(adata.n_obs))
        return get_matrix(adata, self.layer), frame


def _check_indices(indices: Sequence[int] | None, n: int) -> np.ndarray:
    """``indices`` as positions in ``[0, n)``, or a clear error."""
    if indices is None:
        return np.arange(n)
    values = np.asarray(indices)
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        msg = (
            "indices must be a list of sample positions (whole numbers), not "
            f"{type(indices).__name__} of dtype {values.dtype}; for a boolean mask pass "
            "np.flatnonzero(mask)."
        )
        raise TypeError(msg)
    bad = values[(values < 0) | (values >= n)]
    if bad.size:
        msg = f"indices {bad[:5].tolist()} are outside the {n} samples (positions 0 to {n - 1})."
        raise IndexError(msg)
    return values.astype(np.int64)


def _check_finite(block: np.ndarray, rows: np.ndarray, training: bool) -> None:
    """Refuse samples with NaN or infinite values (they would give NaN latents)."""
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        where = "the training data" if training else "adata"
        msg = (
            f"{int(bad.sum())} sample(s) of {where} hold NaN or infinite values (e.g. at "
            f"positions {rows[bad][:5].tolist()}); remove or impute them first."
        )
        raise ValueError(msg)
