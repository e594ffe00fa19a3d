"""Run folders you can trust: a manifest written last, verified on every load.

``python -m mdlib train --out RUN`` writes its files (``checkpoint.pt``, ``config.json``,
``curve.json``, ``vocab.json``, a meta-learner's ``learner.pt``, ...) and then, last,
``RUN/run.json``::

    {"format": "mdlib-run-v1", "method": "maml", "profile": "quick", "seed": 0,
     "protocol": "domains", "sources": [...], "targets": [...],
     "personas": null | {...PersonaSplits fields...},
     "model": {"generator": "gru", ...its configuration...},
     "corpus": {"path": "/abs/my.jsonl", "sha256": "..."} | null,
     "files": {"checkpoint.pt": "<sha256>", "learner.pt": "<sha256>", ...}}

``files`` holds the SHA-256 of every file in the folder when training ended (the
manifest itself and hidden temporary files excepted), so the manifest needs no list of
what a method writes. :func:`load_run` checks that every listed file is there with the
same bytes and that nothing else was added: a run killed before the manifest (no
``run.json``), a file from another run (a different hash, or an unlisted file) and a
damaged checkpoint each give one line naming the file. See ``docs/runs.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path, PurePosixPath

from mdlib.atomic import atomic_path, read_json, read_torch, reading, write_text
from mdlib.errors import MdlibError

FORMAT = "mdlib-run-v1"
MANIFEST = "run.json"
CHECKPOINT = "checkpoint.pt"
LEARNER = "learner.pt"
LEARNER_FORMAT = "mdlib-learner-v1"
#: How tasks are defined in a run: one task per domain or per the ``domain`` field of a
#: user corpus (``domains``, the default), or one task per system persona (``personas``,
#: docs/personas.md; the manifest then records the persona splits under ``"personas"``).
PROTOCOL = "domains"
PROTOCOLS = ("domains", "personas")
HOW_TO_TRAIN = "make one with `python -m mdlib train --out DIR`"


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (constant memory)."""
    digest = hashlib.sha256()
    with reading(path) as p, open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_files(folder: Path) -> list[str]:
    """Relative POSIX names of the files a manifest covers (all but itself and hidden temporaries)."""
    names = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and rel.as_posix() != MANIFEST and not any(part.startswith(".") for part in rel.parts):
            names.append(rel.as_posix())
    return names


def run_folder_of(path: str | Path) -> Path | None:
    """The run folder that ``path`` would be written into, or ``None``.

    A folder counts as a run when it holds ``run.json`` (any ancestor of ``path``) or a
    ``checkpoint.pt`` (the folder ``path`` goes into).
    """
    path = Path(path).absolute()
    if (path.parent / CHECKPOINT).is_file():
        return path.parent
    return next((p for p in path.parents if (p / MANIFEST).is_file()), None)


def check_out(out: str | Path) -> Path:
    """Check ``train --out`` (changes nothing): a new or existing folder, outside other runs.

    Raises:
        MdlibError: ``--out`` is a file, lies under a file or inside another run folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MdlibError(f"--out {out}: is a file, expected a run folder (a new or existing folder name)")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise MdlibError(f"--out {out}: cannot write here ({parent} is a file, not a folder)")
    outer = next((p for p in out.absolute().parents if (p / MANIFEST).is_file()), None)
    if outer is not None:
        raise MdlibError(f"--out {out}: inside the run folder {outer}; choose a folder outside it")
    return out


def begin(out: str | Path) -> Path:
    """Start writing a run into ``out``: :func:`check_out`, then remove an older run's manifest.

    With the manifest gone, a run killed before it ends leaves a folder that
    :func:`load_run` refuses, instead of a mix of new and old files that looks complete.
    A meta-learner's ``learner.pt`` is removed too (a method that writes none would
    otherwise inherit it).

    Raises:
        MdlibError: as :func:`check_out`, or the old manifest cannot be removed.
    """
    out = check_out(out)
    try:  # the folder itself is made by the first file written into it
        for name in (MANIFEST, LEARNER):
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise MdlibError(f"--out {out}: cannot write here ({exc.strerror or exc})") from None
    return out


def corpus_entry(corpus: str | Path | None) -> dict | None:
    """``{"path": absolute path, "sha256": ...}`` of a user corpus (``None`` for the protocol corpora)."""
    if corpus is None:
        return None
    return {"path": str(Path(corpus).absolute()), "sha256": sha256_file(corpus)}


def finish(out: str | Path, *, method: str, profile: str, seed: int, sources: list[str],
           targets: list[str], model: dict, corpus: dict | None, protocol: str = PROTOCOL,
           personas: dict | None = None) -> Path:
    """Write ``out/run.json`` (call it last, after every other file of the run).

    Args:
        model: the generator's registry name and configuration
            (:func:`mdlib.models.contract.generator_config`).
        corpus: :func:`corpus_entry` of the training corpus, taken before training.
        protocol: one of :data:`PROTOCOLS`; personas: the persona splits
            (``dataclasses.asdict`` of :class:`mdlib.data.personas.PersonaSplits`) of a
            ``personas`` run, else ``None``.

    Returns:
        The manifest's path.
    """
    out = Path(out)
    manifest = {"format": FORMAT, "method": method, "profile": profile, "seed": seed, "protocol": protocol,
                "personas": personas, "sources": list(sources), "targets": list(targets), "model": model,
                "corpus": corpus,
                "files": {name: sha256_file(out / name) for name in _run_files(out)}}
    return write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _safe_name(name) -> bool:
    """A manifest's file name: relative, no ``..``, no backslash (it cannot leave the folder)."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "." not in p.parts


