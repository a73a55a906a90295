"""Reusable network blocks: MLPs and covariate embeddings."""

from ._blocks import MLP, CovariateEmbedder, embedding_dim
from ._scaling import SCALING_MODES, ExpressionScaling

__all__ = ["MLP", "SCALING_MODES", "CovariateEmbedder", "ExpressionScaling", "embedding_dim"]
