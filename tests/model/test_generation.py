"""Generation: the same seed gives the same samples however they are batched or written.

Every random draw of a generation (covariate rows, library sizes, the modules' noise) is
keyed by the seed and the sample's row, so ``batch_size`` and the file route only change how
the work is cut, never the samples; a sample's values do not depend on how many are drawn.
"""

from __future__ import annotations

import tracemalloc

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scgensynth as sgs

GENERATORS = list(sgs.model.available().index)
TISSUES = ["Liver", "Lung", "Brain"]
TINY = {"n_steps": 20, "enable_progress_bar": False, "selection": None, "batch_size": 16}


@pytest.fixture(scope="module")
def small():
    """60 GTEx samples of three tissues x 40 genes, with an age; raw-count-like copy too."""
    adata = sgs.datasets.gtex_tissues()
    adata = adata[adata.obs["tissue"].isin(TISSUES).to_numpy(), :40].copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.remove_unused_categories()
    adata.obs["age"] = np.linspace(20.0, 70.0, adata.n_obs)
    return adata


@pytest.fixture(scope="module")
def counts(small):
    """The same samples as integer counts (so the models draw library sizes)."""
    adata = small.copy()
    adata.X = np.round(np.expm1(np.clip(adata.X, 0, None)) * 10).astype(np.float32)
    return adata


