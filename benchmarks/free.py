"""Sculpting with no classifier (docs/classifier_free.md), measured: one table per family.

    .venv/bin/python benchmarks/free.py                      # grid, molecules, mnist
    .venv/bin/python benchmarks/free.py --only grid --quick

* ``grid``: the shipped bases, every composition of notebook 03. The path composition sampled by
  SMC (``sc.compose(bases, None)`` gives the exact DP oracle on the grid; the path twist is asked
  for with ``twist="paths"``), pooled draws at N = 16 / 64 / 256 particles, against (a) its own
  target, estimated independently by importance sampling of backward trajectories per terminal
  state (the uniform backward policy, ``--backward`` paths per state), and (b) the x-space target
  (the exact DP of the bases' terminal laws); beside the i.i.d. floor of the same number of draws.
* ``molecules``: SEH⊗SA and y=123 at β = 32 with no classifier: molecules per second relative to
  sampling one base in the same process, mean ESS / N per step, the unique fraction.
* ``mnist``: notebook 06's compositions at γ = 1: the TV of the judged (digit, colour) types to the
  exact type masses for the path composition (SMC, N particles) and the learned classifier (guided
  EDM and SMC), seeds ± s.e., and the path SMC's mean ESS / N.

Results are written to ``benchmarks/free_results.md`` (the tables) and ``benchmarks/free.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sculpting as sc  # noqa: E402
from sculpting.gflownet.paths import PathComposition, path_smc_runs  # noqa: E402
from sculpting.gflownet.policy import policy_table  # noqa: E402


def _table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def _mean_se(xs):
    m = statistics.fmean(xs)
    return m, (statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan"))


def _floor(p: torch.Tensor, n: int) -> float:
    """E[L1] of the empirical law of n i.i.d. draws from p: Σ_x sqrt(2 p (1 − p) / (π n))."""
    return float((2 * p * (1 - p) / (math.pi * n)).sqrt().sum())


# ------------------------------------------------------------------ grid
def backward_path_target(model, per_state: int, generator) -> torch.Tensor:
    """``[N]`` Π(x), normalised, of a grid path composition by importance sampling: for each
    terminal x, ``per_state`` backward trajectories from the uniform backward policy B (each step
    removes one unit of a positive coordinate), Π(x) ≈ mean over them of Π̃(τ) / B(τ | x)."""
    env, comp = model.env, model.composition
    tables = torch.stack([policy_table(env, b).double() for b in model.bases])  # [m, S, A]
    states = env.all_states()
    x = states.repeat_interleave(per_state, 0)  # [S·M, D]
    stop = env.stop_action
    ell = tables[:, env.index(x), stop].T.clone()  # [S·M, m]: the stop at x
    log_b = torch.zeros(len(x), dtype=torch.float64)
    s = x.clone()
    while bool((s > 0).any()):
        live = (s > 0).any(1)
        cur = s[live]
        n_par = (cur > 0).sum(1)
        log_b[live] -= n_par.double().log()
        pick = torch.multinomial((cur > 0).float(), 1, generator=generator).squeeze(1)
        parent = cur.clone()
        parent[torch.arange(len(cur)), pick] -= 1
        ell[live] += tables[:, env.index(parent), pick].T  # the forward action parent → cur
        s[live] = parent
    lp = comp.log_priors(torch.float64)
    obs = [y - 1 for y in comp.observations]
    log_pi = torch.logsumexp(lp[0] + ell, 1)
    for j, y in enumerate(obs):
        log_pi = log_pi + lp[j, y] + ell[:, y] - torch.logsumexp(lp[j] + ell, 1)
    w = (log_pi - log_b).reshape(len(states), per_state)
    est = torch.logsumexp(w, 1) - math.log(per_state)
    return (est - torch.logsumexp(est, 0)).exp()


def grid_section(args, results):
    from sculpting.domains.grid.experiments import three_base_compositions, two_base_compositions

    print(f"## Grid: the path composition by SMC (twist='paths'), {args.grid_samples} pooled draws per N\n")
    print(
        "L1 of the pooled weighted particles (each run's normalised weights / runs) to (a) its own "
        f"target (backward importance sampling, {args.backward} paths per state) and (b) the x-space "
        "target (exact DP); floor: E L1 of as many i.i.d. draws from (a); gap: L1((a), (b)).\n"
    )
    rows, out = [], []
    sets = {"shubert_sigmoid": (two_base_compositions([0.05, 0.5, 0.95]), 2), "circles": (three_base_compositions(), 3)}
    for set_name, (comps, _) in sets.items():
        bases, _clf = sc.load_pretrained(f"grid/{set_name}")
        env = bases[0].env
        for c in comps if not args.quick else comps[:2]:
            model = PathComposition(bases, c)
            own = backward_path_target(model, args.backward, torch.Generator().manual_seed(0))
            xs = sc.target_distribution(bases, c).double().exp()
            gap = float((own - xs).abs().sum())
            cell = {"set": set_name, "composition": c.label(), "gap": gap}
            line = [set_name, c.label(), f"{gap:.3f}"]
            for n in (16, 64, 256):
                runs = args.grid_samples // n
                t0 = time.perf_counter()
                tracker, x, _ = path_smc_runs(model, n, runs, torch.Generator().manual_seed(1))
                w = torch.softmax(tracker.log_w, -1).reshape(-1) / runs  # the pooled weighted particles
                h = torch.zeros(env.n_states, dtype=torch.float64).index_add_(0, env.index(x), w.double())
                l1_own, l1_x = float((h - own).abs().sum()), float((h - xs).abs().sum())
                ess = statistics.fmean(float(e.mean()) / n for e in tracker.ess)
                cell[f"N={n}"] = {
                    "l1_own": l1_own,
                    "l1_x": l1_x,
                    "floor": _floor(own, len(x)),
                    "ess": ess,
                    "s": time.perf_counter() - t0,
                }
                line.append(f"{l1_own:.3f} / {l1_x:.3f} ({_floor(own, len(x)):.3f}; ESS {ess:.2f})")
            rows.append(line)
            out.append(cell)
            print(" ", line, file=sys.stderr, flush=True)
    _table(["set", "composition", "gap (a)–(b)", "N = 16", "N = 64", "N = 256"], rows)
    results["grid"] = out


# ------------------------------------------------------------------ molecules
def molecules_section(args, results):
    from sculpting.domains.molecules.io import load_molecule_models

    m = load_molecule_models()
    print(f"## Molecules: no classifier, β = 32, {args.mol_n} molecules per run, seeds {args.seeds}\n")
    rows, out = [], []
    for name, keys, op in (("SEH⊗SA", ["seh", "sa"], "harmonic"), ("y=123", ["seh", "sa", "qed"], "y=123")):
        bases = [m["bases"][k] for k in keys]
        model = sc.compose(bases, None, op, beta=32.0)
        ratios, esses, uniq = [], [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            base_x = sc.sample(bases[0].at_beta(32.0), args.mol_n, seed=seed)
            t_base = time.perf_counter() - t0
            t0 = time.perf_counter()
            run = sc.smc(model, args.mol_n, seed=seed)
            x = run.draw(args.mol_n, torch.Generator().manual_seed(seed))
            t_path = time.perf_counter() - t0
            ratios.append(t_base / t_path)
            esses.append(statistics.fmean(run.ess) / args.mol_n)
            smiles = [s for s in model.env.to_smiles(x) if s] if hasattr(model.env, "to_smiles") else None
            if smiles is None:
                mols = model.env.to_mols(x)
                from rdkit import Chem

                smiles = [Chem.MolToSmiles(mm) for mm in mols if mm is not None]
            uniq.append(len(set(smiles)) / max(1, len(smiles)))
            del base_x
        cell = {"composition": name, "rate_ratio": ratios, "ess": esses, "unique": uniq}
        out.append(cell)
        f = lambda xs: "{:.2f} ± {:.2f}".format(*_mean_se(xs))  # noqa: E731
        rows.append([name, f(ratios), f(esses), f(uniq)])
    _table(["composition", "molecules/s ÷ one base's", "mean ESS / N", "unique fraction"], rows)
    results["molecules"] = out


# ------------------------------------------------------------------ mnist
def mnist_section(args, results):
    from sculpting.domains.mnist.experiments import COMPOSITIONS, composition_model, exact_masses, judge_samples
    from sculpting.domains.mnist.experiments import support_of
    from sculpting.domains.mnist.io import load_mnist_models

    models = load_mnist_models()
    B, learned, judge = models["bases"], models["classifiers"], models["judge"].eval()
    none = {"M1_M2": None, "MN": None}
    n, N = args.mnist_samples, args.mnist_particles
    print(
        f"## MNIST: TV to the exact type masses at γ = 1, {n} samples, seeds {args.seeds}; path and learned "
        f"SMC: N = {N}, {args.mnist_steps} steps; learned guided: EDM 50 steps\n"
    )
    rows, out = [], []
    names = list(COMPOSITIONS) if not args.quick else ["M1⊗M2"]
    for name in names:
        masses, support = exact_masses(name), support_of(name)
        cell = {"composition": name}
        for label, clfs, kw in (
            ("path SMC", none, {"sampler": "smc", "particles": N, "steps": args.mnist_steps}),
            ("learned guided", learned, {"sampler": "edm", "steps": 50}),
            ("learned SMC", learned, {"sampler": "smc", "particles": N, "steps": args.mnist_steps}),
        ):
            model = composition_model(B, clfs, name)
            tvs = []
            for seed in args.seeds:
                x = sc.sample(model, n, seed=seed, **kw)
                tvs.append(judge_samples(judge, x, support, masses)["tv"])
            cell[label] = tvs
            print(" ", name, label, [round(t, 3) for t in tvs], file=sys.stderr, flush=True)
        run = sc.smc(composition_model(B, none, name), N, seed=0, steps=args.mnist_steps)
        cell["path ess"] = statistics.fmean(run.ess) / N
        out.append(cell)
        f = lambda xs: "{:.3f} ± {:.3f}".format(*_mean_se(xs))  # noqa: E731
        rows.append(
            [name, f(cell["path SMC"]), f(cell["learned guided"]), f(cell["learned SMC"]), f"{cell['path ess']:.2f}"]
        )
    _table(["composition", "path SMC (no classifier)", "learned guided", "learned SMC", "path mean ESS / N"], rows)
    results["mnist"] = out


# ------------------------------------------------------------------ mnist: the sampler's own error
def _weighted_masses(keys: list, log_w: torch.Tensor) -> tuple[dict, float]:
    """({type: self-normalised importance mass}, Kish ESS) of judged ``keys`` with ``log_w``."""
    w = torch.softmax(log_w.double(), 0)
    out = {}
    for k, wk in zip(keys, w.tolist()):
        out[k] = out.get(k, 0.0) + wk
    return out, float(1.0 / (w**2).sum())


def _tv_floor(masses: dict, n: int, reps: int = 4000, seed: int = 0) -> float:
    """E[TV] between the types of n i.i.d. draws from ``masses`` and the masses (simulated)."""
    keys = list(masses)
    p = torch.tensor([masses[k] for k in keys], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    counts = torch.stack(
        [torch.bincount(torch.multinomial(p, n, True, generator=g), minlength=len(p)) for _ in range(reps)]
    )
    return float(0.5 * (counts.double() / n - p).abs().sum(1).mean())


def mnist_own_section(args, results):
    """(iv): the path composition's own type masses, importance-weighted from the bases' own chains
    (the slot-1 mixture, every base's path log-likelihood kept), against which the path SMC's
    samples are measured: that isolates the sampler's error from the bases' disagreement."""
    from sculpting.diffusion.paths import mixture_paths
    from sculpting.domains.mnist.experiments import COMPOSITIONS, R, composition_model, exact_masses
    from sculpting.domains.mnist.io import load_mnist_models
    from sculpting.domains.mnist.types import type_tv

    models = load_mnist_models()
    B, judge = models["bases"], models["judge"].eval()
    none = {"M1_M2": None, "MN": None}
    n, N, K = args.mnist_samples, args.mnist_particles, args.mnist_own_paths
    print(
        f"## MNIST: the path composition's error split (iv): TV of its SMC samples ({n} per seed, N = {N}, "
        f"{args.mnist_steps} steps, seeds {args.seeds}) to its *own* type masses (importance-weighted from "
        f"{K} chains of the bases' slot-1 mixture) and the TV of those own masses to the exact ones\n"
    )

    def keys_of(x):
        return [f"{'red' if c == R else 'green'} {d}" for d, c in judge.predict(x).tolist()]

    rows, out, cache = [], [], {}
    names = list(COMPOSITIONS) if not args.quick else ["M1⊗M2"]
    for name in names:
        model = composition_model(B, none, name)
        exact = exact_masses(name)
        key = (COMPOSITIONS[name][0], tuple(model.composition.priors[0]))
        if key not in cache:  # chains of one slot-1 mixture serve every composition with that prior
            t0 = time.perf_counter()
            x, ell = mixture_paths(model, K, torch.Generator().manual_seed(10_000), steps=args.mnist_steps)
            cache[key] = (keys_of(x), ell, time.perf_counter() - t0)
            print(" ", name, f"{K} mixture chains in {cache[key][2]:.0f} s", file=sys.stderr, flush=True)
        keys, ell, _ = cache[key]
        own, ess = _weighted_masses(keys, model.composition.path_log_weights(ell, model.gamma))
        to_own, to_exact = [], []
        for seed in args.seeds:
            x = sc.sample(model, n, seed=seed, sampler="smc", particles=N, steps=args.mnist_steps)
            counts = {}
            for k in keys_of(x):
                counts[k] = counts.get(k, 0) + 1
            to_own.append(type_tv(counts, own))
            to_exact.append(type_tv(counts, exact))
        floor = _tv_floor(own, n)
        bases_part = 0.5 * sum(abs(own.get(k, 0.0) - exact.get(k, 0.0)) for k in set(own) | set(exact))
        cell = {
            "composition": name,
            "own_masses": own,
            "is_ess": ess,
            "tv_to_own": to_own,
            "tv_to_exact": to_exact,
            "floor": floor,
            "own_to_exact": bases_part,
        }
        out.append(cell)
        print(" ", name, cell["tv_to_own"], f"floor {floor:.3f}", f"own→exact {bases_part:.3f}", file=sys.stderr)
        f = lambda xs: "{:.3f} ± {:.3f}".format(*_mean_se(xs))  # noqa: E731
        rows.append([name, f(to_own), f"{floor:.3f}", f"{bases_part:.3f}", f"{ess:.0f} / {K}", f(to_exact)])
    _table(
        [
            "composition",
            "(iv) samples → own masses",
            f"i.i.d. floor ({n} draws)",
            "own masses → exact (the bases)",
            "IS ESS",
            "(i) samples → exact",
        ],
        rows,
    )
    results["mnist_own"] = out


# ------------------------------------------------------------------ molecules: tables against the own target
def _cells(env, states, names):
    """(cell index per valid molecule ``[k]``, mask of valid draws ``[n]``, cell names) of the
    high/low table over ``names`` (thresholds of sculpting.domains.molecules.metrics)."""
    import itertools

    from sculpting.domains.molecules.experiments import reward_table
    from sculpting.domains.molecules.metrics import THRESHOLDS

    mols = env.to_mols(states)
    valid = torch.tensor([m is not None for m in mols])
    r = reward_table([m for m in mols if m is not None], names)
    idx = torch.zeros(int(valid.sum()), dtype=torch.long)
    for k in names:
        idx = idx * 2 + torch.as_tensor(r[k] < THRESHOLDS[k], dtype=torch.long)  # 0: high
    cells = [
        " ".join(f"{k}{'+' if s else '-'}" for k, s in zip(names, signs))
        for signs in itertools.product((True, False), repeat=len(names))
    ]
    return idx, valid, cells


def _wald(counts: torch.Tensor, p_t: torch.Tensor, cov_t: torch.Tensor, ess: float) -> tuple[float, float]:
    """(statistic, p-value) of "the sample's cell frequencies are draws of the target p_t", the
    target itself estimated (effective size ``ess``) with covariance ``cov_t``: d = f − p_t,
    X² = dᵀ (Σ_s + Σ_t)⁺ d with Σ_s = (diag p − p pᵀ) / n at the pooled p = (n f + ess p_t) / (n + ess)
    (so a cell the target estimate missed still counts), df = cells − 1: a χ² test that counts the
    noise of both sides."""
    from scipy.stats import chi2

    n = float(counts.sum())
    f = counts.double() / n
    pool = (n * f + ess * p_t) / (n + ess)
    cov_s = (torch.diag(pool) - torch.outer(pool, pool)) / n
    d = f - p_t
    x2 = float(d @ torch.linalg.pinv(cov_s + cov_t) @ d)
    df = len(p_t) - 1
    return x2, float(chi2.sf(x2, df))


def molecule_tables_section(args, results):
    from sculpting.domains.molecules.io import load_molecule_models
    from sculpting.gflownet.paths import mixture_paths

    m = load_molecule_models()
    n, K = args.mol_table_n, args.mol_own_paths
    print(
        f"## Molecules: high/low tables of {n} path-SMC molecules (N = {args.mol_particles}) against the path "
        f"composition's own target (importance-weighted from {K} chains of the bases' mixture), β = 32, seeds "
        f"{args.seeds}\n"
    )
    rows, out = [], []
    for name, keys, op in (("SEH⊗SA", ["seh", "sa"], "harmonic"), ("y=123", ["seh", "sa", "qed"], "y=123")):
        model = sc.compose([m["bases"][k] for k in keys], None, op, beta=32.0)
        t0 = time.perf_counter()
        x, ell = mixture_paths(model, K, torch.Generator().manual_seed(10_000))
        idx, valid, cells = _cells(model.env, x, keys)
        log_w = model.composition.path_log_weights(ell)[valid]
        w = torch.softmax(log_w, 0)
        onehot = torch.nn.functional.one_hot(idx, len(cells)).double()
        p_t = w @ onehot
        dev = onehot - p_t
        cov_t = (dev * (w**2)[:, None]).T @ dev
        ess = float(1.0 / (w**2).sum())
        print(" ", name, f"{K} mixture chains in {time.perf_counter() - t0:.0f} s, IS ESS {ess:.0f}", file=sys.stderr)
        tests = []
        for seed in args.seeds:
            xs = sc.sample(model, n, seed=seed, sampler="smc", particles=args.mol_particles)
            sidx, _, _ = _cells(model.env, xs, keys)
            counts = torch.bincount(sidx, minlength=len(cells))
            x2, pval = _wald(counts, p_t, cov_t, ess)
            tests.append({"seed": seed, "counts": counts.tolist(), "chi2": x2, "p": pval})
            print(" ", name, seed, f"χ² {x2:.2f} p {pval:.3f}", file=sys.stderr, flush=True)
        freq = torch.tensor([t["counts"] for t in tests]).double()
        freq = 100 * freq / freq.sum(1, keepdim=True)
        cell = {"composition": name, "cells": cells, "target_pct": (100 * p_t).tolist(), "is_ess": ess, "tests": tests}
        out.append(cell)
        table = ", ".join(
            f"{c} {100 * float(p_t[i]):.1f} / {float(freq[:, i].mean()):.1f}" for i, c in enumerate(cells)
        )
        rows.append([name, table, f"{ess:.0f} / {K}", ", ".join(f"{t['chi2']:.1f} (p {t['p']:.2f})" for t in tests)])
    _table(["composition", "cell: own target % / SMC % (mean of seeds)", "IS ESS", "χ² (p), per seed"], rows)
    results["molecule_tables"] = out


# ------------------------------------------------------------------ mnist: (iii) the data oracle
def mnist_oracle_section(args, results):
    """(iii): the bases guided by the data oracle (the exact classifier of the bases' finite training
    sets, ``sc.data_oracle``) and the oracle guiding the data's own empirical scores, at γ = 1 with
    EDM 50 steps: what is left once the classifier's error is removed."""
    from sculpting.domains.mnist.experiments import COMPOSITIONS
    from sculpting.domains.mnist.io import load_mnist_models
    from sculpting.domains.mnist.oracle import decompose, oracle_classifiers

    models = load_mnist_models()
    oracles = oracle_classifiers(models)
    n = args.mnist_samples
    names = list(COMPOSITIONS) if not args.quick else ["M1⊗M2"]
    print(f"## MNIST (iii): the data oracle at γ = 1, EDM 50 steps, {n} samples, seeds {args.seeds}\n")
    per = {name: {"oracle": [], "data": []} for name in names}
    for seed in args.seeds:
        for row in decompose(models, oracles, n=n, seed=seed, steps=50, names=names, which=("oracle", "data")):
            per[row["composition"]]["oracle"].append(row["tv_oracle"])
            per[row["composition"]]["data"].append(row["tv_data"])
        print("  seed", seed, "done", file=sys.stderr, flush=True)
    f = lambda xs: "{:.3f} ± {:.3f}".format(*_mean_se(xs))  # noqa: E731
    rows = [[name, f(v["oracle"]), f(v["data"])] for name, v in per.items()]
    _table(["composition", "bases guided by the data oracle", "data's own scores guided by it"], rows)
    results["mnist_oracle"] = per


# ------------------------------------------------------------------ the training it saves
def savings_section(args, results):
    """The classifier fits the shipped compositions need, as their builders timed them (metadata
    beside the weights: ``train_time_s``, MNIST's distillation pools ``distill_time_s``)."""
    rows, out = [], []
    for domain in ("grid", "mnist", "molecules"):
        folder = ROOT / "sculpting" / "domains" / domain / "pretrained"
        for meta in sorted(folder.glob("classifier_*.json")):
            d = json.loads(meta.read_text())
            secs = float(d.get("train_time_s", 0.0)) + float(d.get("distill_time_s", 0.0))
            cmd = d.get("command", "notebook 02" if domain == "grid" else "")
            out.append({"domain": domain, "classifier": meta.stem, "seconds": secs, "command": cmd})
            rows.append([domain, meta.stem, f"{secs / 60:.1f}", f"`{cmd}`" if cmd else ""])
    total = sum(o["seconds"] for o in out)
    rows.append(["all", "", f"**{total / 60:.0f}**", ""])
    print("## The classifier training it saves: the shipped classifiers' fits, as their builders timed them\n")
    _table(["domain", "classifier", "minutes", "built by"], rows)
    results["savings"] = out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=list(SECTIONS), action="append")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--grid-samples", type=int, default=16384)
    p.add_argument("--backward", type=int, default=256)
    p.add_argument("--mol-n", type=int, default=64)
    p.add_argument("--mnist-samples", type=int, default=128)
    p.add_argument("--mnist-particles", type=int, default=64)
    p.add_argument("--mnist-steps", type=int, default=100)
    p.add_argument("--mnist-own-paths", type=int, default=1024)
    p.add_argument("--mol-table-n", type=int, default=1000)
    p.add_argument("--mol-particles", type=int, default=64)
    p.add_argument("--mol-own-paths", type=int, default=32768)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "free.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    path = Path(a.json)
    results = json.loads(path.read_text()) if path.exists() and a.only else {}  # --only adds to what is there
    results["args"] = vars(a)
    for name in a.only or list(SECTIONS):
        SECTIONS[name](a, results)
    path.write_text(json.dumps(results, indent=1))


SECTIONS = {
    "grid": grid_section,
    "molecules": molecules_section,
    "mnist": mnist_section,
    "mnist-own": mnist_own_section,
    "mnist-oracle": mnist_oracle_section,
    "molecule-tables": molecule_tables_section,
    "savings": savings_section,
}

if __name__ == "__main__":
    main()
