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
@pytest.mark.parametrize("name", ["wgan", "gmda"])
def test_backed_training_equals_in_memory_training(name, kind, files):
    adata, folder = files
    torch.set_num_threads(1)
    backed = ad.read_h5ad(folder / f"{kind}.h5ad", backed="r")
    on_disk = sgs.tl.train(backed, name, enable_progress_bar=False, **SETUP)
    in_memory = sgs.tl.train(adata.copy(), name, enable_progress_bar=False, **SETUP)
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
