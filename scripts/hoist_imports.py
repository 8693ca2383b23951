"""Move function-level intra-package imports to module level where the import graph allows it.

    .venv/bin/python scripts/hoist_imports.py [--check]      # rewrite, then verify every module imports
                                                            # and the import-linter contracts hold

One file at a time: its function-level ``import sculpting...`` / ``from sculpting... import`` statements
are hoisted (deduplicated, after the module's own imports) unless the bound name would clash with a
module-level name or a local assignment; then every module of the package is imported in a fresh
process and ``lint-imports`` runs. A file whose hoisting breaks either (a cycle, or a layer crossed
upwards) is restored, and the import stays where it was: what remains is either an optional extra or
a real upward dependency that needs its code moved (docs/architecture.md). ``--check`` only counts.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sculpting"
PY = sys.executable

IMPORT_ALL = (
    "import importlib, pkgutil, sculpting\n"
    "for m in pkgutil.walk_packages(sculpting.__path__, 'sculpting.'):\n"
    "    importlib.import_module(m.name)\n"
)


def _intra(node) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").startswith("sculpting")
    return isinstance(node, ast.Import) and all(a.name.startswith("sculpting") for a in node.names)


def _bound(node) -> list[str]:
    out = []
    for a in node.names:
        if a.asname:
            out.append(a.asname)
        elif isinstance(node, ast.Import):
            out.append(a.name.split(".")[0])
        else:
            out.append(a.name)
    return out


def _module_names(tree) -> dict:
    """name → the source of its module-level binding ('import ...' text or 'def')."""
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = "def"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for n in _bound(node):
                names[n] = ast.unparse(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Name):
                        names[sub.id] = "assign"
    return names


def function_level(tree):
    """(import node, enclosing function, parent body list) of every function-level intra-package import."""
    out = []

    def visit(node, func):
        for field in ("body", "orelse", "finalbody", "handlers"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for child in body:
                lazy_attr = func is not None and func.name == "__getattr__"  # a module's lazy attribute, by design
                if (
                    func is not None
                    and not lazy_attr
                    and isinstance(child, (ast.Import, ast.ImportFrom))
                    and _intra(child)
                ):
                    out.append((child, func, body))
                inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
                visit(child, inner)

    visit(tree, None)
    return out


def hoist(path: Path) -> int:
    """Rewrite ``path``; returns the number of statements hoisted."""
    text = path.read_text()
    tree = ast.parse(text)
    names = _module_names(tree)
    lines = text.splitlines(keepends=True)
    moved, drop, empty = [], set(), {}
    for node, func, body in function_level(tree):
        bound = _bound(node)
        stmt = ast.unparse(node)
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            continue  # relative: left as written
        if any(n in names and names[n] != stmt for n in bound):
            continue  # a module-level name of another meaning
        stores = {s.id for s in ast.walk(func) if isinstance(s, ast.Name) and isinstance(s.ctx, ast.Store)}
        args = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
        other_imports = {
            n
            for s in ast.walk(func)
            if isinstance(s, (ast.Import, ast.ImportFrom)) and ast.unparse(s) != stmt
            for n in _bound(s)
        }
        if any(n in stores or n in args or n in other_imports for n in bound):
            continue  # a local of the same name (or another import of it): hoisting would change scoping
        if any(isinstance(n, ast.Global) for n in ast.walk(func)):
            continue
        moved.append(stmt)
        for n in bound:
            names[n] = stmt
        drop.update(range(node.lineno - 1, node.end_lineno))
        empty.setdefault(id(body), (body, []))[1].append(node)
    if not moved:
        return 0
    # a block left with nothing but hoisted imports keeps a `pass`
    keep_pass = {}
    for body, nodes in empty.values():
        if len(nodes) == len(body):
            first = body[0]
            keep_pass[first.lineno - 1] = " " * first.col_offset + "pass\n"
    new = []
    for i, line in enumerate(lines):
        if i in keep_pass:
            new.append(keep_pass[i])
        elif i not in drop:
            new.append(line)
    # after the module's leading block of imports (or its docstring), before any code
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    lead = []
    for n in tree.body[1 if ast.get_docstring(tree) else 0 :]:
        if not isinstance(n, (ast.Import, ast.ImportFrom)):
            break
        lead.append(n)
    at = lead[-1].end_lineno if lead else (tree.body[0].end_lineno if ast.get_docstring(tree) else 0)
    shift = sum(1 for i in drop if i < at) - sum(1 for i in keep_pass if i < at)
    at -= shift
    existing = {ast.unparse(n) for n in top}
    block = [s + "\n" for s in dict.fromkeys(moved) if s not in existing]
    new[at:at] = block
    path.write_text("".join(new))
    return len(moved)


def verify() -> str | None:
    r = subprocess.run([PY, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        return r.stderr.strip().splitlines()[-1]
    r = subprocess.run([str(Path(PY).parent / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        return "import-linter: " + " ".join(r.stdout.split()[-12:])
    return None


def count() -> int:
    return sum(len(function_level(ast.parse(p.read_text()))) for p in PKG.rglob("*.py"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true")
    p.add_argument("files", nargs="*")
    a = p.parse_args(argv)
    print("function-level intra-package imports:", count())
    if a.check:
        return
    files = [Path(f) for f in a.files] or sorted(PKG.rglob("*.py"))
    for f in files:
        before = f.read_text()
        n = hoist(f)
        if not n:
            continue
        err = verify()
        if err:
            f.write_text(before)
            print(f"kept   {f.relative_to(ROOT)} ({n}): {err}")
        else:
            print(f"hoisted {f.relative_to(ROOT)}: {n}")
    print("function-level intra-package imports:", count())


if __name__ == "__main__":
    main()
