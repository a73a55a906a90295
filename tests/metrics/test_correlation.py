"""Gene-gene structure metrics: hand-computed values, ideal values, invariances, real data."""

from __future__ import annotations

import itertools
import logging
from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import scgensynth as sgs
from scgensynth.metrics import (
    correlation_score,
    gene_cluster_agreement,
    mean_correlation,
    s_dend,
    s_dist,
    s_tf_tg,
    s_tg_tg,
)

# -- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network(split):
    """10 'TFs' (the most variable training genes), each with its 5 most correlated genes.

    Built from the training split only.
    """
    train = split[0]
    X = train.X.astype(np.float64)
    genes = train.var_names[X.std(axis=0) > 0]
    corr = np.corrcoef(X[:, X.std(axis=0) > 0].T)
    tfs = np.argsort(-X[:, X.std(axis=0) > 0].var(axis=0))[:10]
    rows = []
    for tf in tfs:
        c = corr[tf].copy()
        c[tf] = -np.inf
        rows += [(genes[tf], genes[t]) for t in np.argsort(-c)[:5]]
    return pd.DataFrame(rows, columns=["tf", "target"])


def _net(fn):
    """A network metric with the GTEx network bound, to share the generic tests."""

    def bound(real, synth, **kwargs):
        return fn(real, synth, bound.network, **kwargs)

    bound.__name__ = fn.__name__
    return bound


SCALAR = [correlation_score, s_dist, s_dend, mean_correlation, _net(s_tf_tg), _net(s_tg_tg)]


def _value(fn, real, synth, **kwargs):
    if fn is gene_cluster_agreement:
        return fn(real, synth, **kwargs)["agreement"]
    return fn(real, synth, **kwargs)


@pytest.fixture(autouse=True)
def _bind_network(network):
    for fn in SCALAR:
        fn.network = network


ALL = [*SCALAR, gene_cluster_agreement]
IDS = [f.__name__ for f in ALL]


# -- hand-computed small cases -----------------------------------------------------------------
def _pairwise_corr(X):
    """Upper-triangle gene-gene correlations, one scipy.stats.pearsonr call per pair."""
    p = X.shape[1]
    return np.array(
        [stats.pearsonr(X[:, i], X[:, j])[0] for i in range(p) for j in range(i + 1, p)]
    )


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(8, 5))
    real[:, 1] += real[:, 0]
    synth = rng.normal(size=(7, 5))
    synth[:, 2] -= synth[:, 3]
    return real, synth


def test_correlation_score_by_hand(small):
    real, synth = small
    expected = stats.pearsonr(_pairwise_corr(real), _pairwise_corr(synth))[0]
    assert correlation_score(real, synth) == pytest.approx(expected, abs=1e-12)
    # S_dist: same value through the dissimilarities 1 - r (the paper's route)
    expected_dist = stats.pearsonr(1 - _pairwise_corr(real), 1 - _pairwise_corr(synth))[0]
    assert s_dist(real, synth) == pytest.approx(expected_dist, abs=1e-12)


def _complete_linkage_heights(D):
    """Cophenetic distances of complete linkage, by brute force: merge, record, repeat."""
    n = D.shape[0]
    clusters = [[i] for i in range(n)]
    heights = np.zeros((n, n))
    while len(clusters) > 1:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            d = max(D[i, j] for i in clusters[a] for j in clusters[b])
            if best is None or d < best[0]:
                best = (d, a, b)
        d, a, b = best
        for i in clusters[a]:
            for j in clusters[b]:
                heights[i, j] = heights[j, i] = d
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    return heights[np.triu_indices(n, 1)]


def test_s_dend_by_hand(small):
    real, synth = small
    trees = []
    for X in (real, synth):
        p = X.shape[1]
        D = np.array(
            [[1 - stats.pearsonr(X[:, i], X[:, j])[0] for j in range(p)] for i in range(p)]
        )
        trees.append(_complete_linkage_heights(D))
    expected = stats.pearsonr(trees[0], trees[1])[0]
    assert s_dend(real, synth) == pytest.approx(expected, abs=1e-10)


