"""Property-based battery (issue 17): the awkward but valid inputs users pass, everywhere.

tests/test_fuzz.py feeds *malformed* AnnData to every entry point; this file draws the
inputs that are legitimate yet easy to get wrong: views and backed objects, output paths
that collide with something the user has, keys the user already uses, every value class of
a numeric argument, batchings of one generation, covariate columns of every category dtype
and damaged model files. The contract of every call: a correct result, or a clear error
(ValueError, TypeError, KeyError, an OSError such as FileExistsError / PermissionError /
IsADirectoryError / NotADirectoryError, or MemoryError for sets that cannot fit) whose
message is a sentence naming the problem; the input AnnData unchanged (except the
documented ``adata.uns[key]["params"]``); nothing the user had on disk lost unless
``overwrite=True``. Examples are derandomised, so CI runs the same ones every time.

Strategies
----------
``anndata_forms``
    How the 60 x 40 GTEx subset (Liver, Lung, Brain; an age) reaches an entry point: dense
    or sparse ``X``; an in-memory view (rows by positions or by a boolean mask, 8 to 20 of
    each tissue's 20 samples, optionally 10 to 39 of the 40 genes), the file read
    ``backed="r"``, or a view of the backed object (rows, optionally genes). The result is
    compared with the same call on the equivalent in-memory copy.
``output_targets``
    Where an output goes: a new path, an existing file, an existing folder (with or
    without a saved model in it), one of the inputs (the data file, the folder it lies in,
    a file open backed, the model's own training file), a symbolic link to an input, a
    read-only folder (simulated through ``os.access``: the tests run as root), a path below
    a file, a path in a missing folder; each with and without overwrite.
``existing_entries``
    What the user already keeps under a key the package writes: dicts with other entries,
    text, numbers, lists, arrays, DataFrames; ``.obs`` columns of every dtype; a varp graph.
``numbers``
    Every value class of a numeric argument: 0, 1, 2, 3, negative, fractional and whole
    floats, None, NaN, +-inf, booleans, 2**63 - 1, 2**63, +-2**70, numpy integers, floats
    and booleans, and a string.
``generation_plans``
    A seed in [0, 2**32 - 1], n_obs in [1, 700], two batch sizes in [1, 900], memory or a
    file, and a prefix length m < n_obs.
``category_columns``
    The covariate column as a categorical with unused, reordered or ordered categories, or
    as a plain column; labels as text, integers or number strings, asked for at generation
    time as written and in the other spelling ("1" vs 1).
``header_damages``
    A saved model's JSON header with one field deleted, replaced by a value of another JSON
    type or emptied: a top-level field, an attribute, or an entry nested inside one; and the
    JSON or the safetensors header truncated or replaced.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import re
import shutil
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scipy import sparse

import scgensynth as sgs
from scgensynth.model import ModelFileError

ALLOWED = (ValueError, TypeError, KeyError, OSError, MemoryError)
SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    # no shrinking: the drawn inputs are already small, and a failing example is printed as
    # drawn (shrinking would re-run trainings for minutes while a bug is open)
    phases=[Phase.explicit, Phase.generate],
    # the function-scoped fixtures used here (`snapshot`, `sgs_logs`) hand out a class and a
    # context-manager factory: nothing is shared between examples
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
TISSUES = ["Liver", "Lung", "Brain"]
MODELS = list(sgs.model.available().index)
#: tiny runs (and each class's small network, its quick_kwargs): behaviour is tested here,
#: not quality
RUN = {"n_steps": 3, "batch_size": 16, "selection": None, "enable_progress_bar": False}


def _base() -> ad.AnnData:
    adata = sgs.datasets.gtex_tissues()
    adata = adata[adata.obs["tissue"].isin(TISSUES).to_numpy(), :40].copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.remove_unused_categories()
    adata.obs["age"] = np.linspace(20.0, 70.0, adata.n_obs)
    return adata


BASE = _base()
ROWS_OF = {t: np.flatnonzero(BASE.obs["tissue"].to_numpy() == t).tolist() for t in TISSUES}


def _options(name: str) -> dict:
    """Training options of a registered generator: a tiny run of its small network."""
    cls = sgs.model.get_model_class(name)
    run = {} if cls._training_plan_cls is None else RUN  # the noise baseline learns nothing
    return {**run, **cls.quick_kwargs}


def _train(adata, name: str, **kwargs):
    """A briefly trained ``name`` ("tspg" or a registered generator) on tissue (and age)."""
    if name == "tspg":
        options = {"n_steps": 2, "classifier_steps": 2, "batch_size": 8}
        return sgs.tl.train_tspg(
            adata, "tissue", enable_progress_bar=False, **{**options, **kwargs}
        )
    options = _options(name)
    return sgs.tl.train(
        adata,
        name,
        categorical_covariate_keys=["tissue"],
        continuous_covariate_keys=["age"],
        **{**options, **kwargs},
    )


# -- what every call must satisfy -----------------------------------------------------------------
def _message(err: BaseException) -> str:
    if err.args and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


def _message_is_a_sentence(err: BaseException, *names: str) -> None:
    """A clear message: a sentence, naming ``names`` (regular expressions) when given."""
    text = _message(err)
    assert len(text) >= 25, f"unclear error {type(err).__name__}: {text!r}"
    assert " " in text, f"unclear error {type(err).__name__}: {text!r}"
    for name in names:
        assert re.search(name, text), f"{type(err).__name__} does not name {name}: {text!r}"


def _attempt(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """``(result, None)``, or ``(None, err)`` after an allowed error; anything else fails."""
    try:
        return fn(), None
    except ALLOWED as err:
        return None, err
    except Exception as err:  # the contract: no other kind of error reaches the user
        trace = "".join(traceback.format_exception(err)[-4:])
        pytest.fail(f"{type(err).__name__} instead of a clear error: {err!r}\n{trace}")


def _succeeds(fn: Callable[[], Any], what: str) -> Any:
    """``fn()`` on a valid input: any error fails, with its message."""
    result, err = _attempt(fn)
    if err is not None:
        pytest.fail(f"{what} refused a valid input: {type(err).__name__}: {err}")
    return result


def _dense(X) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


def _same(a, b) -> None:
    """Equal up to float rounding (batch-size-dependent matrix products); NaN == NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(a[np.isfinite(a)]).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale)


def _few_steps(model) -> dict:
    """Sampling options of a model that samples in steps (DDPM): 2 of them, enough here."""
    return {"n_sampling_steps": 2} if "n_sampling_steps" in model.sampling_options() else {}


def _samples(model, n: int = 12, seed: int = 1) -> np.ndarray:
    """What a trained model produces: generated samples, or TSPG's perturbed ones."""
    if isinstance(model, sgs.model.TSPG):
        adata = BASE[:, model.var_names].copy()
        return sgs.tl.perturb(adata, model, target="Liver").X
    return np.asarray(model.generate(n, seed=seed, **_few_steps(model)).X)


