"""Networks, losses and target distributions of TSPG (Targonski et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput
from torch import nn

from scgensynth.nn import MLP, BatchNormMLP, HourglassMLP

#: covariance models of the target-class Gaussians
TARGET_COVARIANCES = ("diag", "full")

#: added to the diagonal of every full covariance (min-max-scaled units), so the Cholesky
#: factor exists even for constant genes and single-sample classes
COVARIANCE_JITTER = 1e-6


# -- losses ---------------------------------------------------------------------------------
def cw_margin_loss(logits: torch.Tensor, target: torch.Tensor, kappa: float = 0.0) -> torch.Tensor:
    """Carlini–Wagner targeted margin, one value per sample.

    ``max(max_{i != t} z_i - z_t + kappa, 0)`` on the logits ``z``: zero once the target's
    logit beats every other class by the confidence ``kappa``.

    Examples
    --------
    >>> z = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    >>> cw_margin_loss(z, torch.tensor([0, 0]), kappa=0.5)
    tensor([0.0000, 3.5000])
    """
    target = target.long()
    real = logits.gather(1, target[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return torch.clamp(others.max(1).values - real + float(kappa), min=0.0)


def lsgan_discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN discriminator loss ``mean((D(real) - 1)^2) + mean(D(fake)^2)``.

    Examples
    --------
    >>> lsgan_discriminator_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    tensor(2.5000)
    """
    return ((real_score - 1) ** 2).mean() + (fake_score**2).mean()


def lsgan_generator_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN generator loss ``mean((D(fake) - 1)^2)``.

    Examples
    --------
    >>> lsgan_generator_loss(torch.tensor([1.0, 3.0]))
    tensor(2.)
    """
    return ((fake_score - 1) ** 2).mean()


def perturbation_norm(p: torch.Tensor) -> torch.Tensor:
    """Root mean square of each perturbation, ``||p||_2 / sqrt(n_genes)``, one per sample.

    Examples
    --------
    >>> perturbation_norm(torch.tensor([[3.0, 4.0, 0.0, 0.0]]))
    tensor([2.5000])
    """
    return p.norm(dim=1) / p.shape[1] ** 0.5


def target_distance(x_adv: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per gene, ``||x_adv - draw||_1 / n_genes``, one per sample.

    Examples
    --------
    >>> target_distance(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]]))
    tensor([0.7500])
    """
    return (x_adv - draws).abs().mean(dim=1)


# -- target-class Gaussians -----------------------------------------------------------------
def shrunk_covariance(x: np.ndarray) -> np.ndarray:
    """Ledoit–Wolf covariance shrunk towards its diagonal, positive definite on few samples.

    The correlation matrix is shrunk towards the identity with the Ledoit–Wolf intensity
    (:func:`sklearn.covariance.ledoit_wolf` on the standardized samples), then rescaled by the
    genes' variances, so the variances are kept and only correlations shrink.
    :data:`COVARIANCE_JITTER` is added to the diagonal (constant genes, single samples).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(5, 20))  # fewer samples than genes: the sample covariance is singular
    >>> bool(np.linalg.eigvalsh(shrunk_covariance(x)).min() > 0)
    True
    """
    from sklearn.covariance import ledoit_wolf

    x = np.asarray(x, dtype=np.float64)
    n, g = x.shape
    cov = np.zeros((g, g))
    std = x.std(0) if n else np.zeros(g)
    varying = std > 0
    if n >= 2 and varying.sum() >= 1:
        z = (x[:, varying] - x[:, varying].mean(0)) / std[varying]
        corr = ledoit_wolf(z, assume_centered=True)[0] if varying.sum() > 1 else np.ones((1, 1))
        s = std[varying]
        cov[np.ix_(varying, varying)] = corr * s[:, None] * s[None, :]
    cov[np.diag_indices(g)] += COVARIANCE_JITTER
    return cov


