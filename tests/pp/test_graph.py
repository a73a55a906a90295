"""Gene graphs: co-expression against a dense reference, edge lists, degree-preserving shuffles."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from scgensynth.pp import (
    coexpression_graph,
    coexpression_matrix,
    graph_from_edges,
    random_graph,
)

BLADDER = "/work/shared/data/bladderbatch.h5ad"


def dense_reference(X: np.ndarray, top_k: int | None, threshold: float | None):
    """Row i: genes j != i by decreasing |r_ij| (ties: lower j), from np.corrcoef."""
    X = np.asarray(X, dtype=np.float64)
    constant = X.std(axis=0) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.abs(np.corrcoef(X, rowvar=False))
    a[:, constant] = -np.inf
    a[constant] = -np.inf
    np.fill_diagonal(a, -np.inf)
    if threshold is not None:
        a[a < threshold] = -np.inf
    rows, cols, vals = [], [], []
    for i in range(a.shape[0]):
        order = np.lexsort((np.arange(a.shape[1]), -a[i]))
        chosen = [j for j in order if np.isfinite(a[i, j])]
        if top_k is not None:
            chosen = chosen[:top_k]
        chosen = sorted(chosen)
        rows += [i] * len(chosen)
        cols += chosen
        vals += [a[i, j] for j in chosen]
    return sparse.csr_matrix((vals, (rows, cols)), shape=a.shape), constant


def assert_same_graph(got: sparse.csr_matrix, expected: sparse.csr_matrix, atol=1e-6):
    assert got.shape == expected.shape
    assert got.nnz == expected.nnz
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=0, atol=atol)


# -- co-expression ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("top_k", "threshold"), [(10, None), (1, None), (None, 0.7), (8, 0.6)], ids=str
)
def test_coexpression_equals_dense_reference_on_gtex(gtex, top_k, threshold):
    graph = coexpression_graph(gtex, top_k=top_k, threshold=threshold, inplace=False)
    expected, constant = dense_reference(gtex.X, top_k, threshold)
    assert constant.sum() == 7  # GTEx has 7 constant genes: no edges to or from them
    assert_same_graph(graph, expected)
    assert isinstance(graph, sparse.csr_matrix)
    assert graph.dtype == np.float32
    assert graph.diagonal().sum() == 0
    assert graph[:, constant].nnz == 0
    assert graph[constant].nnz == 0
    degree = np.diff(graph.indptr)
    if top_k is not None:
        assert degree.max() == top_k
    if threshold is None:
        assert (degree[~constant] == top_k).all()
    else:
        assert graph.data.min() >= threshold
        assert (degree == 0).sum() > constant.sum()  # some genes have no |r| above it
    if top_k is None:  # threshold-only graphs are symmetric
        assert (graph != graph.T).nnz == 0


def test_ties_go_to_the_lower_gene_index():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 1)), rng.normal(size=(30, 1))
    # genes 1, 2, 4 are exact copies of gene 0 (|r| = 1 exactly, two with the sign flipped)
    X = np.hstack([a, -a, a, b, -a, rng.normal(size=(30, 1))])
    before = X.copy()
    g = coexpression_matrix(X, top_k=2)
    np.testing.assert_array_equal(X, before)  # float64 input is read, never written
    assert g[0].indices.tolist() == [1, 2]
    assert g[4].indices.tolist() == [0, 1]
    assert_same_graph(g, dense_reference(X, 2, None)[0])


def test_block_size_does_not_change_the_graph(gtex):
    graphs = [
        coexpression_graph(gtex, top_k=6, threshold=0.3, block_size=b, inplace=False)
        for b in (1, 37, 467, 10_000)
    ]
    for g in graphs[1:]:
        assert_same_graph(g, graphs[0], atol=1e-7)


def test_sparse_input_layer_and_rows(gtex):
    dense = coexpression_graph(gtex, top_k=5, inplace=False)
    gtex.layers["sparse"] = sparse.csr_matrix(gtex.X)
    assert_same_graph(coexpression_graph(gtex, layer="sparse", top_k=5, inplace=False), dense)
    # the graph is computed on the given samples only
    liver = np.flatnonzero(gtex.obs["tissue"] == "Liver")
    others = np.flatnonzero(gtex.obs["tissue"] != "Liver")
    sub = coexpression_matrix(gtex.X, top_k=5, rows=others)
    assert_same_graph(sub, coexpression_graph(gtex[others].copy(), top_k=5, inplace=False))
    assert (sub != dense).nnz > 0
    assert len(liver) == 20


def test_writes_only_the_documented_keys(gtex, snapshot):
    before = snapshot(gtex)
    varp_before = set(gtex.varp.keys())
    result = coexpression_graph(gtex, top_k=4, threshold=0.2, key_added="coexpr")
    assert result is None
    before.assert_unchanged(gtex, new_uns=("coexpr",))
    assert set(gtex.varp.keys()) == varp_before | {"coexpr"}
    graph = gtex.varp["coexpr"]
    assert isinstance(graph, sparse.csr_matrix)
    assert graph.dtype == np.float32
    assert gtex.uns["coexpr"]["params"] == {
        "method": "pearson",
        "n_edges": graph.nnz,
        "top_k": 4,
        "threshold": 0.2,
    }
    assert_same_graph(graph, dense_reference(gtex.X, 4, 0.2)[0])


def test_an_existing_graph_and_uns_entry_are_kept(gtex):
    gtex.varp["coexpr"] = sparse.identity(gtex.n_vars, format="csr")
    gtex.uns["coexpr"] = {"notes": "mine"}
    with pytest.raises(ValueError, match=r"adata.varp\['coexpr'\] already exists.*overwrite"):
        coexpression_graph(gtex, top_k=3, key_added="coexpr")
    assert gtex.varp["coexpr"].nnz == gtex.n_vars
    coexpression_graph(gtex, top_k=3, key_added="coexpr", overwrite=True)
    graph = gtex.varp["coexpr"]
    assert graph.diagonal().sum() == 0  # the new graph, not the identity it replaced
    assert gtex.uns["coexpr"]["params"]["n_edges"] == graph.nnz
    assert gtex.uns["coexpr"]["notes"] == "mine"  # the user's entries stay beside params
    assert gtex.uns["coexpr"]["params"]["top_k"] == 3
    gtex.uns["other"] = "a string"
    with pytest.raises(ValueError, match=r"adata.uns\['other'\] holds a str"):
        coexpression_graph(gtex, top_k=3, key_added="other")
    assert "other" not in gtex.varp


def test_inplace_false_and_copy_leave_adata_alone(gtex, snapshot):
    before = snapshot(gtex)
    graph = coexpression_graph(gtex, top_k=3, inplace=False)
    before.assert_unchanged(gtex)
    assert len(gtex.varp) == 0
    copied = coexpression_graph(gtex, top_k=3, copy=True)
    before.assert_unchanged(gtex)
    assert len(gtex.varp) == 0
    assert copied is not gtex
    assert_same_graph(copied.varp["sgs_coexpression"], graph)
    assert copied.uns["sgs_coexpression"]["params"]["top_k"] == 3


def test_h5ad_round_trip(gtex, tmp_path):
    import anndata as ad

    coexpression_graph(gtex, top_k=3, layer=None)
    gtex.write_h5ad(tmp_path / "g.h5ad")
    back = ad.read_h5ad(tmp_path / "g.h5ad")
    assert_same_graph(back.varp["sgs_coexpression"], gtex.varp["sgs_coexpression"], atol=0)


def test_coexpression_logs_edge_count(gtex, sgs_logs):
    with sgs_logs() as logs:
        coexpression_graph(gtex, top_k=5, inplace=False)
    assert any("2300 edges" in r.getMessage() for r in logs)


def test_bladderbatch_22k_genes_without_a_dense_matrix():
    """57 x 22,283: top_k=5 gives > 100,000 edges with RSS growth far below the 1.85 GiB of
    one dense 22,283 x 22,283 float32 matrix (measured in a fresh process)."""
    code = textwrap.dedent(
        f"""
        import json, anndata as ad, numpy as np
        from scgensynth.pp import coexpression_graph

        def status(key):
            with open("/proc/self/status") as fh:
                return next(int(l.split()[1]) for l in fh if l.startswith(key)) * 1024

        adata = ad.read_h5ad({BLADDER!r})
        before = status("VmRSS")
        # the high-water mark of this process's memory (ru_maxrss would also count the
        # parent's resident set at fork time, which Linux carries across exec)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        g = coexpression_graph(adata, top_k=5, inplace=False)
        peak = status("VmHWM")
        deg = np.diff(g.indptr)
        print(json.dumps({{"growth": peak - before, "nnz": int(g.nnz), "shape": g.shape,
                          "min_deg": int(deg.min()), "max_deg": int(deg.max()),
                          "self": int(g.diagonal().sum() > 0), "max": float(g.data.max()),
                          "min": float(g.data.min())}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["shape"] == [22283, 22283]
    assert r["nnz"] >= 100_000
    assert r["min_deg"] == r["max_deg"] == 5
    assert r["self"] == 0
    assert 0 < r["min"] <= r["max"] <= 1
    assert r["growth"] < 0.6 * 2**30, r


def test_coexpression_bad_input(gtex):
    with pytest.raises(ValueError, match=r"top_k .* threshold"):
        coexpression_graph(gtex, top_k=None, threshold=None)
    with pytest.raises(ValueError, match="positive integer"):
        coexpression_graph(gtex, top_k=0)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        coexpression_graph(gtex, threshold=1.5)
    with pytest.raises(ValueError, match="at least 3 samples"):
        coexpression_graph(gtex[:2].copy(), top_k=3)
    with pytest.raises(KeyError, match="Layer 'nope'"):
        coexpression_graph(gtex, layer="nope")
    with pytest.raises(ValueError, match="Pass only one"):
        coexpression_graph(gtex, copy=True, inplace=False)
    bad = gtex.copy()
    bad.X[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        coexpression_graph(bad)
    assert len(gtex.varp) == 0


# -- user edge lists --------------------------------------------------------------------------
def test_graph_from_edges_drops_unknown_genes_and_merges(gtex, sgs_logs, caplog):
    names = gtex.var_names
    edges = pd.DataFrame(
        {
            "a": [names[0], names[0], names[1], names[2], "ENSG_unknown", names[3], names[4]],
            "b": [names[1], names[1], names[0], names[2], names[5], "TP53_absent", names[5]],
            "score": [0.4, 0.9, 0.5, 1.0, 1.0, 1.0, 0.7],
        }
    )
    with sgs_logs() as logs:
        g = graph_from_edges(gtex, edges, source_col="a", target_col="b", weight_col="score")
    warnings = [r.getMessage() for r in logs if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of" in warnings[0]
    assert "'ENSG_unknown'" in warnings[0]
    assert "dropped the 2 of 7 edges" in warnings[0]
    assert g.shape == (467, 467)
    assert g.dtype == np.float32
    # undirected: 0-1 (merged, max weight 0.9) and 4-5; the self-edge 2-2 is gone
    assert sorted(zip(*g.nonzero(), strict=True)) == [(0, 1), (1, 0), (4, 5), (5, 4)]
    assert g[0, 1] == pytest.approx(0.9)
    assert g[1, 0] == pytest.approx(0.9)
    assert g[5, 4] == pytest.approx(0.7)

    directed = graph_from_edges(names, edges, source_col="a", target_col="b", symmetric=False)
    # source -> target: the target's row lists the source; unweighted edges get 1
    assert sorted(zip(*directed.nonzero(), strict=True)) == [(0, 1), (1, 0), (5, 4)]
    assert set(directed.data) == {1.0}


def test_graph_from_edges_gene_symbols_map_to_all_probes():
    import anndata as ad

    adata = ad.AnnData(
        np.zeros((2, 4), dtype=np.float32),
        var=pd.DataFrame({"symbol": ["TP53", "MDM2", "TP53", "EGFR"]}, index=list("pqrs")),
    )
    edges = pd.DataFrame({"source": ["TP53"], "target": ["MDM2"]})
    g = graph_from_edges(adata, edges, gene_symbols="symbol", symmetric=False)
    assert sorted(zip(*g.nonzero(), strict=True)) == [(1, 0), (1, 2)]  # MDM2 sees both probes
    with pytest.raises(ValueError, match="No edge"):
        graph_from_edges(adata, edges)  # var_names are probe ids, not symbols


def test_graph_from_edges_bad_input(gtex):
    edges = pd.DataFrame({"source": ["x", "y"], "target": ["y", "z"]})
    with pytest.raises(ValueError, match="No edge of the 2 given"):
        graph_from_edges(gtex, edges)
    with pytest.raises(KeyError, match="from"):
        graph_from_edges(gtex, edges, source_col="from")
    with pytest.raises(KeyError, match="gene_symbols='sym'"):
        graph_from_edges(gtex, edges, gene_symbols="sym")
    with pytest.raises(TypeError, match="DataFrame"):
        graph_from_edges(gtex, [("a", "b")])
    self_only = pd.DataFrame({"source": [gtex.var_names[0]], "target": [gtex.var_names[0]]})
    with pytest.raises(ValueError, match="No edge"):
        graph_from_edges(gtex, self_only)


# -- random lesion ----------------------------------------------------------------------------
def _check_random(original: sparse.csr_matrix, shuffled: sparse.csr_matrix, *, columns=True):
    assert isinstance(shuffled, sparse.csr_matrix)
    assert shuffled.shape == original.shape
    assert shuffled.nnz == original.nnz
    np.testing.assert_array_equal(np.diff(shuffled.indptr), np.diff(original.indptr))
    if columns:
        np.testing.assert_array_equal(
            np.bincount(shuffled.indices, minlength=original.shape[1]),
            np.bincount(original.indices, minlength=original.shape[1]),
        )
    assert shuffled.diagonal().sum() == 0
    assert (shuffled.indices != _rows(shuffled)).all()
    keys = _rows(shuffled).astype(np.int64) * shuffled.shape[1] + shuffled.indices
    assert len(np.unique(keys)) == shuffled.nnz  # no duplicate edges
    for i in range(0, original.shape[0], 7):  # each row keeps its weights
        a, b = original.indptr[i : i + 2], shuffled.indptr[i : i + 2]
        np.testing.assert_array_equal(
            np.sort(original.data[a[0] : a[1]]), np.sort(shuffled.data[b[0] : b[1]])
        )


def _rows(g: sparse.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(g.shape[0]), np.diff(g.indptr))


def test_random_graph_keeps_degrees_on_a_coexpression_graph(gtex):
    graph = coexpression_graph(gtex, top_k=10, inplace=False)
    before = graph.copy()
    shuffled = random_graph(graph, seed=0)
    assert (graph != before).nnz == 0  # the input is left alone
    _check_random(graph, shuffled)
    shared = graph.multiply(shuffled).nnz
    assert shared < 0.05 * graph.nnz  # a different graph
    assert (random_graph(graph, seed=0) != shuffled).nnz == 0  # reproducible
    other = random_graph(graph, seed=1)
    _check_random(graph, other)
    assert other.multiply(shuffled).nnz < 0.05 * graph.nnz  # seeds give unrelated graphs


def test_random_graph_symmetric_ppi_like_graph_with_hubs():
    rng = np.random.default_rng(3)
    n = 300
    hubs = rng.integers(0, 10, 1500)  # a few genes are neighbours of many
    others = rng.integers(0, n, 1500)
    g = sparse.csr_matrix((np.ones(3000), (np.r_[hubs, others], np.r_[others, hubs])), (n, n))
    g.setdiag(0)
    g.eliminate_zeros()
    g.data[:] = 1.0
    _check_random(g, random_graph(g, seed=5))


def test_random_graph_of_a_complete_graph_is_itself(sgs_logs):
    n = 6
    complete = sparse.csr_matrix(np.ones((n, n)) - np.eye(n))
    with sgs_logs() as logs:
        shuffled = random_graph(complete, seed=0)
    _check_random(complete, shuffled, columns=False)
    assert (shuffled != complete).nnz == 0  # the only graph with these degrees
    assert any("Random graph" in r.getMessage() for r in logs)


def test_random_graph_bad_input():
    with pytest.raises(ValueError, match="square scipy sparse"):
        random_graph(np.eye(3))
    with pytest.raises(ValueError, match="square scipy sparse"):
        random_graph(sparse.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="at most n_genes - 1"):
        random_graph(sparse.csr_matrix(np.ones((4, 4))))
