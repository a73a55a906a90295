"""Checks of the numbers users pass (counts, shares, seeds), each with a clear error."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_count(
    value: Any,
    name: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    allow_none: bool = False,
    hint: str = "",
) -> int | None:
    """``value`` as an int if it is a whole number in ``[minimum, maximum]``; else an error.

    Booleans, floats (even ``2.0``), strings, NaN and ``None`` (unless ``allow_none``) are
    refused, so that a typo never silently truncates or falls back to a default.

    Examples
    --------
    >>> check_count(5, "n_steps")
    5
    >>> check_count(0, "n_steps")
    Traceback (most recent call last):
    ...
    ValueError: n_steps must be a whole number >= 1, not 0.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        msg = f"{name} must be a whole number >= {minimum}, not {value!r}.{hint}"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{name} must be a whole number >= {minimum}, not {value!r}.{hint}"
        raise ValueError(msg)
    if maximum is not None and value > maximum:
        msg = f"{name} must be at most {maximum:,}, not {value!r}.{hint}"
        raise ValueError(msg)
    return int(value)


def check_fraction(value: Any, name: str, *, closed: bool = True) -> float:
    """``value`` as a float in (0, 1] (``closed=False``: in (0, 1)); else a clear error."""
    interval = "(0, 1]" if closed else "(0, 1)"
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        msg = f"{name} must be a number in {interval}, not {value!r}."
        raise TypeError(msg)
    if not (0 < value <= 1 if closed else 0 < value < 1):  # also refuses NaN
        msg = f"{name} must be in {interval}, not {value!r}."
        raise ValueError(msg)
    return float(value)


#: largest seed: the range of NumPy's and Lightning's global seeds (32 bits)
MAX_SEED = 2**32 - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed as an int in ``[0, 2**32 - 1]``; else a clear error."""
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
        msg = f"{name} must be a whole number between 0 and 2**32 - 1 (or None), not {seed!r}."
        raise TypeError(msg)
    if not 0 <= seed <= MAX_SEED:
        msg = f"{name} must be between 0 and 2**32 - 1, not {seed}."
        raise ValueError(msg)
    return int(seed)


def resolve_seed(seed: Any) -> int:
    """``seed`` checked (:func:`check_seed`), or one drawn from torch's global random state.

    ``None`` draws, so ``scvi.settings.seed`` (which seeds torch) makes it reproducible.
    """
    if seed is None:
        import torch

        return int(torch.randint(0, 2**31 - 1, (1,)).item())
    return check_seed(seed)
