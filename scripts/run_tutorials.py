"""Execute the tutorials top to bottom and store their outputs (full-length by default).

    python scripts/run_tutorials.py                 # all, full length, in place
    python scripts/run_tutorials.py 02 --fast       # one, with SGS_TUTORIAL_FAST=1, in place

Each notebook runs in a fresh kernel in a temporary working directory (files it writes
are discarded). Progress-bar output is collapsed to its final state before saving.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the notebooks named on the command line (all by default) and save them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--fast", action="store_true", help="set SGS_TUTORIAL_FAST=1")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    args = parser.parse_args()
    paths = sorted((ROOT / "tutorials").glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in args.names)]
        if not paths:
            parser.error(f"no tutorial starts with {args.names}")
    if args.fast:
        os.environ["SGS_TUTORIAL_FAST"] = "1"
    else:
        os.environ.pop("SGS_TUTORIAL_FAST", None)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    for path in paths:
        book = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:
            client = NotebookClient(
                book,
                timeout=args.timeout,
                kernel_name="python3",
                coalesce_streams=True,
                resources={"metadata": {"path": workdir}},
            )
            client.execute()
        nbformat.write(book, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
