"""Running a notebook or the tests never overwrites the committed results.

An interactive run (JupyterLab, nbval, plain papermill) writes into ``results/local/``,
which git ignores; only ``python -m mdlib reproduce`` redirects outputs to a profile's
folder (``--profile paper``: ``results/paper/`` and the committed ``figures/``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mdlib import paths, report  # noqa: E402

REDIRECTS = ("MDLIB_RESULTS_DIR", "MDLIB_FIGURES_DIR")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=paths.ROOT, capture_output=True, text=True)


needs_git = pytest.mark.skipif(
    shutil.which("git") is None or _git("rev-parse", "--show-toplevel").returncode != 0,
    reason="needs the repository's git checkout",
)


def _tracked_state() -> tuple[dict[str, str], str]:
    """SHA-256 of every tracked file, and ``git status --porcelain`` (untracked files included)."""
    names = _git("ls-files", "-z").stdout.split("\0")
    digests = {}
    for name in filter(None, names):
        path = paths.ROOT / name
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return digests, _git("status", "--porcelain", "--untracked-files=all").stdout


def test_default_folders_are_local(monkeypatch, tmp_path):
    for var in REDIRECTS:
        monkeypatch.delenv(var, raising=False)
    assert paths.results_dir() == paths.ROOT / "results" / "local"
    assert paths.figures_dir() == paths.ROOT / "results" / "local" / "figures"

    # save_* write where paths says (redirected to a temporary folder for the test)
    monkeypatch.setattr(paths, "LOCAL_RESULTS_DIR", tmp_path / "local")
    written = report.save_metrics("probe", {"x": 1})
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    figure = report.save_figure(fig, "probe")
    plt.close(fig)
    assert written == tmp_path / "local" / "probe.json" and written.is_file()
    assert figure == tmp_path / "local" / "figures" / "probe.png" and figure.is_file()
    assert report.load_metrics("probe") == {"x": 1}


def test_redirects_still_win(monkeypatch, tmp_path):
    monkeypatch.setenv("MDLIB_RESULTS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("MDLIB_FIGURES_DIR", str(tmp_path / "f"))
    assert paths.results_dir() == tmp_path / "r"
    assert paths.figures_dir() == tmp_path / "f"


@needs_git
def test_local_folder_is_ignored_and_committed_folders_are_not():
    assert _git("check-ignore", "-q", "results/local/03_maml_and_reptile.json").returncode == 0
    assert _git("check-ignore", "-q", "results/local/figures/03_methods_over_k.png").returncode == 0
    # the committed run's files are tracked, so a change to them would show in git status
    assert _git("check-ignore", "-q", "figures/03_methods_over_k.png").returncode == 1
    assert _git("check-ignore", "-q", "results/paper/summary.json").returncode == 1


@needs_git
def test_top_level_results_duplicates_are_gone():
    top = [p for p in _git("ls-files", "results").stdout.split() if p.count("/") == 1]
    assert top == [], f"results/*.json duplicates the profile folders: {top}"


@pytest.mark.slow
@needs_git
def test_running_a_notebook_as_nbval_does_changes_no_tracked_file(monkeypatch):
    """Execute notebook 01 in place the way nbval does (a kernel in notebooks/, this
    process's environment, the notebook file itself not rewritten) and compare every
    tracked file before and after."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for var in REDIRECTS:
        monkeypatch.delenv(var, raising=False)
    notebook = paths.NOTEBOOKS_DIR / "01_data_and_preprocessing.ipynb"
    before = _tracked_state()
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(notebook.parent)}})
    client.execute()
    after = _tracked_state()
    changed = sorted(n for n in before[0] if before[0][n] != after[0].get(n))
    assert changed == [], f"running {notebook.name} changed tracked files: {changed[:10]}"
    assert before[1] == after[1], f"git status changed:\n{before[1]}\n---\n{after[1]}"
    # and it did write its outputs, into the local folder
    assert (paths.LOCAL_RESULTS_DIR / "01_data_and_preprocessing.json").is_file()
