"""environment.yml (conda users) lists exactly the packages and bounds of pyproject.toml.

pyproject.toml allows Python 3.10, which has no ``tomllib`` (3.11+): the test then uses
``tomli`` when it is installed, else :func:`read_requirement_arrays`, a reader of just the
string arrays it needs (checked against ``tomllib`` where that exists).
"""

import ast
import re

import pytest
import yaml

try:
    import tomllib as toml
except ImportError:  # Python 3.10
    try:
        import tomli as toml
    except ImportError:
        toml = None

from mdlib.paths import ROOT

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name, spec = match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")
    return name, ",".join(sorted(spec.split(","))) if spec else ""


def read_requirement_arrays(text: str) -> list[str]:
    """Every requirement of ``[project] dependencies`` and ``[project.optional-dependencies]``.

    Enough TOML for pyproject.toml: ``key = [ "string", ... ]`` arrays (over several lines,
    with comments) inside those two tables.
    """
    reqs, table = [], None
    for match in re.finditer(r"^\[([^\]]+)\]\s*$|^([A-Za-z0-9_.-]+)\s*=\s*(\[[^\]]*\])", text, re.M):
        if match.group(1):
            table = match.group(1).strip()
        elif (table, match.group(2)) == ("project", "dependencies") or table == "project.optional-dependencies":
            body = re.sub(r"#[^\n]*", "", match.group(3))
            reqs.extend(ast.literal_eval(body))
    return reqs


def _toml_requirements(text: str) -> list[str]:
    data = toml.loads(text)
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"]["optional-dependencies"].values():
        reqs.extend(extra)
    return reqs


def pyproject_requirements() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    reqs = _toml_requirements(text) if toml is not None else read_requirement_arrays(text)
    out = {}
    for req in reqs:
        name, spec = _split(req)
        out[CONDA_NAMES.get(name, name)] = spec
    return out


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and not dep.startswith(("python", "pip")):
            name, spec = _split(dep)
            out[name] = spec
    return out


def test_environment_yml_matches_pyproject():
    py, conda = pyproject_requirements(), conda_requirements()
    assert set(py) - set(conda) == set(), "in pyproject.toml but not environment.yml"
    assert set(conda) - set(py) == set(), "in environment.yml but not pyproject.toml"
    differ = {name: (py[name], conda[name]) for name in py if py[name] != conda[name]}
    assert differ == {}, "version bounds differ (pyproject, environment.yml)"


def test_torch_is_capped_below_2_14():
    """An uncapped torch pulls a multi-gigabyte CUDA build on a CPU machine."""
    spec = pyproject_requirements()["pytorch"]
    assert "<2.14" in spec.split(",")


def test_sync_check_detects_drift(tmp_path, monkeypatch):
    """The comparison itself fails on a drifted file (guards against a check that cannot fail)."""
    text = (ROOT / "environment.yml").read_text(encoding="utf-8").replace("seaborn>=0.13", "seaborn>=0.12")
    fake_root = tmp_path
    (fake_root / "environment.yml").write_text(text, encoding="utf-8")
    (fake_root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake_root)
    py, conda = pyproject_requirements(), conda_requirements()
    assert py["seaborn"] != conda["seaborn"]


@pytest.mark.skipif(toml is None, reason="no TOML library to compare with")
def test_fallback_reader_agrees_with_toml():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert read_requirement_arrays(text) == _toml_requirements(text)
    assert "torch>=2.4,<2.14" in read_requirement_arrays(text)


def test_python_floor_is_the_same_everywhere():
    """pyproject.toml, environment.yml and the README name the same lowest Python."""
    floor = re.search(r'requires-python\s*=\s*">=([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"python>={floor}" in (ROOT / "environment.yml").read_text()
    assert f"Python {floor}" in (ROOT / "README.md").read_text()


def test_requirements_without_a_toml_library(monkeypatch):
    """What Python 3.10 without tomli does: the fallback reader gives the same requirements."""
    with_toml = pyproject_requirements()
    monkeypatch.setattr(__import__(__name__), "toml", None)
    assert pyproject_requirements() == with_toml
