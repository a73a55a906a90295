"""Differentially private training plans of the CVAE and the DDPM (DP-SGD on every weight).

Both networks read the real samples with all their trainable weights (the CVAE's encoder
and decoder, the DDPM's denoiser), so every update is a DP-SGD step: each sample's gradient
is computed alone (:func:`~scgensynth.train.per_sample_gradients`), clipped to norm ``C``,
summed with Gaussian noise and divided by the expected batch size
(:func:`~scgensynth.train.clipped_noisy_mean`); the accountant records one step per batch.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.distributions import Normal

from ._base import EpochMeanPlan
from ._ddpm_plan import DDPMTrainingPlan
from ._privacy import clipped_noisy_mean, per_sample_gradients

logger = logging.getLogger(__name__)


def _refuse_batch_norm(module: nn.Module, hint: str) -> None:
    """Refuse a module with batch norm: it mixes samples, so per-sample clipping fails."""
    found = [
        n for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if found:
        msg = (
            f"Differentially private training cannot use batch norm ({found[0]} and "
            f"{len(found) - 1} more): it mixes the samples of a mini-batch, so one sample's "
            f"gradient cannot be clipped alone. {hint}"
        )
        raise ValueError(msg)


class _PrivateSteps:
    """What the private plans share: the accountant, the noise, the checkpointed state."""

    def _init_privacy(self, accountant, expected_batch_size: float, seed: int) -> None:
        if not float(expected_batch_size) > 0:
            msg = (
                "expected_batch_size must be > 0 (sample_rate x n_train), not "
                f"{expected_batch_size}."
            )
            raise ValueError(msg)
        self.accountant = accountant
        self.expected_batch_size = float(expected_batch_size)
        self.noise_seed = int(seed)
        self._noise = None
        self.automatic_optimization = False

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the accountant's exact state."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["sgs_privacy_accountant"] = self.accountant.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the accountant (an error if it was planned for another run)."""
        super().on_load_checkpoint(checkpoint)
        self.accountant.load_state_dict(checkpoint["sgs_privacy_accountant"])
        self._noise = None  # the noise continues from the restored step count

    def on_train_epoch_start(self) -> None:
        """Reseed the noise from the step count, so a run resumed at this epoch repeats."""
        self._noise = None

    def _noise_generator(self, device) -> torch.Generator:
        if self._noise is None or self._noise.device != torch.device(device):
            gen = torch.Generator(device=device)
            # each process of a data-parallel run draws its own noise
            step = self.noise_seed * 1_000_003 + self.accountant.steps_taken
            gen.manual_seed(step * 65_537 + self.global_rank)
            self._noise = gen
        return self._noise

    def _budget_spent(self) -> bool:
        """True (and the trainer told to stop) once the planned private steps are taken."""
        if self.accountant.steps_taken < self.accountant.n_steps:
            return False
        if self._trainer is not None and not self.trainer.should_stop:
            self.trainer.should_stop = True
            logger.warning(
                "The %d private steps the privacy budget was planned for are taken; training "
                "stops.",
                self.accountant.n_steps,
            )
        return True

    def _private_update(self, optimizer, params: dict[str, nn.Parameter], grads: dict) -> None:
        """``.grad`` = clipped noisy mean of ``grads``; one optimiser step, one accounted step."""
        noisy = clipped_noisy_mean(
            grads,
            max_grad_norm=self.accountant.spec.max_grad_norm,
            noise_multiplier=self.accountant.noise_multiplier,
            expected_batch_size=self.expected_batch_size,
            generator=self._noise_generator(next(iter(grads.values())).device),
        )
        optimizer.zero_grad(set_to_none=True)
        for name, value in noisy.items():
            params[name].grad = value
        optimizer.step()
        self.accountant.step()


# -- the CVAE -----------------------------------------------------------------------------------
class _CVAELoss(nn.Module):
    """One sample's CVAE loss with the reparametrisation noise given (for :mod:`torch.func`).

    Categorical covariates come one-hot encoded (scvi-tools' layers encode integer codes with
    a data-dependent check that :func:`torch.func.vmap` cannot run).
    """

    def __init__(self, module):
        super().__init__()
        self.m = module

    def forward(self, x_scaled, eps, onehots, cont, kl_weight: float):
        m, enc = self.m, self.m.encoder
        q = enc.encoder(m._with_cont(x_scaled, cont), *onehots)
        q_m = enc.mean_encoder(q)
        q_v = enc.var_activation(enc.var_encoder(q)) + enc.var_eps
        z = enc.z_transformation(q_m + q_v.sqrt() * eps)
        px_mean = m.px_mean(m.decoder(m._with_cont(z, cont), *onehots))
        inference = {"x_scaled": x_scaled, "qz": Normal(q_m, q_v.sqrt())}
        return m.loss(None, inference, {"px_mean": px_mean}, kl_weight=kl_weight).loss


