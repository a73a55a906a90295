"""Peak memory of training AttGAN on 22,283 genes with a >= 100,000-edge co-expression graph.

Target (issue 4): within 4 GB. Trains ``sgs.tl.train(adata, "attgan", top_k=5)`` on the
bladderbatch test fixture (57 samples x 22,283 probe sets; top-5 co-expression graph:
111,415 edges) with the default architecture, model selection on, for ``--n-steps`` steps, and
prints the process's peak resident set (``ru_maxrss``) and the number of edges.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import anndata as ad
import torch

import scgensynth as sgs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(__file__).resolve().parents[1] / "tests" / "data" / "bladderbatch.h5ad"
    adata = ad.read_h5ad(path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = time.perf_counter()
    model = sgs.tl.train(
        adata, "attgan", top_k=5, categorical_covariate_keys=["cancer", "batch"],
        n_steps=args.n_steps, batch_size=16, enable_progress_bar=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"AttGAN on {adata.n_vars} genes, {model.module.attention.n_edges} edges, "
        f"{args.n_steps} steps in {seconds:.0f} s: peak RSS {peak:.2f} GiB "
        f"(after imports and data {before:.2f} GiB); target <= 4 GiB"
    )


if __name__ == "__main__":
    main()
