"""One-command reproduction: execute the notebooks with papermill under a named profile.

    python -m mdlib reproduce --profile {smoke,quick,paper} [--only 03 05]

A *profile* is ``notebooks/profiles/<profile>.yaml``: a mapping from a notebook's name
(``03_maml_and_reptile``) to the papermill parameters that override the notebook's own
``parameters`` cell. A notebook the file does not name runs with its defaults (which
*are* the ``quick`` profile). Each notebook runs in a fresh ``python3`` kernel with the
working folder ``notebooks/`` and with ``MDLIB_RESULTS_DIR=results/<profile>`` and
``MDLIB_FIGURES_DIR`` (see :mod:`mdlib.paths`), so its metrics land in
``results/<profile>/`` and its figures in ``figures/`` for the ``paper`` profile (the
committed figures) or ``results/<profile>/figures/`` for the others; the executed copy
of the notebook is saved next to the metrics. Kernels get ``MDLIB_THREADS=1`` unless it
is set, and ``MDLIB_WORKERS`` (processes for a notebook's independent seeds,
:mod:`mdlib.experiments.parallel`) = the cores divided by jobs times threads, unless set.

Every metric JSON the run wrote is collected, with the wall-clock time per notebook and
in total and a description of the machine, into ``results/<profile>/summary.json``. A
notebook that fails is reported with its name and the failing cell and does not stop the
others; the command then exits with status 1.

:func:`render_results_table` turns a ``summary.json`` into the Markdown table of the
README (``scripts/readme_results.py`` writes it between the markers
``<!-- results:start -->`` and ``<!-- results:end -->``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from mdlib import paths
from mdlib.errors import MdlibError
from mdlib.report import save_json

PROFILES = ("smoke", "quick", "paper")
#: Profiles whose summary the README may show, best first: the committed run of the first
#: one that exists (``results/<profile>/summary.json``) is the README's results table.
README_PROFILES = ("paper", "quick")


def committed_summary_path(root: Path | None = None) -> Path | None:
    """``results/<profile>/summary.json`` of the best committed run (see README_PROFILES), or None."""
    base = Path(root or paths.ROOT) / "results"
    for profile in README_PROFILES:
        if (base / profile / "summary.json").is_file():
            return base / profile / "summary.json"
    return None
SUMMARY_NAME = "summary.json"
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
_NOTEBOOK_RE = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")


# --------------------------------------------------------------------------- profiles


def list_notebooks(notebooks_dir: Path | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of ``notebooks_dir``, in order."""
    folder = Path(notebooks_dir or paths.NOTEBOOKS_DIR)
    return sorted(p for p in folder.glob("*.ipynb") if _NOTEBOOK_RE.match(p.name))


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks named by ``only`` (``"03"``, ``"03_maml_and_reptile"`` or the file name).

    Raises:
        MdlibError: a name that matches no notebook (the message lists the known ones).
    """
    if not only:
        return list(notebooks)
    chosen: list[Path] = []
    for name in only:
        key = name.strip().removesuffix(".ipynb")
        hits = [p for p in notebooks if p.stem == key or p.stem.split("_", 1)[0] == key]
        if not hits:
            known = ", ".join(p.stem for p in notebooks) or "none"
            raise MdlibError(f"--only: no notebook named {name!r}; known notebooks: {known}")
        chosen.extend(h for h in hits if h not in chosen)
    return sorted(chosen)


def available_profiles(notebooks_dir: Path | None = None) -> list[str]:
    """The profile names that have a YAML file in ``notebooks/profiles/``."""
    folder = Path(notebooks_dir or paths.NOTEBOOKS_DIR) / "profiles"
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_profile(profile: str, notebooks: Sequence[Path], notebooks_dir: Path | None = None) -> dict[str, dict]:
    """Read ``notebooks/profiles/<profile>.yaml`` and check it against the notebooks.

    Args:
        profile: the profile name (``smoke``, ``quick``, ``paper``).
        notebooks: the notebooks that exist (a key naming another one is an error).
        notebooks_dir: the notebooks folder (default :data:`mdlib.paths.NOTEBOOKS_DIR`).

    Returns:
        ``notebook stem -> {parameter: value}``; every existing notebook has an entry
        (empty: run with the notebook's defaults).

    Raises:
        MdlibError: unknown profile, malformed YAML, a key naming no notebook, a
            non-scalar value, or a parameter the notebook's ``parameters`` cell does not
            define (each message names the file and the key).
    """
    import yaml

    folder = Path(notebooks_dir or paths.NOTEBOOKS_DIR) / "profiles"
    path = folder / f"{profile}.yaml"
    # Only a listed name: "../x" would read another YAML and write outside results/.
    if not path.is_file() or profile not in available_profiles(notebooks_dir):
        known = ", ".join(available_profiles(notebooks_dir)) or "none"
        raise MdlibError(f"unknown profile {profile!r} (no {path}); known profiles: {known}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MdlibError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise MdlibError(f"{path}: expected a mapping notebook name -> parameters, got {type(data).__name__}")
    by_stem = {p.stem: p for p in notebooks}
    by_number = {p.stem.split("_", 1)[0]: p for p in notebooks}
    out: dict[str, dict] = {p.stem: {} for p in notebooks}
    for key, params in data.items():
        nb = by_stem.get(str(key)) or by_number.get(str(key))
        if nb is None:
            raise MdlibError(f"{path}: {key!r} names no notebook; known: {', '.join(by_stem) or 'none'}")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise MdlibError(f"{path}: {key}: expected a mapping parameter -> value")
        declared = notebook_parameters(nb)
        for name, value in params.items():
            if not isinstance(value, (int, float, str, bool)) or value is None:
                raise MdlibError(f"{path}: {key}.{name}: expected a scalar (number, string, bool), "
                                 f"got {type(value).__name__}")
            if declared is not None and name not in declared:
                raise MdlibError(f"{path}: {key}.{name}: the notebook's parameters cell defines no "
                                 f"such name; it has: {', '.join(sorted(declared)) or 'none'}")
        out[nb.stem] = dict(params)
    return out


def notebook_parameters(path: Path) -> set[str] | None:
    """Names assigned in the notebook's cell tagged ``parameters`` (``None`` when it has none)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            names = set()
            for line in cell.source.splitlines():
                m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]*)?=", line)
                if m:
                    names.add(m.group(1))
            return names
    return None


