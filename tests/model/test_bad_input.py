"""Bad input fails early with a message naming the problem and its fix; the AnnData is left alone.

Training that would fail is given no steps to waste: every error below is raised before
training starts (or by a model trained once per session).
"""

from __future__ import annotations

import logging
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import scgensynth as sgs

# Arguments of a training that never starts because the input is refused.
NEVER = {"n_steps": 10, "n_hidden": (8,), "enable_progress_bar": False, "selection": None}


def _train(adata, **kwargs):
    return sgs.tl.train_wgan(adata, **{**NEVER, **kwargs})


# -- covariates -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["categorical", "continuous"])
def test_missing_obs_key(gtex, snapshot, kind):
    snap = snapshot(gtex)
    with pytest.raises(KeyError, match=r"\['tisue'\] are not in adata\.obs") as err:
        _train(gtex, **{f"{kind}_covariate_keys": ["tisue"]})
    message = str(err.value)
    assert "Available columns: ['tissue']" in message  # shows what exists...
    assert "fix the key names" in message  # ...and the fix
    snap.assert_unchanged(gtex)


def test_non_numeric_continuous_covariate(gtex, snapshot):
    gtex.obs["batch"] = np.where(np.arange(gtex.n_obs) % 2, "plate_a", "plate_b")
    snap = snapshot(gtex)
    with pytest.raises(TypeError, match=r"Continuous covariate 'batch' is not numeric") as err:
        _train(gtex, continuous_covariate_keys=["batch"])
    message = str(err.value)
    assert "pd.to_numeric" in message
    assert "categorical_covariate_keys" in message  # or treat it as a label
    snap.assert_unchanged(gtex)


def test_categorical_column_as_continuous_covariate(tcga_acc, snapshot):
    snap = snapshot(tcga_acc)
    with pytest.raises(TypeError, match=r"'gender' is not numeric.*categorical_covariate_keys"):
        _train(tcga_acc, continuous_covariate_keys=["gender"], batch_size=16)
    snap.assert_unchanged(tcga_acc)


def test_missing_values_in_continuous_covariate(tcga_acc, snapshot):
    n_missing = int(tcga_acc.obs["days_to_death"].isna().sum())
    assert n_missing > 0  # the bundled clinical data has them
    snap = snapshot(tcga_acc)
    with pytest.raises(ValueError, match=rf"'days_to_death' has {n_missing} missing") as err:
        _train(tcga_acc, continuous_covariate_keys=["days_to_death"], batch_size=16)
    assert "Impute" in str(err.value)
    snap.assert_unchanged(tcga_acc)


@pytest.fixture
def gtex_nan_tissue(gtex):
    """GTEx with two samples of unknown tissue (NaN in a categorical column)."""
    tissue = gtex.obs["tissue"].astype(object)
    tissue.iloc[[3, 100]] = np.nan
    gtex.obs["tissue"] = tissue.astype("category")
    return gtex


def test_nan_in_categorical_covariate(gtex_nan_tissue, snapshot):
    adata = gtex_nan_tissue
    snap = snapshot(adata)
    with pytest.raises(ValueError, match=r"'tissue' has 2 missing value\(s\)") as err:
        _train(adata, categorical_covariate_keys=["tissue"])
    message = str(err.value)
    assert "notna()" in message  # drop the samples...
    assert "fillna" in message  # ...or make 'missing' a category
    snap.assert_unchanged(adata)


def _snippets(message: str) -> list[str]:
    return re.findall(r"`([^`]+)`", message)


def test_nan_in_categorical_covariate_suggested_fixes_work(gtex_nan_tissue):
    """The code in the message works when pasted as is (only ``adata`` defined)."""
    adata = gtex_nan_tissue
    with pytest.raises(ValueError, match="missing value") as err:
        _train(adata, categorical_covariate_keys=["tissue"])
    snippets = _snippets(str(err.value))

    drop = [s for s in snippets if "notna" in s]
    assert drop, snippets
    namespace = {"adata": adata.copy(), "np": np, "pd": pd}
    exec(drop[0], namespace)
    dropped = namespace["adata"]
    assert dropped.n_obs == adata.n_obs - 2
    assert dropped.obs["tissue"].notna().all()

    fill = [s for s in snippets if "fillna" in s]
    assert fill, snippets
    namespace = {"adata": adata.copy(), "np": np, "pd": pd}
    try:
        exec(fill[0], namespace)
    except NameError as name_error:
        pytest.fail(f"the suggested fix {fill[0]!r} cannot be run as given: {name_error}")
    filled = namespace["adata"].obs["tissue"]
    assert filled.notna().all()
    # the missing entries become the 'unknown' category the message promises (not 'nan')
    assert (filled.astype(str).iloc[[3, 100]] == "unknown").all()


