"""Model files: safetensors + JSON, never unpickled; checked class and version; atomic save."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import scgensynth as sgs
from scgensynth.model import ModelFileError
from scgensynth.model.base import _files
from scgensynth.model.base._files import decode, encode

MODELS = list(sgs.model.available().index)
RUN = {"n_steps": 6, "enable_progress_bar": False}


@pytest.fixture(scope="module")
def small():
    """GTEx restricted to 5 tissues and 80 genes, with a numeric covariate."""
    adata = sgs.datasets.gtex_tissues()
    keep = adata.obs["tissue"].isin(["Liver", "Lung", "Brain", "Blood", "Testis"]).to_numpy()
    adata = adata[keep, :80].copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.remove_unused_categories()
    adata.obs["age"] = np.linspace(20.0, 70.0, adata.n_obs)
    return adata


@pytest.fixture(scope="module")
def trained(small):
    """One briefly trained small model of every class, by registry name (plus "tspg")."""
    out = {}
    for name in MODELS:
        cls = sgs.model.get_model_class(name)
        # a model without a training plan (the noise baseline) learns nothing: no run to shorten
        run = {} if cls._training_plan_cls is None else RUN
        out[name] = sgs.tl.train(
            small,
            name,
            categorical_covariate_keys=["tissue"],
            continuous_covariate_keys=["age"],
            seed=0,
            **run,
            **cls.quick_kwargs,
        )
    out["tspg"] = sgs.tl.train_tspg(
        small, "tissue", n_steps=4, classifier_steps=4, enable_progress_bar=False
    )
    return out


def _outputs(model, adata):
    if isinstance(model, sgs.model.TSPG):
        return sgs.tl.perturb(adata[:6], model, target="Liver").X
    covariates = pd.DataFrame(
        {"tissue": ["Liver", "Lung", "Brain"] * 3, "age": np.linspace(25.0, 65.0, 9)}
    )
    return sgs.tl.generate(model, covariates=covariates, seed=7).X


# -- safetensors header surgery -------------------------------------------------------------------
@pytest.fixture
def tamper(safetensors_header):
    """Change a saved model file's metadata in place: ``tamper(path, change)``."""

    def change_metadata(path: Path, change) -> None:
        header, data = safetensors_header.read(path)
        metadata = json.loads(header["__metadata__"]["sgs_metadata"])
        change(metadata)
        header["__metadata__"]["sgs_metadata"] = json.dumps(metadata)
        safetensors_header.write(path, header, data)

    return change_metadata


@pytest.fixture
def saved_wgan(trained, tmp_path):
    folder = tmp_path / "wgan"
    trained["wgan"].save(folder)
    return folder


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*MODELS, "tspg"])
def test_every_model_round_trips_through_one_safetensors_file(name, trained, small, tmp_path):
    model = trained[name]
    model.save(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["model.safetensors"]
    loaded = sgs.model.load_model(tmp_path / name, adata=small)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(_outputs(loaded, small), _outputs(model, small))
    for key, value in model.module.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[key], value, rtol=0, atol=0)
    assert loaded.is_trained_


def test_fitted_attributes_keep_their_types(trained, small, tmp_path):
    model = trained["wgan"]
    model.save(tmp_path / "m")
    loaded = sgs.model.WGANGP.load(tmp_path / "m", adata=small)
    assert loaded.scaling_ == model.scaling_
    assert set(loaded.history_) == set(model.history_)
    for key, frame in model.history_.items():
        pd.testing.assert_frame_equal(loaded.history_[key], frame)
    pd.testing.assert_frame_equal(loaded.covariates_, model.covariates_)
    np.testing.assert_array_equal(loaded.train_indices_, model.train_indices_)
    assert loaded.init_params_ == model.init_params_


def test_the_users_anndata_is_not_modified_by_load(saved_wgan, small, snapshot):
    adata = small.copy()
    snap = snapshot(adata)
    sgs.model.WGANGP.load(saved_wgan, adata=adata)
    snap.assert_unchanged(adata)


