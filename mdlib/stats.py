"""Intervals for means over seeds, and bootstrap intervals (a leaf module: anything may use it)."""

from __future__ import annotations

import math
from typing import Callable, Sequence, TypeVar

import numpy as np

# Two-sided 95% Student-t quantiles for df = 1..30 (beyond: normal 1.96).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("a t-interval needs at least two values")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided 95% t-interval of ``values`` (e.g. one metric over seeds).

    Returns:
        ``(mean, low, high)``; with a single value the interval is ``(mean, nan, nan)``.
    """
    if level != 0.95:
        raise ValueError("only the 95% interval is implemented")
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    m = float(x.mean())
    if x.size == 1:
        return (m, math.nan, math.nan)
    half = t_quantile_975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return (m, m - half, m + half)


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and a seeded percentile-bootstrap 95% interval of ``values``."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return (float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


#: Metrics whose values lie in a closed range: their intervals never leave it (a
#: t-interval on 5 seeds of a success rate near 1 can reach past 1).
BOUNDS: dict[str, tuple[float, float]] = {
    "success": (0.0, 1.0), "success_rate": (0.0, 1.0), "entity_f1": (0.0, 1.0), "act_f1": (0.0, 1.0),
    "entity_f1_uncopyable": (0.0, 1.0),
    "success_f1": (0.0, 1.0), "slot_f1": (0.0, 1.0), "parser_slot_f1": (0.0, 1.0),
    "persona_accuracy": (0.0, 1.0), "bleu": (0.0, 100.0),
    "distinct_1": (0.0, 1.0), "distinct_2": (0.0, 1.0),
}


def interval(values: Sequence[float], bounds: tuple[float, float] | None = None,
             seed: int = 0) -> dict[str, float]:
    """``{"mean", "low", "high", "n", "method"}``: the one interval over seeds that the
    tables and figures use.

    The 95% Student-t interval, and for a bounded metric the same interval clipped to the
    metric's bounds. Why not a percentile bootstrap over seeds: with 3 to 5 seeds the
    resampled means can never spread wider than the seeds themselves, so its interval is
    far too narrow (it reports certainty that 3 numbers cannot give). Over many units
    (dialogues, users) :func:`bootstrap` is the right tool.

    Args:
        values: one number per seed (``None`` entries are dropped).
        bounds: ``(lowest, highest)`` value the metric can take (:data:`BOUNDS`), or None.
        seed: unused; kept so callers can pass one uniformly.

    Raises:
        ValueError: a value outside ``bounds``.
    """
    x = [float(v) for v in values if v is not None]
    mean, low, high = mean_ci(x)
    method = "t"
    if bounds is not None:
        lo_b, hi_b = bounds
        if any(v < lo_b - 1e-9 or v > hi_b + 1e-9 for v in x):
            raise ValueError(f"interval: a value lies outside the metric's bounds {bounds}: {x}")
        if not math.isnan(low):
            low, high = max(low, lo_b), min(high, hi_b)
        method = "t, clipped to the bounds"
    return {"mean": mean, "low": low, "high": high, "n": len(x), "method": method}


def paired_difference(a: dict, b: dict, bounds: tuple[float, float] | None = None,
                      seed: int = 0) -> dict:
    """The per-seed difference ``a - b`` of one metric, with :func:`interval`.

    Pairing is by key (a seed, or (seed, target)), never by position, so a dropped seed
    is an error instead of a silent mismatch.

    Args:
        a, b: ``{key: value}`` for the method and its baseline, with the same keys.
        bounds: the metric's bounds; the difference then lies in ``(lo - hi, hi - lo)``
            and its interval is clipped there.

    Returns:
        :func:`interval`'s dict plus ``"diffs"`` (``{key: a - b}``), and ``"wins"``: how
        many keys have ``a > b``.

    Raises:
        ValueError: ``a`` and ``b`` have different keys.
    """
    if set(a) != set(b):
        raise ValueError(f"paired_difference: the two methods were run on different seeds: "
                         f"only in the first {sorted(set(a) - set(b), key=str)}, "
                         f"only in the second {sorted(set(b) - set(a), key=str)}")
    keys = sorted(a, key=str)
    diffs = {k: float(a[k]) - float(b[k]) for k in keys}
    diff_bounds = None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])
    out = interval(list(diffs.values()), diff_bounds, seed=seed)
    out.update(diffs={str(k): d for k, d in diffs.items()}, wins=sum(d > 0 for d in diffs.values()))
    return out


T = TypeVar("T")


def bootstrap(units: Sequence[T], statistic: Callable[[Sequence[T]], float], n_boot: int = 2000,
              seed: int = 0) -> tuple[float, float, float]:
    """A statistic of ``units`` and its seeded percentile-bootstrap 95% interval.

    The units (e.g. dialogues) are resampled with replacement ``n_boot`` times and the
    statistic recomputed on each resample, so a statistic that is not a mean (corpus BLEU,
    a ratio of sums) gets an interval too, and a bounded one never leaves its bounds.

    Returns:
        ``(statistic(units), low, high)``; ``nan`` bounds for fewer than two units.
    """
    units = list(units)
    value = float(statistic(units))
    if len(units) < 2:
        return (value, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stats = [float(statistic([units[i] for i in idx])) for idx in rng.integers(0, len(units), size=(n_boot, len(units)))]
    return (value, float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5)))