# -- expression values ------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_non_finite_expression(gtex, snapshot, value, layout):
    gtex.X[5, 7] = value
    if layout == "sparse":
        gtex.X = sparse.csr_matrix(gtex.X)
    snap = snapshot(gtex)
    what = r"1 NaN and 0 infinite" if np.isnan(value) else r"0 NaN and 1 infinite"
    with pytest.raises(ValueError, match=what) as err:
        _train(gtex, categorical_covariate_keys=["tissue"])
    message = str(err.value)
    assert "impute or drop them" in message
    assert "np.nan_to_num" in message
    snap.assert_unchanged(gtex)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_non_finite_expression_suggested_fixes_work(gtex, layout):
    """Each fix in the message, pasted as is, leaves only finite values."""
    gtex.X[5, 7] = np.nan
    gtex.X[9, 2] = np.inf
    if layout == "sparse":
        gtex.X = sparse.csr_matrix(gtex.X)
    with pytest.raises(ValueError, match="NaN") as err:
        _train(gtex, categorical_covariate_keys=["tissue"])
    snippets = [s for s in _snippets(str(err.value)) if "adata" in s]
    assert len(snippets) >= 2, snippets  # drop the genes, or set the values to 0
    for snippet in snippets:
        namespace = {"adata": gtex.copy(), "np": np, "pd": pd}
        try:
            exec(snippet, namespace)
        except Exception as error:  # report any failure of the fix
            pytest.fail(f"{layout} X: the suggested fix {snippet!r} fails: {error!r}")
        fixed = namespace["adata"].X
        fixed = fixed.toarray() if sparse.issparse(fixed) else np.asarray(fixed)
        assert np.isfinite(fixed).all(), f"{layout} X: {snippet!r} leaves non-finite values"
        assert fixed.shape[0] == gtex.n_obs


def test_zero_variance_genes_warn_and_are_generated_constant(gtex_model):
    """GTEx has 7 genes that are 0 in every sample: a warning names them, no error."""
    adata, model = gtex_model.adata, gtex_model.model
    X = np.asarray(adata.X)
    constant = np.flatnonzero(X.std(0) == 0)
    assert len(constant) == 7
    names = adata.var_names[constant].tolist()

    warnings = [
        r.getMessage()
        for r in gtex_model.logs
        if r.levelno == logging.WARNING and "zero variance" in r.getMessage()
    ]
    assert len(warnings) == 1, [r.getMessage() for r in gtex_model.logs]
    message = warnings[0]
    assert message.startswith("7 gene(s) have zero variance")
    assert any(name in message for name in names)
    mentioned = set(re.findall(r"entrez_\d+", message))
    assert mentioned <= set(names), "only constant genes are named"
    assert "filter_genes" in message  # how to drop them
    assert sorted(model.scaling_["constant_genes"]) == sorted(names)

    synth = sgs.tl.generate(model, n_obs=300, seed=1)
    expected = np.broadcast_to(X[0, constant], (synth.n_obs, len(constant)))
    np.testing.assert_array_equal(synth.X[:, constant], expected)
    varying = np.setdiff1d(np.arange(adata.n_vars), constant)
    assert (synth.X[:, varying].std(0) > 0).mean() > 0.9  # the others are not frozen
    gtex_model.before.assert_unchanged(adata, new_uns=("wgan",))


# -- shape of the data ------------------------------------------------------------------------
def test_fewer_samples_than_a_batch(gtex, snapshot):
    small = gtex[:20].copy()
    snap = snapshot(small)
    with pytest.raises(ValueError, match=r"Only 18 training samples .* mini-batch of 32") as err:
        _train(small, categorical_covariate_keys=["tissue"], batch_size=32)
    message = str(err.value)
    assert "smaller batch_size" in message
    assert "train_size=1.0" in message
    snap.assert_unchanged(small)


@pytest.mark.parametrize(
    ("rows", "cols", "shape"), [(0, None, "0 samples x 467 genes"), (None, 0, "520 samples x 0")]
)
def test_empty_anndata(gtex, snapshot, rows, cols, shape):
    empty = gtex[slice(rows), slice(cols)].copy()
    snap = snapshot(empty)
    with pytest.raises(ValueError, match=rf"The AnnData is empty \({shape}"):
        _train(empty)
    snap.assert_unchanged(empty)


