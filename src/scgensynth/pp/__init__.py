"""Preprocessing helpers: how expression values are scaled for the generators."""

from ._scaling import detect_scaling, fit_scaling, iter_row_chunks

__all__ = ["detect_scaling", "fit_scaling", "iter_row_chunks"]
