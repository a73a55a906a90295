"""Output paths are checked before any work: no overwrite unasked, no input destroyed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anndata as ad
import pytest

import scgensynth as sgs
from scgensynth._utils._files import (
    NotEnoughDiskSpaceError,
    check_disk_space,
    check_output_path,
)


@pytest.fixture(scope="module")
def gtex_file(tmp_path_factory):
    """The bundled GTEx set written as an .h5ad file."""
    path = tmp_path_factory.mktemp("data") / "gtex.h5ad"
    sgs.datasets.gtex_tissues().write_h5ad(path)
    return path


@pytest.fixture
def data_copy(gtex_file, tmp_path):
    """A copy of the bundled data this test may try to destroy."""
    path = tmp_path / "data.h5ad"
    shutil.copyfile(gtex_file, path)
    return path


# -- the checks that were there before ------------------------------------------------------------
def test_the_basic_checks_stay(tmp_path):
    assert check_output_path(None) is None
    assert check_output_path(tmp_path / "out.h5ad") == tmp_path / "out.h5ad"
    with pytest.raises(TypeError, match="must be a path"):
        check_output_path(5)
    with pytest.raises(ValueError, match=r"must end in \.h5ad"):
        check_output_path(tmp_path / "out.csv")
    (tmp_path / "dir.h5ad").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        check_output_path(tmp_path / "dir.h5ad")
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        check_output_path(tmp_path / "missing" / "out.h5ad")


def test_a_folder_that_is_a_file_says_so(data_copy):
    with pytest.raises(NotADirectoryError, match=r"data\.h5ad', is a file; give a folder"):
        check_output_path(data_copy / "out.h5ad")


# -- no write over an existing file unless asked --------------------------------------------------
def test_an_existing_file_needs_overwrite(data_copy):
    before = data_copy.read_bytes()
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        check_output_path(data_copy)
    assert check_output_path(data_copy, overwrite=True) == data_copy
    assert data_copy.read_bytes() == before


# -- never one of the inputs ----------------------------------------------------------------------
def test_an_input_is_refused_even_with_overwrite(data_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "link.h5ad"
    link.symlink_to(data_copy)
    spellings = [data_copy, str(data_copy), "data.h5ad", "./sub/../data.h5ad", link]
    (tmp_path / "sub").mkdir()
    for out in spellings:
        for given in ([data_copy], ["data.h5ad"], [None, tmp_path / "model", data_copy]):
            with pytest.raises(ValueError, match=r"is one of the inputs .* would destroy it"):
                check_output_path(out, overwrite=True, inputs=given)
    # a path that does not exist yet is compared by its resolved form
    with pytest.raises(ValueError, match="is one of the inputs"):
        check_output_path("new.h5ad", inputs=[tmp_path / "sub" / ".." / "new.h5ad"])
    assert check_output_path(tmp_path / "other.h5ad", inputs=[data_copy]).name == "other.h5ad"


def test_an_anndata_read_backed_counts_as_an_input(data_copy, tmp_path):
    adata = ad.read_h5ad(data_copy, backed="r")
    try:
        with pytest.raises(ValueError, match="is one of the inputs"):
            check_output_path(data_copy, overwrite=True, inputs=[adata])
    finally:
        adata.file.close()


# -- never a file this session reads --------------------------------------------------------------
def test_a_file_open_backed_is_refused_even_with_overwrite(data_copy):
    adata = ad.read_h5ad(data_copy, backed="r")
    try:
        with pytest.raises(ValueError, match=r"is open in this session .*adata\.file\.close"):
            check_output_path(data_copy, overwrite=True)
        with pytest.raises(ValueError, match="is open in this session"):
            check_output_path(str(data_copy.parent / "." / data_copy.name), overwrite=True)
        assert adata.n_obs == sgs.datasets.gtex_tissues().n_obs  # still readable
    finally:
        adata.file.close()
    assert check_output_path(data_copy, overwrite=True) == data_copy  # closed: fine


# -- a folder this user cannot write to -----------------------------------------------------------
def test_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() == folder.resolve():
            return False
        return real_access(path, mode, *args, **kwargs)

    if os.geteuid() == 0:  # root may write anywhere: show it the folder as others see it
        monkeypatch.setattr(os, "access", access)
    try:
        with pytest.raises(
            PermissionError, match=r"folder '.*read-only': it is not writable by this user"
        ):
            check_output_path(folder / "out.h5ad")
    finally:
        folder.chmod(0o755)


# -- disk space -----------------------------------------------------------------------------------
def test_too_little_disk_space_is_refused_with_both_sizes(tmp_path, monkeypatch):
    check_disk_space(tmp_path / "out.h5ad", 1024)
    check_disk_space(tmp_path, 0)
    with pytest.raises(NotEnoughDiskSpaceError, match=r"needs about .*iB, but .* free") as err:
        check_disk_space(tmp_path / "out.h5ad", 2**70)
    assert isinstance(err.value, OSError)
    assert isinstance(err.value, ValueError)

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=3 * 2**30))
    check_disk_space(tmp_path / "out.h5ad", 3 * 2**30)
    with pytest.raises(NotEnoughDiskSpaceError, match=r"needs about 4\.0 GiB, .* 3\.0 GiB free"):
        check_disk_space(tmp_path / "out.h5ad", 4 * 2**30)


def test_the_disk_space_for_a_generated_matrix(tmp_path):
    # what generate() asks for: n_obs * n_vars float32 values
    adata = sgs.datasets.gtex_tissues()
    free = shutil.disk_usage(tmp_path).free
    check_disk_space(tmp_path / "out.h5ad", adata.n_obs * adata.n_vars * 4)
    n_obs = free // (adata.n_vars * 4) + 1
    with pytest.raises(NotEnoughDiskSpaceError, match="generate fewer samples"):
        check_disk_space(tmp_path / "out.h5ad", n_obs * adata.n_vars * 4)


# -- generated files get the usual permissions ----------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_generated_file_gets_the_usual_permissions(umask, tmp_path):
    import stat

    adata = sgs.datasets.gtex_tissues()
    model = sgs.tl.train(adata, "noise", categorical_covariate_keys=["tissue"])
    old = os.umask(umask)
    try:
        synth = sgs.tl.generate(model, n_obs=5, seed=0, filename=tmp_path / "synth.h5ad")
        synth.file.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "synth.h5ad").stat().st_mode) == 0o666 & ~umask