def test_duplicated_gene_names(gtex, snapshot):
    names = gtex.var_names.tolist()
    names[10] = names[3]
    gtex.var_names = names
    snap = snapshot(gtex)
    with pytest.raises(ValueError, match=r"Gene names are not unique") as err:
        _train(gtex, categorical_covariate_keys=["tissue"])
    message = str(err.value)
    assert names[3] in message
    assert "var_names_make_unique()" in message
    snap.assert_unchanged(gtex)


def test_missing_layer(gtex, snapshot):
    gtex.layers["logrpkm"] = gtex.X.copy()
    snap = snapshot(gtex)
    with pytest.raises(KeyError, match=r"Layer 'counts' is not in adata\.layers") as err:
        _train(gtex, layer="counts", categorical_covariate_keys=["tissue"])
    message = str(err.value)
    assert "['logrpkm']" in message  # what is available
    assert "layer=None" in message  # the fix
    snap.assert_unchanged(gtex)


# -- generation -------------------------------------------------------------------------------
def test_generate_covariates_missing_column(gtex_model):
    frame = pd.DataFrame({"tisue": ["Liver"] * 3})
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['tissue'\]") as err:
        sgs.tl.generate(gtex_model.model, covariates=frame)
    assert "Give a value for each" in str(err.value)
    with pytest.raises(KeyError, match=r"\['tissue'\]"):
        sgs.tl.generate(gtex_model.model, n_obs=3, covariates={"tisue": "Liver"})


def test_generate_unseen_category_lists_known_ones(gtex_model):
    known = gtex_model.adata.obs["tissue"].cat.categories.tolist()
    with pytest.raises(ValueError, match=r"Unknown categories for 'tissue': \['Moon'\]") as err:
        sgs.tl.generate(gtex_model.model, n_obs=4, covariates={"tissue": "Moon"})
    message = str(err.value)
    assert all(repr(c) in message for c in known)
    frame = pd.DataFrame({"tissue": ["Liver", "Moon", "Mars", "Moon"]})
    with pytest.raises(ValueError, match=r"\['Moon', 'Mars'\]"):
        sgs.tl.generate(gtex_model.model, covariates=frame)


def test_generate_dict_covariates_need_n_obs(gtex_model):
    with pytest.raises(ValueError, match=r"Pass n_obs with a dict of covariates"):
        sgs.tl.generate(gtex_model.model, covariates={"tissue": "Liver"})


def test_generate_n_obs_disagrees_with_covariate_rows(gtex_model):
    frame = pd.DataFrame({"tissue": ["Liver"] * 3})
    with pytest.raises(ValueError, match=r"n_obs=5 but covariates has 3 rows"):
        sgs.tl.generate(gtex_model.model, n_obs=5, covariates=frame)


# -- loading a saved model with other genes ---------------------------------------------------
def test_load_with_missing_genes(gtex_model_dir, gtex, snapshot):
    fewer = gtex[:, 5:].copy()
    snap = snapshot(fewer)
    with pytest.raises(ValueError, match=r"genes differ from the model's") as err:
        sgs.model.WGANGP.load(str(gtex_model_dir), adata=fewer)
    message = str(err.value)
    assert "467 genes at training, 462 given" in message
    assert "5 missing" in message
    assert any(name in message for name in gtex.var_names[:5])
    assert "Subset and order them as at training" in message
    snap.assert_unchanged(fewer)


def test_load_with_reordered_genes(gtex_model_dir, gtex, snapshot):
    reordered = gtex[:, ::-1].copy()
    snap = snapshot(reordered)
    with pytest.raises(ValueError, match=r"same genes in another order"):
        sgs.model.WGANGP.load(str(gtex_model_dir), adata=reordered)
    snap.assert_unchanged(reordered)


def test_load_without_adata(gtex_model_dir):
    """A generator loads without its data; training it again needs the data, and says so."""
    model = sgs.model.WGANGP.load(str(gtex_model_dir))
    with pytest.raises(ValueError, match=r"loaded without its training data.*adata="):
        model.train(n_steps=2, batch_size=16)


def test_augment_with_other_genes(gtex_model, gtex, snapshot):
    fewer = gtex[:, 1:].copy()
    snap = snapshot(fewer)
    with pytest.raises(ValueError, match=r"genes differ from the model's training genes"):
        sgs.tl.augment(fewer, gtex_model.model, n_obs=5)
    snap.assert_unchanged(fewer)


