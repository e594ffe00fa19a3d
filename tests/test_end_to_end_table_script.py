"""scripts/end_to_end_table.py: one code path runs and saves both targets (a domain, a persona)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("end_to_end_table", ROOT / "scripts" / "end_to_end_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target, systems", [("movie", "all_meta"), ("persona-2000", "multitask")])
def test_writes_the_json_and_prints_its_table(tmp_path, capsys, target, systems):
    out = tmp_path / "table.json"
    rc = _script().main(["--size", "tiny", "--seeds", "0", "--target", target, "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["config"]["target"] == target
    assert result["size"] == "tiny" and result["seeds"] == [0]
    assert f"--target {target}" in result["command"]
    assert systems in printed and f"wrote {out}" in printed
    # the saved file prints the same table again
    assert _script().main(["--table", str(out)]) == 0
    assert systems in capsys.readouterr().out


def test_an_unknown_target_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "table.json"
    rc = _script().main(["--size", "tiny", "--seeds", "0", "--target", "nowhere", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert err.startswith("error: ") and "nowhere" in err and len(err.strip().splitlines()) == 1
