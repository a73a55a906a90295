from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._utils import finish, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from scgensynth.model import BaseGeneratorModel


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
    """Losses per epoch, and the model-selection score on a second axis.

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
        Also draw the selection score (right axis) and mark the restored epoch.
    {ax}
    {show_return_fig}

    {returns_axes}

    Examples
    --------
    >>> sgs.pl.training_history(model)
    """
    history = getattr(model, "history_", None) or {}
    if not history:
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
    keys = [k for k in (keys or getattr(model, "logged_losses", ())) if k in history]
    if not keys:
        msg = f"None of the requested keys are in the history ({sorted(history)})."
        raise KeyError(msg)
    fig, ax, ax_given = new_axes(ax, (6, 4))
    for key in keys:
        frame = history[key]
        ax.plot(frame.index.to_numpy(), frame.iloc[:, 0].to_numpy(), label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    sel = getattr(model, "selection_", None)
    if selection and sel is not None and len(sel):
        ax2 = ax.twinx()
        line = ax2.plot(sel["epoch"], sel["score"], color="black", ls="--", label="selection")
        ax2.set_ylabel("selection score")
        best = getattr(model, "best_epoch_", None)
        if best is not None:
            ax2.axvline(best, color="grey", lw=0.8)
        handles += line
        labels += ["selection score"]
    ax.legend(handles, labels, loc="best", fontsize="small")
    return finish(fig, ax, ax_given, show, return_fig)
