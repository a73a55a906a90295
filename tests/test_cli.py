"""The ``scgensynth`` command line: help, version, demo, train -> generate, errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from importlib.metadata import entry_points, version
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scgensynth as sgs
from scgensynth.cli import main

HEAVY = ("torch", "scvi", "lightning", "scanpy")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )


# -- help and version -------------------------------------------------------------------------
def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: scgensynth")
    for command in ("demo", "train", "generate"):
        assert command in out


@pytest.mark.parametrize("command", ["demo", "train", "generate", "compare"])
def test_subcommand_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: scgensynth {command}" in capsys.readouterr().out


def test_train_help_gives_each_models_own_length(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("ddpm", "gmda"):
        steps = sgs.model.get_model_class(name).default_n_steps
        assert f"{name} {steps}" in out
    assert "--epsilon" in out  # private training is offered


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: scgensynth" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == version("scgensynth") == sgs.__version__


def test_python_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "scgensynth", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scgensynth")


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, scgensynth.cli\nprint([m for m in {HEAVY!r} if m in sys.modules])\n"
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_console_script_help_and_version_load_no_heavy_library():
    """What the installed ``scgensynth`` command runs, for ``--help`` and ``--version``."""
    (script,) = entry_points(group="console_scripts", name="scgensynth")
    assert script.value == "scgensynth.cli:main"
    code = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = entry_points(group='console_scripts', name='scgensynth')\n"
        "main = ep.load()\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "assert main(['--version']) == 0\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# -- demo -------------------------------------------------------------------------------------
def test_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["demo", "--out", str(out), "--n-steps", "150"]) == 0
    printed = capsys.readouterr().out
    assert "Wrote" in printed
    assert "k=5 neighbours and its default MLP classifier" in printed  # settings stated
    # the UMAP of 26 separate tissues: UMAP's "not fully connected" warning is not shown
    assert not [w for w in caught if "not fully connected" in str(w.message)]

    results = json.loads((out / "results.json").read_text())
    assert set(results) == {
        "scgensynth_demo", "n_train", "n_test", "n_synthetic", "metrics",
        "counterfactual_top50_overlap", "default_generator_metrics",
    }  # fmt: skip
    assert results["scgensynth_demo"] == sgs.__version__  # marks the folder as the demo's
    assert results["n_train"] + results["n_test"] == 520
    assert results["n_synthetic"] == results["n_train"]
    values = results["metrics"]
    for key in ("precision", "recall", "f1", "coverage", "tstr_macro_f1", "dcr_ratio"):
        assert np.isfinite(values[key]), key
    assert values["trtr_macro_f1"] > 0.9
    assert len([k for k in values if k.startswith("recall[")]) == 26  # per tissue
    default = results["default_generator_metrics"]  # the per-class Gaussian, same split
    assert default["tstr_macro_f1"] > 0.9 * default["trtr_macro_f1"]
    assert 0.8 < default["dcr_ratio"] < 1.25
    report = pd.read_csv(out / "metrics.csv")
    assert set(report["metric"]) >= {"precision", "frechet_distance_pca", "augmentation_gain"}

    synth = ad.read_h5ad(out / "synthetic.h5ad")
    assert synth.shape == (results["n_synthetic"], 467)
    assert set(synth.obs["tissue"]) <= set(sgs.datasets.gtex_tissues().obs["tissue"])
    assert np.isfinite(synth.X).all()

    png = (out / "umap_real_vs_synthetic.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
    assert (out / "model" / "model.safetensors").is_file()
    ranking = pd.read_csv(out / "counterfactual_lung_to_liver.csv")
    assert len(ranking) == 467
    assert (np.diff(ranking["scores"]) <= 0).all()
    assert 0 <= results["counterfactual_top50_overlap"] <= 50
    assert (out / "counterfactual_lung_to_liver.png").read_bytes().startswith(b"\x89PNG")


# -- train -> generate ------------------------------------------------------------------------
TISSUES = ["Liver", "Lung", "Blood", "Testis"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained with ``scgensynth train`` on 4 GTEx tissues (80 samples)."""
    folder = tmp_path_factory.mktemp("cli")
    gtex = sgs.datasets.gtex_tissues()
    small = gtex[gtex.obs["tissue"].isin(TISSUES)].copy()
    small.obs["tissue"] = small.obs["tissue"].cat.remove_unused_categories()
    data = folder / "small.h5ad"
    small.write_h5ad(data)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    model = folder / "model"
    argv = ["train", str(data), "--out", str(model), "--categorical", "tissue"]
    code = main([*argv, "--n-steps", "60", "--batch-size", "16"])
    return {"code": code, "data": data, "model": model, "digest": digest, "adata": small}


