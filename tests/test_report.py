"""Results go through mdlib.report: JSON-safe metrics, headlines, intervals."""

import json
import math

import pytest

from mdlib import report


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MDLIB_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_nan_becomes_null_and_roundtrips(results):
    report.save_metrics("x", {"a": float("nan"), "b": [1.5, float("inf")], "c": {"d": 2}})
    data = json.loads((results / "x.json").read_text())
    assert data == {"a": None, "b": [1.5, None], "c": {"d": 2}}
    assert report.load_metrics("x") == data


def test_interval_is_a_t_interval_over_values():
    v = report.interval([1.0, 2.0, 3.0])
    assert v["mean"] == pytest.approx(2.0)
    # t(0.975, df=2) = 4.303, sd = 1, n = 3
    assert v["high"] - v["mean"] == pytest.approx(4.303 / math.sqrt(3), rel=1e-4)
    single = report.interval([5.0])
    assert single["mean"] == 5.0 and math.isnan(single["low"])


def test_add_headline_keeps_the_rest(results):
    report.save_metrics("nb", {"rows": [1, 2]})
    report.add_headline("nb", {"bleu": report.interval([10.0, 12.0])})
    data = report.load_metrics("nb")
    assert data["rows"] == [1, 2] and data["headline"]["bleu"]["mean"] == pytest.approx(11.0)


def test_add_headline_needs_the_metrics_file(results):
    with pytest.raises(FileNotFoundError):
        report.add_headline("missing", {"a": 1})


def test_format_interval():
    assert report.format_interval({"mean": 2.0, "low": 1.5, "high": 2.5}) == "2.000 [1.500, 2.500]"
    assert report.format_interval({"mean": 2.0, "low": None, "high": None}, 1) == "2.0"
    assert report.format_interval({"mean": 2.0, "low": float("nan"), "high": float("nan")}, 2) == "2.00"
    assert report.format_interval(0.25, 2) == "0.25"