def _same_result(a, b) -> None:
    """Two results of one entry point (AnnData, report, dict, matrix, model) are equal."""
    if isinstance(a, ad.AnnData):
        _same(_dense(a.X[:]), _dense(b.X[:]))
        pd.testing.assert_frame_equal(a.obs, b.obs)
        pd.testing.assert_index_equal(a.var_names, b.var_names)
        assert set(a.layers) == set(b.layers)
        for key in a.layers:
            _same(_dense(a.layers[key]), _dense(b.layers[key]))
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-8)
    elif isinstance(a, dict):
        assert set(a) == set(b), (set(a), set(b))
        for key in a:
            _same_result(a[key], b[key])
    elif sparse.issparse(a):
        _same(a.toarray(), b.toarray())
    elif isinstance(a, np.ndarray | float | np.floating):
        _same(a, b)
    elif hasattr(a, "module"):  # a model
        _same(_samples(a), _samples(b))
    else:
        assert a == b, (a, b)


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _base_is_never_changed():
    """BASE is handed read-only to many calls: none of them may change it."""
    X, obs, var, uns = BASE.X.copy(), BASE.obs.copy(), BASE.var.copy(), set(BASE.uns)
    yield
    np.testing.assert_array_equal(BASE.X, X)
    pd.testing.assert_frame_equal(BASE.obs, obs)
    pd.testing.assert_frame_equal(BASE.var, var)
    assert set(BASE.uns) == uns


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """BASE written as a dense and as a sparse .h5ad file."""
    folder = tmp_path_factory.mktemp("battery_data")
    BASE.write_h5ad(folder / "dense.h5ad")
    as_sparse = BASE.copy()
    as_sparse.X = sparse.csr_matrix(as_sparse.X)
    as_sparse.write_h5ad(folder / "sparse.h5ad")
    return {"dense": folder / "dense.h5ad", "sparse": folder / "sparse.h5ad"}


@pytest.fixture(scope="module")
def models():
    """One tiny trained model of every registered generator, TSPG, and WGAN-GP on counts."""
    out = {name: _train(BASE.copy(), name) for name in [*MODELS, "tspg"]}
    counts = BASE.copy()
    counts.X = np.round(np.expm1(np.clip(counts.X, 0, None)) * 10).astype(np.float32)
    out["wgan_counts"] = _train(counts, "wgan")
    assert out["wgan_counts"].scaling_["mode"] == "counts"
    out["synth"] = out["wgan"].generate(50, seed=0)
    return out


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory):
    """Folders of saved models, by name."""
    folder = tmp_path_factory.mktemp("battery_models")
    for name in [*MODELS, "tspg"]:
        models[name].save(folder / name)
    return {name: folder / name for name in [*MODELS, "tspg"]}


# == 1. views and backed objects ==================================================================
class FormSpec:
    """A drawn form (a plain class: its repr is what a failing example shows)."""

    def __init__(self, storage: str, kind: str, rows, genes, by_mask: bool):
        self.storage, self.kind, self.by_mask = storage, kind, by_mask  # "dense" | "sparse"
        self.rows = tuple(int(r) for r in rows)
        self.genes = None if genes is None else tuple(int(g) for g in genes)

    def __repr__(self) -> str:
        rows = f"rows {list(self.rows)}" + (" by mask" if self.by_mask else "")
        genes = "" if self.genes is None else f", genes {list(self.genes)}"
        return f"FormSpec({self.storage} X, {self.kind}, {rows}{genes})"


FORM_KINDS = ["view", "view of genes", "backed", "backed view", "backed view of genes"]


@st.composite
def anndata_forms(draw, genes: bool = True, storage=None, kind=None) -> FormSpec:
    """A form; ``storage`` and ``kind`` are drawn unless given."""
    if storage is None:
        storage = draw(st.sampled_from(["dense", "sparse"]))
    if kind is None:
        kinds = FORM_KINDS if genes else [k for k in FORM_KINDS if not k.endswith("genes")]
        kind = draw(st.sampled_from(kinds))
    rows: list[int] = []
    for tissue in TISSUES:  # every tissue keeps enough samples to train and to compare
        n = draw(st.integers(8, 20))
        rows += draw(st.permutations(ROWS_OF[tissue]))[:n]
    columns = None
    if kind.endswith("genes"):
        n = draw(st.integers(10, 39))
        columns = tuple(sorted(draw(st.permutations(range(40)))[:n]))
    by_mask = kind == "view" and draw(st.booleans())
    return FormSpec(storage, kind, tuple(sorted(rows)), columns, by_mask)


@dataclass
class Form:
    adata: ad.AnnData  # what the entry point gets
    memory: ad.AnnData  # the same samples and genes, an ordinary in-memory AnnData
    parent: ad.AnnData | None  # the in-memory AnnData a view was taken from
    path: Path | None  # the file of a backed object


@contextlib.contextmanager
def _open_form(spec: FormSpec, files):
    path = files[spec.storage]
    rows = np.asarray(spec.rows)
    backed = None
    try:
        if spec.kind.startswith("view"):
            parent = ad.read_h5ad(path)
            index = np.isin(np.arange(parent.n_obs), rows) if spec.by_mask else rows
            adata = parent[index] if spec.genes is None else parent[index, list(spec.genes)]
            yield Form(adata, adata.copy(), parent, None)
        else:
            backed = ad.read_h5ad(path, backed="r")
            if spec.kind == "backed":
                adata = backed
            elif spec.genes is None:
                adata = backed[rows]
            else:
                adata = backed[rows, list(spec.genes)]
            yield Form(adata, adata.to_memory(), None, path)
    finally:
        if backed is not None:
            backed.file.close()


class _Unchanged:
    """Snapshots of a form, of the AnnData a view was taken from, and of a backed file."""

    def __init__(self, form: Form, snapshot):
        self.form = form
        self.backed = form.adata.isbacked and not form.adata.is_view
        self.snap = snapshot(self._readable(form.adata))
        self.parent = None if form.parent is None else snapshot(form.parent)
        self.digest = None if form.path is None else _digest(form.path)

    def _readable(self, adata):
        return adata.to_memory() if adata.isbacked and not adata.is_view else adata

    def check(self, new_uns: tuple[str, ...] = ()) -> None:
        adata = self.form.adata
        if self.backed:
            assert adata.isbacked, "the backed AnnData was loaded into memory"
        self.snap.assert_unchanged(self._readable(adata), new_uns=new_uns)
        if self.parent is not None:  # writing into a view never reaches its parent
            self.parent.assert_unchanged(self.form.parent)
        if self.digest is not None:
            assert _digest(self.form.path) == self.digest, "the backed file changed"


@pytest.mark.parametrize("name", [*MODELS, "tspg"])
@settings(SETTINGS, max_examples=4)
@given(spec=anndata_forms())
def test_training_on_a_view_or_backed_data_equals_training_on_a_copy(name, spec, files, snapshot):
    with _open_form(spec, files) as form:
        unchanged = _Unchanged(form, snapshot)
        model = _succeeds(lambda: _train(form.adata, name), f"training {name} on {spec}")
        reference = _train(form.memory, name)
        # the documented write; a view of a backed AnnData cannot take it (a warning says so)
        recorded = name != "tspg" and not spec.kind.startswith("backed view")
        unchanged.check(new_uns=(name,) if recorded else ())
        if recorded:
            assert form.adata.uns[name]["params"]["model"] == type(model).__name__
        _same(_samples(model), _samples(reference))


