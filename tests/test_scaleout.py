"""Beyond one process: checkpoints and resuming, torchrun sharding, the training flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdlib.cli import main
from mdlib.errors import MdlibError
from mdlib.meta import metatrain
from mdlib.meta.learners import make_learner
from mdlib.meta.sine import SineMLP, sine_episodes, sine_loss_fn

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke", "--seed", "0", "--method", "fomaml", "--meta-batch", "4", "--meta-steps", "4"]


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["state_dict"]


class _Killed(Exception):
    pass


def _sine_run(steps, *, stop_after=None, resume=None, saved=None):
    """Meta-SGD on sines with validation; optionally killed after ``stop_after`` steps.

    Every checkpointed state is appended to ``saved``.
    """
    torch.manual_seed(0)
    model = SineMLP(hidden=8)
    params = dict(model.named_parameters())
    learner = make_learner("metasgd", params, 1, 0.05)
    gen = torch.Generator().manual_seed(1)
    val = sine_episodes(2, 5, 5, torch.Generator().manual_seed(9))
    saved = [] if saved is None else saved

    def checkpoint(state):
        saved.append(state)
        if stop_after is not None and state["step"] == stop_after:
            raise _Killed

    hist = metatrain.meta_train_loop(
        learner, sine_loss_fn(model), params, lambda s: sine_episodes(3, 5, 5, gen), meta_steps=steps,
        outer_lr=1e-2, validate=lambda p: metatrain.validation_loss(learner, sine_loss_fn(model), p, val),
        eval_every=2, on_checkpoint=checkpoint, checkpoint_every=1, resume=resume,
        rng=(gen.get_state, gen.set_state))
    return {**{n: t.detach().clone() for n, t in params.items()},
            **{n: t.detach().clone() for n, t in learner.meta_parameters().items()}}, hist, saved


def test_a_killed_outer_loop_resumes_to_the_uninterrupted_result():
    full, hist, _ = _sine_run(6)
    saved: list = []
    with pytest.raises(_Killed):
        _sine_run(6, stop_after=3, saved=saved)
    assert saved[-1]["step"] == 3
    resumed, rhist, _ = _sine_run(6, resume=saved[-1])
    assert [r["step"] for r in rhist.steps] == list(range(1, 7))
    assert rhist.best_step == hist.best_step and rhist.valid == hist.valid
    for n in full:  # parameters, Meta-SGD's step sizes: bit for bit
        torch.testing.assert_close(resumed[n], full[n], rtol=0, atol=0)


def test_train_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    from mdlib.meta import progress

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(["train", *SMOKE, "--out", str(whole)]) == 0
    real = progress.save_progress

    def save_then_die(path, state, settings):  # Ctrl-C right after the checkpoint of step 2
        real(path, state, settings)
        if state["step"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress, "save_progress", save_then_die)
    assert main(["train", *SMOKE, "--checkpoint-every", "2", "--out", str(killed)]) == 130
    assert (killed / "progress.pt").is_file() and not (killed / "checkpoint.pt").exists()
    monkeypatch.setattr(progress, "save_progress", real)
    assert main(["train", "--resume", str(killed)]) == 0
    a, b = _weights(whole), _weights(killed)
    for n in a:
        torch.testing.assert_close(b[n], a[n], rtol=0, atol=0)
    capsys.readouterr()
    # resuming with another method or model size, or a folder that is no run: one line, nothing written
    for argv, message in ((["--method", "maml"], "the run was made with --method fomaml, not maml"),
                          (["--profile", "quick"], "the run was made with --profile smoke, not quick"),
                          (["--meta-batch", "2"], "the run was made with --meta-batch 4, not 2")):
        assert main(["train", "--resume", str(killed), *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing", whole / "checkpoint.pt"):
        assert main(["train", "--resume", str(folder)]) == 1
        err = capsys.readouterr().err
        assert "not a" in err and err.count("\n") == 1
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--meta-batch", "0"], "--meta-batch: expected a number >= 1, got 0"),
    (["--engine", "fast"], "--engine: unknown engine 'fast'; known engines: loop, batched"),
    (["--device", "tpu"], "--device: unknown device 'tpu'"),
    (["--method", "mamll"], "--method: unknown method 'mamll'; known methods: pretrain"),
    (["--meta-steps", "x"], "--meta-steps: expected a whole number"),
])
def test_bad_training_flags_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", "--profile", "smoke", "--method", "fomaml", "--out", str(out), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_device_choice():
    from mdlib.seeding import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(MdlibError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_engine_is_passed_to_meta_gradient(monkeypatch):
    calls = []
    real = metatrain.meta_gradient

    def spy(learner, loss_fn, params, tasks, **kw):
        calls.append(kw)
        return real(learner, loss_fn, params, tasks)

    monkeypatch.setattr(metatrain, "meta_gradient", spy)
    torch.manual_seed(0)
    model = SineMLP(hidden=4)
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(0)
    for engine in ("loop", "batched"):
        metatrain.meta_train_loop(make_learner("fomaml", params, 1, 0.05), sine_loss_fn(model), params,
                                  lambda s: sine_episodes(2, 5, 5, gen), meta_steps=1, engine=engine)
    assert calls == [{"engine": "loop"}, {"engine": "batched"}]


def _torchrun(nproc: int, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MDLIB_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), "-m", "mdlib", "train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_two_gloo_processes_end_with_the_parameters_of_one(tmp_path):
    # meta-batch 4 > 3 source domains: tasks drawn with replacement; 2 tasks per process
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", *SMOKE, "--out", str(one)]) == 0
    res = _torchrun(2, [*SMOKE, "--out", str(two)], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("wrote ") == 1  # only rank 0 writes (and says so)
    a, b = _weights(one), _weights(two)
    for n in a:
        torch.testing.assert_close(b[n], a[n], rtol=1e-5, atol=1e-6)


def test_more_processes_than_tasks_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from mdlib.meta import distributed

    # what torchrun --nproc_per_node 3 gives rank 0 (the check comes before any collective call)
    monkeypatch.setattr(distributed, "from_env", lambda device: distributed.Group(0, 3))
    out = tmp_path / "run"
    assert main(["train", *SMOKE[:-4], "--meta-batch", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "torchrun started 3 processes but a meta-batch has 2 task(s)" in err and err.count("\n") == 1
    assert not out.exists()
    assert distributed.Group(1, 3).bounds(4) == (1, 2) and distributed.Group(2, 3).bounds(4) == (2, 4)


def test_the_multitask_control_trains_and_adapts_from_the_command_line(tmp_path):
    import json

    run = tmp_path / "mt"
    assert main(["train", "--method", "multitask", "--profile", "smoke", "--meta-steps", "2", "--out", str(run)]) == 0
    state = torch.load(run / "learner.pt", weights_only=True)
    assert state["method"] == "multitask" and state["inner_steps"] == 0
    out = tmp_path / "mt.json"
    assert main(["adapt", "--checkpoint", str(run), "--target", "movie", "--k-shot", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["method"] == "multitask"
