"""Privacy/utility trade-off: the differentially private generators on real data, measured.

For each dataset and seed, one stratified split: 50 % *private* training samples (what the
generator is trained on, the members of the attacks), 25 % *public* samples (only their
expression, for the scaling statistics and, for the Gaussian, its principal subspace; never
scored) and 25 % *held-out test* samples (the real test set of TSTR and the non-members of
the attacks). Rows, per dataset (``model`` x ``ε``):

- every registered generator whose instances report ``supports_privacy`` (``--models``;
  today ``gaussian`` and ``wgan``) at each finite ``ε`` of ``--epsilons`` (default 1, 3,
  10): ``sgs.tl.train(private, name, privacy={"epsilon": ε, ...}, public=public)``, which
  trains on every private row (no model selection);
- the same model at ``ε = ∞``: deep models trained without privacy on the same rows with
  the same network, length and batch size (``train_size=1.0``, ``selection=None``);
  closed-form models (no training plan: the Gaussian), whose private fit is another
  estimator than their default fit (public subspace, pooled covariance, clipped rows), run
  that private fit at ``ε = 10⁶`` (noise multiplier ~0.001): the structure without the noise;
- ``gaussian_default``: the non-private ``GaussianGenerator`` with its defaults (per-class
  multivariate Gaussian, Ledoit-Wolf covariance) on the private rows: the reference row.

Every row generates as many samples as there are private rows, with their labels (the
covariate categories and their frequencies are declared public). Quality columns are the
leaderboard's (``bench_leaderboard.prepare``/``score`` on the private/test parts: the
evaluation space, PCA-F1, C2ST AUC and TSTR/TRTR exactly as it computes them); the attacks
are ``sgs.metrics.membership_inference(private, synthetic, test)`` (distance, LOGAN, DOMIAS
with bootstrap intervals; the public part is the attacker's reference sample, the whole test
part the non-members) on the leaderboard's value scale (``log1p`` for counts and linear data,
as is otherwise).

Usage (from the repository root)::

    python benchmarks/bench_privacy.py                     # full run (~30-40 min, 1 thread)
    python benchmarks/bench_privacy.py --datasets gtex_tissues --models gaussian \\
        --epsilons 10 inf --seeds 0 --out /tmp/privacy     # a slice

Writes ``<out>.json`` (every per-seed row and the summary) and ``<out>.md`` (a table per
dataset, means ± sd over seeds, and a reading generated from the numbers); ``--out``
defaults to ``benchmarks/results/privacy``. A slice never replaces a full run's files
without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

import scgensynth as sgs

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "privacy"
EPSILONS = (1.0, 3.0, 10.0, math.inf)
NOISE_FREE_EPSILON = 1e6  # a closed-form model's private fit "without noise"
SEEDS = (0, 1, 2)
DEEP_SEEDS = (0,)
N_STEPS = 2000  # private (and ∞) training length of the deep models: the run fits in an hour
BATCH_SIZE = 64
#: deep models' arguments over their ``quick_kwargs`` and ``private_kwargs``. Measured on GTEx
#: without privacy (260 private samples, batch 64): the quick 16-wide WGAN-GP, or 64-wide
#: with the paper's n_critic=5 at lr 5e-4, learns no classes in 1,000-6,000 steps
#: (TSTR/TRTR 0.01-0.10); these settings reach 0.09 at 2,000 steps (batch 32) and 0.78 at 5,000
DEEP_KWARGS: dict[str, dict[str, Any]] = {
    "wgan": {
        "n_latent": 32,
        "n_hidden": [64, 64],
        "n_critic": 1,
        "lr_generator": 1e-3,
        "lr_critic": 1e-3,
    },
}
STEPS_NOTE = (
    "reduced from 5,000 steps: DP-SGD runs of 5,000 steps take 1.5-3.5 min each here (WGAN-GP "
    "~2 min, CVAE ~1.4 min, DDPM ~3.5 min on GTEx), about 1.5 h for the whole benchmark"
)
DEEP_SEED_NOTE = (
    "one seed: a DP-SGD run of the deep models takes minutes on one CPU thread, the closed-"
    "form fits a second"
)
MAX_GRAD_NORM = 1.0
ATTACK_FLAG = 0.55  # the reading lists attack AUCs above this at ε <= 10
REFERENCE = "gaussian_default"
ATTACKS = ("distance", "logan", "domias")
SHARES = (0.5, 0.25, 0.25)  # private training / public / held-out test


def _leaderboard():
    """``bench_leaderboard`` (loading, evaluation space, scores), loaded from beside this file."""
    name = "bench_leaderboard"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "bench_leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


lb = _leaderboard()


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its label and where it comes from (``sgs.datasets`` or the shared folder)."""

    label: str
    kind: str
    bundled: bool  # sgs.datasets.<name>() rather than bench_leaderboard.load_dataset(<name>)


DATASETS: dict[str, DatasetSpec] = {
    "gtex_tissues": DatasetSpec("tissue", "GTEx, 26 tissues (sgs.datasets)", True),
    "tcga_lusc": DatasetSpec("cancer", "TCGA-LUSC tumour / normal (sgs.datasets)", True),
    "pbmc68k_reduced": DatasetSpec("bulk_labels", "10x PBMC, 10 cell types (scanpy)", False),
    "proteinatlas_sepira": DatasetSpec("tissue", "Human Protein Atlas tissues", False),
}


