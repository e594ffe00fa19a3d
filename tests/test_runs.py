"""Run folders you can trust: the manifest written last by ``train``, verified by ``adapt``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from mdlib import runs
from mdlib.atomic import atomic_path, write_text
from mdlib.checkpoint import load_checkpoint
from mdlib.cli import main
from mdlib.data.corpus import save_corpus
from mdlib.data.generator import generate
from mdlib.errors import MdlibError
from mdlib.paths import ROOT


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.fixture(scope="module")
def maml_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "maml"
    assert main(["train", "--method", "maml", "--profile", "smoke", "--out", str(out)]) == 0
    return out


def _copy(run, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(run, dst)
    return dst


def _adapt(run, tmp_path, *extra):
    return main(["adapt", "--checkpoint", str(run), "--target", "movie", "--k-shot", "1",
                 "--out", str(tmp_path / "res.json"), *extra])


def test_manifest_lists_every_file_and_the_run(maml_run):
    man = json.loads((maml_run / "run.json").read_text())
    assert set(man["files"]) == {"checkpoint.pt", "config.json", "curve.json", "vocab.json", "learner.pt",
                                 "progress.pt"}  # progress.pt: the resume state of a meta-learning run
    assert all(man["files"][n] == runs.sha256_file(maml_run / n) for n in man["files"])
    assert (man["method"], man["profile"], man["seed"], man["protocol"]) == ("maml", "smoke", 0, "domains")
    assert man["sources"] == ["bus", "restaurant", "weather"] and man["corpus"] is None
    assert man["model"]["hidden"] > 0 and man["model"]["generator"] == "gru"
    # written last: no file of the run is newer than the manifest
    newest = max(os.stat(maml_run / n).st_mtime_ns for n in man["files"])
    assert os.stat(maml_run / "run.json").st_mtime_ns >= newest


def test_meta_run_adapts_through_the_safe_reader(maml_run, tmp_path):
    assert _adapt(maml_run, tmp_path) == 0
    assert json.loads((tmp_path / "res.json").read_text())["method"] == "maml"


def test_flipped_bytes_in_the_checkpoint_are_caught(maml_run, tmp_path, capsys):
    run = _copy(maml_run, tmp_path)
    data = bytearray((run / "checkpoint.pt").read_bytes())
    for i in range(64):  # the probe: 64 bytes flipped in the middle
        data[len(data) // 2 + i] ^= 0x55
    (run / "checkpoint.pt").write_bytes(bytes(data))
    assert _adapt(run, tmp_path) == 1
    assert "checkpoint.pt changed since training" in _err(capsys)
    assert not (tmp_path / "res.json").exists()
    # the same file outside a run is caught by the digest saved inside it (or fails to unpickle)
    with pytest.raises(MdlibError, match="damaged|not an mdlib checkpoint"):
        load_checkpoint(_lone(run, tmp_path))


def _lone(run, tmp_path):
    dst = tmp_path / "lone"
    dst.mkdir()
    shutil.copy(run / "checkpoint.pt", dst / "checkpoint.pt")
    return dst / "checkpoint.pt"


def test_killed_run_without_manifest_is_refused(maml_run, tmp_path, capsys):
    run = _copy(maml_run, tmp_path)
    (run / "run.json").unlink()
    assert _adapt(run, tmp_path) == 1
    assert "no run.json, so not a finished run" in _err(capsys)


def test_learner_of_another_run_is_caught(maml_run, tmp_path, capsys):
    run = _copy(maml_run, tmp_path)
    state = torch.load(run / "learner.pt", weights_only=True)
    state["inner_lr"] = 0.5  # another run's learner.pt: same method, other bytes
    torch.save(state, run / "learner.pt")
    assert _adapt(run, tmp_path) == 1
    assert "learner.pt changed since training" in _err(capsys)
    (run / "learner.pt").unlink()
    assert _adapt(run, tmp_path) == 1
    assert "learner.pt is missing" in _err(capsys)


def test_learner_of_another_method_is_caught(maml_run, tmp_path):
    state = torch.load(maml_run / "learner.pt", weights_only=True)
    runs.save_learner(tmp_path, {k: v for k, v in state.items() if k != "format"})
    assert runs.load_learner(tmp_path, "maml")["inner_steps"] == state["inner_steps"]
    with pytest.raises(MdlibError, match="made by method 'maml', but the run's method is 'reptile'"):
        runs.load_learner(tmp_path, "reptile")
    torch.save({k: v for k, v in state.items() if k != "format"}, tmp_path / "learner.pt")  # the old raw layout
    with pytest.raises(MdlibError, match="not an mdlib learner state"):
        runs.load_learner(tmp_path, "maml")
    (tmp_path / "learner.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(MdlibError, match="not an mdlib learner state"):
        runs.load_learner(tmp_path, "maml")


def test_file_added_to_a_run_is_named(maml_run, tmp_path, capsys):
    run = _copy(maml_run, tmp_path)
    (run / "extra.pt").write_bytes(b"x")
    assert _adapt(run, tmp_path) == 1
    assert "extra.pt was not written by this run" in _err(capsys)


@pytest.mark.parametrize("files, message", [
    ({"../outside.pt": "0" * 64}, "not a file name inside the run folder"),
    ({"/etc/passwd": "0" * 64}, "not a file name inside the run folder"),
    ({"checkpoint.pt": "nope"}, "expected a SHA-256"),
    ([], "field 'files': expected dict"),
])
def test_malformed_manifest_is_one_line(maml_run, tmp_path, capsys, files, message):
    run = _copy(maml_run, tmp_path)
    man = json.loads((run / "run.json").read_text())
    man["files"] = files
    (run / "run.json").write_text(json.dumps(man))
    assert _adapt(run, tmp_path) == 1
    assert message in _err(capsys)


def test_outputs_are_checked_before_any_work(maml_run, tmp_path, capsys, monkeypatch):
    import mdlib.checkpoint

    def no_work(*a, **k):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(mdlib.checkpoint, "load_checkpoint", no_work)
    before = {p.name: p.read_bytes() for p in maml_run.iterdir()}
    (tmp_path / "folder").mkdir()
    for out, message in [(maml_run / "checkpoint.pt", "inside the run folder"),
                         (maml_run / "sub" / "r.json", "inside the run folder"),
                         (tmp_path / "folder", "is a folder"),
                         (str(tmp_path / "new") + "/", "is a folder")]:
        assert main(["adapt", "--checkpoint", str(maml_run), "--target", "movie", "--k-shot", "1",
                     "--out", str(out)]) == 1
        assert message in _err(capsys)
    assert {p.name: p.read_bytes() for p in maml_run.iterdir()} == before

    import mdlib.evaluation

    monkeypatch.setattr(mdlib.evaluation, "pretrain", no_work)
    (tmp_path / "afile").write_text("x")
    for out, message in [(tmp_path / "afile", "is a file, expected a run folder"),
                         (tmp_path / "afile" / "run", "is a file, not a folder"),
                         (maml_run / "inner", "inside the run folder")]:
        assert main(["train", "--profile", "smoke", "--out", str(out)]) == 1
        assert message in _err(capsys)


@pytest.mark.parametrize("command", ["train", "adapt"])
def test_repeated_sources_are_refused(maml_run, tmp_path, capsys, command):
    argv = (["train", "--out", str(tmp_path / "r")] if command == "train" else
            ["adapt", "--checkpoint", str(maml_run), "--target", "movie", "--k-shot", "1",
             "--out", str(tmp_path / "r.json")])
    assert main(argv + ["--profile", "smoke", "--sources", "bus", "bus"]) == 1
    assert "--sources: 'bus' is given twice" in _err(capsys)


def test_adapt_takes_sources_and_corpus_from_the_run(tmp_path, capsys):
    recs = generate(["bus", "weather", "movie"], "clean", 8, seed=1)
    corpus = save_corpus(recs, tmp_path / "c.jsonl")
    run = tmp_path / "run"
    assert main(["train", "--corpus", str(corpus), "--sources", "bus", "weather", "--target", "movie",
                 "--profile", "smoke", "--out", str(run)]) == 0
    man = json.loads((run / "run.json").read_text())
    assert man["corpus"] == {"path": str(corpus.absolute()), "sha256": runs.sha256_file(corpus)}
    capsys.readouterr()
    assert _adapt(run, tmp_path, "--profile", "smoke") == 0  # neither --corpus nor --sources
    assert capsys.readouterr().err == ""
    assert _adapt(run, tmp_path, "--profile", "smoke", "--sources", "bus") == 0
    assert "warning: --sources bus overrides the run's sources (bus weather)" in capsys.readouterr().err
    save_corpus(recs[:-1], corpus)  # the corpus changed since training: its splits would differ
    assert _adapt(run, tmp_path, "--profile", "smoke") == 1
    assert "which changed since" in _err(capsys)
    assert _adapt(run, tmp_path, "--profile", "smoke", "--corpus", str(corpus)) == 0
    assert "is not the corpus the run was trained on" in capsys.readouterr().err


def test_retraining_into_a_folder_drops_the_old_manifest_first(maml_run, tmp_path, monkeypatch):
    run = _copy(maml_run, tmp_path)
    import mdlib.commands.train as train_cmd

    def killed(*a, **k):  # a run killed while training
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(train_cmd, "_data", killed)
        assert main(["train", "--method", "pretrain", "--profile", "smoke", "--out", str(run)]) == 130
    assert (run / "run.json").exists()  # stopped before training began: the old run is intact
    monkeypatch.setattr("mdlib.evaluation.pretrain", killed)
    assert main(["train", "--method", "pretrain", "--profile", "smoke", "--out", str(run)]) == 130
    assert not (run / "run.json").exists() and not (run / "learner.pt").exists()
    with pytest.raises(MdlibError, match="not a finished run"):
        runs.load_run(run)


# ------------------------------------------------------------------ crafted checkpoints
def _blob(maml_run):
    return torch.load(maml_run / "checkpoint.pt", weights_only=True)


@pytest.mark.parametrize("edit, message", [
    (lambda b: b.update(vocab={"<pad>": 0}), "vocab: expected a list of token strings"),
    (lambda b: b.update(vocab=[1, 2, 3]), "vocab: expected a list of token strings"),
    (lambda b: b["state_dict"].update({"embed.weight": [1.0]}), "state_dict: expected a dict"),
    (lambda b: b["state_dict"].update({"embed.weight": torch.zeros(3, dtype=torch.long)}), "floating-point"),
    (lambda b: b["config"]["model"].update(hidden=10**9), "config.model.hidden: expected a whole number"),
    (lambda b: b["config"]["model"].update(hidden=33), "expected an even number"),
    (lambda b: b["config"]["model"].update(emb="64"), "config.model.emb"),
    (lambda b: b["config"]["model"].update(dropout=float("nan")), "config.model.dropout"),
    (lambda b: b["config"]["model"].update(evil=1), "config.model: expected the fields"),
    (lambda b: b.update(config=[1]), "config.model: expected an object"),
    (lambda b: b.update(sha256=torch.zeros(1)), "sha256: expected a string"),
    (lambda b: b["state_dict"]["embed.weight"].mul_(2), "damaged"),
])
def test_crafted_checkpoint_is_one_line(maml_run, tmp_path, edit, message):
    blob = _blob(maml_run)
    edit(blob)
    torch.save(blob, tmp_path / "ck.pt")
    with pytest.raises(MdlibError, match=message):
        load_checkpoint(tmp_path / "ck.pt")


def test_checkpoint_without_a_generator_name_loads_as_the_gru(maml_run, tmp_path):
    from mdlib.checkpoint import _digest
    from mdlib.models.seq2seq import Seq2Seq

    blob = _blob(maml_run)
    assert blob["config"]["model"]["generator"] == "gru"
    del blob["config"]["model"]["generator"]  # as written before the registry
    blob["sha256"] = _digest(blob["state_dict"], blob["vocab"], blob["config"], blob["extra"])
    torch.save(blob, tmp_path / "old.pt")
    assert type(load_checkpoint(tmp_path / "old.pt")[0]) is Seq2Seq
    blob["config"]["model"]["generator"] = "transformer"
    blob["sha256"] = _digest(blob["state_dict"], blob["vocab"], blob["config"], blob["extra"])
    torch.save(blob, tmp_path / "unknown.pt")
    with pytest.raises(MdlibError, match=r"config.model.generator: unknown generator 'transformer'; registered: "):
        load_checkpoint(tmp_path / "unknown.pt")


def test_absurd_sizes_are_refused_before_allocation(maml_run, tmp_path, monkeypatch):
    from mdlib.models.seq2seq import Seq2Seq

    blob = _blob(maml_run)
    blob["config"]["model"]["emb"] = 4096 * 1000
    torch.save(blob, tmp_path / "ck.pt")

    def no_model(*a, **k):
        raise AssertionError("a model was built before the configuration was checked")

    monkeypatch.setattr(Seq2Seq, "__init__", no_model)
    with pytest.raises(MdlibError, match="config.model.emb"):
        load_checkpoint(tmp_path / "ck.pt")


# ------------------------------------------------------------------ replaced files, killed writers
def test_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    write_text(path, "new")
    assert path.read_text() == "new" and (os.stat(path).st_mode & 0o777) == 0o600
    fresh = write_text(tmp_path / "fresh.json", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(fresh).st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.pt") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_killed_command_leaves_no_temporary_file(tmp_path):
    """SIGTERM in the middle of a write: the command exits 143 and removes its temporary file."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        from mdlib.atomic import atomic_path
        import mdlib.cli

        class Args:
            def func(self):
                with atomic_path({str(tmp_path / 'big.jsonl')!r}) as tmp:
                    tmp.write_text("half")
                    os.kill(os.getpid(), signal.SIGTERM)
                    signal.pause()  # not reached: the signal raises

        parser = mdlib.cli.build_parser
        mdlib.cli.build_parser = lambda: type("P", (), {{"parse_args": lambda self, argv: type(
            "A", (), {{"func": staticmethod(lambda args: Args().func())}})()}})()
        sys.exit(mdlib.cli.main([]))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip() == "terminated by signal 15"
    assert list(tmp_path.iterdir()) == []
