"""Docstring fragments written once and filled into the docstrings that share them.

As scanpy's ``_doc_params``: a docstring holds placeholder lines (a line holding only
``{name}``), and :func:`doc_params` replaces each by its fragment, indented as the
placeholder was. Fragments are written without indentation (their own lines keep their
relative indentation); other braces in a docstring are left alone.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

_Documented = TypeVar("_Documented")
_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{(?P<key>\w+)\}[ \t]*$", re.MULTILINE)


def doc_params(**fragments: str) -> Callable[[_Documented], _Documented]:
    r"""Fill a docstring's placeholders with shared paragraphs (as scanpy's ``_doc_params``).

    A placeholder is a line holding only ``{name}``; it becomes ``fragments[name]`` (written
    without indentation), every line indented as the placeholder was. Other braces (a dict
    in an example) are left alone, and a placeholder without a fragment is an error at import.

    Parameters
    ----------
    **fragments
        Paragraphs by name, e.g. a whole parameter entry (its name line and description).

    Returns
    -------
    A decorator that fills the docstring of a function or class and returns it.

    Examples
    --------
    >>> @doc_params(note="Values are float32\nor float64.")
    ... def read(path):
    ...     '''Read a file.
    ...
    ...         {note}
    ...     '''
    >>> read.__doc__.splitlines()[2:4]
    ['        Values are float32', '        or float64.']
    """

    def decorate(documented: _Documented) -> _Documented:
        def fill(match: re.Match) -> str:
            key = match["key"]
            if key not in fragments:
                msg = (
                    f"The docstring of {documented.__qualname__} has a placeholder {{{key}}} "
                    f"but no fragment of that name was given (known: {sorted(fragments)})."
                )
                raise KeyError(msg)
            return textwrap.indent(textwrap.dedent(fragments[key]).strip("\n"), match["indent"])

        if documented.__doc__ is not None:  # None under python -OO
            documented.__doc__ = _PLACEHOLDER.sub(fill, documented.__doc__)
        return documented

    return decorate


def doctest_skip(reason: str) -> Callable[[_Documented], _Documented]:
    """Mark a docstring's examples as shown, not run, by the docstring-example test.

    For examples that need a trained model or minutes of training; the test still
    compiles them, so they stay valid Python. ``reason`` says what they need.

    Examples
    --------
    >>> @doctest_skip("needs a trained model")
    ... def plot(model):
    ...     '''>>> plot(model)'''
    >>> plot.__doctest_skip__
    'needs a trained model'
    """
    if not reason:
        msg = "Say why the examples are not run, e.g. doctest_skip('needs a trained model')."
        raise ValueError(msg)

    def decorate(documented: _Documented) -> _Documented:
        documented.__doctest_skip__ = reason
        return documented

    return decorate
