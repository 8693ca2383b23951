"""Build the documentation site (MkDocs + Material, API reference by mkdocstrings, notebooks by
mkdocs-jupyter) in strict mode: a broken link, a missing reference or a notebook that cannot be
rendered fails the build.

    .venv/bin/python scripts/docs.py            # build into build/site/
    .venv/bin/python scripts/docs.py --serve    # build, then serve on http://127.0.0.1:8000

Why MkDocs: the pages are Markdown already (``docs/*.md``), mkdocstrings reads the API reference
from the docstrings without importing the optional extras, and mkdocs-jupyter renders notebooks
with their outputs. The site's sources are staged in ``build/docs_src/`` (never edited by hand):

* ``index.md`` — the README, its links rewritten for the site;
* every page of ``docs/`` and the figures they show;
* ``api/`` — one page per public name of ``sculpting`` (``sculpting.__all__``) and per adapter,
  generated from the docstrings;
* ``notebooks/`` — the ten notebooks **with their outputs**: the copies the notebook tests executed
  at their smoke settings (``test-artifacts/notebooks/``), else the reproduction's executed copies
  (``figures/<name>/<name>.ipynb``); missing both, the notebook tests are run first to make them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "build" / "docs_src"
SITE = ROOT / "build" / "site"
EXECUTED = ROOT / "test-artifacts" / "notebooks"
ALLOW_UNEXECUTED = False

#: the documentation pages in reading order: (section, [(title, file)])
NAV = [
    ("Getting started", [("Using the API", "usage.md"), ("Your own models", "own_models.md")]),
    (
        "Concepts",
        [
            ("The sculpting algebra", "algebra.md"),
            ("Guidance", "guidance.md"),
            ("Sequential Monte Carlo", "smc.md"),
            ("Sculpting with no classifier", "classifier_free.md"),
            ("Diffusion models", "diffusion.md"),
        ],
    ),
    ("Domains", [("2-D grid", "grid.md"), ("Colored MNIST", "mnist.md"), ("Fragment molecules", "molecules.md")]),
    ("Training on a CPU, a GPU or several", [("Training, data, shipped models", "training.md")]),
    ("Results and benchmarks", [("Results", "results.md"), ("Benchmarks", "benchmarks.md")]),
    ("Contributing", [("Architecture", "architecture.md"), ("Testing", "testing.md"), ("All pages", "pages.md")]),
]

#: modules documented whole (besides the public names): the adapters to other libraries
MODULES = ["sculpting.adapters.torchgfn", "sculpting.adapters.diffusers", "sculpting.protocols"]


def notebooks() -> list[str]:
    return sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def executed_copy(name: str) -> Path | None:
    for p in (EXECUTED / f"{name}.ipynb", ROOT / "figures" / name / f"{name}.ipynb"):
        if p.is_file():
            return p
    return None


def api_pages() -> list[tuple[str, str]]:
    """(title, file) of the API pages, written under SRC/api/."""
    import sculpting as sc

    (SRC / "api").mkdir(parents=True)
    pages = []
    for name in sc.__all__:
        obj = getattr(sc, name)
        where = f"{obj.__module__}.{obj.__qualname__}" if hasattr(obj, "__qualname__") else f"sculpting.{name}"
        kind = "class" if inspect.isclass(obj) else "function"
        text = f"# sc.{name}\n\n`sculpting.{name}` ({kind}, defined in `{obj.__module__}`)\n\n::: {where}\n"
        (SRC / "api" / f"{name}.md").write_text(text)
        pages.append((f"sc.{name}", f"api/{name}.md"))
    for mod in MODULES:
        (SRC / "api" / f"{mod}.md").write_text(f"# {mod}\n\n::: {mod}\n")
        pages.append((mod, f"api/{mod}.md"))
    index = ["# API reference", "", "Every public name of `sculpting` (`dir(sculpting)`) and the adapters:", ""]
    index += [f"* [{title}]({Path(f).name})" for title, f in pages]
    (SRC / "api" / "index.md").write_text("\n".join(index) + "\n")
    return [("Overview", "api/index.md"), *pages]


def stage() -> dict:
    """Write build/docs_src and return the MkDocs config."""
    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    for p in (ROOT / "docs").glob("*.md"):  # docs/README.md (the index of the pages) becomes pages.md
        text = p.read_text().replace("](../figures/", "](figures/").replace("](README.md)", "](pages.md)")
        (SRC / ("pages.md" if p.name == "README.md" else p.name)).write_text(text)
    readme = (ROOT / "README.md").read_text()
    readme = re.sub(r"\]\(docs/", "](", readme).replace("](README.md)", "](pages.md)")
    for f in ("CITATION.cff", "LICENSE", "CHANGELOG.md"):
        shutil.copy(ROOT / f, SRC / f)
    (SRC / "index.md").write_text(readme)
    for png in re.findall(r"\]\((figures/[^)]+\.png)\)", "\n".join(p.read_text() for p in SRC.glob("*.md"))):
        (SRC / png).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / png, SRC / png)
    (SRC / "notebooks").mkdir()
    nav_notebooks = []
    for name in notebooks():
        src = executed_copy(name)
        if src is None and ALLOW_UNEXECUTED:
            src = ROOT / "notebooks" / f"{name}.ipynb"
        if src is None:
            raise SystemExit(
                f"no executed copy of {name}: run the notebook tests (scripts/docs.py does when none exists)"
            )
        shutil.copy(src, SRC / "notebooks" / f"{name}.ipynb")
        nav_notebooks.append({name: f"notebooks/{name}.ipynb"})
    nav = [{"Home": "index.md"}]
    nav += [{section: [{t: f} for t, f in pages]} for section, pages in NAV]
    nav += [{"Notebooks (smoke settings)": nav_notebooks}, {"API reference": [{t: f} for t, f in api_pages()]}]
    nav += [{"Release notes": "CHANGELOG.md"}]
    return {
        "site_name": "sculpting",
        "site_description": "Compositional sculpting of iterative generative models",
        "docs_dir": str(SRC),
        "site_dir": str(SITE),
        "strict": True,
        "use_directory_urls": False,
        "theme": {"name": "material", "features": ["navigation.sections", "content.code.copy"]},
        "nav": nav,
        "markdown_extensions": ["tables", "admonition", "pymdownx.superfences", "toc"],
        "plugins": [
            "search",
            {"mkdocs-jupyter": {"execute": False, "include_source": True, "ignore_h1_titles": True}},
            {
                "mkdocstrings": {
                    "handlers": {
                        "python": {
                            "paths": [str(ROOT)],
                            "options": {
                                "show_source": False,
                                "show_root_heading": True,
                                "show_signature_annotations": True,
                                "separate_signature": True,
                                "docstring_style": "google",
                                # the docstrings give types in prose; a parameter without an annotation is fine
                                "docstring_options": {"warn_missing_types": False},
                                "members_order": "source",
                                "filters": ["!^_"],
                            },
                        }
                    }
                }
            },
        ],
        "validation": {"links": {"not_found": "warn", "anchors": "warn", "absolute_links": "warn"}},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the documentation site (strict).")
    ap.add_argument("--serve", action="store_true", help="serve the built site on http://127.0.0.1:8000")
    ap.add_argument(
        "--allow-unexecuted", action="store_true", help="a quick preview: notebooks without outputs where no copy ran"
    )
    args = ap.parse_args(argv)
    global ALLOW_UNEXECUTED
    ALLOW_UNEXECUTED = args.allow_unexecuted
    missing = [n for n in notebooks() if executed_copy(n) is None]
    if missing and not ALLOW_UNEXECUTED:  # executed at their smoke settings by the notebook tests, which keep a copy
        print(f"executing {len(missing)} notebook(s) at their smoke settings (the notebook tests) …", flush=True)
        subprocess.run([sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "test_notebooks.py")], check=True)
    config = stage()
    cfg = ROOT / "build" / "mkdocs.yml"
    cfg.write_text(json.dumps(config, indent=1))  # JSON is YAML
    mkdocs = [sys.executable, "-m", "mkdocs"]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's note on a future MkDocs, not about this site
    subprocess.run([*mkdocs, "build", "--strict", "--config-file", str(cfg)], check=True, env=env)
    print(f"site: {SITE / 'index.html'}")
    if args.serve:
        subprocess.run([*mkdocs, "serve", "--strict", "--config-file", str(cfg)], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
