"""Solution blocks in the notebooks, and the student versions made by removing them.

The notebooks in ``notebooks/`` are the *solution* notebooks. A fill-in exercise is a
block of lines in a code cell between two marker comments::

    def maml_objective(model, xs, ys, xq, yq, lr, steps=1):
        # BEGIN SOLUTION 0.1: the bilevel objective
        ...                                  # the solution's lines
        # END SOLUTION

The student version (:func:`student_version`, ``python -m mdlib exercises --out DIR``)
replaces every block by one line at the BEGIN line's indentation::

        raise NotImplementedError("Exercise 0.1: the bilevel objective (write your code here)")

keeps every other line and cell, and clears the outputs of the cells from the first
exercise on (they showed the solution's results). Ids are ``<notebook>.<n>`` (``0.1``,
``3.2``) and unique within a notebook; a block lies inside one cell. The check that a
student runs on the filled-in function is in :mod:`mdlib.exercises` (docs/course.md).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mdlib.errors import MdlibError

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION (?P<id>\d+\.\d+): (?P<title>\S.*?)\s*$")
END_RE = re.compile(r"^[ \t]*# END SOLUTION\s*$")
#: Any line that mentions a marker; a mention that is not a well-formed marker is an error
#: (a typo must not leave solution code in a student notebook).
MENTION_RE = re.compile(r"#\s*(BEGIN|END)\s+SOLUTION\b")

__all__ = ["Block", "solution_blocks", "student_version", "stub_line", "student_notebooks"]


@dataclass(frozen=True)
class Block:
    """One solution block: its exercise id and title, and where it is (cell and lines 1-based)."""

    id: str
    title: str
    cell: int
    begin_line: int
    end_line: int
    indent: str


def stub_line(block: Block) -> str:
    """The line that replaces ``block`` in the student version."""
    message = f"Exercise {block.id}: {block.title} (write your code here)"
    return f"{block.indent}raise NotImplementedError({json.dumps(message)})"


def _cell_blocks(source: str, cell: int, where: str) -> list[Block]:
    blocks, open_ = [], None
    for n, line in enumerate(source.splitlines(), start=1):
        at = f"{where}: cell {cell}, line {n}"
        if not MENTION_RE.search(line):
            continue
        begin, end = BEGIN_RE.match(line), END_RE.match(line)
        if begin:
            if open_ is not None:
                raise MdlibError(f"{at}: BEGIN SOLUTION {begin['id']} inside the block {open_[0]['id']} "
                                 f"opened on line {open_[1]}; blocks cannot nest")
            open_ = (begin, n)
        elif end:
            if open_ is None:
                raise MdlibError(f"{at}: END SOLUTION without a BEGIN SOLUTION before it in this cell")
            begin0, line0 = open_
            blocks.append(Block(begin0["id"], begin0["title"], cell, line0, n, begin0["indent"]))
            open_ = None
        else:
            raise MdlibError(f"{at}: malformed marker {line.strip()!r}; expected '# BEGIN SOLUTION <id>: "
                             "<title>' (id like 3.1) or '# END SOLUTION'")
    if open_ is not None:
        raise MdlibError(f"{where}: cell {cell}, line {open_[1]}: BEGIN SOLUTION {open_[0]['id']} is never closed "
                         "(no '# END SOLUTION' later in the cell)")
    return blocks


def solution_blocks(nb, where: str = "notebook") -> list[Block]:
    """Every solution block of notebook ``nb`` (an nbformat notebook), in order.

    Args:
        where: the notebook's name, for error messages.

    Raises:
        MdlibError: one line naming the notebook, the cell (1-based) and the line: an
            unclosed block, a nested one, an END without BEGIN, a malformed marker line,
            or an id used twice.
    """
    blocks: list[Block] = []
    seen: dict[str, Block] = {}
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        for block in _cell_blocks(cell.source, i, where):
            if block.id in seen:
                first = seen[block.id]
                raise MdlibError(f"{where}: cell {i}, line {block.begin_line}: exercise id {block.id} is used twice "
                                 f"(first in cell {first.cell}, line {first.begin_line})")
            seen[block.id] = block
            blocks.append(block)
    return blocks


def student_version(nb, where: str = "notebook"):
    """A copy of ``nb`` with every solution block replaced by its stub (see the module docstring).

    The title cell gets a note saying which exercises to fill in; outputs of the cells from
    the first exercise on are cleared. A notebook without blocks comes back unchanged.

    Returns:
        ``(student_nb, blocks)``.
    """
    blocks = solution_blocks(nb, where)
    out = copy.deepcopy(nb)
    if not blocks:
        return out, blocks
    by_cell: dict[int, list[Block]] = {}
    for b in blocks:
        by_cell.setdefault(b.cell, []).append(b)
    for i, cell in enumerate(out.cells, start=1):
        if i in by_cell:
            lines = cell.source.splitlines()
            for b in reversed(by_cell[i]):  # from the bottom, so earlier line numbers stay right
                lines[b.begin_line - 1: b.end_line] = [stub_line(b)]
            cell.source = "\n".join(lines)
        if i >= blocks[0].cell and cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    ids = ", ".join(b.id for b in blocks)
    first = out.cells[0]
    if first.cell_type == "markdown":
        first.source += (f"\n\n> **Student version** (made by `python -m mdlib exercises`): fill in exercise"
                         f"{'s' if len(blocks) > 1 else ''} {ids} where a cell raises `NotImplementedError`, then "
                         "run the check cell after it.")
    return out, blocks


def student_notebooks(out_dir: str | Path,
                      notebooks: Iterable[str | Path] | None = None) -> list[tuple[Path, list[Block]]]:
    """Write the student version of every notebook that has solution blocks into ``out_dir``.

    Args:
        out_dir: the folder to write into (created); never ``notebooks/`` or a folder in it,
            where the student versions would replace or sit beside the solutions.
        notebooks: the solution notebooks (default: every ``notebooks/*.ipynb``).

    Returns:
        ``[(written path, blocks)]`` for each notebook written (those without blocks are skipped).

    Raises:
        MdlibError: ``out_dir`` inside ``notebooks/`` or a file, a notebook that cannot be
            read, or a malformed marker (see :func:`solution_blocks`).
    """
    import nbformat

    from mdlib.atomic import reading, write_text
    from mdlib.paths import NOTEBOOKS_DIR

    out = Path(out_dir)
    resolved, source_dir = out.resolve(), NOTEBOOKS_DIR.resolve()
    if resolved == source_dir or source_dir in resolved.parents:
        raise MdlibError(f"--out {out_dir}: is the solution notebooks' folder {NOTEBOOKS_DIR} or inside it; "
                         "write the student versions elsewhere")
    if out.exists() and not out.is_dir():
        raise MdlibError(f"--out {out_dir}: is a file, expected a folder")
    paths = sorted(NOTEBOOKS_DIR.glob("*.ipynb")) if notebooks is None else [Path(p) for p in notebooks]
    made = []
    for path in paths:
        with reading(path, "notebook") as p:
            try:
                nb = nbformat.read(p, as_version=4)
            except OSError:  # missing, a folder, unreadable: reading() says which
                raise
            except Exception as exc:  # nbformat raises several types for a broken file
                raise MdlibError(f"{path}: not a readable notebook ({type(exc).__name__})") from None
        student, blocks = student_version(nb, path.name)
        if not blocks:
            continue
        target = out / path.name
        write_text(target, nbformat.writes(student))
        made.append((target, blocks))
    return made