def test_saving_with_a_prefix_and_the_training_data(trained, small, tmp_path):
    trained["ddpm"].save(tmp_path, prefix="run1_", save_anndata=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run1_adata.h5ad",
        "run1_model.safetensors",
    ]
    loaded = sgs.model.load_model(tmp_path, adata=small, prefix="run1_")
    np.testing.assert_array_equal(_outputs(loaded, small), _outputs(trained["ddpm"], small))


# -- nothing in a file runs -----------------------------------------------------------------------
class _Payload:
    """Unpickling this creates a file: proof that the unpickler ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickle_payload(path: Path, marker: Path) -> None:
    torch.save({"model_state_dict": {}, "attr_dict": _Payload(marker)}, path)


def test_the_payload_is_live(tmp_path):
    # the check the tests below rely on: unpickling this file does run code
    marker = tmp_path / "ran"
    _pickle_payload(tmp_path / "model.pt", marker)
    torch.load(tmp_path / "model.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    "load",
    [
        lambda d, a: sgs.model.load_model(d, adata=a),
        lambda d, a: sgs.model.WGANGP.load(d, adata=a),
        lambda d, a: sgs.model.TSPG.load(d, adata=a),
        lambda d, a: sgs.model.WGANGP.load_registry(d),
    ],
    ids=["load_model", "WGANGP.load", "TSPG.load", "load_registry"],
)
def test_a_pickle_model_file_is_refused_without_running(load, small, tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "model"
    folder.mkdir()
    _pickle_payload(folder / "model.pt", marker)
    with pytest.raises(ModelFileError, match="pickle"):
        load(folder, small)
    assert not marker.exists()


def test_a_pickle_renamed_to_safetensors_is_refused_without_running(small, tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "model"
    folder.mkdir()
    _pickle_payload(folder / "model.safetensors", marker)
    with pytest.raises(ModelFileError, match="not a readable model file"):
        sgs.model.load_model(folder, adata=small)
    assert not marker.exists()


def test_the_command_line_refuses_a_pickle(small, tmp_path, capsys):
    from scgensynth.cli import main

    marker = tmp_path / "ran"
    folder = tmp_path / "model"
    folder.mkdir()
    _pickle_payload(folder / "model.pt", marker)
    data = tmp_path / "data.h5ad"
    small.write_h5ad(data)
    out = str(tmp_path / "o.h5ad")
    code = main(["generate", str(folder), "--adata", str(data), "--n-obs", "5", "--out", out])
    assert code != 0
    assert "pickle" in capsys.readouterr().err
    assert not marker.exists()


def test_metadata_cannot_name_objects_to_build(saved_wgan, small, tamper):
    path = saved_wgan / "model.safetensors"
    tamper(path, lambda m: m["attributes"].update({"evil_": {"__sgs_object__": "os.system"}}))
    with pytest.raises(ModelFileError, match="unknown tag '__sgs_object__'"):
        sgs.model.load_model(saved_wgan, adata=small)


def test_object_arrays_are_refused(saved_wgan, small, tamper):
    path = saved_wgan / "model.safetensors"
    spec = {"__sgs_ndarray__": {"dtype": "|O", "shape": [1], "data": ["x"]}}
    tamper(path, lambda m: m["attributes"].update({"evil_": spec}))
    with pytest.raises(ModelFileError, match="dtype"):
        sgs.model.load_model(saved_wgan, adata=small)


# -- checked class, versions and contents ---------------------------------------------------------
def test_another_class_is_refused_by_name(trained, small, tmp_path):
    trained["ddpm"].save(tmp_path / "ddpm")
    with pytest.raises(ModelFileError, match="holds a 'DDPM' model, not a WGANGP"):
        sgs.model.WGANGP.load(tmp_path / "ddpm", adata=small)


def test_an_unknown_class_is_refused(saved_wgan, small, tamper):
    tamper(saved_wgan / "model.safetensors", lambda m: m.update({"class": "Popen"}))
    with pytest.raises(ModelFileError, match="'Popen' model, which is not a scgensynth"):
        sgs.model.load_model(saved_wgan, adata=small)


@pytest.mark.parametrize(
    ("saved", "message"),
    [("99.0.0", "newer than the installed"), ("0.0.3", "does not read")],
)
def test_files_from_other_releases_are_refused(saved, message, saved_wgan, small, tamper):
    tamper(saved_wgan / "model.safetensors", lambda m: m.update({"scgensynth_version": saved}))
    with pytest.raises(ModelFileError, match=message):
        sgs.model.load_model(saved_wgan, adata=small)


def test_version_rules():
    _files.check_versions("0.1.0", "0.1.3", "f")  # older patch release of the same series
    _files.check_versions("1.2.0", "1.5.0.dev3", "f")
    with pytest.raises(ModelFileError, match="newer"):
        _files.check_versions("0.1.4", "0.1.3", "f")
    with pytest.raises(ModelFileError, match="does not read"):
        _files.check_versions("1.9.0", "2.0.0", "f")


def test_another_format_version_is_refused(saved_wgan, small, tamper):
    tamper(saved_wgan / "model.safetensors", lambda m: m.update({"format_version": 2}))
    with pytest.raises(ModelFileError, match="format version 2"):
        sgs.model.load_model(saved_wgan, adata=small)


def test_a_foreign_safetensors_file_is_refused(small, tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    with pytest.raises(ModelFileError, match="not a scgensynth model"):
        sgs.model.load_model(tmp_path, adata=small)


def test_a_truncated_file_is_refused(saved_wgan, small):
    path = saved_wgan / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="not a readable model file"):
        sgs.model.load_model(saved_wgan, adata=small)


def test_weights_that_do_not_fit_are_refused(saved_wgan, small, tamper):
    path = saved_wgan / "model.safetensors"
    tamper(path, lambda m: m["attributes"]["init_params_"]["non_kwargs"].update({"n_latent": 3}))
    with pytest.raises(ModelFileError, match="weights do not fit"):
        sgs.model.load_model(saved_wgan, adata=small)


def test_other_genes_are_refused(saved_wgan, small):
    with pytest.raises(ValueError, match="genes differ"):
        sgs.model.load_model(saved_wgan, adata=small[:, ::-1].copy())


def test_missing_files_and_adata(saved_wgan, small, tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        sgs.model.load_model(tmp_path / "nothing", adata=small)
    alone = sgs.model.WGANGP.load(saved_wgan)  # a generator loads without its data
    with_data = sgs.model.WGANGP.load(saved_wgan, adata=small)
    np.testing.assert_array_equal(alone.generate(5, seed=0).X, with_data.generate(5, seed=0).X)


# -- atomic save ----------------------------------------------------------------------------------
def test_a_crash_while_saving_leaves_the_previous_model(trained, small, saved_wgan, monkeypatch):
    before = (saved_wgan / "model.safetensors").read_bytes()
    import safetensors.torch

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        trained["gan"].save(saved_wgan, overwrite=True)
    assert sorted(p.name for p in saved_wgan.iterdir()) == ["model.safetensors"]  # no debris
    assert (saved_wgan / "model.safetensors").read_bytes() == before
    assert type(sgs.model.load_model(saved_wgan, adata=small)).__name__ == "WGANGP"


def test_an_existing_model_is_kept_unless_overwrite(trained, small, saved_wgan):
    (saved_wgan / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trained["gan"].save(saved_wgan)
    trained["gan"].save(saved_wgan, overwrite=True)
    assert type(sgs.model.load_model(saved_wgan, adata=small)).__name__ == "GAN"
    assert (saved_wgan / "notes.txt").read_text() == "mine"


# -- the JSON codec -------------------------------------------------------------------------------
def test_codec_round_trips_what_models_hold():
    frame = pd.DataFrame(
        {
            "tissue": pd.Categorical(["b", "a", "b"], categories=["b", "a"]),
            "age": [1.5, np.nan, 3.0],
            "n": np.array([1, 2, 3], dtype=np.int64),
            "flag": [True, False, True],
            "name": ["x", "y", None],
        },
        index=pd.Index(["s1", "s2", "s3"], name="sample"),
    )
    value = {
        "frame": frame,
        "series": pd.Series(np.arange(3, dtype=np.float32), index=[10, 20, 30], name="loss"),
        "array": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "strings": np.array(["a", "b"], dtype=object),
        "tuple": (1, (2.0, "3")),
        "int_keys": {0: "a", 1: "b"},
        "special": [float("nan"), float("inf"), -float("inf"), np.float32(0.1), None, True],
    }
    out = decode(json.loads(json.dumps(encode(value), allow_nan=False)))
    pd.testing.assert_frame_equal(out["frame"], frame)
    pd.testing.assert_series_equal(out["series"], value["series"])
    np.testing.assert_array_equal(out["array"], value["array"])
    assert out["array"].dtype == np.float32
    assert out["strings"].tolist() == ["a", "b"]
    assert out["tuple"] == (1, (2.0, "3"))
    assert out["int_keys"] == {0: "a", 1: "b"}
    assert np.isnan(out["special"][0])
    assert out["special"][1:] == [float("inf"), -float("inf"), float(np.float32(0.1)), None, True]


def test_codec_refuses_what_it_cannot_store_safely():
    with pytest.raises(TypeError, match=r"model\.thing_ of type function"):
        encode(lambda: None, "model.thing_")
    with pytest.raises(TypeError, match="object array"):
        encode(np.array([object()], dtype=object), "a")
    with pytest.raises(TypeError, match="Cannot save"):
        encode({"x": pickle}, "m")


# -- never lose what the user had (issue 17) ------------------------------------------------------
@pytest.mark.parametrize("already", ["adata.h5ad", "model.safetensors", "both"])
def test_save_anndata_refuses_an_existing_file_before_writing_anything(already, trained, tmp_path):
    names = ["adata.h5ad", "model.safetensors"] if already == "both" else [already]
    for name in names:
        (tmp_path / name).write_bytes(b"the user's " + name.encode())
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        trained["wgan"].save(tmp_path, save_anndata=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # nothing new
    for name in names:
        assert (tmp_path / name).read_bytes() == b"the user's " + name.encode()


def test_save_anndata_replaces_both_files_with_overwrite(trained, small, tmp_path):
    (tmp_path / "adata.h5ad").write_bytes(b"old")
    trained["wgan"].save(tmp_path, save_anndata=True, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adata.h5ad", "model.safetensors"]
    import anndata as ad

    assert ad.read_h5ad(tmp_path / "adata.h5ad").shape == small.shape


def test_the_training_data_is_written_atomically(trained, tmp_path, monkeypatch):
    import anndata as ad

    (tmp_path / "adata.h5ad").write_bytes(b"the user's data")

    def crash(self, filename, **kwargs):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ad.AnnData, "write_h5ad", crash)
    with pytest.raises(KeyboardInterrupt):
        trained["wgan"].save(tmp_path, save_anndata=True, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adata.h5ad"]  # no debris
    assert (tmp_path / "adata.h5ad").read_bytes() == b"the user's data"


def test_saving_into_a_file_says_so(trained, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"mine")
    with pytest.raises(NotADirectoryError, match=r"dir_path .* is a file; give a folder"):
        trained["wgan"].save(path)
    with pytest.raises(NotADirectoryError, match=r"model\.safetensors is a file, not a folder"):
        trained["wgan"].save(path / "below")
    assert path.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def _deny_writing(monkeypatch, folder: Path) -> None:
    """Make ``folder`` read-only, also for root (for whom os.access says yes to anything)."""
    import os

    folder.chmod(0o555)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() == folder.resolve():
            return False
        return real_access(path, mode, *args, **kwargs)

    if os.geteuid() == 0:
        monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("where", ["folder", "subfolder"])
def test_saving_into_a_read_only_folder_says_so(where, trained, tmp_path, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    _deny_writing(monkeypatch, folder)
    target = folder if where == "folder" else folder / "new"
    try:
        with pytest.raises(PermissionError, match=r"'.*read-only' is not writable by this user"):
            trained["wgan"].save(target)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_get_the_usual_permissions(umask, trained, tmp_path):
    import os
    import stat

    from scgensynth._utils._files import atomic_write

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    old = os.umask(umask)
    try:
        trained["wgan"].save(tmp_path / "m", save_anndata=True)
        atomic_write(tmp_path / "other.bin", lambda tmp: Path(tmp).write_bytes(b"x"))
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert mode(tmp_path / "m" / "model.safetensors") == expected
    assert mode(tmp_path / "m" / "adata.h5ad") == expected
    assert mode(tmp_path / "other.bin") == expected
    # replacing a file keeps its permissions
    (tmp_path / "m" / "model.safetensors").chmod(0o640)
    old = os.umask(umask)
    try:
        trained["gan"].save(tmp_path / "m", overwrite=True)
    finally:
        os.umask(old)
    assert mode(tmp_path / "m" / "model.safetensors") == 0o640


def test_an_unreadable_model_file_is_not_called_damaged(saved_wgan, small, monkeypatch):
    import os

    import safetensors

    if os.geteuid() != 0:  # a real unreadable file (root reads anything)
        path = saved_wgan / "model.safetensors"
        path.chmod(0)
        try:
            with pytest.raises(PermissionError, match=r"not readable by this user") as err:
                sgs.model.load_model(saved_wgan, adata=small)
            assert "damaged" not in str(err.value)
        finally:
            path.chmod(0o644)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safetensors, "safe_open", denied)
    for load in (sgs.model.load_model, sgs.model.WGANGP.load):
        with pytest.raises(
            PermissionError, match=r"not readable by this user \(permission denied\)"
        ) as err:
            load(saved_wgan, adata=small)
        assert "damaged" not in str(err.value)


_KILLED_SAVE = """
import os, sys
import safetensors.torch
import torch

