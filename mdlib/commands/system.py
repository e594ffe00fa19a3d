"""Sub-commands ``reproduce`` (papermill over the notebooks) and ``chat`` (talk to the system)."""

from __future__ import annotations

import argparse

from mdlib.commands._common import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``reproduce`` and ``chat`` to the command line."""
    p = sub.add_parser(
        "reproduce",
        help="execute the notebooks with papermill under a profile (smoke, quick, paper)",
        description="Execute the notebooks with papermill and the parameters of "
        "notebooks/profiles/<profile>.yaml into results/<profile>/ (figures: the committed figures/ for "
        "--profile paper, results/<profile>/figures/ otherwise), "
        "collect every metric into results/<profile>/summary.json and print a summary table. "
        "A failing notebook is reported with its cell and does not stop the others.",
    )
    p.add_argument("--profile", default="quick", help="smoke, quick (the notebooks' defaults) or paper")
    p.add_argument("--only", nargs="+", metavar="NB", help="notebook numbers or names, e.g. --only 03 05")
    p.add_argument("--timeout", type=positive_int, default=None, help="seconds per cell (default: no limit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="notebooks run at once, one CPU thread each (default 1; 2 on a 2-core machine)")
    p.set_defaults(func=_reproduce)

    c = sub.add_parser(
        "chat",
        help="talk to the end-to-end dialogue system (reads user lines from stdin)",
        description="Parser + belief tracker + policy + generator behind one object. Reads one "
        "user line at a time from standard input (a terminal or a pipe) and prints one reply "
        "per line; ends at end of input. Type /reset to start a new dialogue.",
    )
    c.add_argument("--domain", default="movie", help="the domain to talk about (default: movie)")
    c.add_argument("--checkpoint", default=None,
                   help="a generator checkpoint (file or run folder) made by `python -m mdlib train` "
                   "(default: runs/generator; when that is missing the chat says so and uses templates)")
    c.add_argument("--templates", action="store_true",
                   help="use the template realiser (the corpus's reference phrasings) instead of a "
                   "trained generator (no checkpoint needed)")
    c.add_argument("--policy", default=None, metavar="FILE",
                   help="a dialogue policy file written by `python -m mdlib policy --out R.json` (R.policy.pt) "
                   "(default: the rule-based threshold policy)")
    c.add_argument("--seed", type=int, default=0, help="seed of the database and the decoder")
    c.add_argument("--show-acts", action="store_true", help="also print the parsed acts and system acts (to stderr)")
    c.set_defaults(func=_chat)


def _reproduce(args: argparse.Namespace) -> int:
    from mdlib.reproduce import main_reproduce

    return main_reproduce(args.profile, args.only, timeout=args.timeout, progress=not args.no_progress,
                          jobs=args.jobs)


def _chat(args: argparse.Namespace) -> int:
    from mdlib.system.chat import run_chat

    return run_chat(domain=args.domain, checkpoint=args.checkpoint, templates=args.templates,
                    seed=args.seed, show_acts=args.show_acts, policy=args.policy)
