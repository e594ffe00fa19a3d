"""Hostile or careless command lines: each gets one ``error:`` line and a non-zero exit, or works."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdlib import paths
from mdlib.cli import main
from mdlib.paths import ROOT



def _err(capsys) -> str:
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def _mdlib(*argv, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MDLIB_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mdlib", *argv], capture_output=True, env=env, timeout=300, **kw)


# ------------------------------------------------------------------ nested JSON
@pytest.mark.parametrize("depth", [101, 100_000])
def test_deeply_nested_json_everywhere(tmp_path, capsys, depth):
    deep = "[" * depth + "]" * depth
    (tmp_path / "deep.jsonl").write_text(deep + "\n")
    (tmp_path / "deep.json").write_text('{"dialogs": ' + deep + "}")
    cases = [["validate", str(tmp_path / "deep.jsonl")],
             ["convert", "--from", "simdial", str(tmp_path / "deep.json"), "--out", str(tmp_path / "o.jsonl")],
             ["train", "--corpus", str(tmp_path / "deep.jsonl"), "--sources", "a", "--target", "b",
              "--out", str(tmp_path / "run")]]
    for argv in cases:
        assert main(argv) == 1
        assert "nested too deeply" in _err(capsys)
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "run").exists()


# ------------------------------------------------------------------ unreadable inputs
def test_permission_denied(tmp_path, capsys, monkeypatch):
    """A file this user may not read (simulated: tests may run as root, who reads anything)."""
    locked = tmp_path / "locked.jsonl"
    locked.write_text("{}\n")
    real_open = builtins.open

    def guarded(file, *a, **k):
        if Path(str(file)) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: guarded(self).read())
    for argv in (["validate", str(locked)], ["convert", "--from", "simdial", str(locked), "--out", str(tmp_path / "o.jsonl")]):
        assert main(argv) == 1
        assert "permission denied" in _err(capsys)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_unreadable_device_file(tmp_path, capsys):
    for argv in (["validate", "/proc/self/mem"], ["convert", "--from", "simdial", "/proc/self/mem", "--out",
                                                   str(tmp_path / "o.jsonl")]):
        assert main(argv) == 1
        assert "/proc/self/mem: cannot read" in _err(capsys)


def test_a_folder_as_input(tmp_path, capsys):
    for argv in (["validate", str(tmp_path)], ["convert", "--from", "simdial", str(tmp_path), "--out",
                                                str(tmp_path / "o.jsonl")]):
        assert main(argv) == 1
        assert "is a folder" in _err(capsys)


def test_lone_surrogate_in_convert(tmp_path, capsys):
    src = tmp_path / "sur.json"
    src.write_text('{"dialogs": [[{"speaker": "USR", "utt": "\\ud800 hi", "domain": "x"}]]}')
    assert main(["convert", "--from", "simdial", str(src), "--out", str(tmp_path / "o.jsonl")]) == 1
    assert "lone surrogate" in _err(capsys)
    assert list(tmp_path.iterdir()) == [src]  # nothing written, no temporary file left


def test_lone_surrogate_in_a_corpus_prints(tmp_path, capsys):
    """Validation echoes the domain: a surrogate in it must not crash the printing."""
    rec = {"id": "a", "domain": "\ud800x", "turns": [{"speaker": "user", "text": "hi"}]}
    (tmp_path / "c.jsonl").write_text(json.dumps(rec) + "\n")
    proc = _mdlib("validate", str(tmp_path / "c.jsonl"))
    assert proc.returncode == 0 and b"valid" in proc.stdout and proc.stderr == b""


# ------------------------------------------------------------------ chat and its pipes
def test_chat_into_head_stops_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "mdlib", "chat", "--templates"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), MDLIB_THREADS="1"))
    proc.stdin.write(b"hi\n" * 20000)
    proc.stdin.close()
    assert proc.stdout.readline()  # `head -1`: read one reply, then go away
    proc.stdout.close()
    rc = proc.wait(timeout=300)
    err = proc.stderr.read().decode()
    assert rc == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_chat_with_stdin_closed():
    """``chat <&-``: Python starts with no sys.stdin; closed later, reads fail with EBADF."""
    proc = _mdlib("chat", "--templates", preexec_fn=lambda: os.close(0))
    assert proc.returncode == 1
    assert proc.stderr == b"error: standard input is closed; pipe user lines into chat or run it in a terminal\n"
    proc = subprocess.run([sys.executable, "-c", "import os, sys, runpy; os.close(0); sys.argv = ['mdlib', 'chat', "
                           "'--templates']; runpy.run_module('mdlib', run_name='__main__')"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot read standard input (Bad file descriptor)\n"


# ------------------------------------------------------------------ names that cannot escape
@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(paths, "DATA_DIR", data)
    monkeypatch.setattr(paths, "CORPORA_DIR", data / "corpora")
    return data


ENTRY = {"domain": "bus", "seed": 14, "spec": "mix", "dialogues": 3, "bytes": 1, "sha256": "0" * 64}


@pytest.mark.parametrize("files, message", [
    ({"../escape.jsonl": ENTRY}, "expected a plain file name"),
    ({"sub/bus.jsonl": ENTRY}, "expected a plain file name"),
    ({"bus.jsonl": ["not", "an", "object"]}, "expected an object, got list"),
    ({"bus.jsonl": dict(ENTRY, seed="14")}, "seed: expected a whole number"),
    ({"movie.jsonl": ENTRY}, "expected <domain>.jsonl"),
])
def test_manifest_entries_stay_in_data(fake_data, capsys, files, message):
    (fake_data / "manifest.json").write_text(json.dumps({"files": files}))
    assert main(["data"]) == 1
    assert message in _err(capsys)
    assert sorted(p.name for p in fake_data.parent.iterdir()) == ["data"]
    assert [p.name for p in fake_data.iterdir()] == ["manifest.json"]


def test_reproduce_profile_cannot_leave_results(capsys):
    for name in ("../x", "../profiles/quick", "/etc/passwd"):
        assert main(["reproduce", "--profile", name, "--only", "01"]) == 1
        assert f"unknown profile {name!r}" in _err(capsys)


# ------------------------------------------------------------------ small things
@pytest.mark.parametrize("argv", [
    ["generate", "--domain", "bus", "--n", "2", "--out", "OUT/"],
    ["convert", "--from", "simdial", "IN", "--out", "OUT/"],
    ["policy", "--out", "OUT/"],
])
def test_out_with_a_trailing_slash_is_a_folder(tmp_path, capsys, argv):
    argv = [a.replace("OUT", str(tmp_path / "new")).replace("IN", str(tmp_path / "in.json")) for a in argv]
    assert main(argv) == 1
    assert "is a folder, expected a file name" in _err(capsys)
    assert list(tmp_path.iterdir()) == []


def test_policy_help_shows_one_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["policy", "--help"])
    out = capsys.readouterr().out
    assert "95% intervals" in out and "%%" not in out


# ------------------------------------------------------------------ streaming generation
def test_generate_streams_records_as_it_writes(tmp_path, monkeypatch):
    """The generator is consumed one record at a time: no list of the corpus is built."""
    import mdlib.data.generator as gen

    made, seen_when_made = [], []
    real = gen.generate_dialogue

    def counting(*a, **k):
        made.append(1)
        return real(*a, **k)

    monkeypatch.setattr(gen, "generate_dialogue", counting)
    monkeypatch.setattr(gen, "generate", lambda *a, **k: pytest.fail("generate() builds a list"))
    out = tmp_path / "c.jsonl"
    from mdlib.data import corpus

    real_dumps = corpus.dumps

    def watching(rec):
        seen_when_made.append(len(made))
        return real_dumps(rec)

    monkeypatch.setattr(corpus, "dumps", watching)
    assert main(["generate", "--domain", "bus", "--n", "30", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 30
    written = seen_when_made[-30:]  # the last 30 dumps are the file's; the rest sized the estimate
    assert written == sorted(written) and written[0] < written[-1]  # each dumped right after it was made


def test_ten_million_dialogues_refused_up_front_when_the_disk_is_too_small(tmp_path, capsys, monkeypatch):
    import mdlib.commands.data as data_cmd

    monkeypatch.setattr(data_cmd, "_free_bytes", lambda path: 50 * 10**9)
    assert main(["generate", "--domain", "bus", "--n", "10000000", "--out", str(tmp_path / "big.jsonl")]) == 1
    err = _err(capsys)
    assert "--n 10000000: the corpus would take about" in err and "50.0 GB free" in err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ crafted policy files
@pytest.mark.parametrize("edit, message", [
    (lambda b: b["config"].update(hidden=10**9), "config.hidden: expected a whole number in [1, 4096]"),
    (lambda b: b["config"].update(hidden=True), "config.hidden"),
    (lambda b: b["params"].update({1: b["params"][next(iter(b["params"]))]}), "params: expected a dict"),
    (lambda b: b["params"].update({k: v.long() for k, v in b["params"].items()}), "floating-point"),
    (lambda b: b["params"].update({k: v * float("nan") for k, v in b["params"].items()}), "is not finite"),
])
def test_crafted_policy_file_is_one_line(tmp_path, capsys, edit, message):
    import torch

    from mdlib.dm.learned import FORMAT
    from mdlib.dm.rl import make_policy

    blob = {"format": FORMAT, "config": {"hidden": 8, "domain": "movie"},
            "params": {k: v.detach().clone() for k, v in make_policy(8).named_parameters()}}
    edit(blob)
    torch.save(blob, tmp_path / "p.policy.pt")
    assert main(["chat", "--templates", "--policy", str(tmp_path / "p.policy.pt")]) == 1
    assert message in _err(capsys)


def test_an_error_quoting_a_newline_is_still_one_line(tmp_path, capsys):
    rec = {"id": "a", "domain": "d", "turns": [{"speaker": "user", "text": "hi", "kb": {
        "constraints": {"slot\nname": "x"}, "results": [{"slot\nname": "y"}]}}]}
    (tmp_path / "c.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(["validate", str(tmp_path / "c.jsonl")]) == 1
    assert "row does not satisfy the constraint" in _err(capsys)
