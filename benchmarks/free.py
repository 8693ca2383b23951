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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["grid", "molecules", "mnist"], action="append")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--grid-samples", type=int, default=16384)
    p.add_argument("--backward", type=int, default=256)
    p.add_argument("--mol-n", type=int, default=64)
    p.add_argument("--mnist-samples", type=int, default=128)
    p.add_argument("--mnist-particles", type=int, default=64)
    p.add_argument("--mnist-steps", type=int, default=100)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "free.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    results = {"args": vars(a)}
    for name in a.only or ["grid", "molecules", "mnist"]:
        {"grid": grid_section, "molecules": molecules_section, "mnist": mnist_section}[name](a, results)
    Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
