"""One-command reproduction: run the ten notebooks in order with papermill and gather a summary.

    .venv/bin/python -m sculpting.lab.reproduce [--only 03 06] [--force] [--root figures] [--smoke]

Each notebook ``NN_name`` runs at its CPU-scale defaults with ``out_dir = <root>/NN_name``; the
executed notebook, its figures and ``metrics.json`` land there. Resumable: a notebook is skipped
when its ``metrics.json`` is newer than its inputs (the notebook file and the ``sculpting``
package sources) unless ``--force``. Afterwards ``<root>/summary.md`` gathers the headline numbers
(grid L1 per operation, judge support rates, molecule tables) from whatever metrics exist.
``--smoke`` runs the tests' tiny settings (minutes, numbers meaningless).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = (
    "01_grid_base_gflownets",
    "02_grid_classifiers",
    "03_grid_sculpting",
    "04_mnist_base_diffusion",
    "05_mnist_classifiers",
    "06_mnist_sculpting",
    "07_molecule_base_gflownets",
    "08_molecule_classifiers",
    "09_molecule_sculpting",
    "10_sculpt_your_own",
)
SMOKE = {
    "01_grid_base_gflownets": {"horizon": 8, "steps": 30, "batch_size": 16},
    "02_grid_classifiers": {"steps": 30, "batch_per_base": 8, "warmup_steps": 10},
    "03_grid_sculpting": {"latency_repeats": 2, "free_samples": 512},
    "04_mnist_base_diffusion": {"preset": "smoke", "steps": 20, "batch_size": 8, "sample_steps": 10, "n_samples": 8},
    "05_mnist_classifiers": {
        "judge_epochs": 1,
        "pool_size": 8,
        "pool_steps": 6,
        "updates": 6,
        "batch": 4,
        "distill_updates": 2,
    },
    "06_mnist_sculpting": {"n_samples": 4, "sample_steps": 6, "free_particles": 4, "free_steps": 6},
    "07_molecule_base_gflownets": {
        "steps": 3,
        "preset": "smoke",
        "max_frags": 3,
        "batch_size": 8,
        "betas": [32.0],
        "n_samples": 4,
    },
    "08_molecule_classifiers": {
        "steps": 3,
        "batch_per_base": 4,
        "warmup_steps": 1,
        "width": 16,
        "n_layers": 1,
        "n_eval": 4,
        "eval_betas": [32.0],
    },
    "09_molecule_sculpting": {
        "n_molecules": 4,
        "batch_size": 4,
        "two_way": [["harmonic", 0.5]],
        "three_way": ["123"],
        "n_contrast": 4,
        "contrasts": [["contrast", 0.05]],
        "free_particles": 4,
    },
    "10_sculpt_your_own": {
        "grid_size": 8,
        "grid_steps": 40,
        "classifier_steps": 20,
        "bit_length": 4,
        "bit_steps": 30,
        "torchgfn_steps": 10,
        "gaussian_samples": 200,
        "sample_steps": 20,
        "unet_steps": 30,
        "diffusion_updates": 20,
        "diffusion_pool": 32,
        "judged_samples": 16,
        "inference_steps": 5,
        "free_samples": 256,
        "free_particles": 16,
    },
}


RUN_KEY = "_run_key"


def run_key(name: str, params: dict | None) -> str:
    """SHA-256 of what a notebook's results depend on: the notebook, its parameters and the
    package sources (contents, not file times)."""
    h = hashlib.sha256(json.dumps({"notebook": name, "params": params or {}}, sort_keys=True).encode())
    for f in [ROOT / "notebooks" / f"{name}.ipynb", *sorted((ROOT / "sculpting").rglob("*.py"))]:
        if f.exists():
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def is_up_to_date(name: str, root: Path, params: dict | None = None) -> bool:
    """True when ``root/name/metrics.json`` records the current :func:`run_key`."""
    m = root / name / "metrics.json"
    try:
        return json.loads(m.read_text()).get(RUN_KEY) == run_key(name, params)
    except (OSError, ValueError, AttributeError):
        return False


def stamp(name: str, root: Path, params: dict | None) -> None:
    """Record the run key in the notebook's metrics.json (written atomically)."""
    m = root / name / "metrics.json"
    if m.is_file():
        data = json.loads(m.read_text())
        data[RUN_KEY] = run_key(name, params)
        tmp = m.with_name(m.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, m)


