"""The package works without its optional extras (diffusers, torchgfn): imports are at module level
(scripts/hoist_imports.py), so this checks that none of them pulls an extra into ``import sculpting``
or into the core paths. One fresh process with both extras made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("diffusers", "gfn")

SCRIPT = textwrap.dedent(
    f"""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Block())
    import sculpting as sc

    bases, clf = sc.load_pretrained("grid/circles")
    x = sc.sample(sc.compose(bases, clf, "y=12"), 16, seed=0)
    free = sc.smc(sc.compose(bases, None, "y=12"), 16, seed=0, twist="paths")
    from sculpting.domains.mnist.io import load_mnist_models

    models = load_mnist_models()
    img = sc.sample(models["bases"]["M1"], 2, seed=0, steps=4)
    for extra in {BLOCKED!r}:
        assert extra not in sys.modules, extra
    print("ok", tuple(x.shape), tuple(img.shape))
    """
)


def test_the_core_runs_without_the_optional_extras():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "ok (16, 2) (2, 3, 16, 16)" in r.stdout, r.stderr[-3000:]


def test_the_blocker_blocks():  # control: the same finder makes an extra unimportable
    code = SCRIPT.split("import sculpting as sc")[0] + "import diffusers\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "blocked by the test" in r.stderr