def test_train_on_anndata_without_x(gtex, snapshot):
    no_x = ad.AnnData(obs=gtex.obs.copy(), var=gtex.var.copy())
    no_x.layers["expr"] = gtex.X.copy()
    snap = snapshot(no_x)
    with pytest.raises(ValueError, match=r"adata\.X is None; pass the layer"):
        _train(no_x, categorical_covariate_keys=["tissue"])
    snap.assert_unchanged(no_x)


def test_float64_input_is_not_modified_by_the_scaling_statistics(snapshot):
    """The streaming statistics read row blocks that can be views of a float64 X."""
    rng = np.random.default_rng(0)
    adata = ad.AnnData(rng.normal(5, 1, size=(40, 12)))
    assert adata.X.dtype == np.float64
    snap = snapshot(adata)
    sgs.pp.fit_scaling(adata, "standardize")
    sgs.model.WGANGP.setup_anndata(adata)
    sgs.model.WGANGP(adata)
    np.testing.assert_array_equal(adata.X, snap.X)


# -- views: how scanpy users subset -------------------------------------------------------------
VIEW_TRAINING = {"n_steps": 4, "enable_progress_bar": False, "selection": None, "batch_size": 8}


@pytest.fixture(scope="module")
def three_tissues():
    adata = sgs.datasets.gtex_tissues()
    adata = adata[adata.obs["tissue"].isin(["Liver", "Lung", "Brain"]).to_numpy(), :30].copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.remove_unused_categories()
    return adata


@pytest.mark.parametrize("name", list(sgs.model.available().index))
@pytest.mark.parametrize("matrix", ["dense", "csr", "csc"])
def test_every_model_trains_on_a_view(three_tissues, name, matrix, snapshot):
    adata = three_tissues.copy()
    if matrix != "dense":
        adata.X = getattr(sparse, f"{matrix}_matrix")(adata.X)
    view = adata[5:50, 2:]
    assert view.is_view
    snap = snapshot(view)
    model = sgs.tl.train(view, name, categorical_covariate_keys=["tissue"], **VIEW_TRAINING)
    synth = model.generate(6, seed=0)
    assert synth.shape == (6, view.n_vars)
    assert np.isfinite(synth.X).all()
    assert list(synth.var_names) == list(view.var_names)
    snap.assert_unchanged(view, new_uns=(name,))


def test_tspg_trains_on_a_view(three_tissues):
    view = three_tissues[:50]
    model = sgs.tl.train_tspg(view, "tissue", n_steps=4, classifier_steps=4, batch_size=8,
                              enable_progress_bar=False)  # fmt: skip
    out = sgs.tl.perturb(view, model, target="Liver")
    assert np.isfinite(out.X).all()


def test_a_view_of_a_backed_file_trains(three_tissues, tmp_path, sgs_logs):
    path = tmp_path / "d.h5ad"
    three_tissues.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    view = backed[:40]
    with sgs_logs() as logs:
        model = sgs.tl.train_wgan(view, categorical_covariate_keys=["tissue"],
                                  n_hidden=(8,), **VIEW_TRAINING)  # fmt: skip
    assert model.generate(3, seed=0).shape == (3, 30)
    # its .uns cannot be written (anndata cannot copy a backed view): said, not a crash
    assert any("view of a backed AnnData" in r.getMessage() for r in logs)
    assert "wgan" not in view.uns
    backed.file.close()


# -- lengths and sizes that would silently mean something else ----------------------------------
LENGTHS = [
    ("n_steps", 0, ValueError),
    ("n_steps", -5, ValueError),
    ("n_steps", 2.5, TypeError),
    ("n_steps", True, TypeError),
    ("max_epochs", 0, ValueError),
    ("max_epochs", -1, ValueError),
    ("batch_size", 0, ValueError),
    ("batch_size", 1, ValueError),
    ("batch_size", 8.0, TypeError),
    ("train_size", 0, ValueError),
    ("train_size", float("nan"), ValueError),
    ("train_size", "0.9", TypeError),
    ("selection_every", 0, ValueError),
    ("patience", -1, ValueError),
    ("min_steps", -3, ValueError),
]
#: options of a training run's model selection: a generator without a training plan (the
#: noise baseline) has no run and ignores them
SELECTION_ONLY = ("selection_every", "patience", "min_steps")


def _has_training_plan(name: str) -> bool:
    return sgs.model.get_model_class(name)._training_plan_cls is not None