@pytest.fixture(scope="module")
def models(small):
    """One briefly trained model of every registered generator (tissue + age)."""
    out = {}
    for name in GENERATORS:
        out[name] = sgs.tl.train(
            small,
            name,
            categorical_covariate_keys=["tissue"],
            continuous_covariate_keys=["age"],
            **TINY,
            **sgs.model.get_model_class(name).quick_kwargs,
        )
    return out


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float rounding of batch-size-dependent matrix products."""
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(a).max()))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("name", GENERATORS)
def test_batch_size_does_not_change_the_samples(models, name):
    model = models[name]
    n = 600  # crosses the 256-row noise blocks
    iterative = "n_sampling_steps" in model.sampling_options()  # a denoising loop per batch
    kwargs = {"n_sampling_steps": 5} if iterative else {}
    reference = model.generate(n, seed=3, batch_size=n, **kwargs)
    for batch_size in (1, 7, 256, 599, 4096):
        if batch_size == 1 and iterative:
            batch_size = 3  # 600 one-sample denoising loops add nothing but time
        other = model.generate(n, seed=3, batch_size=batch_size, **kwargs)
        _same(np.asarray(other.X), np.asarray(reference.X))
        pd.testing.assert_frame_equal(other.obs, reference.obs)
    # and another seed gives other samples
    assert not np.allclose(model.generate(n, seed=4, **kwargs).X, reference.X)


@pytest.mark.parametrize("name", GENERATORS)
def test_more_samples_extend_fewer_ones(models, name):
    """Sample i depends on the seed and i only: generating more never changes the first."""
    model = models[name]
    # where there is a choice of sampler, the one drawing fresh noise at every step (DDPM's
    # ancestral sampler): the most draws to key by row
    kwargs = {"sampler": "ddpm"} if "sampler" in model.sampling_options() else {}
    many = model.generate(700, seed=11, batch_size=300, **kwargs)
    few = model.generate(300, seed=11, batch_size=64, **kwargs)
    _same(np.asarray(many.X[:300]), np.asarray(few.X))
    pd.testing.assert_frame_equal(many.obs.iloc[:300], few.obs)


def test_count_models_draw_library_sizes_by_row(counts):
    model = sgs.tl.train_wgan(
        counts, categorical_covariate_keys=["tissue"], **TINY, **sgs.model.WGANGP.quick_kwargs
    )
    assert model.scaling_["mode"] == "counts"
    given = {"tissue": ["Liver"] * 300}
    a = model.generate(covariates=given, seed=5, batch_size=300)
    b = model.generate(covariates=given, seed=5, batch_size=13)
    _same(np.asarray(a.X), np.asarray(b.X))


@pytest.mark.parametrize("name", GENERATORS)
def test_the_file_holds_the_in_memory_samples_for_any_batch_size(models, name, tmp_path):
    model = models[name]
    memory = model.generate(500, seed=2, batch_size=500)
    on_disk = model.generate(500, seed=2, batch_size=37, filename=tmp_path / "s.h5ad")
    assert on_disk.isbacked
    _same(np.asarray(on_disk.X[:]), np.asarray(memory.X))
    pd.testing.assert_frame_equal(on_disk.obs, memory.obs)
    assert on_disk.uns["sgs"]["seed"] == 2
    on_disk.file.close()


def test_the_file_route_never_holds_all_covariates(models, tmp_path, monkeypatch):
    """Covariates are written a batch at a time too: writing does not grow with n_obs.

    (Opening the file backed then reads its obs, as anndata's backed mode does.)
    """
    from scgensynth.model.base import _generation

    model = models["wgan"]
    opened = _generation.ad.read_h5ad
    peaks = {}

    def open_backed(path, backed):
        peaks[n] = tracemalloc.get_traced_memory()[1]  # the writing is done
        return opened(path, backed=backed)

    monkeypatch.setattr(_generation.ad, "read_h5ad", open_backed)
    for n in (20_000, 80_000):
        tracemalloc.start()
        out = model.generate(n, seed=0, batch_size=2048, filename=tmp_path / f"s{n}.h5ad")
        tracemalloc.stop()
        assert out.n_obs == n
        assert list(out.obs.columns) == ["tissue", "age"]
        assert out.obs_names[-1] == f"synth_{n - 1}"
        out.file.close()
    # 60,000 more samples add < 8 bytes each to the writing's peak (~300 each in memory)
    assert peaks[80_000] - peaks[20_000] < 8 * 60_000, peaks


def test_a_set_larger_than_the_disk_is_refused_before_any_work(models, tmp_path):
    target = tmp_path / "huge.h5ad"
    tracemalloc.start()
    with pytest.raises(OSError, match=r"free") as err:
        models["wgan"].generate(10**12, seed=0, filename=target)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "huge.h5ad" in str(err.value) or str(tmp_path) in str(err.value)
    assert peak < 50 * 2**20  # no covariate rows were built
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("seed", "error"),
    [(-1, ValueError), (2**32, ValueError), (2**70, ValueError), (1.5, TypeError),
     (True, TypeError), ("0", TypeError), (np.nan, TypeError)],
)  # fmt: skip
def test_seeds_outside_the_storable_range_are_refused(models, seed, error):
    with pytest.raises(error, match=r"seed must be"):
        models["wgan"].generate(3, seed=seed)


def test_the_largest_seed_works_and_is_stored(models, tmp_path):
    synth = models["wgan"].generate(3, seed=2**32 - 1)
    assert synth.uns["sgs"]["seed"] == 2**32 - 1
    synth.write_h5ad(tmp_path / "s.h5ad")
    assert ad.read_h5ad(tmp_path / "s.h5ad").uns["sgs"]["seed"] == 2**32 - 1
    np.testing.assert_array_equal(synth.X, models["wgan"].generate(3, seed=np.int64(2**32 - 1)).X)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, None, True])
def test_bad_generation_batch_sizes_are_refused(models, batch_size):
    with pytest.raises((ValueError, TypeError), match=r"batch_size must be a whole number"):
        models["wgan"].generate(3, seed=0, batch_size=batch_size)


@pytest.mark.parametrize("n_obs", [-1, 2.5, "3", True, np.nan])
def test_bad_sample_counts_are_refused(models, n_obs):
    with pytest.raises((ValueError, TypeError), match=r"n_obs must be a whole number"):
        models["wgan"].generate(n_obs, seed=0)


# -- covariates given as a dict or a frame ----------------------------------------------------
def test_a_dict_takes_one_value_per_sample(models):
    synth = models["wgan"].generate(
        covariates={"tissue": ["Liver", "Lung", "Brain"], "age": 40.0}, seed=0
    )
    assert synth.obs["tissue"].tolist() == ["Liver", "Lung", "Brain"]
    assert synth.obs["age"].tolist() == [40.0, 40.0, 40.0]


@pytest.mark.parametrize(
    ("covariates", "n_obs", "match"),
    [
        ({"tissue": ["Liver", "Lung"], "age": [1.0, 2.0, 3.0]}, None, r"one value per sample"),
        ({"tissue": ["Liver", "Lung"], "age": 3.0}, 5, r"one value per sample"),
        ({"tissue": "Liver", "age": 3.0}, None, r"Pass n_obs"),
        ({"tisue": "Liver", "age": 3.0}, 2, r"Unknown covariate\(s\) \['tisue'\].*\['tissue'"),
        ({"tissue": {"a": 1}, "age": 3.0}, 2, r"not a dict"),
        ({"tissue": [["Liver"]], "age": 3.0}, 1, r"one-dimensional"),
        ({"tissue": "Liver", "age": True}, 2, r"'age' must be numbers \(not booleans"),
        ({"tissue": "Liver", "age": "old"}, 2, r"'age' must be numbers"),
        ({"tissue": True, "age": 3.0}, 2, r"Unknown categories for 'tissue': \[True\]"),
        ({"tissue": "Liver", "age": 1e35}, 2, r"'age' has 2 value\(s\) beyond"),
    ],
)
def test_bad_covariate_dicts_are_named(models, covariates, n_obs, match):
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        models["wgan"].generate(n_obs, covariates=covariates, seed=0)


def test_a_frame_with_a_doubled_column_is_refused(models):
    frame = pd.DataFrame([["Liver", "Lung", 30.0]], columns=["tissue", "tissue", "age"])
    with pytest.raises(ValueError, match=r"more than one column named \['tissue'\]"):
        models["wgan"].generate(covariates=frame, seed=0)


def test_a_category_without_training_samples_is_not_generated(small):
    """A model set up on data whose dtype has an empty category warns and refuses it."""
    adata = small.copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.add_categories(["Heart"])
    sgs.model.WGANGP.setup_anndata(adata, categorical_covariate_keys=["tissue"])
    model = sgs.model.WGANGP(adata, **sgs.model.WGANGP.quick_kwargs)
    model.train(**TINY)
    assert "Heart" in model.categories["tissue"]
    with pytest.raises(ValueError, match=r"\['Heart'\] of 'tissue' had no training samples"):
        model.generate(2, covariates={"tissue": "Heart"})
    assert set(model.generate(300, seed=0).obs["tissue"]) <= {"Liver", "Lung", "Brain"}
    with pytest.raises(ValueError, match=r"had no training samples"):
        sgs.tl.counterfactual(model, "tissue", "Liver", "Heart", n_obs=5)


def test_a_set_whose_obs_would_not_fit_in_memory_when_opened_is_refused(
    models, tmp_path, monkeypatch
):
    from scgensynth.model.base import _generation

    monkeypatch.setattr(_generation, "_available_memory", lambda: 2**30)  # 1 GiB available
    target = tmp_path / "s.h5ad"
    with pytest.raises(MemoryError, match=r"Generate the set in parts"):
        models["wgan"].generate(10**8, seed=0, filename=target)
    assert list(tmp_path.iterdir()) == []
    models["wgan"].generate(1000, seed=0, filename=target).file.close()  # a small set is fine


def test_generating_over_the_data_a_model_reads_is_refused(small, tmp_path):
    """The data file a backed model trains on, or any file open backed, is never replaced."""
    path = tmp_path / "data.h5ad"
    small.write_h5ad(path)
    before = path.read_bytes()
    backed = ad.read_h5ad(path, backed="r")
    model = sgs.tl.train_wgan(
        backed, categorical_covariate_keys=["tissue"], **TINY, **sgs.model.WGANGP.quick_kwargs
    )
    for call in (model.generate, lambda *a, **k: sgs.tl.generate(model, *a, **k)):
        with pytest.raises(ValueError, match=r"is open in this session"):
            call(10, seed=0, filename=path, overwrite=True)
    backed.file.close()
    assert path.read_bytes() == before
    # closed, it is a file like any other: refused without overwrite=True
    with pytest.raises(FileExistsError, match=r"overwrite=True"):
        sgs.tl.generate(model, 10, seed=0, filename=path)
    assert path.read_bytes() == before