# -- data ---------------------------------------------------------------------------------------
def _clean(adata: ad.AnnData, label: str) -> tuple[ad.AnnData, dict[str, Any]]:
    """The leaderboard's cleaning of a dataset loaded from ``sgs.datasets``.

    Dense float32 values, ``.obs`` reduced to the label (categorical); exact duplicate
    samples, samples without label, classes of fewer than ``lb.MIN_CLASS_SIZE`` samples
    and genes that are 0 everywhere are dropped (as ``bench_leaderboard.load_dataset``).
    """
    X = lb._dense64(adata.X).astype(np.float32)
    _, first = np.unique(X, axis=0, return_index=True)
    keep = np.zeros(len(X), dtype=bool)
    keep[first] = True
    text = adata.obs[label].astype(str).str.strip()
    keep &= ~adata.obs[label].isna().to_numpy() & ~text.isin(["NA", "nan", ""]).to_numpy()
    counts = text[keep].value_counts()
    small = sorted(counts[counts < lb.MIN_CLASS_SIZE].index)
    keep &= ~text.isin(small).to_numpy()
    genes = (X[keep] != 0).any(axis=0)
    obs = pd.DataFrame({label: pd.Categorical(text[keep].to_numpy())}, index=adata.obs_names[keep])
    out = ad.AnnData(X=X[keep][:, genes], obs=obs, var=adata.var.iloc[np.flatnonzero(genes)])
    dropped = {
        "dropped_samples": int((~keep).sum()),
        "dropped_small_classes": small,
        "dropped_zero_genes": int((~genes).sum()),
    }
    return out, dropped


def load_dataset(
    name: str, data_dir: Path, max_obs: int | None = None
) -> tuple[ad.AnnData, dict[str, Any]]:
    """Load ``name`` (label as a clean categorical column) and describe it.

    ``max_obs``: a stratified subsample of that many samples (quick runs and tests).
    """
    if name not in DATASETS:
        msg = f"Unknown dataset {name!r}; choose from {list(DATASETS)}."
        raise ValueError(msg)
    spec = DATASETS[name]
    if spec.bundled:
        adata, dropped = _clean(getattr(sgs.datasets, name)(), spec.label)
        source = f"sgs.datasets.{name}()"
    else:
        adata, full = lb.load_dataset(name, data_dir)
        source = full["source"]
        dropped = {k: full[k] for k in ("dropped_small_classes", "dropped_zero_genes")}
    if max_obs is not None and max_obs < adata.n_obs:
        rows, _ = train_test_split(
            np.arange(adata.n_obs),
            train_size=int(max_obs),
            random_state=0,
            stratify=adata.obs[spec.label].astype(str).to_numpy(),
        )
        adata = adata[np.sort(rows)].copy()
        adata.obs[spec.label] = adata.obs[spec.label].cat.remove_unused_categories()
    info = {
        "dataset": name,
        "kind": spec.kind,
        "label": spec.label,
        "source": source,
        "n_obs": adata.n_obs,
        "n_vars": adata.n_vars,
        "max_obs": max_obs,
        "classes": {str(k): int(v) for k, v in adata.obs[spec.label].value_counts().items()},
        "scaling": sgs.pp.detect_scaling(adata),
        **dropped,
    }
    return adata, info


@dataclass
class Parts:
    """One seed's three parts of a dataset."""

    private: ad.AnnData
    public: ad.AnnData
    test: ad.AnnData


def split_three(adata: ad.AnnData, label: str, seed: int) -> Parts:
    """Stratified 50 % private / 25 % public / 25 % test (``random_state=seed``, rows in order).

    Parameters
    ----------
    adata
        The dataset, with ``label`` categorical in ``.obs``.
    label
        The column to stratify on.
    seed
        The split's random state.

    Returns
    -------
    The three parts as copies, unused categories removed.
    """
    y = adata.obs[label].astype(str).to_numpy()
    rows = np.arange(adata.n_obs)
    private, rest = train_test_split(rows, train_size=SHARES[0], stratify=y, random_state=seed)
    public, test = train_test_split(
        rest, test_size=SHARES[2] / (SHARES[1] + SHARES[2]), stratify=y[rest], random_state=seed
    )
    parts = [adata[np.sort(i)].copy() for i in (private, public, test)]
    for part in parts:
        part.obs[label] = part.obs[label].cat.remove_unused_categories()
    return Parts(*parts)


# -- which models, which rows -------------------------------------------------------------------
def supports_privacy(name: str) -> bool:
    """Whether an instance of the registered model ``name`` reports ``supports_privacy``.

    The instance is built on a tiny generated AnnData with the class's ``quick_kwargs``; a
    model that cannot be built there counts as not supporting privacy.
    """
    cls = sgs.model.get_model_class(name)
    rng = np.random.default_rng(0)
    tiny = ad.AnnData(
        X=rng.normal(5.0, 1.0, (24, 12)).astype(np.float32),
        obs=pd.DataFrame(
            {"c": pd.Categorical(["a", "b"] * 12)}, index=[f"s{i}" for i in range(24)]
        ),
    )
    try:
        proxy = cls.setup_proxy(tiny, None, ["c"], None)
        return bool(cls(proxy, **cls.quick_kwargs).supports_privacy)
    except Exception:  # a model mid-change: not benchmarked, said in the log
        return False


