"""Quality leaderboard: every registered generator against reference generators on real data.

For each dataset and seed: one stratified 70/30 split; every generator sees the 70 % only
(an AnnData with the label as a categorical ``.obs`` column, and is conditioned on it), makes
as many samples as there are training samples, and is scored against the held-out 30 % in
one fixed space (see ``DEFINITIONS`` below, repeated in the markdown output). Rows:

- every generator of ``sgs.model.available()`` (``sgs.tl.train`` then ``sgs.tl.generate``
  with the training labels as covariates), names as registered (``wgan``, ``noise``, ...);
- four reference generators kept in ``benchmarks/baselines.py`` (not the package API):
  ``gaussian_noise`` (noise around training samples), ``smote`` (interpolation between
  same-class neighbours), ``pca_gaussian`` (per-class Gaussian in PCA space) and ``mvn_lw``
  (per-class multivariate Gaussian with Ledoit-Wolf covariance);
- ``train``: the training samples themselves, the ceiling row (copying: it fails the
  privacy columns by design).

Usage (from the repository root)::

    python benchmarks/bench_leaderboard.py                       # full run (hours)
    python benchmarks/bench_leaderboard.py --models gaussian_noise smote pca_gaussian \\
        mvn_lw train --seeds 0                                   # references, one seed
    python benchmarks/bench_leaderboard.py --datasets gtex_26tissues_sepira \\
        --models wgan train --n-steps 200 --out /tmp/lb          # a quick slice

Writes ``<out>.json`` (every per-seed row, the dataset table, the summary and verdicts) and
``<out>.md`` (means over seeds, verdicts, definitions, command, date, machine); ``--out``
defaults to ``benchmarks/results/leaderboard``. A slice (fewer datasets, rows or seeds, or a
shorter ``--n-steps``) never replaces the files of a full run unless ``--overwrite`` is given.

The shared data are read from ``--data-dir`` (default ``../shared/data`` next to the
repository root, resolved from this file's location). Reference names differ from registered
ones: ``noise`` is the package's ``NoiseAugmenter``, ``gaussian_noise`` the reference.

From Python: put ``benchmarks/`` on ``sys.path`` and ``import bench_leaderboard``, or load the
file with ``importlib`` (register the module in ``sys.modules`` before executing it, as
dataclasses need)::

    split = prepare(train, test, "tissue", seed=0)      # the fixed space of one split
    scores = score(split, X_synth, labels_synth)        # every column of the leaderboard
    scores = score_synthetic(train, test, "tissue", synth_adata)   # the same in one call
    results, infos = run(datasets=[...], models=[...], extra_generators={"mine": MyGen})
    doc = main([...CLI arguments...], extra_generators={"mine": MyGen})  # + files, verdicts

An extra generator is a class, a zero-argument factory or an instance with
``fit(X, labels)`` and ``sample(n, rng) -> (X, labels)``, as in ``baselines.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import importlib.util
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import scgensynth as sgs


def _baselines():
    """``benchmarks/baselines.py``, loaded from beside this file whatever ``sys.path`` holds."""
    path = Path(__file__).resolve().with_name("baselines.py")
    name = "_scgensynth_bench_baselines"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_b = _baselines()
GaussianNoise, SMOTEInterpolation = _b.GaussianNoise, _b.SMOTEInterpolation
ClassPCAGaussian, ClassLedoitWolfGaussian = _b.ClassPCAGaussian, _b.ClassLedoitWolfGaussian

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "leaderboard"
DEFAULT_SEEDS = (0, 1, 2)

K = 5  # neighbourhood of precision/recall and density/coverage
N_COMPONENTS = 50  # PCA components of the evaluation space (at most; see n_components_for)
MAX_VALUE = 10.0  # standardised values are clipped to +-10, as scanpy.pp.scale(max_value=10)
N_CORR_GENES = 2000  # genes of the correlation score: the most variable in the training part
N_NEARER_DRAWS = 5  # training subsamples averaged in the nearer-to-training share
MIN_CLASS_SIZE = 4  # classes with fewer samples are dropped
MIN_COVERAGE_CLASS = 3  # classes with fewer held-out samples get no per-class coverage (k < 2)
TEST_SIZE = 0.3
OVERSAMPLE = 3  # benchmark-side generators draw 3 x n_train, n_train kept by training labels
CORR_MULTIPLE = 10  # "corr x10": the correlation score of 10 x n_train synthetic samples

REFERENCES: dict[str, type] = {
    "gaussian_noise": GaussianNoise,
    "smote": SMOTEInterpolation,
    "pca_gaussian": ClassPCAGaussian,
    "mvn_lw": ClassLedoitWolfGaussian,
}
CEILING = "train"
LW = "mvn_lw"

#: the bar of the verdicts (means over seeds)
BAR = {
    "c2st_max": 0.60,
    "corr_share_of_ceiling": 0.95,
    "tstr_trtr_min": 0.97,
    "class_coverage_min": 0.5,
    "dcr_range": (0.8, 1.2),
    "nearer_tolerance": 0.1,
    "reference_dcr_min": 0.8,  # references count for the F1 bar only if they do not copy
}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the leaderboard: its file in the data folder and the label it is scored on."""

    label: str
    kind: str
    note: str = ""
    from_scanpy: bool = False  # scanpy.datasets.<name>() instead of <data dir>/<name>.h5ad


DATASETS: dict[str, DatasetSpec] = {
    "gtex_26tissues_sepira": DatasetSpec("tissue", "tissue atlas (GTEx)"),
    "proteinatlas_sepira": DatasetSpec("tissue", "tissue atlas (Human Protein Atlas)"),
    "tcga_lusc_sepira": DatasetSpec("cancer", "TCGA tumour / normal"),
    "tcga_acc_mini": DatasetSpec(
        "C1A_C1B",
        "TCGA clinical covariates",
        note="label: the two transcriptome clusters of the TCGA ACC paper; 'NA' dropped",
    ),
    "datamicroarray_alon": DatasetSpec("label", "microarray (colon tumour / normal)"),
    "datamicroarray_khan": DatasetSpec("label", "microarray (4 tumour types)"),
    "datamicroarray_sorlie": DatasetSpec("label", "microarray (5 breast subtypes)"),
    "datamicroarray_su": DatasetSpec("label", "microarray (4 tumour types)"),
    "datamicroarray_gravier": DatasetSpec("label", "microarray (breast prognosis)"),
    "datamicroarray_chowdary": DatasetSpec("label", "microarray, 22k probes (breast/colon)"),
    "gtex_brain_damirseq": DatasetSpec("tissue", "raw counts (GTEx brain regions)"),
    "gtex_muscle_gwena": DatasetSpec(
        "sex", "raw counts (GTEx muscle)", note="sex: the one covariate with 2 large classes"
    ),
    "bladderbatch": DatasetSpec("cancer", "microarray, 22k probes (bladder)"),
    "all_leukemia": DatasetSpec(
        "mol_biol", "microarray, 12.6k probes (leukaemia)", note="molecular subtype"
    ),
    "hsmm_myoblast_sc": DatasetSpec(
        "Hours", "single cells (SMART-seq FPKM)", note="time point of differentiation"
    ),
    "pbmc68k_reduced": DatasetSpec(
        "bulk_labels",
        "single cells (10x PBMC, scanpy)",
        note=".raw.X (log-normalised); .X is scaled",
        from_scanpy=True,
    ),
}