def test_mean_correlation_by_hand(small):
    real, synth = small
    expected = stats.pearsonr(real.mean(axis=0), synth.mean(axis=0))[0]
    assert mean_correlation(real, synth) == pytest.approx(expected, abs=1e-12)


def _cos(a, b):
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


@pytest.fixture(scope="module")
def regulated():
    """7 genes: TF 0 -> {1, 2, 3}, TF 4 -> {5, 6}; synthetic data flip gene 3's sign."""
    rng = np.random.default_rng(5)

    def sample(n, sign):
        tf0, tf4 = rng.normal(size=(2, n, 1))
        t0 = tf0 * [1.0, 0.5, sign] + rng.normal(size=(n, 3))
        t4 = tf4 * [1.0, -1.0] + rng.normal(size=(n, 2))
        return np.hstack([tf0, t0, tf4, t4])

    network = pd.DataFrame({"tf": [0, 0, 0, 4, 4], "target": [1, 2, 3, 5, 6]})
    return sample(40, 1.0), sample(30, -1.0), network


def test_s_tf_tg_by_hand(regulated):
    real, synth, network = regulated
    total = weights = 0.0
    for tf, targets in ((0, [1, 2, 3]), (4, [5, 6])):
        cr = [stats.pearsonr(real[:, tf], real[:, t])[0] for t in targets]
        cs = [stats.pearsonr(synth[:, tf], synth[:, t])[0] for t in targets]
        total += len(targets) * _cos(cr, cs)
        weights += len(targets)
    assert s_tf_tg(real, synth, network) == pytest.approx(total / weights, abs=1e-12)
    assert s_tf_tg(real, real, network) == pytest.approx(1.0)


def test_s_tg_tg_by_hand(regulated):
    real, synth, network = regulated
    total = weights = 0.0
    for targets in ([1, 2, 3], [5, 6]):
        pairs = list(itertools.combinations(targets, 2))
        cr = [stats.pearsonr(real[:, a], real[:, b])[0] for a, b in pairs]
        cs = [stats.pearsonr(synth[:, a], synth[:, b])[0] for a, b in pairs]
        weight = len(targets) - 1  # the reference code's weight (m - 1 for m targets)
        total += weight * _cos(cr, cs)
        weights += weight
    assert s_tg_tg(real, synth, network) == pytest.approx(total / weights, abs=1e-12)


def test_s_tg_tg_does_not_need_the_tf_in_the_data(regulated):
    real, synth, network = regulated
    # the TFs are labels here: the targets' pairs are the same, so is the score
    named = network.assign(tf=network["tf"].map({0: "TF_A", 4: "TF_B"}))
    assert s_tg_tg(real, synth, named) == pytest.approx(s_tg_tg(real, synth, network))


def _ari_by_hand(a, b):
    table = pd.crosstab(a, b).to_numpy()
    index = sum(comb(int(x), 2) for x in table.ravel())
    rows = sum(comb(int(x), 2) for x in table.sum(1))
    cols = sum(comb(int(x), 2) for x in table.sum(0))
    expected = rows * cols / comb(len(a), 2)
    return (index - expected) / ((rows + cols) / 2 - expected)


def test_gene_cluster_agreement_by_hand():
    """Real: genes {0, 1, 2} and {3, 4} co-vary; synthetic: {0, 1} and {2, 3, 4}."""
    rng = np.random.default_rng(7)

    def sample(groups, n=60):
        programs = rng.normal(size=(n, 2))
        return programs[:, groups] + 0.05 * rng.normal(size=(n, 5))

    real_groups, synth_groups = [0, 0, 0, 1, 1], [0, 0, 1, 1, 1]
    result = gene_cluster_agreement(sample(real_groups), sample(synth_groups), k=2)
    # best matching: {0,1,2}<->{0,1} shares 2 genes, {3,4}<->{2,3,4} shares 2 -> 4 of 5
    best = max(
        sum(a == perm[b] for a, b in zip(real_groups, synth_groups))
        for perm in itertools.permutations(range(2))
    )
    assert result["agreement"] == pytest.approx(best / 5) == pytest.approx(0.8)
    assert result["adjusted_rand"] == pytest.approx(_ari_by_hand(real_groups, synth_groups))


