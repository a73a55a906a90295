from __future__ import annotations

import torch

from scgensynth.module import WGANGPModule

from ._base import EpochMeanPlan
from ._private_plans import _PrivateSteps

_OPTIMIZERS = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}


class WGANGPTrainingPlan(EpochMeanPlan):
    """Critic/generator loop of WGAN-GP with Lightning's manual optimisation.

    Every mini-batch updates the critic once; every ``n_critic``-th mini-batch also updates
    the generator, with covariates taken from that real mini-batch. Logged per epoch:
    ``critic_loss``, ``generator_loss``, ``wasserstein`` (the critic's estimate of the
    Wasserstein distance) and ``gradient_penalty``.

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.WGANGPModule` to train.
    lr_generator, lr_critic
        Learning rates (Viñas et al.: 5e-4 for both, with RMSprop).
    n_critic
        Critic updates per generator update.
    optimizer
        ``"rmsprop"`` or ``"adam"`` (Adam uses betas ``(0.5, 0.9)``).
    weight_decay
        L2 penalty of both optimisers.

    Examples
    --------
    >>> from scgensynth.module import WGANGPModule
    >>> plan = WGANGPTrainingPlan(WGANGPModule(n_input=10), n_critic=5)
    >>> [type(o).__name__ for o in plan.configure_optimizers()]
    ['RMSprop', 'RMSprop']
    """

    def __init__(
        self,
        module: WGANGPModule,
        *,
        lr_generator: float = 5e-4,
        lr_critic: float = 5e-4,
        n_critic: int = 5,
        optimizer: str = "rmsprop",
        weight_decay: float = 0.0,
    ):
        super().__init__()
        if optimizer not in _OPTIMIZERS:
            msg = f"optimizer must be one of {sorted(_OPTIMIZERS)}, not {optimizer!r}."
            raise ValueError(msg)
        if int(n_critic) < 1:
            msg = f"n_critic must be >= 1, not {n_critic}."
            raise ValueError(msg)
        self.module = module
        self.lr_generator = float(lr_generator)
        self.lr_critic = float(lr_critic)
        self.n_critic = int(n_critic)
        self.optimizer_name = optimizer
        self.weight_decay = float(weight_decay)
        self.automatic_optimization = False
        self._critic_steps = 0

    #: Adam's betas when ``optimizer="adam"``
    _adam_betas: tuple[float, float] = (0.5, 0.9)
    logged_losses = ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty")
    progress_losses = ("wasserstein",)

    def critic_step_losses(self, x_scaled, cat, cont) -> tuple[torch.Tensor, dict]:
        """The critic's loss on a mini-batch and the values to log under their names."""
        out = self.module.critic_loss(x_scaled, cat, cont)
        logged = {
            "critic_loss": out["loss"],
            "wasserstein": out["wasserstein"],
            "gradient_penalty": out["penalty"],
        }
        return out["loss"], logged

    def _make_optimizer(self, params, lr):
        kwargs = {"lr": lr, "weight_decay": self.weight_decay}
        if self.optimizer_name == "adam":
            kwargs["betas"] = self._adam_betas
        return _OPTIMIZERS[self.optimizer_name](params, **kwargs)

    def configure_optimizers(self):
        m = self.module
        gen_params = list(m.generator.parameters()) + list(m.generator_embedding.parameters())
        critic_params = list(m.critic.parameters()) + list(m.critic_embedding.parameters())
        return (
            self._make_optimizer(critic_params, self.lr_critic),
            self._make_optimizer(gen_params, self.lr_generator),
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the critic-step counter (it decides which batches update the generator)."""
        checkpoint["sgs_critic_steps"] = int(self._critic_steps)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the critic-step counter of a checkpoint."""
        self._critic_steps = int(checkpoint.get("sgs_critic_steps", 0))

    def training_step(self, batch, batch_idx):
        """One critic update, and a generator update every ``n_critic`` batches."""
        opt_critic, opt_generator = self.optimizers()
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        n = x.shape[0]

        loss, logged = self.critic_step_losses(x_scaled, cat, cont)
        opt_critic.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_critic.step()
        self._critic_steps += 1
        for name, value in logged.items():
            self.accumulate(name, value, n)

        if self._critic_steps % self.n_critic == 0:
            g_loss = self.module.generator_loss(n, cat, cont)
            opt_generator.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_generator.step()
            self.accumulate("generator_loss", g_loss, n)

    def validation_step(self, batch, batch_idx):
        """Critic's Wasserstein estimate on held-out samples (no gradient penalty)."""
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        fake = self.module.generate_scaled(x.shape[0], cat, cont)
        w = (
            self.module.critic_score(x_scaled, cat, cont).mean()
            - self.module.critic_score(fake, cat, cont).mean()
        )
        self.log("wasserstein_validation", w, on_epoch=True, batch_size=x.shape[0])


class _CriticView(torch.nn.Module):
    """The critic of a WGAN-GP module as a module of its own (for :func:`torch.func`)."""

    def __init__(self, module: WGANGPModule):
        super().__init__()
        self.m = module

    def forward(self, x_scaled, cat=None, cont=None):
        return self.m.critic_score(x_scaled, cat, cont)


def _one_critic_loss(gp_weight: float, has_cat: bool, has_cont: bool):
    """Per-sample WGAN-GP critic loss for :func:`per_sample_gradients`.

    The gradient penalty runs in float32 with autocast off, whatever the training precision
    (as :meth:`~scgensynth.module.WGANGPModule.gradient_penalty`).
    """

    def loss(call, real, fake, eps, *cov):
        cov = list(cov)
        cat = cov.pop(0)[None] if has_cat else None
        cont = cov.pop(0)[None] if has_cont else None

        def score(x, cont=cont):
            return call(x[None], cat, cont).sum()

        float32 = torch.float32
        with torch.autocast(real.device.type, enabled=False):
            w = eps.to(float32)
            interp = w * real.to(float32) + (1 - w) * fake.to(float32)
            grad = torch.func.grad(score)(interp, None if cont is None else cont.to(float32))
        # grad is float32; norm and power run in float32 under autocast too
        return score(fake) - score(real) + gp_weight * (grad.norm() - 1) ** 2

    return loss


class PrivateWGANGPTrainingPlan(_PrivateSteps, WGANGPTrainingPlan):
    """WGAN-GP with a differentially private critic (DP-SGD), the only part reading real data.

    Each critic update clips every real sample's gradient (its Wasserstein term and gradient
    penalty together) to norm ``C``, adds Gaussian noise of standard deviation
    ``noise_multiplier * C`` and divides by the expected batch size; the accountant records
    the step. The generator learns only from the critic, so it inherits the guarantee
    (post-processing). Batches must come from Poisson sampling
    (:class:`~scgensynth.train.PoissonBatchSampler` with the accountant's sample rate).

    What the guarantee does not cover, and the caller must handle: the scaling statistics of
    ``module.scaling`` (pass public ones), the covariate values of the sampled rows, used to
    condition the generator (declared public), and any held-out validation data. Nothing
    computed from the training batches is logged: the history holds ``generator_loss`` and
    the validation values only.

    Parameters
    ----------
    module
        A :class:`~scgensynth.module.WGANGPModule` without a principal subspace (its basis
        would be fitted on the private data).
    accountant
        The :class:`~scgensynth.train.PrivacyAccountant` planned for this run.
    expected_batch_size
        ``sample_rate * n_train``.
    seed
        Seed of the noise.
    **kwargs
        Passed to :class:`WGANGPTrainingPlan`.

    Examples
    --------
    >>> from scgensynth.module import WGANGPModule
    >>> from scgensynth.train import PrivacyAccountant, PrivacySpec
    >>> spec = PrivacySpec(epsilon=10.0, delta=1e-4)
    >>> acc = PrivacyAccountant(spec, sample_rate=0.05, n_steps=500)
    >>> plan = PrivateWGANGPTrainingPlan(WGANGPModule(n_input=10), acc, expected_batch_size=32)
    >>> plan.logged_losses
    ('generator_loss',)
    """

    logged_losses = ("generator_loss",)
    progress_losses = ("generator_loss",)

    def __init__(self, module, accountant, *, expected_batch_size: float, seed: int = 0, **kw):
        if module.subspace is not None:
            msg = (
                "Private training cannot use n_components: the principal subspace would be "
                "fitted on the private data. Train in gene space (n_components=None)."
            )
            raise ValueError(msg)
        super().__init__(module, **kw)
        self._init_privacy(accountant, expected_batch_size, seed)

    def _private_critic_step(self, x_scaled, cat, cont) -> None:
        from ._privacy import clipped_noisy_mean, per_sample_gradients

        view = _CriticView(self.module)
        names = [
            k for k, _ in view.named_parameters() if k.startswith(("m.critic.", "m.critic_em"))
        ]
        n = x_scaled.shape[0]
        with torch.no_grad():
            fake = self.module.generate_scaled(n, cat, cont)
        eps = torch.rand(n, 1, device=x_scaled.device)
        cov = [t for t in (cat, cont) if t is not None]
        loss = _one_critic_loss(self.module.gp_weight, cat is not None, cont is not None)
        grads = per_sample_gradients(view, loss, x_scaled, fake, eps, *cov, parameters=names)
        noisy = clipped_noisy_mean(
            grads,
            max_grad_norm=self.accountant.spec.max_grad_norm,
            noise_multiplier=self.accountant.noise_multiplier,
            expected_batch_size=self.expected_batch_size,
            generator=self._noise_generator(x_scaled.device),
        )
        params = dict(view.named_parameters())
        for k in names:
            params[k].grad = noisy[k]

    def training_step(self, batch, batch_idx):
        """One private critic update, and a generator update every ``n_critic`` batches."""
        opt_critic, opt_generator = self.optimizers()
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        opt_critic.zero_grad(set_to_none=True)
        self._private_critic_step(x_scaled, cat, cont)
        opt_critic.step()
        self.accountant.step()
        self._critic_steps += 1
        if self._critic_steps % self.n_critic == 0:
            n, weight = x.shape[0], 1.0
            if n == 0:  # an empty Poisson batch: a zero-weight step keeps processes in step
                n, weight = 1, 0.0
                cat = None if cat is None else cat.new_zeros((1, *cat.shape[1:]))
                cont = None if cont is None else cont.new_zeros((1, *cont.shape[1:]))
            g_loss = self.module.generator_loss(n, cat, cont)
            opt_generator.zero_grad(set_to_none=True)
            self.manual_backward(g_loss * weight)
            opt_generator.step()
            if weight:
                self.accumulate("generator_loss", g_loss, n)
