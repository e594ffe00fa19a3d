"""Execute notebooks in place with a plain Jupyter client (nbclient), as committed outputs need.

    .venv/bin/python scripts/run_notebook.py notebooks/01_data_and_preprocessing.ipynb [...]

Papermill is for reproduction runs (``python -m mdlib reproduce``); committed outputs come
from this plain execution, whose stream handling matches what nbval compares against.
Prints each notebook's wall-clock time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    for path in args.notebooks:
        elapsed = run(path, args.timeout)
        print(f"{path}: executed in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