@pytest.mark.parametrize(
    ("name", "argument", "value", "error"),
    [
        (name, *case)
        for name in sgs.model.available().index
        for case in LENGTHS
        if _has_training_plan(name) or case[0] not in SELECTION_ONLY
    ],
)
def test_run_lengths_are_checked_before_training(three_tissues, name, argument, value, error):
    with pytest.raises(error, match=rf"{argument} must be"):
        sgs.tl.train(three_tissues, name, categorical_covariate_keys=["tissue"],
                     **{**VIEW_TRAINING, argument: value})  # fmt: skip


@pytest.mark.parametrize(
    ("argument", "value"),
    [("n_steps", 0), ("classifier_steps", -1), ("batch_size", 0), ("max_epochs", 0)],
)
def test_tspg_run_lengths_are_checked(three_tissues, argument, value):
    kwargs = {"n_steps": 4, "classifier_steps": 4, "batch_size": 8, argument: value}
    with pytest.raises(ValueError, match=rf"{argument} must be"):
        sgs.tl.train_tspg(three_tissues, "tissue", enable_progress_bar=False, **kwargs)


@pytest.mark.parametrize("seed", [-1, 2**70, 0.5])
def test_training_seeds_are_checked(three_tissues, seed):
    with pytest.raises((ValueError, TypeError), match=r"seed must be"):
        _train(three_tissues, categorical_covariate_keys=["tissue"], seed=seed)


# -- category dtypes ------------------------------------------------------------------------------
def test_a_category_without_samples_is_left_out_with_a_warning(three_tissues, snapshot, sgs_logs):
    adata = three_tissues.copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.add_categories(["Heart", "Skin"])
    snap = snapshot(adata)
    with sgs_logs() as logs:
        model = sgs.tl.train_wgan(adata, categorical_covariate_keys=["tissue"], **VIEW_TRAINING)
    warned = [r.getMessage() for r in logs if r.levelno == logging.WARNING]
    assert any("2 categories without samples (['Heart', 'Skin'])" in m for m in warned), warned
    assert model.categories["tissue"] == ["Brain", "Liver", "Lung"]
    with pytest.raises(ValueError, match=r"Unknown categories for 'tissue': \['Heart'\]"):
        model.generate(2, covariates={"tissue": "Heart"})
    snap.assert_unchanged(adata, new_uns=("wgan",))


@pytest.mark.parametrize("kind", ["reordered", "ordered", "numbers"])
def test_category_dtypes_train_and_generate(three_tissues, kind):
    adata = three_tissues.copy()
    tissue = adata.obs["tissue"]
    if kind == "reordered":
        adata.obs["tissue"] = tissue.cat.reorder_categories(["Lung", "Brain", "Liver"])
    elif kind == "ordered":
        adata.obs["tissue"] = tissue.cat.as_ordered()
    else:
        adata.obs["tissue"] = tissue.cat.codes.astype("category")
    model = sgs.tl.train_wgan(adata, categorical_covariate_keys=["tissue"], **VIEW_TRAINING)
    first = adata.obs["tissue"].iloc[0]
    synth = model.generate(4, covariates={"tissue": first}, seed=0)
    assert (synth.obs["tissue"] == first).all()


def test_mixed_kinds_of_labels_are_refused(three_tissues, snapshot):
    adata = three_tissues.copy()
    labels = adata.obs["tissue"].astype(object).to_numpy()
    labels[::2] = 1
    adata.obs["tissue"] = labels
    snap = snapshot(adata)
    with pytest.raises(TypeError, match=r"'tissue' mixes kinds of labels \(number 1, str"):
        _train(adata, categorical_covariate_keys=["tissue"])
    snap.assert_unchanged(adata)


def test_a_doubled_obs_column_is_named(three_tissues):
    adata = three_tissues.copy()
    adata.obs = pd.concat([adata.obs, adata.obs[["tissue"]]], axis=1)
    with pytest.raises(ValueError, match=r"more than one column named \['tissue'\]"):
        _train(adata, categorical_covariate_keys=["tissue"])


@pytest.mark.parametrize("value", [1e35, -3e38, 1e300])
def test_continuous_covariates_beyond_float32_are_refused(three_tissues, value):
    adata = three_tissues.copy()
    adata.obs["age"] = np.linspace(20.0, 70.0, adata.n_obs)
    adata.obs.iloc[3, adata.obs.columns.get_loc("age")] = value
    with pytest.raises(ValueError, match=r"'age' has 1 value\(s\) beyond \+-1e30"):
        _train(adata, continuous_covariate_keys=["age"])
