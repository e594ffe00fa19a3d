"""Checkpoints of generators, run folders, and a cache of trained models.

A checkpoint is one ``torch.save`` file holding plain data only (tensors, numbers,
strings, lists, dicts), so that it loads with ``torch.load(..., weights_only=True)``::

    {"format": "mdlib-checkpoint-v1", "state_dict": {...}, "vocab": [...tokens...],
     "config": {"model": {"generator": "gru", ...its configuration...}, ...run settings...}, "extra": {...},
     "sha256": "<digest of the weights, vocabulary and configuration>"}

``config["model"]`` is :func:`~mdlib.models.contract.generator_config`: the generator's
registry name (:mod:`mdlib.models.contract`; a checkpoint without one was written by the
GRU, ``"gru"``) and its configuration, which the registered class checks (types, sizes:
:data:`mdlib.models.seq2seq.LIMITS` for the GRU). Loading checks every field and the
weight shapes against a model built on the ``meta`` device before any memory is
allocated, and the digest catches damaged bytes. A run folder (``python -m mdlib train --out runs/NAME``) holds
``checkpoint.pt``, ``config.json``, ``curve.json``, ``vocab.json`` and, written last, the
manifest ``run.json`` that :mod:`mdlib.runs` verifies. :func:`cached` reuses a trained model
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
from mdlib.models.contract import Generator, GeneratorConfig, generator_config, parse_config

FORMAT = "mdlib-checkpoint-v1"
CHECKPOINT_NAME = "checkpoint.pt"


def _digest(state: dict, vocab: list, config: dict, extra: dict) -> str:
    """SHA-256 over the weights (name, dtype, shape, bytes), the vocabulary, configuration and extras."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps([vocab, config, extra], sort_keys=True, default=repr).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def save_checkpoint(path: str | Path, model: Generator, vocab: Vocab, config: dict,
                    extra: dict | None = None) -> Path:
    """Write ``model``'s weights with its vocabulary and configuration, atomically.

    Args:
        path: the ``.pt`` file.
        config: JSON-able run settings; ``config["model"]`` is set from the model
            (:func:`~mdlib.models.contract.generator_config`: its registry name and configuration).
        extra: JSON-able extras (learning curve, ...).

    Raises:
        MdlibError: when a weight is NaN/inf (a NaN checkpoint is never written).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise MdlibError(f"refusing to save {path}: parameter {k!r} is not finite")
    config = json.loads(_json(dict(config, model=generator_config(model))))
    extra = json.loads(_json(extra or {}))
    blob = {"format": FORMAT, "state_dict": state, "vocab": list(vocab.itos), "config": config, "extra": extra,
            "sha256": _digest(state, list(vocab.itos), config, extra)}
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


def _check_blob(path: Path, blob: dict) -> tuple[type, GeneratorConfig]:
    """Check a checkpoint's fields and sizes (nothing is allocated); return its generator class and configuration."""
    vocab, config, state, extra = (blob.get(k) for k in ("vocab", "config", "state_dict", "extra"))
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise MdlibError(f"{path}: vocab: expected a list of token strings, got {type(vocab).__name__}")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise MdlibError(f"{path}: config.model: expected an object (the model configuration)")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              and v.layout == torch.strided and v.is_floating_point()
                                              for k, v in state.items()):
        raise MdlibError(f"{path}: state_dict: expected a dict of parameter name -> floating-point tensor")
    if not isinstance(extra, dict):
        raise MdlibError(f"{path}: extra: expected an object, got {type(extra).__name__}")
    cls, mconf = parse_config(config["model"], f"{path}: config.model")
    if mconf.vocab_size != len(vocab):
        raise MdlibError(f"{path}: model vocab_size {mconf.vocab_size} != vocabulary size {len(vocab)}")
    digest = blob.get("sha256")
    if digest is not None and not isinstance(digest, str):
        raise MdlibError(f"{path}: sha256: expected a string, got {type(digest).__name__}")
    try:
        actual = _digest(state, vocab, config, extra) if digest is not None else None
    except (RecursionError, TypeError, ValueError):
        raise MdlibError(f"{path}: config or extra: not plain data (nested too deeply or mixed key types)") from None
    if digest != actual:
        raise MdlibError(f"{path}: damaged: its weights, vocabulary or configuration do not match the "
                         "SHA-256 recorded when it was saved")
    return cls, mconf


def load_checkpoint(path: str | Path, *, vocab: Vocab | None = None, config: dict | None = None,
                    device: torch.device | str | None = None) -> tuple[Generator, Vocab, dict, dict]:
    """Load a checkpoint (a ``.pt`` file or a run folder holding ``checkpoint.pt``).

    A checkpoint in a folder with a run manifest (``run.json``) is verified against it
    first (:func:`mdlib.runs.load_run`).

    Args:
        vocab: when given, the checkpoint's vocabulary must equal it.
        config: when given, every key of it must equal the checkpoint's value.
        device: where to put the model.

    Returns:
        ``(model, vocab, config, extra)``; the model is in eval mode.

    Raises:
        MdlibError: missing, foreign or damaged file, a field of the wrong type or out of
            the generator's limits, an unknown generator name, or a
            vocabulary/configuration/weight mismatch, naming what differs.
    """
    from mdlib import runs

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if (path.parent / runs.MANIFEST).exists():
        runs.load_run(path.parent)
    blob = read_torch(path, FORMAT, "checkpoint", "train one with `python -m mdlib train --out DIR`")
    cls, mconf = _check_blob(path, blob)
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
    with torch.device("meta"):  # shapes only: nothing is allocated before they match
        own = {k: tuple(v.shape) for k, v in cls(mconf).state_dict().items()}
    state = blob["state_dict"]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k}: expected {own[k]}, checkpoint has {tuple(state[k].shape)}"
              for k in own if k in state and own[k] != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise MdlibError(f"{path}: weights do not match the model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, shapes {shapes[:3]}")
    bad = next((k for k, v in state.items() if not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise MdlibError(f"{path}: parameter {bad!r} is not finite")
    model = cls(mconf)
    model.load_state_dict(state)
    model.eval()
    if device is not None:
        model.to(device)
    return model, ck_vocab, ck_config, blob.get("extra") or {}


def save_run(out: str | Path, model: Generator, vocab: Vocab, config: dict, curve: list[dict]) -> Path:
    """Write a run folder: ``vocab.json``, ``curve.json``, ``config.json``, then ``checkpoint.pt``.

    The checkpoint is written last, so its presence means the run is complete.
    """
    out = Path(out)
    vocab.save(out / "vocab.json")
    write_text(out / "curve.json", _json(curve))
    write_text(out / "config.json", _json(dict(config, model=generator_config(model))))
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


def cached(config: dict, seed: int, train_fn: Callable[[], tuple[Generator, Vocab, list[dict]]],
           cache_dir: str | Path | None = None, device=None) -> tuple[Generator, Vocab, dict, dict]:
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
