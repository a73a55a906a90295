"""Property-based tests: malformed AnnData into every public entry point.

Each call either returns a correct result or raises a ValueError/TypeError/KeyError whose
message is a sentence; it never changes its input (checked against a snapshot). Hypothesis
draws the malformation (NaN/inf, empty, one sample or gene, duplicated names, other dtypes,
huge values, sparse formats, broken covariates) and its details; the examples are
derandomised so CI runs the same ones every time.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import scgensynth as sgs

ALLOWED = (ValueError, TypeError, KeyError)
SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TISSUES = ["Liver", "Lung", "Brain"]


def _base():
    adata = sgs.datasets.gtex_tissues()
    adata = adata[adata.obs["tissue"].isin(TISSUES).to_numpy(), :12].copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.remove_unused_categories()
    adata.obs["age"] = np.linspace(20.0, 70.0, adata.n_obs)
    return adata


BASE = _base()


# -- the malformations: kind -> (draw, adata, row, col) -> the malformed adata -----------------
def _set_value(a, row, col, value):
    a.X[row, col] = value
    return a


def _dup_var(draw, a, row, col):
    names = list(a.var_names)
    names[col] = names[(col + 1) % len(names)]
    a.var_names = names
    return a


def _dup_obs(draw, a, row, col):
    a.obs_names = [f"s{i % 3}" for i in range(a.n_obs)]
    return a


def _dtype(draw, a, row, col):
    dtype = draw(st.sampled_from(["int64", "int8", "bool", "float16", "float64", "str", "c8"]))
    X = np.round(a.X) if dtype.startswith("int") else a.X
    a.X = X.astype(str).astype(object) if dtype == "str" else X.astype(dtype)
    return a


def _huge(draw, a, row, col):
    value = draw(st.sampled_from([1e10, 1e20, 1e30, 3e38]))
    a.X[:, col] = value * draw(st.sampled_from([1, -1]))
    return a


def _sparse(draw, a, row, col):
    a.X = draw(st.sampled_from([sparse.csr_matrix, sparse.csc_matrix]))(a.X)
    return a


def _constant(draw, a, row, col):
    a.X[:] = draw(st.sampled_from([0.0, 1.0]))
    return a


def _nan_category(draw, a, row, col):
    tissue = a.obs["tissue"].astype(object)
    tissue.iloc[row] = np.nan
    a.obs["tissue"] = tissue.astype("category")
    return a


def _age_as_text(draw, a, row, col):
    a.obs["age"] = a.obs["age"].astype(str)
    return a


def _nan_age(draw, a, row, col):
    a.obs.iloc[row, a.obs.columns.get_loc("age")] = np.nan
    return a


def _missing_column(draw, a, row, col):
    del a.obs[draw(st.sampled_from(["tissue", "age"]))]
    return a


MALFORMATIONS = {
    "valid": lambda draw, a, row, col: a,
    "nan": lambda draw, a, row, col: _set_value(a, row, col, np.nan),
    "inf": lambda draw, a, row, col: _set_value(
        a, row, col, draw(st.sampled_from([np.inf, -np.inf]))
    ),
    "empty_obs": lambda draw, a, row, col: a[:0].copy(),
    "empty_var": lambda draw, a, row, col: a[:, :0].copy(),
    "few_obs": lambda draw, a, row, col: a[: draw(st.integers(1, 4))].copy(),
    "few_var": lambda draw, a, row, col: a[:, : draw(st.integers(1, 3))].copy(),
    "dup_var": _dup_var,
    "dup_obs": _dup_obs,
    "dtype": _dtype,
    "huge": _huge,
    "sparse": _sparse,
    "constant": _constant,
    "negative": lambda draw, a, row, col: _set_value(a, row, col, -draw(st.floats(0.1, 1e3))),
    "nan_category": _nan_category,
    "age_as_text": _age_as_text,
    "nan_age": _nan_age,
    "one_class": lambda draw, a, row, col: a[a.obs["tissue"] == TISSUES[row % 3]].copy(),
    "no_X": lambda draw, a, row, col: type(a)(obs=a.obs, var=a.var),
    "missing_column": _missing_column,
}
KINDS = list(MALFORMATIONS)


@st.composite
def malformed(draw, kinds=KINDS):
    """``(kind, adata)``: the bundled GTEx subset (60 x 12) with one malformation."""
    kind = draw(st.sampled_from(kinds))
    a = BASE.copy()
    row = draw(st.integers(0, a.n_obs - 1))
    col = draw(st.integers(0, a.n_vars - 1))
    return kind, MALFORMATIONS[kind](draw, a, row, col)


def _message_is_a_sentence(err: Exception) -> None:
    text = str(err.args[0]) if err.args else ""
    assert len(text) >= 25, f"unclear error {type(err).__name__}: {text!r}"
    assert " " in text, f"unclear error {type(err).__name__}: {text!r}"


def _call(fn, adata, snapshot, *, new_uns=()):
    """``fn(adata)``: its result, or None after an allowed, clear error; input unchanged."""
    snap = snapshot(adata)
    try:
        result = fn(adata)
    except ALLOWED as err:
        _message_is_a_sentence(err)
        snap.assert_unchanged(adata)
        return None
    snap.assert_unchanged(adata, new_uns=new_uns)  # a trained model records its parameters
    return result


def _dense(X) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


def _check_model(model, adata) -> None:
    """A model that trained on ``adata`` generates finite samples of its covariates."""
    assert model.is_trained_
    if isinstance(model, sgs.model.TSPG):
        return
    synth = sgs.tl.generate(model, n_obs=7, seed=0)
    assert synth.shape == (7, adata.n_vars)
    assert np.isfinite(_dense(synth.X)).all()


QUICK = {"n_steps": 2, "batch_size": 8, "enable_progress_bar": False}


def _train(name: str, a):
    """``name`` ("tspg" or a registered generator) briefly trained on tissue (and age)."""
    if name == "tspg":
        return sgs.tl.train_tspg(
            a, "tissue", n_steps=2, classifier_steps=2, batch_size=8, enable_progress_bar=False
        )
    cls = sgs.model.get_model_class(name)
    run = {} if cls._training_plan_cls is None else QUICK  # the noise baseline learns nothing
    train = getattr(sgs.tl, f"train_{name}")  # every registered generator's named tool
    return train(
        a,
        categorical_covariate_keys=["tissue"],
        continuous_covariate_keys=["age"],
        **run,
        **cls.quick_kwargs,
    )


TRAIN = {name: functools.partial(_train, name) for name in [*sgs.model.available().index, "tspg"]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(TRAIN))
def test_training_entry_points(name, kind, snapshot):
    @settings(SETTINGS, max_examples=2)
    @given(case=malformed([kind]))
    def run(case):
        kind, adata = case
        uns = () if name == "tspg" else (name,)
        model = _call(TRAIN[name], adata, snapshot, new_uns=uns)
        if model is not None:
            _check_model(model, adata)
        if kind == "valid":
            assert model is not None, "valid data refused"

    run()


@pytest.fixture(scope="module")
def models():
    wgan = TRAIN["wgan"](BASE.copy())
    tspg = TRAIN["tspg"](BASE.copy())
    synth = sgs.tl.generate(wgan, n_obs=BASE.n_obs, seed=0)
    return wgan, tspg, synth


@pytest.mark.parametrize("kind", KINDS)
def test_augment(kind, models, snapshot):
    wgan, _, _ = models

    @settings(SETTINGS, max_examples=3)
    @given(case=malformed([kind]))
    def run(case):
        _, adata = case
        both = _call(lambda a: sgs.tl.augment(a, wgan, n_obs=5, seed=0), adata, snapshot)
        assert both is not None or kind != "valid"
        if both is not None:
            assert both.n_obs == adata.n_obs + 5
            real = _dense(both.X[: adata.n_obs]).astype(np.float64)
            np.testing.assert_array_equal(real, _dense(adata.X).astype(np.float64))
            assert np.isfinite(_dense(both.X[adata.n_obs :])).all()

    run()


@pytest.mark.parametrize("side", ["real", "synthetic"])
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate(kind, side, models, snapshot):
    _, _, synth = models

    @settings(SETTINGS, max_examples=2)
    @given(case=malformed([kind]))
    def run(case):
        _, adata = case

        def evaluate(a):
            real, fake = (a, synth) if side == "real" else (BASE, a)
            return sgs.metrics.evaluate(real, fake, labels_key="tissue", k=3, key_added=None)

        report = _call(evaluate, adata, snapshot)
        assert report is not None or kind != "valid"
        if report is not None:
            values = pd.to_numeric(report["value"], errors="coerce")
            assert not np.isinf(values).any(), report[np.isinf(values)]

    run()


METRICS = ["precision_recall", "density_coverage", "frechet_distance", "correlation_score"]


@pytest.mark.parametrize("kind", KINDS)
def test_single_metrics(kind, models, snapshot):
    _, _, synth = models

    @settings(SETTINGS, max_examples=4)
    @given(case=malformed([kind]), metric=st.sampled_from(METRICS))
    def run(case, metric):
        _, adata = case
        fn = getattr(sgs.metrics, metric)
        kwargs = {"k": 3} if metric in ("precision_recall", "density_coverage") else {}
        result = _call(lambda a: fn(a, synth, **kwargs), adata, snapshot)
        assert result is not None or kind != "valid"
        if isinstance(result, dict):
            numbers = [v for v in result.values() if isinstance(v, float)]
            assert not any(np.isinf(numbers)), result

    run()


@pytest.mark.parametrize("kind", KINDS)
def test_perturb(kind, models, snapshot):
    _, tspg, _ = models

    @settings(SETTINGS, max_examples=3)
    @given(case=malformed([kind]))
    def run(case):
        _, adata = case
        out = _call(lambda a: sgs.tl.perturb(a, tspg, target="Liver"), adata, snapshot)
        assert out is not None or kind != "valid"
        if out is not None:
            assert np.isfinite(out.X).all()
            assert (out.obs["target"] == "Liver").all()

    run()


@st.composite
def bad_covariates(draw):
    n = draw(st.integers(0, 6))
    kind = draw(st.sampled_from(["valid", "unknown", "nan", "missing", "text_age", "extra"]))
    frame = pd.DataFrame(
        {
            "tissue": [TISSUES[i % 3] for i in range(n)],
            "age": np.linspace(30.0, 60.0, n),
        }
    )
    if n and kind == "unknown":
        frame.loc[0, "tissue"] = "Kidney"
    elif n and kind == "nan":
        frame.loc[0, draw(st.sampled_from(["tissue", "age"]))] = np.nan
    elif kind == "missing":
        del frame[draw(st.sampled_from(["tissue", "age"]))]
    elif kind == "text_age":
        frame["age"] = frame["age"].astype(str)
    elif kind == "extra":
        frame["batch"] = "b1"
    return kind, frame


def test_generate_with_malformed_covariates(models):
    wgan, _, _ = models

    @settings(SETTINGS, max_examples=30)
    @given(case=bad_covariates(), seed=st.one_of(st.none(), st.integers(0, 2**31)))
    def run(case, seed):
        _generate_case(wgan, case, seed)

    run()


def _generate_case(wgan, case, seed):
    kind, frame = case
    before = frame.copy()
    try:
        synth = sgs.tl.generate(wgan, covariates=frame, seed=seed)
    except ALLOWED as err:
        _message_is_a_sentence(err)
        refused = err
    else:
        refused = None
        assert synth.n_obs == len(frame)
        assert np.isfinite(synth.X).all()
        assert list(synth.obs["tissue"].astype(str)) == list(frame["tissue"].astype(str))
    assert refused is None or kind != "valid" or frame.empty, refused
    pd.testing.assert_frame_equal(frame, before)


def test_generate_with_odd_sizes(models):
    wgan, _, _ = models

    @settings(SETTINGS, max_examples=20)
    @given(n_obs=st.one_of(st.integers(-3, 3), st.floats(-1, 3), st.text(max_size=2), st.none()))
    def run(n_obs):
        _sizes_case(wgan, n_obs)

    run()


def _sizes_case(wgan, n_obs):
    try:
        synth = sgs.tl.generate(wgan, n_obs=n_obs, seed=0)
    except ALLOWED as err:
        _message_is_a_sentence(err)
    else:
        assert n_obs is None or (isinstance(n_obs, int) and n_obs >= 0)
        assert synth.n_obs == (BASE.n_obs if n_obs is None else n_obs)


@pytest.mark.parametrize("command", ["train", "generate"])
@pytest.mark.parametrize("kind", KINDS)
def test_command_line(kind, command, models, tmp_path_factory, capsys):
    from scgensynth.cli import main

    wgan, _, _ = models

    @settings(SETTINGS, max_examples=1)
    @given(case=malformed([kind]))
    def run(case):
        _, adata = case
        folder = tmp_path_factory.mktemp("cli")
        path = folder / "data.h5ad"
        try:
            adata.write_h5ad(path)
        except Exception:  # anndata cannot store this AnnData: nothing to give the command
            return
        if command == "train":
            argv = ["train", str(path), "--categorical", "tissue", "--n-steps", "2"]
            argv += ["--out", str(folder / "model")]
        else:
            wgan.save(folder / "model", overwrite=True)
            argv = ["generate", str(folder / "model"), "--adata", str(path), "--n-obs", "4"]
            argv += ["--out", str(folder / "synth.h5ad")]
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 0 or kind != "valid", err
        if code != 0:
            assert code == 1, err
            assert "error:" in err, err
            assert len(err) > 40, err

    run()
