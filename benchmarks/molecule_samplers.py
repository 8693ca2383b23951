"""Exact samplers agree on real molecules: high/low tables of the full-scoring and the rejection
sampler side by side, with a chi-square test of homogeneity (the two are the same distribution, so
p-values are uniform; a sampler bug shows as p ≈ 0).

    SCULPTING_DATA_DIR=DIR .venv/bin/python benchmarks/molecule_samplers.py [--n 1000] [--threads 1]

Shipped models; SEH⊗SA at β = 32 and SEH◑SA (α = 0.05) at β = 16, paper form (notebook 09's
setting); different seeds per sampler, so the two samples are independent.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="valid molecules per sample")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--form", default="paper", choices=("paper", "anchored"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = load_molecule_models()
    bases, clf = [m["bases"]["seh"], m["bases"]["sa"]], m["classifiers"]["seh_sa"]
    print(f"{args.n} valid molecules per sample, {args.form} form, {args.threads} thread(s)\n")
    print("| composition | β | sampler | " + " | ".join(CELLS) + " | seconds | chi² p-value |")
    print("|---|---|---|" + "---|" * len(CELLS) + "---|---|")
    for label, op, alpha, beta in CASES:
        model = sc.compose(bases, clf, op, alpha=alpha, beta=beta, form=args.form)
        counts, rows = [], []
        for i, sampler in enumerate(("full", "rejection")):
            t0 = time.perf_counter()
            s = sample_molecules(model, args.n, seed=100 + i, progress=False, sampler=sampler)
            dt = time.perf_counter() - t0
            table = summarize_samples(s)[0]["table_seh_sa"]
            counts.append([round(table[c] * args.n / 100) for c in CELLS])
            rows.append((sampler, table, dt))
        c = np.array(counts)
        p = chi2_contingency(c[:, c.sum(0) > 0])[1]
        for sampler, table, dt in rows:
            print(f"| {label} | {beta:g} | {sampler} | " + " | ".join(f"{table[c]:.1f}" for c in CELLS)
                  + f" | {dt:.0f} | {p:.2f} |", flush=True)


if __name__ == "__main__":
    main()
