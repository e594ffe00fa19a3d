"""Write the table of reading and run times into docs/course.md (between its markers).

    .venv/bin/python scripts/course_times.py [--summary results/quick/summary.json]

Reading time: the notebook's markdown words at :data:`WORDS_PER_MINUTE` plus its code
lines at :data:`CODE_LINES_PER_MINUTE` (rates for careful reading of technical text, the
only assumption here). Run time: each notebook's wall-clock in the summary that
``python -m mdlib reproduce --profile quick`` wrote (the notebooks' default parameters),
with the machine it ran on. Re-run this script after ``reproduce`` to refresh the table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
WORDS_PER_MINUTE = 120
CODE_LINES_PER_MINUTE = 10
START, END = "<!-- times:start -->", "<!-- times:end -->"


def reading_minutes(path: Path) -> tuple[int, int, float]:
    """``(prose words, code lines, minutes)`` of one notebook."""
    nb = nbformat.read(path, as_version=4)
    words = sum(len(re.findall(r"\w+", c.source)) for c in nb.cells if c.cell_type == "markdown")
    lines = sum(sum(1 for line in c.source.splitlines() if line.strip()) for c in nb.cells if c.cell_type == "code")
    return words, lines, words / WORDS_PER_MINUTE + lines / CODE_LINES_PER_MINUTE


def changed_after(path: Path, finished: str | None) -> bool:
    """Whether git's last commit of ``path`` is later than ``finished`` (the summary's ISO time).

    False when either time is unknown (no git, an untracked file, no time in the summary).
    """
    import subprocess
    from datetime import datetime

    if not finished:
        return False
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cI", "--", path.name], cwd=path.parent,
                             capture_output=True, text=True, check=True).stdout.strip()
        return bool(out) and datetime.fromisoformat(out) > datetime.strptime(finished, "%Y-%m-%dT%H:%M:%S%z")
    except (OSError, subprocess.CalledProcessError, ValueError):
        return False


def render(notebooks: list[Path], summary: dict) -> str:
    runs = summary.get("notebooks", {})
    machine = summary.get("machine", {})
    rows = ["| notebook | prose words | code lines | time to read | time to run (defaults) |", "|---|---|---|---|---|"]
    for path in notebooks:
        words, lines, minutes = reading_minutes(path)
        wall = runs.get(path.stem, {}).get("wall_s")
        run = "not in the summary" if wall is None else (f"{wall:.0f} s" if wall < 120 else f"{wall / 60:.1f} min")
        if wall is not None and changed_after(path, summary.get("finished")):
            run += " (measured before the notebook's last change)"
        rows.append(f"| `{path.stem}` | {words} | {lines} | {minutes:.0f} min | {run} |")
    rows.append("")
    jobs = summary.get("jobs", "?")
    at_once = "one notebook at a time" if jobs == 1 else f"{jobs} notebooks at a time"
    rows.append(f"Reading at {WORDS_PER_MINUTE} words and {CODE_LINES_PER_MINUTE} code lines a minute; run times from "
                f"`python -m mdlib reproduce --profile quick` (finished {summary.get('finished', '?')}, "
                f"{at_once} on {machine.get('cpu_count', '?')} CPU cores, "
                f"device `{machine.get('device', '?')}`). Written by `scripts/course_times.py`.")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=ROOT / "results" / "quick" / "summary.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "course.md")
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text(encoding="utf-8"))
    table = render(sorted((ROOT / "notebooks").glob("*.ipynb")), summary)
    text = args.doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"{args.doc}: no {START} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    args.doc.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
