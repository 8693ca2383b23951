"""The successor-head twist of GFlowNet SMC (``twist="head"``), checked through the weights it makes.

With an **exact** head — one that returns, for every successor s'_a of s, the exact classifier's
twist ψ(s'_a) (here the oracle's, packed so that ``from_joint`` unpacks it) — two facts hold on an
enumerable environment, for the anchored form:

* the twist is a martingale under the anchor base, ψ(s) = Σ_a π_b(a | s) ψ(s'_a) (the stop
  successor carrying the terminal potential h_T(x)). With the amortised proposal
  r(a) ∝ π_b(a | s) ψ(s'_a) / ψ(s) the SMC increment π_b(a) ψ(s'_a) / (r(a) ψ(s)) is 1: every
  particle keeps the same weight, ESS = N after every step, and log Ẑ = log ψ(s_0) = log Z exactly
  (Z = Σ_x p_b(x) h_T(x), enumerated);
* the head at the chosen successor equals the classifier there, so ``twist="head"`` and
  ``twist="classifier"`` make the same weights, hence (the same seed) the same resampling steps,
  the same ESS sequence and the same particles, with either proposal.

A head twist that is dropped (ψ = 1 between the root and the stop) or scaled keeps the *final*
weights unbiased but changes every intermediate weight: both tests fail on it (mutants
``head-twist-dropped-*`` of ``scripts/mutants.py``). The third test draws from the run and
compares with the enumerated target, the law the weights make.
"""

import math

import pytest
import torch

import sculpting as sc
from sculpting.gflownet.exact import base_tables
from sculpting.gflownet.guidance import GuidedPolicy
from sculpting.gflownet.oracle import OracleQ
from sculpting.gflownet.policy import GFlowNet, TabularPolicy
from sculpting.gflownet.smc import terminal_target

# float64 bookkeeping of ~14 steps of O(1) log-weights: rounding is ~1e-15 per step; the oracle's
# tables are float64 too. 1e-9 leaves room for the float32 → float64 casts of the policy tables.
TOL = 1e-9


class PackedOracleQ(OracleQ):
    """The oracle classifier with the interface a successor head talks to: no α / context, and
    the head's packed ``[R, m + 1]`` rows (log Q(y_1 = i | ·) then log Q(y | ·)) unpacked."""

    logit_alpha = None
    context = None

    @staticmethod
    def from_joint(packed):
        return packed[:, :-1], packed[:, -1]

    from_terminal = from_joint


class ExactHead:
    """A successor head that is exact: the oracle evaluated on every legal successor."""

    def __init__(self, q):
        self.q = q

    def __call__(self, states, logit_alpha, context, mask):
        env = self.q.env
        rows, acts = mask[:, : env.stop_action].nonzero(as_tuple=True)
        f, y = self.q.nonterminal(env.step(states[rows], acts))
        tf, ty = self.q.terminal(states)
        return rows, acts, torch.cat([f, y[:, None]], 1), torch.cat([tf, ty[:, None]], 1)


def _sharp(env, seed):
    model = GFlowNet(env, hidden=16, seed=seed)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # distinct, peaked bases: a twist that matters
        last.weight.mul_(8.0)
        last.bias.mul_(8.0)
    return model


@pytest.fixture(scope="module", params=["grid", "bitstrings"])
def env(request):
    if request.param == "grid":
        from sculpting.domains.grid import GridEnv

        return GridEnv(6, 2, "symmetric_shubert")
    from sculpting.domains.bitstrings import BitStringEnv

    return BitStringEnv(5)


def _policy(env, op):
    tables = base_tables([_sharp(env, 0), _sharp(env, 1)])
    q = PackedOracleQ(env, tables, sc.parse_composition(op, 2, 0.3))
    pol = GuidedPolicy([TabularPolicy(env, t) for t in tables], q, "anchored")
    pol.successor_head = ExactHead(q)
    return pol


@pytest.mark.parametrize("op", ["harmonic", "contrast"])
def test_an_exact_head_twist_with_its_own_proposal_keeps_every_weight_equal(env, op):
    pol = _policy(env, op)
    _, log_z = terminal_target(pol)
    run = sc.smc(pol, 64, seed=3, proposal="amortised", twist="head", resample_threshold=0.5)
    assert abs(run.log_z - log_z) < TOL, (run.log_z, log_z)
    assert all(abs(e - 64) < 1e-6 for e in run.ess), run.ess
    assert run.resampled_at == [] and float(run.log_weights.max() - run.log_weights.min()) < TOL
    # control: the same twist with the base proposal weights particles unequally
    ctl = sc.smc(pol, 64, seed=3, proposal="base", twist="head", resample_threshold=0.0)
    spread = float(ctl.log_weights.max() - ctl.log_weights.min())
    assert spread > 0.1 and abs(ctl.log_z - log_z) > 1e-3, (spread, ctl.log_z, log_z)


@pytest.mark.parametrize("proposal", ["base", "amortised"])
@pytest.mark.parametrize("op", ["harmonic", "contrast"])
def test_an_exact_head_twist_makes_the_classifier_twists_weights(env, op, proposal):
    pol = _policy(env, op)
    head = sc.smc(pol, 128, seed=5, proposal=proposal, twist="head", resample_threshold=0.9)
    clf = sc.smc(pol, 128, seed=5, proposal=proposal, twist="classifier", resample_threshold=0.9)
    assert head.stats["twist_rows"] == 128 + 1 < clf.stats["twist_rows"]  # the head saved classifier calls
    assert abs(head.log_z - clf.log_z) < TOL, (head.log_z, clf.log_z)
    assert max(abs(a - b) for a, b in zip(head.ess, clf.ess, strict=True)) < 1e-6
    assert head.resampled_at == clf.resampled_at and torch.equal(head.states, clf.states)
    if proposal == "base":  # control: the twist decides the ESS on the way (not just at the stop)
        flat = sc.smc(pol, 128, seed=5, proposal="base", twist="head", resample_threshold=0.0)
        assert len(flat.ess) > 2 and min(flat.ess[:-1]) < 127, flat.ess


def test_head_twisted_smc_draws_the_enumerated_target(env):
    """64 runs of 128 particles advanced together. With the exact head, the amortised proposal is
    the target's own guided policy and every weight stays equal, so the 8192 particles are i.i.d.
    draws of the enumerated target: their L1 is within the multinomial noise of n draws,
    E L1 = Σ_x sqrt(2 p(x)(1 − p(x)) / (π n)), plus 4 standard deviations of the sum. The anchor
    base is 2 bounds away (control: its draws would fail it)."""
    from sculpting.gflownet.smc import gflownet_smc_runs

    pol = _policy(env, "harmonic")
    target, log_z = terminal_target(pol)
    n, runs = 128, 64
    tracker, x, _ = gflownet_smc_runs(pol, n, runs, torch.Generator().manual_seed(17), "amortised", 0.5, "head")
    assert (tracker.log_z - log_z).abs().max() < TOL
    h = torch.bincount(env.index(x), minlength=env.n_states).double() / (n * runs)
    p = target.exp()
    v = p * (1 - p) / (n * runs)
    bound = float((2 * v / math.pi).sqrt().sum() + 4 * (v * (1 - 2 / math.pi)).sum().sqrt())
    assert float((h - p).abs().sum()) < bound, (float((h - p).abs().sum()), bound)
    base = sc.exact_distribution(pol.bases[pol.anchor]).exp()
    assert float((base - p).abs().sum()) > 2 * bound  # its own draws (noise ≤ bound) would fail
