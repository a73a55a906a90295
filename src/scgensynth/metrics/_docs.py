"""Parameter paragraphs shared by the metrics' docstrings, written once.

A docstring decorated with :func:`fill_doc` holds placeholder lines ``{name}`` (at the
indentation of a parameter name) that are replaced by the paragraphs below.
"""

from __future__ import annotations

import textwrap

from scgensynth._utils._docs import doc_params


def _param(name: str, description: str) -> str:
    """A numpy-style parameter entry, its description indented under the name."""
    body = textwrap.indent(textwrap.dedent(description).strip(), " " * 4)
    return f"{name}\n{body}"


FRAGMENTS = {
    "real_synth": _param(
        "real, synth",
        """
        AnnData (genes matched by ``var_names``) or samples x genes arrays with the same
        columns.
        """,
    ),
    "real_synth_labelled": _param(
        "real, synth",
        "AnnData with ``labels_key`` in ``.obs`` (genes matched by ``var_names``).",
    ),
    "labels_key": _param("labels_key", "Column of ``.obs`` holding the labels."),
    "layer": _param("layer", "AnnData layer to read instead of ``.X``."),
    "obsm": _param(
        "obsm",
        """
        Key of ``.obsm`` to read instead of genes: a representation computed the same way
        for both datasets. Not together with ``layer``.
        """,
    ),
    "max_genes": _param(
        "max_genes",
        """
        Use at most this many genes, the most variable in ``real`` (chosen from ``real``
        alone); ``None`` uses all (the cost grows with the square of the number of genes).
        """,
    ),
    "classifier_kwargs": _param(
        "**classifier_kwargs",
        "Options of the MLP: ``hidden``, ``lr``, ``batch_size``, ``epochs``, ``device``.",
    ),
    "network": _param(
        "network",
        """
        One row per TF -> target edge. With AnnData input the columns hold gene names
        matching ``var_names``; with arrays, integer column indices.
        """,
    ),
    "tf_target_cols": _param(
        "tf_col, target_col", "Columns of ``network`` holding the TFs and the targets."
    ),
}

#: fills the placeholders of a metric's docstring with :data:`FRAGMENTS`
fill_doc = doc_params(**FRAGMENTS)
