"""Argument helpers shared by the sub-command modules."""

from __future__ import annotations

import argparse

from mdlib.errors import lookup

#: The protocols of the generator experiments: ``domains`` (three source domains, three
#: targets; the default) and ``personas`` (many system personas, docs/personas.md).
PROTOCOLS = {"domains": "domains", "personas": "personas"}


def check_protocol(name: str) -> str:
    """``name`` if it is a protocol; else a one-line MdlibError naming the known ones.

    (Checked in the command, not as an argparse ``choices``, so that a typo gives the
    CLI's one-line ``error: ...`` message.)
    """
    return lookup(PROTOCOLS, name, "protocol")


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