# --------------------------------------------------------------------------- running


@dataclass
class NotebookRun:
    """What happened to one notebook in a reproduction run."""

    name: str
    status: str = "pending"             # "ok" | "failed"
    wall_s: float = 0.0
    parameters: dict = field(default_factory=dict)
    metrics_files: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    error: dict | None = None           # {"cell", "exec_count", "ename", "evalue", "source"}

    def describe_error(self) -> str:
        """One line: ``<notebook>: cell <i> (In [<n>]): <Error>: <message>``."""
        if not self.error:
            return ""
        e = self.error
        where = f"cell {e['cell']}" if e.get("cell") is not None else "before the first cell"
        if e.get("exec_count") is not None:
            where += f" (In [{e['exec_count']}])"
        first = (e.get("source") or "").strip().splitlines()
        src = f" `{first[0][:60]}`" if first else ""
        return f"{self.name}: failed at {where}{src}: {e.get('ename')}: {e.get('evalue')}"


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _snapshot(folder: Path, pattern: str) -> dict[str, float]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob(pattern) if p.is_file()}


def _changed(before: dict[str, float], after: dict[str, float]) -> list[str]:
    return sorted(k for k, t in after.items() if before.get(k) != t)


def _source_cell_index(source_nb: Path, err_source: str, fallback: int | None) -> int | None:
    """Index (0-based, among all cells) of the failing cell in the *source* notebook."""
    import nbformat

    try:
        nb = nbformat.read(source_nb, as_version=4)
    except Exception:  # noqa: BLE001 - best effort, the fallback is still informative
        return fallback
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() == (err_source or "").strip():
            return i
    return fallback


