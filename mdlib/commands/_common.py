"""Argument helpers shared by the sub-command modules."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mdlib.errors import MdlibError

from mdlib.errors import lookup
from mdlib.runs import PROTOCOLS as _PROTOCOL_NAMES

#: The protocols of the generator experiments: ``domains`` (three source domains, three
#: targets; the default) and ``personas`` (many system personas, docs/personas.md).
PROTOCOLS = {name: name for name in _PROTOCOL_NAMES}


def check_protocol(name: str) -> str:
    """``name`` if it is a protocol; else a one-line MdlibError naming the known ones.

    (Checked in the command, not as an argparse ``choices``, so that a typo gives the
    CLI's one-line ``error: ...`` message.)
    """
    return lookup(PROTOCOLS, name, "protocol")


def number(flag: str, text, kind=int, low=None, high=None):
    """``--flag``'s value as ``kind`` (int: a whole number) within ``[low, high]``
    (``None`` stays ``None``, for flags whose default comes from elsewhere).

    Raises:
        MdlibError: one line naming the flag and what was expected.
    """
    if text is None:
        return None
    try:
        value = kind(text)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise MdlibError(f"--{flag}: expected {what}, got {text!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise MdlibError(f"--{flag}: expected a number {bounds}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (so ``--n 0`` is refused with a clear message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def output_file(text: str | Path, flag: str = "--out", suffix: str | None = None) -> Path:
    """Check an output file name before any work starts; return it as a Path.

    Refused: a name ending in a slash (``dir/`` names a folder, not a file), an existing
    folder, a path under an existing file, a name inside a run folder (whose files the run's
    manifest vouches for: see :mod:`mdlib.runs`), and another suffix than ``suffix``.

    Raises:
        MdlibError: ``--out X: ...`` in one line.
    """
    from mdlib.runs import run_folder_of

    raw = str(text)
    path = Path(raw)
    if raw.endswith(("/", os.sep)) or path.is_dir():
        raise MdlibError(f"{flag} {raw}: is a folder, expected a file name")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise MdlibError(f"{flag} {raw}: cannot write here ({parent} is a file, not a folder)")
    run = run_folder_of(path)
    if run is not None:
        raise MdlibError(f"{flag} {raw}: inside the run folder {run}; write results elsewhere "
                         "(a run holds only what train wrote)")
    if suffix is not None and path.suffix != suffix:
        raise MdlibError(f"{flag} {raw}: expected a {suffix} file name")
    return path


def check_task_names(flag: str, names: list[str] | None) -> None:
    """Refuse a repeated name in a list flag such as ``--sources bus bus``."""
    if not names:
        return
    seen = set()
    for name in names:
        if name in seen:
            raise MdlibError(f"{flag}: {name!r} is given twice")
        seen.add(name)
