"""Every command of the README and of the documentation pages that give commands runs in a test
(shrunk to seconds with the documented smoke flags and temporary outputs) or is marked illustrative
where it is written; every Python block there runs; the README stays a front page."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the pages whose commands and Python blocks are run (the README first)
PAGES = ("README.md", "docs/usage.md", "docs/training.md", "docs/benchmarks.md")
README = "\n".join((ROOT / p).read_text() for p in PAGES)
PY = str(Path(sys.executable).parent / "python")


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def commands():
    """(command, marked illustrative) of every bash block (comments and `export` settings aside); a
    command is marked by "illustrative" in its own comment or in a comment line above it."""
    out = []
    for block in blocks("bash"):
        marked_below = False
        for line in block.splitlines():
            cmd = line.split("#")[0].strip()
            if not cmd:
                marked_below |= "illustrative" in line
            elif not cmd.startswith("export "):
                out.append((cmd, marked_below or "illustrative" in line))
    return out


def _sh(cmd, tmp_path, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run(cmd, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def run_lab(tmp_path):  # the setup step, then the JupyterLab executable it opens (asked for its version)
    assert re.match(r"\d+\.\d+", _sh("bash scripts/lab.sh --version", tmp_path).stdout.strip())


def run_tests(tmp_path):  # the test command is what CI runs
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def run_reproduce(tmp_path):
    _sh(f"bash scripts/reproduce.sh --smoke --only 03 --root {tmp_path}", tmp_path)
    assert (tmp_path / "03_grid_sculpting" / "metrics.json").is_file() and (tmp_path / "summary.md").is_file()


def run_papermill(tmp_path):
    cmd = next(c for c, _ in commands() if "papermill" in c)
    cmd = cmd.replace("figures/03_grid_sculpting/03.ipynb", str(tmp_path / "03.ipynb"))
    _sh(f"{cmd} -p out_dir {tmp_path} -p latency_repeats 2 --log-level ERROR", tmp_path)
    assert (tmp_path / "metrics.json").is_file()


def builder(domain):
    def run(tmp_path):
        if domain == "molecules":
            from molecule_data import require_data

            require_data()
        _sh(f"{PY} -m sculpting.domains.{domain}.build --smoke --out {tmp_path}", tmp_path)
        assert list(tmp_path.glob("classifier_*.pt"))

    return run


def cli(smoke_args):
    """Run the README's training command with ``--out`` in a temporary folder and smoke settings appended
    (later ``--key value`` pairs override earlier ones)."""

    def run(tmp_path):
        key = next(k for k, f in RUNS.items() if f is run)
        cmd = next(c for c, _ in commands() if key in c)
        cmd = re.sub(r"--out \S+", f"--out {tmp_path}", cmd)
        if "torchrun" in cmd:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = cmd.replace("--nproc_per_node", f"--master_addr 127.0.0.1 --master_port {port} --nproc_per_node")
        _sh(f"{cmd} {smoke_args}", tmp_path)
        assert (tmp_path / "model.pt").is_file() and (tmp_path / "summary.json").is_file()

    return run


def chain(folder, smoke_args, needs_data=False):
    """Run the README's chain of commands writing under ``runs/<folder>/`` in order, as written, in a
    temporary folder, with smoke settings appended to each training command."""

    def run(tmp_path):
        if needs_data:
            from molecule_data import require_data

            require_data()
        steps = [c for c, _ in commands() if f"runs/{folder}/" in c]
        training = [c for c in steps if re.search(r"-m sculpting\s", c)]
        assert len(steps) >= 3 and len(training) >= 2  # never a full-size run in the tests
        for cmd in steps:
            cmd = cmd.replace(f"runs/{folder}/", f"{tmp_path / folder}/")
            if re.search(r"-m sculpting\s", cmd):
                cmd = f"{cmd} {smoke_args}" + (" --horizon 8" if "grid-base" in cmd else "")
            _sh(cmd, tmp_path)
        assert list((tmp_path / folder).glob("*/model.pt"))

    return run


RUNS = {
    "runs/grid/": chain("grid", "--preset smoke"),
    "runs/mnist/": chain("mnist", "--preset smoke"),
    "runs/mol/": chain("mol", "--preset smoke", needs_data=True),
    "--temperature 0.5 --steps 3000": cli("--preset smoke --horizon 8 --steps 30"),
    "torchrun": cli("--preset smoke --horizon 8 --steps 30 --batch_size 16"),
    "bash scripts/lab.sh": run_lab,
    "bash scripts/test.sh": run_tests,
    "bash scripts/reproduce.sh": run_reproduce,
    "papermill": run_papermill,
    "sculpting.domains.grid.build": builder("grid"),
    "sculpting.domains.mnist.build": builder("mnist"),
    "sculpting.domains.molecules.build": builder("molecules"),
    "benchmarks/gpu.py --device cpu --quick": lambda tmp_path: _sh(
        f"{PY} benchmarks/gpu.py --device cpu --quick --sections sampling --json {tmp_path / 'gpu.json'}", tmp_path
    ),
}


def _runner(cmd):
    hits = [k for k in RUNS if k in cmd]
    return RUNS[hits[0]] if len(hits) == 1 else None


def test_every_readme_command_is_run_here_or_marked_illustrative():
    cmds = commands()
    assert len(cmds) >= 10
    for cmd, marked in cmds:
        assert _runner(cmd) is not None or marked, f"README command neither tested nor marked illustrative: {cmd}"
    assert sum(m for _, m in cmds) == 12  # the download, five GPU runs and the six benchmarks


@pytest.mark.parametrize("key", list(RUNS))
def test_readme_command_runs(key, tmp_path):
    assert any(key in c for c, _ in commands()), f"{key} is no longer in the README"
    RUNS[key](tmp_path)


def test_readme_python_runs(tmp_path):
    for code in blocks("python"):
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]


def test_the_readme_is_a_front_page():
    """At most 150 lines; it opens with what the package does, shows a figure that exists, gives the
    two commands and a Quick start, and links only to files that exist (control: a missing link is
    found)."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "bash scripts/lab.sh" in text and "bash scripts/test.sh" in text and "## Quick start" in text
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert any(link.endswith(".png") for link in links)
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert missing == []
    assert [link for link in ["docs/nope.md"] if not (ROOT / link).exists()] == ["docs/nope.md"]  # control
    # the numbers it states: the notebooks it lists are the repository's, as many as it says
    listed = re.findall(r"(?m)^\| `(\d\d_\w+)` \|", text)
    assert listed == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    words = {3: "Three", 10: "ten"}
    assert f"{words[len(listed)]} notebooks" in text
    domains = {row.split("|")[2].strip() for row in re.findall(r"(?m)^\| `\d\d_\w+` \|[^\n]+", text)}
    assert f"{words[len(domains - {'your own'})]} domains" in text
    import tomllib

    low = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"].removeprefix(">=")
    assert f"Python ≥ {low}" in text


def test_the_benchmarks_page_is_generated_from_the_measurements():
    """docs/benchmarks.md is what scripts/benchmarks_page.py makes of figures/timing.json and the
    results files (control: a changed timing makes the check fail)."""
    import json

    sys.path.insert(0, str(ROOT / "scripts"))
    import benchmarks_page

    assert benchmarks_page.main(["--check"]) == 0
    timing = json.loads((ROOT / "figures" / "timing.json").read_text())
    first = next(iter(sorted(timing)))
    assert f"| `{first}` | {timing[first]['seconds'] / 60:.1f} |" in benchmarks_page.page()
    changed = {**timing, first: {**timing[first], "seconds": timing[first]["seconds"] + 600}}
    assert benchmarks_page.timing_table(changed) not in benchmarks_page.page()


def test_one_version_everywhere():
    """The package, its metadata, the citation file and the newest release notes name one version."""
    import tomllib

    from sculpting.version import __version__

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cff = re.search(r"(?m)^version: (\S+)", (ROOT / "CITATION.cff").read_text()).group(1)
    newest = re.search(r"(?m)^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text()).group(1)
    assert __version__ == meta == cff == newest == "0.3.0"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