def test_train(trained):
    assert trained["code"] == 0
    assert (trained["model"] / "model.safetensors").is_file()
    # the input file is read, never rewritten
    assert hashlib.sha256(trained["data"].read_bytes()).hexdigest() == trained["digest"]


def test_generate_with_fixed_covariates(trained, tmp_path, capsys):
    out = tmp_path / "liver.h5ad"
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    code = main([*argv, "--out", str(out), "--n-obs", "10", "--covariates", "tissue=Liver"])
    assert code == 0
    assert "Wrote 10 synthetic samples" in capsys.readouterr().out
    synth = ad.read_h5ad(out)
    assert synth.n_obs == 10
    assert list(synth.obs.columns) == ["tissue"]
    assert (synth.obs["tissue"] == "Liver").all()
    assert sorted(synth.obs["tissue"].cat.categories) == sorted(TISSUES)
    pd.testing.assert_index_equal(synth.var_names, trained["adata"].var_names)
    assert synth.uns["sgs"]["seed"] == 0
    assert np.isfinite(synth.X).all()


def test_generate_resampling_training_covariates(trained, tmp_path):
    out = tmp_path / "resampled.h5ad"
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    assert main([*argv, "--out", str(out), "--n-obs", "30", "--seed", "4"]) == 0
    synth = ad.read_h5ad(out)
    assert synth.n_obs == 30
    assert set(synth.obs["tissue"]) <= set(TISSUES)
    assert synth.uns["sgs"]["seed"] == 4


def test_generate_from_covariates_csv(trained, tmp_path):
    csv = tmp_path / "covariates.csv"
    pd.DataFrame({"tissue": ["Lung", "Testis", "Lung"]}).to_csv(csv, index=False)
    out = tmp_path / "from_csv.h5ad"
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    assert main([*argv, "--out", str(out), "--covariates-csv", str(csv)]) == 0
    assert ad.read_h5ad(out).obs["tissue"].tolist() == ["Lung", "Testis", "Lung"]


def test_generate_category_that_looks_like_a_number(tmp_path, capsys):
    """``--covariates plate=2`` must find the category '2' (not look for '2.0')."""
    gtex = sgs.datasets.gtex_tissues()[:48].copy()
    gtex.obs["plate"] = pd.Categorical(np.where(np.arange(48) % 2, "1", "2"))
    data = tmp_path / "plates.h5ad"
    gtex.write_h5ad(data)
    model = tmp_path / "model"
    argv = ["train", str(data), "--out", str(model), "--categorical", "plate"]
    assert main([*argv, "--max-epochs", "1", "--batch-size", "16"]) == 0
    out = tmp_path / "plate2.h5ad"
    argv = ["generate", str(model), "--adata", str(data), "--out", str(out)]
    code = main([*argv, "--n-obs", "5", "--covariates", "plate=2"])
    assert code == 0, capsys.readouterr().err
    assert (ad.read_h5ad(out).obs["plate"].astype(str) == "2").all()


