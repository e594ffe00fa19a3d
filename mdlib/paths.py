"""Paths from the repository root, so notebooks never write ``../data``.

The root is the folder that holds the ``mdlib`` package.

Where a run writes: an interactive run (JupyterLab, a test through nbval, plain
papermill) writes its metrics and figures into ``results/local/``, which git ignores, so
running the course never replaces the committed results. Only ``python -m mdlib
reproduce`` redirects them, through ``MDLIB_RESULTS_DIR`` and ``MDLIB_FIGURES_DIR``:
``--profile paper`` into ``results/paper/`` and the committed ``figures/``, the other
profiles into ``results/<profile>/`` and ``results/<profile>/figures/``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
CORPORA_DIR = DATA_DIR / "corpora"
NOTEBOOKS_DIR = ROOT / "notebooks"
RUNS_DIR = ROOT / "runs"
#: Where runs that ``reproduce`` did not start write (git-ignored).
LOCAL_RESULTS_DIR = ROOT / "results" / "local"


def results_dir() -> Path:
    """Folder for metrics JSON: ``MDLIB_RESULTS_DIR`` when set, else ``results/local/``."""
    return Path(os.environ.get("MDLIB_RESULTS_DIR") or LOCAL_RESULTS_DIR)


def figures_dir() -> Path:
    """Folder for PNG figures: ``MDLIB_FIGURES_DIR`` when set, else ``results/local/figures/``.

    The committed ``figures/`` is written only by ``reproduce --profile paper``.
    """
    return Path(os.environ.get("MDLIB_FIGURES_DIR") or LOCAL_RESULTS_DIR / "figures")
