"""Files: atomic writes (a temporary file in the same folder, then a rename), JSON reads and
reads of this package's own torch files.

A crash or a bad input never leaves a half-written corpus, checkpoint or result.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from mdlib.errors import MdlibError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Raises:
        MdlibError: when the folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise MdlibError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files; give the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike, missing: str = "no such file"):
    """Parse the JSON file ``path``; a missing or malformed file is a one-line :class:`MdlibError`.

    Args:
        missing: what the message says when the file does not exist (e.g. how to make it).
    """
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MdlibError(f"{path}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise MdlibError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def read_torch(path: str | os.PathLike, fmt: str, what: str, missing: str) -> dict:
    """Load a ``torch.save``-d dict of ``{"format": fmt, ...}`` with ``weights_only=True``.

    Args:
        fmt: the expected value of the blob's ``"format"`` key.
        what: what the file is, for messages ("checkpoint", "policy file").
        missing: how to make one, said when the file does not exist.

    Raises:
        MdlibError: one line naming the file: missing, unreadable, or another format.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise MdlibError(f"{path}: no such {what}; {missing}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise MdlibError(f"{path}: not an mdlib {what} ({type(exc).__name__})") from None
    found = blob.get("format") if isinstance(blob, dict) else None
    if found != fmt:
        raise MdlibError(f"{path}: not an mdlib {what} (expected format {fmt!r}, found {found!r})")
    return blob
