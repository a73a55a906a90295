"""The self-contained docstring examples run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = [
    "scgensynth.nn._blocks",
    "scgensynth.nn._scaling",
    "scgensynth.pp._scaling",
    "scgensynth.datasets._datasets",
    "scgensynth.module._wgan",
    "scgensynth.module._base",
    "scgensynth.train._wgan_plan",
    "scgensynth.metrics._neighbors",
    "scgensynth.metrics._correlation",
    "scgensynth.metrics._pca",
    "scgensynth.metrics._classifier",
    "scgensynth.metrics._frechet",
    "scgensynth.metrics._evaluate",
    "scgensynth.nn._attention",
    "scgensynth.pp._graph",
    "scgensynth.module._attgan",
    "scgensynth.module._cvae",
    "scgensynth.module._gan",
    "scgensynth.train._gan_plan",
    "scgensynth.module._noise",
    "scgensynth.io._gtex",
    "scgensynth.io._tcga",
    "scgensynth.tl._rank",
    "scgensynth.model.base._files",
    "scgensynth.model.base._save",
    "scgensynth.model.base._generation",
    "scgensynth.model.base._validation",
    "scgensynth.module._random",
    "scgensynth._keys",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
