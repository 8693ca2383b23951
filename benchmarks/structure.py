"""How the package reads to a newcomer, measured (issue: the structure redesign).

    .venv/bin/python benchmarks/structure.py

Prints one table: per family, the package files that run during one
``sc.sample(sc.compose(bases, clf, "harmonic"), n, sampler="smc")`` call and the frames from
``sc.sample`` to the SMC loop; the intra-package imports inside functions against those at module
level; the modules and lines of the method core; and (if the ``duplicates`` tool is on PATH) the
pairs of repeated blocks of six or more lines in ``sculpting/``.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sculpting"
sys.path.insert(0, str(ROOT))

import sculpting as sc  # noqa: E402

#: the method core: the maths of compositions, guidance, SMC and the samplers (not domains,
#: adapters, infrastructure or the lab)
METHOD_CORE = ("algebra.py", "compose.py", "families.py", "smc_core.py", "labels.py", "gflownet", "diffusion")
LOOPS = ("run_smc",)


def _trace(call):
    """(package files run, frames from the first package frame to the SMC loop)."""
    files, depth = set(), {}

    def tracer(frame, event, arg):
        if event != "call":
            return None
        f = frame.f_code.co_filename
        if f.startswith(str(PKG)):
            files.add(Path(f).relative_to(PKG).as_posix())
            if frame.f_code.co_name in LOOPS and "loop" not in depth:
                d, fr = 0, frame.f_back  # frames between sc.sample and the loop, both excluded
                while fr is not None and not (
                    fr.f_code.co_name == "sample" and fr.f_code.co_filename.endswith("compose.py")
                ):
                    d, fr = d + 1, fr.f_back
                depth["loop"] = d if fr is not None else None
        return None

    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return files, depth.get("loop")


def _gflownet_case():
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.classifier import SculptingClassifier
    from sculpting.gflownet.policy import GFlowNet

    env = GridEnv(6, 2, "circle1")
    bases = [GFlowNet(env, hidden=16, seed=s) for s in (0, 1)]
    clf = SculptingClassifier(env, 2, 2, hidden=16, seed=0)
    model = sc.compose(bases, clf, "harmonic", check=False)
    return lambda: sc.sample(model, 8, seed=0, sampler="smc", particles=8)


def _diffusion_case():
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.model import ScoreModel

    torch.manual_seed(0)
    bases = [ScoreModel(3, "smoke") for _ in range(2)]
    clf = TimeClassifier((3, 16, 16), 2, 2, trunk=(4, 8), hidden=16, embed_dim=16)
    model = sc.compose(bases, clf.eval(), "harmonic")
    return lambda: sc.sample(model, 2, seed=0, steps=3, sampler="smc", particles=2)


def _imports():
    """(intra-package imports inside functions, at module level, lazy imports of optional extras)."""
    extras = ("diffusers", "gfn", "rdkit", "torch_geometric")
    inside = module = optional = 0
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            own = any(n.startswith("sculpting") for n in names) or (isinstance(node, ast.ImportFrom) and node.level)
            if id(node) in top or _in_type_checking(tree, node):
                module += bool(own)
            elif own:
                inside += 1
            elif any(n.split(".")[0] in extras for n in names):
                optional += 1
    return inside, module, optional


def _in_type_checking(tree, node):
    for n in tree.body:
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            if any(c is node for c in ast.walk(n)):
                return True
    return False


def _core_size():
    files = []
    for name in METHOD_CORE:
        p = PKG / name
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return len(files), sum(len(f.read_text().splitlines()) for f in files)


def _duplicates():
    tool = shutil.which("duplicates")
    if tool is None:
        return None
    out = subprocess.run(
        [tool, "--repo", str(PKG), "--most", "200", "--seconds", "120"], capture_output=True, text=True
    ).stdout
    return sum(1 for line in out.splitlines() if line[:1] == "D" and line[1:2].isdigit())


def main():
    rows = []
    for family, case in (("GFlowNet", _gflownet_case), ("diffusion", _diffusion_case)):
        call = case()
        call()  # once untraced: the modules a first call imports are not what one call runs
        files, frames = _trace(call)
        rows.append((f"{family}: files run by sc.sample(compose(...), sampler='smc')", len(files)))
        rows.append((f"{family}: frames from sc.sample to the SMC loop", frames))
    inside, module, optional = _imports()
    rows += [
        ("intra-package imports inside functions", inside),
        ("intra-package imports at module level", module),
        ("lazy imports of optional extras", optional),
    ]
    n, lines = _core_size()
    rows += [("method core: modules", n), ("method core: lines", lines)]
    rows.append(("pairs of repeated blocks (≥ 6 lines, `duplicates`)", _duplicates()))
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {'n/a' if v is None else v} |")


if __name__ == "__main__":
    main()
