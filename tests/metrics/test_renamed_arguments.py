"""Old argument names still work, with a FutureWarning, and give what the new names give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scgensynth import metrics


@pytest.fixture(scope="module")
def small(split):
    """Two tissues of the GTEx split: quick to classify, still real data."""
    train, test = split
    tissues = list(train.obs["tissue"].cat.categories[:2])
    return tuple(a[a.obs["tissue"].isin(tissues)].copy() for a in (train, test))


def _same(a, b) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    else:
        assert a == b


LOGISTIC = {"classifier": "logistic"}
CASES = {
    "reverse_validation": lambda t, s, **kw: metrics.reverse_validation(t, s, **kw, **LOGISTIC),
    "label_preservation": lambda t, s, **kw: metrics.label_preservation(t, s, **kw, **LOGISTIC),
    "nearest_centroid_agreement": lambda t, s, **kw: metrics.nearest_centroid_agreement(
        t, s, **kw
    ),
    "augmentation_gain": lambda t, s, **kw: metrics.augmentation_gain(
        t, s, s, n_real=10, n_synth=(0, 5), seeds=1, **kw, **LOGISTIC
    ),
    "frechet_distance": lambda t, s, **kw: metrics.frechet_distance(
        t, s, embedding="classifier", classifier_kwargs={"epochs": 2}, **kw
    ),
    "evaluate": lambda t, s, **kw: metrics.evaluate(
        t, s, metrics=["nearest_centroid_agreement"], key_added=None, **kw
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_label_key_is_the_old_name_of_labels_key(name, small):
    train, test = small
    call = CASES[name]
    new = call(train, test, labels_key="tissue")
    renamed = f"{name}: the argument label_key was renamed labels_key"
    with pytest.warns(FutureWarning, match=renamed):
        old = call(train, test, label_key="tissue")
    _same(old, new)
    with pytest.raises(TypeError, match=r"pass labels_key=\.\.\. only"):
        call(train, test, labels_key="tissue", label_key="tissue")


@pytest.mark.parametrize("name", ["precision_recall", "density_coverage"])
def test_groupby_is_the_old_name_of_labels_key(name, small):
    train, test = small
    fn = getattr(metrics, name)
    new = fn(train, test, k=3, labels_key="tissue")
    with pytest.warns(FutureWarning, match="the argument groupby was renamed labels_key"):
        old = fn(train, test, k=3, groupby="tissue")
    pd.testing.assert_frame_equal(old, new)
    assert old.attrs == new.attrs


def test_n_samples_is_the_old_name_of_n_obs():
    rng = np.random.default_rng(0)
    R, S = rng.normal(size=(80, 5)), rng.normal(size=(60, 5))
    new = metrics.adversarial_accuracy(R, S, n_obs=30, seed=1)
    with pytest.warns(FutureWarning, match="the argument n_samples was renamed n_obs"):
        old = metrics.adversarial_accuracy(R, S, n_samples=30, seed=1)
    assert old == new
    with pytest.raises(ValueError, match="n_obs must be at least 2"):
        metrics.adversarial_accuracy(R, S, n_obs=1)
