"""Files: atomic writes (a temporary file in the same folder, then a rename), reads that
fail in one line, JSON reads and reads of this package's own torch files.

A crash or a bad input never leaves a half-written corpus, checkpoint or result: the
temporary file is removed on any exception, and :func:`terminate_cleanly` turns SIGTERM
and SIGHUP into an exception so that a killed command removes its temporary files too
(only SIGKILL, which no process can catch, leaves one behind). A replaced file keeps
its permission bits (a 0600 file stays 0600).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Iterator

from mdlib.errors import MdlibError

#: The deepest nesting of lists and objects accepted in a JSON value. Python's parser
#: recurses once per level and fails near 1000 levels with a RecursionError; no file of
#: this package comes close to this bound.
MAX_JSON_DEPTH = 100


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The new file gets the mode of the file it replaces, or the umask's default mode.

    Raises:
        MdlibError: when the folder cannot be created or written, or ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise MdlibError(f"{path}: is a folder, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise MdlibError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: keep the old file's mode, else the umask's
            try:
                mode = path.stat().st_mode & 0o7777
            except OSError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.chmod(tmp_path, mode)
        try:
            os.replace(tmp_path, path)
        except OSError as exc:
            raise MdlibError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM/SIGHUP (see :func:`terminate_cleanly`).

    A ``BaseException`` like ``KeyboardInterrupt``, so ``except Exception`` blocks do not
    swallow it while ``finally`` blocks (the temporary-file cleanup) still run.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` (the CLI wraps every command).

    The previous handlers come back afterwards. Outside the main thread (where Python
    cannot set handlers) this does nothing.
    """
    import threading

    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {n: signal.signal(getattr(signal, n), _raise_terminated) for n in names}
    try:
        yield
    finally:
        for n, handler in old.items():
            signal.signal(getattr(signal, n), handler)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "file", missing: str | None = None) -> Iterator[Path]:
    """Turn any failure to read ``path`` inside the block into a one-line :class:`MdlibError`.

    Args:
        what: what the file should be, for messages ("JSON Lines corpus", "checkpoint").
        missing: the message for a missing file (default ``no such file``).

    Example::

        with reading(path, "corpus") as p:
            data = p.read_bytes()
    """
    path = Path(path)
    try:
        yield path
    except FileNotFoundError:
        raise MdlibError(f"{path}: {missing or 'no such file'}") from None
    except IsADirectoryError:
        raise MdlibError(f"{path}: is a folder, expected a {what}") from None
    except PermissionError:
        raise MdlibError(f"{path}: permission denied (cannot read this {what})") from None
    except UnicodeDecodeError as exc:
        raise MdlibError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:  # EIO from /proc/self/mem, a fifo gone away, a disk error ...
        raise MdlibError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _depth(value) -> int:
    """Nesting depth of lists and dicts (iterative, so it cannot overflow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, d)
        stack.extend((v, d + 1) for v in item if isinstance(v, (dict, list)))
    return deepest


def parse_json(text: str, where: str, multiline: bool = True, check_depth: bool = True):
    """``json.loads(text)``, or a one-line :class:`MdlibError` starting with ``where``.

    Args:
        where: ``FILE``, or ``FILE:LINE`` for one line of a JSON Lines file.
        multiline: ``text`` is a whole file: a syntax error names its line (``FILE:LINE``).
        check_depth: refuse values nested deeper than :data:`MAX_JSON_DEPTH` (they parse,
            but writing or walking them again can exhaust Python's stack).
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        line = f":{exc.lineno}" if multiline else ""
        raise MdlibError(f"{where}{line}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise MdlibError(f"{where}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    if check_depth and isinstance(value, (list, dict)) and _depth(value) > MAX_JSON_DEPTH:
        raise MdlibError(f"{where}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def read_json(path: str | os.PathLike, missing: str = "no such file"):
    """Parse the JSON file ``path``; a missing, unreadable or malformed file is a one-line
    :class:`MdlibError`.

    Args:
        missing: what the message says when the file does not exist (e.g. how to make it).
    """
    with reading(path, "JSON file", missing) as p:
        text = p.read_text(encoding="utf-8")
    return parse_json(text, str(path))


def read_torch(path: str | os.PathLike, fmt: str, what: str, missing: str) -> dict:
    """Load a ``torch.save``-d dict of ``{"format": fmt, ...}`` with ``weights_only=True``.

    The package's one reader of torch files (checkpoints, learner states, policy files):
    ``weights_only`` means no code in the file can run.

    Args:
        fmt: the expected value of the blob's ``"format"`` key.
        what: what the file is, for messages ("checkpoint", "policy file").
        missing: how to make one, said when the file does not exist.

    Raises:
        MdlibError: one line naming the file: missing, unreadable, or another format.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise MdlibError(f"{path}: no such {what}; {missing}")
    with reading(path, what) as p:
        data = p.read_bytes()
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise MdlibError(f"{path}: not an mdlib {what} (unreadable or damaged torch file)") from None
    found = blob.get("format") if isinstance(blob, dict) else None
    if not isinstance(found, str) or found != fmt:
        raise MdlibError(f"{path}: not an mdlib {what} (expected format {fmt!r}, found {found!r})")
    return blob
