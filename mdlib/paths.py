"""Paths from the repository root, so notebooks never write ``../data``.

The root is the folder that holds the ``mdlib`` package. ``MDLIB_RESULTS_DIR`` and
``MDLIB_FIGURES_DIR`` redirect outputs (``python -m mdlib reproduce`` sets them so that a
profile's run lands in ``results/<profile>/``).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
CORPORA_DIR = DATA_DIR / "corpora"
NOTEBOOKS_DIR = ROOT / "notebooks"
RUNS_DIR = ROOT / "runs"


def results_dir() -> Path:
    """Folder for metrics JSON (``results/`` unless ``MDLIB_RESULTS_DIR`` is set)."""
    return Path(os.environ.get("MDLIB_RESULTS_DIR", ROOT / "results"))


def figures_dir() -> Path:
    """Folder for PNG figures (``figures/`` unless ``MDLIB_FIGURES_DIR`` is set)."""
    return Path(os.environ.get("MDLIB_FIGURES_DIR", ROOT / "figures"))
