"""GFlowNet samplers agree on real molecules: high/low tables of the full-scoring, the exact
rejection and the amortised sampler side by side, each tested against full scoring with a
chi-square test of homogeneity (for an exact sampler the two are the same distribution, so the
p-values are uniform; a sampler bug shows as p ≈ 0), and the amortised sampler's per-step
deviation KL(π ‖ π_K) computed exactly on visited states (sculpting.gflownet.amortised).

    SCULPTING_DATA_DIR=DIR .venv/bin/python benchmarks/molecule_samplers.py [--n 1000] [--threads 1]
        [--form anchored] [--samplers full rejection amortised] [--envelope 2]

Shipped models; SEH⊗SA at β = 32 and SEH◑SA (α = 0.05) at β = 16 (notebook 09's settings);
different seeds per sampler, so the samples are independent.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import chi2_contingency

import sculpting as sc
from sculpting.domains.molecules.experiments import sample_molecules, summarize_samples
from sculpting.domains.molecules.io import load_molecule_models

CELLS = ("seh+ sa+", "seh+ sa-", "seh- sa+", "seh- sa-")
CASES = (("SEH⊗SA", "harmonic", 0.5, 32.0), ("SEH◑SA", "contrast", 0.05, 16.0))


def visited_states(model, n_traj: int, seed: int) -> torch.Tensor:
    """The states of ``n_traj`` exact (rejection) guided trajectories."""
    from sculpting.gflownet.rejection import action_sampler_for
    from sculpting.gflownet.rollout import sample_trajectories

    tr = sample_trajectories(
        model.env,
        model,
        n_traj,
        0.0,
        torch.Generator().manual_seed(seed),
        action_sampler=action_sampler_for(model, "rejection"),
    )
    return tr.states[:, :-1][tr.valid]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="valid molecules per sample")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--form", default="anchored", choices=("paper", "anchored"))
    ap.add_argument("--samplers", nargs="*", default=["full", "rejection", "amortised"])
    ap.add_argument("--envelope", type=float, default=2.0, help="K of the amortised sampler")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = load_molecule_models()
    bases, clf = [m["bases"]["seh"], m["bases"]["sa"]], m["classifiers"]["seh_sa"]
    head = m["successor_heads"].get("seh_sa")
    print(
        f"{args.n} valid molecules per sample, {args.form} form, {args.threads} thread(s), "
        f"amortised envelope K = {args.envelope:g}\n"
    )
    print("| composition | β | sampler | " + " | ".join(CELLS) + " | seconds | chi² p-value vs full |")
    print("|---|---|---|" + "---|" * len(CELLS) + "---|---|")
    deviations = []
    for label, op, alpha, beta in CASES:
        model = sc.compose(bases, clf, op, alpha=alpha, beta=beta, form=args.form, successor_head=head)
        counts, rows = {}, []
        for i, sampler in enumerate(args.samplers):
            if sampler == "amortised" and head is None:
                continue
            kw = {"envelope": args.envelope} if sampler == "amortised" else {}
            t0 = time.perf_counter()
            s = sample_molecules(model, args.n, seed=100 + i, progress=False, sampler=sampler, **kw)
            dt = time.perf_counter() - t0
            table = summarize_samples(s)[0]["table_seh_sa"]
            counts[sampler] = [round(table[c] * args.n / 100) for c in CELLS]
            rows.append((sampler, table, dt))
        for sampler, table, dt in rows:
            if sampler != "full" and "full" in counts:
                c = np.array([counts["full"], counts[sampler]])
                p = f"{chi2_contingency(c[:, c.sum(0) > 0])[1]:.2f}"
            else:
                p = "–"
            print(
                f"| {label} | {beta:g} | {sampler} | "
                + " | ".join(f"{table[c]:.1f}" for c in CELLS)
                + f" | {dt:.0f} | {p} |",
                flush=True,
            )
        if head is not None:
            from sculpting.gflownet.amortised import step_deviation

            states = visited_states(model, 24, seed=7)
            for k in (1.0, 2.0, 4.0):
                deviations.append((label, beta, k, step_deviation(model, states, k)))
    if deviations:
        print(
            "\n| composition | β | envelope K | states | KL(π ‖ π_K) per step | states where the envelope fails | "
            "KL(π ‖ π̃), head as guidance |\n|---|---|---|---|---|---|---|"
        )
        for label, beta, k, d in deviations:
            print(
                f"| {label} | {beta:g} | {k:g} | {d['states']} | {d['kl_sampler']:.2e} | "
                f"{100 * d['envelope_fails']:.1f} % | {d['kl_head_as_guidance']:.3f} |"
            )


if __name__ == "__main__":
    main()
