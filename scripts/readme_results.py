"""Write the README's results table from the committed run's ``summary.json``.

    .venv/bin/python scripts/readme_results.py [--summary results/paper/summary.json] [--check]

Without ``--summary`` it takes ``results/paper/summary.json``, or ``results/quick/summary.json``
while no paper run is committed (:func:`mdlib.reproduce.committed_summary_path`).

The table goes between the markers ``<!-- results:start -->`` and ``<!-- results:end -->``
of README.md; the rendering is :func:`mdlib.reproduce.render_results_table`. With
``--check`` nothing is written and the exit status is 1 when the README is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mdlib.errors import MdlibError
from mdlib.paths import ROOT
from mdlib.reproduce import committed_summary_path, load_summary, readme_with_results, update_readme


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=committed_summary_path() or ROOT / "results" / "paper" / "summary.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="only check that the README is up to date")
    args = parser.parse_args()
    try:
        summary = load_summary(args.summary)
        if args.check:
            text = args.readme.read_text(encoding="utf-8")
            if readme_with_results(text, summary, args.readme) != text:
                print(f"{args.readme}: results table out of date; run scripts/readme_results.py", file=sys.stderr)
                return 1
            print(f"{args.readme}: results table up to date")
            return 0
        changed = update_readme(args.readme, summary)
    except MdlibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.readme}: {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