def _cvae_loss_of_one(n_onehots: int, has_cont: bool, kl_weight: float):
    def loss(call, x, eps, *cov):
        onehots = [c[None] for c in cov[:n_onehots]]
        cont = cov[n_onehots][None] if has_cont else None
        return call(x[None], eps[None], onehots, cont, kl_weight)

    return loss


class PrivateCVAETrainingPlan(_PrivateSteps, EpochMeanPlan):
    """CVAE training by DP-SGD on all its weights (encoder, decoder, per-gene variance).

    Each mini-batch: every sample's loss (Gaussian negative log-likelihood + ``kl_weight`` x
    KL, as :meth:`~scgensynth.module.CVAEModule.loss` computes it) is differentiated alone,
    each gradient clipped to norm ``C = max_grad_norm``, Gaussian noise of standard deviation
    ``noise_multiplier * C`` added to the sum, which is divided by the expected batch size;
    Adam takes one step and the accountant records it. One Lightning step is one private
    step; once the accountant's planned steps are taken, training stops. Batches must come
    from Poisson sampling (:class:`~scgensynth.train.PoissonBatchSampler` with the
    accountant's sample rate); an empty batch is a step of noise only.

    The KL weight warms up as in scvi-tools' :class:`~scvi.train.TrainingPlan`: linearly
    from 0 to 1 over ``n_epochs_kl_warmup`` epochs (passes of the batch sampler) or, if that
    is ``None``, over ``n_steps_kl_warmup`` steps; it depends on the step count only.

    Not covered by the guarantee, the caller's to handle: the statistics of
    ``module.scaling`` and of continuous covariates (pass public ones), the covariates of
    the sampled rows (declared public) and any validation data. Nothing computed from the
    training batches is logged; a validation loader logs ``elbo_validation``.

    Parameters
    ----------
    module
        A :class:`~scgensynth.module.CVAEModule` without batch norm
        (``use_batch_norm=False``; ``use_layer_norm=True`` normalises per sample).
    accountant
        The :class:`~scgensynth.train.PrivacyAccountant` planned for this run.
    expected_batch_size
        ``sample_rate * n_train``.
    seed
        Seed of the noise (with the accountant's step count, so a resumed run continues).
    lr, weight_decay, eps
        Adam's settings (scvi-tools' defaults).
    n_epochs_kl_warmup, n_steps_kl_warmup
        KL warm-up length (see above; both ``None``: weight 1 from the start).

    Examples
    --------
    >>> from scgensynth.module import CVAEModule
    >>> from scgensynth.train import PrivacyAccountant, PrivacySpec
    >>> acc = PrivacyAccountant(PrivacySpec(epsilon=10.0, delta=1e-4), sample_rate=0.05,
    ...                         n_steps=500)
    >>> module = CVAEModule(n_input=10, n_hidden=16, use_batch_norm=False, use_layer_norm=True)
    >>> plan = PrivateCVAETrainingPlan(module, acc, expected_batch_size=32)
    >>> plan.logged_losses, type(plan.configure_optimizers()).__name__
    ((), 'Adam')
    """

    logged_losses = ()
    progress_losses = ()

    def __init__(
        self,
        module,
        accountant,
        *,
        expected_batch_size: float,
        seed: int = 0,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        eps: float = 0.01,
        n_epochs_kl_warmup: int | None = 400,
        n_steps_kl_warmup: int | None = None,
    ):
        _refuse_batch_norm(
            module,
            "Build the CVAE with use_batch_norm=False (use_layer_norm=True normalises each "
            "sample on its own).",
        )
        super().__init__()
        self._init_privacy(accountant, expected_batch_size, seed)
        self.module = module
        self.lr, self.weight_decay, self.eps = float(lr), float(weight_decay), float(eps)
        self.n_epochs_kl_warmup = n_epochs_kl_warmup
        self.n_steps_kl_warmup = n_steps_kl_warmup

    @property
    def kl_weight(self) -> float:
        """Weight of the KL term at this epoch/step (scvi-tools' linear warm-up from 0 to 1)."""
        epoch = self.current_epoch if self._trainer is not None else 0
        step = self.global_step if self._trainer is not None else 0
        if self.n_epochs_kl_warmup:
            return min(1.0, epoch / self.n_epochs_kl_warmup)
        if self.n_steps_kl_warmup:
            return min(1.0, step / self.n_steps_kl_warmup)
        return 1.0

    def configure_optimizers(self):
        params = [p for p in self.module.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr, eps=self.eps, weight_decay=self.weight_decay)

    def _onehots(self, cat: torch.Tensor | None) -> list[torch.Tensor]:
        if cat is None:
            return []
        return [
            nn.functional.one_hot(cat[:, i], n).float()
            for i, n in enumerate(self.module.n_cats_per_cov)
        ]

    def per_sample_gradients(self, x_scaled, cat, cont, eps, kl_weight: float) -> dict:
        """Each sample's loss gradient, ``{parameter name: (n, *shape)}``.

        ``eps`` (``(n, n_latent)``) is the reparametrisation noise of ``z``; names are the
        module's own (``"encoder...."``).
        """
        onehots = self._onehots(cat)
        cov = [*onehots, *([] if cont is None else [cont])]
        loss = _cvae_loss_of_one(len(onehots), cont is not None, float(kl_weight))
        grads = per_sample_gradients(_CVAELoss(self.module), loss, x_scaled, eps, *cov)
        return {k.removeprefix("m."): v for k, v in grads.items()}

    def training_step(self, batch, batch_idx):
        """One DP-SGD step on the mini-batch (noise only if it is empty)."""
        if self._budget_spent():
            return
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        eps = torch.randn(x.shape[0], self.module.n_latent, device=x.device)
        grads = self.per_sample_gradients(x_scaled, cat, cont, eps, self.kl_weight)
        params = dict(self.module.named_parameters())
        self._private_update(self.optimizers(), params, grads)

    def validation_step(self, batch, batch_idx):
        """Evidence lower bound (KL weight 1) on held-out samples."""
        x, cat, cont = self.module.parse_batch(batch)
        inference = self.module.inference(x, cat, cont)
        generative = self.module.generative(inference["z"], cat, cont)
        out = self.module.loss(batch, inference, generative, kl_weight=1.0)
        elbo = (out.reconstruction_loss["reconstruction_loss"] + out.kl_local["kl_local"]).mean()
        self.log("elbo_validation", elbo, on_epoch=True, batch_size=x.shape[0])