def private_models(models: Sequence[str] | None = None) -> list[str]:
    """The registered models to benchmark: ``models`` (checked) or all that support privacy."""
    registered = list(sgs.model.available().index)
    if models is None:
        return [m for m in registered if supports_privacy(m)]
    unknown = [m for m in models if m not in registered]
    if unknown:
        msg = f"Unknown model(s) {unknown}; registered: {registered}."
        raise ValueError(msg)
    refused = [m for m in models if not supports_privacy(m)]
    if refused:
        msg = f"{refused} cannot train with privacy=... (supports_privacy is False)."
        raise ValueError(msg)
    return list(dict.fromkeys(models))


def is_closed_form(name: str) -> bool:
    """Fitted in one pass, without a training plan (no steps, batches or seeds of its own)."""
    return not sgs.model.get_model_class(name).plan_arguments()


@dataclass(frozen=True)
class Arm:
    """One row of a table: a model at a target ε, and how it is trained there.

    ``mode``: ``"private"`` (``privacy=``), ``"noise_free"`` (the private fit at
    ``NOISE_FREE_EPSILON``), ``"non_private"`` (the same settings, no privacy) or
    ``"reference"`` (the non-private ``GaussianGenerator`` with its defaults).
    """

    model: str
    epsilon: float
    mode: str

    @property
    def row(self) -> str:
        """The table's row name."""
        return REFERENCE if self.mode == "reference" else self.model


def make_arms(models: Sequence[str], epsilons: Sequence[float], reference: bool) -> list[Arm]:
    """Every (model, ε) row, then the reference row."""
    arms = []
    for model in models:
        for eps in epsilons:
            if math.isfinite(eps):
                arms.append(Arm(model, float(eps), "private"))
            else:
                mode = "noise_free" if is_closed_form(model) else "non_private"
                arms.append(Arm(model, math.inf, mode))
    if reference:
        arms.append(Arm("gaussian", math.inf, "reference"))
    return arms


# -- one row ------------------------------------------------------------------------------------
@dataclass
class Settings:
    """How the deep models are trained (every row of a model uses the same)."""

    n_steps: int = N_STEPS
    batch_size: int = BATCH_SIZE
    max_grad_norm: float = MAX_GRAD_NORM
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None
    public_labels: bool = False  # give the public samples their labels (default: expression)

    def network(self, model: str) -> dict[str, Any]:
        """The model's arguments: ``quick_kwargs``, ``private_kwargs``, then ``model_kwargs``.

        ``private_kwargs`` is what the class needs to train privately (the CVAE: layer norm
        instead of batch norm); the rows at ε = ∞ use it too, so every row of a model has
        the same network.
        """
        cls = sgs.model.get_model_class(model)
        return {
            **cls.quick_kwargs,
            **getattr(cls, "private_kwargs", {}),
            **(self.model_kwargs or {}).get(model, {}),
        }


