"""Lint, format and dead code, checked with every test run (so in CI): ruff's rules and format
(the configuration in pyproject.toml), and vulture for unused code in the package (the names it
cannot see used are listed, with where they are used, in scripts/vulture_whitelist.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["sculpting", "tests", "benchmarks", "scripts"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")
    r = _run("ruff", "check", *TREES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_code_is_formatted():
    pytest.importorskip("ruff")
    r = _run("ruff", "format", "--check", *TREES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_package_has_no_dead_code():
    pytest.importorskip("vulture")
    r = _run("vulture", "sculpting", "tests", "benchmarks", "scripts/vulture_whitelist.py", "--min-confidence", "60")
    found = [line for line in r.stdout.splitlines() if not line.startswith("tests/")]
    assert not found, "\n".join(found)


def test_the_checks_can_fail(tmp_path):
    """Controls: an unused import, a badly formatted line and an unused function are reported."""
    pytest.importorskip("ruff")
    pytest.importorskip("vulture")
    bad = tmp_path / "bad.py"
    bad.write_text("import os\ndef f( x ):\n    return x\n")
    assert _run("ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(bad)).returncode != 0
    assert _run("ruff", "format", "--check", "--config", str(ROOT / "pyproject.toml"), str(bad)).returncode != 0
    assert "unused function 'f'" in _run("vulture", str(bad), "--min-confidence", "60").stdout


def _lint_imports(cwd, extra_env=None):
    import os

    exe = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run([str(exe), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_the_layers_hold(tmp_path):
    """import-linter's contracts of pyproject.toml: domains → api → method → infrastructure, and the
    method never imports a domain (docs/architecture.md). Control: the same check on a copy of the
    package whose algebra imports a domain fails, naming that import."""
    import shutil

    pytest.importorskip("importlinter")
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    copy = tmp_path
    shutil.copytree(ROOT / "sculpting", copy / "sculpting", ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    algebra = copy / "sculpting" / "algebra.py"
    algebra.write_text(algebra.read_text() + "\n\nimport sculpting.domains.grid  # noqa\n")
    bad = _lint_imports(copy, {"PYTHONPATH": str(copy)})
    assert bad.returncode != 0 and "sculpting.algebra -> sculpting.domains.grid" in bad.stdout, bad.stdout