def _tools(models, saved) -> dict[str, tuple[Callable, tuple[str, ...]]]:
    """Entry points taking an AnnData: name -> (call on it, uns keys it may add)."""
    synth, wgan = models["synth"], models["wgan"]
    few = None if synth is None else synth[:20].copy()
    fast = {"labels_key": "tissue", "metrics": "fast", "k": 3}
    rem = {"n_components": 5, "cv": 3}
    return {
        "augment": (lambda a: sgs.tl.augment(a, wgan, n_obs=6, seed=0), ()),
        "perturb": (lambda a: sgs.tl.perturb(a, models["tspg"], target="Liver"), ()),
        "evaluate(real)": (  # fewer synthetic samples: the real ones are subsampled to them
            lambda a: sgs.metrics.evaluate(a, few, holdout=BASE, key_added=None, **fast),
            (),
        ),
        "evaluate(synthetic)": (
            lambda a: sgs.metrics.evaluate(BASE, a, holdout=BASE, **fast),
            ("sgs_metrics",),  # the report, stored in the synthetic AnnData as documented
        ),
        "evaluate(holdout)": (
            lambda a: sgs.metrics.evaluate(BASE, synth, holdout=a, key_added=None, **fast),
            (),
        ),
        "reconstruction_error(real)": (
            lambda a: sgs.metrics.reconstruction_error(a, synth, **rem),
            (),
        ),
        "reconstruction_error(synthetic)": (
            lambda a: sgs.metrics.reconstruction_error(BASE, a, **rem),
            (),
        ),
        "precision_recall": (lambda a: sgs.metrics.precision_recall(a, synth, k=3), ()),
        "distance_to_closest_record(train)": (
            lambda a: sgs.metrics.distance_to_closest_record(a, synth, BASE),
            (),
        ),
        "distance_to_closest_record(holdout)": (
            lambda a: sgs.metrics.distance_to_closest_record(BASE, synth, a),
            (),
        ),
        "coexpression_graph": (
            lambda a: sgs.pp.coexpression_graph(a, top_k=3, inplace=False),
            (),
        ),
        "load_model": (lambda a: sgs.model.load_model(saved["wgan"], adata=a), ()),
        "WGANGP.load": (lambda a: sgs.model.WGANGP.load(saved["wgan"], adata=a), ()),
    }


TOOLS = list(_tools({"synth": None, "wgan": None, "tspg": None}, {}))


#: every tool on every form (of the genes too where the tool takes any genes)
TOOL_FORMS = [
    pytest.param(tool, storage, kind, id=f"{tool}-{storage} {kind}")
    for tool in TOOLS
    for storage in ("dense", "sparse")
    for kind in FORM_KINDS
    if tool == "coexpression_graph" or not kind.endswith("genes")
]


@pytest.mark.parametrize(("tool", "storage", "kind"), TOOL_FORMS)
@settings(SETTINGS, max_examples=2)
@given(data=st.data())
def test_every_tool_takes_views_and_backed_data(
    tool, storage, kind, data, files, models, saved, snapshot
):
    call, new_uns = _tools(models, saved)[tool]
    spec = data.draw(anndata_forms(storage=storage, kind=kind), label="form")
    with _open_form(spec, files) as form:
        unchanged = _Unchanged(form, snapshot)
        result = _succeeds(lambda: call(form.adata), f"{tool} on {spec}")
        # a documented write; a view of a backed AnnData cannot take it (its .uns cannot be
        # written): then nothing is stored, as when training on one
        stored = tuple(k for k in new_uns if k in form.adata.uns)
        if not spec.kind.startswith("backed view"):
            assert stored == new_uns, f"{new_uns} not written"
        unchanged.check(new_uns=stored)
        for key in stored:
            _same_result(form.adata.uns[key], result)
        _same_result(result, call(form.memory))


# == 2. output paths ==============================================================================
COLLISIONS = [
    "new",
    "existing file",
    "existing folder",
    "existing model",
    "input",
    "link to the input",
    "read-only folder",
    "below a file",
    "missing folder",
]
FILE_OUTPUTS = {"generate": ".h5ad", "cli generate": ".h5ad", "cli compare": ".csv"}
FOLDER_OUTPUTS = ["save", "save_anndata", "cli train"]
USER_BYTES = b"the user's own file, not to be lost"


@dataclass
class Scenario:
    target: Path
    expect: str  # "ok", "refused" or "either"
    outputs: set[str]  # paths (relative to the root) the call may create or replace
    model_data: Path  # the file the model is trained on when it is trained backed


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: folders, links (their target) and files (their hash)."""
    out = {}
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("folder",)
            else:
                out[rel] = ("file", _digest(path))
    return out


def _user_files(root: Path, saved) -> None:
    """What the user has: the data, notes, a saved model, a (read-only) folder."""
    BASE.write_h5ad(root / "data.h5ad")
    (root / "notes.txt").write_bytes(USER_BYTES)
    shutil.copytree(saved["wgan"], root / "model")
    (root / "read-only").mkdir()


def _scenario(entry: str, collision: str, overwrite: bool, which: str, root: Path) -> Scenario:
    """Prepare ``collision`` under ``root`` for ``entry``; say what must happen."""
    if entry in FILE_OUTPUTS:
        return _file_scenario(entry, collision, overwrite, root)
    return _folder_scenario(entry, collision, overwrite, which, root)


def _file_scenario(entry: str, collision: str, overwrite: bool, root: Path) -> Scenario:
    """``_scenario`` of an entry point writing one file."""
    ok_if_asked = "ok" if overwrite else "refused"
    data = root / "data.h5ad"
    name = "out" + FILE_OUTPUTS[entry]
    target = {
        "new": root / name,
        "existing file": root / name,
        "existing folder": root / name,
        "existing model": root / "model",
        "input": data,
        "link to the input": root / ("link" + FILE_OUTPUTS[entry]),
        "read-only folder": root / "read-only" / name,
        "below a file": root / "notes.txt" / name,
        "missing folder": root / "missing" / name,
    }[collision]
    if collision == "existing file":
        target.write_bytes(USER_BYTES)
    elif collision == "existing folder":
        target.mkdir()
        (target / "keep.txt").write_bytes(USER_BYTES)
    elif collision == "link to the input":
        target.symlink_to(data)
    expect = {"new": "ok", "existing file": ok_if_asked}.get(collision, "refused")
    outputs = {str(target.relative_to(root))} if expect != "refused" else set()
    return Scenario(target, expect, outputs, data)


def _folder_scenario(
    entry: str, collision: str, overwrite: bool, which: str, root: Path
) -> Scenario:
    """``_scenario`` of an entry point writing into a folder (a saved model)."""
    ok_if_asked = "ok" if overwrite else "refused"
    data = root / "data.h5ad"
    files = ["model.safetensors"] + (["adata.h5ad"] if entry == "save_anndata" else [])
    target = {
        "new": root / "saved",
        "existing file": data,  # the input file itself, given as the folder to save into
        "existing folder": root / "saved",
        "existing model": root / "saved",
        "input": root,  # the folder that holds the inputs
        "link to the input": root / "link",
        "read-only folder": root / "read-only" / "saved",
        "below a file": root / "notes.txt" / "saved",
        "missing folder": root / "missing" / "deeper" / "saved",
    }[collision]
    model_data = data
    if collision in ("existing folder", "existing model"):
        target.mkdir()
        (target / "keep.txt").write_bytes(USER_BYTES)
    if collision == "existing model":
        present = {"model": files[:1], "adata": files[1:], "both": files}[which] or files[:1]
        for name in present:
            (target / name).write_bytes(USER_BYTES)
    if collision == "link to the input":
        target.symlink_to(data)
    if collision == "input" and entry == "save_anndata":
        # the model reads its data (backed) from the very adata.h5ad that save would write
        target = root / "inputs"
        target.mkdir()
        model_data = target / "adata.h5ad"
        shutil.copyfile(data, model_data)
    cli = entry == "cli train"
    expect = {
        "new": "ok",
        "existing folder": ok_if_asked if cli else "ok",
        "existing model": ok_if_asked,
        "input": ok_if_asked if cli else ("refused" if entry == "save_anndata" else "ok"),
        "missing folder": "either" if cli else "ok",
    }.get(collision, "refused")
    outputs = set()
    if expect != "refused":
        rel = target.relative_to(root)
        outputs = {str(rel / name) for name in files} | {
            str(p) for p in [rel, *rel.parents] if str(p) != "."
        }
    return Scenario(target, expect, outputs, model_data)


@contextlib.contextmanager
def _read_only(folder: Path):
    """``os.access`` says ``folder`` is not writable (root may write anywhere)."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() == folder.resolve():
            return False
        return real(path, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "access", access)
        yield