def _is_sha(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def read_manifest(folder: str | Path) -> dict:
    """Read and check the shape of ``folder/run.json`` (without hashing the files).

    Raises:
        MdlibError: no such folder, no manifest (an unfinished run), or a malformed one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MdlibError(f"{folder}: no such run folder; {HOW_TO_TRAIN}")
    path = folder / MANIFEST
    if not path.exists():
        raise MdlibError(f"{folder}: no {MANIFEST}, so not a finished run (train was interrupted, or an older "
                         f"mdlib wrote it); train it again")
    man = read_json(path)
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        found = man.get("format") if isinstance(man, dict) else type(man).__name__
        raise MdlibError(f"{path}: not an mdlib run manifest (expected format {FORMAT!r}, found {found!r})")
    for key, kind in (("method", str), ("profile", str), ("seed", int), ("protocol", str),
                      ("sources", list), ("targets", list), ("model", dict), ("files", dict)):
        if not isinstance(man.get(key), kind) or isinstance(man.get(key), bool):
            raise MdlibError(f"{path}: field {key!r}: expected {kind.__name__}, got {man.get(key)!r:.60}")
    if man["protocol"] not in PROTOCOLS:
        raise MdlibError(f"{path}: field 'protocol': expected one of {', '.join(PROTOCOLS)}, "
                         f"got {man['protocol']!r:.40}")
    if (man["protocol"] == "personas") != isinstance(man.get("personas"), dict):
        raise MdlibError(f"{path}: field 'personas': expected the persona splits with protocol personas, "
                         "else null")
    if not all(isinstance(s, str) for s in man["sources"] + man["targets"]):
        raise MdlibError(f"{path}: fields 'sources' and 'targets': expected lists of task names")
    corpus = man.get("corpus")
    if corpus is not None and not (isinstance(corpus, dict) and isinstance(corpus.get("path"), str)
                                   and _is_sha(corpus.get("sha256"))):
        raise MdlibError(f"{path}: field 'corpus': expected null or {{\"path\": str, \"sha256\": hex}}")
    for name, digest in man["files"].items():
        if not _safe_name(name):
            raise MdlibError(f"{path}: field 'files': {name!r} is not a file name inside the run folder")
        if not _is_sha(digest):
            raise MdlibError(f"{path}: field 'files' entry {name!r}: expected a SHA-256 (64 hex digits), got {digest!r:.70}")
    return man


def load_run(folder: str | Path) -> dict:
    """Verify a run folder against its manifest and return the manifest.

    Raises:
        MdlibError: one line naming every problem: a listed file missing, a file whose
            bytes changed since training (corrupted, or replaced by another run's), or a
            file the run did not write.
    """
    folder = Path(folder)
    man = read_manifest(folder)
    problems = []
    for name, digest in man["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} changed since training (corrupted, or another run's file)")
    problems += [f"{name} was not written by this run" for name in _run_files(folder) if name not in man["files"]]
    if CHECKPOINT not in man["files"]:
        problems.append(f"{CHECKPOINT} is not part of the run")
    if problems:
        raise MdlibError(f"{folder}: does not match its {MANIFEST}: " + "; ".join(problems))
    return man


def check_corpus(man: dict, folder: Path) -> Path | None:
    """The run's training corpus, checked against the SHA-256 in its manifest (``None``: protocol corpora).

    Raises:
        MdlibError: the corpus is gone or changed since training (its splits would differ).
    """
    entry = man.get("corpus")
    if entry is None:
        return None
    path = Path(entry["path"])
    if not path.is_file():
        raise MdlibError(f"{folder}: trained on {path}, which is gone; pass --corpus FILE (the same corpus)")
    if sha256_file(path) != entry["sha256"]:
        raise MdlibError(f"{folder}: trained on {path}, which changed since (SHA-256 differs); "
                         "its splits would differ too: restore it, or pass --corpus FILE to override")
    return path


# ------------------------------------------------------------------ learner state
def save_learner(out: str | Path, state: dict) -> Path:
    """Write a meta-learner's :meth:`~mdlib.meta.learners.MetaLearner.state_dict` to ``out/learner.pt``."""
    import torch

    path = Path(out) / LEARNER
    with atomic_path(path) as tmp:
        torch.save(dict(state, format=LEARNER_FORMAT), tmp)
    return path


def load_learner(folder: str | Path, method: str) -> dict:
    """Read ``folder/learner.pt`` and check that it fits ``method`` before anything uses it.

    Returns:
        The state (``method, inner_steps, inner_lr, first_order, trainable, meta_parameters``).

    Raises:
        MdlibError: missing, foreign, of another method, or with fields out of range.
    """
    import torch

    path = Path(folder) / LEARNER
    state = read_torch(path, LEARNER_FORMAT, "learner state", f"method {method!r} writes one next to its checkpoint")
    if state.get("method") != method:
        raise MdlibError(f"{path}: made by method {state.get('method')!r:.40}, but the run's method is {method!r}")
    steps, lr = state.get("inner_steps"), state.get("inner_lr")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 10_000:
        raise MdlibError(f"{path}: inner_steps: expected a whole number in [0, 10000], got {steps!r:.40}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
        raise MdlibError(f"{path}: inner_lr: expected a finite number, got {lr!r:.40}")
    trainable = state.get("trainable")
    if trainable is not None and not (isinstance(trainable, list) and all(isinstance(t, str) for t in trainable)):
        raise MdlibError(f"{path}: trainable: expected null or a list of parameter names")
    meta = state.get("meta_parameters", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             and v.is_floating_point() for k, v in meta.items()):
        raise MdlibError(f"{path}: meta_parameters: expected a dict of floating-point tensors")
    return state
