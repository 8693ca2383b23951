"""Helpers shared by the SMC tests (tests/test_smc.py, tests/test_contracts.py): the noise bound
derived from independent runs' own spread, and an exact classifier whose twist carries noise."""

import math

import torch

import sculpting as sc


def histogram(env, x):
    h = torch.bincount(env.index(x), minlength=env.n_states).double()
    return h / h.sum()


def run_noise_bound(env, x: torch.Tensor, runs: int, log_p: torch.Tensor) -> float:
    """A bound on the L1 that sampling noise alone gives the pooled histogram of ``runs`` independent
    SMC runs (``x``: their draws, run after run), derived from the runs themselves rather than
    from an assumed number of effective samples. Per state, the pooled frequency has variance
    v = s² / R, s² the variance of the state's frequency across runs (which holds every correlation
    of SMC: resampling, the final draw), floored at the multinomial variance p (1 − p) / N of N
    i.i.d. draws per run (no run is better than i.i.d.). With no bias, each state's error is about
    N(0, v): its |·| has mean sqrt(2 v / π) and variance v (1 − 2 / π); the bound is the sum of the
    means plus 4 standard deviations of the sum. A bias (a wrong target) shifts every run alike, so
    it adds to the L1 but not to the spread."""
    h = torch.stack([histogram(env, xr) for xr in x.reshape(runs, -1, *x.shape[1:])])  # [R, S]
    p = log_p.exp().double()
    per_run = x.shape[0] // runs
    v = torch.maximum(h.var(0), p * (1 - p) / per_run) / runs
    return float((2 * v / math.pi).sqrt().sum() + 4 * (v * (1 - 2 / math.pi)).sum().sqrt())


class NoisyTwistQ:
    """The exact (oracle) classifier of enumerable bases whose non-terminal head carries noise:
    log Q(y | s) + δ · u(s), u(s) ~ U[−1, 1] fixed per state. Its terminal head is exact, so the
    composition it defines is the true p(x | y); its guided policy is not."""

    def __init__(self, env, tables, composition, delta, seed):
        from sculpting.gflownet.oracle import OracleQ

        self.exact = OracleQ(env, tables, composition)
        self.env, self.space, self.composition, self.n_bases = env, self.exact.space, composition, self.exact.n_bases
        g = torch.Generator().manual_seed(seed)
        self.noise = (torch.rand(env.n_states, generator=g, dtype=torch.float64) * 2 - 1) * delta

    def nonterminal(self, states):
        f, y = self.exact.nonterminal(states)
        return f, y + self.noise[self.env.index(states)]

    def terminal(self, states):
        return self.exact.terminal(states)


def noisy_composition(bases, op, form, delta=1.5, seed=0):
    from sculpting.gflownet.exact import base_tables
    from sculpting.gflownet.guidance import GuidedPolicy
    from sculpting.gflownet.policy import TabularPolicy

    env = bases[0].env
    comp = sc.parse_composition(op, len(bases), 0.3)
    tables = base_tables(bases)
    return GuidedPolicy([TabularPolicy(env, t) for t in tables], NoisyTwistQ(env, tables, comp, delta, seed), form)


def multinomial_l1_bound(p: torch.Tensor, n: int, sds: float = 4.0) -> torch.Tensor:
    """The L1 that sampling noise alone gives the empirical law of ``n`` i.i.d. draws from ``p``
    (``[..., K]``, one bound per leading row): each cell's error is about N(0, v), v = p(1 − p)/n,
    so |·| has mean sqrt(2v/π) and variance v(1 − 2/π); the bound is the sum of the means plus
    ``sds`` standard deviations of the sum."""
    v = p.double() * (1 - p.double()) / n
    return (2 * v / math.pi).sqrt().sum(-1) + sds * (v * (1 - 2 / math.pi)).sum(-1).sqrt()
