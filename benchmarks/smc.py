"""Sequential Monte Carlo benchmark (docs/smc.md): one table per family, measured in one run.

    SCULPTING_DATA_DIR=DIR .venv/bin/python benchmarks/smc.py [--sections grid molecules mnist]
        [--grid-samples 65536] [--particles 16 64 256] [--mol-samples 1000] [--seeds 0 1 2]
        [--mnist-samples 512] [--mnist-steps 100] [--device cpu|cuda] [--quick]
    .venv/bin/python benchmarks/smc_figures.py   # figures/smc/*.png from the JSON files it wrote

* ``grid``: the shipped grid bases and classifiers, every composition of notebook 03 (anchored
  form): the L1 of the pooled SMC histogram at N = 16 / 64 / 256 (the same total samples each) to
  the composition the classifier's terminal head defines (exact, by DP), beside the noise floor
  (the mean L1 of as many i.i.d. samples from that target), the guided policy's exact L1 and the
  terminal target's own L1 to the true target. Check: at N = 256, L1 ≤ 2 × floor + 0.005.
* ``molecules``: SEH⊗SA and y=123 at β = 32, amortised proposal, twist from the classifier or
  from the successor head: molecules/s against base sampling in the same process (alternating,
  median of 3), SEH⊗SA with two worker processes, mean ESS, unique fraction, and on three seeds
  the chi-square test of a 1 000-molecule high/low table against the importance-weighted target
  of the same form (base samples re-weighted by the terminal classifier); exact rejection (the
  guided policy, which carries the non-terminal head's bias) beside it on the first seed.
* ``mnist``: notebook 06's compositions at γ = 1: TV of the judged types to the exact type masses,
  guided (EDM, 50 steps) vs SMC (N = 64, ancestral steps on the EDM noise levels), learned classifier and data oracle,
  three seeds, ± s.e. over the seeds.
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

import sculpting as sc


def _table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(flush=True)


def _mean_se(xs):
    m = statistics.fmean(xs)
    return m, (statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan"))


# ---------------------------------------------------------------------------------------- grid
def _floor(log_p, n, draws=50, seed=0):
    p = log_p.exp().double()
    g = torch.Generator().manual_seed(seed)
    return statistics.fmean(
        float(
            (
                torch.bincount(
                    torch.multinomial(p.float(), n, replacement=True, generator=g), minlength=len(p)
                ).double()
                / n
                - p
            )
            .abs()
            .sum()
        )
        for _ in range(draws)
    )


def _noisy_head(clf, scale, seed=0):
    """A copy of ``clf`` whose non-terminal head's weights carry N(0, scale²) noise (its terminal
    head, hence the composition it defines, unchanged)."""
    import copy

    c = copy.deepcopy(clf)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in c.nonterminal_head.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return c


def grid_section(args, results):
    for noise in args.grid_noise:
        _grid_table(args, results, noise)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=float))


def _grid_table(args, results, noise):
    from sculpting.domains.grid.experiments import three_base_compositions, two_base_compositions
    from sculpting.gflownet.smc import terminal_target

    n = args.grid_samples
    what = "shipped classifiers" if noise == 0 else f"shipped classifiers, non-terminal head weights + N(0, {noise:g}²)"
    print(f"## Grid: pooled SMC histogram, {n} samples per cell, anchored form, shipped bases, {what}\n")
    rows, out = [], []
    for pair, comps in (
        ("shubert_sigmoid", two_base_compositions((0.05, 0.5, 0.95))),
        ("circles", three_base_compositions()),
    ):
        bases, clf = sc.load_pretrained(f"grid/{pair}")
        clf = _noisy_head(clf, noise) if noise else clf
        env = bases[0].env
        for c in comps:
            model = sc.compose(bases, clf, c, check=not noise)
            target, _ = terminal_target(model)
            true_l1 = sc.l1_distance(target, sc.target_distribution(bases, c))
            guided = sc.l1_distance(sc.exact_distribution(model), target)
            floor = _floor(target, n)
            cell = {"composition": f"{pair} {c.label()}", "floor": floor, "guided": guided, "terminal_vs_true": true_l1}
            t0 = time.perf_counter()
            for N in args.particles:
                x = sc.sample(model, n, seed=args.seeds[0], sampler="smc", particles=N)
                h = torch.bincount(env.index(x), minlength=env.n_states).double() / n
                cell[f"N={N}"] = sc.l1_distance(h.clamp_min(1e-300).log(), target)
            cell["seconds"] = time.perf_counter() - t0
            top = max(args.particles)
            cell["ok"] = cell[f"N={top}"] <= 2 * floor + 0.005
            out.append(cell)
            rows.append(
                [
                    cell["composition"],
                    *(f"{cell[f'N={N}']:.4f}" for N in args.particles),
                    f"{floor:.4f}",
                    f"{2 * floor + 0.005:.4f}",
                    "yes" if cell["ok"] else "NO",
                    f"{guided:.4f}",
                    f"{true_l1:.4f}",
                    f"{cell['seconds']:.0f}",
                ]
            )
            print(" ", rows[-1], flush=True, file=sys.stderr)
    _table(
        [
            "composition",
            *(f"SMC N={N}" for N in args.particles),
            "floor",
            "2·floor+0.005",
            "within",
            "guided exact",
            "terminal vs true",
            "s",
        ],
        rows,
    )
    print(f"within the bound at N = {max(args.particles)}: {sum(c['ok'] for c in out)} of {len(out)}\n")
    results[f"grid noise={noise:g}"] = out


# ----------------------------------------------------------------------------------- molecules
#: (proposal, twist) of the molecule rows: the successor head proposing every action, or the base
#: proposing and the twist read at the chosen successor only (classifier or head)
MOL_CONFIGS = (("amortised", "classifier"), ("amortised", "head"), ("base", "classifier"), ("base", "head"))


def _table_counts(mols, names):
    from sculpting.domains.molecules.experiments import reward_table
    from sculpting.domains.molecules.metrics import high_low_table

    r = reward_table(mols, names)
    cells = high_low_table(r, names)
    return {k: v * len(mols) / 100.0 for k, v in cells.items()}


def _chi2(counts: dict, probs: dict, ess: float) -> float:
    """Homogeneity test of the sampled table against the importance-weighted table taken at its
    effective sample size (both tables carry sampling noise)."""
    from scipy.stats import chi2_contingency
    import numpy as np

    keys = sorted(set(counts) | set(probs))
    a = np.array([counts.get(k, 0.0) for k in keys])
    b = np.array([probs.get(k, 0.0) / 100.0 * ess for k in keys])
    keep = (a + b) > 0
    return float(chi2_contingency(np.stack([a[keep], b[keep]]))[1])


def molecules_section(args, results):
    from sculpting.domains.molecules.experiments import importance_target_table, sample_molecules
    from sculpting.domains.molecules.io import load_molecule_models
    from sculpting.domains.molecules.classifier_sets import CLASSIFIER_SETS

    torch.set_num_threads(1)
    m = load_molecule_models()
    beta, n = 32.0, args.mol_samples
    print(f"## Molecules: SMC with the amortised proposal, β = {beta:g}, one thread\n")
    speed_rows, chi_rows, out = [], [], {}
    for label, op, set_name in (("SEH⊗SA", "harmonic", "seh_sa"), ("y=123", "y=123", "seh_sa_qed")):
        names = CLASSIFIER_SETS[set_name]
        bases = [m["bases"][k] for k in names]
        clf = m["classifiers"][set_name]
        pol = sc.compose(bases, clf, op, beta=beta, successor_head=m["successor_heads"][set_name])
        anchor = bases[0].at_beta(beta)
        sc.sample(anchor, 64, seed=99)  # warm up
        for proposal, twist in MOL_CONFIGS if "speed" in args.mol_parts else ():
            opts = dict(sampler="smc", particles=args.mol_particles, proposal=proposal, twist=twist)
            sc.sample(pol, 64, seed=99, **opts)
            tb, ts = [], []
            for r in range(3):
                t0 = time.perf_counter()
                sc.sample(anchor, n, seed=r)
                tb.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sc.sample(pol, n, seed=r, **opts)
                ts.append(time.perf_counter() - t0)
            rb, rs = n / statistics.median(tb), n / statistics.median(ts)
            run = sc.smc(pol, args.mol_particles, seed=0, proposal=proposal, twist=twist)
            runs = [sc.smc(pol, args.mol_particles, seed=s, proposal=proposal, twist=twist) for s in range(4)]
            ess = statistics.fmean(statistics.fmean(r.ess) for r in runs)
            x = sc.sample(pol, n, seed=0, **opts)
            uniq = len({tuple(v.tolist()) for v in x}) / n
            cell = {
                "base_per_s": rb,
                "smc_per_s": rs,
                "ratio": rs / rb,
                "mean_ess": ess,
                "ess_fraction": ess / args.mol_particles,
                "unique": uniq,
                "classifier_rows_per_molecule": run.stats["twist_rows"] / args.mol_particles,
            }
            if label == "SEH⊗SA" and twist == "head":  # both proposals
                t0 = time.perf_counter()
                sc.sample(pol, 2 * n, seed=0, workers=2, **opts)
                cell["two_workers_per_s"] = 2 * n / (time.perf_counter() - t0)
            out[f"{label} {proposal} twist={twist}"] = cell
            speed_rows.append(
                [
                    label,
                    f"{proposal} / {twist}",
                    f"{rb:.1f}",
                    f"{rs:.1f}",
                    f"{rs / rb:.2f}",
                    f"{cell.get('two_workers_per_s', float('nan')):.1f}",
                    f"{ess:.1f} / {args.mol_particles}",
                    f"{uniq:.2f}",
                    f"{cell['classifier_rows_per_molecule']:.1f}",
                ]
            )
            print(" ", speed_rows[-1], flush=True, file=sys.stderr)
        if "tables" not in args.mol_parts:
            continue
        # the importance-weighted target of the anchored form: base-b samples re-weighted by h_T(x)
        base_sample = sample_molecules(anchor, args.mol_base_samples, seed=1234, batch_size=256)
        comp = pol.composition
        with torch.no_grad():
            lt = clf.terminal_log_posterior(base_sample["states"], context=beta).double()
        log_pri = comp.log_priors(torch.float64)
        log_h = sum(torch.log_softmax(lt + log_pri[k], 1)[:, y - 1] for k, y in enumerate(comp.observations) if k > 0)
        w = torch.softmax(log_h, 0)
        from sculpting.domains.molecules.experiments import reward_table
        from sculpting.domains.molecules.metrics import high_low_table

        r = reward_table(base_sample["mols"], names)
        cells = high_low_table(r, names)
        import numpy as np

        probs = {}
        for cellname in cells:
            mask = np.ones(len(w), dtype=bool)
            for part, k in zip(cellname.split(), names):
                hi = r[k] >= {"seh": 0.5, "sa": 0.6, "qed": 0.25}[k]
                mask &= hi if part.endswith("+") else ~hi
            probs[cellname] = 100.0 * float(w.numpy()[mask].sum())
        is_ess = float(1.0 / (w**2).sum())
        paper = importance_target_table(base_sample, 0, clf, comp, names, beta=beta)
        t0 = time.perf_counter()
        x = sc.sample(pol, n, seed=100, sampler="rejection")
        mols = [mm for mm in pol.env.to_mols(x) if mm is not None]
        p_rej = _chi2(_table_counts(mols, names), probs, is_ess)
        out[label + " rejection"] = {
            "chi2_p": p_rej,
            "seconds": time.perf_counter() - t0,
            "importance_ess": is_ess,
            "importance_table": probs,
            "paper_table": paper,
        }
        chi_rows.append([label, "exact rejection (guided policy)", f"{p_rej:.3f}", "–", "–", f"{is_ess:.0f}"])
    if speed_rows:
        _table(
            [
                "composition",
                "proposal / twist",
                "base mol/s",
                "SMC mol/s",
                "SMC/base",
                "SMC mol/s, 2 workers",
                "mean ESS",
                "unique",
                "classifier rows / molecule",
            ],
            speed_rows,
        )
    if chi_rows:
        _table(["composition", "sampler", *(f"χ² p seed {s}" for s in args.seeds), "IS target ESS"], chi_rows)
    results["molecules" if "tables" in args.mol_parts else "molecules_speed"] = out


def _cells_of(mols, names):
    """High/low cell name of every valid molecule."""
    from sculpting.domains.molecules.experiments import reward_table

    r = reward_table(mols, names)
    cut = {"seh": 0.5, "sa": 0.6, "qed": 0.25}
    out = []
    for i in range(len(mols)):
        out.append(" ".join(f"{k}{'+' if r[k][i] >= cut[k] else '-'}" for k in names))
    return out


def chi2_clustered(runs_of_cells: list, probs: dict, ess: float) -> tuple[float, float, float]:
    """(p, p corrected for clustering, design effect) of the homogeneity test of an SMC table
    against the importance-weighted table taken at its ESS. SMC draws within one run repeat
    particles, so the table's variance is larger than a multinomial's: the Rao–Scott first-order
    correction divides the Pearson statistic by f = (d / n_a + 1 / n_b) / (1 / n_a + 1 / n_b), with d
    the mean over cells of the between-run variance of the cell share over its binomial variance."""
    import numpy as np
    from scipy.stats import chi2 as chi2_dist
    from scipy.stats import chi2_contingency

    keys = sorted(probs)
    counts = np.array([[sum(c == k for c in run) for k in keys] for run in runs_of_cells], dtype=float)  # [R, K]
    sizes = counts.sum(1)
    a = counts.sum(0)
    n_a, n_b = a.sum(), ess
    b = np.array([probs[k] / 100.0 * ess for k in keys])
    keep = (a + b) > 0
    stat, p, dof, _ = chi2_contingency(np.stack([a[keep], b[keep]]))
    share = a / n_a
    R = len(sizes)
    # ratio-estimator variance of each cell share across runs (clusters of unequal size)
    resid = counts - share[None] * sizes[:, None]
    var_cluster = (resid**2).sum(0) * R / (R - 1) / n_a**2
    var_binom = share * (1 - share) / n_a
    ok = var_binom > 0
    d = float(max(1.0, (var_cluster[ok] / var_binom[ok]).mean())) if ok.any() else 1.0
    f = (d / n_a + 1 / n_b) / (1 / n_a + 1 / n_b)
    return float(p), float(chi2_dist.sf(stat / f, dof)), d


def mixture_importance_table(m, names, clf, comp, beta, n_each, seed=1234):
    """(table {cell: %}, ESS) of the anchored target p_b(x) Π_{k≥2} p_T(y_k | x) (b = y_1) estimated from
    ``n_each`` samples of *every* base (the proposal p̄ = their uniform mixture, which covers a
    product far better than one base does), weighted by p_b(x) / p̄(x) · Π_{k≥2} p_T(y_k | x) with
    p_b / p̄ = post_b(x) / ω_b from the terminal head (self-normalised importance sampling)."""
    import numpy as np
    from sculpting.domains.molecules.experiments import reward_table, sample_molecules

    states, mols = [], []
    for i, k in enumerate(names):
        smp = sample_molecules(m["bases"][k].at_beta(beta), n_each, seed=seed + i, batch_size=256, progress=False)
        states.append(smp["states"])
        mols += smp["mols"]
    states = torch.cat(states)
    with torch.no_grad():
        lt = clf.terminal_log_posterior(states, context=beta).double()  # [n, m] uniform prior
    b = comp.observations[0] - 1
    log_pri = comp.log_priors(torch.float64)
    log_w = torch.log_softmax(lt, 1)[:, b]
    for k, y in enumerate(comp.observations):
        if k > 0:
            log_w = log_w + torch.log_softmax(lt + log_pri[k], 1)[:, y - 1]
    w = torch.softmax(log_w, 0).numpy()
    r = reward_table(mols, names)
    cut = {"seh": 0.5, "sa": 0.6, "qed": 0.25}
    cells = {}
    for i in range(len(mols)):
        key = " ".join(f"{k}{'+' if r[k][i] >= cut[k] else '-'}" for k in names)
        cells[key] = cells.get(key, 0.0) + 100.0 * float(w[i])
    return cells, float(1.0 / (np.asarray(w) ** 2).sum())


def molecules_chi2_section(args, results):
    """SEH⊗SA and y=123 at N = ``--mol-particles``: the chi-square of 1 000-molecule SMC tables (both
    twists, every seed) against the importance-weighted tables of ``--mol-json``, raw and corrected
    for the repeats within runs; exact rejection (the guided policy) beside it."""
    from sculpting.domains.molecules.io import load_molecule_models
    from sculpting.domains.molecules.classifier_sets import CLASSIFIER_SETS

    torch.set_num_threads(1)
    prior = json.loads(Path(args.mol_json).read_text())["molecules"] if Path(args.mol_json).is_file() else {}
    if not prior and args.mol_is != "mixture":
        raise FileNotFoundError(f"{args.mol_json}: run the molecules section first (or --mol-is mixture)")
    m = load_molecule_models()
    beta, n, N = 32.0, args.mol_samples, args.mol_particles
    print(f"## Molecules: χ² of {n}-molecule SMC tables vs the importance-weighted target (N = {N}, β = {beta:g})\n")
    rows, out = [], {}
    for label, op, set_name in (("SEH⊗SA", "harmonic", "seh_sa"), ("y=123", "y=123", "seh_sa_qed")):
        names = CLASSIFIER_SETS[set_name]
        pol = sc.compose(
            [m["bases"][k] for k in names],
            m["classifiers"][set_name],
            op,
            beta=beta,
            successor_head=m["successor_heads"][set_name],
        )
        ref = dict(prior.get(label + " rejection", {}))
        if args.mol_is == "mixture":
            ref["importance_table"], ref["importance_ess"] = mixture_importance_table(
                m, names, m["classifiers"][set_name], pol.composition, beta, args.mol_base_samples
            )
            print(
                f"  {label}: importance-weighted target from every base, ESS {ref['importance_ess']:.0f}",
                flush=True,
                file=sys.stderr,
            )
            out[f"{label} importance"] = {"table": ref["importance_table"], "ess": ref["importance_ess"]}
        for proposal, twist in MOL_CONFIGS:
            cells = []
            for seed in args.seeds:
                x = sc.sample(pol, n, seed=100 + seed, sampler="smc", particles=N, proposal=proposal, twist=twist)
                runs = []
                for r in range(0, n, N):
                    mols = [mm for mm in pol.env.to_mols(x[r : r + N]) if mm is not None]
                    runs.append(_cells_of(mols, names))
                cells.append(chi2_clustered(runs, ref["importance_table"], ref["importance_ess"]))
            out[f"{label} {proposal} twist={twist}"] = [
                {"p": c[0], "p_corrected": c[1], "design_effect": c[2]} for c in cells
            ]
            rows.append(
                [
                    label,
                    f"SMC {proposal} / {twist}",
                    *(f"{c[0]:.3f} / {c[1]:.3f} (d {c[2]:.1f})" for c in cells),
                    f"{ref['importance_ess']:.0f}",
                ]
            )
            print(" ", rows[-1], flush=True, file=sys.stderr)
        x = sc.sample(pol, args.mol_rejection_samples, seed=100 + args.seeds[0], sampler="rejection")
        mols = [mm for mm in pol.env.to_mols(x) if mm is not None]
        c = chi2_clustered([_cells_of(mols, names)], ref["importance_table"], ref["importance_ess"])
        out[f"{label} rejection"] = {"p": c[0]}
        rows.append(
            [
                label,
                f"exact rejection (guided policy), {args.mol_rejection_samples} molecules",
                f"{c[0]:.3f}",
                *["–"] * (len(args.seeds) - 1),
                f"{ref['importance_ess']:.0f}",
            ]
        )
    _table(["composition", "sampler", *(f"χ² p raw / corrected, seed {s}" for s in args.seeds), "IS target ESS"], rows)
    results["molecules_chi2"] = out


def molecules_sweep_section(args, results):
    """SEH⊗SA and y=123, twist from the head: ESS fraction, unique fraction and the chi-square p
    (first seed) against particles, using the importance-weighted tables of ``--mol-json``."""
    from sculpting.domains.molecules.io import load_molecule_models
    from sculpting.domains.molecules.classifier_sets import CLASSIFIER_SETS

    torch.set_num_threads(1)
    prior = json.loads(Path(args.mol_json).read_text())["molecules"] if Path(args.mol_json).is_file() else {}
    m = load_molecule_models()
    beta, n = 32.0, args.mol_samples
    print(f"## Molecules: SMC against particles (amortised proposal, head twist, β = {beta:g}, {n} molecules)\n")
    rows, out = [], {}
    for label, op, set_name in (("SEH⊗SA", "harmonic", "seh_sa"), ("y=123", "y=123", "seh_sa_qed")):
        names = CLASSIFIER_SETS[set_name]
        pol = sc.compose(
            [m["bases"][k] for k in names],
            m["classifiers"][set_name],
            op,
            beta=beta,
            successor_head=m["successor_heads"][set_name],
        )
        ref = prior.get(label + " rejection", {})
        imp = results.get("molecules_chi2", {}).get(f"{label} importance")  # the every-base table, if measured
        if imp is not None:
            ref = {"importance_table": imp["table"], "importance_ess": imp["ess"]}
        for N in args.particles:
            runs = [sc.smc(pol, N, seed=s, proposal="amortised", twist="head") for s in range(max(2, 256 // N))]
            ess = statistics.fmean(statistics.fmean(r.ess) for r in runs) / N
            x = sc.sample(
                pol, n, seed=100 + args.seeds[0], sampler="smc", particles=N, proposal="amortised", twist="head"
            )
            runs_cells = [
                _cells_of([mm for mm in pol.env.to_mols(x[r : r + N]) if mm is not None], names) for r in range(0, n, N)
            ]
            p, pc, d = chi2_clustered(runs_cells, ref["importance_table"], ref["importance_ess"])
            uniq = len({tuple(v.tolist()) for v in x}) / n
            out[f"{label} N={N}"] = {
                "ess_fraction": ess,
                "chi2_p": pc,
                "chi2_p_raw": p,
                "design_effect": d,
                "unique": uniq,
            }
            rows.append([label, str(N), f"{ess:.2f}", f"{uniq:.2f}", f"{p:.3f}", f"{pc:.3f}", f"{d:.1f}"])
            print(" ", rows[-1], flush=True, file=sys.stderr)
    _table(["composition", "N", "mean ESS / N", "unique", "χ² p raw", "χ² p corrected", "design effect"], rows)
    results["molecules_sweep"] = out


# --------------------------------------------------------------------------------------- MNIST
def mnist_section(args, results):
    from sculpting.domains.mnist.experiments import (
        COMPOSITIONS,
        composition_model,
        exact_masses,
        judge_samples,
        support_of,
    )
    from sculpting.domains.mnist.io import load_mnist_models
    from sculpting.domains.mnist.oracle import oracle_classifiers

    dev = torch.device(args.device)
    models = load_mnist_models()
    oracles = oracle_classifiers(models)
    B = {k: v.to(dev) for k, v in models["bases"].items()}
    learned = {k: models["classifiers"][k].to(dev).eval() for k in ("M1_M2", "MN")}
    oracle = {k: oracles[k].to(dev) for k in ("M1_M2", "MN")}
    judge = models["judge"].to(dev).eval()
    n = args.mnist_samples
    print(
        f"## MNIST: TV to the exact type masses at γ = 1, {n} samples, seeds {args.seeds}, {dev}; guided: EDM 50 "
        f"steps; SMC: N = {args.mnist_particles}, {args.mnist_steps} ancestral steps\n"
    )
    rows, out = [], []
    names = list(COMPOSITIONS) if not args.quick else ["M1⊗M2", "MN y=123"]
    for name in names:
        masses = exact_masses(name)
        cell = {"composition": name}
        for cname, C in (("learned", learned), ("oracle", oracle)):
            model = composition_model(B, C, name)
            for sampler in ("guided", "smc"):
                tvs, t0 = [], time.perf_counter()
                for seed in args.seeds:
                    if sampler == "guided":
                        x = sc.sample(model, n, seed=seed, steps=50, sampler="edm")
                    else:
                        x = sc.sample(
                            model, n, seed=seed, steps=args.mnist_steps, sampler="smc", particles=args.mnist_particles
                        )
                    tvs.append(judge_samples(judge, x, support_of(name), masses)["tv"])
                cell[f"{cname} {sampler}"] = tvs
                cell[f"{cname} {sampler} s"] = time.perf_counter() - t0
                print(
                    " ",
                    name,
                    cname,
                    sampler,
                    [round(t, 3) for t in tvs],
                    f"{time.perf_counter() - t0:.1f}s",
                    flush=True,
                    file=sys.stderr,
                )
        out.append(cell)
        fmt = lambda xs: "{:.3f} ± {:.3f}".format(*_mean_se(xs))  # noqa: E731
        rows.append(
            [
                name,
                fmt(cell["learned guided"]),
                fmt(cell["learned smc"]),
                fmt(cell["oracle guided"]),
                fmt(cell["oracle smc"]),
            ]
        )
    _table(["composition", "learned guided", "learned SMC", "oracle guided", "oracle SMC"], rows)
    lg = statistics.fmean(statistics.fmean(c["learned guided"]) for c in out)
    ls = statistics.fmean(statistics.fmean(c["learned smc"]) for c in out)
    print(f"mean TV, learned classifier: guided {lg:.3f}, SMC {ls:.3f}")
    worse = [
        c["composition"]
        for c in out
        if _mean_se(c["oracle smc"])[0] - _mean_se(c["oracle guided"])[0]
        > 2 * math.hypot(_mean_se(c["oracle smc"])[1], _mean_se(c["oracle guided"])[1])
    ]
    print(f"oracle SMC worse than oracle guided beyond 2 s.e.: {worse or 'none'}\n")
    results["mnist"] = {
        "cells": out,
        "mean_learned_guided": lg,
        "mean_learned_smc": ls,
        "oracle_smc_worse": worse,
        "device": str(dev),
        "steps_smc": args.mnist_steps,
        "particles": args.mnist_particles,
    }


def mnist_weighted_section(args, results):
    """Where the SMC TV comes from: per composition with several exact types, the TV of the drawn
    samples (one multinomial draw of N per run: repeats) against the TV of the weighted particles
    themselves (Σ w_i δ(type_i), no repeats), beside the i.i.d. noise floor of as many samples."""
    from sculpting.diffusion.smc import diffusion_smc_runs
    from sculpting.domains.mnist.experiments import composition_model, exact_masses
    from sculpting.domains.mnist.io import load_mnist_models
    from sculpting.domains.mnist.oracle import oracle_classifiers
    from sculpting.domains.mnist.types import type_tv
    from sculpting.domains.mnist.judge import R
    from sculpting.smc_core import draw_from_runs

    models = load_mnist_models()
    oracles = oracle_classifiers(models)
    n, N = args.mnist_samples, args.mnist_particles
    print(f"## MNIST: drawn vs weighted SMC types ({n} particles in runs of {N}, seed {args.seeds[0]})\n")
    rows, out = [], {}
    for name in ("M1◑M2", "MN y=11", "MN y=22", "MN y=33"):
        masses = exact_masses(name)
        p = torch.tensor(list(masses.values()), dtype=torch.float64)
        g = torch.Generator().manual_seed(0)
        floor = statistics.fmean(
            0.5
            * float(
                (
                    torch.bincount(
                        torch.multinomial(p.float(), n, replacement=True, generator=g), minlength=len(p)
                    ).double()
                    / n
                    - p
                )
                .abs()
                .sum()
            )
            for _ in range(200)
        )
        for cname, C in (("learned", models["classifiers"]), ("oracle", oracles)):
            model = composition_model(models["bases"], C, name)
            gen = torch.Generator().manual_seed(args.seeds[0])
            tracker, x, _ = diffusion_smc_runs(model, N, n // N, gen, "guided", 0.5, args.mnist_steps)
            pred = models["judge"].predict(x).tolist()
            keys = [f"{'red' if c == R else 'green'} {d}" for d, c in pred]
            w = torch.softmax(tracker.log_w, -1).reshape(-1) / (n // N)
            weighted = {}
            for k, wi in zip(keys, w.tolist()):
                weighted[k] = weighted.get(k, 0.0) + wi
            drawn = {}
            for i in draw_from_runs(tracker.log_w, gen).tolist():
                drawn[keys[i]] = drawn.get(keys[i], 0) + 1
            tv_w = type_tv({k: v * n for k, v in weighted.items()}, masses)
            tv_d = type_tv(drawn, masses)
            out[f"{name} {cname}"] = {"tv_drawn": tv_d, "tv_weighted": tv_w, "floor": floor}
            rows.append([name, cname, f"{tv_d:.3f}", f"{tv_w:.3f}", f"{floor:.3f}"])
            print(" ", rows[-1], flush=True, file=sys.stderr)
    _table(["composition", "classifier", "TV drawn", "TV weighted", "i.i.d. floor"], rows)
    results["mnist_weighted"] = out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--sections",
        nargs="+",
        default=["grid", "molecules", "mnist"],
        choices=["grid", "molecules", "molecules_chi2", "molecules_sweep", "mnist", "mnist_weighted"],
    )
    p.add_argument(
        "--mol-json",
        default="benchmarks/smc_molecules.json",
        help="molecules_sweep: the molecules section's JSON (its importance-weighted tables)",
    )
    p.add_argument("--grid-samples", type=int, default=65536)
    p.add_argument("--particles", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument(
        "--grid-noise",
        type=float,
        nargs="+",
        default=[0.0, 0.3],
        help="noise on the classifier's non-terminal head weights, one table each",
    )
    p.add_argument("--mol-samples", type=int, default=1000)
    p.add_argument("--mol-base-samples", type=int, default=20000)
    p.add_argument("--mol-particles", type=int, default=64)
    p.add_argument(
        "--mol-rejection-samples",
        type=int,
        default=400,
        help="molecules_chi2: molecules of the exact rejection reference (y=123 runs at ~0.01 of base)",
    )
    p.add_argument(
        "--mol-is",
        default="mixture",
        choices=["mixture", "anchor"],
        help="molecules_chi2: the importance-weighted target from samples of every base (mixture) or "
        "of the anchor base (the molecules section's tables)",
    )
    p.add_argument(
        "--mol-parts",
        nargs="+",
        default=["speed", "tables"],
        choices=["speed", "tables"],
        help="molecules: throughput / ESS, and the importance-weighted tables with their χ² tests",
    )
    p.add_argument("--mnist-samples", type=int, default=512)
    p.add_argument("--mnist-steps", type=int, default=100)
    p.add_argument("--mnist-particles", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a small run of every section (minutes on a CPU)")
    p.add_argument("--json", default=None, help="write the measured numbers here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.grid_samples, args.particles, args.mol_samples, args.mol_base_samples = 4096, [16, 64], 128, 1000
        args.mnist_samples, args.mnist_steps, args.seeds = 32, 100, args.seeds[:2]
    results = {"argv": sys.argv[1:], "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    for s in args.sections:
        {
            "grid": grid_section,
            "molecules": molecules_section,
            "molecules_chi2": molecules_chi2_section,
            "molecules_sweep": molecules_sweep_section,
            "mnist": mnist_section,
            "mnist_weighted": mnist_weighted_section,
        }[s](args, results)
        if args.json:  # after every section: a long run keeps what it measured
            Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
