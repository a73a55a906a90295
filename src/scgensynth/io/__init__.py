"""Readers of the files biologists download and exchange.

GTEx and TCGA matrices with their annotation tables, and gene-set (GMT) files; also exposed
as ``sgs.read_*``.
"""

from ._gmt import read_gmt
from ._gtex import read_gtex
from ._tcga import read_tcga
from ._tcga_star import read_tcga_star
from ._tcga_xena import read_tcga_xena

__all__ = ["read_gmt", "read_gtex", "read_tcga", "read_tcga_star", "read_tcga_xena"]
