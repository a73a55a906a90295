"""Training on backed AnnData (read_h5ad(..., backed="r")): the matrix stays on disk."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch
from scipy import sparse

import scgensynth as sgs

SETUP = {"categorical_covariate_keys": ["tissue"], "n_steps": 60, "seed": 0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backed")
    adata = sgs.datasets.gtex_tissues()
    adata.write_h5ad(folder / "dense.h5ad")
    as_sparse = adata.copy()
    as_sparse.X = sparse.csr_matrix(as_sparse.X)
    as_sparse.write_h5ad(folder / "sparse.h5ad")
    return adata, folder


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("name", list(sgs.model.available().index))
def test_backed_training_equals_in_memory_training(name, kind, files):
    adata, folder = files
    torch.set_num_threads(1)
    backed = ad.read_h5ad(folder / f"{kind}.h5ad", backed="r")
    small = {"enable_progress_bar": False, **sgs.model.get_model_class(name).quick_kwargs}
    on_disk = sgs.tl.train(backed, name, **SETUP, **small)
    in_memory = sgs.tl.train(adata.copy(), name, **SETUP, **small)
    # the model reads mini-batches from the file: its data were never loaded whole
    assert not isinstance(on_disk.adata.X, np.ndarray | sparse.spmatrix | sparse.sparray)
    assert backed.isbacked
    for key, value in in_memory.module.state_dict().items():
        torch.testing.assert_close(on_disk.module.state_dict()[key], value, rtol=0, atol=0)
    np.testing.assert_array_equal(
        sgs.tl.generate(on_disk, n_obs=30, seed=1).X,
        sgs.tl.generate(in_memory, n_obs=30, seed=1).X,
    )


def test_a_saved_model_loads_with_a_backed_anndata(files, tmp_path):
    adata, folder = files
    model = sgs.tl.train(adata.copy(), "wgan", enable_progress_bar=False, **SETUP)
    model.save(tmp_path / "m")
    backed = ad.read_h5ad(folder / "dense.h5ad", backed="r")
    loaded = sgs.model.load_model(tmp_path / "m", adata=backed)
    np.testing.assert_array_equal(
        sgs.tl.generate(loaded, n_obs=10, seed=2).X, sgs.tl.generate(model, n_obs=10, seed=2).X
    )


# -- generation straight to disk ---------------------------------------------------------------
def _matrix_bytes(n: int, n_genes: int) -> int:
    return n * n_genes * 4


def test_generation_to_a_file_equals_generation_in_memory(gtex_model, tmp_path):
    model = gtex_model.model
    path = tmp_path / "synth.h5ad"
    in_memory = model.generate(700, seed=5, batch_size=128)
    on_disk = model.generate(700, seed=5, batch_size=128, filename=path)
    assert on_disk.isbacked
    assert on_disk.filename == path
    assert not isinstance(on_disk.X, np.ndarray)  # an h5py dataset: read when sliced
    np.testing.assert_array_equal(on_disk.X[:], in_memory.X)
    assert on_disk.obs.equals(in_memory.obs)
    assert on_disk.var_names.equals(in_memory.var_names)
    assert on_disk.uns["sgs"]["seed"] == 5
    assert on_disk.uns["sgs"]["model"] == "WGANGP"
    # the file is a plain .h5ad: it reads back in memory, and nothing else was left behind
    again = ad.read_h5ad(path)
    np.testing.assert_array_equal(again.X, in_memory.X)
    assert [p.name for p in tmp_path.iterdir()] == ["synth.h5ad"]


def test_ddpm_sampler_options_reach_the_file(tmp_path):
    adata = sgs.datasets.gtex_tissues()[:200].copy()
    model = sgs.tl.train(
        adata, "ddpm", categorical_covariate_keys=["tissue"], n_steps=20, seed=0,
        n_timesteps=50, enable_progress_bar=False,
    )  # fmt: skip
    kw = {"seed": 1, "sampler": "ddim", "n_sampling_steps": 5, "eta": 0.5}
    on_disk = model.generate(90, batch_size=40, filename=tmp_path / "d.h5ad", **kw)
    np.testing.assert_array_equal(on_disk.X[:], model.generate(90, batch_size=40, **kw).X)
    assert on_disk.uns["sgs"]["n_sampling_steps"] == 5


def test_generation_to_a_file_holds_one_batch_in_memory(gtex_model, tmp_path):
    import tracemalloc

    model, n = gtex_model.model, 20_000
    size = _matrix_bytes(n, model.adata.n_vars)  # 37 MB
    peaks = {}
    for where in ("memory", "file"):
        filename = tmp_path / "big.h5ad" if where == "file" else None
        tracemalloc.start()
        synth = model.generate(n, seed=0, batch_size=500, filename=filename)
        peaks[where] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert synth.shape == (n, model.adata.n_vars)
        del synth
    assert peaks["memory"] >= size  # the matrix itself
    assert peaks["file"] < 0.25 * size, peaks


def test_a_failed_generation_leaves_the_earlier_file_intact(gtex_model, tmp_path, monkeypatch):
    model = gtex_model.model
    path = tmp_path / "synth.h5ad"
    first = model.generate(50, seed=0, filename=path)
    expected = first.X[:]
    first.file.close()
    calls = {"n": 0}
    sample = model.module.sample

    def broken(**kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("out of memory (simulated)")
        return sample(**kw)

    mode = model.module.training
    monkeypatch.setattr(model.module, "sample", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        model.generate(500, seed=1, batch_size=100, filename=path, overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(ad.read_h5ad(path).X, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["synth.h5ad"]
    # the module is back in its mode (a later train() must not inherit eval mode)
    assert model.module.training == mode
    np.testing.assert_array_equal(model.generate(50, seed=0).X, expected)


@pytest.mark.parametrize(
    ("filename", "error", "match"),
    [
        ("synth.csv", ValueError, r"must end in \.h5ad"),
        ("missing/synth.h5ad", FileNotFoundError, "does not exist; create it first"),
        ("folder.h5ad", IsADirectoryError, "is a directory"),
        (3, TypeError, "must be a path"),
    ],
)
def test_a_bad_filename_is_refused_before_generating(gtex_model, tmp_path, filename, error, match):
    (tmp_path / "folder.h5ad").mkdir()
    target = tmp_path / filename if isinstance(filename, str) else filename
    with pytest.raises(error, match=match):
        gtex_model.model.generate(10, seed=0, filename=target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.h5ad"]