def train_kwargs(arm: Arm, parts: Parts, settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``sgs.tl.train`` for one row (after the data and name)."""
    if arm.mode == "reference":
        return {}
    closed = is_closed_form(arm.model)
    kwargs: dict[str, Any] = {} if closed else settings.network(arm.model)
    if not closed:
        kwargs.update(
            n_steps=settings.n_steps, batch_size=settings.batch_size, enable_progress_bar=False
        )
    if arm.mode == "non_private":
        return {**kwargs, "train_size": 1.0, "selection": None}
    eps = NOISE_FREE_EPSILON if arm.mode == "noise_free" else arm.epsilon
    privacy = (
        {"epsilon": eps} if closed else {"epsilon": eps, "max_grad_norm": settings.max_grad_norm}
    )
    obs = parts.public.obs.copy() if settings.public_labels else None
    public = ad.AnnData(X=parts.public.X.copy(), obs=obs, var=parts.public.var.copy())
    return {**kwargs, "privacy": privacy, "public": public}


def _privacy_columns(model, synth: ad.AnnData) -> dict[str, Any]:
    """The spent budget as the model states it, and whether the samples carry the same."""
    record = model.privacy_ or {}
    carried = (synth.uns.get("sgs") or {}).get("privacy") or {}
    same = (not record and not carried) or (
        bool(record)
        and bool(carried)
        and math.isclose(float(carried.get("epsilon", math.nan)), record["epsilon"])
    )
    keys = ("epsilon", "delta", "noise_multiplier", "clip_norm", "steps", "sample_rate")
    out = {f"dp_{k}": float(record[k]) if k in record else math.nan for k in keys}
    out["record_in_samples"] = bool(same)
    return out


def _attacks(prep, parts: Parts, synth_X, seed: int) -> dict[str, float]:
    """Membership-inference AUCs (and 95 % bootstrap bounds) on the leaderboard's value scale.

    Members: the private part; non-members: the whole test part; the attacker's reference
    samples: the public part (public data is what an attacker knows of the population; the
    default, half of the holdout, is not stratified and biases LOGAN and DOMIAS below 0.5
    where classes are many and small -- see the definitions in the report).
    """
    scale = prep.space.scaling
    table = sgs.metrics.membership_inference(
        lb.value_transform(parts.private.X, scale),
        lb.value_transform(synth_X, scale),
        lb.value_transform(parts.test.X, scale),
        reference=lb.value_transform(parts.public.X, scale),
        attacks=ATTACKS,
        seed=seed,
    )
    out: dict[str, float] = {}
    for r in table.itertuples():
        out[f"{r.attack}_auc"] = r.auc
        out[f"{r.attack}_low"], out[f"{r.attack}_high"] = r.auc_low, r.auc_high
    out["n_members"] = int(table["n_members"].iloc[0])
    out["n_nonmembers"] = int(table["n_nonmembers"].iloc[0])
    return out


QUALITY = ("tstr_trtr", "tstr_f1", "trtr_f1", "f1", "precision", "recall", "c2st_auc", "dcr_ratio")


def run_arm(arm: Arm, parts: Parts, prep, label: str, seed: int, settings: Settings) -> dict:
    """Train, generate, score and attack one row; an error is recorded, not raised."""
    record: dict[str, Any] = {
        "row": arm.row,
        "model": arm.model,
        "mode": arm.mode,
        "epsilon_target": arm.epsilon,
        "error": None,
    }
    try:
        kwargs = train_kwargs(arm, parts, settings)
        record["settings"] = {k: v for k, v in kwargs.items() if k != "public"}
        data = ad.AnnData(
            X=parts.private.X.copy(),
            obs=parts.private.obs[[label]].copy(),
            var=parts.private.var.copy(),
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # at ε = 10⁶ Opacus says its orders are not tight
            warnings.filterwarnings("ignore", message="Optimal order is the smallest alpha")
            model = sgs.tl.train(
                data, arm.model, categorical_covariate_keys=[label], seed=seed, **kwargs
            )
        record["fit_s"] = time.perf_counter() - t0
        covariates = pd.DataFrame({label: parts.private.obs[label].to_numpy()})
        synth = sgs.tl.generate(model, covariates=covariates, seed=seed)
        X = lb._dense64(synth[:, parts.private.var_names].X)
        scores = lb.score(prep, X, synth.obs[label].astype(str).to_numpy())
        record.update({k: scores[k] for k in QUALITY})
        record.update(_privacy_columns(model, synth))
        record.update(_attacks(prep, parts, X, seed))
    except Exception as exc:  # kept in the row: one broken model does not lose the run
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record


# -- the run ------------------------------------------------------------------------------------
def seeds_of(arm: Arm, seeds: Sequence[int], deep_seeds: Sequence[int]) -> list[int]:
    """Closed-form rows run every seed of ``seeds``; deep rows those of ``deep_seeds``."""
    return (
        list(seeds) if arm.mode == "reference" or is_closed_form(arm.model) else list(deep_seeds)
    )


def _log_line(record: dict) -> str:
    """One progress line for a finished row."""
    eps = "∞" if math.isinf(record["epsilon_target"]) else f"{record['epsilon_target']:g}"
    head = f"  {record['row']} ε={eps} ({record['mode']}): "
    if record["error"]:
        return head + record["error"]
    aucs = ", ".join(f"{a} {record[f'{a}_auc']:.3f}" for a in ATTACKS)
    return head + (
        f"TSTR/TRTR {record['tstr_trtr']:.3f}, F1 {record['f1']:.3f}, C2ST "
        f"{record['c2st_auc']:.3f}; {aucs}; spent ε {record['dp_epsilon']:.3g}; "
        f"fit {record['fit_s']:.1f} s"
    )


def run(
    datasets: Sequence[str],
    arms: Sequence[Arm],
    seeds: Sequence[int],
    deep_seeds: Sequence[int],
    *,
    settings: Settings,
    data_dir: Path,
    max_obs: int | None = None,
    log: Callable[[str], None] | None = print,
    partial: Path | None = None,
) -> tuple[list[dict], list[dict]]:
    """Every row on every dataset and seed; returns the per-seed records and dataset infos.

    ``partial``: a JSON file rewritten with the records so far after each dataset and seed.
    """
    records, infos = [], []
    for name in datasets:
        adata, info = load_dataset(name, data_dir, max_obs)
        infos.append(info)
        label = info["label"]
        for seed in sorted({*seeds, *deep_seeds}):
            t0 = time.perf_counter()
            parts = split_three(adata, label, seed)
            prep = lb.prepare(parts.private, parts.test, label, seed=seed, scaling=info["scaling"])
            info.setdefault(
                "split",
                {
                    "private": parts.private.n_obs,
                    "public": parts.public.n_obs,
                    "test": parts.test.n_obs,
                },
            )
            info.setdefault("n_components", {})[str(seed)] = int(prep.space.pca_.n_components_)
            if log:
                log(
                    f"{name} seed {seed}: {parts.private.n_obs} private / {parts.public.n_obs} "
                    f"public / {parts.test.n_obs} test"
                )
            for arm in arms:
                if seed not in seeds_of(arm, seeds, deep_seeds):
                    continue
                record = run_arm(arm, parts, prep, label, seed, settings)
                records.append({"dataset": name, "seed": seed, **record})
                if log:
                    log(_log_line(record))
            if partial is not None:
                partial.write_text(json.dumps(lb._jsonable(records), indent=1) + "\n")
            if log:
                log(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s")
    return records, infos


# -- summary ------------------------------------------------------------------------------------
NUMERIC = (
    *QUALITY,
    *(f"{a}_{s}" for a in ATTACKS for s in ("auc", "low", "high")),
    "dp_epsilon",
    "dp_delta",
    "dp_noise_multiplier",
    "dp_clip_norm",
    "dp_steps",
    "fit_s",
)


def summarise(records: Sequence[dict]) -> pd.DataFrame:
    """Mean and sd over seeds per dataset x row x target ε (``n_seeds``: runs without error)."""
    df = pd.DataFrame(records)
    keys = ["dataset", "row", "mode", "epsilon_target"]
    df["epsilon_target"] = df["epsilon_target"].astype(float)
    ok = df[df["error"].isna()]
    cols = [c for c in NUMERIC if c in ok]
    grouped = ok.groupby(keys, sort=False, dropna=False)[cols]
    out = grouped.mean().join(grouped.std(ddof=1).add_suffix("_sd"))
    out = out.join(ok.groupby(keys, sort=False).size().rename("n_seeds"))
    if "record_in_samples" in ok:
        out = out.join(ok.groupby(keys, sort=False)["record_in_samples"].all())
    full = df[keys].drop_duplicates().merge(out.reset_index(), on=keys, how="left")
    full["n_seeds"] = full["n_seeds"].fillna(0).astype(int)
    errors = df.groupby(keys, sort=False)["error"].agg(
        lambda e: "; ".join(sorted({str(x) for x in e.dropna()}))
    )
    return full.merge(errors.rename("errors").reset_index(), on=keys, how="left")


# -- report -------------------------------------------------------------------------------------
def _eps(value: float) -> str:
    """``"∞"`` or the number."""
    return "∞" if math.isinf(value) else f"{value:g}"


def _num(value, fmt: str = ".3f") -> str:
    """A number, or a dash for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, fmt)