# -- ideal values, invariances -----------------------------------------------------------------
@pytest.mark.parametrize("fn", ALL, ids=IDS)
def test_identical_sets_score_one(fn, split):
    train = split[0]
    assert _value(fn, train, train) == pytest.approx(1.0, abs=1e-9)
    if fn is gene_cluster_agreement:
        assert fn(train, train)["adjusted_rand"] == pytest.approx(1.0)


@pytest.mark.parametrize("fn", ALL, ids=IDS)
def test_invariant_to_sample_order(fn, split):
    train, test = split
    rng = np.random.default_rng(11)
    permuted_train = train[rng.permutation(train.n_obs)].copy()
    permuted_test = test[rng.permutation(test.n_obs)].copy()
    assert _value(fn, permuted_train, permuted_test) == pytest.approx(
        _value(fn, train, test), abs=1e-9
    )


# -- real data: held-out real samples keep the structure a per-gene shuffle destroys ---------
@pytest.mark.parametrize(
    ("fn", "good", "bad"),
    [
        (correlation_score, 0.9, 0.1),
        (s_dist, 0.9, 0.1),
        (s_dend, 0.5, 0.15),
        (_net(s_tf_tg), 0.9, 0.3),
        (_net(s_tg_tg), 0.9, 0.3),
        (gene_cluster_agreement, 0.6, 0.3),
    ],
    ids=["correlation_score", "s_dist", "s_dend", "s_tf_tg", "s_tg_tg", "clusters"],
)
def test_held_out_real_beats_shuffled(fn, good, bad, split, shuffled, network):
    fn.network = network
    train, test = split
    assert _value(fn, train, test) > good
    assert _value(fn, train, shuffled) < bad


def test_gene_cluster_agreement_on_gtex(split, shuffled):
    train, test = split
    held_out = gene_cluster_agreement(train, test)
    broken = gene_cluster_agreement(train, shuffled)
    assert held_out["adjusted_rand"] > 0.5
    assert abs(broken["adjusted_rand"]) < 0.05
    # deterministic for a fixed seed
    assert gene_cluster_agreement(train, test) == held_out


def test_mean_correlation_sees_means_not_structure(split, shuffled):
    train, test = split
    # a per-gene shuffle keeps every gene's mean: mean_correlation cannot see it
    assert mean_correlation(train, shuffled) == pytest.approx(mean_correlation(train, test))
    assert mean_correlation(train, test) > 0.99
    # genes given each other's values (columns permuted) have the wrong means
    mislabelled = test.copy()
    mislabelled.X = test.X[:, np.random.default_rng(2).permutation(test.n_vars)]
    assert mean_correlation(train, mislabelled) < 0.5


# -- options -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [correlation_score, s_dist, s_dend], ids=lambda f: f.__name__)
def test_max_genes_chosen_from_real_only(fn, split):
    train, test = split
    X = train.X.astype(np.float64)
    top = np.sort(np.argsort(-X.var(axis=0), kind="stable")[:60])
    expected = fn(train[:, top], test[:, top], max_genes=None)
    assert fn(train, test, max_genes=60) == pytest.approx(expected, abs=1e-12)
    # rescaling the synthetic genes changes their variances, not the genes used nor the score
    rescaled = test.copy()
    rescaled.X = test.X * np.random.default_rng(4).uniform(0.01, 100, size=test.n_vars)
    assert fn(train, rescaled, max_genes=60) == pytest.approx(expected, abs=1e-9)


