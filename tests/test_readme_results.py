"""The README's results table agrees with the committed run (paper, else quick)."""

from __future__ import annotations

import pytest

from mdlib.errors import MdlibError
from mdlib.paths import ROOT
from mdlib.reproduce import (README_END, README_START, committed_summary_path, readme_with_results,
                             render_results_table)

SUMMARY = committed_summary_path()

_FAKE = {
    "profile": "paper",
    "notebooks": {
        "03_maml": {"status": "ok", "wall_s": 125.0, "metrics_files": ["maml.json"]},
        "07_end": {"status": "failed", "wall_s": 3.0, "metrics_files": []},
    },
    "metrics": {"maml": {"headline": {"bleu": {"mean": 0.5, "low": 0.4, "high": 0.6}, "turns": 7},
                         "ignored": 1.0}},
    "total_wall_s": 128.0,
    "machine": {"cpu_count": 2, "torch": "2.13", "device": "cpu", "python": "3.11", "processor": "x86_64"},
}


def test_readme_matches_committed_results():
    if SUMMARY is None:
        pytest.skip("no results/{paper,quick}/summary.json committed yet (run `python -m mdlib reproduce`)")
    import json

    summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_results(text, summary) == text, (
        f"README.md's results table disagrees with {SUMMARY}; "
        "run `.venv/bin/python scripts/readme_results.py`")


def test_render_shows_headline_intervals_time_and_status():
    table = render_results_table(_FAKE)
    assert "| `03_maml` | 2.1 min | ok | `maml`: bleu 0.5 [0.4, 0.6]; turns 7 |" in table
    assert "ignored" not in table  # a headline mapping limits what is shown
    assert "| `07_end` | 3 s | failed | - |" in table
    assert "2 CPU cores" in table and "2.1 min" in table and "at a time" not in table
    assert "2 notebooks at a time (`--jobs 2`)" in render_results_table(dict(_FAKE, jobs=2))


def test_readme_block_is_replaced_and_stale_table_detected():
    text = f"intro\n{README_START}\nold table\n{README_END}\nrest\n"
    new = readme_with_results(text, _FAKE)
    assert new.startswith("intro\n" + README_START) and new.endswith(README_END + "\nrest\n")
    assert "old table" not in new and readme_with_results(new, _FAKE) == new
    changed = dict(_FAKE, total_wall_s=999.0)
    assert readme_with_results(new, changed) != new
    with pytest.raises(MdlibError, match="markers"):
        readme_with_results("no markers here", _FAKE)
