"""``python -m mdlib reproduce`` on tiny throwaway notebooks (one of which fails)."""

from __future__ import annotations

import json

import nbformat
import pytest

from mdlib import paths, reproduce
from mdlib.errors import MdlibError


def _notebook(path, params_src, body_cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell("# tiny"))
    cell = nbformat.v4.new_code_cell(params_src)
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in body_cells)
    nbformat.write(nb, path)


@pytest.fixture
def tiny_repo(tmp_path, monkeypatch):
    nbs = tmp_path / "notebooks"
    (nbs / "profiles").mkdir(parents=True)
    _notebook(nbs / "01_good.ipynb", "x = 1\nlabel = 'default'", [
        "import os\nfrom mdlib.report import save_metrics\n"
        "save_metrics('good', {'x': x, 'label': label, 'cwd': os.path.basename(os.getcwd())})",
    ])
    _notebook(nbs / "02_bad.ipynb", "y = 2", [
        "z = y + 1",
        "raise ValueError('boom in the second body cell')",
        "open('never_reached.txt', 'w').write('no')",
    ])
    (nbs / "profiles" / "smoke.yaml").write_text("01_good:\n  x: 5\n  label: smoke\n")
    (nbs / "profiles" / "quick.yaml").write_text("# defaults\n")
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    return tmp_path


def test_run_reports_failing_notebook_and_cell_and_runs_the_others(tiny_repo):
    summary = reproduce.run_profile("smoke", progress=False)
    results = tiny_repo / "results" / "smoke"
    assert summary["failed"] == ["02_bad"]
    assert summary["notebooks"]["01_good"]["status"] == "ok"
    # the profile's parameters reached the kernel, which ran in notebooks/ and wrote into results/<profile>
    assert json.loads((results / "good.json").read_text()) == {"x": 5, "label": "smoke", "cwd": "notebooks"}
    assert summary["metrics"]["good"]["x"] == 5
    assert summary["notebooks"]["01_good"]["metrics_files"] == ["good.json"]
    err = summary["notebooks"]["02_bad"]["error"]
    assert err["cell"] == 3 and err["ename"] == "ValueError"  # markdown, parameters, z = y + 1, raise
    line = reproduce.NotebookRun("02_bad", error=err).describe_error()
    assert "02_bad" in line and "cell 3" in line and "boom" in line
    # executed copies (also of the failing one) and the summary are on disk
    assert (results / "01_good.ipynb").is_file() and (results / "02_bad.ipynb").is_file()
    on_disk = json.loads((results / "summary.json").read_text())
    assert on_disk["machine"]["cpu_count"] >= 1 and on_disk["total_wall_s"] > 0
    table = reproduce.format_run_table(summary)
    assert "FAILED 02_bad: failed at cell 3" in table and "01_good" in table
    assert not (tiny_repo / "notebooks" / "never_reached.txt").exists()


def test_jobs_run_notebooks_at_once_and_attribute_files_by_number(tiny_repo):
    _notebook(tiny_repo / "notebooks" / "03_also.ipynb", "w = 7", [
        "from mdlib.report import save_metrics\nsave_metrics('03_also', {'w': w})",
    ])
    summary = reproduce.run_profile("smoke", jobs=2, progress=False)
    assert summary["jobs"] == 2 and summary["ran"] == ["01_good", "02_bad", "03_also"]
    assert summary["failed"] == ["02_bad"]
    assert summary["notebooks"]["03_also"]["status"] == "ok"
    assert summary["notebooks"]["03_also"]["metrics_files"] == ["03_also.json"]
    assert summary["metrics"]["03_also"]["w"] == 7 and summary["metrics"]["good"]["x"] == 5
    with pytest.raises(MdlibError, match="--jobs must be at least 1"):
        reproduce.run_profile("smoke", jobs=0, progress=False)


def test_cli_exit_status_and_only(tiny_repo, capsys):
    from mdlib.cli import main

    assert main(["reproduce", "--profile", "quick", "--only", "01", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "01_good" in out and "02_bad" not in out
    # the notebook missing from quick.yaml runs with its defaults
    assert json.loads((tiny_repo / "results" / "quick" / "good.json").read_text())["x"] == 1
    assert main(["reproduce", "--profile", "quick", "--only", "02_bad", "--no-progress"]) == 1
    # a partial run keeps the earlier notebook's entry
    summary = json.loads((tiny_repo / "results" / "quick" / "summary.json").read_text())
    assert set(summary["notebooks"]) == {"01_good", "02_bad"} and summary["ran"] == ["02_bad"]


@pytest.mark.parametrize("argv, needle", [
    (["reproduce", "--profile", "nope"], "unknown profile 'nope'"),
    (["reproduce", "--profile", "smoke", "--only", "99"], "no notebook named '99'"),
])
def test_cli_bad_names_one_line_error(tiny_repo, capsys, argv, needle):
    from mdlib.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and len(err.splitlines()) == 1


def test_profile_naming_an_undeclared_parameter_is_refused(tiny_repo):
    (tiny_repo / "notebooks" / "profiles" / "paper.yaml").write_text("01_good:\n  n_seeds: 5\n")
    with pytest.raises(MdlibError, match=r"paper.yaml: 01_good.n_seeds: .*defines no such name"):
        reproduce.run_profile("paper", progress=False)
    (tiny_repo / "notebooks" / "profiles" / "paper.yaml").write_text("03_missing:\n  x: 5\n")
    with pytest.raises(MdlibError, match="names no notebook"):
        reproduce.run_profile("paper", progress=False)


def test_real_profiles_match_the_notebooks():
    """Every committed profile names existing notebooks and declared parameters only."""
    notebooks = reproduce.list_notebooks()
    if not notebooks:
        pytest.skip("no notebooks yet")
    for profile in reproduce.PROFILES:
        params = reproduce.load_profile(profile, notebooks)
        assert set(params) == {p.stem for p in notebooks}


def test_one_at_a_time_a_file_with_another_notebooks_number_is_not_attributed(tiny_repo):
    # another process (a second `reproduce --only`) may write into the same folders while a notebook runs
    _notebook(tiny_repo / "notebooks" / "03_also.ipynb", "w = 7", [
        "from mdlib.report import save_metrics\nsave_metrics('03_also', {'w': w})\n"
        "save_metrics('07_someone_else', {'v': 1})",
    ])
    summary = reproduce.run_profile("smoke", only=["03"], progress=False)
    assert summary["notebooks"]["03_also"]["metrics_files"] == ["03_also.json"]


def test_several_jobs_start_the_longest_notebooks_of_the_previous_run_first(tmp_path):
    from mdlib.reproduce import longest_first

    names = ["00_a", "01_b", "02_c", "03_d"]
    notebooks = [tmp_path / f"{n}.ipynb" for n in names]
    summary = tmp_path / "summary.json"
    assert longest_first(notebooks, summary) == notebooks  # no previous run: their own order
    summary.write_text(json.dumps({"notebooks": {"00_a": {"wall_s": 5.0}, "01_b": {"wall_s": 50.0},
                                                 "02_c": {"wall_s": 20.0}}}))
    assert [p.stem for p in longest_first(notebooks, summary)] == ["03_d", "01_b", "02_c", "00_a"]
    summary.write_text("{not json")
    assert longest_first(notebooks, summary) == notebooks
