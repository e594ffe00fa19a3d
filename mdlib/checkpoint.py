"""Checkpoints of generators, run folders, and a cache of trained models.

A checkpoint is one ``torch.save`` file holding plain data only (tensors, numbers,
strings, lists, dicts), so that it loads with ``torch.load(..., weights_only=True)``::

    {"format": "mdlib-checkpoint-v1", "state_dict": {...}, "vocab": [...tokens...],
     "config": {"model": {...ModelConfig...}, ...run settings...}, "extra": {...}}

A run folder (``python -m mdlib train --out runs/NAME``) holds ``checkpoint.pt``,
``config.json``, ``curve.json`` and ``vocab.json``. :func:`cached` reuses a trained model
across notebooks, keyed by a hash of its configuration and seed, under ``runs/cache/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from mdlib import paths
from mdlib.atomic import atomic_path, read_torch, write_text
from mdlib.data.text import Vocab
from mdlib.errors import MdlibError
from mdlib.models.seq2seq import ModelConfig, Seq2Seq

FORMAT = "mdlib-checkpoint-v1"
CHECKPOINT_NAME = "checkpoint.pt"


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def save_checkpoint(path: str | Path, model: Seq2Seq, vocab: Vocab, config: dict,
                    extra: dict | None = None) -> Path:
    """Write ``model``'s weights with its vocabulary and configuration, atomically.

    Args:
        path: the ``.pt`` file.
        config: JSON-able run settings; ``config["model"]`` is set from the model.
        extra: JSON-able extras (learning curve, ...).

    Raises:
        MdlibError: when a weight is NaN/inf (a NaN checkpoint is never written).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise MdlibError(f"refusing to save {path}: parameter {k!r} is not finite")
    config = dict(config, model=model.config.to_dict())
    blob = {"format": FORMAT, "state_dict": state, "vocab": list(vocab.itos),
            "config": json.loads(_json(config)), "extra": json.loads(_json(extra or {}))}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def _diff(expected: dict, found: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(expected) | set(found)):
        a, b = expected.get(k, "<missing>"), found.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_diff(a, b, f"{prefix}{k}."))
        elif a != b:
            out.append(f"{prefix}{k}: expected {a!r}, checkpoint has {b!r}")
    return out


def load_checkpoint(path: str | Path, *, vocab: Vocab | None = None, config: dict | None = None,
                    device: torch.device | str | None = None) -> tuple[Seq2Seq, Vocab, dict, dict]:
    """Load a checkpoint (a ``.pt`` file or a run folder holding ``checkpoint.pt``).

    Args:
        vocab: when given, the checkpoint's vocabulary must equal it.
        config: when given, every key of it must equal the checkpoint's value.
        device: where to put the model.

    Returns:
        ``(model, vocab, config, extra)``; the model is in eval mode.

    Raises:
        MdlibError: missing or foreign file, or a vocabulary/configuration/weight mismatch,
            naming what differs.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    blob = read_torch(path, FORMAT, "checkpoint", "train one with `python -m mdlib train --out DIR`")
    ck_vocab = Vocab(blob["vocab"])
    if vocab is not None and vocab != ck_vocab:
        first = next((i for i, (a, b) in enumerate(zip(vocab.itos, ck_vocab.itos)) if a != b),
                     min(len(vocab), len(ck_vocab)))
        raise MdlibError(f"{path}: vocabulary differs: expected {len(vocab)} tokens, checkpoint has "
                         f"{len(ck_vocab)}; first difference at id {first}")
    ck_config = blob["config"]
    if config is not None:
        diffs = _diff({k: config[k] for k in config}, {k: ck_config.get(k, "<missing>") for k in config})
        if diffs:
            raise MdlibError(f"{path}: configuration differs: " + "; ".join(diffs[:5]))
    try:
        mconf = ModelConfig(**ck_config["model"])
    except (KeyError, TypeError) as exc:
        raise MdlibError(f"{path}: config.model is unreadable ({exc})") from None
    if mconf.vocab_size != len(ck_vocab):
        raise MdlibError(f"{path}: model vocab_size {mconf.vocab_size} != vocabulary size {len(ck_vocab)}")
    model = Seq2Seq(mconf)
    own = model.state_dict()
    state = blob["state_dict"]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k}: expected {tuple(own[k].shape)}, checkpoint has {tuple(state[k].shape)}"
              for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise MdlibError(f"{path}: weights do not match the model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, shapes {shapes[:3]}")
    model.load_state_dict(state)
    model.eval()
    if device is not None:
        model.to(device)
    return model, ck_vocab, ck_config, blob.get("extra", {})


def save_run(out: str | Path, model: Seq2Seq, vocab: Vocab, config: dict, curve: list[dict]) -> Path:
    """Write a run folder: ``vocab.json``, ``curve.json``, ``config.json``, then ``checkpoint.pt``.

    The checkpoint is written last, so its presence means the run is complete.
    """
    out = Path(out)
    vocab.save(out / "vocab.json")
    write_text(out / "curve.json", _json(curve))
    write_text(out / "config.json", _json(dict(config, model=model.config.to_dict())))
    save_checkpoint(out / CHECKPOINT_NAME, model, vocab, config, extra={"curve": curve})
    return out


def config_key(config: dict, seed: int) -> str:
    """A 16-hex-digit hash of ``config`` and ``seed`` (the cache key)."""
    text = json.dumps({"config": config, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def _key_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder.lock`` (POSIX ``flock``; no lock where it is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: fall back to last-writer-wins (still atomic)
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(config: dict, seed: int, train_fn: Callable[[], tuple[Seq2Seq, Vocab, list[dict]]],
           cache_dir: str | Path | None = None, device=None) -> tuple[Seq2Seq, Vocab, dict, dict]:
    """Load the model trained with ``config`` and ``seed``, or train and store it.

    Args:
        config: JSON-able settings that fully decide the training (profile fields,
            method, sources, ...); with ``seed`` they form the key.
        train_fn: ``() -> (model, vocab, curve)``, called only on a cache miss.
        cache_dir: default ``runs/cache``.

    Returns:
        As :func:`load_checkpoint`; ``extra["curve"]`` is the learning curve and
        ``extra["cache_hit"]`` says whether training was skipped.

    Files are written by atomic rename, so readers never see a partial file. Processes
    that want the same key at once (notebooks run in parallel by ``reproduce --jobs``)
    queue on a lock file next to it: one trains, the others wait and then load its model.
    """
    folder = Path(cache_dir or paths.RUNS_DIR / "cache") / config_key(config, seed)
    with _key_lock(folder):
        hit = (folder / CHECKPOINT_NAME).is_file()
        if not hit:
            model, vocab, curve = train_fn()
            if any(isinstance(v, float) and not math.isfinite(v) for row in curve for v in row.values()):
                raise MdlibError("training produced a non-finite loss; nothing cached")
            save_run(folder, model, vocab, dict(config, seed=seed), curve)
    model, vocab, conf, extra = load_checkpoint(folder, device=device)
    extra = dict(extra, cache_hit=hit, path=str(folder))
    return model, vocab, conf, extra
