"""The one place notebooks and commands write results through.

Metrics go to ``<results>/<name>.json`` and figures to ``<figures>/<name>.png``, in the
folders :mod:`mdlib.paths` names: ``results/local/`` (git-ignored) for an interactive or
test run, a profile's folder for ``python -m mdlib reproduce``. Reading numbers
back is plain JSON: no scrapbook needed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mdlib import paths
from mdlib.atomic import atomic_path, write_text


def _clean(obj: Any) -> Any:
    """Make ``obj`` JSON-safe: NaN/inf become ``None``; numpy and torch scalars become floats."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN becomes null)."""
    return write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")


def save_metrics(name: str, metrics: Any) -> Path:
    """Write ``metrics`` to ``<results_dir>/<name>.json`` and return the path."""
    return save_json(metrics, paths.results_dir() / f"{name}.json")


def load_metrics(name: str) -> Any:
    """Read back what :func:`save_metrics` wrote."""
    return json.loads((paths.results_dir() / f"{name}.json").read_text(encoding="utf-8"))


def save_figure(fig, name: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``<figures_dir>/<name>.png`` (atomically)."""
    path = paths.figures_dir() / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def interval(values, bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """``{"mean", "low", "high"}`` over ``values`` (e.g. seeds): the 95% t-interval, or for a
    metric with ``bounds`` (see :data:`mdlib.stats.BOUNDS`) the percentile bootstrap, which
    stays inside them (:func:`mdlib.stats.interval`)."""
    from mdlib.stats import interval as _interval

    iv = _interval([float(v) for v in values], bounds)
    return {"mean": iv["mean"], "low": iv["low"], "high": iv["high"]}


def add_headline(name: str, headline: dict[str, Any]) -> Path:
    """Add the ``"headline"`` numbers the README's results table shows to ``<name>.json``.

    ``headline`` maps a label to a number or an :func:`interval`; the file must exist
    (the notebook wrote it with :func:`save_metrics`).
    """
    metrics = load_metrics(name)
    metrics["headline"] = headline
    return save_metrics(name, metrics)


def format_interval(value: Any, digits: int = 3) -> str:
    """``"mean [low, high]"`` for an :func:`interval` (just the mean when there is no interval,
    e.g. a single seed), or the number itself."""
    if isinstance(value, dict):
        mean, low, high = value.get("mean"), value.get("low"), value.get("high")
        if low is None or high is None or any(isinstance(x, float) and not math.isfinite(x) for x in (low, high)):
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"{value:.{digits}f}"
