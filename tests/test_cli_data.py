"""The data sub-commands: generate, validate, convert, data (exit codes and messages)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mdlib import paths
from mdlib.cli import main


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_generate_then_validate(tmp_path, capsys):
    out = tmp_path / "mb.jsonl"
    rc, stdout, err = _run(["generate", "--domain", "movie", "--domain", "bus", "--spec", "mix",
                            "--n", "4", "--seed", "0", "--out", str(out)], capsys)
    assert rc == 0 and err == ""
    assert "8 dialogues" in stdout and "bus 4, movie 4" in stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["domain"] == "movie"
    rc, stdout, _ = _run(["validate", str(out)], capsys)
    assert rc == 0 and stdout.startswith(f"{out}: valid; 8 dialogues")


@pytest.mark.parametrize("args, message", [
    (["--domain", "moovie"], "error: unknown domain 'moovie'; known domains: restaurant"),
    (["--domain", "bus", "--spec", "noisy"], "error: unknown complexity spec 'noisy'"),
])
def test_generate_bad_input_one_line_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "x.jsonl"
    rc, stdout, err = _run(["generate", *args, "--n", "3", "--out", str(out)], capsys)
    assert rc == 1 and err.startswith(message) and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_generate_n_zero_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--domain", "bus", "--n", "0", "--out", str(tmp_path / "x.jsonl")])
    assert exc.value.code == 2
    assert "argument --n: expected a number >= 1, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = _run(["generate", "--domain", "bus", "--n", "2", "--out", str(blocker / "sub" / "x.jsonl")], capsys)
    assert rc == 1 and err.startswith("error: ") and "cannot write" in err and err.count("\n") == 1
    rc, _, err = _run(["generate", "--domain", "bus", "--n", "2", "--out", str(tmp_path)], capsys)
    assert rc == 1 and "is a folder" in err


def test_validate_malformed_file(tmp_path, capsys):
    good = tmp_path / "g.jsonl"
    main(["generate", "--domain", "weather", "--n", "3", "--out", str(good)])
    capsys.readouterr()
    lines = good.read_text().splitlines()
    rec = json.loads(lines[2])
    rec["turns"][3]["speaker"] = "bot"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:2] + [json.dumps(rec)]) + "\n")
    rc, stdout, err = _run(["validate", str(bad)], capsys)
    assert rc == 1 and stdout == ""
    assert err == f"error: {bad}:3: field 'turns[3].speaker': expected 'user' or 'system', got 'bot'\n"
    bad.write_text(lines[0] + "\n{oops\n")
    rc, _, err = _run(["validate", str(bad)], capsys)
    assert rc == 1 and err.startswith(f"error: {bad}:2: invalid JSON")
    rc, _, err = _run(["validate", str(tmp_path / "none.jsonl")], capsys)
    assert rc == 1 and "no such file" in err


SIMDIAL = {"dialogs": [[
    {"speaker": "SYS", "utt": "Ask me about bus information.", "actions": [{"act": "greet", "parameters": []}],
     "domain": "bus"},
    {"speaker": "USR", "utt": "From CMU.", "conf": 0.9,
     "actions": [{"act": "inform", "parameters": [["from_loc", "CMU"]]}], "domain": "bus"},
]], "meta": {"name": "bus"}}


def test_convert_simdial(tmp_path, capsys):
    src, out = tmp_path / "bus.json", tmp_path / "bus.jsonl"
    src.write_text(json.dumps(SIMDIAL))
    rc, stdout, _ = _run(["convert", "--from", "simdial", str(src), "--out", str(out)], capsys)
    assert rc == 0 and "1 dialogues" in stdout
    rec = json.loads(out.read_text())
    assert rec["turns"][1] == {"speaker": "user", "text": "From CMU.",
                               "acts": [{"act": "inform", "slot": "from_loc", "value": "CMU"}], "asr_conf": 0.9}
    broken = json.loads(json.dumps(SIMDIAL))
    del broken["dialogs"][0][1]["utt"]
    src.write_text(json.dumps(broken))
    out2 = tmp_path / "b2.jsonl"
    rc, _, err = _run(["convert", "--from", "simdial", str(src), "--out", str(out2)], capsys)
    assert rc == 1 and err == f"error: {src}: field 'dialogs[0][1].utt': missing\n"
    assert not out2.exists()


def test_data_command_verifies_protocol_corpora(capsys):
    rc, stdout, _ = _run(["data"], capsys)
    assert rc == 0
    assert "verified against data/manifest.json" in stdout and "movie.jsonl" in stdout
    assert "train 900, valid 100, test 500" in stdout
    assert (paths.CORPORA_DIR / "bus.jsonl").exists()


@pytest.mark.parametrize("cmd", ["generate", "validate", "convert", "data"])
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: python -m mdlib " + cmd in capsys.readouterr().out


def test_entry_point_in_a_subprocess(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "domain": "bus", "turns": [{"speaker": "user"}]}\n')
    res = subprocess.run([sys.executable, "-m", "mdlib", "validate", str(bad)], capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr == f"error: {bad}:1: field 'turns[0].text': missing\n"
