from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import lightning.pytorch as pl
import numpy as np
import torch

from scgensynth._utils._docs import doctest_skip
from scgensynth.metrics import correlation_score, precision_recall

logger = logging.getLogger(__name__)

CRITERIA = ("conditional", "correlation")


def _correlation_part(real: np.ndarray, synth: np.ndarray) -> float:
    """:func:`~scgensynth.metrics.correlation_score` of the samples, clipped at 0.

    Samples in which fewer than 3 genes vary (a collapsed generator) have no gene-gene
    structure to credit: 0.
    """
    varying = (np.ptp(real, axis=0) > 0) & (np.ptp(synth, axis=0) > 0)
    if varying.sum() < 3:
        return 0.0
    return max(0.0, correlation_score(real, synth, max_genes=None))


def _median_nearest(x: torch.Tensor, ref: torch.Tensor, block: int = 1024) -> float:
    """Median over the rows of ``x`` of the distance to the nearest row of ``ref``."""
    nearest = [torch.cdist(x[i : i + block], ref).min(1).values for i in range(0, len(x), block)]
    return float(torch.cat(nearest).median())


@doctest_skip("needs a trained model")
@dataclass
class SelectionCriterion:
    """Score of a generator on real reference data, higher is better (at most 1).

    ``"conditional"`` (default) averages three or four parts, each in [0, 1]:

    - ``correlation``: correlation between gene-gene correlation matrices of real and
      generated samples (the criterion of Viñas et al.; clipped at 0);
    - ``conditional``: for each categorical covariate, balanced accuracy with which a
      5-nearest-neighbour classifier on real samples (PCA space) recovers the category a
      sample was generated for — generated samples must land among real samples of their
      category;
    - ``fidelity``: F1 of improved precision and recall (k=5, PCA space);
    - ``novelty`` (when ``train``, training samples in network space, and ``n_holdout`` are
      given; ``train`` is projected and dropped at construction): how far generated samples sit
      from training samples compared with unseen real ones, ``min(1, DCR ratio)`` with the
      DCR ratio = median distance of a generated sample to its nearest training sample over
      the same median for the first ``n_holdout`` rows of ``real`` (held-out samples), in
      PCA space. A generator that reproduces its training samples (DCR ratio well below 1)
      loses score, so model selection stops before a generator memorises.

    ``"correlation"`` keeps only the first part (the reference implementation's criterion).

    Real samples and their covariates are in network space; each evaluation generates one
    sample per real row with that row's covariates.

    Examples
    --------
    >>> real, cat = torch.randn(60, 20), torch.randint(0, 3, (60, 1))
    >>> crit = SelectionCriterion(real=real, cat=cat, cont=None)
    >>> score, parts = crit(model.module)  # a trained generator's module
    >>> sorted(parts)
    ['conditional', 'correlation', 'fidelity']
    >>> crit = SelectionCriterion(real=real, cat=cat, cont=None, train=train, n_holdout=20)
    >>> sorted(crit(model.module)[1])
    ['conditional', 'correlation', 'fidelity', 'novelty']
    """

    real: torch.Tensor
    cat: torch.Tensor | None
    cont: torch.Tensor | None
    kind: str = "conditional"
    train: torch.Tensor | None = None
    n_holdout: int = 0
    n_genes_corr: int = 1000
    n_components: int = 50
    k: int = 5
    seed: int = 0
    _genes: torch.Tensor = field(init=False, repr=False)
    _basis: torch.Tensor = field(init=False, repr=False)
    _center: torch.Tensor = field(init=False, repr=False)
    _real_pcs: torch.Tensor = field(init=False, repr=False)
    _train_pcs: torch.Tensor | None = field(init=False, repr=False, default=None)
    _holdout_dcr: float = field(init=False, repr=False, default=float("nan"))

    def __post_init__(self):
        if self.kind not in CRITERIA:
            msg = f"selection criterion must be one of {CRITERIA}, not {self.kind!r}."
            raise ValueError(msg)
        real = self.real.float()
        var = real.var(0)
        n_top = min(self.n_genes_corr, real.shape[1])
        self._genes = torch.argsort(var, descending=True)[:n_top]
        self._center = real.mean(0, keepdim=True)
        q = max(1, min(self.n_components, real.shape[0] - 1, real.shape[1]))
        gen = torch.Generator().manual_seed(self.seed)
        state = torch.random.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        _, _, v = torch.pca_lowrank(real - self._center, q=q, center=False, niter=4)
        torch.random.set_rng_state(state)
        self._basis = v[:, :q]
        self._real_pcs = (real - self._center) @ self._basis
        self._init_novelty()

    def _init_novelty(self) -> None:
        """The training reference in PCA space and the held-out samples' median DCR."""
        n_holdout = int(self.n_holdout)
        if self.train is None or not 2 <= n_holdout <= self.real.shape[0]:
            return
        self._train_pcs = self._project(self.train.float())
        self.train = None  # only its PCA coordinates are needed (and kept)
        dcr = _median_nearest(self._real_pcs[:n_holdout], self._train_pcs)
        if dcr > 0:
            self._holdout_dcr = dcr
        else:  # held-out rows duplicate training rows: no scale to compare with
            self._train_pcs = None

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._center) @ self._basis

    def _conditional(self, synth_pcs: torch.Tensor) -> float | None:
        if self.cat is None or self.cat.shape[1] == 0:
            return None
        d = torch.cdist(synth_pcs, self._real_pcs)
        k = min(self.k, self._real_pcs.shape[0])
        nn_idx = d.topk(k, dim=1, largest=False).indices
        scores = []
        for j in range(self.cat.shape[1]):
            labels = self.cat[:, j]
            if labels.unique().numel() < 2:
                continue
            votes = labels[nn_idx]
            pred = torch.mode(votes, dim=1).values
            per_class = [(pred[labels == c] == c).float().mean() for c in labels.unique().tolist()]
            scores.append(float(torch.stack(per_class).mean()))
        return float(np.mean(scores)) if scores else None

    @torch.no_grad()
    def __call__(self, module) -> tuple[float, dict[str, float]]:
        """Score ``module`` (a :class:`~scgensynth.module.ConditionalGeneratorModule`)."""
        device = module.scaling.mean.device
        gen = torch.Generator().manual_seed(self.seed)
        cat = None if self.cat is None else self.cat.to(device)
        cont = None if self.cont is None else self.cont.to(device)
        was_training = module.training
        module.eval()
        synth = module.generate_scaled(self.real.shape[0], cat, cont, generator=gen)
        module.train(was_training)
        synth = synth.float().cpu()
        if not torch.isfinite(synth).all():
            return float("-inf"), {"correlation": float("nan")}
        # the scores of sgs.metrics, on the selected genes / the real PCA space
        real, fake = (x[:, self._genes].double().numpy() for x in (self.real, synth))
        parts = {"correlation": _correlation_part(real, fake)}
        if self.kind == "conditional":
            synth_pcs = self._project(synth)
            cond = self._conditional(synth_pcs)
            if cond is not None:
                parts["conditional"] = cond
            fidelity = precision_recall(
                self._real_pcs.double().numpy(), synth_pcs.double().numpy(), k=self.k
            )
            parts["fidelity"] = fidelity["f1"]
            if self._train_pcs is not None:
                ratio = _median_nearest(synth_pcs, self._train_pcs) / self._holdout_dcr
                parts["novelty"] = min(1.0, ratio)
        return float(np.mean(list(parts.values()))), parts