def test_train_and_generate_on_a_layer(tmp_path, capsys):
    """``--layer counts`` where X holds centred values: generate must use the layer too."""
    gtex = sgs.datasets.gtex_tissues()[:64].copy()
    gtex.layers["counts"] = np.round(np.expm1(gtex.X))
    gtex.X = gtex.X - gtex.X.mean(0)  # negative values: not counts
    data = tmp_path / "layered.h5ad"
    gtex.write_h5ad(data)
    model = tmp_path / "model"
    argv = ["train", str(data), "--out", str(model), "--layer", "counts", "--categorical"]
    code = main([*argv, "tissue", "--max-epochs", "1", "--batch-size", "16"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "synth.h5ad"
    argv = ["generate", str(model), "--adata", str(data), "--out", str(out), "--n-obs", "8"]
    code = main(argv)
    assert code == 0, capsys.readouterr().err
    synth = ad.read_h5ad(out)
    assert synth.uns["sgs"]["scaling"] == "counts"
    assert synth.uns["sgs"]["counts"] == "sample"  # counts in, integer counts out
    assert synth.X.min() >= 0
    np.testing.assert_array_equal(synth.X, np.round(synth.X))
    # --counts mean: the expected counts, whose totals are the training library sizes
    means = tmp_path / "means.h5ad"
    argv = ["generate", str(model), "--out", str(means), "--n-obs", "8", "--counts", "mean"]
    assert main(argv) == 0, capsys.readouterr().err
    expected = ad.read_h5ad(means)
    assert expected.uns["sgs"]["counts"] == "mean"
    assert not np.array_equal(expected.X, np.round(expected.X))
    library = gtex.layers["counts"].sum(1)
    assert library.min() * 0.999 <= expected.X.sum(1).min()
    assert expected.X.sum(1).max() <= library.max() * 1.001


# -- errors: exit code 1 and a message on stderr ----------------------------------------------
def test_train_missing_covariate(trained, tmp_path, capsys):
    out = tmp_path / "model"
    argv = ["train", str(trained["data"]), "--out", str(out), "--categorical", "tisue"]
    assert main([*argv, "--n-steps", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth train: error:")
    assert "['tisue'] are not in adata.obs" in err
    assert not out.exists()


def test_train_privately(trained, tmp_path, capsys):
    adata = trained["adata"]
    public = tmp_path / "public.h5ad"
    adata[::2].write_h5ad(public)
    out = tmp_path / "private"
    argv = ["train", str(trained["data"]), "--out", str(out), "--categorical", "tissue"]
    assert main([*argv, "--epsilon", "5", "--public", str(public)]) == 0
    assert "private: ε=5" in capsys.readouterr().out
    model = sgs.model.load_model(out, adata=adata)
    assert model.privacy_["target_epsilon"] == 5
    assert model.privacy_["n_public_scaling"] == (adata.n_obs + 1) // 2
    # privacy options without --epsilon, and a private fit without public samples
    assert main([*argv[:3], str(tmp_path / "m2"), *argv[4:], "--delta", "1e-5"]) == 1
    assert "add --epsilon" in capsys.readouterr().err
    assert main([*argv[:3], str(tmp_path / "m3"), *argv[4:], "--epsilon", "5"]) == 1
    assert "public" in capsys.readouterr().err
    assert not (tmp_path / "m2").exists()
    assert not (tmp_path / "m3").exists()


def test_train_missing_input_file(tmp_path, capsys):
    missing = tmp_path / "nope.h5ad"
    assert main(["train", str(missing), "--out", str(tmp_path / "model")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth train: error:")
    assert "nope.h5ad" in err


def test_generate_unknown_category(trained, tmp_path, capsys):
    out = tmp_path / "moon.h5ad"
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    assert main([*argv, "--out", str(out), "--n-obs", "3", "--covariates", "tissue=Moon"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth generate: error:")
    assert "Unknown categories for 'tissue': ['Moon']" in err
    assert all(t in err for t in TISSUES)
    assert not out.exists()


def test_generate_with_other_genes(trained, tmp_path, capsys):
    other = trained["adata"][:, 3:].copy()
    data = tmp_path / "other_genes.h5ad"
    other.write_h5ad(data)
    argv = ["generate", str(trained["model"]), "--adata", str(data)]
    assert main([*argv, "--out", str(tmp_path / "x.h5ad"), "--n-obs", "3"]) == 1
    assert "genes differ from the model's" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("synth.csv", r"must end in \.h5ad"),
        ("missing/synth.h5ad", "does not exist; create it first"),
        ("folder.h5ad", "is a directory"),
    ],
)
def test_generate_refuses_a_bad_output_path(trained, tmp_path, capsys, out, message):
    (tmp_path / "folder.h5ad").mkdir()
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    assert main([*argv, "--out", str(tmp_path / out), "--n-obs", "3"]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.h5ad"]


def test_train_into_existing_folder_without_overwrite(trained, capsys):
    argv = ["train", str(trained["data"]), "--out", str(trained["model"]), "--n-steps", "5"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth train: error:")
    assert "--overwrite" in err


def test_generate_covariates_without_n_obs(trained, tmp_path, capsys):
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    assert main([*argv, "--out", str(tmp_path / "x.h5ad"), "--covariates", "tissue=Liver"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth generate: error:")
    assert "--n-obs" in err


def test_generate_malformed_covariate(trained, tmp_path, capsys):
    argv = ["generate", str(trained["model"]), "--adata", str(trained["data"])]
    argv += ["--out", str(tmp_path / "x.h5ad"), "--n-obs", "2", "--covariates", "Liver"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth generate: error:")
    assert "KEY=VALUE" in err


# -- compare ----------------------------------------------------------------------------------
def test_compare(tmp_path, capsys):
    path = tmp_path / "gtex.h5ad"
    sgs.datasets.gtex_tissues().write_h5ad(path)
    out = tmp_path / "table.csv"
    out.write_text("an earlier table\n")
    argv = ["compare", str(path), "--label", "tissue", "--models", "wgan", "--metrics", "fast",
            "--n-steps", "40", "--out", str(out)]  # fmt: skip
    assert main(argv) == 1  # an existing file is replaced only with --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "an earlier table\n"
    code = main([*argv, "--overwrite"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "correlation_score" in printed
    assert "Wrote" in printed
    table = pd.read_csv(out)
    assert set(table["model"]) == {"wgan"}
    assert {"train_seconds", "n_parameters", "frechet_distance_pca"} <= set(table["metric"])
    # several metric names at once
    two = tmp_path / "two.csv"
    argv = ["compare", str(path), "--label", "tissue", "--models", "gaussian", "--metrics",
            "precision_recall", "c2st_auc", "--out", str(two)]  # fmt: skip
    assert main(argv) == 0
    measured = set(pd.read_csv(two)["metric"])
    assert {"f1", "c2st_auc"} <= measured
    assert "frechet_distance_pca" not in measured


def test_compare_unknown_label(tmp_path, capsys):
    path = tmp_path / "gtex.h5ad"
    sgs.datasets.gtex_tissues().write_h5ad(path)
    code = main(["compare", str(path), "--label", "tisue", "--out", str(tmp_path / "t.csv")])
    assert code == 1
    assert "scgensynth compare: error:" in capsys.readouterr().err


def test_train_and_generate_another_model(trained, tmp_path, capsys):
    """`train --model cvae` saves a CVAE; `generate` finds the class in the saved file."""
    model_dir = tmp_path / "cvae"
    argv = ["train", str(trained["data"]), "--model", "cvae", "--out", str(model_dir)]
    assert main([*argv, "--categorical", "tissue", "--n-steps", "30", "--batch-size", "16"]) == 0
    assert "CVAE" in capsys.readouterr().out
    out = tmp_path / "synth.h5ad"
    argv = ["generate", str(model_dir), "--adata", str(trained["data"]), "--n-obs", "7"]
    assert main([*argv, "--out", str(out)]) == 0
    synth = ad.read_h5ad(out)
    assert synth.shape == (7, trained["adata"].n_vars)
    assert (
        main(["train", str(trained["data"]), "--model", "vae", "--out", str(tmp_path / "x")]) == 1
    )
    assert "Unknown model 'vae'" in capsys.readouterr().err


# -- issue 17: never lose the user's data, never answer with a traceback -------------------------
def _generate_argv(trained, out, *extra):
    return ["generate", str(trained["model"]), "--adata", str(trained["data"]), "--out", str(out),
            *extra]  # fmt: skip


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(err: str, command: str) -> None:
    assert err.startswith(f"scgensynth {command}: error:"), err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert "Traceback" not in err


def _no_work(monkeypatch, *names):
    """Make the slow steps fail loudly: the checks must refuse before any of them runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command did work before checking its --out")

    for name in names:
        monkeypatch.setattr(f"scgensynth.tl.{name}", refuse)


def test_generate_refuses_out_that_is_the_adata(trained, tmp_path, capsys):
    data = tmp_path / "data.h5ad"
    data.write_bytes(trained["data"].read_bytes())
    digest = _digest(data)
    spellings = [data, tmp_path / "sub" / ".." / "data.h5ad"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.h5ad").symlink_to(data)
    spellings.append(tmp_path / "link.h5ad")
    for out in spellings:
        for extra in ([], ["--overwrite"]):
            argv = ["generate", str(trained["model"]), "--adata", str(data), "--out", str(out)]
            assert main([*argv, "--n-obs", "3", *extra]) == 1
            err = capsys.readouterr().err
            _one_error_line(err, "generate")
            assert "is the input --adata" in err
            assert _digest(data) == digest


def test_generate_refuses_out_that_is_the_covariates_csv(trained, tmp_path, capsys):
    table = tmp_path / "covariates.h5ad"  # a CSV, named as --out would be
    pd.DataFrame({"tissue": ["Lung", "Liver"]}).to_csv(table, index=False)
    before = table.read_bytes()
    argv = _generate_argv(trained, table, "--covariates-csv", str(table), "--overwrite")
    assert main(argv) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "generate")
    assert "is the input --covariates-csv" in err
    assert table.read_bytes() == before


def test_generate_refuses_an_existing_file_without_overwrite(trained, tmp_path, capsys):
    out = tmp_path / "synth.h5ad"
    out.write_bytes(b"the user's file")
    assert main(_generate_argv(trained, out, "--n-obs", "4")) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "generate")
    assert "exists; pass --overwrite" in err
    assert out.read_bytes() == b"the user's file"
    assert main(_generate_argv(trained, out, "--n-obs", "4", "--overwrite")) == 0
    assert ad.read_h5ad(out).n_obs == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth.h5ad"]


def test_generate_refuses_an_unwritable_folder(trained, tmp_path, capsys, monkeypatch):
    """Tests run as root (every folder writable): the read-only folder is simulated."""
    access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != tmp_path and access(p, mode, **kw)
    )
    out = tmp_path / "synth.h5ad"
    assert main(_generate_argv(trained, out, "--n-obs", "4")) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "generate")
    assert "not writable" in err
    assert not out.exists()


def test_train_checks_out_before_training(trained, tmp_path, capsys, monkeypatch):
    """--out a file, in a missing folder or in a read-only one: refused before any training."""
    _no_work(monkeypatch, "train")
    base = ["train", str(trained["data"]), "--n-steps", "5"]

    a_file = tmp_path / "model"
    a_file.write_text("not a folder")
    for extra in ([], ["--overwrite"]):
        assert main([*base, "--out", str(a_file), *extra]) == 1
        err = capsys.readouterr().err
        _one_error_line(err, "train")
        assert "is a file, not a folder" in err
    assert a_file.read_text() == "not a folder"

    missing = tmp_path / "missing" / "model"
    assert main([*base, "--out", str(missing)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "train")
    assert "does not exist; create it first" in err
    assert not missing.parent.exists()

    read_only = tmp_path / "read_only"
    read_only.mkdir()
    access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != read_only and access(p, mode, **kw)
    )
    assert main([*base, "--out", str(read_only / "model")]) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "train")
    assert "not writable" in err
    assert list(read_only.iterdir()) == []
    monkeypatch.setattr(os, "access", access)

    def no_file(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", no_file)  # a folder that refuses new files
    out = tmp_path / "new_model"
    assert main([*base, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "train")
    assert "Permission denied" in err
    assert not out.exists()  # the folder made for the test file is removed again


def test_train_keeps_the_model_when_saving_fails(trained, tmp_path, capsys, monkeypatch):
    from scgensynth.model.base._save import SafeSaveMixin

    out = tmp_path / "model"
    save = SafeSaveMixin.save

    def failing_save(self, dir_path, *args, **kwargs):
        if Path(dir_path) == out:
            raise OSError(28, "No space left on device")
        return save(self, dir_path, *args, **kwargs)

    monkeypatch.setattr(SafeSaveMixin, "save", failing_save)
    spare = tmp_path / "tmp"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    argv = ["train", str(trained["data"]), "--out", str(out), "--categorical", "tissue"]
    assert main([*argv, "--n-steps", "20", "--batch-size", "16"]) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "train")
    assert "No space left on device" in err
    (kept,) = spare.iterdir()
    assert f"the trained model was saved to {kept}" in err
    model = sgs.model.load_model(str(kept), adata=trained["adata"])
    assert model.is_trained_
    assert not out.exists()  # the empty folder made before training is removed


@pytest.fixture(scope="module")
def trained_continuous(tmp_path_factory):
    """A model with a categorical (tissue) and a continuous (age) covariate."""
    folder = tmp_path_factory.mktemp("cli_age")
    gtex = sgs.datasets.gtex_tissues()
    small = gtex[gtex.obs["tissue"].isin(TISSUES)].copy()
    small.obs["tissue"] = small.obs["tissue"].cat.remove_unused_categories()
    small.obs["age"] = np.random.default_rng(0).integers(20, 70, small.n_obs).astype(float)
    data = folder / "small.h5ad"
    small.write_h5ad(data)
    model = folder / "model"
    argv = ["train", str(data), "--out", str(model), "--categorical", "tissue", "--continuous"]
    assert main([*argv, "age", "--n-steps", "20", "--batch-size", "16"]) == 0
    return {"data": data, "model": model}


@pytest.mark.parametrize(
    ("covariates", "named"),
    [
        (["tissue=Liver", "age=50", "foo=bar"], ["'foo'", "['tissue']", "['age']"]),
        (["tissue=Liver", "age=abc"], ["'age'", "'abc'", "needs a number"]),
        (["tissue=Moon", "age=50"], ["'tissue'", "['Moon']"]),
        (["tissue=Liver", "tissue=Lung", "age=50"], ["'tissue' twice"]),
    ],
    ids=["unknown-key", "continuous-not-a-number", "unknown-category", "key-twice"],
)
def test_generate_bad_covariates(trained_continuous, tmp_path, capsys, covariates, named):
    out = tmp_path / "x.h5ad"
    argv = _generate_argv(trained_continuous, out, "--n-obs", "3", "--covariates", *covariates)
    assert main(argv) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "generate")
    for text in named:
        assert text in err
    assert not out.exists()


def test_generate_continuous_covariate(trained_continuous, tmp_path):
    out = tmp_path / "x.h5ad"
    argv = ["--n-obs", "3", "--covariates", "tissue=Liver", "age=50"]
    assert main(_generate_argv(trained_continuous, out, *argv)) == 0
    assert (ad.read_h5ad(out).obs["age"] == 50).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (bytes(range(256)) * 8, "is not a readable CSV file"),
        (b"tisue\nLiver\n", "lacks the model's column(s) ['tissue']"),
        (b"tissue\n", "has no rows"),
        (b'tissue\n"Liver\n', "is not a readable CSV file"),
        (None, "Is a directory"),
    ],
    ids=["empty", "binary", "other-columns", "no-rows", "unclosed-quote", "a-folder"],
)
def test_generate_bad_covariates_csv(trained, tmp_path, capsys, content, message):
    csv = tmp_path / "covariates.csv"
    if content is None:
        csv.mkdir()
    else:
        csv.write_bytes(content)
    out = tmp_path / "x.h5ad"
    assert main(_generate_argv(trained, out, "--covariates-csv", str(csv))) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "generate")
    assert message in err
    assert str(csv) in err
    assert not out.exists()


def test_generate_covariates_and_covariates_csv_exclude_each_other(trained, tmp_path, capsys):
    csv = tmp_path / "covariates.csv"
    pd.DataFrame({"tissue": ["Lung"]}).to_csv(csv, index=False)
    argv = _generate_argv(trained, tmp_path / "x.h5ad", "--covariates-csv", str(csv))
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--n-obs", "1", "--covariates", "tissue=Liver"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.fixture
def not_h5ad(tmp_path):
    """Files named .h5ad that are not AnnData files, and one that does not exist."""
    import h5py

    (tmp_path / "text.h5ad").write_text("gene,sample\nTP53,1\n")
    (tmp_path / "garbage.h5ad").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.h5ad").write_bytes(b"")
    with h5py.File(tmp_path / "plain_hdf5.h5ad", "w") as f:
        f["x"] = np.arange(3)
    return [tmp_path / n for n in ("text.h5ad", "garbage.h5ad", "empty.h5ad", "plain_hdf5.h5ad")]


@pytest.mark.filterwarnings("ignore:Element '/x' was written without encoding metadata")
@pytest.mark.parametrize("command", ["train", "generate", "compare"])
def test_input_that_is_not_an_h5ad_file(trained, tmp_path, capsys, not_h5ad, command):
    for path in [*not_h5ad, tmp_path / "missing.h5ad"]:
        if command == "train":
            argv = ["train", str(path), "--out", str(tmp_path / "model"), "--n-steps", "5"]
        elif command == "generate":
            argv = ["generate", str(trained["model"]), "--adata", str(path)]
            argv += ["--out", str(tmp_path / "synth.h5ad"), "--n-obs", "3"]
        else:
            argv = ["compare", str(path), "--label", "tissue", "--out", str(tmp_path / "t.csv")]
        assert main(argv) == 1, path
        err = capsys.readouterr().err
        _one_error_line(err, command)
        assert str(path) in err
        if path.exists():
            assert f"{path} is not a readable .h5ad file (" in err
        else:
            assert "does not exist" in err
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "synth.h5ad").exists()
    assert not (tmp_path / "t.csv").exists()


def test_compare_refuses_out_that_is_the_input(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch, "compare_generators")
    path = tmp_path / "gtex.h5ad"
    sgs.datasets.gtex_tissues().write_h5ad(path)
    digest = _digest(path)
    for extra in ([], ["--overwrite"]):
        argv = ["compare", str(path), "--label", "tissue", "--out", str(path), *extra]
        assert main(argv) == 1
        err = capsys.readouterr().err
        _one_error_line(err, "compare")
        assert "is the input adata" in err
    assert _digest(path) == digest


def test_compare_keeps_the_table_when_writing_fails(tmp_path, capsys, monkeypatch):
    table = pd.DataFrame(
        {"model": ["wgan"], "metric": ["precision"], "group": ["all"], "value": [0.5]}
    )
    monkeypatch.setattr("scgensynth.tl.compare_generators", lambda *a, **k: table)
    monkeypatch.setattr("scgensynth.cli._read_h5ad", lambda *a, **k: None)
    out = tmp_path / "t.csv"
    to_csv = pd.DataFrame.to_csv

    def failing_to_csv(self, path, *args, **kwargs):
        if Path(path) == out:
            raise OSError(122, "Disk quota exceeded")
        return to_csv(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing_to_csv)
    spare = tmp_path / "tmp"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    assert main(["compare", "any.h5ad", "--label", "tissue", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "compare")
    (kept,) = spare.iterdir()
    assert f"the table was written to {kept}" in err
    pd.testing.assert_frame_equal(pd.read_csv(kept), table)


@pytest.mark.parametrize(
    ("files", "refused"),
    [
        ({}, False),
        ({"results.json": '{"scgensynth_demo": "0.1.0"}', "metrics.csv": "x"}, False),
        ({"results.json": '{"n_train": 1, "n_synthetic": 1, "metrics": {}}'}, False),
        ({"thesis.tex": "my thesis"}, True),
        ({"results.json": '{"my": "results"}', "model": None}, True),
        ({"results.json": "not json"}, True),
    ],
    ids=["empty", "earlier-demo", "demo-before-the-marker", "user-file", "user-json", "bad-json"],
)
def test_demo_refuses_a_folder_of_other_files(tmp_path, capsys, monkeypatch, files, refused):
    out = tmp_path / "results"
    out.mkdir()
    for name, text in files.items():
        if text is None:
            (out / name).mkdir()
        else:
            (out / name).write_text(text)

    class Reached(Exception):
        pass

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr("scgensynth.tl.train_wgan", reached)
    overwrites = [["--overwrite"]] if not refused else [[], ["--overwrite"]]
    for extra in overwrites:
        argv = ["demo", "--out", str(out), "--n-steps", "5", *extra]
        if refused and not extra:
            assert main(argv) == 1
            err = capsys.readouterr().err
            _one_error_line(err, "demo")
            assert "pass --overwrite" in err
        else:
            with pytest.raises(Reached):  # checks passed: training starts
                main(argv)
    for name, text in files.items():
        if text is not None and name != "results.json":
            assert (out / name).read_text() == text
    if not files:  # marked as the demo's before training: an interrupted demo can rerun
        marker = json.loads((out / "results.json").read_text())
        assert marker == {"scgensynth_demo": sgs.__version__}


def test_demo_refuses_out_that_is_a_file(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch, "train_wgan")
    out = tmp_path / "results"
    out.write_text("mine")
    assert main(["demo", "--out", str(out), "--overwrite"]) == 1
    _one_error_line(capsys.readouterr().err, "demo")
    assert out.read_text() == "mine"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "d.h5ad", "--out", "m", "--n-steps", "0"], "--n-steps: must be a positive"),
        (["train", "d.h5ad", "--out", "m", "--n-steps", "-5"], "--n-steps: must be a positive"),
        (["train", "d.h5ad", "--out", "m", "--n-steps", "ten"], "--n-steps: must be a positive"),
        (["train", "d.h5ad", "--out", "m", "--batch-size", "0"], "--batch-size: must be a pos"),
        (["train", "d.h5ad", "--out", "m", "--max-epochs", "0"], "--max-epochs: must be a pos"),
        (["train", "d.h5ad", "--out", "m", "--seed", "-1"], "--seed: must be a non-negative"),
        (["demo", "--n-steps", "-1"], "--n-steps: must be a positive"),
        (["compare", "d.h5ad", "--label", "t", "--out", "t.csv", "--batch-size", "0"],
         "--batch-size: must be a positive"),
        (["generate", "m", "--adata", "d.h5ad", "--out", "s.h5ad", "--n-obs", "-1"],
         "--n-obs: must be a non-negative"),
        (["generate", "m", "--adata", "d.h5ad", "--out", "s.h5ad", "--seed", "-3"],
         "--seed: must be a non-negative"),
    ],
)  # fmt: skip
def test_bad_numbers_are_argparse_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"scgensynth {argv[0]}: error: argument {message}" in err
    assert list(tmp_path.iterdir()) == []


# -- generate without the training data; --threads --------------------------------------------
def test_generate_without_adata(trained, tmp_path, sgs_logs):
    """The model file holds what generating needs: the same samples, genes and annotations."""
    model = str(trained["model"])
    for extra in (["--covariates", "tissue=Liver"], []):
        alone, given = tmp_path / "alone.h5ad", tmp_path / "given.h5ad"
        argv = ["--n-obs", "12", "--seed", "3", *extra, "--overwrite"]
        with sgs_logs() as records:
            assert main(["generate", model, "--out", str(alone), *argv]) == 0
        assert any("without --adata" in r.getMessage() for r in records)
        assert (
            main(["generate", model, "--adata", str(trained["data"]), "--out", str(given), *argv])
            == 0
        )
        a, b = ad.read_h5ad(alone), ad.read_h5ad(given)
        np.testing.assert_array_equal(a.X, b.X)
        pd.testing.assert_frame_equal(a.obs, b.obs)
        pd.testing.assert_frame_equal(a.var, b.var)  # annotations saved with the model
        assert a.var.shape[1] == trained["adata"].var.shape[1] > 0


def test_generate_without_adata_from_a_file_without_annotations(
    trained, tmp_path, sgs_logs, safetensors_header
):
    """A model file saved before .var was kept: gene names only, and the log says so."""
    old = tmp_path / "old"
    old.mkdir()
    header, data = safetensors_header.read(trained["model"] / "model.safetensors")
    metadata = json.loads(header["__metadata__"]["sgs_metadata"])
    del metadata["var"]
    header["__metadata__"]["sgs_metadata"] = json.dumps(metadata)
    safetensors_header.write(old / "model.safetensors", header, data)
    out = tmp_path / "synth.h5ad"
    with sgs_logs() as records:
        assert main(["generate", str(old), "--out", str(out), "--n-obs", "4"]) == 0
    assert any("holds no gene annotations" in r.getMessage() for r in records)
    synth = ad.read_h5ad(out)
    pd.testing.assert_index_equal(synth.var_names, trained["adata"].var_names)
    assert synth.var.shape[1] == 0


def test_generate_missing_model_folder_fails_before_loading_heavy_libraries(tmp_path):
    out = tmp_path / "synth.h5ad"
    code = (
        "import sys\n"
        "from scgensynth.cli import main\n"
        f"assert main(['generate', {str(tmp_path / 'nope')!r}, '--out', {str(out)!r}]) == 1\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "does not exist" in result.stderr


@pytest.mark.parametrize("command", ["demo", "train", "generate", "compare"])
def test_threads_option_is_offered(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--threads N" in capsys.readouterr().out


def test_threads_limit_torch_and_blas_for_the_command(trained, tmp_path, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    seen = {}
    generate = sgs.tl.generate

    def recording(*args, **kwargs):
        seen["torch"] = torch.get_num_threads()
        seen["env"] = os.environ.get("OMP_NUM_THREADS")
        seen["blas"] = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        return generate(*args, **kwargs)

    monkeypatch.setattr(sgs.tl, "generate", recording)
    before = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    blas_before = {
        p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"
    }
    out = tmp_path / "synth.h5ad"
    assert main(["generate", str(trained["model"]), "--out", str(out), "--threads", "2"]) == 0
    assert seen == {"torch": 2, "env": "2", "blas": {2}}
    assert (torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")) == before  # restored
    blas_after = {
        p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"
    }
    # each BLAS library loaded before the command is back at its own setting
    assert {k: blas_after[k] for k in blas_before} == blas_before