def execute_one(nb_path: Path, out_path: Path, parameters: dict, *, cwd: Path,
                timeout: int | None = None) -> NotebookRun:
    """Execute one notebook with papermill; never raises for a failing cell.

    Args:
        nb_path: the source notebook.
        out_path: where the executed notebook is written (also when it fails).
        parameters: papermill parameters (may be empty).
        cwd: the kernel's working folder.
        timeout: seconds per cell (``None``: no limit).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    run = NotebookRun(name=nb_path.stem, parameters=dict(parameters))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(nb_path), str(out_path), parameters=parameters or None, kernel_name="python3",
            cwd=str(cwd), progress_bar=False, log_output=False, execution_timeout=timeout,
        )
        run.status = "ok"
    except PapermillExecutionError as exc:
        run.status = "failed"
        run.error = {
            "cell": _source_cell_index(nb_path, exc.source, exc.cell_index),
            "exec_count": exc.exec_count,
            "ename": exc.ename,
            "evalue": str(exc.evalue)[:500],
            "source": (exc.source or "")[:500],
        }
    except Exception as exc:  # noqa: BLE001 - a kernel that dies, a timeout, a bad file
        run.status = "failed"
        run.error = {"cell": None, "exec_count": None, "ename": type(exc).__name__,
                     "evalue": str(exc).strip().splitlines()[0][:500] if str(exc).strip() else "", "source": ""}
    run.wall_s = time.perf_counter() - start
    return run


def machine_info() -> dict[str, Any]:
    """CPU count, Python / torch versions and the device the kernels use."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
    }
    try:
        import torch

        from mdlib.seeding import default_device

        info["torch"] = torch.__version__
        info["device"] = str(default_device())
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = None
    return info


def collect_metrics(results: Path) -> dict[str, Any]:
    """Every ``*.json`` under ``results`` except the summary itself: ``relative name -> content``."""
    out: dict[str, Any] = {}
    for p in sorted(results.rglob("*.json")):
        if p.name == SUMMARY_NAME and p.parent == results:
            continue
        key = str(p.relative_to(results).with_suffix(""))
        try:
            out[key] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            out[key] = {"error": f"unreadable: {exc}"}
    return out


