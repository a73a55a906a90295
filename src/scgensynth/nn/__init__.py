"""Reusable network blocks: MLPs, covariate embeddings, sparse gene attention, denoisers."""

from ._attention import SparseGeneAttention, add_rows_, edge_index
from ._blocks import MLP, CovariateEmbedder, embedding_dim
from ._denoiser import ConditionalDenoiser, sinusoidal_embedding
from ._hourglass import BatchNormMLP, HourglassMLP
from ._scaling import SCALING_MODES, ExpressionScaling
from ._subspace import LinearSubspace

__all__ = [
    "MLP",
    "SCALING_MODES",
    "BatchNormMLP",
    "ConditionalDenoiser",
    "CovariateEmbedder",
    "ExpressionScaling",
    "HourglassMLP",
    "LinearSubspace",
    "SparseGeneAttention",
    "add_rows_",
    "edge_index",
    "embedding_dim",
    "sinusoidal_embedding",
]
