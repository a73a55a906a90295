"""Real data for the plots: GTEx and samples of a Gaussian generator trained on it."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

import scgensynth as sgs

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def _gaussian_gtex():
    """The closed-form Gaussian generator on the bundled GTEx set (tissue), and 520 samples."""
    adata = sgs.datasets.gtex_tissues()
    model = sgs.tl.train(adata, "gaussian", categorical_covariate_keys=["tissue"])
    synth = sgs.tl.generate(model, adata.n_obs, seed=0)
    return SimpleNamespace(real=adata, model=model, synth=synth)


@pytest.fixture
def gaussian_model(_gaussian_gtex):
    """The trained Gaussian generator (shared: do not train it again)."""
    return _gaussian_gtex.model


@pytest.fixture
def gtex_pair(_gaussian_gtex):
    """``(real, synthetic)``: copies of GTEx and of the Gaussian generator's samples."""
    return _gaussian_gtex.real.copy(), _gaussian_gtex.synth.copy()


def _overlapping(texts) -> list[tuple[str, str]]:
    """Pairs of the drawn, non-empty texts whose boxes intersect (after a draw).

    The box of an annotation is its text's (not the line to its point).
    """
    texts = [t for t in texts if t.get_visible() and t.get_text()]
    assert texts, "no text drawn"
    texts[0].figure.canvas.draw()
    boxes = [Text.get_window_extent(t) for t in texts]
    out = []
    for i, a in enumerate(boxes):
        for j in range(i):
            b = boxes[j]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > 0 and h > 0:
                out.append((texts[i].get_text(), texts[j].get_text()))
    return out


@pytest.fixture
def overlapping():
    """``overlapping(texts)``: the pairs of texts whose boxes intersect once drawn."""
    return _overlapping


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