@pytest.fixture
def debug_logs(sgs_logs):
    """Capture the 'scgensynth' records down to DEBUG (the package logs INFO and up)."""
    logger = logging.getLogger("scgensynth")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with sgs_logs() as logs:
            yield logs
    finally:
        logger.setLevel(level)


@pytest.mark.parametrize(
    "fn", [correlation_score, s_dend, gene_cluster_agreement], ids=lambda f: f.__name__
)
def test_zero_variance_genes_are_dropped(fn, split, debug_logs):
    train, test = split
    constant = (np.ptp(train.X, axis=0) == 0) | (np.ptp(test.X, axis=0) == 0)
    assert constant.sum() == 9  # GTEx has 7 constant genes, the test split 2 more
    n_logs = len(debug_logs)
    value = _value(fn, train, test)
    logs = debug_logs[n_logs:]
    assert _value(fn, train[:, ~constant], test[:, ~constant]) == pytest.approx(value)
    assert any(
        f"dropped {constant.sum()} genes with zero variance" in r.getMessage()
        and r.levelno == logging.DEBUG
        for r in logs
    )


def test_s_dend_linkage_option(split):
    train, test = split
    assert s_dend(train, test, method="average") != pytest.approx(s_dend(train, test))
    with pytest.raises(ValueError, match="ward"):
        s_dend(train, test, method="ward")


def test_gene_cluster_agreement_checks_k(small):
    real, synth = small
    with pytest.raises(ValueError, match="k<=5"):
        gene_cluster_agreement(real, synth, k=6)
    with pytest.raises(ValueError, match="k must be"):
        gene_cluster_agreement(real, synth, k=1)


# -- networks: bad or partial input ------------------------------------------------------------
@pytest.mark.parametrize("fn", [s_tf_tg, s_tg_tg])
def test_network_edges_with_unknown_genes_are_dropped(fn, split, network, sgs_logs):
    train, test = split
    extra = pd.DataFrame({"tf": ["NOT_A_GENE", network["tf"][0]], "target": ["X1", "X2"]})
    with sgs_logs() as logs:
        value = fn(train, test, pd.concat([network, extra], ignore_index=True))
    assert value == pytest.approx(fn(train, test, network))
    warnings = [r.getMessage() for r in logs if r.levelno == logging.WARNING]
    assert any("dropped 2 of 52 network edges" in m for m in warnings)


@pytest.mark.parametrize("fn", [s_tf_tg, s_tg_tg])
def test_network_errors(fn, split, network):
    train, test = split
    with pytest.raises(KeyError, match=r"'target'.*columns: \['tf', 'gene'\]"):
        fn(train, test, network.rename(columns={"target": "gene"}))
    renamed = network.rename(columns={"tf": "regulator", "target": "gene"})
    assert fn(train, test, renamed, tf_col="regulator", target_col="gene") == pytest.approx(
        fn(train, test, network)
    )
    with pytest.raises(ValueError, match="fewer than 3"):
        fn(train, test, network.iloc[:1])
    with pytest.raises(ValueError, match="fewer than 3"):
        fn(train, test, pd.DataFrame({"tf": ["a", "b"], "target": ["c", "d"]}))
    with pytest.raises(TypeError, match="integer column indices"):
        fn(train.X, test.X, network)
    with pytest.raises(TypeError, match="DataFrame"):
        fn(train, test, network.to_numpy())


def test_s_tf_tg_drops_self_loops(regulated, sgs_logs):
    real, synth, network = regulated
    looped = pd.concat([network, pd.DataFrame({"tf": [0], "target": [0]})], ignore_index=True)
    with sgs_logs() as logs:
        assert s_tf_tg(real, synth, looped) == pytest.approx(s_tf_tg(real, synth, network))
    assert any("self-regulation" in r.getMessage() for r in logs)