def save_file(tensors, filename, metadata=None):
    with open(filename, "wb") as handle:
        handle.write(b"half a file")
        handle.flush()
    os.kill(os.getpid(), 9)

safetensors.torch.save_file = save_file
from scgensynth.model.base._files import write_model_file

write_model_file(sys.argv[1], {"w": torch.zeros(2)}, {"format_version": 1}, overwrite=True)
"""


def test_a_killed_save_leaves_a_temporary_the_next_save_removes(trained, small, saved_wgan):
    import subprocess
    import sys

    before = (saved_wgan / "model.safetensors").read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_SAVE, str(saved_wgan)], capture_output=True, timeout=300
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    debris = [p.name for p in saved_wgan.iterdir() if p.name.endswith(".tmp")]
    assert len(debris) == 1, sorted(p.name for p in saved_wgan.iterdir())
    assert (saved_wgan / "model.safetensors").read_bytes() == before  # the old model is intact
    trained["gan"].save(saved_wgan, overwrite=True)
    assert sorted(p.name for p in saved_wgan.iterdir()) == ["model.safetensors"]
    assert type(sgs.model.load_model(saved_wgan, adata=small)).__name__ == "GAN"


def test_temporaries_of_running_saves_and_other_machines_are_kept(trained, tmp_path):
    import os
    import subprocess
    import sys
    import time

    from scgensynth._utils._files import _owner_token

    owner = _owner_token()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        names = {
            "live": f".model.safetensors.{owner}.{running.pid}.0123abcd.tmp",
            "mine": f".model.safetensors.{owner}.{os.getpid()}.0123abcd.tmp",
            "dead": f".model.safetensors.{owner}.{dead.pid}.0123abcd.tmp",
            "elsewhere": f".model.safetensors.otherhost-1.{dead.pid}.0123abcd.tmp",
            "old_legacy": ".model.safetensors.ab_cd9xy.tmp",
            "new_legacy": ".model.safetensors.zz_cd9xy.tmp",
            "other_file": f".adata.h5ad.{owner}.{dead.pid}.0123abcd.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        hours_ago = time.time() - 2 * 3600
        os.utime(tmp_path / names["old_legacy"], (hours_ago, hours_ago))
        trained["wgan"].save(tmp_path)
        left = {p.name for p in tmp_path.iterdir()}
    finally:
        running.kill()
        running.wait()
    gone = {"dead", "old_legacy"}
    assert left == {"model.safetensors"} | {n for k, n in names.items() if k not in gone}


# -- damaged headers: a ModelFileError naming the field, never a TypeError deep inside ------------
def _delete(*keys):
    def change(m):
        target = m
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _set(*keys, value):
    def change(m):
        target = m
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _shorten_var_names(m):
    m["var_names"] = m["var_names"][:-1]


def _unknown_init_argument(m):
    m["attributes"]["init_params_"]["non_kwargs"]["bogus"] = 1


def _unknown_setup_argument(m):
    m["attributes"]["registry_"]["setup_args"]["bogus"] = 1


def _scaling_without_mode(m):
    del m["attributes"]["scaling_"]["mode"]


_INDICES_OUT_OF_RANGE = {"__sgs_ndarray__": {"dtype": "<i8", "shape": [1], "data": [10**6]}}

DAMAGES = {
    "class unknown": (_set("class", value="Popen"), "'class'"),
    "class a number": (_set("class", value=5), "'class'"),
    "class a list": (_set("class", value=["WGANGP"]), "'class'"),
    "class null": (_set("class", value=None), "'class'"),
    "class missing": (_delete("class"), "lacks 'class'"),
    "format_version a string": (_set("format_version", value="1"), "'format_version'"),
    "format_version true": (_set("format_version", value=True), "'format_version'"),
    "version a number": (_set("scgensynth_version", value=5), "'scgensynth_version'"),
    "version a list": (_set("scgensynth_version", value=["0.1"]), "'scgensynth_version'"),
    "version missing": (_delete("scgensynth_version"), "lacks 'scgensynth_version'"),
    "scvi version": (_set("scvi_tools_version", value=1.4), "'scvi_tools_version'"),
    "torch version": (_set("torch_version", value={}), "'torch_version'"),
    "var_names a string": (_set("var_names", value="entrez_1"), "'var_names'"),
    "var_names a dict": (_set("var_names", value={"a": 1}), "'var_names'"),
    "var_names numbers": (_set("var_names", value=list(range(80))), "'var_names'"),
    "var_names too short": (_shorten_var_names, "'var_names'"),
    "var_names repeated": (_set("var_names", value=["entrez_1"] * 80), "'var_names'"),
    "var_names missing": (_delete("var_names"), "lacks 'var_names'"),
    "attributes a list": (_set("attributes", value=[]), "'attributes'"),
    "attributes missing": (_delete("attributes"), "lacks 'attributes'"),
    "attribute not a name": (_set("attributes", "module", value=1), "'attributes.module'"),
    "registry missing": (_delete("attributes", "registry_"), "lacks 'registry_'"),
    "registry a number": (_set("attributes", "registry_", value=5), "'attributes.registry_'"),
    "setup_args a string": (
        _set("attributes", "registry_", "setup_args", value="x"),
        "'attributes.registry_.setup_args'",
    ),
    "setup_args unknown": (_unknown_setup_argument, "'attributes.registry_.setup_args'"),
    "field_registries a list": (
        _set("attributes", "registry_", "field_registries", value=[]),
        "'attributes.registry_.field_registries'",
    ),
    "init_params missing": (_delete("attributes", "init_params_"), "lacks 'init_params_'"),
    "init_params a list": (_set("attributes", "init_params_", value=[]), "'attributes.init_"),
    "non_kwargs a number": (
        _set("attributes", "init_params_", "non_kwargs", value=3),
        "'attributes.init_params_.non_kwargs'",
    ),
    "kwargs of numbers": (
        _set("attributes", "init_params_", "kwargs", value={"a": 3}),
        "'attributes.init_params_.kwargs.a'",
    ),
    "init argument unknown": (_unknown_init_argument, "'attributes.init_params_'"),
    "scaling missing": (_delete("attributes", "scaling_"), "lacks 'scaling_'"),
    "scaling a string": (_set("attributes", "scaling_", value="x"), "'attributes.scaling_'"),
    "scaling without mode": (_scaling_without_mode, "'attributes.scaling_'"),
    "scaling badly tagged": (
        _set("attributes", "scaling_", value={"__sgs_tuple__": 5}),
        "'attributes.scaling_'",
    ),
    "array without data": (
        _set("attributes", "library_size_", value={"__sgs_ndarray__": {"dtype": "<f4"}}),
        "'attributes.library_size_'",
    ),
    "library_size a string": (
        _set("attributes", "library_size_", value="x"),
        "'attributes.library_size_'",
    ),
    "is_trained a string": (
        _set("attributes", "is_trained_", value="yes"),
        "'attributes.is_trained_'",
    ),
    "is_trained missing": (_delete("attributes", "is_trained_"), "lacks 'is_trained_'"),
    "covariates a number": (
        _set("attributes", "covariates_", value=5),
        "'attributes.covariates_'",
    ),
    "indices a string": (
        _set("attributes", "train_indices_", value="x"),
        "'attributes.train_indices_'",
    ),
    "indices out of range": (
        _set("attributes", "train_indices_", value=_INDICES_OUT_OF_RANGE),
        "'attributes.train_indices_'",
    ),
    "history a number": (_set("attributes", "history_", value=5), "'attributes.history_'"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("loader", ["WGANGP.load", "load_model"])
def test_a_damaged_header_field_is_named(damage, loader, saved_wgan, small, tamper):
    change, field = DAMAGES[damage]
    tamper(saved_wgan / "model.safetensors", change)
    load = sgs.model.WGANGP.load if loader == "WGANGP.load" else sgs.model.load_model
    with pytest.raises(ModelFileError) as err:
        load(saved_wgan, adata=small)
    assert field in str(err.value), str(err.value)


def test_read_metadata_checks_the_fields(saved_wgan, tamper):
    from scgensynth.model.base._save import read_metadata

    tamper(saved_wgan / "model.safetensors", _set("class", value=["a", "list"]))
    with pytest.raises(ModelFileError, match="header field 'class' is damaged"):
        read_metadata(saved_wgan)


def test_check_gene_names_refuses_damaged_names(small):
    from scgensynth.model.base._save import check_gene_names

    for saved in ("entrez_1", [1, 2], None, {"a": 1}):
        with pytest.raises(ModelFileError, match="'var_names'"):
            check_gene_names(saved, small)


# -- categories the model was not trained on ------------------------------------------------------
def _with_tissues(small, extra: str):
    """``small``'s genes for its 5 tissues plus the samples of ``extra``."""
    adata = sgs.datasets.gtex_tissues()
    keep = adata.obs["tissue"].isin([*small.obs["tissue"].cat.categories, extra]).to_numpy()
    adata = adata[keep][:, small.var_names].copy()
    adata.obs["age"] = 40.0
    return adata