def _pm(row: Mapping, col: str, fmt: str = ".3f") -> str:
    """``mean ± sd`` (sd only with two seeds or more)."""
    mean, sd = row.get(col, math.nan), row.get(f"{col}_sd", math.nan)
    if mean is None or math.isnan(mean):
        return "—"
    return _num(mean, fmt) + ("" if sd is None or math.isnan(sd) else f" ± {_num(sd, fmt)}")


def _attack_cell(row: Mapping, attack: str) -> str:
    """``AUC mean ± sd (low-high)``: the bootstrap bounds averaged over seeds."""
    cell = _pm(row, f"{attack}_auc")
    low, high = row.get(f"{attack}_low", math.nan), row.get(f"{attack}_high", math.nan)
    return cell if math.isnan(low) else f"{cell} ({low:.2f}-{high:.2f})"


def _row_label(row: Mapping) -> tuple[str, str]:
    """(model, ε) as the table shows them."""
    mode, eps = row["mode"], row["epsilon_target"]
    if mode == "reference":
        return REFERENCE, "∞ (non-private default)"
    if mode == "noise_free":
        return row["row"], f"∞ (private fit at ε = {NOISE_FREE_EPSILON:.0e}, no noise)"
    if mode == "non_private":
        return row["row"], "∞ (same settings, no privacy)"
    return row["row"], _eps(eps)


TABLE_HEADER = (
    "model",
    "ε target",
    "ε spent",
    "δ",
    "noise mult.",
    "TSTR/TRTR",
    "PCA-F1",
    "C2ST AUC",
    "distance AUC",
    "LOGAN AUC",
    "DOMIAS AUC",
    "fit s",
    "seeds",
)