def _cli(argv: list[str]) -> tuple[int, str]:
    from scgensynth.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _run_entry(entry, scenario, overwrite, model, root) -> tuple[Any, BaseException | None]:
    """Run ``entry``; ``(result, None)`` or ``(None, error)``; the CLI's code 1 as an error."""
    target, flag = str(scenario.target), ["--overwrite"] if overwrite else []
    data = str(root / "data.h5ad")
    if entry == "generate":
        return _attempt(
            lambda: sgs.tl.generate(model, 5, seed=0, filename=target, overwrite=overwrite)
        )
    if entry in ("save", "save_anndata"):
        return _attempt(
            lambda: model.save(target, overwrite=overwrite, save_anndata=entry == "save_anndata")
        )
    argv = {
        "cli train": [
            *("train", data, "--categorical", "tissue"),
            *("--n-steps", "2", "--batch-size", "16"),
        ],
        "cli generate": ["generate", str(root / "model"), "--adata", data, "--n-obs", "4"],
        "cli compare": [
            *("compare", data, "--label", "tissue"),
            *("--models", "noise", "--metrics", "fast"),
        ],
    }[entry]
    ran, raised = _attempt(lambda: _cli([*argv, "--out", target, *flag]))
    if raised is not None:
        pytest.fail(f"the command line raised {type(raised).__name__}: {raised}")
    code, stderr = ran
    if code == 0:
        return code, None
    assert code == 1, f"exit code {code}: {stderr}"
    assert "error:" in stderr, stderr
    return None, ValueError(stderr.split("error:", 1)[1].strip())


def _check_output(entry, scenario, model, result) -> None:
    """A successful call wrote what it says it wrote."""
    target = scenario.target
    if entry == "generate":
        try:
            expected = model.generate(5, seed=0).X
            np.testing.assert_array_equal(result.X[:], expected)
            assert Path(result.filename).resolve() == target.resolve()
        finally:
            result.file.close()
    elif entry == "cli generate":
        assert ad.read_h5ad(target).n_obs == 4
    elif entry == "cli compare":
        assert "noise" in set(pd.read_csv(target)["model"])
    else:
        loaded = sgs.model.load_model(target, adata=BASE)
        if entry != "cli train":
            _same(_samples(loaded), _samples(model))
        if entry == "save_anndata":
            assert ad.read_h5ad(target / "adata.h5ad").shape == BASE.shape


def _check_disk(before, after, scenario, refused: bool, overwrite: bool) -> None:
    """Nothing lost or replaced unasked, nothing left behind (temporary files included)."""
    if refused:
        assert after == before, {
            "appeared": sorted(set(after) - set(before)),
            "changed or gone": sorted(k for k in before if after.get(k) != before[k]),
        }
        return
    gone = sorted(set(before) - set(after))
    assert not gone, f"entries the user had are gone: {gone}"
    changed = {k for k in before if after[k] != before[k]}
    replaceable = scenario.outputs if overwrite else set()
    assert changed <= replaceable, f"replaced unasked: {sorted(changed - replaceable)}"
    new = set(after) - set(before)
    expected = {p for p in scenario.outputs if p not in before}
    assert new == expected, {"stray": sorted(new - expected), "missing": sorted(expected - new)}


@pytest.mark.parametrize("collision", COLLISIONS)
@pytest.mark.parametrize("entry", [*FILE_OUTPUTS, *FOLDER_OUTPUTS])
@settings(SETTINGS, max_examples=4)
@given(data=st.data())
def test_outputs_never_lose_what_the_user_had(entry, collision, data, saved, tmp_path_factory):
    overwrite = data.draw(st.booleans(), label="overwrite")
    library = entry in ("generate", "save", "save_anndata")
    trained_backed = library and data.draw(st.booleans(), label="trained on a backed file")
    which = "both"
    if entry == "save_anndata" and collision == "existing model":
        which = data.draw(st.sampled_from(["model", "adata", "both"]), label="existing files")
    root = tmp_path_factory.mktemp("paths")
    _user_files(root, saved)
    scenario = _scenario(entry, collision, overwrite, which, root)
    opened = []
    try:
        model = None
        if entry in ("generate", "save", "save_anndata"):
            if trained_backed or scenario.model_data != root / "data.h5ad":
                opened.append(ad.read_h5ad(scenario.model_data, backed="r"))
                model = _train(opened[-1], "wgan")
            else:
                model = _train(BASE.copy(), "wgan")
            if entry == "generate" and collision in ("input", "link to the input"):
                opened.append(ad.read_h5ad(root / "data.h5ad", backed="r"))  # open elsewhere
        before = _tree(root)
        guard = _read_only(root / "read-only") if "read-only" in collision else (
            contextlib.nullcontext()
        )  # fmt: skip
        with guard:
            result, err = _run_entry(entry, scenario, overwrite, model, root)
        if err is not None:
            _message_is_a_sentence(err)
        assert scenario.expect != "ok" or err is None, f"refused: {err}"
        assert scenario.expect != "refused" or err is not None, "not refused"
        if err is None:
            _check_output(entry, scenario, model, result)
        _check_disk(before, _tree(root), scenario, err is not None, overwrite)
        for adata in opened:  # what the user had open still reads
            assert adata.X[:2].shape[0] == 2
    finally:
        for adata in opened:
            adata.file.close()


