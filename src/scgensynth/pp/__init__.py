"""Preprocessing: how expression values are scaled, and gene graphs for attention."""

from ._graph import coexpression_graph, coexpression_matrix, graph_from_edges, random_graph
from ._scaling import detect_scaling, fit_scaling, iter_row_chunks

__all__ = [
    "coexpression_graph",
    "coexpression_matrix",
    "detect_scaling",
    "fit_scaling",
    "graph_from_edges",
    "iter_row_chunks",
    "random_graph",
]
