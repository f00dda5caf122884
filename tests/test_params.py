"""Parameter files are checked against their chapter's `parameters` cell before the chapter runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from subspacelens.params import Parameter, check_parameters, notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
PARAM_FILES = sorted((ROOT / "params").glob("*/*.yaml"))


def _notebook_of(params: Path) -> Path:
    """The chapter a parameter file drives (capture-*.yaml are runs of the capture chapter)."""
    name = "capturing_activations" if params.stem.startswith("capture-") else params.stem
    return ROOT / "notebooks" / f"{name}.md"


@pytest.mark.parametrize("params", PARAM_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_parameter_file_sets_only_known_parameters(params):
    check_parameters(_notebook_of(params), params)  # raises on a key the chapter does not define


CI_PARAM_FILES = sorted((ROOT / "params" / "ci").glob("*.yaml"))


@pytest.mark.parametrize("params", CI_PARAM_FILES, ids=lambda p: p.name)
def test_the_ci_set_reads_only_the_ci_caches(params):
    """Every cache parameter of a chapter defaults to a full-size cache, so the ci set must set each one: a
    default left in place reads the full cache where one exists and silently skips it where none does, and
    the ci references would then depend on what else was captured on the machine that made them."""
    defaults = notebook_parameters(_notebook_of(params))
    reading_caches = {name for name, p in defaults.items() if "data/cache/" in p.default}
    values = yaml.safe_load(params.read_text()) or {}
    left = sorted(reading_caches - set(values))
    assert not left, f"{params.name} leaves {left} at their defaults"
    for name in reading_caches:
        assert all(str(path).startswith("data/cache/ci/") for path in np.ravel([values[name]]) if path), (name, values[name])


def test_the_parameters_cell_is_read_with_the_types_its_defaults_show():
    found = notebook_parameters(ROOT / "notebooks" / "per_subject.md")
    assert found["n_boot"] == Parameter("n_boot", "20", "int")
    assert str(found["cache"]) == "cache (str)" and str(found["level"]) == "level (float)"
    lens = notebook_parameters(ROOT / "notebooks" / "validating_the_lens.md")  # `a, b, c = x, y, z`
    assert [lens[k].type for k in ("eps_min", "eps_max", "n_eps")] == ["float", "float", "int"]
    capture = notebook_parameters(ROOT / "notebooks" / "capturing_activations.md")
    assert capture["seeds"].type is None  # default None says no type


def test_an_unknown_key_is_refused_with_the_known_ones(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("n_bootstrap: 100\nlevel: 0.9\n")
    with pytest.raises(ValueError, match=r"sets \['n_bootstrap'\], which per_subject\.md does not define; "
                       r"'n_bootstrap': did you mean 'n_boot'\?\. Its parameters: cache \(str\), .*eps \(float\), "
                       r"n_boot \(int\)"):
        check_parameters(ROOT / "notebooks" / "per_subject.md", params)
    params.write_text("- a list\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        check_parameters(ROOT / "notebooks" / "per_subject.md", params)
    with pytest.raises(FileNotFoundError, match="no such file .*nowhere.yaml"):
        check_parameters(ROOT / "notebooks" / "per_subject.md", tmp_path / "nowhere.yaml")


def _make(*args, cwd=ROOT):
    """``make`` with the installed-venv target taken as up to date (a test never reinstalls)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    command = ["make", "-s", "-f", str(ROOT / "Makefile"), "-o", ".venv/.installed", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "python").exists(),
                    reason="needs make and the project's .venv")
def test_make_chapter_refuses_unknown_keys_before_running(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("n_bootstrap: 100\n")
    result = _make("chapter", "NB=per_subject", f"PARAMS={params}")
    assert result.returncode == 2
    assert "'n_bootstrap': did you mean 'n_boot'?" in result.stderr
    assert "Executing" not in result.stderr + result.stdout  # papermill never started


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_chapter_names_the_parameter_file_a_fork_lacks(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "per_subject.md", tmp_path / "notebooks" / "my_fork.md")
    result = _make("chapter", "NB=my_fork", cwd=tmp_path)
    assert result.returncode == 2
    assert "no parameter file params/default/my_fork.yaml for chapter 'my_fork'" in result.stdout
