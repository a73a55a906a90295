"""Arguments renamed for one name per concept, still accepted under the old name."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed_arguments(renames: Mapping[str, str]) -> Callable[[F], F]:
    """Accept the old keyword names of ``renames`` (old -> new) with a ``FutureWarning``.

    Passing both the old and the new name is an error.

    Examples
    --------
    >>> @renamed_arguments({"label_key": "labels_key"})
    ... def f(*, labels_key=None):
    ...     return labels_key
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     f(label_key="tissue")
    'tissue'
    >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
    f: the argument label_key was renamed labels_key; use labels_key=... (label_key will be
    removed in a later release).
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    msg = f"{func.__name__}: pass {new}=... only ({old} is its old name)."
                    raise TypeError(msg)
                warnings.warn(
                    f"{func.__name__}: the argument {old} was renamed {new}; use {new}=... "
                    f"({old} will be removed in a later release).",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