def dataset_table(group: pd.DataFrame) -> list[str]:
    """The markdown table of one dataset: rows model x ε."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for _, row in group.iterrows():
        model, eps = _row_label(row)
        private = row["mode"] in ("private", "noise_free")
        cells = [
            model,
            eps,
            _pm(row, "dp_epsilon", ".3g") if private else "—",
            _num(row.get("dp_delta"), ".1e") if private else "—",
            _pm(row, "dp_noise_multiplier", ".3g") if private else "—",
            _pm(row, "tstr_trtr"),
            _pm(row, "f1"),
            _pm(row, "c2st_auc"),
            *(_attack_cell(row, a) for a in ATTACKS),
            _pm(row, "fit_s", ".1f"),
            str(row["n_seeds"]) + (f" (error: {row['errors'][:160]})" if row["errors"] else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _auc_text(row: Mapping, attack: str) -> str:
    """``0.587 (0.51-0.66)``, marked ``[above chance]`` where the whole interval is > 0.5."""
    low, high = row[f"{attack}_low"], row[f"{attack}_high"]
    mark = " [above chance]" if low > 0.5 else ""
    return f"{attack} {row[f'{attack}_auc']:.3f} ({low:.2f}-{high:.2f}){mark}"


def _flagged(ok: pd.DataFrame) -> str:
    """The rows at ε <= 10 with an attack AUC above ``ATTACK_FLAG``."""
    flagged = []
    for _, row in ok[ok["epsilon_target"] <= 10].iterrows():
        over = [_auc_text(row, a) for a in ATTACKS if row[f"{a}_auc"] > ATTACK_FLAG]
        if over:
            eps = _eps(row["epsilon_target"])
            flagged.append(f"{row['row']} at ε = {eps}: " + ", ".join(over))
    return "; ".join(flagged) if flagged else "none"


def _strongest(ok: pd.DataFrame, mode: str, what: str) -> str:
    """The strongest attack on each row of ``mode`` (one sentence, or "")."""
    parts = []
    for _, row in ok[ok["mode"] == mode].iterrows():
        top = max(ATTACKS, key=lambda a: row[f"{a}_auc"])
        parts.append(f"{row['row']} {_auc_text(row, top)}")
    return f" Strongest attack on {what}: {'; '.join(parts)}." if parts else ""


def chance_tstr_trtr(info: Mapping[str, Any], trtr_f1: float) -> float:
    """TSTR/TRTR of a classifier that always answers the largest class (the floor of utility).

    Its macro-F1 is ``2p / (1 + p) / K`` for ``K`` classes, the largest a share ``p`` of the
    (stratified) test part.
    """
    counts = np.array(list(info["classes"].values()), dtype=float)
    share = counts.max() / counts.sum()
    return float(2 * share / (1 + share) / len(counts) / trtr_f1)


def reading(summary: pd.DataFrame, infos: Sequence[Mapping[str, Any]]) -> list[str]:
    """A short reading of the summary, one paragraph per dataset, generated from the numbers.

    Where an attack AUC (mean over seeds) exceeds ``ATTACK_FLAG`` at ε <= 10 (marked where
    the bootstrap interval lies above 0.5), the TSTR/TRTR of every row at each ε against
    that of always answering the largest class, and the strongest attack on the rows
    without privacy.
    """
    by_name = {i["dataset"]: i for i in infos}
    lines = []
    for dataset, group in summary.groupby("dataset", sort=False):
        ok = group[group["n_seeds"] > 0]
        utility = []
        for model, rows in ok.groupby("row", sort=False):
            steps = ", ".join(
                f"ε = {_row_label(r)[1].split(' (')[0]}: {r['tstr_trtr']:.2f}"
                for _, r in rows.iterrows()
            )
            utility.append(f"{model} {steps}")
        chance = chance_tstr_trtr(by_name[dataset], float(ok["trtr_f1"].mean()))
        lines.append(
            f"- **{dataset}.** Attack AUCs above {ATTACK_FLAG} at ε ≤ 10: {_flagged(ok)}. "
            f"TSTR/TRTR: {'; '.join(utility)} (always the largest class: {chance:.3f})."
            + _strongest(ok, "non_private", "the deep models without privacy")
            + _strongest(ok, "noise_free", "the private fit without noise")
            + _strongest(ok, "reference", "the non-private default")
        )
    return lines


def auc_bound(epsilon: float, delta: float) -> float:
    """The largest AUC any membership test can reach against an (ε, δ)-DP mechanism.

    The hypothesis-testing view of DP (Kairouz et al. 2015): every test has
    ``TPR <= e^ε FPR + δ`` and ``1 - FPR <= e^ε (1 - TPR) + δ``; the area under that bound.
    """
    if not math.isfinite(epsilon):
        return 1.0
    fpr = np.linspace(0.0, 1.0, 20001)
    e = math.exp(epsilon)
    tpr = np.minimum.reduce([np.ones_like(fpr), e * fpr + delta, 1 - (1 - fpr - delta) / e])
    return float(np.trapezoid(np.clip(tpr, 0.0, 1.0), fpr))


def definitions(settings: Settings, deep: Sequence[str]) -> str:
    """What the columns mean and how every row was trained."""
    nets = "; ".join(f"`{m}`: {settings.network(m)}" for m in deep) or "none run"
    public = (
        "expression and labels (`--public-labels`): the scaling statistics, the Gaussian's "
        "principal subspace (its default `private_components`), its per-gene spread and "
        "class means outside that subspace"
        if settings.public_labels
        else "their expression only: the scaling statistics, the Gaussian's principal "
        "subspace (its default `private_components`) and its per-gene spread outside it"
    )
    return f"""\
**Split.** Per dataset and seed, stratified by the label: 50 % private training samples
(members), 25 % public samples ({public}), 25 % held-out test samples. The label's
categories and their frequencies are declared public. δ is the package default
1 / (10 n_private).

**Rows.** `ε` finite: `sgs.tl.train(private, model, categorical_covariate_keys=[label],
privacy={{"epsilon": ε, "max_grad_norm": {settings.max_grad_norm:g}}}, public=public)` (the
Gaussian mechanism on per-class sums and the pooled second moment for the Gaussian, which
sets its own clip bound from the public rows; DP-SGD on the critic / every network reading
real data for the deep models). `ε = ∞`: deep models without privacy, same network, length
and batch size (`train_size=1.0`, `selection=None`); the Gaussian's private fit at ε =
{NOISE_FREE_EPSILON:.0e} (noise multiplier ~0.001): public subspace, pooled covariance,
clipped rows, no noise. `{REFERENCE}`: `GaussianGenerator()` with its defaults (per-class
covariance, Ledoit-Wolf) on the private samples, not private. Deep models:
{settings.n_steps} steps of batch {settings.batch_size} (Poisson batches at rate
batch / n_private when private); networks and plan arguments: {nets}.

**Quality** (the leaderboard's code, `bench_leaderboard.prepare`/`score`, with the private
part as its training part and the test part as its held-out part; the space -- per-gene
standardisation and PCA above the Gavish-Donoho threshold, at most {lb.N_COMPONENTS}
components -- is fitted on the private part). *TSTR/TRTR*: macro-F1 on the test part of a
**logistic regression** (`sgs.metrics.reverse_validation(..., classifier="logistic")`) trained
on the synthetic samples, over the same for one trained on the private part, on the PCA
features. *PCA-F1*: `sgs.metrics.precision_recall(test, synthetic, k={lb.K})` on the PCA
features (sets balanced by class as in the leaderboard). *C2ST AUC*: a logistic regression
telling test from synthetic samples, 5-fold cross-validated, on the PCA features and their
squares (0.5: indistinguishable).

