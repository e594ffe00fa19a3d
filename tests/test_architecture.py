"""The layers of mdlib (docs/architecture.md): each package imports only the ones before it.

``data -> models (and training, checkpoint) -> meta -> dm, evaluation -> system ->
experiments, exercises, benchmark -> commands, reproduce -> cli``. The leaves (errors,
paths, seeding, atomic, stats, report, plotting, metrics, runs, profiles) may be imported
by anyone and import only each other and ``data``. Imports inside functions count too: a
lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mdlib"

RANK: dict[str, int] = {
    "data": 0,
    "models": 1, "training": 1, "checkpoint": 1,
    "meta": 2,
    "dm": 3, "evaluation": 3,
    "system": 4,  # the system holds a manager: it may import dm, not the reverse
    "experiments": 5, "exercises": 5, "benchmark": 5,
    "commands": 6, "reproduce": 6,
    "cli": 7, "__main__": 7, "__init__": 7,
}
LEAVES = {"errors", "paths", "seeding", "atomic", "stats", "report", "plotting", "metrics", "runs",
          "profiles"}


def imported(source: str) -> set[str]:
    """The mdlib top-level parts (``data``, ``dm``, ...) that ``source`` imports anywhere."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mdlib":
                out.update(a.name for a in node.names)
            elif node.module.startswith("mdlib."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mdlib."))
    return out


def part_of(path: Path) -> str:
    """``mdlib/data/x.py`` -> ``data``; ``mdlib/cli.py`` -> ``cli``."""
    return path.relative_to(ROOT).with_suffix("").parts[0]


def upward(part: str, targets: set[str]) -> list[str]:
    """The imports of ``targets`` by ``part`` that go up (or leave the known layers)."""
    bad = []
    for t in sorted(targets - {part}):
        if t in LEAVES:
            continue
        if part in LEAVES:
            ok = t == "data"
        else:
            ok = t in RANK and RANK[t] <= RANK[part]
        if not ok:
            bad.append(t)
    return bad


def test_no_module_imports_a_higher_layer():
    problems = []
    for f in sorted(ROOT.rglob("*.py")):
        part = part_of(f)
        assert part in RANK or part in LEAVES, f"{f}: {part!r} is in no layer; add it to RANK or LEAVES"
        for t in upward(part, imported(f.read_text())):
            problems.append(f"{f.relative_to(ROOT.parent)} imports mdlib.{t}")
    assert not problems, "upward imports:\n" + "\n".join(problems)


@pytest.mark.parametrize("part, code", [
    ("data", "from mdlib.dm.threshold import ThresholdPolicy"),
    ("data", "def f():\n    import mdlib.system.pipeline\n"),
    ("models", "from mdlib.meta import inner"),
    ("meta", "from mdlib import dm"),
    ("dm", "from mdlib.system.pipeline import simulate"),
    ("metrics", "from mdlib.models import batching"),
])
def test_the_checker_catches_an_upward_import(part, code):
    assert upward(part, imported(code))


def test_the_checker_allows_downward_and_leaf_imports():
    assert not upward("dm", imported("from mdlib.data.acts import Act\nfrom mdlib.meta import inner\n"
                                     "from mdlib import stats"))
    assert not upward("system", imported("from mdlib.dm.threshold import ThresholdPolicy"))
