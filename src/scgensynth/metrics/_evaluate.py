"""One report of every applicable metric: :func:`evaluate` and :func:`available`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scgensynth._utils._checks import check_count, check_seed
from scgensynth._utils._deprecation import renamed_arguments
from scgensynth._utils._keys import check_new_key
from scgensynth._utils._logging import follow_scverse_verbosity

from . import _classifier, _correlation, _frechet, _neighbors, _pca, _privacy
from ._mlp import check_kind
from ._utils import (
    ArrayOrAnnData,
    canonical_order,
    get_labels,
    get_values,
    is_anndata,
    paired,
)

logger = logging.getLogger(__name__)

#: needs of a metric: what evaluate() must have been given for it to run
LABELS, HOLDOUT, NETWORK = "labels_key", "holdout", "network"


@dataclass(frozen=True)
class _Metric:
    name: str
    description: str
    needs: tuple[str, ...]
    run: Callable[[_Context], list[dict[str, Any]]]
    #: "fast": linear or n log n in samples; "slow": trains classifiers or is quadratic
    cost: str = "fast"


@dataclass
class _Context:
    real: ArrayOrAnnData
    synth: ArrayOrAnnData
    holdout: ArrayOrAnnData | None
    labels_key: str | None
    network: pd.DataFrame | None
    layer: str | None
    k: int
    n_components: int
    rem_components: int | float
    device: Any
    seed: int
    classifier: str


def _row(metric, value, higher_is_better=None, optimum=np.nan, group="all", params=""):
    return {
        "metric": metric,
        "value": float(value),
        "higher_is_better": higher_is_better,
        "optimum": optimum,
        "group": group,
        "params": params,
    }


# -- runners ------------------------------------------------------------------------------------
def _precision_recall(c: _Context):
    pr = _neighbors.precision_recall(c.real, c.synth, k=c.k, layer=c.layer, device=c.device)
    rows = [_row(m, pr[m], True, 1.0, params=f"k={c.k}") for m in ("precision", "recall", "f1")]
    if c.labels_key is not None:
        by = _neighbors.precision_recall(
            c.real, c.synth, k=c.k, labels_key=c.labels_key, layer=c.layer, device=c.device
        )
        for g, rec in by.iterrows():
            if rec["n_real"] == 0:
                continue
            params = f"k={min(rec['k_real'], rec['k_synthetic'])}, groupby={c.labels_key}"
            rows.append(_row("recall", rec["recall"], True, 1.0, group=str(g), params=params))
        params = f"groupby={c.labels_key}"
        rows += [
            _row("zero_recall_share", by.attrs["zero_recall_share"], False, 0.0, params=params),
            _row(
                "zero_recall_sample_share", by.attrs["zero_recall_sample_share"], False, 0.0,
                params=params,
            ),
        ]  # fmt: skip
    return rows


def _density_coverage(c: _Context):
    k = min(5, c.k)
    dc = _neighbors.density_coverage(c.real, c.synth, k=k, layer=c.layer, device=c.device)
    rows = [
        _row("density", dc["density"], None, 1.0, params=f"k={k}"),
        _row("coverage", dc["coverage"], True, 1.0, params=f"k={k}"),
    ]
    if c.labels_key is not None:
        # per label, coverage is the robust blind-spot measure: only real balls count, so a
        # few scattered synthetic samples (whose own balls are huge) cannot fake it
        by = _neighbors.density_coverage(
            c.real, c.synth, k=k, labels_key=c.labels_key, layer=c.layer, device=c.device
        )
        for g, rec in by.iterrows():
            if rec["n_real"] == 0 or np.isnan(rec["coverage"]):
                continue
            params = f"k={rec['k_real']}, groupby={c.labels_key}"
            rows.append(_row("coverage", rec["coverage"], True, 1.0, group=str(g), params=params))
    return rows


def _adversarial_accuracy(c: _Context):
    aa = _neighbors.adversarial_accuracy(
        c.real, c.synth, layer=c.layer, device=c.device, seed=c.seed
    )
    return [
        _row("adversarial_accuracy", aa["adversarial_accuracy"], None, 0.5),
        _row("adversarial_accuracy_real", aa["real"], None, 0.5),
        _row("adversarial_accuracy_synthetic", aa["synthetic"], None, 0.5),
    ]


def _frechet_pca(c: _Context):
    q = c.n_components
    fd = _frechet.frechet_distance(c.real, c.synth, n_components=q, layer=c.layer, seed=c.seed)
    return [_row("frechet_distance_pca", fd, False, 0.0, params=f"n_components={q}")]


def _frechet_classifier(c: _Context):
    fd = _frechet.frechet_distance(
        c.real, c.synth, embedding="classifier", labels_key=c.labels_key, layer=c.layer,
        seed=c.seed,
    )  # fmt: skip
    return [_row("frechet_distance_classifier", fd, False, 0.0, params=f"label={c.labels_key}")]


def _correlations(c: _Context):
    kw = {"layer": c.layer}
    return [
        _row(
            "correlation_score", _correlation.correlation_score(c.real, c.synth, **kw), True, 1.0
        ),
        _row("s_dend", _correlation.s_dend(c.real, c.synth, **kw), True, 1.0),
        _row("mean_correlation", _correlation.mean_correlation(c.real, c.synth, **kw), True, 1.0),
    ]


def _network(c: _Context):
    kw = {"layer": c.layer}
    return [
        _row("s_tf_tg", _correlation.s_tf_tg(c.real, c.synth, c.network, **kw), True, 1.0),
        _row("s_tg_tg", _correlation.s_tg_tg(c.real, c.synth, c.network, **kw), True, 1.0),
    ]


def _gene_clusters(c: _Context):
    g = _correlation.gene_cluster_agreement(c.real, c.synth, layer=c.layer, seed=c.seed)
    return [
        _row("gene_cluster_agreement", g["agreement"], True, 1.0, params="k=10"),
        _row("gene_cluster_adjusted_rand", g["adjusted_rand"], True, 1.0, params="k=10"),
    ]


def _reconstruction(c: _Context):
    rem = _pca.reconstruction_error(
        c.real, c.synth, n_components=c.rem_components, layer=c.layer, seed=c.seed
    )
    params = f"n_components={rem['n_components']}"
    return [
        _row("rem_median_ratio", rem["median_ratio"], None, 1.0, params=params),
        _row("rem_ks_statistic", rem["ks_statistic"], False, 0.0, params=params),
        _row("rem_collapse", rem["collapse"], False, 0.0, params=params),
    ]


def _rows(data, layer, n, rng) -> np.ndarray:
    """Sorted indices of ``n`` rows drawn independently of the row order."""
    order = canonical_order(get_values(data, layer=layer, dtype=None))
    return np.sort(order[rng.choice(len(order), n, replace=False)])


def _in_memory_view(data):
    """A backed view read into memory (anndata cannot take a view of a backed view)."""
    if is_anndata(data) and data.is_view and data.isbacked:
        return data.to_memory()
    return data


def _pca_variance(c: _Context):
    # the components needed grow with the number of samples: compare equal numbers
    n = min(c.real.shape[0], c.synth.shape[0])
    rng = np.random.default_rng(c.seed)
    real, synth = (
        x if x.shape[0] == n else _in_memory_view(x)[_rows(x, c.layer, n, rng)]
        for x in (c.real, c.synth)
    )
    comps = _pca.pca_variance(real, synth, layer=c.layer)["components"]
    rows = []
    params = f"{n} samples each"
    for t, rec in comps.iterrows():
        pct = round(100 * float(t))
        rows.append(_row(f"pca_components_{pct}", rec["real"], group="real", params=params))
        rows.append(
            _row(f"pca_components_{pct}", rec["synthetic"], group="synthetic", params=params)
        )
        ratio = rec["synthetic"] / rec["real"] if rec["real"] else float("nan")
        rows.append(_row(f"pca_components_{pct}_ratio", ratio, None, 1.0, params=params))
    return rows


def _c2st(c: _Context):
    # an MLP sees differences of gene-gene structure that a linear classifier misses; 0.5 is
    # chance and cross-validated values a little below it are chance too, so lower is better
    auc = _classifier.classifier_two_sample_auc(
        c.real, c.synth, classifier="mlp", n_components=10, layer=c.layer, seed=c.seed
    )
    return [_row("c2st_auc", auc, False, 0.5, params="mlp, PCA 10")]


def _reverse_validation(c: _Context):
    if c.holdout is not None:
        rv = _classifier.reverse_validation(
            c.holdout, c.synth, c.labels_key, reference=c.real, classifier=c.classifier,
            layer=c.layer, seed=c.seed,
        )  # fmt: skip
    else:
        rv = _classifier.reverse_validation(
            c.real, c.synth, c.labels_key, classifier=c.classifier, layer=c.layer, seed=c.seed
        )
    params = f"{c.classifier}, tested on {'holdout' if c.holdout is not None else 'real'}"
    rows = [
        _row("tstr_accuracy", rv["accuracy"], True, 1.0, params=params),
        _row("tstr_macro_f1", rv["macro_f1"], True, 1.0, params=params),
    ]
    if "ratio" in rv:
        rows += [
            # the yardstick (train on real), not a score of the synthetic data
            _row("trtr_accuracy", rv["reference_accuracy"], None, params=params),
            _row("trtr_macro_f1", rv["reference_macro_f1"], None, params=params),
            _row("tstr_trtr_ratio", rv["ratio"], True, 1.0, params=params),
        ]
    return rows


def _label_preservation(c: _Context):
    lp = _classifier.label_preservation(
        c.real, c.synth, c.labels_key, classifier=c.classifier, layer=c.layer, seed=c.seed
    )
    return [
        _row("trts_accuracy", lp["accuracy"], True, 1.0, params=c.classifier),
        _row("trts_macro_f1", lp["macro_f1"], True, 1.0, params=c.classifier),
    ]


def _centroids(c: _Context):
    v = _classifier.nearest_centroid_agreement(c.real, c.synth, c.labels_key, layer=c.layer)
    return [_row("nearest_centroid_agreement", v, True, 1.0)]


def _augmentation(c: _Context):
    n_train = c.real.shape[0]
    n_synth = c.synth.shape[0]
    n_real = tuple(n for n in (50, 100) if n <= n_train) or (n_train,)
    m = tuple(x for x in (0, 100, 500, 1000, 3000) if x <= n_synth)
    token = _classifier.PROGRESS_LEVEL.set(logging.DEBUG)  # evaluate logs one line per call
    try:
        table = _classifier.augmentation_gain(
            c.real, c.holdout, c.synth, c.labels_key, n_real=n_real, n_synth=m,
            layer=c.layer, seed=c.seed,
        )  # fmt: skip
    finally:
        _classifier.PROGRESS_LEVEL.reset(token)
    rows = []
    for rec in table.itertuples():
        if rec.n_synth == 0:
            continue
        group = f"n_real={rec.n_real}, n_synth={rec.n_synth}"
        rows.append(_row("augmentation_gain", rec.delta_mean, True, group=group, params="mlp"))
    return rows


def _dcr(c: _Context):
    d = _neighbors.distance_to_closest_record(
        c.real, c.synth, c.holdout, layer=c.layer, device=c.device
    )
    return [
        _row("dcr_ratio", d["ratio"], None, 1.0),
        _row("dcr_closer_than_holdout", d["closer_than_holdout"], False, 0.0),
        _row("dcr_copies", d["copies"], False, 0.0),
        _row("dcr_nearer_train", d["nearer_train"], None, d["nearer_train_expected"]),
    ]


def _membership(c: _Context):
    sizes = {"train": c.real.shape[0], "synthetic": c.synth.shape[0]}
    sizes["half of the holdout"] = c.holdout.shape[0] // 2
    small = {k: n for k, n in sizes.items() if n < _privacy.MIN_SAMPLES}
    if small:
        logger.warning(
            "evaluate: membership_inference needs %d samples in each of %s; got %s. Its rows "
            "are NaN: pass more held-out or synthetic samples for the attacks.",
            _privacy.MIN_SAMPLES, list(sizes), small,
        )  # fmt: skip
        return [_row("membership_auc", np.nan, None, 0.5, group=a) for a in _privacy.ATTACKS]
    table = _privacy.membership_inference(
        c.real, c.synth, c.holdout, layer=c.layer, device=c.device, seed=c.seed
    )
    return [
        _row("membership_auc", r.auc, None, 0.5, group=r.attack,
             params=f"95% interval [{r.auc_low:.3f}, {r.auc_high:.3f}]")
        for r in table.itertuples()
    ]  # fmt: skip


_METRICS: dict[str, _Metric] = {
    m.name: m
    for m in [
        _Metric("precision_recall", "improved precision, recall, F1 (k-NN balls); per-label "
                "recall and share of labels with recall 0", (), _precision_recall, "slow"),
        _Metric("density_coverage", "density and coverage of real k-NN balls (k=5)", (),
                _density_coverage, "slow"),
        _Metric("adversarial_accuracy", "nearest-neighbour adversarial accuracy and its halves",
                (), _adversarial_accuracy, "slow"),
        _Metric("frechet_distance_pca", "Fréchet distance in real's PCA space", (),
                _frechet_pca),
        _Metric("frechet_distance_classifier", "Fréchet distance in the last hidden layer of "
                "an MLP trained on the real labels", (LABELS,), _frechet_classifier, "slow"),
        _Metric("correlations", "correlation score, S_dend, gene-mean correlation", (),
                _correlations),
        _Metric("network", "S_TF-TG and S_TG-TG over a regulatory network", (NETWORK,),
                _network),
        _Metric("gene_cluster_agreement", "k-means gene clusters kept (k=10), adjusted Rand",
                (), _gene_clusters),
        _Metric("reconstruction_error", "PCA reconstruction error of synthetic vs real "
                "(median ratio, KS statistic, collapse flag)", (), _reconstruction),
        _Metric("pca_variance", "components reaching 90/95/99 % of variance", (),
                _pca_variance),
        _Metric("c2st_auc", "classifier two-sample test ROC AUC (MLP on 10 PCs)", (), _c2st,
                "slow"),
        _Metric("reverse_validation", "train on synthetic, test on real (TSTR), against "
                "train on real (TRTR) with a holdout", (LABELS,), _reverse_validation, "slow"),
        _Metric("label_preservation", "train on real, test on synthetic (TRTS)", (LABELS,),
                _label_preservation, "slow"),
        _Metric("nearest_centroid_agreement", "synthetic samples nearest their own label's "
                "real centroid", (LABELS,), _centroids),
        _Metric("augmentation_gain", "accuracy gained by adding synthetic samples to small "
                "real training sets", (LABELS, HOLDOUT), _augmentation, "slow"),
        _Metric("distance_to_closest_record", "privacy: synthetic vs holdout distances to the "
                "nearest training sample", (HOLDOUT,), _dcr, "slow"),
        _Metric("membership_inference", "privacy: AUC of distance, LOGAN and DOMIAS "
                "membership attacks, training samples vs holdout (0.5 ideal)", (HOLDOUT,),
                _membership, "slow"),
    ]
}  # fmt: skip


def available() -> pd.DataFrame:
    """The metrics :func:`evaluate` knows, what each needs, and its cost.

    Returns
    -------
    DataFrame indexed by metric name with columns ``description``, ``needs`` (the arguments
    of :func:`evaluate` it needs besides ``real`` and ``synth``) and ``cost``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> table = sgs.metrics.available()
    >>> "precision_recall" in table.index, table.loc["augmentation_gain", "needs"]
    (True, 'labels_key, holdout')
    """
    return pd.DataFrame(
        {
            "description": [m.description for m in _METRICS.values()],
            "needs": [", ".join(m.needs) for m in _METRICS.values()],
            "cost": [m.cost for m in _METRICS.values()],
        },
        index=pd.Index(list(_METRICS), name="metric"),
    )


def _select(metrics, given: set[str]) -> list[_Metric]:
    if isinstance(metrics, str) and metrics in ("all", "fast"):
        chosen = [m for m in _METRICS.values() if metrics == "all" or m.cost == "fast"]
        skipped = [m for m in chosen if not set(m.needs) <= given]
        for m in skipped:
            missing = ", ".join(sorted(set(m.needs) - given))
            logger.debug("evaluate: skipping %s (needs %s)", m.name, missing)
        return [m for m in chosen if set(m.needs) <= given]
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [n for n in names if n not in _METRICS]
    if unknown:
        msg = f"Unknown metrics {unknown}; choose from {list(_METRICS)}, 'all' or 'fast'."
        raise ValueError(msg)
    out = []
    for n in names:
        m = _METRICS[n]
        missing = set(m.needs) - given
        if missing:
            msg = f"Metric {n!r} needs {', '.join(sorted(missing))}; pass it to evaluate()."
            raise ValueError(msg)
        out.append(m)
    return out


@renamed_arguments({"label_key": "labels_key"})
def evaluate(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    labels_key: str | None = None,
    holdout: ArrayOrAnnData | None = None,
    metrics: str | Sequence[str] = "all",
    network: pd.DataFrame | None = None,
    layer: str | None = None,
    k: int = 50,
    n_components: int = 50,
    rem_components: int | float = 0.9,
    classifier: str = "mlp",
    device: str | None = None,
    seed: int = 0,
    key_added: str | None = "sgs_metrics",
    overwrite: bool = False,
) -> pd.DataFrame:
    """Run the quality metrics as one tidy report.

    Parameters
    ----------
    real
        The real samples the generator learned from (AnnData or array).
    synth
        The synthetic samples (genes matched to ``real`` by name). May be backed
        (``generate(..., filename=...)`` or ``read_h5ad(..., backed="r")``): it is checked
        and, by the Fréchet distance, the correlation metrics and the reconstruction error,
        read in blocks of rows; the other metrics load it.
    labels_key
        ``.obs`` column of both (e.g. ``"tissue"``) holding the labels, for per-label recall
        and the classifier-based metrics.
    holdout
        Real samples the generator never saw: the test set of reverse validation and of
        the augmentation gain, and the yardstick of the privacy check (DCR).
    metrics
        ``"all"`` (every metric whose needs are met), ``"fast"`` (those that neither train
        classifiers nor compare all sample pairs), or a list of names from :func:`available`
        (an error if one cannot run).
    network
        TF -> target edges (columns ``tf``, ``target``) for S_TF-TG and S_TG-TG.
    layer
        Layer to read instead of ``X``.
    k
        Neighbourhood size of precision/recall, lowered to what the sample counts allow (the
        ``params`` column says which ``k`` was used), per label for per-label recall.
    n_components
        PCA components of the Fréchet distance.
    rem_components
        Components of the reconstruction error: an integer, or a share of real variance.
    classifier
        ``"mlp"`` (the survey's protocol) or ``"logistic"`` (fast) for TSTR and TRTS.
    device
        Torch device of the neighbour searches (default CUDA when available).
    seed
        Seed of every random step.
    key_added
        Where the report is stored in ``synth.uns`` when ``synth`` is an AnnData
        (``None``: not stored).
    overwrite
        Replace an entry already in ``synth.uns[key_added]`` (an earlier report, or
        anything of yours); without it that is refused before any metric runs.

    Returns
    -------
    A DataFrame with one row per value: ``metric``, ``value``, ``higher_is_better`` (a
    nullable boolean: missing where a target value is best), ``optimum`` (the ideal value
    where there is one), ``group`` (``"all"``, a label, or a setting) and ``params``. Also
    stored in ``synth.uns[key_added]`` (writable to ``.h5ad``).

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> real, synth = rng.normal(size=(300, 20)), rng.normal(size=(300, 20))
    >>> report = sgs.metrics.evaluate(real, synth, metrics=["precision_recall", "c2st_auc"])
    >>> report[["metric", "value"]].round(2).to_string(index=False)  # doctest: +SKIP
    """
    follow_scverse_verbosity()
    k = check_count(k, "k")
    n_components = check_count(n_components, "n_components", allow_none=True)
    rem_components = _pca._check_n_components(rem_components)
    seed = check_seed(seed)
    given = _check_inputs(real, synth, holdout, labels_key, network, layer)
    chosen = _select(metrics, given)
    _check_report_key(synth, key_added, overwrite)
    check_kind(classifier)
    k_used = _neighbourhood_size(real, synth, layer, k)
    ctx = _Context(
        real, synth, holdout, labels_key, network, layer, k_used,
        n_components, rem_components, device, seed, classifier,
    )  # fmt: skip
    explicit = not (isinstance(metrics, str) and metrics in ("all", "fast"))
    start = time.perf_counter()
    rows = _run(chosen, ctx, explicit)
    logger.info(
        "evaluate: %d metric(s) on %d real x %d synthetic samples in %.1f s (k=%d, "
        "classifier=%r); per-metric lines at verbosity 'debug'",
        len({row["metric"] for row in rows}), real.shape[0], synth.shape[0],
        time.perf_counter() - start, k_used, classifier,
    )  # fmt: skip
    report = pd.DataFrame(
        rows,
        columns=["metric", "value", "higher_is_better", "optimum", "group", "params"],
    )
    report["higher_is_better"] = pd.array(report["higher_is_better"].tolist(), dtype="boolean")
    if key_added is not None and is_anndata(synth):
        if synth.is_view and synth.isbacked:
            logger.warning(
                "evaluate: synth is a view of a backed AnnData, whose .uns cannot be written; "
                "the report was not stored in synth.uns[%r] (it is returned).",
                key_added,
            )
        else:
            synth.uns[key_added] = report
    return report


def _check_inputs(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    holdout: ArrayOrAnnData | None,
    labels_key: str | None,
    network: pd.DataFrame | None,
    layer: str | None,
) -> set[str]:
    """Every input checked once, up front; the needs of metrics that they meet.

    Genes, finite values and labels are checked (the synthetic and holdout sets in blocks,
    without loading them).
    """
    others = [(synth, "synthetic")] + ([(holdout, "holdout")] if holdout is not None else [])
    for data, name in others:
        for _ in paired(real, data, layer=layer, names=("real", name))[1].blocks():
            pass
    given = set()
    if labels_key is not None:
        for data, name in [(real, "real"), *others]:
            get_labels(data, labels_key, name)
        given.add(LABELS)
    if holdout is not None:
        given.add(HOLDOUT)
    if network is not None:
        given.add(NETWORK)
    return given


def _neighbourhood_size(
    real: ArrayOrAnnData, synth: ArrayOrAnnData, layer: str | None, k: int
) -> int:
    """``k`` lowered to what the sample counts allow (real must not be constant)."""
    real_values = get_values(real, layer=layer, dtype=None)
    n_real, n_synth = real_values.shape[0], synth.shape[0]
    if n_real > 1 and not (real_values != real_values[:1]).any():
        msg = (
            "real: every sample has the same values, so there is no structure to compare "
            "synthetic samples with. Check the data (a constant layer, or a failed import)."
        )
        raise ValueError(msg)
    k_used = int(min(k, n_real - 1, n_synth - 1))
    if k_used < 1:
        msg = "evaluate needs at least 2 real and 2 synthetic samples."
        raise ValueError(msg)
    if k_used < k:
        logger.debug("evaluate: k lowered from %d to %d (sample counts)", k, k_used)
    return k_used


def _run(chosen: list[_Metric], ctx: _Context, explicit: bool) -> list[dict[str, Any]]:
    """The rows of every chosen metric; one that cannot run is skipped unless ``explicit``."""
    rows: list[dict[str, Any]] = []
    for m in chosen:
        t = time.perf_counter()
        try:
            rows += m.run(ctx)
        except ValueError as err:
            if explicit:
                raise
            logger.warning("evaluate: %s could not run: %s", m.name, err)
            continue
        logger.debug("evaluate: %s done in %.1f s", m.name, time.perf_counter() - t)
    return rows


def _check_report_key(synth: ArrayOrAnnData, key_added: str | None, overwrite: bool) -> None:
    if key_added is not None and is_anndata(synth):
        check_new_key(synth.uns, key_added, "synth.uns", overwrite)
