"""Every notebook follows the conventions of docs/CONTRIBUTING.md (Notebooks).

Parametrised over ``notebooks/*.ipynb``: file name, title cell with a run time, the one
``parameters`` cell (second, flat scalar assignments), PNG-only figures, committed and
error-free outputs, no ``../`` paths, and the seeding helper in the setup.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NAME_RE = re.compile(r"^(\d{2})_[a-z0-9]+(_[a-z0-9]+)*\.ipynb$")
RUN_TIME_RE = re.compile(r"run[ -]?time|runs? in|\d+\s*(s|sec|seconds|min|minutes)\b", re.IGNORECASE)
FORBIDDEN_MIME = ("image/svg+xml", "application/pdf")


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _is_scalar(node: ast.expr) -> bool:
    """A literal number, string, bool or None (a leading minus allowed): no logic."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None)))


def parameters_problems(source: str) -> list[str]:
    """What is wrong with a ``parameters`` cell: anything but ``name = <scalar literal>`` lines."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"does not parse: {exc}"]
    problems = []
    for stmt in tree.body:
        ok = (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
              and _is_scalar(stmt.value))
        ok = ok or (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and stmt.value is not None and _is_scalar(stmt.value))
        if not ok:
            problems.append(f"line {stmt.lineno}: {ast.unparse(stmt)[:60]!r} is not a flat scalar assignment")
    if not tree.body:
        problems.append("is empty")
    return problems


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


def test_numbers_contiguous_from_00():
    numbers = sorted(int(m.group(1)) for p in NOTEBOOKS if (m := NAME_RE.match(p.name)))
    assert numbers == list(range(len(numbers))), f"notebook numbers {numbers} are not 00, 01, ... without gaps or repeats"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
class TestNotebook:
    def test_file_name(self, path):
        assert NAME_RE.match(path.name), f"{path.name}: expected NN_snake_title.ipynb"

    def test_first_cell_title_and_run_time(self, path):
        first = _read(path).cells[0]
        assert first.cell_type == "markdown", f"{path.name}: the first cell must be markdown"
        assert first.source.lstrip().startswith("# "), f"{path.name}: the first cell must start with a '# ' title"
        assert RUN_TIME_RE.search(first.source), f"{path.name}: the first cell must state the run time"

    def test_one_parameters_cell_second_with_flat_scalars(self, path):
        nb = _read(path)
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
        assert tagged == [1], f"{path.name}: cells tagged 'parameters' at {tagged}; expected exactly the second cell"
        cell = nb.cells[1]
        assert cell.cell_type == "code", f"{path.name}: the parameters cell must be code"
        problems = parameters_problems(cell.source)
        assert not problems, f"{path.name}: parameters cell " + "; ".join(problems)

    def test_no_svg_or_pdf_outputs(self, path):
        for i, cell in enumerate(_code_cells(_read(path))):
            for out in cell.get("outputs", []):
                bad = [m for m in FORBIDDEN_MIME if m in out.get("data", {})]
                assert not bad, f"{path.name}: code cell {i} has {bad} output; figures must be PNG only"

    def test_executed_without_errors(self, path):
        for i, cell in enumerate(_code_cells(_read(path))):
            assert cell.execution_count is not None, f"{path.name}: code cell {i} was not executed (commit outputs)"
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, f"{path.name}: code cell {i} has an error output: {errors[0].get('ename')}"

    def test_no_parent_relative_paths(self, path):
        for i, cell in enumerate(_code_cells(_read(path))):
            assert "../" not in cell.source and "..\\" not in cell.source, (
                f"{path.name}: code cell {i} uses a '../' path; use mdlib.paths")

    def test_setup_calls_seed_everything(self, path):
        cells = _code_cells(_read(path))
        calls = [i for i, c in enumerate(cells) if re.search(r"\bseed_everything\s*\(", c.source)]
        assert calls, f"{path.name}: no code cell calls seed_everything(...)"
        assert calls[0] <= 2, f"{path.name}: seed_everything is first called in code cell {calls[0]}, not in the setup"


@pytest.mark.parametrize("source,ok", [
    ("seed = 0\nlr = 0.01\nname = 'clean'\nflag = True\nneg = -3", True),
    ("n: int = 5", True),
    ("x = [1, 2]", False),
    ("x = 2 * 3", False),
    ("import os", False),
    ("a = b = 1", False),
    ("x = f(1)", False),
    ("", False),
])
def test_parameters_checker(source, ok):
    assert (parameters_problems(source) == []) is ok
