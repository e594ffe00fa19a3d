"""The benchmark command and the GPU check script, on the CPU (their figures come from runs,
not from tests)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from mdlib.cli import main
from mdlib.commands.bench import render
from mdlib.benchmark import device_gradient_check, max_abs_difference
from mdlib.errors import MdlibError
from mdlib.paths import ROOT


def test_device_gradient_check_compares_engines_and_devices():
    diffs = device_gradient_check("cpu", "cpu")
    assert set(diffs) == {"loop", "batched", "batched-vs-loop"}
    assert diffs["loop"] == 0.0 and diffs["batched"] == 0.0
    assert diffs["batched-vs-loop"] < 1e-8
    with pytest.raises(MdlibError, match="differ"):
        max_abs_difference({"a": torch.zeros(2)}, {"a": torch.zeros(3)})
    assert max_abs_difference({"a": torch.zeros(2)}, {"a": torch.tensor([0.0, 0.5])}) == 0.5


def test_gpu_check_without_cuda_is_skipped(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert module.main([]) == 0
    assert "skipped" in capsys.readouterr().out


def test_bench_writes_its_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--profile", "smoke", "--methods", "maml", "--meta-batches", "2",
                 "--repeats", "1", "--warmup", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert {(r["method"], r["meta_batch"], r["engine"]) for r in result["rows"]} == {("maml", 2, "loop"),
                                                                                   ("maml", 2, "batched")}
    assert all(r["ms"] > 0 and r["peak_mb"] >= 0 for r in result["rows"])
    assert result["command"].startswith("python -m mdlib bench") and "--profile smoke" in result["command"]
    assert render(result) in printed and "speed-up" in printed
    assert result["processes"] == [1] and "proc ms" not in printed  # no process table by default


def test_bench_two_processes_adds_the_process_table(tmp_path, capsys):
    out = tmp_path / "processes.json"
    assert main(["bench", "--profile", "smoke", "--methods", "fomaml", "--meta-batches", "2", "--engine", "loop",
                 "--repeats", "1", "--warmup", "0", "--processes", "1", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["processes"] == [1, 2] and result["backend"] == "gloo"
    assert "--processes 1 2" in result["command"]
    rows = {(r["method"], r["meta_batch"], r["engine"], r["processes"]): r for r in result["rows"]}
    assert set(rows) == {("fomaml", 2, "loop", 1), ("fomaml", 2, "loop", 2)}
    assert len(rows["fomaml", 2, "loop", 1]["peak_mb_ranks"]) == 1
    assert len(rows["fomaml", 2, "loop", 2]["peak_mb_ranks"]) == 2  # one figure per process
    assert render(result) in printed
    assert "method | engine | 1 proc ms | 2 proc ms | speed-up 2 proc/1 | 1 proc MB | 2 proc MB" in printed
    assert printed.count("fomaml | loop | ") == 1


def test_bench_process_table_rows_and_speed_up():
    rows = [{"method": "maml", "meta_batch": mb, "engine": "loop", "processes": p, "ms": ms, "peak_mb": mem[0],
             "peak_mb_ranks": mem} for mb, p, ms, mem in [(4, 1, 300.0, [50.0]), (16, 1, 1200.0, [80.0]),
                                                           (16, 2, 800.0, [60.0, 58.0])]]
    text = render({"rows": rows, "engines": ["loop"], "methods": ["maml"], "meta_batches": [4, 16],
                   "repeats": 5, "warmup": 2, "device": "cpu", "threads": 1, "profile": "quick",
                   "parameters": 1, "memory": "peak RSS", "processes": [1, 2], "backend": "gloo"})
    assert "maml | 16 | 1200 | 80" in text  # the 2-process row stays out of the main table
    assert "meta-batch 16 sharded over P processes (gloo)" in text
    assert "maml | loop | 1200 | 800 | 1.50x | 80 | 60 / 58" in text


def test_bench_table_rows_and_order_ratio():
    rows = [{"method": m, "meta_batch": 4, "engine": e, "ms": ms, "peak_mb": 10.0}
            for m, e, ms in [("fomaml", "loop", 100.0), ("fomaml", "batched", 50.0),
                             ("maml", "loop", 300.0), ("maml", "batched", 90.0)]]
    text = render({"rows": rows, "engines": ["loop", "batched"], "methods": ["fomaml", "maml"],
                   "meta_batches": [4], "repeats": 5, "warmup": 2, "device": "cpu", "threads": 1,
                   "profile": "quick", "parameters": 1, "memory": "peak RSS"})
    assert "fomaml | 4 | 100 | 50 | 2.00x | 10 | 10" in text
    assert "4 | 3.00x | 1.80x" in text  # maml / fomaml per engine


def test_bench_bad_input(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--meta-batches", "0"])
    assert exc.value.code != 0
    with pytest.raises(SystemExit):
        main(["bench", "--engine", "fast"])
    capsys.readouterr()
    assert main(["bench", "--meta-batches", "1", "--processes", "2"]) == 1  # a process without a task
    err = capsys.readouterr().err
    assert "--processes 2: more processes than the 1 task(s)" in err and err.count("\n") == 1
