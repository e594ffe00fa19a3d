"""The state of an unfinished meta-training run, so that a killed run resumes exactly.

:func:`mdlib.meta.metatrain.meta_train_loop` hands :func:`capture`'s dict to its
``on_checkpoint`` every few steps; ``train`` writes it atomically to ``RUN/progress.pt``
(:data:`PROGRESS_NAME`) with :func:`save_progress`, and ``train --resume RUN`` gives it
back as ``resume``. The state holds everything the next step depends on:

* the parameters and the learner's meta-parameters (Meta-SGD's step sizes, LSLR's
  schedule), the outer optimiser's state (Adam's moments and step count);
* the meta-step reached, the history so far and the best validated parameters;
* the random streams: torch's and Python's global generators and the episode sampler's.

so the resumed run computes the same meta-batches and the same updates as an
uninterrupted one. Only plain data is stored (``torch.load(weights_only=True)`` reads it).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from mdlib.atomic import atomic_path, read_torch
from mdlib.errors import MdlibError

__all__ = ["PROGRESS_NAME", "FORMAT", "capture", "restore", "save_progress", "load_progress"]

PROGRESS_NAME = "progress.pt"
FORMAT = "mdlib-progress-v1"


def _plain(obj: Any) -> Any:
    """Tuples to lists, recursively (Python's random state is nested tuples)."""
    if isinstance(obj, (tuple, list)):
        return [_plain(x) for x in obj]
    return obj


def _tuples(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tuples(x) for x in obj)
    return obj


def capture(step: int, targets: Mapping[str, torch.Tensor], opt: torch.optim.Optimizer | None, hist,
            best: tuple[float, dict | None], seconds: float,
            rng: tuple[Callable[[], Any], Callable[[Any], None]] | None) -> dict:
    """The loop's state after meta-step ``step`` (tensors copied to the CPU)."""
    return {
        "step": step,
        "targets": {n: t.detach().cpu().clone() for n, t in targets.items()},
        "optimizer": opt.state_dict() if opt is not None else None,
        "history": {"steps": list(hist.steps), "valid": list(hist.valid), "best_step": hist.best_step},
        "best_loss": best[0],
        "best": None if best[1] is None else {n: t.detach().cpu().clone() for n, t in best[1].items()},
        "seconds": seconds,
        "rng": {"torch": torch.get_rng_state(), "python": _plain(random.getstate()),
                "sampler": _plain(rng[0]()) if rng is not None else None},
    }


def restore(state: Mapping[str, Any], targets: Mapping[str, torch.Tensor], opt: torch.optim.Optimizer | None,
            hist, rng: tuple[Callable[[], Any], Callable[[Any], None]] | None) -> tuple[int, tuple, float]:
    """Put ``state`` back into the loop's objects; return ``(step, best, seconds)``.

    Raises:
        MdlibError: the state's tensors do not match the parameters (another model).
    """
    saved = state["targets"]
    if set(saved) != set(targets) or any(saved[n].shape != t.shape for n, t in targets.items()):
        raise MdlibError("resume: the saved parameters do not match this model "
                         "(another model size or method)")
    with torch.no_grad():
        for n, t in targets.items():
            t.copy_(saved[n].to(t))
    if opt is not None:
        if state["optimizer"] is None:
            raise MdlibError("resume: the saved run used another outer optimiser")
        opt.load_state_dict(state["optimizer"])
    h = state["history"]
    hist.steps, hist.valid, hist.best_step = list(h["steps"]), list(h["valid"]), h["best_step"]
    device = next(iter(targets.values())).device
    best = (state["best_loss"], None if state["best"] is None
            else {n: t.to(device) for n, t in state["best"].items()})
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(_tuples(state["rng"]["python"]))
    if rng is not None and state["rng"]["sampler"] is not None:
        rng[1](_tuples(state["rng"]["sampler"]))
    return int(state["step"]), best, float(state["seconds"])


def save_progress(path: str | Path, state: Mapping[str, Any], settings: Mapping[str, Any]) -> Path:
    """Write ``state`` and the run's ``settings`` (method, profile, seed, ...) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "settings": dict(settings), "state": dict(state)}, tmp)
    return path


def load_progress(run: str | Path) -> dict:
    """``{"settings": ..., "state": ...}`` of the run folder ``run``.

    Raises:
        MdlibError: ``run`` is not a folder, or holds no progress file of this package.
    """
    run = Path(run)
    if not run.is_dir():
        raise MdlibError(f"--resume {run}: not a run folder (no such folder)")
    if not (run / PROGRESS_NAME).is_file():
        raise MdlibError(f"--resume {run}: not a resumable run (no {PROGRESS_NAME}; only meta-learning "
                         "runs written by `python -m mdlib train` can resume)")
    return read_torch(run / PROGRESS_NAME, FORMAT, "run progress file", "")