def run_notebook(name: str, root: Path, params: dict | None = None) -> float:
    import papermill

    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    papermill.execute_notebook(
        str(ROOT / "notebooks" / f"{name}.ipynb"),
        str(out / f"{name}.ipynb"),
        parameters={"out_dir": str(out), **(params or {})},
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=True,
        # the kernel's own start-up log (a TCP-transport notice) is noise here
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    return time.perf_counter() - t0


def _load(root: Path, name: str):
    p = root / name / "metrics.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _f(v, fmt=".3f"):
    return "–" if v is None else (format(v, fmt) if isinstance(v, (int, float)) else str(v))


def _line(what: str, result: str, record: dict) -> str:
    """``- what: result, N s`` (the record's training time)."""
    return f"- {what}: {result}, {_f(record.get('train_time_s'), '.0f')} s"


def _trained_model_lines(root: Path) -> list[str]:
    """One line per model trained by notebooks 01, 02, 04, 05, 07, 08 (whichever have run)."""
    lines = []
    m = _load(root, "01_grid_base_gflownets")
    for name, v in ((m or {}).get("bases") or {}).items():
        lines.append(_line(f"grid base {name}", f"exact L1 to its reward {_f(v.get('l1_to_reward'), '.4f')}", v))
    m = _load(root, "02_grid_classifiers")
    for pair, v in (m or {}).items():
        rows = v.get("compositions") if isinstance(v, dict) else None
        if rows:
            worst = max(r.get("l1_anchored_learned", 0.0) for r in rows)
            lines.append(
                _line(
                    f"grid classifier {pair}",
                    f"largest exact L1 (anchored guidance) over {len(rows)} compositions {_f(worst, '.4f')}",
                    v,
                )
            )
    m = _load(root, "04_mnist_base_diffusion")
    for name, v in ((m or {}).get("bases") or {}).items():
        rate = _f(100 * v["support_rate"], ".1f") if "support_rate" in v else "–"
        lines.append(_line(f"MNIST base {name}", f"judge support rate {rate}%", v))
    m = _load(root, "05_mnist_classifiers")
    if m:
        lines.append(f"- MNIST judge: held-out accuracy {_f(m.get('judge_heldout_accuracy'), '.3f')}")
        for name, v in (m.get("classifiers") or {}).items():
            lines.append(
                _line(f"MNIST classifier {name}", f"final terminal loss {_f(v.get('final_terminal_loss'))}", v)
            )
    m = _load(root, "07_molecule_base_gflownets")
    for obj, v in ((m or {}).get("models") or {}).items():
        trained = next((v[k] for k in v if k.startswith("β=")), {})
        own = lambda e: (e.get("mean") or {}).get(obj) if isinstance(e, dict) else None
        lines.append(
            _line(
                f"molecule base {obj.upper()}",
                f"mean {obj} reward {_f(own(trained))} (untrained {_f(own(v.get('untrained')))})",
                v,
            )
        )
    m = _load(root, "08_molecule_classifiers")
    for name, v in ((m or {}).get("classifiers") or {}).items():
        acc = v.get("terminal_accuracy")
        acc = ", ".join(f"β={b}: {_f(x)}" for b, x in acc.items()) if isinstance(acc, dict) else _f(acc)
        lines.append(_line(f"molecule classifier {name}", f"which-base accuracy {acc}", v))
    return (["## Models trained by notebooks 01, 02, 04, 05, 07, 08", "", *lines, ""]) if lines else []


def build_summary(root: Path) -> str:
    """Markdown tables of the headline numbers found under ``root``."""
    lines = ["# Reproduction summary", ""]
    m = _load(root, "03_grid_sculpting")
    if m:
        lines += [
            "## Grid: exact L1 to the sculpted target (notebook 03)",
            "",
            "| composition | anchored | paper | anchored + oracle | paper + oracle |",
            "|---|---|---|---|---|",
        ]
        rows = [(f"{op} (α={a})", c) for op, by_a in (m.get("shubert_sigmoid") or {}).items() for a, c in by_a.items()]
        rows += [(f"circles {label}", c) for label, c in (m.get("circles") or {}).items()]
        for label, c in rows:
            lines.append(
                f"| {label} | {_f(c.get('l1_anchored_learned'), '.4f')} | {_f(c.get('l1_paper_learned'), '.4f')} "
                f"| {_f(c.get('l1_anchored_oracle'), '.1e')} | {_f(c.get('l1_paper_oracle'), '.4f')} |"
            )
        lines.append("")
    m = _load(root, "06_mnist_sculpting")
    if m:
        lines += [
            "## Colored MNIST: judge support rates (notebook 06)",
            "",
            "| samples of | γ | support rate |",
            "|---|---|---|",
        ]
        for comp, cells in (m.get("support") or {}).items():
            if "support_rate" in cells:  # a base
                cells = {"base": cells}
            for g, c in cells.items():
                lines.append(f"| {comp} | {g} | {_f(100 * c['support_rate'], '.1f')}% |")
        lines.append("")
    m = _load(root, "09_molecule_sculpting")
    if m:
        lines += [
            f"## Molecules at β = {m.get('beta')} (contrasts also at β = {m.get('contrast_beta')}): % of "
            "molecules per cell ± binomial standard error (notebook 09)",
            "",
            "| set | SEH+ SA+ | SEH+ SA− | SEH− SA+ | SEH− SA− | mean SEH | mean SA | mean QED | diversity |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for k, v in m["sets"].items():
            t, se = v["table_seh_sa"], (m.get("tables_with_se") or {}).get(k)
            cell = lambda c: _f(t[c], ".1f") + (f" ± {se[c][1]:.1f}" if se else "")  # noqa: E731
            lines.append(
                f"| {k} | {cell('seh+ sa+')} | {cell('seh+ sa-')} | {cell('seh- sa+')} | {cell('seh- sa-')} | "
                f"{_f(v['mean']['seh'])} | {_f(v['mean']['sa'])} | {_f(v['mean']['qed'])} | "
                f"{_f(v['diversity'])} |"
            )
        names, d = m["emd"]["names"], m["emd"]["matrix"]
        lines += [
            "",
            "EMD between sample sets:",
            "",
            "| | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        lines += [f"| {a} | " + " | ".join(_f(x, ".2f") for x in row) + " |" for a, row in zip(names, d)]
        lines += [
            "",
            "Checks: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in m.get("checks", {}).items()),
            "",
        ]
    lines += _trained_model_lines(root)
    timing = json.loads((root / "timing.json").read_text()) if (root / "timing.json").is_file() else None
    if timing:
        lines += ["", "## Wall time per notebook", ""]
        for k, v in timing.items():
            v = v if isinstance(v, dict) else {"seconds": v}
            lines.append(
                f"- {k}: {v['seconds'] / 60:.1f} min" + (f" ({v['threads']} threads)" if v.get("threads") else "")
            )
        total = sum(v["seconds"] if isinstance(v, dict) else v for v in timing.values())
        lines.append(f"- in all: {total / 60:.1f} min over {len(timing)} notebooks")
    return "\n".join(lines) + "\n"


def record_timing(path: Path, name: str, entry: dict) -> dict:
    """Merge one notebook's entry into ``path`` (re-read first, so runs of disjoint ``--only``
    sets side by side keep each other's entries) and write it atomically. Returns the merged dict."""
    timing = json.loads(path.read_text()) if path.is_file() else {}
    timing[name] = entry
    timing = {k: timing[k] for k in sorted(timing)}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(timing, indent=2))
    os.replace(tmp, path)
    return timing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--root", type=Path, default=None, help="output folder (default: figures/, or runs/smoke/ with --smoke)"
    )
    ap.add_argument("--only", nargs="*", default=None, help="notebook numbers or names (default: all ten)")
    ap.add_argument("--force", action="store_true", help="rerun notebooks whose outputs are up to date")
    ap.add_argument("--smoke", action="store_true", help="tiny settings (checks the pipeline only)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per notebook (default: each notebook's own, 1; 2 is faster on an idle 2-core machine)",
    )
    args = ap.parse_args(argv)
    if args.root is None:
        args.root = ROOT / ("runs/smoke" if args.smoke else "figures")
    if args.smoke and args.root.resolve() == (ROOT / "figures").resolve():
        raise SystemExit("--smoke never writes into figures/ (the committed results); choose another --root")
    chosen = [n for n in NOTEBOOKS if args.only is None or any(n.startswith(o) for o in args.only)]
    if not chosen:
        raise SystemExit(f"no notebook matches {args.only}; choose from {NOTEBOOKS}")
    args.root.mkdir(parents=True, exist_ok=True)
    timing_path = args.root / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    bar = tqdm(chosen, desc="notebooks", unit="nb")
    for name in bar:
        bar.set_postfix_str(name)
        params = dict(SMOKE[name]) if args.smoke else {}
        if args.threads is not None:
            if args.threads < 1:
                raise SystemExit(f"--threads must be ≥ 1, got {args.threads}")
            params["threads"] = args.threads
        if not args.force and is_up_to_date(name, args.root, params or None):
            tqdm.write(f"{name}: up to date, skipped (use --force to rerun)")
            continue
        dt = run_notebook(name, args.root, params or None)
        stamp(name, args.root, params or None)
        timing = record_timing(timing_path, name, {"seconds": round(dt, 1), "threads": args.threads or 1})
        tqdm.write(f"{name}: {dt:.0f} s")
    (args.root / "summary.md").write_text(build_summary(args.root))
    total = sum(v["seconds"] if isinstance(v, dict) else v for v in timing.values())
    print(f"summary: {args.root / 'summary.md'}; total {total / 60:.1f} min of notebook time")


if __name__ == "__main__":
    main()
