"""The interval rules of the tables and figures: t for unbounded metrics, bootstrap inside the bounds."""

import math

import numpy as np
import pytest

from mdlib.stats import BOUNDS, bootstrap_ci, interval, mean_ci, paired_difference


def test_t_interval_matches_the_textbook_formula():
    x = [1.0, 2.0, 4.0, 7.0]
    mean, low, high = mean_ci(x)
    half = 3.182 * np.std(x, ddof=1) / 2.0  # t_{0.975, 3} * s / sqrt(4)
    assert mean == pytest.approx(3.5) and high - mean == pytest.approx(half) and mean - low == pytest.approx(half)


def test_bounded_metric_interval_stays_inside_its_bounds():
    success = [1.0, 1.0, 0.96, 1.0, 0.90]
    t_mean, t_low, t_high = mean_ci(success)
    assert t_high > 1.0  # the t-interval leaves the range here ...
    iv = interval(success, BOUNDS["success"])
    assert iv["method"].startswith("t, clipped") and 0.0 <= iv["low"] <= iv["mean"] <= iv["high"] <= 1.0  # ... this one cannot
    assert iv["mean"] == pytest.approx(t_mean) and iv["low"] == pytest.approx(t_low) and iv["high"] == 1.0


def test_bounded_interval_is_not_narrower_than_the_t_interval_inside_the_bounds():
    # three seeds: a percentile bootstrap would stay within [0.2, 0.6]; the t-interval is honest about n = 3
    x = [0.2, 0.4, 0.6]
    iv = interval(x, (0.0, 1.0))
    assert iv["low"] == 0.0 and iv["high"] == 1.0 or iv["high"] - iv["low"] > 0.4


def test_bounded_interval_rejects_values_outside_the_bounds():
    with pytest.raises(ValueError, match="outside the metric's bounds"):
        interval([0.5, 1.2], (0.0, 1.0))


def test_unbounded_interval_is_the_t_interval():
    x = [3.0, 5.0, 4.0]
    iv = interval(x)
    assert (iv["mean"], iv["low"], iv["high"]) == pytest.approx(mean_ci(x)) and iv["method"] == "t" and iv["n"] == 3


def test_bootstrap_is_seeded():
    x = [0.1, 0.5, 0.3, 0.9]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)


def test_paired_difference_pairs_by_key_not_position():
    a = {0: 0.8, 1: 0.6, 2: 0.9}
    b = {2: 0.7, 0: 0.5, 1: 0.6}  # same seeds, other order
    d = paired_difference(a, b)
    assert d["diffs"] == {"0": pytest.approx(0.3), "1": pytest.approx(0.0), "2": pytest.approx(0.2)}
    assert d["mean"] == pytest.approx(0.5 / 3) and d["wins"] == 2
    # the paired interval is narrower than the unpaired one when the seeds move together
    a2 = {s: 0.5 + 0.1 * s + 0.01 for s in range(5)}
    b2 = {s: 0.5 + 0.1 * s for s in range(5)}
    paired = paired_difference(a2, b2)
    assert paired["high"] - paired["low"] < 1e-9 < mean_ci(list(a2.values()))[2] - mean_ci(list(a2.values()))[1]


def test_paired_difference_refuses_different_seeds():
    with pytest.raises(ValueError, match="different seeds"):
        paired_difference({0: 1.0, 1: 2.0}, {0: 1.0, 2: 2.0})


def test_bounded_paired_difference_stays_inside_the_difference_range():
    a = {s: 1.0 for s in range(5)}
    b = {0: 0.0, 1: 0.05, 2: 0.0, 3: 0.1, 4: 0.0}
    d = paired_difference(a, b, BOUNDS["success"])
    assert d["method"].startswith("t, clipped") and -1.0 <= d["low"] <= d["high"] <= 1.0
    assert not math.isnan(d["low"])
