"""The built wheel stands alone: its long description is the README (the front page), and a fresh
virtual environment that installs it runs the README's Quick start from another folder, on the
pretrained models the wheel ships.

The fresh environment takes the wheel alone for ``sculpting``; its dependencies (torch and the
rest, gigabytes) are borrowed from the test's own environment through a path file, so the check
needs no network. Control: the same environment without the wheel cannot import sculpting.
"""

import re
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)  # no stale module of an earlier build in the wheel
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("sculpting-*.whl")
    return whl


def test_the_wheel_describes_itself_with_the_readme_and_ships_the_models(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    body = meta.split("\n\n", 1)[1]
    assert body.strip() == (ROOT / "README.md").read_text().strip()
    assert re.search(r"(?m)^Version: 0\.3\.0$", meta)
    assert "sculpting/domains/grid/pretrained/base_shubert.pt" in names
    assert not any(n.startswith(("tests/", "notebooks/", "benchmarks/")) for n in names)


def test_a_fresh_environment_runs_the_quick_start_from_the_wheel(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    pure = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    )
    # the dependencies come from this environment (a plain path: its editable sculpting is not loaded)
    (Path(pure.stdout.strip()) / "borrowed_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    quick = re.search(r"## Quick start.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = "import sculpting, pathlib; print('FROM', pathlib.Path(sculpting.__file__).resolve())\n" + quick
    r = subprocess.run(
        [str(py), "-c", code],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    where = r.stdout.split("FROM ", 1)[1].splitlines()[0]
    assert where.startswith(str(env_dir.resolve())), where  # the wheel's copy, not the repository's
    assert (work / "harmonic.png").stat().st_size > 10_000 and "samples; L1 to the target" in r.stdout


def test_control_without_the_wheel_sculpting_is_not_found(tmp_path):
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=False)
    r = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import sculpting"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode != 0 and "No module named 'sculpting'" in r.stderr