**Attacks** (`sgs.metrics.membership_inference(private, synthetic, test,
reference=public)`, defaults otherwise: pooled PCA of 50 components of the private, test
and public samples, k = 1, 200 bootstrap resamples of members and non-members), on the
leaderboard's value scale: every private sample is a member, every test sample a
non-member, and the public samples are the attacker's reference sample of the population
(public data is what an attacker has). Not the function's default (half of the holdout as
reference): that half is drawn without regard to the label, so where classes are many and
small the scored half over-represents the classes the reference half lacks, whose samples
then look "synthetic" to LOGAN and DOMIAS, and their AUCs fall below 0.5 (GTEx, 300
samples, private Gaussian at ε = 10, seeds 0 and 1: LOGAN 0.343 (0.25-0.44) and 0.347
(0.26-0.44), DOMIAS 0.389 and 0.377 with the default; with the public reference LOGAN
0.502 and 0.486, DOMIAS 0.495 and 0.498).
*distance*: minus the distance to the nearest synthetic sample; *LOGAN*: 200 extremely
randomized trees telling synthetic from reference samples; *DOMIAS*: kNN density ratio
synthetic / reference. Cells: AUC mean ± sd over seeds, then (in parentheses) the 95 %
bootstrap interval's bounds averaged over seeds. 0.5 is chance. *ε spent*: the accountant's
(RDP) ε after the steps taken; *noise mult.*: Gaussian noise sd over the clip bound.
"""


def markdown(summary: pd.DataFrame, infos: Sequence[dict], meta: Mapping, settings) -> str:
    """The report: setup, datasets, one table per dataset, the reading, definitions."""
    md = [
        "# Privacy/utility trade-off of the differentially private generators",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; wall time {meta['elapsed_s'] / 60:.1f} min",
        f"- machine: {meta['machine']}; threads: {meta['threads']}",
        f"- seeds: {', '.join(map(str, meta['seeds']))} for the closed-form rows; "
        f"{', '.join(map(str, meta['deep_seeds']))} for the deep models "
        f"({meta['deep_seed_note']})",
        f"- deep models: {meta['n_steps']} steps of batch {meta['batch_size']}"
        + (f" ({STEPS_NOTE})" if meta["n_steps"] == N_STEPS else "")
        + "; networks in the definitions",
        f"- models: {', '.join(meta['models'])}; ε: "
        f"{', '.join(_eps(float(e)) for e in meta['epsilons'])}"
        + ("" if meta["full_run"] else " — **a slice, not the full benchmark**"),
        "",
        "| dataset | kind | label | samples x genes | classes | scale | private / public / test |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in infos:
        split = i.get("split", {})
        md.append(
            f"| {i['dataset']} | {i['kind']} | `{i['label']}` | {i['n_obs']} x {i['n_vars']} | "
            f"{len(i['classes'])} | {i['scaling']} | {split.get('private')} / "
            f"{split.get('public')} / {split.get('test')} |"
        )
    epsilons = [float(e) for e in meta["epsilons"]]
    bounds = ", ".join(
        f"ε = {_eps(e)}: {auc_bound(e, meta['delta_example']):.3f}"
        for e in epsilons
        if math.isfinite(e)
    )
    md += [
        "",
        f"Largest AUC any attack can reach under the guarantee (δ = "
        f"{meta['delta_example']:.1e}, the largest here): {bounds}.",
        "",
    ]
    for dataset, group in summary.groupby("dataset", sort=False):
        md += [f"## {dataset}", "", *dataset_table(group), ""]
    md += [
        "## Reading",
        "",
        *reading(summary, infos),
        "",
        "## Definitions",
        "",
        definitions(settings, meta["deep_models"]),
    ]
    return "\n".join(md) + "\n"


# -- command line -------------------------------------------------------------------------------
def _epsilon(text: str) -> float:
    """A target ε from the command line (``inf`` allowed)."""
    value = float(text)  # "inf" parses to math.inf
    if not value > 0:
        msg = f"ε must be > 0 (or inf), not {text!r}."
        raise argparse.ArgumentTypeError(msg)
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="NAME",
        help="registered models that support privacy (default: all of them)",
    )
    ap.add_argument(
        "--epsilons",
        nargs="+",
        type=_epsilon,
        default=list(EPSILONS),
        help="target ε values; inf: the ε = ∞ rows (default 1 3 10 inf)",
    )
    ap.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(SEEDS),
        help="seeds of the closed-form rows (default 0 1 2)",
    )
    ap.add_argument(
        "--deep-seeds",
        nargs="+",
        type=int,
        default=list(DEEP_SEEDS),
        help="seeds of the deep models (default 0: DP-SGD costs minutes a run)",
    )
    ap.add_argument(
        "--n-steps",
        type=int,
        default=N_STEPS,
        help=f"training steps of the deep models (default {N_STEPS})",
    )
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    ap.add_argument("--max-grad-norm", type=float, default=MAX_GRAD_NORM)
    ap.add_argument(
        "--model-kwargs",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='per-model arguments over the defaults, e.g. \'{"wgan": {"n_hidden": [128, 128]}}\'',
    )
    ap.add_argument("--no-reference", action="store_true", help=f"leave out the {REFERENCE} row")
    ap.add_argument(
        "--max-obs",
        type=int,
        default=None,
        help="stratified subsample of each dataset (quick runs)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=lb.default_data_dir())
    ap.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output stem: <out>.json and <out>.md (default {DEFAULT_OUT})",
    )
    ap.add_argument(
        "--overwrite", action="store_true", help="replace a full run's results with a slice's"
    )
    ap.add_argument(
        "--public-labels",
        action="store_true",
        help="pass the public samples with their labels (the private Gaussian then takes "
        "class means outside its subspace from them); default: their expression only",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite <out>.md from the rows of <out>.json (no training)",
    )
    return ap.parse_args(argv)


def _settings(args: argparse.Namespace) -> Settings:
    """The deep models' settings: ``DEEP_KWARGS`` updated by ``--model-kwargs``."""
    kwargs = {m: dict(v) for m, v in DEEP_KWARGS.items()}
    for model, extra in (args.model_kwargs or {}).items():
        kwargs.setdefault(model, {}).update(extra)
    return Settings(args.n_steps, args.batch_size, args.max_grad_norm, kwargs, args.public_labels)


