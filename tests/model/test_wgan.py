"""WGANGP on the bundled GTEx set: quality with default settings, save/load, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import scgensynth as sgs
from scgensynth.train import GeneratorSelection, SelectionCriterion

QUIET = {"enable_progress_bar": False}


@pytest.fixture(scope="module")
def trained(gtex_split):
    """The conditional model trained with the package defaults (no tuning in the test)."""
    train, _ = gtex_split
    return sgs.tl.train_wgan(train, categorical_covariate_keys=["tissue"], seed=0, **QUIET)


@pytest.mark.slow
def test_classifier_trained_on_synthetic_recognises_real_tissues(trained, gtex_split):
    train, test = gtex_split
    synth = trained.generate(train.n_obs, seed=1)
    rv = sgs.metrics.reverse_validation(
        test, synth, "tissue", reference=train, classifier="logistic"
    )
    # a model that ignored the covariates would score ~1/26 macro-F1
    assert rv["reference_macro_f1"] > 0.9
    assert rv["macro_f1"] >= 0.9 * rv["reference_macro_f1"], rv


@pytest.mark.slow
def test_gene_means_match_held_out_real(trained, gtex_split):
    _, test = gtex_split
    synth = trained.generate(2000, seed=2)
    r = np.corrcoef(np.asarray(synth.X).mean(0), np.asarray(test.X).mean(0))[0, 1]
    assert r >= 0.95


@pytest.mark.slow
def test_samples_of_a_tissue_are_nearest_to_that_tissue(trained, gtex_split):
    _, test = gtex_split
    tissues = trained.categories["tissue"]
    covariates = pd.DataFrame({"tissue": np.repeat(tissues, 40)})
    synth = trained.generate(covariates=covariates, seed=3)
    X_real = np.asarray(test.X, dtype=float)
    labels = test.obs["tissue"].to_numpy()
    centroids = np.stack([X_real[labels == t].mean(0) for t in tissues])
    d = ((np.asarray(synth.X)[:, None, :] - centroids[None]) ** 2).sum(-1)
    nearest = np.asarray(tissues)[d.argmin(1)]
    share = (nearest == synth.obs["tissue"].to_numpy()).mean()
    assert share >= 0.9, share


@pytest.mark.slow
def test_history_and_selection_are_recorded(trained):
    hist = trained.history
    for key in ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty"):
        assert key in hist, key
        assert len(hist[key]) >= 10
        assert np.isfinite(hist[key].to_numpy()).all()
    sel = trained.selection_
    assert {"epoch", "score", "correlation", "conditional", "fidelity", "novelty"} <= set(
        sel.columns
    )
    assert sel["novelty"].between(0, 1).all()
    assert (sel["seconds"] > 0).all()
    assert sel["seconds"].is_monotonic_increasing
    best = sel.loc[sel["score"].idxmax(), "epoch"]
    assert trained.best_epoch_ == best
    # the restored weights give the recorded best score
    crit = trained._selection_callback.criterion
    score, _ = crit(trained.module)
    assert score == pytest.approx(sel["score"].max(), abs=1e-5)


@pytest.mark.slow
def test_save_load_round_trip_gives_identical_samples(trained, gtex_split, tmp_path):
    train, _ = gtex_split
    before = trained.generate(300, seed=11)
    trained.save(str(tmp_path / "wgan"), overwrite=True)
    snapshot = train.copy()
    loaded = sgs.model.WGANGP.load(str(tmp_path / "wgan"), adata=train)
    after = loaded.generate(300, seed=11)
    np.testing.assert_array_equal(before.X, after.X)
    pd.testing.assert_frame_equal(before.obs, after.obs)
    assert loaded.categories == trained.categories
    # loading registers a private proxy: the user's AnnData is untouched
    assert set(train.uns) == set(snapshot.uns)
    assert set(train.obsm) == set(snapshot.obsm)
    assert list(train.obs.columns) == list(snapshot.obs.columns)


def _small(adata, seed, **kw):
    return sgs.tl.train_wgan(
        adata,
        categorical_covariate_keys=["tissue"],
        seed=seed,
        n_steps=60,
        n_hidden=(32, 32),
        n_latent=8,
        **QUIET,
        **kw,
    )


def test_same_seed_gives_identical_model_and_samples(gtex_split):
    train, _ = gtex_split
    a, b, c = _small(train, 5), _small(train, 5), _small(train, 6)
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0)
    np.testing.assert_array_equal(a.generate(50, seed=0).X, b.generate(50, seed=0).X)
    assert not np.array_equal(a.generate(50, seed=0).X, c.generate(50, seed=0).X)
    assert not np.array_equal(a.generate(50, seed=0).X, a.generate(50, seed=1).X)


def test_embedding_sizes_follow_the_paper(gtex_split):
    train, _ = gtex_split
    model = _small(train, 0)
    for emb in (model.module.generator_embedding, model.module.critic_embedding):
        assert emb.embeddings[0].num_embeddings == 26
        assert emb.embeddings[0].embedding_dim == 6  # floor(sqrt(26)) + 1
    # the generator and the critic have separate embeddings
    assert (
        model.module.generator_embedding.embeddings[0].weight.data_ptr()
        != model.module.critic_embedding.embeddings[0].weight.data_ptr()
    )


def test_early_stopping_fires_only_after_min_steps_and_restores_best(gtex_split):
    train, _ = gtex_split
    model = _small(train, 0, patience=1, selection_every=10, min_steps=30, max_epochs=40)
    sel = model.selection_
    steps_per_epoch = int(np.ceil(len(model.train_indices_) / 32))
    last_epoch = int(sel["epoch"].max())
    assert last_epoch < 40, "patience=1 should stop long before 40 epochs"
    assert last_epoch * steps_per_epoch >= 30, "stopped before min_steps"
    assert model.best_epoch_ == int(sel.loc[sel["score"].idxmax(), "epoch"])


def test_correlation_only_criterion_and_no_selection(gtex_split):
    train, _ = gtex_split
    m = _small(train, 0, selection="correlation")
    assert set(m.selection_.columns) == {"epoch", "step", "seconds", "score", "correlation"}
    m2 = _small(train, 0, selection=None)
    assert not hasattr(m2, "selection_") or m2._selection_callback is None
    with pytest.raises(ValueError, match="selection criterion must be one of"):
        _small(train, 0, selection="bogus")


class _Oracle(torch.nn.Module):
    """Stand-in generator returning given samples (to test the criterion alone)."""

    def __init__(self, samples):
        super().__init__()
        self.samples = samples
        self.scaling = sgs.nn.ExpressionScaling(samples.shape[1])

    def generate_scaled(self, n, cat=None, cont=None, generator=None, **kw):
        return self.samples[:n]


def test_selection_criterion_rewards_conditional_fidelity():
    adata = sgs.datasets.gtex_tissues()
    X = torch.as_tensor(np.asarray(adata.X), dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    codes = torch.as_tensor(adata.obs["tissue"].cat.codes.to_numpy()).long()[:, None]
    crit = SelectionCriterion(real=X, cat=codes, cont=None)
    gen = torch.Generator().manual_seed(0)
    # right tissue for each row: real samples of the same tissue, shuffled within tissue
    perm = torch.arange(len(X))
    for c in codes.unique():
        idx = torch.nonzero(codes[:, 0] == c).ravel()
        perm[idx] = idx[torch.randperm(len(idx), generator=gen)]
    good, good_parts = crit(_Oracle(X[perm]))
    # realistic samples, but ignoring the requested tissue
    bad, bad_parts = crit(_Oracle(X[torch.randperm(len(X), generator=gen)]))
    # collapsed generator: one sample repeated
    collapsed, col_parts = crit(_Oracle(X[:1].repeat(len(X), 1)))
    assert good_parts["conditional"] > 0.8
    assert bad_parts["conditional"] < 0.15
    assert good > bad > collapsed
    assert col_parts["fidelity"] < 0.1


def test_selection_criterion_penalises_copies_of_training_samples():
    """The novelty part: 0 for a generator that returns training samples, 1 for unseen ones."""
    adata = sgs.datasets.gtex_tissues()
    X = torch.as_tensor(np.asarray(adata.X), dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    codes = torch.as_tensor(adata.obs["tissue"].cat.codes.to_numpy()).long()[:, None]
    gen = torch.Generator().manual_seed(0)
    holdout = torch.zeros(len(X), dtype=torch.bool)
    copies = torch.empty(0, dtype=torch.long)
    for c in codes.unique():
        idx = torch.nonzero(codes[:, 0] == c).ravel()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        holdout[idx[:2]] = True
        copies = torch.cat([copies, idx[2:4]])  # two training samples of each tissue
    h_idx, t_idx = torch.nonzero(holdout).ravel(), torch.nonzero(~holdout).ravel()
    crit = SelectionCriterion(
        real=X[h_idx], cat=codes[h_idx], cont=None, train=X[t_idx], n_holdout=len(h_idx)
    )
    assert crit.train is None  # kept in PCA space only
    # unseen real samples of the requested tissues: DCR ratio 1 by construction
    swap = h_idx.view(-1, 2).flip(1).ravel()
    _, unseen = crit(_Oracle(X[swap]))
    # training samples of the requested tissues, returned as they are
    _, copied = crit(_Oracle(X[copies]))
    assert unseen["novelty"] == pytest.approx(1.0)
    assert copied["novelty"] == 0.0
    assert copied["conditional"] > 0.5  # faithful to the tissue (chance: 1/26)
    no_holdout = SelectionCriterion(real=X[h_idx], cat=codes[h_idx], cont=None)
    assert "novelty" not in no_holdout(_Oracle(X[copies]))[1]


def test_generator_selection_callback_keeps_best_state():
    class _Crit:
        def __init__(self):
            self.scores = iter([0.1, 0.5, 0.3, 0.2, 0.1])

        def __call__(self, module):
            return next(self.scores), {}

    class _Trainer:
        current_epoch = 0
        max_epochs = 10
        should_stop = False

    class _Plan:
        def __init__(self):
            self.module = torch.nn.Linear(2, 1)

        def log(self, *a, **k):
            pass

    cb = GeneratorSelection(_Crit(), every_n_epochs=1, patience=2, min_epochs=0)
    trainer, plan = _Trainer(), _Plan()
    states = []
    for epoch in range(5):
        trainer.current_epoch = epoch
        with torch.no_grad():
            plan.module.weight.fill_(float(epoch))
        states.append(plan.module.weight.clone())
        cb.on_train_epoch_end(trainer, plan)
        if trainer.should_stop:
            break
    assert cb.best_epoch == 2
    assert trainer.should_stop
    assert epoch == 3
    cb.on_train_end(trainer, plan)
    torch.testing.assert_close(plan.module.weight, states[1])


@pytest.mark.slow
def test_interpolation_walks_between_tissues(trained, real_classifier, gtex_split, check_walk):
    """λ = 0 / 1 look like the endpoint tissues; the path moves monotonically between them."""
    train, _ = gtex_split
    walk = sgs.tl.interpolate(trained, "tissue", "Blood", "Blood Vessel", steps=5, n_per_step=60)
    check_walk(walk, real_classifier, train, "Blood", "Blood Vessel")
    # the same noise at every step: with equal embeddings the path stands still
    still = sgs.tl.interpolate(trained, "tissue", "Liver", "Liver", steps=3, n_per_step=10)
    np.testing.assert_allclose(still.X[:10], still.X[20:], rtol=1e-5, atol=1e-5)
