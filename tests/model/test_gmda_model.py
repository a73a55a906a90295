"""GMDA: the density-alignment loss and probes, and the model on GTEx and wide data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scgensynth as sgs
from scgensynth.module._gmda import Probes, alignment_loss, distance_quantile, keep_hardest

QUIET = {"enable_progress_bar": False}


def test_alignment_loss_formula():
    real = torch.tensor([3.0, 5.0, 0.0, 2.0])
    gen = torch.tensor([1.0, 5.0, 4.0, 0.0])
    expected = (real - gen).abs() / (torch.log1p(torch.maximum(real, gen)) + 1e-3)
    torch.testing.assert_close(alignment_loss(real, gen), expected)
    assert float(alignment_loss(real, gen)[1]) == 0.0
    # symmetric, and larger for larger mismatches at the same mass
    torch.testing.assert_close(alignment_loss(gen, real), alignment_loss(real, gen))
    assert alignment_loss(torch.tensor([10.0]), torch.tensor([2.0])) > alignment_loss(
        torch.tensor([10.0]), torch.tensor([8.0])
    )


def test_persistence_keeps_the_highest_loss_probes():
    n = 10
    probes = Probes(
        torch.arange(n)[:, None], torch.ones(n, 1, dtype=torch.bool), torch.zeros(n, 1),
        torch.ones(n, 1),
    )  # fmt: skip
    losses = torch.tensor([0.3, 0.9, 0.1, 0.8, 0.5, 0.05, 0.7, 0.2, 0.6, 0.4])
    kept = keep_hardest(probes, losses, 0.3)
    assert sorted(kept.genes.ravel().tolist()) == [1, 3, 6]
    assert keep_hardest(probes, losses, 0.0) is None


def test_widths_follow_the_distance_quantiles():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(5, 200, generator=gen)
    columns = values.sort(dim=1).values
    index = torch.tensor([[0, 3], [4, 1], [2, 2]])
    centre = torch.randn(3, 2, generator=gen)
    q = torch.tensor([0.1, 0.3, 0.3])
    out = distance_quantile(columns, index, centre, q)
    for k in range(3):
        for j in range(2):
            ref = torch.quantile((values[index[k, j]] - centre[k, j]).abs(), q[k])
            torch.testing.assert_close(out[k, j], ref)


@pytest.fixture(scope="module")
def trained(gtex_split):
    train, _ = gtex_split
    """GMDA with its defaults (3,000 steps of 256 samples, model selection)."""
    return sgs.tl.train_gmda(train, categorical_covariate_keys=["tissue"], seed=0, **QUIET)


def test_parameters_are_an_order_of_magnitude_fewer_than_wgan(trained):
    n = sum(p.numel() for p in trained.module.parameters() if p.requires_grad)
    assert n * 10 <= 391_692, n  # WGAN-GP's generator + critic on the same data


@pytest.mark.slow
def test_samples_carry_their_tissue(trained, gtex_split, real_classifier):
    train, test = gtex_split
    tissues = trained.categories["tissue"]
    synth = trained.generate(covariates=pd.DataFrame({"tissue": np.repeat(tissues, 8)}), seed=1)
    assert np.isfinite(synth.X).all()
    hit = (real_classifier.predict(synth.X) == synth.obs["tissue"].astype(str)).mean()
    assert hit >= 0.8, hit  # chance: 1/26
    # a classifier trained on GMDA samples recognises real tissues far above chance
    draw = trained.generate(train.n_obs, seed=2)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(draw.X, draw.obs["tissue"].astype(str))
    acc = (clf.predict(test.X) == test.obs["tissue"].astype(str)).mean()
    assert acc >= 0.25, acc


def test_history_and_requested_covariates(trained):
    assert {"gmda_loss", "dark_loss", "total_loss"} <= set(trained.history)
    loss = trained.history["gmda_loss"].to_numpy().ravel()
    assert loss[-1] < loss[0], loss
    liver = trained.generate(20, covariates={"tissue": "Liver"}, seed=0)
    assert (liver.obs["tissue"] == "Liver").all()


def test_save_load_round_trip(trained, gtex_split, tmp_path):
    path = tmp_path / "gmda"
    trained.save(str(path))
    back = sgs.model.load_model(str(path), adata=gtex_split[0])
    assert type(back) is sgs.model.GMDA
    np.testing.assert_array_equal(trained.generate(30, seed=5).X, back.generate(30, seed=5).X)


@pytest.mark.slow
def test_interpolation_endpoints(trained, gtex_split, real_classifier, check_walk):
    walk = sgs.tl.interpolate(trained, "tissue", "Blood", "Blood Vessel", steps=5, n_per_step=60)
    check_walk(walk, real_classifier, gtex_split[0], "Blood", "Blood Vessel")


def test_wide_data_with_two_covariates(bladderbatch, snapshot):
    snap = snapshot(bladderbatch)
    model = sgs.tl.train_gmda(
        bladderbatch, categorical_covariate_keys=["cancer", "batch"], n_steps=20,
        n_probes=200, n_dark_probes=100, selection=None, seed=0, **QUIET,
    )  # fmt: skip
    snap.assert_unchanged(bladderbatch, new_uns=("gmda",))
    synth = model.generate(4, covariates={"cancer": "Normal", "batch": "2"}, seed=0)
    assert synth.shape == (4, 22_283)
    assert np.isfinite(synth.X).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"density": 1.5}, "density"),
        ({"steepness": 0}, "steepness"),
        ({"persistence": 1.0}, "persistence"),
        ({"n_probes": 0}, "n_probes"),
        ({"n_probe_genes": 1000}, "n_probe_genes"),
        ({"dark_weight": -1}, "dark_weight"),
    ],
)
def test_bad_arguments(gtex, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sgs.tl.train_gmda(gtex, categorical_covariate_keys=["tissue"], n_steps=1, **kwargs)
