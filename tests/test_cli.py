"""The ``scgensynth`` command line: help, version, demo, train -> generate, errors."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from importlib.metadata import entry_points, version

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
    assert main(["demo", "--out", str(out), "--n-steps", "150"]) == 0
    assert "Wrote" in capsys.readouterr().out

    results = json.loads((out / "results.json").read_text())
    assert set(results) == {
        "n_train", "n_test", "n_synthetic", "metrics", "counterfactual_top50_overlap"
    }  # fmt: skip
    assert results["n_train"] + results["n_test"] == 520
    assert results["n_synthetic"] == results["n_train"]
    values = results["metrics"]
    for key in ("precision", "recall", "f1", "coverage", "tstr_macro_f1", "dcr_ratio"):
        assert np.isfinite(values[key]), key
    assert values["trtr_macro_f1"] > 0.9
    assert len([k for k in values if k.startswith("recall[")]) == 26  # per tissue
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
    assert synth.X.min() >= 0
    library = gtex.layers["counts"].sum(1)
    assert library.min() * 0.999 <= synth.X.sum(1).min()


# -- errors: exit code 1 and a message on stderr ----------------------------------------------
def test_train_missing_covariate(trained, tmp_path, capsys):
    out = tmp_path / "model"
    argv = ["train", str(trained["data"]), "--out", str(out), "--categorical", "tisue"]
    assert main([*argv, "--n-steps", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("scgensynth train: error:")
    assert "['tisue'] are not in adata.obs" in err
    assert not out.exists()


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
    code = main(
        ["compare", str(path), "--label", "tissue", "--models", "wgan", "--metrics", "fast",
         "--n-steps", "40", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "correlation_score" in printed
    assert "Wrote" in printed
    table = pd.read_csv(out)
    assert set(table["model"]) == {"wgan"}
    assert {"train_seconds", "n_parameters", "frechet_distance_pca"} <= set(table["metric"])


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
