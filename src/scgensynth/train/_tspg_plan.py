from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._base import EpochMeanPlan

if TYPE_CHECKING:
    from scgensynth.module import TSPGModule


class TSPGTrainingPlan(EpochMeanPlan):
    """TSPG's training in two phases, with Lightning's manual optimisation.

    1. The first ``classifier_steps`` mini-batches train the target classifier ``f``
       (cross-entropy, Adam); then ``f`` is frozen (skipped for a user-supplied classifier).
    2. Every later mini-batch pairs each sample with a target drawn uniformly among the
       learnt classes other than its own, draws a real training sample of each target (the
       discriminator's real examples) and a sample of the target class's Gaussian, then
       updates the discriminator (least-squares GAN) and the generator once each.

    Logged per epoch: ``classifier_loss`` and ``classifier_accuracy`` (phase 1);
    ``discriminator_loss``, ``d_real``, ``d_fake``, ``generator_loss``, its terms ``gan_loss``,
    ``adv_loss``, ``norm_loss``, ``target_loss`` and ``success`` (share of perturbed training
    samples ``f`` labels as their target) in phase 2. On held-out samples:
    ``classifier_accuracy_validation`` and, in phase 2, ``success_validation``.

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.TSPGModule` to train.
    real_x
        Min-max-scaled training samples (the discriminator's real examples and the samples
        the target Gaussians are fitted to).
    real_labels
        Their class codes.
    classifier_steps
        Mini-batches of phase 1.
    lr_classifier, lr_generator, lr_discriminator
        Adam learning rates (TSPG: 2e-4 for the generator and 1e-4 for the discriminator).
    weight_decay_classifier
        L2 penalty of the classifier's optimiser.

    Examples
    --------
    >>> from scgensynth.module import TSPGModule
    >>> module = TSPGModule(n_input=5, n_classes=3)
    >>> x, y = torch.rand(12, 5), torch.arange(12) % 3
    >>> plan = TSPGTrainingPlan(module, real_x=x, real_labels=y, classifier_steps=10)
    >>> [type(o).__name__ for o in plan.configure_optimizers()]
    ['Adam', 'Adam', 'Adam']
    """

    logged_losses = (
        "discriminator_loss", "generator_loss", "d_real", "d_fake", "classifier_loss",
        "gan_loss", "adv_loss", "norm_loss", "target_loss",
    )  # fmt: skip
    progress_losses = ("success",)

    def __init__(
        self,
        module: TSPGModule,
        *,
        real_x: torch.Tensor,
        real_labels: torch.Tensor,
        classifier_steps: int = 600,
        lr_classifier: float = 1e-3,
        lr_generator: float = 2e-4,
        lr_discriminator: float = 1e-4,
        weight_decay_classifier: float = 0.0,
    ):
        super().__init__()
        self.module = module
        self.classifier_steps = 0 if module.user_classifier else int(classifier_steps)
        if self.classifier_steps < 0:
            msg = f"classifier_steps must be >= 0, not {classifier_steps}."
            raise ValueError(msg)
        self.lr_classifier = float(lr_classifier)
        self.lr_generator = float(lr_generator)
        self.lr_discriminator = float(lr_discriminator)
        self.weight_decay_classifier = float(weight_decay_classifier)
        self.automatic_optimization = False
        real_x = torch.as_tensor(real_x, dtype=torch.float32)
        real_labels = torch.as_tensor(real_labels).long().reshape(-1)
        order = torch.argsort(real_labels, stable=True)
        counts = torch.bincount(real_labels, minlength=module.n_classes)
        self.register_buffer("real_x", real_x[order], persistent=False)
        self.register_buffer("class_start", torch.cumsum(counts, 0) - counts, persistent=False)
        self.register_buffer("class_count", counts, persistent=False)
        module.target_distribution.fit(real_x, real_labels)
        self.steps = 0
        # a module used since its last training (perturb puts it in eval mode) trains again
        # in training mode; Lightning does not switch it back
        module.train()
        if module.user_classifier:
            for p in module.classifier.parameters():
                p.requires_grad_(False)

    # -- helpers ------------------------------------------------------------------------------
    def _freeze_classifier(self) -> None:
        for p in self.module.classifier.parameters():
            p.requires_grad_(False)
        self.module.classifier.eval()

    def draw_real(self, classes: torch.Tensor) -> torch.Tensor:
        """A random training sample of each class in ``classes``."""
        u = torch.rand(len(classes), device=self.real_x.device)
        count = self.class_count[classes]
        idx = self.class_start[classes] + (u * count).long().clamp_max(count - 1)
        return self.real_x[idx]

    def configure_optimizers(self):
        m = self.module
        return (
            torch.optim.Adam(
                m.classifier.parameters(),
                lr=self.lr_classifier,
                weight_decay=self.weight_decay_classifier,
            ),
            torch.optim.Adam(m.discriminator.parameters(), lr=self.lr_discriminator),
            torch.optim.Adam(m.generator.parameters(), lr=self.lr_generator),
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the step count: it says which phase a resumed run is in."""
        checkpoint["sgs_tspg_steps"] = int(self.steps)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the step count (and a frozen classifier after its phase)."""
        self.steps = int(checkpoint.get("sgs_tspg_steps", 0))
        if self.steps >= self.classifier_steps:
            self._freeze_classifier()

    @property
    def adversarial(self) -> bool:
        """Whether the classifier phase is over."""
        return self.steps >= self.classifier_steps

    # -- steps --------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        """A classifier update (phase 1) or a discriminator and a generator update (phase 2)."""
        opt_f, opt_d, opt_g = self.optimizers()
        m = self.module
        x, labels = m.parse_batch(batch)
        x = m.scale(x)
        n = len(x)
        self.steps += 1
        if self.steps <= self.classifier_steps:
            m.classifier.train()
            out = m.classifier_loss(x, labels)
            opt_f.zero_grad(set_to_none=True)
            self.manual_backward(out["loss"])
            opt_f.step()
            self.accumulate("classifier_loss", out["loss"], n)
            self.accumulate("classifier_accuracy", out["accuracy"], n)
            if self.steps == self.classifier_steps:
                self._freeze_classifier()
            return
        self._freeze_classifier()  # f stays frozen, in eval mode (dropout off)
        target, keep = m.draw_targets(labels)
        if keep.sum() < 2:  # batch norm needs two samples
            return
        x, target = x[keep], target[keep]
        n = len(x)
        real = self.draw_real(target)
        draws = m.target_distribution.sample(target)

        x_adv, p = m.perturb_scaled(x, target)
        d_out = m.discriminator_loss(real, x_adv.detach(), target)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_out["loss"])
        opt_d.step()

        # the same perturbed samples, scored by the updated discriminator
        g_out = m.generator_loss(x, target, draws, real_scaled=real, perturbed=(x_adv, p))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_out["loss"])
        opt_g.step()

        self.accumulate("discriminator_loss", d_out["loss"], n)
        self.accumulate("d_real", d_out["d_real"], n)
        self.accumulate("d_fake", d_out["d_fake"], n)
        self.accumulate("generator_loss", g_out["loss"], n)
        for key in ("gan", "adv", "norm", "target"):
            self.accumulate(f"{key}_loss", g_out[key], n)
        self.accumulate("success", g_out["success"], n)

    def validation_step(self, batch, batch_idx):
        """Classifier accuracy on held-out samples, and (phase 2) their perturbation success."""
        m = self.module
        x, labels = m.parse_batch(batch)
        x = m.scale(x)
        n = len(x)
        accuracy = (m.classify(x).argmax(1) == labels).float().mean()
        self.log("classifier_accuracy_validation", accuracy, on_epoch=True, batch_size=n)
        if not self.adversarial:
            return
        target, keep = m.draw_targets(labels)
        if keep.any():
            x_adv, _ = m.perturb_scaled(x[keep], target[keep])
            success = (m.classify(x_adv).argmax(1) == target[keep]).float().mean()
            self.log("success_validation", success, on_epoch=True, batch_size=int(keep.sum()))
