"""Parameter paragraphs shared by the plots' docstrings, written once.

A docstring decorated with :func:`fill_doc` holds placeholder lines ``{name}`` (at the
indentation of a parameter name or of a section's title: ``{returns_axes}`` is the whole
Returns section of a plot that returns its Axes) replaced by the paragraphs below.
"""

from __future__ import annotations

from scgensynth._utils._docs import doc_params

#: indentation of a parameter's description under its name, in a function's docstring
_BODY = "\n" + " " * 4

FRAGMENTS = {
    "synth": f"synth{_BODY}Synthetic samples (genes matched to ``real`` by name).",
    "ax": f"ax{_BODY}Axes to draw on (default: a new figure).",
    "show_return_fig": (
        f"show{_BODY}Show the figure (default: when no ``ax`` is given and not returning the "
        f"figure).\nreturn_fig{_BODY}Return the Figure instead of the Axes."
    ),
    "source_colors": (
        'Sources are coloured by ``uns["sgs_source_colors"]`` when an input has one.'
    ),
    "returns_axes": (
        "Returns\n-------\nThe Axes (or Figure with ``return_fig=True``); ``None`` when shown."
    ),
}

#: fills the placeholders of a plot's docstring with :data:`FRAGMENTS`
fill_doc = doc_params(**FRAGMENTS)
