"""Real expression data bundled with the package (loads offline).

Each file's source and licence are in ``datasets/data/<name>.README.txt`` next to it.
"""

from ._datasets import available, gtex_tissues, load, tcga_acc, tcga_lusc

__all__ = ["available", "gtex_tissues", "load", "tcga_acc", "tcga_lusc"]
