"""sgs.pl.training_history: the logged losses and the selection score along training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._utils import finish, new_axes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from scgensynth.model import BaseGeneratorModel

#: losses whose largest absolute values differ by more than this factor get separate panels
SCALE_RATIO = 10.0
#: height of a panel in a new figure (inches)
_PANEL_HEIGHT = 2.4


def _check_history(model: BaseGeneratorModel) -> dict[str, pd.DataFrame]:
    """The model's history; a clear error when it has none."""
    history = getattr(model, "history_", None) or {}
    if history:
        return history
    name = type(model).__name__
    if getattr(model, "is_trained_", False):
        msg = (
            f"{name} has an empty training history: it has nothing to train (it logs no "
            "losses; e.g. NoiseAugmenter only stores the training samples and adds noise "
            "to them), so there are no curves to plot."
        )
    else:
        msg = f"{name} has no training history yet; train it first (model.train())."
    raise ValueError(msg)


def scale_groups(values: dict[str, np.ndarray], ratio: float = SCALE_RATIO) -> list[list[str]]:
    """The keys of ``values`` in groups of similar magnitude, largest first.

    A key's magnitude is its largest finite absolute value. Going down from the largest, a
    key joins the current group while its magnitude is at least the group's largest divided
    by ``ratio``, else it starts a new group. Within a group, keys keep their order.

    Examples
    --------
    >>> import numpy as np
    >>> scale_groups({"wasserstein": np.array([690.0, 710]), "penalty": np.array([30.0, 28]),
    ...               "critic": np.array([-700.0, -650])})
    [['wasserstein', 'critic'], ['penalty']]
    """
    size = {}
    for key, v in values.items():
        finite = np.abs(np.asarray(v, dtype=float))
        finite = finite[np.isfinite(finite)]
        size[key] = float(finite.max()) if finite.size else 0.0
    groups: list[list[str]] = []
    top = None
    for key in sorted(values, key=lambda k: -size[k]):  # stable: ties keep their order
        if top is None or size[key] < top / ratio:
            groups.append([])
            top = size[key]
        groups[-1].append(key)
    order = {k: i for i, k in enumerate(values)}
    return [sorted(g, key=order.__getitem__) for g in groups]


def _x_axis(model: BaseGeneratorModel) -> tuple[int, str]:
    """``(steps per epoch, axis label)``: training steps where the model knows them."""
    per_epoch = getattr(model, "steps_per_epoch_", None)
    if per_epoch is None:
        return 1, "epoch"
    return int(per_epoch), "training step"


def _panels(ax: Axes, n_loss: int, with_selection: bool) -> list[Axes]:
    """``ax`` and the panels appended below it, sharing its x axis."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    panels = [ax]
    divider = make_axes_locatable(ax)
    for i in range(n_loss - 1 + with_selection):
        last = with_selection and i == n_loss - 1
        size = "60%" if last else "100%"
        panels.append(divider.append_axes("bottom", size=size, pad=0.12, sharex=ax))
    for panel in panels[:-1]:
        panel.tick_params(labelbottom=False)
    return panels


@doctest_skip("needs a trained model")
@fill_doc
def training_history(
    model: BaseGeneratorModel,
    keys: Sequence[str] | None = None,
    *,
    selection: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """The logged losses along training, and the model-selection score.

    Losses of very different magnitude do not share an axis: they are grouped by their
    largest absolute value (losses within a factor of 10 of each other share a panel, e.g.
    WGAN-GP's critic and generator losses and Wasserstein estimate, while its gradient
    penalty, ten or more times smaller, gets its own), and each group is drawn in its own
    panel, stacked with a shared x axis, largest first. Panels rather than twin y axes: each
    panel keeps one scale with its own legend, however many groups there are, and nothing
    has to be matched to a left or a right axis. The selection score (when the model was
    trained with ``selection=``) gets a last, lower panel, and a vertical line in every
    panel marks the "kept weights": the point whose weights were restored at the end.

    The x axis counts training steps (mini-batches) when the model records its steps per
    epoch (``model.steps_per_epoch_``), epochs otherwise. Each value is drawn at the steps
    (epochs) completed when it was logged: a loss averaged over epoch ``e`` (0-based, the
    history's index) at ``(e + 1) * steps_per_epoch``, a selection score computed after
    epoch ``e`` at ``e * steps_per_epoch``, as the restored weights.

    Parameters
    ----------
    model
        A trained generator.
    keys
        History entries to draw (default: the losses the model declares,
        ``model.logged_losses``, e.g. WGAN-GP's critic and generator losses, Wasserstein
        estimate and gradient penalty). Other logged values, such as TSPG's ``success``
        or ``classifier_accuracy``, are drawn only when asked for.
    selection
        Also draw the selection score (its own panel) and mark the kept weights.
    ax
        Axes of the first panel (default: a new figure); the other panels are appended
        below it, inside its space.
    {show_return_fig}

    Returns
    -------
    The first (top) panel's Axes, the largest losses; the other panels are in
    ``ax.figure.axes``. The Figure with ``return_fig=True``; ``None`` when shown.

    Examples
    --------
    >>> sgs.pl.training_history(model)
    """
    history = _check_history(model)
    keys = [k for k in (keys or getattr(model, "logged_losses", ())) if k in history]
    if not keys:
        msg = f"None of the requested keys are in the history ({sorted(history)})."
        raise KeyError(msg)
    groups = scale_groups({k: history[k].iloc[:, 0].to_numpy() for k in keys})
    sel = getattr(model, "selection_", None) if selection else None
    with_selection = sel is not None and len(sel) > 0
    n_panels = len(groups) + with_selection
    fig, ax, ax_given = new_axes(ax, (6, 0.8 + _PANEL_HEIGHT * n_panels))
    panels = _panels(ax, len(groups), with_selection)
    per_epoch, unit = _x_axis(model)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for panel, group in zip(panels, groups):
        for key in group:
            frame = history[key]
            steps = (frame.index.to_numpy() + 1) * per_epoch
            color = colors[keys.index(key) % len(colors)]
            panel.plot(steps, frame.iloc[:, 0].to_numpy(), label=key, color=color)
        panel.set_ylabel("loss")
    if with_selection:
        _draw_selection(panels, sel, getattr(model, "best_epoch_", None), per_epoch, unit)
    for panel in panels:
        panel.legend(loc="best", fontsize="small")
    panels[-1].set_xlabel(unit)
    return finish(fig, ax, ax_given, show, return_fig)


def _draw_selection(panels: list[Axes], sel, best, per_epoch: int, unit: str) -> None:
    """The selection score in the last panel; the kept weights marked in every panel."""
    last = panels[-1]
    last.plot(sel["epoch"].to_numpy() * per_epoch, sel["score"].to_numpy(), color="black",
              ls="--", marker=".", label="selection score")  # fmt: skip
    last.set_ylabel("selection\nscore")
    if best is None:
        return
    at = int(best) * per_epoch
    for i, panel in enumerate(panels):
        label = f"kept weights ({unit} {at})" if i == 0 else "_kept weights"
        panel.axvline(at, color="grey", lw=1.0, ls=":", label=label)
