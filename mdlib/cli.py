"""``python -m mdlib``: one entry point, one sub-command module per layer.

Each module in :data:`COMMAND_MODULES` has ``register(subparsers)``, which adds its
sub-commands with ``set_defaults(func=...)``; ``func(args)`` returns an exit code.
An :class:`~mdlib.errors.MdlibError` becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mdlib.errors import MdlibError

COMMAND_MODULES = [
    "mdlib.commands.train",
    "mdlib.commands.policy",
    "mdlib.commands.data",
    "mdlib.commands.system",
    "mdlib.commands.simulate",
    "mdlib.commands.bench",
    "mdlib.commands.exercises",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m mdlib",
        description="Meta-learning for generative dialogue systems: data, training, "
        "adaptation, dialogue policies and reproduction of the notebooks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status.

    The models here are small: one torch CPU thread is as fast as two and avoids
    oversubscription on a busy machine, so ``MDLIB_THREADS`` defaults to 1 (set it to
    use more; :func:`mdlib.seeding.seed_everything` reads it).

    Exit statuses: 0 done, 1 an ``error:`` line (bad input), 130 interrupted (Ctrl-C),
    128 + N killed by signal N (SIGTERM, SIGHUP: temporary files are removed first),
    141 the reader of the output went away (``... | head``; nothing more is printed).
    """
    from mdlib.atomic import Terminated, terminate_cleanly

    os.environ.setdefault("MDLIB_THREADS", "1")
    if hasattr(sys.stdout, "reconfigure"):  # text from a file (a lone surrogate ...) never fails to print
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with terminate_cleanly():
            return int(args.func(args) or 0)
    except MdlibError as exc:  # one line, even when the message quotes a name holding a newline
        print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
