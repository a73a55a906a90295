"""Counts in, counts out: a model trained on raw counts generates integer counts by default.

Real raw counts: GTEx skeletal muscle (``gtex_muscle_gwena``, 50 samples, read counts),
2,000 of its expressed genes drawn at random (for speed), split in two halves stratified by
sex. The generator is trained on one half; the other half, never seen, is the reference
whose sampling noise the generated counts must stay within.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import scgensynth as sgs

COUNTS_SET = "/work/shared/data/gtex_muscle_gwena.h5ad"
TINY = {"n_steps": 20, "enable_progress_bar": False, "selection": None, "batch_size": 16}


@pytest.fixture(scope="module")
def halves():
    """(train, held-out) halves of 2,000 random expressed genes of the muscle counts."""
    adata = ad.read_h5ad(COUNTS_SET)
    X = np.asarray(adata.X)
    assert np.array_equal(X, np.rint(X))  # raw counts
    assert X.min() >= 0
    expressed = np.flatnonzero(X.sum(0) > 0)
    genes = np.sort(np.random.default_rng(0).choice(expressed, 2000, replace=False))
    adata = adata[:, genes].copy()
    train, held = train_test_split(
        np.arange(adata.n_obs), test_size=0.5, stratify=adata.obs["sex"], random_state=0
    )
    return adata[np.sort(train)].copy(), adata[np.sort(held)].copy()


@pytest.fixture(scope="module")
def model(halves):
    """The default generator trained on the training half (scaling detected: counts)."""
    fitted = sgs.tl.train(halves[0], categorical_covariate_keys=["sex"])
    assert fitted.scaling_["mode"] == "counts"
    return fitted


def _dense(X) -> np.ndarray:
    return np.asarray(X, dtype=np.float64)


# -- what comes out --------------------------------------------------------------------------
def test_counts_in_give_integer_counts_out(model, halves):
    synth = model.generate(200, seed=0)
    X = _dense(synth.X)
    assert synth.X.dtype == np.float32  # what scanpy's readers give raw counts
    np.testing.assert_array_equal(X, np.rint(X))
    assert X.min() >= 0
    assert synth.uns["sgs"]["counts"] == "sample"
    # library sizes: each sample's expected total is a training sample's library size, and
    # its rounded total lies within a few standard deviations of it
    library = _dense(halves[0].X).sum(1)
    expected = _dense(model.generate(200, seed=0, counts="mean").X).sum(1)
    nearest = np.abs(expected[:, None] - library[None, :]).min(1)
    np.testing.assert_array_less(nearest, 1e-4 * expected)
    totals = X.sum(1)
    assert (np.abs(totals - expected) <= 5 * np.sqrt(expected)).all()
    slack = 5 * np.sqrt(library.max())
    assert library.min() - slack <= totals.min()
    assert totals.max() <= library.max() + slack


def test_sample_rounds_the_mean_at_random_without_bias(model):
    n = 400
    sample = _dense(model.generate(n, seed=1).X)
    mean = _dense(model.generate(n, seed=1, counts="mean").X)
    assert model.generate(3, seed=1, counts="mean").uns["sgs"]["counts"] == "mean"
    assert not np.array_equal(mean, np.rint(mean))  # floats: expected values
    # each count is the floor or the ceiling of its mean ...
    assert np.isin(sample - np.floor(mean), [0.0, 1.0]).all()
    # ... the ceiling with the fraction's odds: unbiased per gene, Bernoulli variance
    frac = mean - np.floor(mean)
    keep = (frac * (1 - frac)).sum(0) > 5
    z = (sample - mean)[:, keep].sum(0) / np.sqrt((frac * (1 - frac))[:, keep].sum(0))
    assert (np.abs(z) < 4.5).mean() > 0.99
    assert abs(np.median(z)) < 0.2
    # the test tells: plain rounding or flooring fail it
    for wrong in (np.rint(mean), np.floor(mean)):
        z_wrong = (wrong - mean)[:, keep].sum(0) / np.sqrt((frac * (1 - frac))[:, keep].sum(0))
        assert (np.abs(z_wrong) < 4.5).mean() < 0.99 or abs(np.median(z_wrong)) >= 0.2


def test_poisson_draws_poisson_counts_around_the_mean(model):
    n = 400
    sample = _dense(model.generate(n, seed=1, counts="poisson").X)
    mean = _dense(model.generate(n, seed=1, counts="mean").X)
    assert model.generate(3, seed=1, counts="poisson").uns["sgs"]["counts"] == "poisson"
    assert _poisson_around(sample, mean)
    # and the test tells: truncated means or Poisson draws around a wrong mean fail it
    rng = np.random.default_rng(0)
    assert not _poisson_around(np.floor(mean), mean)
    assert not _poisson_around(np.rint(mean), mean)  # unbiased-looking, variance missing
    assert not _poisson_around(rng.poisson(1.2 * mean).astype(float), mean)
    assert not _poisson_around(rng.poisson(mean * rng.gamma(4.0, 0.25, mean.shape)), mean)


def _poisson_around(counts: np.ndarray, mean: np.ndarray) -> bool:
    """Counts unbiased around ``mean`` (per gene) with Poisson variance (the mean's)."""
    keep = mean.sum(0) > 5  # genes with something to draw
    diff = counts[:, keep] - mean[:, keep]
    z = diff.sum(0) / np.sqrt(mean[:, keep].sum(0))  # ~N(0, 1) per gene if unbiased Poisson
    dispersion = (diff**2).sum(0) / mean[:, keep].sum(0)  # ~1 per gene if Poisson
    return bool(
        (np.abs(z) < 4.5).mean() > 0.99
        and abs(np.median(z)) < 0.2
        and 0.9 < np.median(dispersion) < 1.1
    )


def test_generated_counts_are_within_the_real_sampling_noise(model, halves):
    """Per-gene mean and variance against held-out real counts, next to the real training half.

    The training half itself is the reference (real data of the same size, drawn from the
    same population): the synthetic counts must agree with the held-out half about as well.
    """
    train, held = (_dense(a.X) for a in halves)
    ref = _held_out_reference(held)
    real = _agreement(train, ref, train)
    synth = _dense(model.generate(4 * len(train), seed=0).X)
    gaps = _gaps(_agreement(synth, ref, train), real)
    assert _within_noise(gaps), str(gaps)
    # the same comparison rejects wrongly made counts
    mean = _dense(model.generate(4 * len(train), seed=0, counts="mean").X)
    rng = np.random.default_rng(0)
    for wrong in (np.floor(mean), rng.poisson(2 * mean), rng.poisson(0.8 * mean)):
        wrong_gaps = _gaps(_agreement(wrong.astype(float), ref, train), real)
        assert not _within_noise(wrong_gaps), str(wrong_gaps)


def _held_out_reference(held: np.ndarray, n_boot: int = 200) -> dict[str, np.ndarray]:
    """Held-out per-gene mean and variance, with 95 % bootstrap intervals (rows resampled)."""
    rng = np.random.default_rng(0)
    boots = [held[rng.integers(0, len(held), len(held))] for _ in range(n_boot)]
    lo_m, hi_m = np.percentile([b.mean(0) for b in boots], [2.5, 97.5], axis=0)
    lo_v, hi_v = np.percentile([b.var(0, ddof=1) for b in boots], [2.5, 97.5], axis=0)
    return {"mean": held.mean(0), "var": held.var(0, ddof=1), "m": (lo_m, hi_m), "v": (lo_v, hi_v)}


def _agreement(X: np.ndarray, ref: dict, train: np.ndarray) -> dict[str, float]:
    mean, var = X.mean(0), X.var(0, ddof=1)
    low = train.mean(0) < 10  # where integers and the sampling noise matter most
    some = low & (train.mean(0) >= 0.5)  # and of those, the ones with counts to shift
    return {
        "r_logmean": np.corrcoef(np.log1p(mean), np.log1p(ref["mean"]))[0, 1],
        "r_logvar": np.corrcoef(np.log1p(var), np.log1p(ref["var"]))[0, 1],
        "in_mean": ((mean >= ref["m"][0]) & (mean <= ref["m"][1])).mean(),
        "in_var": ((var >= ref["v"][0]) & (var <= ref["v"][1])).mean(),
        "shift_low": np.median(mean[some] - ref["mean"][some]),  # counts
        "var_ratio_low": np.median((1 + var[low]) / (1 + ref["var"][low])),
    }


def _gaps(synth: dict[str, float], real: dict[str, float]) -> dict[str, float]:
    return {k: float(synth[k] - real[k]) for k in synth}


def _within_noise(gaps: dict[str, float]) -> bool:
    """Margins set from six splits of this set: the default's worst gap, plus about half."""
    return (
        gaps["r_logmean"] >= -0.005
        and gaps["r_logvar"] >= -0.01
        and gaps["in_mean"] >= -0.12
        and gaps["in_var"] >= -0.2
        and abs(gaps["shift_low"]) <= 0.2
        and abs(gaps["var_ratio_low"]) <= 0.15
    )


# -- the same seed, the same counts ----------------------------------------------------------
def test_the_same_seed_gives_the_same_counts_in_memory_or_in_a_file(model, tmp_path):
    n = 600  # crosses the 256-row blocks
    reference = model.generate(n, seed=3, batch_size=256)
    for batch_size in (256, 600, 37, 7):  # 7: a few counts move by one (float rounding)
        on_disk = model.generate(
            n, seed=3, batch_size=batch_size, filename=tmp_path / f"s{batch_size}.h5ad"
        )
        in_memory = model.generate(n, seed=3, batch_size=batch_size)
        assert on_disk.uns["sgs"]["counts"] == "sample"
        file_values = np.asarray(on_disk.X[:])
        on_disk.file.close()
        assert file_values.dtype == np.float32
        np.testing.assert_array_equal(file_values, np.asarray(in_memory.X))
        _same_counts(model, in_memory, reference, batch_size, 256)
    # sample i depends on the seed and i only
    few = model.generate(300, seed=3, batch_size=256)
    np.testing.assert_array_equal(np.asarray(few.X), np.asarray(reference.X[:300]))


def _same_counts(model, counts, reference, batch_size: int, reference_batch: int) -> None:
    """Equal, except (rarely, by one) where the batch size moved the mean by float rounding."""
    differ = np.asarray(counts.X) != np.asarray(reference.X)
    if not differ.any():
        return
    n = counts.n_obs
    mean = model.generate(n, seed=3, batch_size=batch_size, counts="mean").X
    mean_ref = model.generate(n, seed=3, batch_size=reference_batch, counts="mean").X
    assert (np.asarray(mean)[differ] != np.asarray(mean_ref)[differ]).all()
    assert (np.abs(np.asarray(counts.X) - np.asarray(reference.X))[differ] == 1).all()
    assert differ.mean() < 1e-3, differ.mean()


def test_counts_from_every_route_of_generation(model, halves):
    """sgs.tl.generate and augment take counts=; uns records it."""
    mean = sgs.tl.generate(model, n_obs=20, seed=2, counts="mean")
    np.testing.assert_array_equal(mean.X, model.generate(20, seed=2, counts="mean").X)
    default = sgs.tl.generate(model, n_obs=20, seed=2)
    np.testing.assert_array_equal(default.X, model.generate(20, seed=2, counts="sample").X)
    both = sgs.tl.augment(halves[0], model, n_obs=20, seed=2, counts="mean")
    synthetic = np.asarray(both[both.obs["sgs_source"] == "synthetic"].X)
    np.testing.assert_array_equal(synthetic, mean.X)
    assert both.uns["sgs"]["counts"] == "mean"
    female = model.generate(covariates={"sex": ["female"] * 5}, seed=0)
    np.testing.assert_array_equal(female.X, np.rint(female.X))


def test_counterfactual_and_interpolation_take_counts(halves):
    wgan = sgs.tl.train_wgan(
        halves[0], categorical_covariate_keys=["sex"], **TINY, **sgs.model.WGANGP.quick_kwargs
    )
    cf = sgs.tl.counterfactual(wgan, "sex", "male", "female", n_obs=20, seed=0)
    np.testing.assert_array_equal(cf.X, np.rint(cf.X))
    assert cf.uns["sgs"]["counts"] == "sample"
    expected = sgs.tl.counterfactual(wgan, "sex", "male", "female", n_obs=20, counts="mean")
    assert not np.array_equal(expected.X, np.rint(expected.X))
    assert expected.uns["sgs"]["counts"] == "mean"
    # the two arms share each individual's library size
    totals = expected.X.sum(1)
    np.testing.assert_allclose(totals[:20], totals[20:], rtol=1e-5)
    walk = sgs.tl.interpolate(wgan, "sex", "male", "female", steps=3, n_per_step=4, seed=0)
    np.testing.assert_array_equal(walk.X, np.rint(walk.X))
    smooth = sgs.tl.interpolate(
        wgan, "sex", "male", "female", steps=3, n_per_step=4, counts="mean"
    )
    assert smooth.uns["sgs"]["counts"] == "mean"


def test_a_private_model_draws_counts_from_public_library_sizes(halves):
    train, public = halves
    private = sgs.tl.train(
        train, categorical_covariate_keys=["sex"], privacy={"epsilon": 10}, public=public
    )
    synth = private.generate(50, seed=0)
    X = np.asarray(synth.X)
    np.testing.assert_array_equal(X, np.rint(X))
    assert synth.uns["sgs"]["counts"] == "sample"
    assert "privacy" in synth.uns["sgs"]
    expected = np.asarray(private.generate(50, seed=0, counts="mean").X).sum(1)
    public_library = np.asarray(public.X).sum(1)
    nearest = np.abs(expected[:, None] - public_library[None, :]).min(1)
    np.testing.assert_array_less(nearest, 1e-4 * expected)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("counts", ["round", "Sample", True, 1, ["sample"]])
def test_unknown_counts_options_are_refused(model, counts):
    with pytest.raises(ValueError, match=r"counts must be one of \['sample', 'poisson', 'mean'\]"):
        model.generate(3, seed=0, counts=counts)


@pytest.mark.parametrize("counts", ["sample", "poisson", "mean"])
def test_counts_for_a_model_not_trained_on_counts_is_refused(counts):
    adata = sgs.datasets.gtex_tissues()[:, :30].copy()  # log-scale values
    other = sgs.tl.train(adata, categorical_covariate_keys=["tissue"])
    with pytest.raises(ValueError, match=r"trained with scaling='standardize'"):
        other.generate(3, seed=0, counts=counts)
    with pytest.raises(ValueError, match=r"raw counts"):
        sgs.tl.generate(other, n_obs=3, counts=counts)
    assert "counts" not in other.generate(3, seed=0).uns["sgs"]