# == 3. keys the user already has =================================================================
def existing_entries():
    """What a user may keep under an ``.uns`` key."""
    values = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
    return st.one_of(
        st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=4),
        st.text(max_size=8),
        st.integers(),
        st.floats(allow_nan=False),
        st.lists(st.integers(), max_size=4),
        st.builds(np.arange, st.integers(0, 5)),
        st.builds(lambda n: pd.DataFrame({"a": range(n)}), st.integers(0, 3)),
    )


def obs_columns():
    """A column the user may have in ``.obs`` (60 values)."""
    n = BASE.n_obs
    return st.sampled_from(
        [
            pd.Categorical(["mine", "theirs"] * (n // 2)),
            np.arange(n),
            np.linspace(0.0, 1.0, n),
            np.array([True, False] * (n // 2)),
            np.array(["a note"] * n, dtype=object),
        ]
    )


def _equal_values(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and set(a) == set(b) and all(_equal_values(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", [*MODELS, "tspg"])
@settings(SETTINGS, max_examples=6)
@given(existing=existing_entries(), custom_key=st.booleans())
def test_training_keeps_the_users_uns_entry_or_refuses(name, existing, custom_key, snapshot):
    adata = BASE.copy()
    key = "my_run" if custom_key and name != "tspg" else name
    adata.uns[key] = existing
    adata.uns["other"] = {"kept": 1}
    kept = copy.deepcopy(existing)
    snap = snapshot(adata)
    if name == "tspg":
        fn = lambda: _train(adata, "tspg")  # noqa: E731
    else:  # every registered generator's named tool, sgs.tl.train_<name>
        fn = lambda: getattr(sgs.tl, f"train_{name}")(  # noqa: E731
            adata, categorical_covariate_keys=["tissue"], key_added=key, **_options(name)
        )
    model, err = _attempt(fn)
    assert _equal_values(adata.uns["other"], {"kept": 1})
    if name == "tspg":  # TSPG writes nothing into the user's AnnData
        assert err is None, err
        snap.assert_unchanged(adata)
        assert _equal_values(adata.uns[key], kept)
        return
    if isinstance(existing, dict):
        assert err is None, f"a dict in uns[{key!r}] refused: {err}"
        snap.assert_unchanged(adata)
        entry = adata.uns[key]
        assert entry["params"]["model"] == type(model).__name__
        for k, v in kept.items():  # everything else the user had there stays
            if k != "params":
                assert _equal_values(entry[k], v), (k, entry[k], v)
    else:
        assert err is not None, f"uns[{key!r}] (a {type(existing).__name__}) was replaced"
        _message_is_a_sentence(err, re.escape(repr(key)))
        snap.assert_unchanged(adata)
        assert _equal_values(adata.uns[key], kept)


@settings(SETTINGS, max_examples=30)
@given(
    column=obs_columns(),
    where=st.sampled_from(["sgs_source", "notes"]),
    key=st.sampled_from(["sgs_source", "tissue", "age", "sgs_origin"]),
)
def test_augment_keeps_the_users_columns(column, where, key, models, snapshot):
    adata = BASE.copy()
    adata.obs[where] = column
    snap = snapshot(adata)
    both, err = _attempt(lambda: sgs.tl.augment(adata, models["wgan"], 5, seed=0, key_added=key))
    snap.assert_unchanged(adata)
    if key in adata.obs.columns:
        assert err is not None, f"obs[{key!r}] of the user's AnnData was taken over"
        _message_is_a_sentence(err, re.escape(repr(key)))
        return
    assert err is None, err
    n = adata.n_obs
    assert list(both.obs[key]) == ["real"] * n + ["synthetic"] * 5
    for name in adata.obs.columns:  # the user's columns come through for the real samples
        real = both.obs[name].iloc[:n].astype(object).to_numpy()
        assert (real == adata.obs[name].astype(object).to_numpy()).all(), name


@settings(SETTINGS, max_examples=30)
@given(
    existing=existing_entries(),
    key=st.sampled_from(["sgs_metrics", "my_report"]),
    overwrite=st.booleans(),
)
def test_evaluate_keeps_or_replaces_the_report_key_as_asked(existing, key, overwrite, models):
    synth = models["synth"].copy()
    synth.uns[key] = existing
    kept = copy.deepcopy(existing)
    report, err = _attempt(
        lambda: sgs.metrics.evaluate(
            BASE, synth, metrics=["precision_recall"], k=3, key_added=key, overwrite=overwrite
        )
    )
    assert set(synth.uns) == {key, "sgs"}
    if overwrite:
        assert err is None, err
        pd.testing.assert_frame_equal(synth.uns[key], report)
    else:
        assert err is not None, f"synth.uns[{key!r}] replaced without overwrite=True"
        _message_is_a_sentence(err, re.escape(repr(key)), "overwrite=True")
        assert _equal_values(synth.uns[key], kept)


@settings(SETTINGS, max_examples=30)
@given(
    column=obs_columns(),
    where=st.sampled_from(["real", "synthetic", "both", "neither"]),
    key=st.sampled_from(["rem", "age"]),
    overwrite=st.booleans(),
)
def test_reconstruction_error_keeps_or_replaces_obs_columns_as_asked(
    column, where, key, overwrite, models
):
    real, synth = BASE.copy(), models["synth"].copy()
    if where in ("real", "both"):
        real.obs[key] = column
    if where in ("synthetic", "both"):
        synth.obs[key] = column[: synth.n_obs]
    before = real.obs.copy(), synth.obs.copy()
    result, err = _attempt(
        lambda: sgs.metrics.reconstruction_error(
            real, synth, n_components=5, key_added=key, overwrite=overwrite
        )
    )
    taken = key in before[0].columns or key in before[1].columns
    if taken and not overwrite:
        assert err is not None, f"obs[{key!r}] replaced without overwrite=True"
        _message_is_a_sentence(err, re.escape(repr(key)))
        pd.testing.assert_frame_equal(real.obs, before[0])
        pd.testing.assert_frame_equal(synth.obs, before[1])
        return
    assert err is None, err
    for adata, old, side in ((real, before[0], "real"), (synth, before[1], "synthetic")):
        np.testing.assert_array_equal(adata.obs[key].to_numpy(), result[side])
        others = [c for c in old.columns if c != key]
        pd.testing.assert_frame_equal(adata.obs[others], old[others])


@settings(SETTINGS, max_examples=36)  # every combination
@given(
    graph=st.booleans(),
    uns=st.sampled_from(["absent", "dict", "text"]),
    overwrite=st.booleans(),
    mode=st.sampled_from(["inplace", "copy", "return"]),
)
def test_coexpression_graph_keeps_the_users_entries(graph, uns, overwrite, mode, snapshot):
    adata, key = BASE.copy(), "sgs_coexpression"
    mine = sparse.csr_matrix(np.eye(adata.n_vars, dtype=np.float32))
    if graph:
        adata.varp[key] = mine
    if uns != "absent":
        adata.uns[key] = {"note": "mine"} if uns == "dict" else "my notes"
    snap = snapshot(adata)
    kwargs = {"inplace": mode != "return", "copy": mode == "copy", "overwrite": overwrite}
    result, err = _attempt(lambda: sgs.pp.coexpression_graph(adata, top_k=3, **kwargs))
    written = adata if mode == "inplace" else result
    if mode != "inplace" or err is not None:  # the user's AnnData is untouched
        snap.assert_unchanged(adata)
        if graph:
            assert (adata.varp[key] != mine).nnz == 0
        if uns != "absent":
            assert adata.uns[key] == ({"note": "mine"} if uns == "dict" else "my notes")
    if mode == "return":
        assert err is None, err
        assert result.shape == (adata.n_vars, adata.n_vars)
        return
    refuse = (graph and not overwrite) or uns == "text"
    if err is not None:
        _message_is_a_sentence(err, re.escape(repr(key)))
        assert refuse or mode == "copy", f"refused: {err}"
        return
    assert not refuse or mode == "copy", "the user's graph or notes were replaced unasked"
    assert written.varp[key].shape == (adata.n_vars, adata.n_vars)
    assert written.uns[key]["params"]["method"] == "pearson"
    if uns == "dict":
        assert written.uns[key]["note"] == "mine"


# == 4. numeric arguments =========================================================================
SPECIAL = [
    0,
    1,
    2,
    3,
    -1,
    -7,
    0.25,
    0.5,
    1.5,
    2.0,
    -0.5,
    None,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    2**63 - 1,
    2**63,
    2**70,
    -(2**70),
    np.int64(3),
    np.int32(2),
    np.uint8(4),
    np.int64(-2),
    np.float64(3.0),
    np.float32(0.25),
    np.bool_(True),
    "3",
]
numbers = st.sampled_from(SPECIAL)
#: whole numbers above this are "huge": no data set here has that many samples or steps
HUGE = 10**7


@dataclass(frozen=True)
class Arg:
    """A numeric argument: how to call with it and which of its values are valid."""

    call: Callable[[Any, dict], Any]
    name: str  # regular expression the error message must match
    kind: str = "count"  # "count", "seed", "fraction" ((0, 1]) or "open fraction" ((0, 1))
    minimum: int = 1
    none: bool = False  # None is a documented value
    huge: bool = False  # huge whole numbers are legitimate (capped by the data)
    saturated: Any = None  # the value a huge one amounts to (its result is compared)
    check: Callable[[Any], None] | None = None  # what any accepted result must satisfy
    compare: bool = True  # compare an accepted result with the one of the plain int/float

    def expect(self, value) -> str:
        """ "ok", "refused" or "either" (a whole float: refused, or the int's result)."""
        if value is None:
            return "ok" if self.none else "refused"
        if isinstance(value, bool | np.bool_ | str):
            return "refused"
        if self.kind.endswith("fraction"):
            upper_ok = value <= 1 if self.kind == "fraction" else value < 1
            return "ok" if value > 0 and upper_ok else "refused"
        if self.kind == "seed":
            whole = isinstance(value, int | np.integer)
            return "ok" if whole and 0 <= value <= 2**32 - 1 else "refused"
        if isinstance(value, int | np.integer):
            if value < self.minimum:
                return "refused"
            return "ok" if value <= HUGE or self.huge else "refused"
        if np.isfinite(value) and float(value).is_integer() and self.minimum <= value <= HUGE:
            return "either"
        return "refused"

    def canonical(self, value):
        if value is None or self.kind.endswith("fraction"):
            return value if value is None else float(value)
        value = int(value)
        return self.saturated if value > HUGE and self.saturated is not None else value


class EndlessTrainingError(BaseException):
    """Training was started for more epochs than any run here needs."""


@contextlib.contextmanager
def _no_endless_training(limit: int = 10_000):
    """Stop a training run of more than ``limit`` epochs before it starts (instead of hanging)."""
    import lightning.pytorch as pl

    fit = pl.Trainer.fit

    def guarded(self, *args, **kwargs):
        if self.max_epochs is not None and self.max_epochs > limit:
            raise EndlessTrainingError(self.max_epochs)
        return fit(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pl.Trainer, "fit", guarded)
        yield


def _wgan(**kwargs):
    options = {**RUN, **sgs.model.WGANGP.quick_kwargs, **kwargs}
    with _no_endless_training():
        return sgs.tl.train(BASE.copy(), "wgan", categorical_covariate_keys=["tissue"], **options)


def _has_frechet(report) -> None:
    assert "frechet_distance_pca" in set(report["metric"]), "the Fréchet distance was dropped"


def _compared(table) -> None:
    assert set(table["model"]) == {"noise"}
    assert {"train_seconds", "frechet_distance_pca", "correlation_score"} <= set(table["metric"])


def _args() -> dict[str, Arg]:
    def gen(ctx, **kw):
        return ctx["wgan"].generate(**{"n_obs": 7, "seed": 0, **kw})

    def to_file(value, ctx):
        ctx["n_files"] = ctx.get("n_files", 0) + 1
        out = gen(ctx, n_obs=value, filename=ctx["folder"] / f"s{ctx['n_files']}.h5ad")
        out.file.close()
        return ad.read_h5ad(out.filename)

    def cf(ctx, **kw):
        return sgs.tl.counterfactual(ctx["wgan"], "tissue", "Liver", "Lung", **{"n_obs": 5, **kw})

    def walk(ctx, **kw):
        options = {"steps": 3, "n_per_step": 2, **kw}
        return sgs.tl.interpolate(ctx["wgan"], "tissue", "Liver", "Lung", **options)

    def evaluate(ctx, **kw):
        return sgs.metrics.evaluate(BASE, ctx["synth"], key_added=None, **kw)

    selection = {"selection": "correlation", "n_steps": 4}
    return {
        "generate n_obs": Arg(lambda v, c: gen(c, n_obs=v), "n_obs", minimum=0, none=True),
        "generate seed": Arg(lambda v, c: gen(c, seed=v), "seed", kind="seed", none=True),
        "generate batch_size": Arg(
            lambda v, c: gen(c, batch_size=v), "batch_size", huge=True, saturated=4096
        ),
        "generate to a file n_obs": Arg(to_file, "n_obs|samples", minimum=0, none=True),
        "train n_steps": Arg(
            lambda v, c: _wgan(n_steps=v, **({"max_epochs": 1} if v is None else {})),
            "n_steps",
            none=True,
        ),
        "train max_epochs": Arg(
            lambda v, c: _wgan(max_epochs=v, n_steps=2), "max_epochs", none=True
        ),
        "train batch_size": Arg(lambda v, c: _wgan(batch_size=v), "batch_size", minimum=2),
        "train train_size": Arg(
            lambda v, c: _wgan(train_size=v, batch_size=8),
            "train_size",
            kind="fraction",
            none=True,  # the default: 0.9, or 1.0 with privacy
        ),
        "train seed": Arg(lambda v, c: _wgan(seed=v), "seed", kind="seed"),
        "train selection_every": Arg(
            lambda v, c: _wgan(selection_every=v, **selection),
            "selection_every",
            none=True,
            huge=True,
        ),
        "train patience": Arg(
            lambda v, c: _wgan(patience=v, **selection),
            "patience",
            minimum=0,
            none=True,
            huge=True,
        ),
        "train min_steps": Arg(
            lambda v, c: _wgan(min_steps=v, **selection),
            "min_steps",
            minimum=0,
            none=True,
            huge=True,
        ),
        "counterfactual n_obs": Arg(lambda v, c: cf(c, n_obs=v), r"\bn_obs\b"),
        "counterfactual seed": Arg(lambda v, c: cf(c, seed=v), "seed", kind="seed", none=True),
        "counterfactual batch_size": Arg(
            lambda v, c: cf(c, batch_size=v), "batch_size", huge=True, saturated=4096
        ),
        "interpolate steps": Arg(lambda v, c: walk(c, steps=v), "steps", minimum=2),
        "interpolate n_per_step": Arg(lambda v, c: walk(c, n_per_step=v), "n_per_step"),
        "evaluate k": Arg(
            lambda v, c: evaluate(c, k=v, metrics=["precision_recall"]),
            r"\bk\b",
            huge=True,
            saturated=49,  # lowered to what 60 real and 50 synthetic samples allow
        ),
        "evaluate n_components": Arg(
            lambda v, c: evaluate(c, n_components=v, metrics="fast", k=3),
            "n_components",
            none=True,
            huge=True,
            check=_has_frechet,
        ),
        "perturb batch_size": Arg(
            lambda v, c: sgs.tl.perturb(BASE, c["tspg"], target="Liver", batch_size=v),
            "batch_size",
            huge=True,
            saturated=1024,
        ),
        "compare_generators test_size": Arg(
            lambda v, c: sgs.tl.compare_generators(
                BASE, "tissue", models=["noise"], metrics="fast", test_size=v
            ),
            "test_size",
            kind="open fraction",
            check=_compared,
            compare=False,  # the table holds training times
        ),
    }


ARGS = _args()
_REFERENCES: dict[tuple[str, Any], Any] = {}


@pytest.fixture(scope="module")
def context(models, tmp_path_factory):
    return {
        "wgan": models["wgan"],
        "tspg": models["tspg"],
        "synth": models["synth"],
        "folder": tmp_path_factory.mktemp("numbers"),
    }


@pytest.mark.parametrize("argument", list(ARGS))
@settings(SETTINGS, max_examples=len(SPECIAL) + 5)
@given(value=numbers)
def test_numeric_arguments_are_checked(argument, value, context):
    arg = ARGS[argument]
    expect = arg.expect(value)
    try:
        result, err = _attempt(lambda: arg.call(value, context))
    except EndlessTrainingError as stopped:
        pytest.fail(f"{argument}={value!r} was accepted: training of {stopped} epochs started")
    if err is not None:
        assert expect != "ok", f"{argument}={value!r} refused: {type(err).__name__}: {err}"
        if isinstance(err, MemoryError):
            _message_is_a_sentence(err)
        else:
            _message_is_a_sentence(err, arg.name)
        return
    assert expect != "refused", f"{argument}={value!r} was accepted"
    if arg.check is not None:
        arg.check(result)
    canonical = arg.canonical(value)
    if not arg.compare or canonical is None or (canonical is not value and canonical > HUGE):
        return  # a documented default, or a huge value without a finite twin: accepted is all
    key = (argument, canonical)
    if key not in _REFERENCES:
        _REFERENCES[key] = arg.call(canonical, context)
    _same_result(result, _REFERENCES[key])


# == 5. generation invariance =====================================================================
@st.composite
def generation_plans(draw):
    n = draw(st.integers(1, 700))
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "n": n,
        "batch_sizes": (draw(st.integers(1, 900)), draw(st.integers(1, 900))),
        "to_file": draw(st.booleans()),
        "m": draw(st.integers(1, max(1, n - 1))),
    }


@pytest.mark.parametrize("name", [*MODELS, "wgan_counts"])
@settings(SETTINGS, max_examples=10)
@given(plan=generation_plans())
def test_generation_is_the_same_however_batched_or_written(name, plan, models, tmp_path_factory):
    model = models[name]
    options = _few_steps(model)
    seed, n, (b1, b2) = plan["seed"], plan["n"], plan["batch_sizes"]
    first = model.generate(n, seed=seed, batch_size=b1, **options)
    assert first.shape == (n, BASE.n_vars)
    filename = tmp_path_factory.mktemp("gen") / "s.h5ad" if plan["to_file"] else None
    second = model.generate(n, seed=seed, batch_size=b2, filename=filename, **options)
    try:
        _same(_dense(second.X[:]), first.X)
        pd.testing.assert_frame_equal(second.obs, first.obs)
    finally:
        if filename is not None:
            second.file.close()
    if n > 1:  # a sample does not depend on how many are drawn after it
        m = plan["m"]
        prefix = model.generate(m, seed=seed, batch_size=b2, **options)
        _same(prefix.X, first.X[:m])
        pd.testing.assert_frame_equal(prefix.obs, first.obs.iloc[:m])


# == 6. category dtypes ===========================================================================
@st.composite
def category_columns(draw):
    spelling = draw(st.sampled_from(["text", "integers", "number strings"]))
    kind = draw(st.sampled_from(["categorical", "plain"]))
    n_unused = draw(st.integers(0, 2)) if kind == "categorical" else 0
    size = 3 + n_unused
    if spelling == "text":
        labels = draw(
            st.lists(st.text(min_size=1, max_size=8), min_size=size, max_size=size, unique=True)
        )
    else:
        numbers = draw(
            st.lists(st.integers(-(10**6), 10**6), min_size=size, max_size=size, unique=True)
        )
        labels = numbers if spelling == "integers" else [str(v) for v in numbers]
    used, unused = labels[:3], labels[3:]
    order = draw(st.permutations(labels))
    ordered = kind == "categorical" and draw(st.booleans())
    values = np.array([used[TISSUES.index(t)] for t in BASE.obs["tissue"]], dtype=object)
    if spelling == "integers":
        values = values.astype(np.int64)
    column = (
        pd.Categorical(values, categories=order, ordered=ordered)
        if kind == "categorical"
        else values
    )
    return {"spelling": spelling, "kind": kind, "used": used, "unused": unused, "column": column}


def _other_spelling(label, spelling: str):
    if spelling == "integers":
        return str(label)
    if spelling == "number strings":
        return int(label)
    return label


@settings(SETTINGS, max_examples=40)
@given(case=category_columns(), name=st.sampled_from(MODELS))
def test_every_trained_category_generates_and_is_labelled_right(
    case, name, snapshot, sgs_logs, tmp_path_factory
):
    adata = BASE.copy()
    adata.obs["tissue"] = case["column"]
    snap = snapshot(adata)
    with sgs_logs() as logs:
        model = _succeeds(
            lambda: sgs.tl.train(
                adata, name, categorical_covariate_keys=["tissue"], **_options(name)
            ),
            f"training on {case['kind']} labels",
        )
    snap.assert_unchanged(adata, new_uns=(name,))
    known = model.categories["tissue"]
    assert sorted(map(str, known)) == sorted(map(str, case["used"]))
    if case["spelling"] == "integers":  # numbers stay numbers
        assert all(isinstance(c, int | np.integer) for c in known), known
    if case["unused"]:
        warned = [r.getMessage() for r in logs if r.levelname == "WARNING"]
        assert any(f"has {len(case['unused'])} categor" in w for w in warned), warned
    folder = tmp_path_factory.mktemp("categories")
    model.save(folder)
    loaded = sgs.model.load_model(folder, adata=adata)
    real, labels = np.asarray(adata.X), np.asarray(case["column"], dtype=object)
    for label in case["used"]:
        samples = []
        for asked in (label, _other_spelling(label, case["spelling"])):
            for generator in (model, loaded):
                out = generator.generate(6, {"tissue": asked}, seed=3)
                assert [str(v) for v in out.obs["tissue"]] == [str(label)] * 6
                assert out.obs["tissue"].iloc[0] == label  # the trained label, its kind kept
                samples.append(np.asarray(out.X))
        for other in samples[1:]:
            _same(other, samples[0])
        if name == "noise":  # real samples plus noise: each is nearest a real one of its label
            nearest = ((samples[0][:, None, :] - real[None]) ** 2).sum(-1).argmin(1)
            assert (labels[nearest] == label).mean() >= 0.8, labels[nearest]
    for label in case["unused"]:
        out, err = _attempt(lambda label=label: model.generate(3, {"tissue": label}, seed=0))
        assert err is not None, f"an unused category {label!r} was generated"
        _message_is_a_sentence(err)


# == 7. damaged model files =======================================================================
LOADED = [*MODELS, "tspg"]


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "str", list: "list", dict: "dict"}[type(value)]


#: a value of each JSON kind, to put where another kind belongs
OF_KIND = {
    "str": "damaged",
    "number": 7,
    "bool": True,
    "list": [1, "a"],
    "dict": {"a": 1},
    "null": None,
}


def _paths(value, prefix=(), depth: int = 5):
    """Paths to every entry of a JSON value (the first 3 items of a list)."""
    if depth == 0:
        return
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value[:3])
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key), depth - 1)


@pytest.fixture(scope="module")
def headers(saved, safetensors_header):
    """Per saved model: its folder, header, weights bytes, metadata and damageable paths."""
    out = {}
    for name in LOADED:
        header, data = safetensors_header.read(saved[name] / "model.safetensors")
        metadata = json.loads(header["__metadata__"]["sgs_metadata"])
        paths = list(_paths(metadata))
        out[name] = {
            "folder": saved[name],
            "header": header,
            "data": data,
            "write": safetensors_header.write,
            "metadata": metadata,
            "top": [p for p in paths if len(p) == 1 or (len(p) == 2 and p[0] == "attributes")],
            "nested": [p for p in paths if len(p) > 2 and p[0] == "attributes"],
        }
    return out


def _damages(original, in_dict: bool, nested: bool) -> list[str]:
    kind = _json_kind(original)
    out = ["delete"] if in_dict else []
    for other in OF_KIND:
        if other == kind or (nested and kind == "list" and other == "str"):
            continue  # (a text can stand for a one-entry list of names)
        out.append(f"as {other}")
    if kind in ("list", "dict") and original:
        out.append("emptied")
    return out


def _damaged_copy(info, path, damage, folder: Path) -> None:
    metadata = copy.deepcopy(info["metadata"])
    parent = metadata
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if damage == "delete":
        del parent[last]
    elif damage == "emptied":
        parent[last] = type(parent[last])()
    else:
        parent[last] = copy.deepcopy(OF_KIND[damage.removeprefix("as ")])
    header = copy.deepcopy(info["header"])
    header["__metadata__"]["sgs_metadata"] = json.dumps(metadata)
    folder.mkdir()
    info["write"](folder / "model.safetensors", header, info["data"])


def _load_and_use(name: str, folder: Path, loader: str) -> None:
    """Load a damaged file: a ModelFileError naming it, or a model that works."""

    def load():
        if loader == "load_model":
            return sgs.model.load_model(folder, adata=BASE)
        klass = sgs.model.TSPG if name == "tspg" else sgs.model.get_model_class(name)
        return klass.load(folder, adata=BASE)

    model, err = _attempt(load)
    if err is not None:
        assert isinstance(err, ModelFileError), (
            f"{type(err).__name__}, not a ModelFileError, for a damaged file: {err}"
        )
        _message_is_a_sentence(err, re.escape(str(folder)))
        return
    # accepted: then the damage was harmless, and the model must work
    out = _succeeds(lambda: _samples(model, n=5), "the model loaded from a damaged file")
    assert np.isfinite(out).all(), "a damaged file loaded, and gives non-finite values"


LOADERS = st.sampled_from(["load_model", "Class.load"])


@pytest.mark.parametrize("name", LOADED)
@settings(SETTINGS, max_examples=80)
@given(data=st.data(), loader=LOADERS)
def test_a_damaged_header_field_gives_a_model_file_error(
    name, data, loader, headers, tmp_path_factory
):
    info = headers[name]
    folder = tmp_path_factory.mktemp("damaged") / "model"
    where = data.draw(st.sampled_from(["field", "metadata", "header"]), label="where")
    if where == "field":
        path = data.draw(st.sampled_from(info["top"]), label="field")
        parent = info["metadata"] if len(path) == 1 else info["metadata"]["attributes"]
        damage = data.draw(
            st.sampled_from(_damages(parent[path[-1]], True, False)), label="damage"
        )
        _damaged_copy(info, path, damage, folder)
    else:
        header = copy.deepcopy(info["header"])
        text = header["__metadata__"]["sgs_metadata"]
        if where == "metadata":  # the model's JSON: truncated, or not an object at all
            cut = data.draw(st.integers(0, len(text) - 1), label="cut")
            replacement = data.draw(
                st.sampled_from([text[:cut], "[1, 2]", "5", "null", '"text"', "{}"]),
                label="metadata",
            )
            header["__metadata__"]["sgs_metadata"] = replacement
        folder.mkdir()
        info["write"](folder / "model.safetensors", header, info["data"])
        if where == "header":  # the safetensors header itself cut short or garbled
            raw = (folder / "model.safetensors").read_bytes()
            (n,) = struct.unpack("<Q", raw[:8])
            cut = data.draw(st.integers(0, 8 + n - 1), label="cut")
            garble = data.draw(st.booleans(), label="garble")
            raw = raw[:cut] + (b"\xff{]" * 3 + raw[cut + 9 :] if garble else b"")
            (folder / "model.safetensors").write_bytes(raw)
    _load_and_use(name, folder, loader)


@pytest.mark.parametrize("name", LOADED)
@settings(SETTINGS, max_examples=80)
@given(data=st.data(), loader=LOADERS)
def test_a_damaged_nested_entry_gives_a_model_file_error(
    name, data, loader, headers, tmp_path_factory
):
    info = headers[name]
    candidates = []
    for path in info["nested"]:
        parent = info["metadata"]
        for key in path[:-1]:
            parent = parent[key]
        if parent[path[-1]] is not None:  # a null is an unset option: any value may fill it
            candidates.append(path)
    path = data.draw(st.sampled_from(candidates), label="entry")
    parent = info["metadata"]
    for key in path[:-1]:
        parent = parent[key]
    damages = _damages(parent[path[-1]], isinstance(parent, dict), True)
    damage = data.draw(st.sampled_from(damages), label="damage")
    folder = tmp_path_factory.mktemp("damaged") / "model"
    _damaged_copy(info, path, damage, folder)
    _load_and_use(name, folder, loader)