@doctest_skip("needs a trained model")
class GeneratorSelection(pl.Callback):
    """Keep the best generator weights by a :class:`SelectionCriterion`, stop after a patience.

    Evaluates every ``every_n_epochs`` epochs; stopping is allowed only once ``min_epochs``
    epochs have run, so small data still gets enough optimiser steps. At the end of training
    the best weights are restored. Scores go to the model history as ``selection_score``;
    :attr:`scores` keeps one row per evaluation: the epoch and ``step``, ``seconds`` of
    training so far (wall clock, evaluations included; a resumed run continues the count),
    the score and its parts (what ``model.selection_`` shows, and time-to-quality benchmarks read).

    Parameters
    ----------
    criterion
        The score to maximise.
    every_n_epochs
        Evaluation interval.
    patience
        Evaluations without improvement before stopping (``None``: never stop early).
    min_epochs
        Epochs before early stopping may fire.
    min_delta
        Smallest improvement that counts.
    restore_best
        Load the best weights when training ends.

    Examples
    --------
    >>> callback = GeneratorSelection(criterion, every_n_epochs=10, patience=10, min_epochs=100)
    >>> trainer = lightning.pytorch.Trainer(callbacks=[callback], max_epochs=200)
    """

    def __init__(
        self,
        criterion: SelectionCriterion,
        every_n_epochs: int = 1,
        patience: int | None = 10,
        min_epochs: int = 0,
        min_delta: float = 1e-3,
        restore_best: bool = True,
    ):
        super().__init__()
        self.criterion = criterion
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.patience = patience
        self.min_epochs = int(min_epochs)
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.best_score = -np.inf
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.scores: list[dict] = []
        self._since_best = 0
        self._clock = time.perf_counter()

    def state_dict(self) -> dict:
        """What a resumed run needs: the best weights so far, the scores and the patience."""
        return {
            "best_score": float(self.best_score),
            "best_epoch": None if self.best_epoch is None else int(self.best_epoch),
            "best_state": self.best_state,
            "scores": [{k: float(v) for k, v in row.items()} for row in self.scores],
            "since_best": int(self._since_best),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict` (Lightning calls this when a run resumes)."""
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_state = state_dict["best_state"]
        self.scores = [
            {k: int(v) if k in ("epoch", "step") else v for k, v in row.items()}
            for row in state_dict["scores"]
        ]
        self._since_best = state_dict["since_best"]

    def on_train_start(self, trainer, pl_module):
        done = self.scores[-1].get("seconds", 0.0) if self.scores else 0.0
        self._clock = time.perf_counter() - done

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if epoch % self.every_n_epochs and not last:
            return
        score, parts = self.criterion(pl_module.module)
        seconds = time.perf_counter() - self._clock
        step = epoch * _steps_per_epoch(trainer)
        row = {"epoch": epoch, "step": step, "seconds": seconds, "score": score, **parts}
        self.scores.append(row)
        pl_module.log("selection_score", score, on_epoch=True, on_step=False)
        if score > self.best_score + self.min_delta:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy(pl_module.module.state_dict())
            self._since_best = 0
        else:
            self._since_best += 1
            if (
                self.patience is not None
                and epoch >= self.min_epochs
                and self._since_best >= self.patience
            ):
                per_epoch = _steps_per_epoch(trainer)
                logger.info(
                    "Stopping at step %d: no improvement of the selection score for %d "
                    "evaluations (best %.4f at step %d).",
                    epoch * per_epoch,
                    self._since_best,
                    self.best_score,
                    self.best_epoch * per_epoch,
                )
                trainer.should_stop = True

    def on_train_end(self, trainer, pl_module):
        if self.restore_best and self.best_state is not None:
            pl_module.module.load_state_dict(self.best_state)
            logger.info(
                "Restored the generator of step %d (selection score %.4f).",
                self.best_epoch * _steps_per_epoch(trainer),
                self.best_score,
            )


def _steps_per_epoch(trainer) -> int:
    """Mini-batches per epoch of ``trainer``'s run (at least 1)."""
    try:
        return max(1, int(trainer.num_training_batches))
    except (AttributeError, TypeError, ValueError, OverflowError):  # no loader (yet)
        return 1
