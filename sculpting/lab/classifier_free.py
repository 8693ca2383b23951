"""Notebook rows for sculpting with no classifier (``docs/classifier_free.md``) on enumerable
GFlowNet environments: SMC samples of a composition twisted by the bases' path posteriors
(``twist="paths"``) or by their learned state flows (``twist="flows"``), against the exact x-space
target of the bases."""

from __future__ import annotations

import math

import torch

from sculpting.algebra import Composition, l1_distance, parse_composition
from sculpting.compose import compose, sample, smc, target_distribution

__all__ = ["path_composition_rows"]


def path_composition_rows(
    bases, compositions, particles: int = 64, n: int = 16384, seed: int = 0, twist: str = "paths"
) -> list:
    """Per composition (a :class:`~sculpting.algebra.Composition` or an operation name), ``n`` SMC
    samples (N = ``particles`` per run) of ``sc.compose(bases, None, c)`` with ``twist`` against the
    x-space target of the bases (exact DP). Returns rows {label, name, alpha, l1_path_smc,
    l1_iid_floor (E L1 of n i.i.d. draws from the target: Σ_x sqrt(2 p (1 − p) / (π n))), ess (mean
    ESS / N of one run), panel: (label, log histogram ``[S]``, log target ``[S]``, L1) for
    :func:`~sculpting.lab.plotting.plot_guided_vs_target`}.

    With ``twist="paths"`` the target is the path composition, which differs from the x-space one
    by the bases' disagreement about paths (a few 1e-3 in L1 on the shipped grid bases,
    ``benchmarks/free_results.md``); with ``twist="flows"`` it is the x-space composition of the
    flows' terminal laws. The L1 is that gap plus the sampling noise."""
    env = bases[0].env
    rows = []
    for c in compositions:
        if not isinstance(c, Composition):
            c = parse_composition(c, len(bases))
        model = compose(bases, None, c)
        x = sample(model, n, seed=seed, sampler="smc", twist=twist, particles=particles)
        hist = torch.bincount(env.index(x), minlength=env.n_states).double() / n
        target = target_distribution(bases, c)
        p = target.exp().double()
        l1 = l1_distance(hist.clamp_min(1e-300).log(), target)
        run = smc(model, particles, seed=seed, twist=twist)
        rows.append(
            {
                "label": c.label(),
                "name": c.name,
                "alpha": c.alpha,
                "l1_path_smc": l1,
                "l1_iid_floor": float((2 * p * (1 - p) / (math.pi * n)).sqrt().sum()),
                "ess": sum(run.ess) / len(run.ess) / particles,
                "panel": (c.label(), hist.clamp_min(1e-300).log(), target, l1),
            }
        )
    return rows