# -- the DDPM -----------------------------------------------------------------------------------
class _DenoisingLoss(nn.Module):
    """One sample's noise-prediction error with ``t`` and the noise given (for :mod:`torch.func`).

    ``drop`` (a Python bool, the same for all samples of one call) replaces the covariates by
    the null condition, as :meth:`~scgensynth.module.DDPMModule.diffusion_loss` does.
    """

    def __init__(self, module):
        super().__init__()
        self.m = module

    def forward(self, x_scaled, t, noise, cat, cont, drop: bool):
        m = self.m
        x_t = m.diffusion.q_sample(x_scaled, t, noise)
        dropped = torch.ones(x_t.shape[0], dtype=torch.bool, device=x_t.device) if drop else None
        eps = m.denoiser(x_t, t, cat, m.standardize_continuous(cont), drop_condition=dropped)
        return ((eps - noise) ** 2).mean(-1).sum()


def _ddpm_loss_of_one(has_cat: bool, has_cont: bool, drop: bool):
    def loss(call, x, t, noise, *cov):
        cov = list(cov)
        cat = cov.pop(0)[None] if has_cat else None
        cont = cov.pop(0)[None] if has_cont else None
        return call(x[None], t[None], noise[None], cat, cont, drop)

    return loss


class PrivateDDPMTrainingPlan(_PrivateSteps, DDPMTrainingPlan):
    """DDPM training by DP-SGD on the denoiser; the weight average follows (post-processing).

    Each mini-batch draws a time step, noise and the covariate drop (rate ``p_uncond``) per
    sample; every sample's noise-prediction error (as
    :meth:`~scgensynth.module.DDPMModule.diffusion_loss`) is differentiated alone, each
    gradient clipped to norm ``C = max_grad_norm`` (this replaces the plain plan's global
    clipping), Gaussian noise of standard deviation ``noise_multiplier * C`` added to the
    sum, which is divided by the expected batch size; AdamW takes one step (with the linear
    learning-rate warm-up), the accountant records it and the weight average is updated. One
    Lightning step is one private step; once the accountant's planned steps are taken,
    training stops. Batches must come from Poisson sampling
    (:class:`~scgensynth.train.PoissonBatchSampler` with the accountant's sample rate); an
    empty batch is a step of noise only.

    Not covered by the guarantee, the caller's to handle: the statistics of
    ``module.scaling`` and of continuous covariates (pass public ones), the covariates of
    the sampled rows (declared public) and any validation data. Nothing computed from the
    training batches is logged; a validation loader logs ``diffusion_loss_validation``.

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.DDPMModule` to train.
    accountant
        The :class:`~scgensynth.train.PrivacyAccountant` planned for this run.
    expected_batch_size
        ``sample_rate * n_train``.
    seed
        Seed of the noise (with the accountant's step count, so a resumed run continues).
    **kwargs
        ``lr``, ``weight_decay``, ``lr_warmup_steps`` of :class:`DDPMTrainingPlan`
        (``grad_clip`` must be ``None``: per-sample clipping replaces it).

    Examples
    --------
    >>> from scgensynth.module import DDPMModule
    >>> from scgensynth.train import PrivacyAccountant, PrivacySpec
    >>> acc = PrivacyAccountant(PrivacySpec(epsilon=10.0, delta=1e-4), sample_rate=0.05,
    ...                         n_steps=500)
    >>> module = DDPMModule(n_input=10, n_hidden=16, n_blocks=1)
    >>> plan = PrivateDDPMTrainingPlan(module, acc, expected_batch_size=32, lr_warmup_steps=50)
    >>> plan.logged_losses, plan.grad_clip
    ((), None)
    """

    logged_losses = ()
    progress_losses = ()

    def __init__(self, module, accountant, *, expected_batch_size: float, seed: int = 0, **kw):
        if kw.pop("grad_clip", None) is not None:
            msg = (
                "grad_clip must be None in private training: each sample's gradient is "
                "clipped at privacy['max_grad_norm'] instead."
            )
            raise ValueError(msg)
        _refuse_batch_norm(module.denoiser, "Use a denoiser without batch norm.")
        super().__init__(module, grad_clip=None, **kw)
        self._init_privacy(accountant, expected_batch_size, seed)

    def draw_randomness(self, n: int, device=None):
        """Time steps, noise and covariate drops (bool) of ``n`` samples, as the module draws."""
        m = self.module
        t = m.diffusion.sample_timesteps(n, device)
        noise = torch.randn(n, m.n_input, device=device)
        drop = torch.zeros(n, dtype=torch.bool, device=device)
        if m.p_uncond > 0 and m.denoiser.n_condition:
            drop = torch.rand(n, device=device) < m.p_uncond
        return t, noise, drop

    def per_sample_gradients(self, x_scaled, cat, cont, t, noise, drop) -> dict:
        """Each sample's loss gradient, ``{parameter name: (n, *shape)}``, in batch order.

        Samples with and without dropped covariates are differentiated in two groups (the
        denoiser's null condition is chosen by Python control flow); names are the module's
        own (``"denoiser...."``).
        """
        view = _DenoisingLoss(self.module)
        names = [k for k, p in view.named_parameters() if k.startswith("m.denoiser.")]
        parts, order = [], []
        for flag in (False, True):
            rows = torch.nonzero(drop == flag).flatten()
            if flag and len(rows) == 0 and parts:
                continue
            cov = [c[rows] for c in (cat, cont) if c is not None]
            loss = _ddpm_loss_of_one(cat is not None, cont is not None, flag)
            args = (x_scaled[rows], t[rows], noise[rows], *cov)
            parts.append(per_sample_gradients(view, loss, *args, parameters=names))
            order.append(rows)
        inverse = torch.argsort(torch.cat(order))
        return {k.removeprefix("m."): torch.cat([p[k] for p in parts])[inverse] for k in names}

    def training_step(self, batch, batch_idx):
        """One DP-SGD step on the mini-batch (noise only if it is empty)."""
        if self._budget_spent():
            return
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        grads = self.per_sample_gradients(
            x_scaled, cat, cont, *self.draw_randomness(x.shape[0], x.device)
        )
        self._private_update(self.optimizers(), dict(self.module.named_parameters()), grads)
        self.lr_schedulers().step()