DEFINITIONS = f"""\
**Space.** Everything is measured in one space per split, fitted on the training part only
and applied identically to real and synthetic samples. Values: count data (integer
matrices, `sgs.pp.detect_scaling` says `"counts"`) are clipped at 0, scaled to 10,000 per
sample (CP10k) and `log1p`-transformed; non-negative values on a linear scale (`"log1p"`:
FPKM, RSEM, MAS5 intensities) are clipped at 0 and `log1p`-transformed; other data (log
scale, ratios: `"standardize"`) are used as they are. Each gene is standardised with the
training part's mean and standard deviation (zero: 1) and clipped to +-{MAX_VALUE:g}, as
`scanpy.pp.scale(max_value={MAX_VALUE:g})` does, so that genes almost constant in the
training part (rare in single cells and counts) cannot dominate. The "PCA features" are the
first q principal components of the standardised training part, q = min({N_COMPONENTS},
n_train - 1, max(2, r)) with r the number of singular values of the centred training matrix
above the Gavish-Donoho (2014) hard threshold (omega(beta) x median singular value): the
components that stand above noise (q per dataset and seed is in the dataset table; with
more, the training samples spread along the extra components, fitted to them, far more
than new samples do -- on pbmc68k_reduced at q = 50 a held-out cell's variance along them
is a third of a training cell's, and the training part itself scores F1 0.10 and C2ST AUC
0.99 against the held-out part). When a dataset is loaded, exact duplicate samples (one in
tcga_lusc_sepira and in datamicroarray_su), samples without label, classes with fewer than
{MIN_CLASS_SIZE} samples and genes that are 0 in every sample are dropped (dataset table).

**Columns** (means over seeds; k = {K}):

- *precision, recall, F1*: `sgs.metrics.precision_recall(test, synth, k={K})` on the PCA
  features, the larger set subsampled to the smaller's size, matched to the other set's
  class counts where it has enough samples of each class (the rest drawn at random).
- *density, coverage*: `sgs.metrics.density_coverage` (Naeem et al. 2020), same sets.
- *min class cov.*: the smallest per-class coverage, `density_coverage(...,
  labels_key=label)` on the same sets (k lowered to the class size - 1), over the classes
  with at least {MIN_COVERAGE_CLASS} held-out samples (fewer give k = 1: two balls, noise);
  a class without synthetic samples has coverage 0. *missing*: training classes of which
  the generator made no sample at all (any class size).
- *C2ST AUC*: `sgs.metrics.classifier_two_sample_auc` between the real held-out samples and
  the synthetic ones (balanced by subsampling, 5-fold stratified cross-validation,
  logistic regression) on the PCA features **and their squares**. On the features alone a
  logistic regression sees only differences of means: a generator that shuffles each gene
  across samples (right marginals, no correlations, no classes) scored 0.43-0.49 on GTEx
  (seeds 0-2), "indistinguishable"; with the squares it sees differences of spread too and
  the shuffle scores 0.99-1.00. Copies of training samples can score somewhat above 0.5
  (the PCA was fitted to them): the `train` row shows how much.
- *corr* / *corr ceil.*: `sgs.metrics.correlation_score(test, synth)` (Pearson correlation
  of the gene-gene correlation matrices) on the {N_CORR_GENES} genes most variable in the
  transformed training part (all genes if fewer); the ceiling is
  `correlation_score(test, train)`. *corr x10*: the same score for {CORR_MULTIPLE} x n_train
  synthetic samples (the training labels repeated; for the models, the first n_train of them
  are the samples every other column scores). The correlation matrix of n_train synthetic
  samples carries its own sampling noise on top of the model's, so on small sets even an
  exact model stays far below the ceiling (a per-class Gaussian on datamicroarray_khan: 0.37
  of a 0.58 ceiling with n_train samples, 0.53 with 10 x); the overall table also counts the
  bar with this column in the correlation item.
- *TSTR F1*, *TRTR F1*, *TSTR/TRTR*: `sgs.metrics.reverse_validation(test, synth, label,
  reference=train, classifier="logistic")` on the PCA features: macro-F1 on the held-out
  part of a logistic regression trained on the synthetic samples and of one trained on the
  training part, and their ratio.
- *DCR ratio*: `sgs.metrics.distance_to_closest_record(train, synth, test)["ratio"]` on the
  PCA features: median distance from a synthetic sample to its nearest training sample
  over the same median for held-out samples (about 1: new samples; 0: copies).
- *nearer train*: the holdout privacy test (Platzer & Reutterer 2021) with sets of equal
  size: the training part is subsampled (stratified) to the size and class counts of the
  held-out part, and this is the share of synthetic samples whose nearest real sample
  (PCA features) is in that subsample rather than in the held-out part
  (`distance_to_closest_record(train_subsample, synth, test)["nearer_train"]`), averaged
  over {N_NEARER_DRAWS} subsamples. About 0.5 if the space were neutral; it is not (it is
  fitted on the training part, along whose components the training samples spread more than
  new samples do), so *nearer exp.* measures the value a perfect generator gets: real unseen
  samples scored the same way (one half of the held-out part as "synthetic", the other as
  the holdout, the training part subsampled to that half; {N_NEARER_DRAWS} stratified cuts).
  It ranges 0.1-0.6 on these sets. Copies of *all* training samples score
  0.5 + 0.5 n_test / n_train (about 0.71), not 1: only that share of them is in the subsample.
- *train s*: seconds to train (fit) the generator; *gen s*: seconds to generate its
  {CORR_MULTIPLE} x n_train samples.

**The bar** (on the means over seeds), all of:

- F1 >= the best F1 of the reference generators whose DCR ratio is >= \
{BAR["reference_dcr_min"]} (the references that do not copy);
- C2ST AUC <= {BAR["c2st_max"]:.2f} and <= the Ledoit-Wolf Gaussian's (`mvn_lw`), or <= 0.5 \
where that is below 0.5 (an AUC below 0.5 is cross-validation noise, not a score to beat);
- corr >= {BAR["corr_share_of_ceiling"]} x its ceiling;
- TSTR/TRTR >= {BAR["tstr_trtr_min"]};
- min class cov. >= {BAR["class_coverage_min"]} and no class missing;
- DCR ratio in [{BAR["dcr_range"][0]}, {BAR["dcr_range"][1]}] and nearer train within \
{BAR["nearer_tolerance"]} of its expected value (*nearer exp.*).

A criterion whose reference row was not run is not applied (the verdict says so).

**Generators.** Registered models: `sgs.tl.train(train, name,
categorical_covariate_keys=[label], seed=seed, **overrides)`, then `sgs.tl.generate(model,
n_obs=n_train, covariates=<the training labels>, seed=seed)`. Reference generators (and
generators passed from Python) draw their labels at random from the training labels (their
`sample(n, rng)` interface): they are asked for {OVERSAMPLE} x n_train samples, of which n_train
are kept with the training part's class counts, so that every row is conditioned on the
same labels (a class of 3 would otherwise be missed by chance). On count and linear-scale
data they are fitted on the `log1p` values (counts: `log1p` CP10k) and their samples mapped
back with `expm1` (negative values clipped), as the package's models scale such data
themselves.
"""

COLUMNS = {  # markdown header -> summary column
    "precision": "precision",
    "recall": "recall",
    "F1": "f1",
    "density": "density",
    "coverage": "coverage",
    "min class cov.": "min_class_coverage",
    "missing": "n_classes_missing",
    "C2ST AUC": "c2st_auc",
    "corr": "corr",
    "corr ceil.": "corr_ceiling",
    "corr x10": "corr_x10",
    "TSTR F1": "tstr_f1",
    "TRTR F1": "trtr_f1",
    "TSTR/TRTR": "tstr_trtr",
    "DCR ratio": "dcr_ratio",
    "nearer train": "nearer_train",
    "nearer exp.": "nearer_expected",
    "train s": "train_s",
    "gen s": "generate_s",
}
METRICS = [c for c in COLUMNS.values() if c not in ("train_s", "generate_s")]


# -- data ---------------------------------------------------------------------------------------
def default_data_dir() -> Path:
    """``../shared/data`` relative to the repository root (resolved from this file)."""
    return DEFAULT_DATA_DIR


