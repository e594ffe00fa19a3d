"""``python -m mdlib exercises``: write the student versions of the notebooks (docs/course.md).

Example::

    python -m mdlib exercises --out student/

Every notebook in ``notebooks/`` with solution blocks (``# BEGIN SOLUTION <id>: <title>``
... ``# END SOLUTION``) is written to ``--out`` with each block replaced by a
``raise NotImplementedError("Exercise <id>: ...")`` line and the outputs from the first
exercise on cleared (:mod:`mdlib.exercises.markers`).
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    """Add ``exercises`` to the CLI."""
    p = subparsers.add_parser("exercises", help="write the student notebooks (solution blocks replaced by stubs)",
                              description="Write the student version of every notebook that has fill-in "
                                          "exercises: solution blocks become NotImplementedError stubs.")
    p.add_argument("--out", type=Path, required=True, help="folder to write the student notebooks into "
                                                           "(not notebooks/)")
    p.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK",
                   help="solution notebooks to convert (default: every notebook in notebooks/)")
    p.set_defaults(func=cmd_exercises)


def cmd_exercises(args) -> int:
    from mdlib.exercises.markers import student_notebooks

    made = student_notebooks(args.out, args.notebooks or None)
    for path, blocks in made:
        print(f"wrote {path}: exercise{'s' if len(blocks) > 1 else ''} "
              + ", ".join(f"{b.id} ({b.title})" for b in blocks))
    if not made:
        print("no notebook has solution blocks; nothing written")
    return 0