class TargetDistribution(nn.Module):
    """One Gaussian per class, fitted to its samples; draws are clipped to ``[0, 1]``.

    TSPG pulls a perturbed sample towards random draws of its target class's Gaussian (its
    ``L_td`` term). ``covariance="diag"`` uses the genes' standard deviations; ``"full"`` a
    Ledoit–Wolf-shrunk covariance (:func:`shrunk_covariance`) sampled through its Cholesky
    factor. The statistics are non-persistent buffers: only training needs them.

    Examples
    --------
    >>> dist = TargetDistribution(n_input=3, n_classes=2, covariance="diag")
    >>> x = torch.tensor([[0.2, 0.4, 0.6], [0.4, 0.4, 0.8], [0.9, 0.1, 0.5], [0.7, 0.3, 0.5]])
    >>> dist.fit(x, torch.tensor([0, 0, 1, 1]))
    >>> dist.mean
    tensor([[0.3000, 0.4000, 0.7000],
            [0.8000, 0.2000, 0.5000]])
    >>> dist.sample(torch.tensor([1, 1, 0])).shape
    torch.Size([3, 3])
    """

    def __init__(self, n_input: int, n_classes: int, covariance: str = "diag"):
        super().__init__()
        if covariance not in TARGET_COVARIANCES:
            msg = f"target_covariance must be one of {TARGET_COVARIANCES}, not {covariance!r}."
            raise ValueError(msg)
        self.n_input, self.n_classes, self.covariance = int(n_input), int(n_classes), covariance
        self.register_buffer("mean", torch.zeros(self.n_classes, self.n_input), persistent=False)
        self.register_buffer("factor", torch.zeros(0), persistent=False)
        self.fitted = False

    def fit(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit each class's Gaussian to its rows of ``x`` (min-max-scaled samples)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        labels = torch.as_tensor(labels).long().cpu()
        device = self.mean.device
        mean = torch.zeros(self.n_classes, self.n_input)
        if self.covariance == "diag":
            factor = torch.zeros(self.n_classes, self.n_input)
        else:
            factor = torch.zeros(self.n_classes, self.n_input, self.n_input)
        xc = x.detach().cpu().double()
        for c in range(self.n_classes):
            rows = xc[labels == c]
            if len(rows) == 0:
                continue
            mean[c] = rows.mean(0).float()
            if self.covariance == "diag":
                factor[c] = rows.std(0, unbiased=False).float()
            else:
                cov = torch.as_tensor(shrunk_covariance(rows.numpy()))
                factor[c] = torch.linalg.cholesky(cov).float()
        self.mean = mean.to(device)
        self.factor = factor.to(device)
        self.fitted = True

    def sample(
        self, classes: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One draw per entry of ``classes`` (class codes), clipped to ``[0, 1]``."""
        if not self.fitted:
            msg = "The target distribution is not fitted; call fit(x, labels) first."
            raise RuntimeError(msg)
        classes = classes.long()
        device = self.mean.device
        if generator is not None and generator.device != device:
            z = torch.randn(len(classes), self.n_input, generator=generator).to(device)
        else:
            z = torch.randn(len(classes), self.n_input, generator=generator, device=device)
        if self.covariance == "diag":
            draws = self.mean[classes] + z * self.factor[classes]
        else:  # one matrix product per class (gathering a factor per sample costs n x G^2)
            draws = self.mean[classes].clone()
            for c in torch.unique(classes).tolist():
                rows = classes == c
                draws[rows] += z[rows] @ self.factor[c].T
        return draws.clamp(0.0, 1.0)


# -- the module ------------------------------------------------------------------------------
class TSPGModule(BaseModuleClass):
    """Target classifier, perturbation generator and discriminator of TSPG, with their losses.

    All networks work on min-max-scaled expression (``[0, 1]`` per gene over the training
    data; :meth:`scale` / :meth:`unscale`, statistics stored as buffers). For a sample ``x``
    and a target class ``t``:

    - the target classifier ``f`` maps ``x`` to class logits (MLP, ReLU and dropout, or a
      module given as ``classifier``);
    - the generator ``G([x ‖ onehot(t)])`` gives a perturbation ``p`` in ``[-1, 1]``
      (:class:`~scgensynth.nn._hourglass.HourglassMLP`, layer norm by default, its output
      layer initialised at zero so training starts from ``p = 0``), zero on constant genes,
      and the perturbed sample is ``x_adv = clip(x + p, 0, 1)``;
    - the discriminator ``D([x ‖ onehot(t)])`` scores whether ``x`` is a real sample of class
      ``t`` (batch norm, leaky ReLU 0.2, linear output, least-squares GAN losses).

    The generator's loss is ``gan_weight * L_GAN + adv_weight * L_adv + norm_weight * L_norm +
    target_weight * L_td``, each a batch mean of: ``(D(x_adv, t) - 1)^2``; the Carlini–Wagner
    margin ``max(max_{i != t} f_i - f_t + kappa, 0)`` (:func:`cw_margin_loss`);
    ``||p||_2 / sqrt(n_genes)``; ``||x_adv - s||_1 / n_genes`` with ``s`` a draw of class
    ``t``'s Gaussian (:class:`TargetDistribution`). The two norms are divided by the number of
    genes (TSPG sums them) so that one set of weights serves gene sets of any size.

    Parameters
    ----------
    n_input
        Number of genes.
    n_classes
        Number of classes of the labels.
    targets
        Codes of the classes the generator learns to reach (default: all).
    n_hidden_classifier
        Hidden widths of the target classifier (TSPG: 1024, 512, 128).
    classifier_dropout
        Dropout after each hidden layer of the classifier.
    n_hidden_generator
        Encoder widths of the hourglass generator (TSPG: 512, 256, 128).
    n_residual
        Residual blocks of the generator (TSPG: 3).
    generator_norm
        Normalisation of the generator's layers: ``"layer"``, ``"batch"`` (TSPG's) or
        ``None``.
    n_hidden_discriminator
        Hidden widths of the discriminator (TSPG: 512, 256, 128).
    gan_weight, adv_weight, norm_weight, target_weight
        Weights of the four generator losses.
    kappa
        Confidence margin of the Carlini–Wagner loss (logit units).
    target_covariance
        ``"diag"`` or ``"full"``: covariance of the target-class Gaussians.
    classifier
        A torch module mapping min-max-scaled samples (``n_input`` genes) to ``n_classes``
        logits, used instead of the MLP and never trained here.
    gene_index
        Columns of the registered data the model works on (a gene set); default: all.

    Examples
    --------
    >>> module = TSPGModule(n_input=6, n_classes=3, n_hidden_classifier=(8,),
    ...                     n_hidden_generator=(8, 4), n_hidden_discriminator=(8,))
    >>> module.set_scaling(torch.zeros(6), torch.full((6,), 2.0))
    >>> x = torch.rand(4, 6) * 2
    >>> x_adv, p = module.perturb_scaled(module.scale(x), torch.tensor([0, 1, 2, 0]))
    >>> bool(x_adv.min() >= 0 and x_adv.max() <= 1), module.classify(x_adv).shape
    (True, torch.Size([4, 3]))
    """

    def __init__(
        self,
        n_input: int,
        n_classes: int,
        targets: Sequence[int] | None = None,
        n_hidden_classifier: Sequence[int] = (1024, 512, 128),
        classifier_dropout: float = 0.5,
        n_hidden_generator: Sequence[int] = (512, 256, 128),
        n_residual: int = 3,
        generator_norm: str | None = "layer",
        n_hidden_discriminator: Sequence[int] = (512, 256, 128),
        gan_weight: float = 1.0,
        adv_weight: float = 1.0,
        norm_weight: float = 1.0,
        target_weight: float = 1.0,
        kappa: float = 0.0,
        target_covariance: str = "diag",
        classifier: nn.Module | None = None,
        gene_index: Sequence[int] | None = None,
    ):
        super().__init__()
        self.n_input, self.n_classes = int(n_input), int(n_classes)
        index = torch.as_tensor([] if gene_index is None else list(gene_index), dtype=torch.long)
        if index.numel() and index.numel() != self.n_input:
            msg = f"gene_index has {index.numel()} genes for n_input={self.n_input}."
            raise ValueError(msg)
        self.register_buffer("gene_index", index)
        self.gan_weight = float(gan_weight)
        self.adv_weight = float(adv_weight)
        self.norm_weight = float(norm_weight)
        self.target_weight = float(target_weight)
        self.kappa = float(kappa)
        mask = torch.zeros(self.n_classes, dtype=torch.bool)
        mask[list(range(self.n_classes)) if targets is None else [int(t) for t in targets]] = True
        self.register_buffer("target_mask", mask)
        self.register_buffer("x_min", torch.zeros(self.n_input))
        self.register_buffer("x_width", torch.ones(self.n_input))
        self.register_buffer("class_mean", torch.zeros(self.n_classes, self.n_input))
        self.user_classifier = classifier is not None
        if classifier is None:
            classifier = MLP(
                self.n_input, self.n_classes, n_hidden_classifier, dropout=classifier_dropout
            )
        self.classifier = classifier
        self.generator = HourglassMLP(
            self.n_input + self.n_classes,
            self.n_input,
            n_hidden_generator,
            n_residual,
            norm=generator_norm,
        )
        with torch.no_grad():  # p = 0 at first: training starts from x_adv = x
            self.generator.net[-2].weight.zero_()
            self.generator.net[-2].bias.zero_()
        self.discriminator = BatchNormMLP(self.n_input + self.n_classes, 1, n_hidden_discriminator)
        self.target_distribution = TargetDistribution(
            self.n_input, self.n_classes, target_covariance
        )

    # -- scaling ----------------------------------------------------------------------------
    def set_scaling(self, x_min, x_max) -> None:
        """Per-gene minimum and maximum of the training data (constant genes: width 0)."""
        device = self.x_min.device
        x_min = torch.as_tensor(x_min, dtype=torch.float32, device=device)
        width = torch.as_tensor(x_max, dtype=torch.float32, device=device) - x_min
        self.x_min.copy_(x_min)
        self.x_width.copy_(width.clamp_min(0.0))

    @property
    def varying(self) -> torch.Tensor:
        """Genes with a range (constant genes are never perturbed)."""
        return self.x_width > 0

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Expression values -> ``[0, 1]`` on training data (constant genes -> 0)."""
        width = torch.where(self.varying, self.x_width, torch.ones_like(self.x_width))
        return torch.where(self.varying, (x.float() - self.x_min) / width, 0.0)

    def unscale(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` -> expression values (constant genes at their value)."""
        return x_scaled * self.x_width + self.x_min

    # -- networks ---------------------------------------------------------------------------
    def one_hot(self, target: torch.Tensor) -> torch.Tensor:
        """One-hot rows of the target codes."""
        return F.one_hot(target.long(), self.n_classes).float()

    def classify(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Logits of the target classifier ``f``."""
        return self.classifier(x_scaled)

    def perturbation(self, x_scaled: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``p = G([x ‖ onehot(t)])``, zero on constant genes."""
        p = self.generator(torch.cat([x_scaled, self.one_hot(target)], dim=-1))
        return p * self.varying

    def perturb_scaled(
        self, x_scaled: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_adv, p)`` with ``x_adv = clip(x + p, 0, 1)``."""
        p = self.perturbation(x_scaled, target)
        return (x_scaled + p).clamp(0.0, 1.0), p

    def discriminate(self, x_scaled: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Discriminator score of ``x`` as a real sample of class ``t``, shape ``(n,)``."""
        return self.discriminator(torch.cat([x_scaled, self.one_hot(target)], dim=-1))[:, 0]

    def draw_targets(
        self, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A target per sample, uniform among the learnt targets other than its own class.

        Returns ``(targets, keep)``: samples whose class is the only target are dropped
        (``keep`` False, their target is arbitrary).
        """
        labels = labels.long()
        allowed = self.target_mask[None, :].expand(len(labels), -1).clone()
        allowed[torch.arange(len(labels), device=labels.device), labels] = False
        keep = allowed.any(1)
        weights = allowed.float()
        weights[~keep] = 1.0
        if generator is not None and generator.device != weights.device:
            targets = torch.multinomial(weights.cpu(), 1, generator=generator)[:, 0]
            targets = targets.to(weights.device)
        else:
            targets = torch.multinomial(weights, 1, generator=generator)[:, 0]
        return targets, keep

    # -- losses -----------------------------------------------------------------------------
    def classifier_loss(self, x_scaled: torch.Tensor, labels: torch.Tensor) -> dict:
        """Cross-entropy of ``f`` and its accuracy on a labelled batch."""
        logits = self.classify(x_scaled)
        loss = F.cross_entropy(logits, labels.long())
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach()}

    def discriminator_loss(
        self, real_scaled: torch.Tensor, fake_scaled: torch.Tensor, target: torch.Tensor
    ) -> dict:
        """LSGAN loss of ``D``: real samples of class ``t`` -> 1, perturbed towards ``t`` -> 0.

        Real and perturbed samples go through ``D`` in one batch (shared batch statistics).
        """
        n = len(real_scaled)
        score = self.discriminate(torch.cat([real_scaled, fake_scaled]), torch.cat([target] * 2))
        loss = lsgan_discriminator_loss(score[:n], score[n:])
        return {
            "loss": loss,
            "d_real": score[:n].mean().detach(),
            "d_fake": score[n:].mean().detach(),
        }

    def generator_loss(
        self,
        x_scaled: torch.Tensor,
        target: torch.Tensor,
        draws: torch.Tensor,
        real_scaled: torch.Tensor | None = None,
        perturbed: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> dict:
        """The weighted generator loss and its four terms (batch means).

        ``draws``: one draw of the target class's Gaussian per sample; ``real_scaled``: real
        samples of the targets, passed through ``D`` with the perturbed ones so the batch
        statistics match the discriminator's own update (``None``: perturbed samples only);
        ``perturbed``: ``perturb_scaled(x_scaled, target)`` if already computed.
        """
        x_adv, p = self.perturb_scaled(x_scaled, target) if perturbed is None else perturbed
        if real_scaled is None:
            fake_score = self.discriminate(x_adv, target)
        else:
            n = len(real_scaled)
            both = self.discriminate(torch.cat([real_scaled, x_adv]), torch.cat([target] * 2))
            fake_score = both[n:]
        logits = self.classify(x_adv)
        terms = {
            "gan": lsgan_generator_loss(fake_score),
            "adv": cw_margin_loss(logits, target, self.kappa).mean(),
            "norm": perturbation_norm(p).mean(),
            "target": target_distance(x_adv, draws).mean(),
        }
        loss = (
            self.gan_weight * terms["gan"]
            + self.adv_weight * terms["adv"]
            + self.norm_weight * terms["norm"]
            + self.target_weight * terms["target"]
        )
        success = (logits.argmax(1) == target).float().mean()
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}, "success": success}

    # -- the scvi-tools interface -------------------------------------------------------------
    def parse_batch(self, tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, labels)`` of a scvi-tools mini-batch, ``x`` restricted to the model's genes."""
        x = tensors[REGISTRY_KEYS.X_KEY]
        if x.layout is not torch.strided:
            x = x.to_dense()
        if self.gene_index.numel():
            x = x[:, self.gene_index]
        return x.float(), tensors[REGISTRY_KEYS.LABELS_KEY].long().reshape(-1)

    def _get_inference_input(self, tensors, **kwargs):
        x, labels = self.parse_batch(tensors)
        return {"x": x, "labels": labels}

    def inference(self, x, labels=None, **kwargs):
        """Min-max-scale expression values."""
        return {"x_scaled": self.scale(x), "labels": labels}

    def _get_generative_input(self, tensors, inference_outputs, **kwargs):
        return {"x_scaled": inference_outputs["x_scaled"], "labels": inference_outputs["labels"]}

    def generative(self, x_scaled, labels, target=None, **kwargs):
        """Perturb towards ``target`` (default: a random learnt target per sample)."""
        keep = torch.ones(len(x_scaled), dtype=torch.bool, device=x_scaled.device)
        if target is None:
            target, keep = self.draw_targets(labels)
        x_adv, p = self.perturb_scaled(x_scaled, target)
        return {"x_adv": x_adv, "p": p, "target": target, "keep": keep}

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Generator loss towards the drawn targets (needs a fitted target distribution)."""
        keep = generative_outputs["keep"]
        x = inference_outputs["x_scaled"][keep]
        target = generative_outputs["target"][keep]
        out = self.generator_loss(x, target, self.target_distribution.sample(target))
        return LossOutput(
            loss=out["loss"],
            n_obs_minibatch=len(x),
            extra_metrics={k: out[k] for k in ("gan", "adv", "norm", "target", "success")},
        )

    @torch.inference_mode()
    def sample(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Perturbed samples on the input's scale."""
        x_adv, _ = self.perturb_scaled(self.scale(x), target)
        return self.unscale(x_adv)