# -- bad input shared by all -------------------------------------------------------------------
@pytest.mark.parametrize("fn", ALL, ids=IDS)
def test_gene_order_is_aligned(fn, split):
    train, test = split
    reordered = test[:, test.var_names[::-1]].copy()
    assert _value(fn, train, reordered) == pytest.approx(_value(fn, train, test), abs=1e-9)


@pytest.mark.parametrize("fn", ALL, ids=IDS)
def test_bad_input(fn, split, snapshot):
    train, test = split
    before_train, before_test = snapshot(train), snapshot(test)
    with pytest.raises(ValueError, match="different genes"):
        _value(fn, train, test[:, 5:].copy())
    with_nan = test.copy()
    with_nan.X[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _value(fn, train, with_nan)
    _value(fn, train, test)
    before_train.assert_unchanged(train)
    before_test.assert_unchanged(test)


# -- the matrices themselves -------------------------------------------------------------------
def test_correlation_matrices_by_hand(split, snapshot):
    train, test = split
    snaps = snapshot(train), snapshot(test)
    variance = np.asarray(train.X, dtype=np.float64).var(axis=0)
    top = list(train.var_names[np.argsort(-variance, kind="stable")[:12]])
    out = sgs.metrics.correlation_matrices(train, test, max_genes=12)
    assert list(out["real"].index) == list(out["real"].columns) == top  # most variable first
    for key, data in (("real", train), ("synthetic", test)):
        expected = np.corrcoef(np.asarray(data[:, top].X, dtype=np.float64), rowvar=False)
        np.testing.assert_allclose(out[key].to_numpy(), expected, atol=1e-12)
    assert out["score"] == pytest.approx(
        correlation_score(train[:, top], test[:, top], max_genes=None), abs=1e-12
    )
    # synth needs only the genes used, in any order; arrays give column positions
    shuffled = test[:, test.var_names[::-1][:-5]].copy()
    again = sgs.metrics.correlation_matrices(train, shuffled, top)
    pd.testing.assert_frame_equal(again["synthetic"], out["synthetic"])
    arrays = sgs.metrics.correlation_matrices(
        np.asarray(train.X), np.asarray(test.X), max_genes=12
    )
    assert list(arrays["real"].index) == list(np.argsort(-variance, kind="stable")[:12])
    np.testing.assert_allclose(arrays["synthetic"].to_numpy(), out["synthetic"].to_numpy())
    snaps[0].assert_unchanged(train)
    snaps[1].assert_unchanged(test)


def test_correlation_matrices_spearman_and_constant_genes(split, sgs_logs):
    train, test = split
    constant = train.var_names[np.ptp(np.asarray(train.X), axis=0) == 0][0]
    genes = [train.var_names[3], constant, *train.var_names[[10, 5, 7]]]
    with sgs_logs() as logs:
        out = sgs.metrics.correlation_matrices(train, test, genes, method="spearman")
    kept = [g for g in genes if g != constant]
    assert list(out["synthetic"].index) == kept
    rho = stats.spearmanr(np.asarray(test[:, kept].X)).statistic
    np.testing.assert_allclose(out["synthetic"].to_numpy(), rho, atol=1e-12)
    assert any("left out 1 genes with zero variance" in r.getMessage() for r in logs)
    with pytest.raises(ValueError, match="method must be one of"):
        sgs.metrics.correlation_matrices(train, test, method="kendall")
    with pytest.raises(ValueError, match=r"not in real\.var_names"):
        sgs.metrics.correlation_matrices(train, test, ["nope", *kept])
    with pytest.raises(ValueError, match=r"not in synth\.var_names"):
        sgs.metrics.correlation_matrices(train, test[:, test.var_names != kept[0]], kept)
    with pytest.raises(ValueError, match="more than once"):
        sgs.metrics.correlation_matrices(train, test, [*kept, kept[0]])
    with pytest.raises(ValueError, match="at least 3 genes that vary"):
        sgs.metrics.correlation_matrices(train, test, [constant, *kept[:2]])