def check_datasets(datasets: Sequence[str] | None) -> list[str]:
    """The dataset names (default: all), after checking they are the leaderboard's."""
    datasets = list(DATASETS) if datasets is None else list(datasets)
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        msg = f"Unknown dataset(s) {unknown}; choose from {list(DATASETS)}."
        raise ValueError(msg)
    if len(set(datasets)) != len(datasets):
        msg = f"A dataset is named twice: {datasets}."
        raise ValueError(msg)
    return datasets


def check_data_dir(data_dir: str | os.PathLike, datasets: Sequence[str]) -> Path:
    """The data folder, after checking it holds the files of ``datasets`` (clear errors)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        msg = (
            f"The data folder {data_dir} does not exist. Pass --data-dir (Python: data_dir=) "
            "pointing to the shared real datasets (the folder with gtex_26tissues_sepira.h5ad "
            f"and the others); the default is ../shared/data next to the repository ({REPO})."
        )
        raise FileNotFoundError(msg)
    missing = [
        f"{name}.h5ad"
        for name in datasets
        if not DATASETS[name].from_scanpy and not (data_dir / f"{name}.h5ad").is_file()
    ]
    if missing:
        msg = f"The data folder {data_dir} lacks {missing}; pass the right --data-dir."
        raise FileNotFoundError(msg)
    return data_dir


def _read(name: str, data_dir: Path) -> tuple[ad.AnnData, str]:
    """The raw AnnData of ``name`` (dense X) and a note on where X came from."""
    if DATASETS[name].from_scanpy:  # pbmc68k_reduced: .X is scaled, .raw log-normalised
        import scanpy as sc

        adata = getattr(sc.datasets, name)().raw.to_adata()
        source = f"scanpy.datasets.{name}().raw (log-normalised; .X is scaled)"
    else:
        path = data_dir / f"{name}.h5ad"
        adata = ad.read_h5ad(path)
        source = str(path)
    X = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X)
    adata = ad.AnnData(X=X.astype(np.float32), obs=adata.obs.copy(), var=adata.var.copy())
    adata.obs_names_make_unique()
    adata.var_names_make_unique()
    return adata, source


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> tuple[ad.AnnData, dict]:
    """Load ``name`` with its label as a clean categorical ``.obs`` column.

    Exact duplicate samples are dropped (the first kept: a sample in both parts of a split
    would look copied), then samples whose label is missing (NaN, "NA", "nan" or empty),
    classes with fewer than ``MIN_CLASS_SIZE`` samples, and genes that are 0 in every
    remaining sample.
    ``.obs`` keeps the label only.

    Returns
    -------
    The AnnData and a dict describing it (shape, classes, what was dropped, the value scale).
    """
    if name not in DATASETS:
        msg = f"Unknown dataset {name!r}; the leaderboard's datasets are {list(DATASETS)}."
        raise ValueError(msg)
    spec = DATASETS[name]
    data_dir = check_data_dir(default_data_dir() if data_dir is None else data_dir, [name])
    adata, source = _read(name, data_dir)
    if spec.label not in adata.obs:
        msg = f"{name} has no .obs column {spec.label!r} (columns: {list(adata.obs)})."
        raise KeyError(msg)
    _, first = np.unique(np.asarray(adata.X), axis=0, return_index=True)
    n_duplicates = adata.n_obs - len(first)
    if n_duplicates:  # a sample in both parts would look copied
        adata = adata[np.sort(first)].copy()
    raw = adata.obs[spec.label]
    text = raw.astype(str).str.strip()
    missing = raw.isna().to_numpy() | text.isin(["NA", "nan", "NaN", "None", ""]).to_numpy()
    counts = text[~missing].value_counts()
    small = sorted(counts[counts < MIN_CLASS_SIZE].index)
    keep = ~missing & ~text.isin(small).to_numpy()
    adata = adata[keep].copy()
    adata.obs = pd.DataFrame(
        {spec.label: pd.Categorical(text[keep].to_numpy())}, index=adata.obs_names
    )
    nonzero = np.asarray((adata.X != 0).any(axis=0)).ravel()
    n_zero_genes = int((~nonzero).sum())
    if n_zero_genes:
        adata = adata[:, nonzero].copy()
    info = {
        "dataset": name,
        "kind": spec.kind,
        "label": spec.label,
        "note": spec.note,
        "source": source,
        "n_obs": adata.n_obs,
        "n_vars": adata.n_vars,
        "classes": {str(k): int(v) for k, v in adata.obs[spec.label].value_counts().items()},
        "dropped_duplicates": n_duplicates,
        "dropped_missing_label": int(missing.sum()),
        "dropped_small_classes": {str(c): int(counts[c]) for c in small},
        "dropped_zero_genes": n_zero_genes,
        "scaling": sgs.pp.detect_scaling(adata),
    }
    return adata, info


def split_dataset(adata: ad.AnnData, label: str, seed: int) -> tuple[ad.AnnData, ad.AnnData]:
    """One stratified 70/30 split (scikit-learn, ``random_state=seed``), rows kept in order."""
    idx_train, idx_test = train_test_split(
        np.arange(adata.n_obs),
        test_size=TEST_SIZE,
        stratify=adata.obs[label].astype(str).to_numpy(),
        random_state=seed,
    )
    train, test = adata[np.sort(idx_train)].copy(), adata[np.sort(idx_test)].copy()
    for part in (train, test):
        part.obs[label] = part.obs[label].cat.remove_unused_categories()
    return train, test


# -- the evaluation space -----------------------------------------------------------------------
def _dense64(X) -> np.ndarray:
    X = X.toarray() if sparse.issparse(X) else np.asarray(X)
    return np.asarray(X, dtype=np.float64)


def value_transform(X: np.ndarray, scaling: str) -> np.ndarray:
    """The scale of the evaluation space: counts -> log1p CP10k, linear -> log1p, else as is."""
    X = _dense64(X)
    if scaling == "counts":
        X = np.clip(X, 0.0, None)
        sums = X.sum(axis=1, keepdims=True)
        return np.log1p(X / np.where(sums > 0, sums, 1.0) * 1e4)
    if scaling == "log1p":
        return np.log1p(np.clip(X, 0.0, None))
    return X


def gavish_donoho_rank(Z: np.ndarray) -> int:
    """Number of singular values of centred ``Z`` above the Gavish-Donoho (2014) threshold.

    The optimal hard threshold for singular values when the noise level is unknown:
    ``omega(beta) * median(s)`` with ``beta = min(n, p) / max(n, p)`` and ``omega(beta) ~=
    0.56 beta^3 - 0.95 beta^2 + 1.82 beta + 1.43``. Components below it are
    indistinguishable from noise: along them the training samples spread more than new
    samples do (the PCA was fitted to them), which would make copies of the training part
    look unlike held-out data. Computed from the ``n x n`` Gram matrix.
    """
    C = Z - Z.mean(axis=0)
    n, p = C.shape
    s = np.sqrt(np.clip(np.linalg.eigvalsh(C @ C.T), 0.0, None))[::-1][: min(n, p)]
    beta = min(n, p) / max(n, p)
    omega = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    return int((s > omega * np.median(s)).sum())


def n_components_for(
    Z_train: np.ndarray, n_max: int = N_COMPONENTS, *, noise_cap: bool = True
) -> int:
    """PCA components: ``min(n_max, n_train - 1, n_genes, max(2, Gavish-Donoho rank))``.

    ``noise_cap=False``: without the Gavish-Donoho term (the brief's fixed PCA-50), to compare.
    """
    n, p = Z_train.shape
    cap = max(2, gavish_donoho_rank(Z_train)) if noise_cap else n_max
    return max(1, min(n_max, n - 1, p, cap))


@dataclass
class EvalSpace:
    """Value transform, per-gene standardisation (clipped) and PCA, fitted on a training part.

    ``n_components``: the most components; fewer where the training part supports fewer (see
    :func:`n_components_for`). ``max_value``: standardised values are clipped to
    ``[-max_value, max_value]``, as by ``scanpy.pp.scale(max_value=10)``, so that a gene
    almost constant in the training part (rare in single cells and counts) cannot dominate
    the distances.
    """

    scaling: str
    n_components: int = N_COMPONENTS
    n_corr_genes: int = N_CORR_GENES
    max_value: float = MAX_VALUE
    noise_cap: bool = True
    seed: int = 0

    def fit(self, X_train) -> EvalSpace:
        L = value_transform(X_train, self.scaling)
        self.scaler_ = StandardScaler().fit(L)
        Z = self._standardise(L)
        q = n_components_for(Z, self.n_components, noise_cap=self.noise_cap)
        self.pca_ = PCA(q, random_state=self.seed).fit(Z)
        variance = L.var(axis=0)
        order = np.argsort(-variance, kind="stable")
        order = order[variance[order] > 0][: self.n_corr_genes]
        self.corr_genes_ = np.sort(order)
        return self

    def _standardise(self, L: np.ndarray) -> np.ndarray:
        return np.clip(self.scaler_.transform(L), -self.max_value, self.max_value)

    def features(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(PCA features, transformed values of the correlation genes) of samples ``X``."""
        L = value_transform(X, self.scaling)
        if not np.isfinite(L).all():
            msg = "The samples contain NaN or infinite values; they cannot be scored."
            raise ValueError(msg)
        return self.pca_.transform(self._standardise(L)), L[:, self.corr_genes_]


@dataclass
class Split:
    """One train/test split prepared for scoring: the fitted space and the real features."""

    train: ad.AnnData
    test: ad.AnnData
    label: str
    seed: int
    space: EvalSpace
    P_train: np.ndarray
    P_test: np.ndarray
    G_train: np.ndarray
    G_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    corr_ceiling: float
    trtr_f1: float = math.nan
    nearer_expected: float = math.nan


def prepare(
    train: ad.AnnData,
    test: ad.AnnData,
    label: str,
    *,
    seed: int = 0,
    scaling: str | None = None,
    noise_cap: bool = True,
) -> Split:
    """Fit the evaluation space on ``train`` and project both parts.

    ``scaling`` (``"counts"``, ``"log1p"`` or ``"standardize"``): the value scale; default
    ``sgs.pp.detect_scaling(train)``. ``noise_cap``: see :func:`n_components_for`.
    """
    for name, part in (("train", train), ("test", test)):
        if label not in part.obs:
            msg = f"The {name} AnnData has no .obs column {label!r}."
            raise KeyError(msg)
    if list(train.var_names) != list(test.var_names):
        msg = "train and test must have the same genes in the same order."
        raise ValueError(msg)
    scaling = sgs.pp.detect_scaling(train) if scaling is None else scaling
    space = EvalSpace(scaling, noise_cap=noise_cap, seed=seed).fit(train.X)
    P_train, G_train = space.features(train.X)
    P_test, G_test = space.features(test.X)
    split = Split(
        train=train,
        test=test,
        label=label,
        seed=seed,
        space=space,
        P_train=P_train,
        P_test=P_test,
        G_train=G_train,
        G_test=G_test,
        y_train=train.obs[label].astype(str).to_numpy(),
        y_test=test.obs[label].astype(str).to_numpy(),
        corr_ceiling=sgs.metrics.correlation_score(G_test, G_train, max_genes=None),
    )
    split.trtr_f1 = _macro_f1(split, P_train, split.y_train)
    split.nearer_expected = expected_nearer_share(split)
    return split


def expected_nearer_share(split: Split) -> float:
    """The nearer-to-training share of *real* unseen samples: what a perfect generator scores.

    The held-out part is cut in two halves (stratified where classes allow); one half stands
    in for the synthetic samples, the other is the holdout, and the training part is
    subsampled to the holdout half's size and class counts, as in :func:`_privacy`. Averaged
    over ``N_NEARER_DRAWS`` cuts. Not 0.5: the space is fitted on the training part, which
    spreads training samples along its components more than new samples (0.12-0.56 on the
    leaderboard's sets), so new samples sit nearer each other than the training samples.
    """
    rng = np.random.default_rng(split.seed + 2)
    n = len(split.y_test)
    if n < 4:
        return math.nan
    m = sgs.metrics
    shares = []
    for _ in range(N_NEARER_DRAWS):
        half = np.zeros(n, dtype=bool)
        for c in np.unique(split.y_test):  # half of each class (odd sizes: a coin decides)
            members = rng.permutation(np.flatnonzero(split.y_test == c))
            k = len(members) // 2 + int(len(members) % 2 and rng.random() < 0.5)
            half[members[:k]] = True
        if half.all() or not half.any():
            continue
        y_hold = split.y_test[~half]
        idx = matched_subsample(split.y_train, y_hold, rng)
        res = m.distance_to_closest_record(
            split.P_train[idx], split.P_test[half], split.P_test[~half]
        )
        shares.append(res["nearer_train"])
    return float(np.mean(shares)) if shares else math.nan


# -- scoring ------------------------------------------------------------------------------------
def matched_subsample(
    y_from: np.ndarray, y_target: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Indices of ``len(y_target)`` rows of ``y_from``, matching ``y_target``'s class counts.

    Per class, ``min(count in y_target, count in y_from)`` rows are drawn without replacement;
    any slots left (classes ``y_from`` has too few of) are filled at random from its other rows.
    """
    n = len(y_target)
    if n > len(y_from):
        msg = f"Cannot draw {n} rows from {len(y_from)}."
        raise ValueError(msg)
    picked = []
    for c, m in zip(*np.unique(y_target, return_counts=True)):
        members = np.flatnonzero(y_from == c)
        picked.append(rng.choice(members, min(m, len(members)), replace=False))
    chosen = np.concatenate(picked) if picked else np.array([], dtype=int)
    rest = np.setdiff1d(np.arange(len(y_from)), chosen)
    fill = rng.choice(rest, n - len(chosen), replace=False)
    return np.sort(np.concatenate([chosen, fill]).astype(int))


def _labelled(P: np.ndarray, y: np.ndarray, label: str) -> ad.AnnData:
    obs = pd.DataFrame({label: pd.Categorical(y)}, index=[f"s{i}" for i in range(len(y))])
    var = pd.DataFrame(index=[f"pc{j}" for j in range(P.shape[1])])
    return ad.AnnData(X=np.asarray(P, dtype=np.float64), obs=obs, var=var)


def _neighbour_metrics(split: Split, P_s: np.ndarray, y_s: np.ndarray) -> dict[str, float]:
    """Precision/recall/F1, density/coverage and per-class coverage on balanced sets."""
    rng = np.random.default_rng(split.seed)
    P_r, y_r, y_all = split.P_test, split.y_test, y_s
    if len(y_s) >= len(y_r):
        idx = matched_subsample(y_s, y_r, rng)
        P_s, y_s = P_s[idx], y_s[idx]
    else:
        idx = matched_subsample(y_r, y_s, rng)
        P_r, y_r = P_r[idx], y_r[idx]
    m = sgs.metrics
    pr = m.precision_recall(P_r, P_s, k=K)
    dc = m.density_coverage(P_r, P_s, k=K)
    per_class = m.density_coverage(
        _labelled(P_r, y_r, split.label),
        _labelled(P_s, y_s, split.label),
        k=K,
        labels_key=split.label,
    )
    measured = per_class[per_class["n_real"] >= MIN_COVERAGE_CLASS]
    coverage = measured["coverage"].fillna(0.0)  # NaN: no synthetic sample of the class
    return {
        "precision": pr["precision"],
        "recall": pr["recall"],
        "f1": pr["f1"],
        "density": dc["density"],
        "coverage": dc["coverage"],
        "min_class_coverage": float(coverage.min()) if len(coverage) else math.nan,
        "n_classes_low_coverage": int((coverage < BAR["class_coverage_min"]).sum()),
        "n_classes_missing": len(set(split.y_train) - set(y_all)),
    }


def _privacy(split: Split, P_s: np.ndarray) -> dict[str, float]:
    """DCR ratio (whole training part) and the nearer-to-training share (equal-size sets)."""
    m = sgs.metrics
    dcr = m.distance_to_closest_record(split.P_train, P_s, split.P_test)
    rng = np.random.default_rng(split.seed + 1)
    shares = []
    for _ in range(N_NEARER_DRAWS):
        idx = matched_subsample(split.y_train, split.y_test, rng)
        shares.append(m.distance_to_closest_record(split.P_train[idx], P_s, split.P_test))
    return {
        "dcr_ratio": dcr["ratio"],
        "copies": dcr["copies"],
        "nearer_train": float(np.mean([s["nearer_train"] for s in shares])),
    }


def _macro_f1(split: Split, P_fit: np.ndarray, y_fit: np.ndarray) -> float:
    """Macro-F1 on the held-out part of a logistic regression trained on ``P_fit``."""
    label = split.label
    if len(np.unique(y_fit)) < 2:  # nothing to learn: scored as a classifier that is never right
        return 0.0
    return sgs.metrics.reverse_validation(
        _labelled(split.P_test, split.y_test, label),
        _labelled(P_fit, y_fit, label),
        label,
        classifier="logistic",
        seed=split.seed,
    )["macro_f1"]


def c2st_auc(P_real: np.ndarray, P_synth: np.ndarray, *, seed: int = 0) -> float:
    """C2ST AUC on PCA features and their squares (see ``DEFINITIONS``).

    ``sgs.metrics.classifier_two_sample_auc`` with a logistic regression, 5-fold stratified
    cross-validation and the larger set subsampled to the smaller's size, on ``[P, P**2]``
    (``n_components=None``: no further PCA; the function standardises per fold).
    """
    return sgs.metrics.classifier_two_sample_auc(
        np.hstack([P_real, P_real**2]),
        np.hstack([P_synth, P_synth**2]),
        n_components=None,
        n_splits=5,
        classifier="logistic",
        seed=seed,
    )


def score(split: Split, X, labels) -> dict[str, float]:
    """Every column of the leaderboard for synthetic samples ``X`` (input scale) and labels.

    Parameters
    ----------
    split
        From :func:`prepare` (the training and held-out parts and the fitted space).
    X
        Synthetic samples x genes, on the scale of ``split.train.X``, same genes.
    labels
        The label of each synthetic sample.
    """
    X = _dense64(X)
    y_s = np.asarray(labels).astype(str)
    if X.ndim != 2 or X.shape[1] != split.train.n_vars or len(y_s) != len(X):
        msg = (
            f"Expected synthetic samples x {split.train.n_vars} genes and one label per sample; "
            f"got {X.shape} and {len(y_s)} labels."
        )
        raise ValueError(msg)
    P_s, G_s = split.space.features(X)
    out = _neighbour_metrics(split, P_s, y_s)
    out["c2st_auc"] = c2st_auc(split.P_test, P_s, seed=split.seed)
    out["corr"] = sgs.metrics.correlation_score(split.G_test, G_s, max_genes=None)
    out["corr_ceiling"] = split.corr_ceiling
    out["tstr_f1"] = _macro_f1(split, P_s, y_s)
    out["trtr_f1"] = split.trtr_f1
    out["tstr_trtr"] = out["tstr_f1"] / split.trtr_f1 if split.trtr_f1 > 0 else math.nan
    out.update(_privacy(split, P_s))
    out["nearer_expected"] = split.nearer_expected
    return out


def correlation_of_many(split: Split, X) -> float:
    """The correlation score of a large synthetic set (the ``corr_x10`` column).

    Free of most of the sampling noise of ``n_train`` synthetic samples, which alone keeps
    even an exact model of the data well below the ceiling on small sets.
    """
    _, G = split.space.features(_dense64(X))
    return sgs.metrics.correlation_score(split.G_test, G, max_genes=None)


def score_synthetic(
    train: ad.AnnData,
    test: ad.AnnData,
    label: str,
    synth: ad.AnnData | np.ndarray,
    labels: Sequence | None = None,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Score one synthetic set against a train/test split: ``score(prepare(...), ...)``.

    ``synth``: an AnnData (labels from ``synth.obs[label]``, genes matched to ``train`` by
    name) or an array (then pass ``labels``). To score several sets on one split, call
    :func:`prepare` once and :func:`score` for each.
    """
    if isinstance(synth, ad.AnnData):
        labels = synth.obs[label].to_numpy() if labels is None else labels
        X = synth[:, train.var_names].X
    else:
        X = synth
    if labels is None:
        msg = "Pass labels= (one per synthetic sample) when synth is an array."
        raise ValueError(msg)
    return score(prepare(train, test, label, seed=seed), X, labels)


# -- generators ---------------------------------------------------------------------------------
class InModelSpace:
    """Fit a ``fit``/``sample`` generator on log values of count or linear-scale data.

    ``scaling`` ``"counts"``: fitted on ``log1p`` CP10k, samples returned as ``expm1`` (CP10k
    scale); ``"log1p"``: fitted on ``log1p``, samples ``expm1``; otherwise unchanged. Negative
    log values are clipped at 0 before ``expm1``.
    """

    def __init__(self, generator, scaling: str):
        self.generator = generator
        self.scaling = scaling

    def fit(self, X, labels) -> InModelSpace:
        self.generator.fit(value_transform(X, self.scaling), labels)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        X, y = self.generator.sample(n, rng)
        if self.scaling in ("counts", "log1p"):
            X = np.expm1(np.clip(X, 0.0, None))
        return X, y


def _new_generator(spec) -> Any:
    """A fresh generator from a class, a zero-argument factory or an instance (deep copy)."""
    if hasattr(spec, "fit") and hasattr(spec, "sample") and not isinstance(spec, type):
        return copy.deepcopy(spec)
    return spec()


def _run_candidate(spec, split: Split) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fit a benchmark-side generator on the training part; ``n_train`` samples.

    Its ``sample(n, rng)`` draws labels at random; to give it the training labels, as the
    registered models get, ``OVERSAMPLE x n_train`` samples are drawn and ``n_train`` kept
    with the training part's class counts (:func:`matched_subsample`).
    """
    train, scaling = split.train, split.space.scaling
    gen = InModelSpace(_new_generator(spec), scaling)
    t0 = time.perf_counter()
    gen.fit(_dense64(train.X), split.y_train)
    t1 = time.perf_counter()
    rng = np.random.default_rng(split.seed)
    wanted = np.tile(split.y_train, CORR_MULTIPLE)
    X, y = gen.sample(OVERSAMPLE * len(wanted), rng)
    y = np.asarray(y).astype(str)
    keep = matched_subsample(y, wanted, rng)
    X, y = np.asarray(X)[keep], y[keep]
    first = matched_subsample(y, split.y_train, rng)  # the n_train scored by every column
    rest = np.setdiff1d(np.arange(len(y)), first)
    order = np.concatenate([first, rest])
    return X[order], y[order], t1 - t0, time.perf_counter() - t1


def _run_registered(
    name: str, split: Split, train_kwargs: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``sgs.tl.train`` then ``sgs.tl.generate`` with the training labels as covariates."""
    train, label = split.train, split.label
    data = ad.AnnData(X=train.X.copy(), obs=train.obs[[label]].copy(), var=train.var.copy())
    t0 = time.perf_counter()
    model = sgs.tl.train(
        data, name, categorical_covariate_keys=[label], seed=split.seed, **train_kwargs
    )
    t1 = time.perf_counter()
    # the first n_train rows are the training labels; generation is keyed by row, so they
    # are the samples generate(n_train) would give
    covariates = pd.DataFrame({label: np.tile(train.obs[label].to_numpy(), CORR_MULTIPLE)})
    synth = sgs.tl.generate(model, covariates=covariates, seed=split.seed)
    seconds = time.perf_counter() - t1
    return _dense64(synth.X), synth.obs[label].astype(str).to_numpy(), t1 - t0, seconds


@dataclass(frozen=True)
class Row:
    """One row of the leaderboard: its name, kind and how to make its samples."""

    name: str
    kind: str  # "registered", "reference", "ceiling" or "extra"
    spec: Any = None


def resolve_rows(
    models: Sequence[str] | None, extra_generators: Mapping[str, Any] | None = None
) -> list[Row]:
    """The rows for ``models`` (default: all) plus the extra generators."""
    registered = list(sgs.model.available().index)
    clash = sorted(set(registered) & ({CEILING} | set(REFERENCES)))
    if clash:
        msg = f"Registered model names {clash} clash with the leaderboard's reference rows."
        raise ValueError(msg)
    names = [*registered, *REFERENCES, CEILING] if models is None else list(models)
    rows = []
    for name in names:
        if name in REFERENCES:
            rows.append(Row(name, "reference", REFERENCES[name]))
        elif name == CEILING:
            rows.append(Row(name, "ceiling"))
        elif name in registered:
            rows.append(Row(name, "registered"))
        else:
            msg = (
                f"Unknown model {name!r}: registered {registered}, references "
                f"{list(REFERENCES)}, ceiling {CEILING!r}."
            )
            raise ValueError(msg)
    for name, spec in (extra_generators or {}).items():
        if name in names or name in registered:
            msg = f"The extra generator's name {name!r} is taken; pick another."
            raise ValueError(msg)
        rows.append(Row(name, "extra", spec))
    if len({r.name for r in rows}) != len(rows):
        msg = f"A model is named twice: {names}."
        raise ValueError(msg)
    return rows


def make_samples(
    row: Row, split: Split, train_kwargs: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(samples, labels, train seconds, generate seconds) of one row on one split.

    ``CORR_MULTIPLE x n_train`` samples (the ceiling: the training part, once); the first
    ``n_train`` have the training part's labels and are the ones scored, the rest only enter
    the ``corr_x10`` column.
    """
    if row.kind == "ceiling":
        return _dense64(split.train.X), split.y_train.copy(), 0.0, 0.0
    if row.kind == "registered":
        return _run_registered(row.name, split, train_kwargs)
    return _run_candidate(row.spec, split)


# -- the run ------------------------------------------------------------------------------------
def _failed_row(exc: BaseException) -> dict[str, Any]:
    return {"error": f"{type(exc).__name__}: {exc}"}


def run_split(
    split: Split,
    rows: Sequence[Row],
    *,
    train_kwargs: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Make and score the samples of every row on one prepared split.

    A row that fails (training, generation or scoring) is kept with its ``error`` and NaN
    metrics, so one broken model does not lose a long run.
    """
    out = []
    for row in rows:
        kwargs = {**(train_kwargs or {}), **(model_kwargs or {}).get(row.name, {})}
        record: dict[str, Any] = {"row": row.name, "kind": row.kind, "error": None}
        try:
            X, y, train_s, generate_s = make_samples(row, split, kwargs)
            record.update(train_s=train_s, generate_s=generate_s)
            n = split.train.n_obs
            record.update(score(split, X[:n], y[:n]))
            record["corr_x10"] = correlation_of_many(split, X) if len(X) > n else math.nan
        except Exception as exc:  # recorded in the row: the run goes on
            record.update(_failed_row(exc))
        out.append(record)
        if log is not None:
            status = record["error"] or (
                f"F1 {record['f1']:.3f}, C2ST {record['c2st_auc']:.3f}, "
                f"DCR {record['dcr_ratio']:.2f}, train {record['train_s']:.1f} s"
            )
            log(f"  {row.name}: {status}")
    return out


def run(
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    *,
    n_steps: int | None = None,
    data_dir: str | os.PathLike | None = None,
    extra_generators: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    noise_cap: bool = True,
    verbose: bool = True,
    partial: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Run the leaderboard; returns the per-seed rows and the dataset descriptions.

    Parameters
    ----------
    datasets
        Names of ``DATASETS`` (default: all).
    models
        Registered model names, reference names (``gaussian_noise``, ``smote``,
        ``pca_gaussian``, ``mvn_lw``) and ``train`` (default: all of them).
    seeds
        One split (and training seed) per seed.
    n_steps
        Training length of every registered model (default: each model's own).
    data_dir
        Folder of the shared datasets (default ``../shared/data`` next to the repository).
    extra_generators
        ``{name: generator}``: more rows, each a class, a zero-argument factory or an instance
        with ``fit(X, labels)`` and ``sample(n, rng) -> (X, labels)`` (as in
        ``baselines.py``), fitted like the reference generators.
    model_kwargs
        Per-row training arguments of registered models, e.g. ``{"wgan": {"n_hidden": ...}}``.
    noise_cap
        Cap the PCA at the components above noise (see :func:`n_components_for`); ``False``:
        the fixed min(50, n_train - 1, n_genes), to compare.
    verbose
        Print one line per dataset, seed and row.
    partial
        A JSON file rewritten with every row scored so far after each dataset and seed, so
        that a long run that dies keeps what it measured.
    """
    datasets = check_datasets(datasets)
    rows = resolve_rows(models, extra_generators)
    data_dir = check_data_dir(default_data_dir() if data_dir is None else data_dir, datasets)
    train_kwargs: dict[str, Any] = {"enable_progress_bar": False}
    if n_steps is not None:
        train_kwargs["n_steps"] = int(n_steps)
    log = print if verbose else None
    records, infos = [], []
    for name in datasets:
        adata, info = load_dataset(name, data_dir)
        infos.append(info)
        label = info["label"]
        for seed in seeds:
            t0 = time.perf_counter()
            train, test = split_dataset(adata, label, seed)
            split = prepare(
                train, test, label, seed=seed, scaling=info["scaling"], noise_cap=noise_cap
            )
            q = int(split.space.pca_.n_components_)
            info.setdefault("n_components", {})[str(seed)] = q
            info["n_corr_genes"] = len(split.space.corr_genes_)
            if log:
                log(f"{name} seed {seed}: {train.n_obs} train / {test.n_obs} test samples")
            common = {"dataset": name, "label": label, "seed": seed, "n_train": train.n_obs}
            common.update(n_test=test.n_obs, n_genes=train.n_vars, n_components=q)
            for record in run_split(
                split, rows, train_kwargs=train_kwargs, model_kwargs=model_kwargs, log=log
            ):
                records.append({**common, **record})
            if partial is not None:
                Path(partial).write_text(json.dumps(_jsonable(records), indent=1) + "\n")
            if log:
                log(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s")
    return pd.DataFrame(records), infos


# -- summary and verdicts -----------------------------------------------------------------------
def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per dataset x row (``n_seeds``: seeds without error)."""
    extra = ("n_classes_low_coverage", "copies", "train_s", "generate_s")
    numeric = [c for c in dict.fromkeys([*METRICS, *extra]) if c in results]
    ok = results[results["error"].isna()] if "error" in results else results
    means = ok.groupby(["dataset", "row"], sort=False)[numeric].mean()
    n_seeds = ok.groupby(["dataset", "row"], sort=False).size().rename("n_seeds")
    keys = results[["dataset", "row", "kind"]].drop_duplicates(["dataset", "row"])
    out = keys.merge(means.join(n_seeds).reset_index(), on=["dataset", "row"], how="left")
    out["n_seeds"] = out["n_seeds"].fillna(0).astype(int)
    errors = results.groupby(["dataset", "row"], sort=False)["error"].agg(
        lambda e: "; ".join(sorted({str(x) for x in e.dropna()}))
    )
    return out.merge(errors.rename("errors").reset_index(), on=["dataset", "row"], how="left")


def _bars(group: pd.DataFrame) -> dict[str, float]:
    """Per-dataset bars from the reference rows (NaN where the reference was not run)."""
    refs = group[group["kind"] == "reference"]
    fair = refs[refs["dcr_ratio"] >= BAR["reference_dcr_min"]]
    lw = group.loc[group["row"] == LW, "c2st_auc"]
    return {
        "f1": float(fair["f1"].max()) if len(fair) else math.nan,
        "f1_from": str(fair.loc[fair["f1"].idxmax(), "row"]) if len(fair) else "",
        "c2st_lw": float(lw.iloc[0]) if len(lw) else math.nan,
        "n_references": len(refs),
    }


def failed_criteria(
    row: pd.Series, bars: Mapping[str, float], corr_column: str = "corr"
) -> list[str]:
    """The criteria of the bar that a summary row misses (NaN metrics miss).

    ``corr_column="corr_x10"``: the correlation item judged on 10 x n_train samples.
    """
    lo, hi = BAR["dcr_range"]
    corr = row.get(corr_column, math.nan)
    checks = {
        "F1": math.isnan(bars["f1"]) or row["f1"] >= bars["f1"],
        "C2ST": row["c2st_auc"] <= c2st_bar(bars),
        "corr": corr >= BAR["corr_share_of_ceiling"] * row["corr_ceiling"],
        "TSTR": row["tstr_trtr"] >= BAR["tstr_trtr_min"],
        "class cov.": row["n_classes_missing"] == 0
        and not row["min_class_coverage"] < BAR["class_coverage_min"],  # NaN: none measured
        "DCR": lo <= row["dcr_ratio"] <= hi,
        "nearer": abs(row["nearer_train"] - _expected(row)) <= BAR["nearer_tolerance"],
    }
    return [name for name, ok in checks.items() if not ok]


def _expected(row: pd.Series) -> float:
    """The nearer-to-training share expected of new samples (0.5 where it was not measured)."""
    value = row.get("nearer_expected", math.nan)
    return 0.5 if value is None or math.isnan(value) else float(value)


def c2st_bar(bars: Mapping[str, float]) -> float:
    """``min(0.60, max(0.5, mvn_lw's AUC))``: below 0.5 an AUC is noise, not a better score."""
    if math.isnan(bars["c2st_lw"]):
        return BAR["c2st_max"]
    return min(BAR["c2st_max"], max(0.5, bars["c2st_lw"]))


def _bar_text(bars: Mapping[str, float]) -> str:
    if bars["f1_from"]:
        f1 = f"F1 bar {bars['f1']:.3f} from {bars['f1_from']}"
    elif not bars["n_references"]:
        f1 = "F1 bar not applied: no reference row run"
    else:
        f1 = f"F1 bar not applied: no reference row with DCR ratio >= {BAR['reference_dcr_min']}"
    c2st = f"C2ST bar {c2st_bar(bars):.3f}"
    if math.isnan(bars["c2st_lw"]):
        c2st += f" ({LW} not run)"
    return f"{f1}; {c2st}"


def verdicts(summary: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], pd.DataFrame]:
    """Add ``fails``/``meets_bar`` to the summary; one verdict line per dataset; counts per row."""
    summary = summary.copy()
    summary["fails"] = ""
    summary["meets_bar"] = False
    summary["meets_bar_x10"] = False
    lines = {}
    for dataset, group in summary.groupby("dataset", sort=False):
        bars = _bars(group)
        for i, row in group.iterrows():
            fails = failed_criteria(row, bars) if row["n_seeds"] else ["error"]
            summary.at[i, "fails"] = ", ".join(fails)
            summary.at[i, "meets_bar"] = not fails
            summary.at[i, "meets_bar_x10"] = bool(row["n_seeds"]) and not failed_criteria(
                row, bars, "corr_x10"
            )
        winners = summary.loc[group.index]
        winners = list(winners.loc[winners["meets_bar"], "row"])
        lines[dataset] = f"meets the bar: {', '.join(winners) or 'none'} ({_bar_text(bars)})"
    counts = (
        summary.groupby("row", sort=False)
        .agg(
            kind=("kind", "first"),
            met=("meets_bar", "sum"),
            met_x10=("meets_bar_x10", "sum"),
            datasets=("meets_bar", "size"),
        )
        .reset_index()
    )
    return summary, lines, counts


# -- output -------------------------------------------------------------------------------------
def machine() -> str:
    """One line on the machine and the software versions."""
    import torch

    return (
        f"{platform.node()} ({platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs), Python {platform.python_version()}, torch {torch.__version__}, "
        f"scgensynth {sgs.__version__}"
    )


def is_full_run(datasets, models, seeds, n_steps, noise_cap: bool = True) -> bool:
    """All datasets, all rows, seeds 0-2 (at least), default training lengths and space."""
    every = {*sgs.model.available().index, *REFERENCES, CEILING}
    return (
        set(datasets) == set(DATASETS)
        and every <= set(models)
        and set(DEFAULT_SEEDS) <= set(seeds)
        and n_steps is None
        and noise_cap
    )


def output(out: str | os.PathLike, kind: str) -> Path:
    """``<out>.json``, ``<out>.md`` or ``<out>.partial.json`` (``kind``: the ending)."""
    out = Path(out)
    return out.with_name(f"{out.name}.{kind}")


def check_out(out: str | os.PathLike, *, full_run: bool, overwrite: bool) -> Path:
    """The output stem, refusing to replace a full run's results with a slice's.

    Also refuses to start over the ``<out>.partial.json`` of an interrupted run (its rows
    would be lost) unless ``overwrite``.
    """
    out = Path(out)
    partial = output(out, "partial.json")
    if partial.is_file() and not overwrite:
        msg = (
            f"{partial} holds the rows of an interrupted run; move it away (or pass "
            "--overwrite to discard it)."
        )
        raise FileExistsError(msg)
    previous = output(out, "json")
    if previous.is_file() and not full_run and not overwrite:
        try:
            was_full = json.loads(previous.read_text()).get("meta", {}).get("full_run", False)
        except (OSError, ValueError):
            was_full = True  # unreadable: do not guess, keep it
        if was_full:
            msg = (
                f"{previous} holds the results of a full run and this run is a slice; pass "
                "--out to write elsewhere, or --overwrite to replace them."
            )
            raise FileExistsError(msg)
    return out


def _fmt(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if column in ("train_s", "generate_s"):
        return f"{value:.1f}"
    if column.startswith("n_"):  # a count (mean over seeds)
        return f"{value:.2g}"
    return f"{value:.3f}"


def _span(values) -> str:
    values = sorted(values)
    if not values:
        return "—"
    return str(values[0]) if values[0] == values[-1] else f"{values[0]}-{values[-1]}"


def _dataset_table(infos: Sequence[dict]) -> list[str]:
    lines = [
        "| dataset | kind | label | samples x genes | classes | scale | PCA | dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for info in infos:
        dropped = []
        if info["dropped_duplicates"]:
            dropped.append(f"{info['dropped_duplicates']} duplicate sample(s)")
        if info["dropped_missing_label"]:
            dropped.append(f"{info['dropped_missing_label']} missing label")
        if info["dropped_small_classes"]:
            small = ", ".join(f"{k} ({v})" for k, v in info["dropped_small_classes"].items())
            dropped.append(f"classes < {MIN_CLASS_SIZE}: {small}")
        if info["dropped_zero_genes"]:
            dropped.append(f"{info['dropped_zero_genes']} all-zero genes")
        note = f" ({info['note']})" if info["note"] else ""
        lines.append(
            f"| {info['dataset']} | {info['kind']} | `{info['label']}`{note} | "
            f"{info['n_obs']} x {info['n_vars']} | {len(info['classes'])} | {info['scaling']} | "
            f"{_span(info.get('n_components', {}).values())} | {'; '.join(dropped) or '—'} |"
        )
    return lines


def markdown(
    summary: pd.DataFrame, lines: Mapping[str, str], counts: pd.DataFrame, infos, meta
) -> str:
    """The markdown report: setup, overall counts, verdicts and tables, definitions."""
    md = [
        "# Quality leaderboard",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; "
        + (
            "**interrupted run**: the rows it saved (`--from-partial`)"
            if meta.get("interrupted")
            else f"wall time {meta['elapsed_s'] / 60:.1f} min"
        ),
        f"- machine: {meta['machine']}; threads: {meta.get('threads', 1)}",
        f"- seeds: {', '.join(map(str, meta['seeds']))}; training length: "
        + ("each model's default" if meta["n_steps"] is None else f"n_steps={meta['n_steps']}")
        + ("" if meta["full_run"] else " — **a slice, not the full leaderboard**"),
        f"- PCA components: {meta.get('pca', 'Gavish-Donoho cap')} (see Definitions)",
        "",
        "## Datasets",
        "",
        *_dataset_table(infos),
        "",
        "## Overall",
        "",
        "| row | kind | meets the bar on | with the corr item on 10 x n_train samples |",
        "|---|---|---|---|",
    ]
    for _, c in counts.iterrows():
        md.append(
            f"| {c['row']} | {c['kind']} | {c['met']} of {c['datasets']} datasets "
            f"| {c['met_x10']} of {c['datasets']} |"
        )
    header = ["row", *COLUMNS, "fails"]
    for dataset, group in summary.groupby("dataset", sort=False):
        md += ["", f"## {dataset}", "", f"**Verdict:** {lines[dataset]}.", ""]
        md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, row in group.iterrows():
            cells = [_fmt(row.get(col), col) for col in COLUMNS.values()]
            fails = row["fails"] or "**meets the bar**"
            if row["errors"]:
                fails += f" (error: {row['errors'][:200]})"
            md.append("| " + " | ".join([row["row"], *cells, fails]) + " |")
    md += ["", "## Definitions", "", DEFINITIONS]
    return "\n".join(md) + "\n"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(out: Path, results: pd.DataFrame, infos, meta) -> dict[str, Any]:
    """Write ``<out>.json`` and ``<out>.md``; returns the JSON document."""
    summary, lines, counts = verdicts(summarise(results))
    doc = {
        "meta": meta,
        "bar": BAR,
        "datasets": infos,
        "rows": results.to_dict(orient="records"),
        "summary": summary.to_dict(orient="records"),
        "verdicts": lines,
        "counts": counts.to_dict(orient="records"),
    }
    doc = _jsonable(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    output(out, "json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    output(out, "md").write_text(markdown(summary, lines, counts, infos, meta))
    return doc


def write_from_partial(
    out: str | os.PathLike, data_dir: str | os.PathLike, argv: Sequence[str]
) -> dict[str, Any]:
    """``<out>.{json,md}`` from the rows an interrupted run saved in ``<out>.partial.json``.

    The report is marked interrupted (``meta["interrupted"]``) and never a full run; the
    partial file is kept.
    """
    out = Path(out)
    partial = output(out, "partial.json")
    if not partial.is_file():
        msg = f"{partial} does not exist: no interrupted run to report with --out {out}."
        raise FileNotFoundError(msg)
    results = pd.DataFrame(json.loads(partial.read_text()))
    datasets = list(dict.fromkeys(results["dataset"]))
    infos = []
    for name in datasets:
        _, info = load_dataset(name, data_dir)
        rows = results[results["dataset"] == name]
        info["n_components"] = {
            str(seed): int(q) for seed, q in zip(rows["seed"], rows["n_components"], strict=True)
        }
        infos.append(info)
    meta = {
        "command": shlex.join(["python", "benchmarks/bench_leaderboard.py", *argv]),
        "date": dt.datetime.fromtimestamp(partial.stat().st_mtime)
        .astimezone()
        .isoformat(timespec="seconds"),
        "machine": machine(),
        "datasets": datasets,
        "models": list(dict.fromkeys(results["row"])),
        "seeds": sorted({int(s) for s in results["seed"]}),
        "n_steps": None,
        "full_run": False,
        "interrupted": True,
    }
    return write_results(out, results, infos, meta)


# -- command line -------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"default: all of {', '.join(DATASETS)}",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="NAME",
        help="registered names (sgs.model.available()), references "
        f"({', '.join(REFERENCES)}) and {CEILING!r}; default: all",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument(
        "--n-steps",
        type=int,
        default=None,
        help="training length of every registered model (quick runs)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (default 1: steady on shared machines)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help=f"the shared datasets (default {default_data_dir()})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output stem: <out>.json and <out>.md (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--fixed-pca",
        action="store_true",
        help="PCA on min(50, n_train - 1, n_genes) components, without the cap at the "
        "components above noise (to compare; not the leaderboard's space)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a full run's results with those of a slice",
    )
    parser.add_argument(
        "--from-partial",
        action="store_true",
        help="write the report of an interrupted run from <out>.partial.json (no training)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def quiet_and_limited(threads: int) -> Iterator[None]:
    """Lightning's per-run chatter off and ``threads`` torch/BLAS threads, restored after."""
    import torch

    loggers = [
        logging.getLogger(n) for n in ("lightning.pytorch", "lightning", "lightning.fabric")
    ]
    levels = [logger.level for logger in loggers]
    torch_threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings(), threadpool_limits(limits=threads):
            warnings.filterwarnings("ignore", module="lightning")
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            torch.set_num_threads(threads)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        torch.set_num_threads(torch_threads)


def main(
    argv: Sequence[str] | None = None,
    *,
    extra_generators: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The command line; from Python also with extra generators and per-model arguments.

    Returns the JSON document written to ``<out>.json``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.from_partial:
        previous = output(Path(args.out), "json")
        if previous.is_file() and not args.overwrite:
            msg = (
                f"{previous} exists; pass --overwrite to replace it with the interrupted "
                "run's report, or another --out."
            )
            raise FileExistsError(msg)
        return write_from_partial(args.out, args.data_dir, argv)
    datasets = check_datasets(args.datasets)
    names = [r.name for r in resolve_rows(args.models, extra_generators) if r.kind != "extra"]
    noise_cap = not args.fixed_pca
    full = is_full_run(datasets, names, args.seeds, args.n_steps, noise_cap)
    out = check_out(args.out, full_run=full, overwrite=args.overwrite)
    check_data_dir(args.data_dir, datasets)
    start, t0 = dt.datetime.now().astimezone(), time.perf_counter()
    partial = output(out, "partial.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with quiet_and_limited(args.threads):
        results, infos = run(
            datasets,
            names,
            args.seeds,
            n_steps=args.n_steps,
            data_dir=args.data_dir,
            extra_generators=extra_generators,
            model_kwargs=model_kwargs,
            noise_cap=noise_cap,
            partial=partial,
        )
    meta = {
        "command": shlex.join(["python", "benchmarks/bench_leaderboard.py", *argv]),
        "date": start.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - t0,
        "machine": machine(),
        "threads": args.threads,
        "datasets": datasets,
        "models": names + list(extra_generators or {}),
        "seeds": list(args.seeds),
        "n_steps": args.n_steps,
        "pca": "Gavish-Donoho cap" if noise_cap else "fixed min(50, n_train - 1, n_genes)",
        "data_dir": str(args.data_dir),
        "full_run": full,
    }
    doc = write_results(out, results, infos, meta)
    partial.unlink(missing_ok=True)
    for c in doc["counts"]:
        print(f"{c['row']}: meets the bar on {c['met']} of {c['datasets']} datasets")
    for dataset, line in doc["verdicts"].items():
        print(f"{dataset}: {line}")
    print(f"Wrote {output(out, 'json')} and {output(out, 'md')}")
    return doc


if __name__ == "__main__":
    main()