def _is_full(args: argparse.Namespace) -> bool:
    """Whether the run is the full benchmark (its results are not replaced by a slice's)."""
    return (
        set(args.datasets) == set(DATASETS)
        and args.models is None
        and set(EPSILONS) <= set(args.epsilons)
        and set(SEEDS) <= set(args.seeds)
        and set(DEEP_SEEDS) <= set(args.deep_seeds)
        and args.n_steps == N_STEPS
        and args.max_obs is None
        and not args.public_labels
        and not args.no_reference
        and not args.model_kwargs
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line; returns the JSON document written to ``<out>.json``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.report_only:
        report_only(args.out)
        return json.loads(lb.output(args.out, "json").read_text())
    models = private_models(args.models)
    full = _is_full(args)
    out = lb.check_out(args.out, full_run=full, overwrite=args.overwrite)
    settings = _settings(args)
    arms = make_arms(
        models, args.epsilons, "gaussian" in sgs.model.available().index and not args.no_reference
    )
    deep = [m for m in models if not is_closed_form(m)]
    print(f"models: {models} (deep: {deep}); rows per dataset: {len(arms)}")
    start, t0 = dt.datetime.now().astimezone(), time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = lb.output(out, "partial.json")
    with lb.quiet_and_limited(args.threads):
        records, infos = run(
            args.datasets,
            arms,
            args.seeds,
            args.deep_seeds,
            settings=settings,
            data_dir=args.data_dir,
            max_obs=args.max_obs,
            partial=partial,
        )
    meta = _meta(argv, args, models, deep, settings, infos, full)
    meta.update(date=start.isoformat(timespec="seconds"), elapsed_s=time.perf_counter() - t0)
    doc = lb._jsonable({"meta": meta, "datasets": infos, "rows": records})
    summary = write_report(out, doc)
    partial.unlink(missing_ok=True)
    print("\n".join(reading(summary, infos)))
    print(f"Wrote {lb.output(out, 'json')} and {lb.output(out, 'md')}")
    return doc


def _meta(argv, args, models, deep, settings: Settings, infos, full: bool) -> dict[str, Any]:
    """What the report states about the run (ε as text: ``"inf"`` survives JSON)."""
    privates = [i["split"]["private"] for i in infos if "split" in i]
    return {
        "command": shlex.join(["python", "benchmarks/bench_privacy.py", *argv]),
        "machine": lb.machine(),
        "threads": args.threads,
        "datasets": list(args.datasets),
        "models": models,
        "deep_models": deep,
        "epsilons": [_eps(e).replace("∞", "inf") for e in args.epsilons],
        "seeds": list(args.seeds),
        "deep_seeds": list(args.deep_seeds),
        "deep_seed_note": DEEP_SEED_NOTE,
        "n_steps": args.n_steps,
        "batch_size": args.batch_size,
        "max_grad_norm": args.max_grad_norm,
        "networks": {m: settings.network(m) for m in deep},
        "public_labels": settings.public_labels,
        "full_run": full,
        "noise_free_epsilon": NOISE_FREE_EPSILON,
        "attack_flag": ATTACK_FLAG,
        "delta_example": 0.1 / min(privates) if privates else 1e-4,
        "tstr_classifier": "logistic regression",
        "k_precision_recall": lb.K,
    }


def write_report(out: Path, doc: Mapping[str, Any]) -> pd.DataFrame:
    """Write ``<out>.json`` (``doc`` plus the summary) and ``<out>.md``; return the summary.

    In the JSON a target ε of ``null`` is ∞ (JSON has no infinity).
    """
    records = [
        {**r, "epsilon_target": math.inf if r["epsilon_target"] is None else r["epsilon_target"]}
        for r in doc["rows"]
    ]
    summary = summarise(records)
    meta = doc["meta"]
    settings = Settings(
        meta["n_steps"],
        meta["batch_size"],
        meta["max_grad_norm"],
        meta["networks"],
        meta["public_labels"],
    )
    full = {**doc, "summary": lb._jsonable(summary.to_dict(orient="records"))}
    lb.output(out, "json").write_text(json.dumps(full, indent=1, allow_nan=False) + "\n")
    lb.output(out, "md").write_text(markdown(summary, doc["datasets"], meta, settings))
    return summary


def report_only(out: Path) -> pd.DataFrame:
    """Rewrite ``<out>.md`` (and the JSON's summary) from the rows of ``<out>.json``."""
    path = lb.output(out, "json")
    if not path.is_file():
        msg = f"{path} does not exist: nothing to report (run the benchmark first)."
        raise FileNotFoundError(msg)
    return write_report(out, json.loads(path.read_text()))


if __name__ == "__main__":
    main()