def run_profile(profile: str, only: Sequence[str] | None = None, *, notebooks_dir: Path | None = None,
                results_root: Path | None = None, figures_dir: Path | None = None,
                timeout: int | None = None, progress: bool = True, jobs: int = 1) -> dict[str, Any]:
    """Execute the notebooks under ``profile`` and write ``results/<profile>/summary.json``.

    Args:
        profile: a profile name with a file ``notebooks/profiles/<profile>.yaml``.
        only: notebook names or numbers to run (default: all).
        notebooks_dir: where the notebooks are (default ``notebooks/``).
        results_root: parent of the per-profile results folder (default ``results/``).
        figures_dir: where figures go (default ``figures/``).
        timeout: seconds per cell (``None``: unlimited).
        progress: show a tqdm bar over notebooks.
        jobs: notebooks executed at once (each kernel uses ``MDLIB_THREADS`` threads, one by
            default, so ``jobs=2`` keeps both cores of a 2-core machine busy). Models that
            two notebooks share are trained once: the model cache locks its keys. With
            several jobs the notebooks start longest first (:func:`longest_first`).

    Returns:
        The summary (also written to ``<results_root>/<profile>/summary.json``):
        ``{"profile", "notebooks": {name: {...}}, "metrics": {file: content},
        "total_wall_s", "machine", "failed": [names]}``.

    Raises:
        MdlibError: unknown profile or notebook, or a malformed profile file.
    """
    from tqdm.auto import tqdm

    nb_dir = Path(notebooks_dir or paths.NOTEBOOKS_DIR)
    notebooks = list_notebooks(nb_dir)
    if not notebooks:
        raise MdlibError(f"no notebooks NN_name.ipynb in {nb_dir}")
    selected = select_notebooks(notebooks, only)
    params = load_profile(profile, notebooks, nb_dir)
    results = Path(results_root or (paths.ROOT / "results")) / profile
    # Only the paper profile refreshes the committed figures/; smaller profiles keep theirs apart.
    default_figures = paths.ROOT / "figures" if profile == "paper" else results / "figures"
    figures = Path(figures_dir or default_figures)
    results.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    runs: list[NotebookRun] = []
    start = time.perf_counter()
    env = {"MDLIB_RESULTS_DIR": str(results.resolve()), "MDLIB_FIGURES_DIR": str(figures.resolve()),
           "MDLIB_PROFILE": profile,
           # small models: one torch thread per kernel is faster than two on a busy 2-core machine
           "MDLIB_THREADS": os.environ.get("MDLIB_THREADS", "1")}
    if jobs < 1:
        raise MdlibError(f"--jobs must be at least 1, got {jobs}")
    # worker processes per kernel for its independent seeds (mdlib.experiments.parallel): the
    # cores that the jobs leave, so that notebooks at once do not oversubscribe them
    env["MDLIB_WORKERS"] = os.environ.get("MDLIB_WORKERS") or str(
        max(1, (os.cpu_count() or 1) // (jobs * max(int(env["MDLIB_THREADS"]), 1))))
    bar = tqdm(total=len(selected), desc=f"reproduce ({profile})", unit="notebook", disable=not progress)
    jobs_args = [(nb, results / nb.name, params.get(nb.stem, {})) for nb in selected]

    def snapshot() -> tuple[dict[str, float], dict[str, float]]:
        return _snapshot(results, "*.json"), _snapshot(figures, "*.png")

    def written_since(before: tuple[dict[str, float], dict[str, float]]) -> tuple[list[str], list[str]]:
        """(metrics files, figures) written since the ``before`` snapshot."""
        now = snapshot()
        return [m for m in _changed(before[0], now[0]) if m != SUMMARY_NAME], _changed(before[1], now[1])

    def finished(run: NotebookRun) -> None:
        runs.append(run)
        bar.set_postfix_str(run.name)
        bar.update(1)
        if run.status != "ok":
            bar.write(f"FAILED {run.describe_error()}")

    with _environ(**env):
        if jobs == 1:  # one at a time: a notebook's files are those that changed while it ran and carry its
            # number (another process, e.g. a second `reproduce --only`, may write into the same folders)
            for nb, out, nb_params in jobs_args:
                bar.set_postfix_str(nb.stem)
                before = snapshot()
                run = execute_one(nb, out, nb_params, cwd=nb_dir, timeout=timeout)
                _attribute(run, *written_since(before), strict=False)
                finished(run)
        else:  # at the same time: files are attributed by the notebook's number prefix ("03_...")
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            before = snapshot()
            args = {nb: (out, nb_params) for nb, out, nb_params in jobs_args}
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(execute_one, nb, *args[nb], cwd=nb_dir, timeout=timeout)
                           for nb in longest_first(list(args), results / SUMMARY_NAME)]
                for fut in as_completed(futures):
                    finished(fut.result())
            new_m, new_f = written_since(before)
            for run in runs:
                _attribute(run, new_m, new_f, strict=True)
    bar.close()
    total = time.perf_counter() - start
    runs.sort(key=lambda r: r.name)

    summary_path = results / SUMMARY_NAME
    previous: dict[str, Any] = {}
    if only and summary_path.is_file():  # a partial run keeps the other notebooks' entries
        with contextlib.suppress(OSError, json.JSONDecodeError):
            previous = json.loads(summary_path.read_text(encoding="utf-8")).get("notebooks", {})
    nb_entries = {k: v for k, v in previous.items() if k in {p.stem for p in notebooks}}
    for r in runs:
        nb_entries[r.name] = {"status": r.status, "wall_s": round(r.wall_s, 2), "parameters": r.parameters,
                              "metrics_files": r.metrics_files, "figures": r.figures, "error": r.error}
    summary = {
        "profile": profile,
        "notebooks": dict(sorted(nb_entries.items())),
        "ran": [r.name for r in runs],
        "failed": [r.name for r in runs if r.status != "ok"],
        "total_wall_s": round(total, 2),
        "jobs": jobs,
        "notebooks_wall_s": round(sum(v.get("wall_s") or 0.0 for v in nb_entries.values()), 2),
        "machine": machine_info(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "metrics": collect_metrics(results),
    }
    save_json(summary, summary_path)
    return summary


def longest_first(notebooks: Sequence[Path], summary_path: Path) -> list[Path]:
    """``notebooks`` in the order that finishes soonest on several jobs: longest first, by
    the wall-clock times of the previous run of the profile (``summary_path``); a notebook
    without a time goes first (it may be long), then the rest in their own order."""
    walls: dict[str, float] = {}
    with contextlib.suppress(OSError, json.JSONDecodeError, AttributeError, TypeError):
        for name, entry in json.loads(summary_path.read_text(encoding="utf-8")).get("notebooks", {}).items():
            if isinstance(entry.get("wall_s"), (int, float)):
                walls[name] = float(entry["wall_s"])
    return sorted(notebooks, key=lambda nb: -walls.get(nb.stem, math.inf))


def _attribute(run: NotebookRun, metrics: Sequence[str], figures: Sequence[str], strict: bool) -> None:
    """Give ``run`` the written files that are its own.

    A file named with the notebook's number (``03_...``) is its own; one named with another
    number is not (another notebook wrote it at the same time). ``strict`` (notebooks run at
    the same time) also refuses unnumbered names, which no single notebook can claim.
    """
    prefix = run.name.split("_", 1)[0] + "_"

    def own(f: str) -> bool:
        name = Path(f).name
        return name.startswith(prefix) or (not strict and re.match(r"\d+_", name) is None)

    run.metrics_files = [m for m in metrics if own(m)]
    run.figures = [f for f in figures if own(f)]


# --------------------------------------------------------------------------- reporting


def format_run_table(summary: dict[str, Any]) -> str:
    """Plain-text table of a run: notebook, status, wall-clock, metric files; then failures."""
    rows = [("notebook", "status", "wall-clock", "metrics written")]
    for name in summary.get("ran") or list(summary["notebooks"]):
        e = summary["notebooks"][name]
        rows.append((name, e["status"], _fmt_duration(e.get("wall_s")), ", ".join(e.get("metrics_files") or []) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.insert(1, "-" * (sum(widths) + 6 + len("metrics written")))
    lines.append(f"total wall-clock: {_fmt_duration(summary.get('total_wall_s'))} on "
                 f"{summary['machine'].get('cpu_count')} CPUs, torch {summary['machine'].get('torch')}, "
                 f"device {summary['machine'].get('device')}")
    for name in summary.get("failed", []):
        run = NotebookRun(name=name, error=summary["notebooks"][name].get("error"))
        lines.append("FAILED " + run.describe_error())
    return "\n".join(lines)


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _fmt_value(v: Any) -> str | None:
    """A number, or a ``{"mean", "low", "high"}`` / ``[mean, low, high]`` interval, as text."""
    if _is_number(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    if isinstance(v, dict) and _is_number(v.get("mean")):
        lo, hi = v.get("low", v.get("ci_low")), v.get("high", v.get("ci_high"))
        if _is_number(lo) and _is_number(hi):
            return f"{v['mean']:.3g} [{lo:.3g}, {hi:.3g}]"
        return f"{v['mean']:.3g}"
    return None


def headline_metrics(content: Any) -> list[tuple[str, str]]:
    """The numbers of one metric file that the README shows.

    A file that has a top-level ``"headline"`` mapping shows exactly those entries
    (numbers or ``{"mean", "low", "high"}`` intervals); otherwise its top-level numbers
    and intervals, in key order.
    """
    if not isinstance(content, dict):
        return []
    source = content.get("headline") if isinstance(content.get("headline"), dict) else content
    out = []
    for k in source:
        text = _fmt_value(source[k])
        if text is not None:
            out.append((str(k), text))
    return out


def render_results_table(summary: dict[str, Any], max_per_file: int = 6) -> str:
    """The README's results section (Markdown) from a ``summary.json``.

    One row per notebook: its wall-clock time, status and headline metrics (see
    :func:`headline_metrics`), then a line with the total time and the machine.
    Deterministic: the same summary always renders the same text.
    """
    lines = [
        f"Profile `{summary.get('profile')}`, generated by `scripts/readme_results.py` from "
        f"`results/{summary.get('profile')}/summary.json` (do not edit by hand).",
        "",
        "| notebook | wall-clock | status | headline metrics (mean [95% interval]) |",
        "|---|---|---|---|",
    ]
    metrics = summary.get("metrics", {})
    for name, e in summary.get("notebooks", {}).items():
        cells = []
        for f in e.get("metrics_files") or []:
            key = f.removesuffix(".json")
            items = headline_metrics(metrics.get(key))[:max_per_file]
            if items:
                cells.append(f"`{key}`: " + "; ".join(f"{k} {v}" for k, v in items))
        lines.append(f"| `{name}` | {_fmt_duration(e.get('wall_s'))} | {e.get('status')} | "
                     f"{'<br>'.join(cells) or '-'} |")
    m = summary.get("machine", {})
    jobs = summary.get("jobs", 1)
    at_once = f", {jobs} notebooks at a time (`--jobs {jobs}`)" if jobs and jobs > 1 else ""
    lines += ["", f"Total wall-clock {_fmt_duration(summary.get('total_wall_s'))} on {m.get('cpu_count')} CPU "
                  f"cores ({m.get('processor')}){at_once}, Python {m.get('python')}, torch {m.get('torch')}, "
                  f"device `{m.get('device')}`; a notebook's wall-clock is its own run time."]
    return "\n".join(lines)


def update_readme(readme: Path, summary: dict[str, Any]) -> bool:
    """Replace the text between the results markers of ``readme``; return whether it changed.

    Raises:
        MdlibError: the README lacks the two markers.
    """
    from mdlib.atomic import write_text

    text = readme.read_text(encoding="utf-8")
    new = readme_with_results(text, summary, readme)
    if new != text:
        write_text(readme, new)
        return True
    return False


def readme_with_results(text: str, summary: dict[str, Any], where: Path | str = "README.md") -> str:
    """``text`` with the block between the results markers replaced by the rendered table."""
    i, j = text.find(README_START), text.find(README_END)
    if i < 0 or j < 0 or j < i:
        raise MdlibError(f"{where}: expected the markers {README_START} and {README_END} (in that order)")
    return text[: i + len(README_START)] + "\n" + render_results_table(summary) + "\n" + text[j:]


def load_summary(path: Path) -> dict[str, Any]:
    """Read a ``summary.json`` (MdlibError naming the file when missing or malformed)."""
    from mdlib.atomic import read_json

    return read_json(path, missing="no such file; run `python -m mdlib reproduce --profile paper` first")


def main_reproduce(profile: str, only: Sequence[str] | None = None, timeout: int | None = None,
                   progress: bool = True, out=None, jobs: int = 1) -> int:
    """The ``reproduce`` command: run, print the table, return 1 when a notebook failed."""
    out = out or sys.stdout
    summary = run_profile(profile, only, timeout=timeout, progress=progress, jobs=jobs)
    print(format_run_table(summary), file=out)
    print(f"summary: {Path(paths.ROOT / 'results' / profile / SUMMARY_NAME)}", file=out)
    return 1 if summary["failed"] else 0
