"""Model files: safetensors + JSON, never unpickled; checked class and version; atomic save."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import scgensynth as sgs
from scgensynth.model.base import _files
from scgensynth.model.base._files import ModelFileError, decode, encode

MODELS = ["wgan", "gan", "attgan", "randattgan", "cvae", "ddpm", "gmda", "noise"]


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
    """One briefly trained model of every class, by registry name (plus "tspg")."""
    out = {}
    for name in MODELS:
        kwargs = {} if name == "noise" else {"n_steps": 6, "enable_progress_bar": False}
        out[name] = sgs.tl.train(
            small,
            name,
            categorical_covariate_keys=["tissue"],
            continuous_covariate_keys=None if name == "noise" else ["age"],
            seed=0,
            **kwargs,
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
    if type(model).__name__ == "NoiseAugmenter":
        covariates = covariates[["tissue"]]
    return sgs.tl.generate(model, covariates=covariates, seed=7).X


# -- safetensors header surgery -------------------------------------------------------------------
def _read_header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _write_header(path: Path, header: dict, data: bytes) -> None:
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def _tamper(path: Path, change) -> None:
    header, data = _read_header(path)
    metadata = json.loads(header["__metadata__"]["sgs_metadata"])
    change(metadata)
    header["__metadata__"]["sgs_metadata"] = json.dumps(metadata)
    _write_header(path, header, data)


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


def test_metadata_cannot_name_objects_to_build(saved_wgan, small):
    path = saved_wgan / "model.safetensors"
    _tamper(path, lambda m: m["attributes"].update({"evil_": {"__sgs_object__": "os.system"}}))
    with pytest.raises(ModelFileError, match="unknown tag '__sgs_object__'"):
        sgs.model.load_model(saved_wgan, adata=small)


def test_object_arrays_are_refused(saved_wgan, small):
    path = saved_wgan / "model.safetensors"
    spec = {"__sgs_ndarray__": {"dtype": "|O", "shape": [1], "data": ["x"]}}
    _tamper(path, lambda m: m["attributes"].update({"evil_": spec}))
    with pytest.raises(ModelFileError, match="dtype"):
        sgs.model.load_model(saved_wgan, adata=small)


# -- checked class, versions and contents ---------------------------------------------------------
def test_another_class_is_refused_by_name(trained, small, tmp_path):
    trained["ddpm"].save(tmp_path / "ddpm")
    with pytest.raises(ModelFileError, match="holds a 'DDPM' model, not a WGANGP"):
        sgs.model.WGANGP.load(tmp_path / "ddpm", adata=small)


def test_an_unknown_class_is_refused(saved_wgan, small):
    _tamper(saved_wgan / "model.safetensors", lambda m: m.update({"class": "Popen"}))
    with pytest.raises(ModelFileError, match="'Popen' model, which is not a scgensynth"):
        sgs.model.load_model(saved_wgan, adata=small)


@pytest.mark.parametrize(
    ("saved", "message"),
    [("99.0.0", "newer than the installed"), ("0.0.3", "does not read")],
)
def test_files_from_other_releases_are_refused(saved, message, saved_wgan, small):
    _tamper(saved_wgan / "model.safetensors", lambda m: m.update({"scgensynth_version": saved}))
    with pytest.raises(ModelFileError, match=message):
        sgs.model.load_model(saved_wgan, adata=small)


def test_version_rules():
    _files.check_versions("0.1.0", "0.1.3", "f")  # older patch release of the same series
    _files.check_versions("1.2.0", "1.5.0.dev3", "f")
    with pytest.raises(ModelFileError, match="newer"):
        _files.check_versions("0.1.4", "0.1.3", "f")
    with pytest.raises(ModelFileError, match="does not read"):
        _files.check_versions("1.9.0", "2.0.0", "f")


def test_another_format_version_is_refused(saved_wgan, small):
    _tamper(saved_wgan / "model.safetensors", lambda m: m.update({"format_version": 2}))
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


def test_weights_that_do_not_fit_are_refused(saved_wgan, small):
    path = saved_wgan / "model.safetensors"
    _tamper(path, lambda m: m["attributes"]["init_params_"]["non_kwargs"].update({"n_latent": 3}))
    with pytest.raises(ModelFileError, match="weights do not fit"):
        sgs.model.load_model(saved_wgan, adata=small)


def test_other_genes_are_refused(saved_wgan, small):
    with pytest.raises(ValueError, match="genes differ"):
        sgs.model.load_model(saved_wgan, adata=small[:, ::-1].copy())


def test_missing_files_and_adata(saved_wgan, small, tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        sgs.model.load_model(tmp_path / "nothing", adata=small)
    with pytest.raises(ValueError, match="Pass the AnnData"):
        sgs.model.WGANGP.load(saved_wgan)


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