@pytest.mark.parametrize("name", ["wgan", "tspg"])
def test_unknown_categories_name_the_column_and_the_fix(name, trained, small, tmp_path):
    trained[name].save(tmp_path)
    adata = _with_tissues(small, "Heart")
    assert (adata.obs["tissue"] == "Heart").sum() > 0
    for given in (adata, _as_strings(adata)):
        with pytest.raises(
            ValueError,
            match=r"adata\.obs\['tissue'\] holds 1 category the model was not trained on: "
            r"\['Heart'\] \(\d+ samples\)\. The model knows .*Subset the AnnData",
        ):
            sgs.model.load_model(tmp_path, adata=given)


def _as_strings(adata):
    adata = adata.copy()
    adata.obs["tissue"] = adata.obs["tissue"].astype(str)
    return adata


def test_unused_categories_and_fewer_categories_load(saved_wgan, small):
    adata = small.copy()  # a category no sample has is not an unknown one
    adata.obs["tissue"] = adata.obs["tissue"].cat.add_categories(["Heart", "Skin"])
    assert type(sgs.model.load_model(saved_wgan, adata=adata)).__name__ == "WGANGP"
    fewer = small[small.obs["tissue"].isin(["Liver", "Lung"]).to_numpy()].copy()
    model = sgs.model.load_model(saved_wgan, adata=fewer)
    out = sgs.tl.generate(model, n_obs=4, covariates={"tissue": "Brain", "age": 30.0}, seed=0)
    assert out.shape == (4, small.n_vars)


def test_loading_from_the_model_file_itself_names_the_folder(saved_wgan, small):
    with pytest.raises(
        NotADirectoryError, match=r"is a file; give the folder .* \(here '.*wgan'\)"
    ):
        sgs.model.load_model(saved_wgan / "model.safetensors", adata=small)
