"""The flow classifier (sculpting.gflownet.flows): bases that learned state flows composed with no
classifier trained, twisted SMC with Q(i | s) ∝ ω_i F_i(s) / Z_i.

* with exact flows (the DP visit probabilities of exact tables) Q is the oracle's first-slot
  posterior to float precision, and the terminal head is the exact posterior;
* SMC with ``twist="flows"`` lands on the x-space composition within the runs'-spread noise bound
  (tests/smc_checks.py), where guidance by the product of the slots' marginals alone does not;
* torchgfn DBGFlowNet bases (untrained: flows inconsistent with the policies) through the adapter:
  the SMC lands on the exact target its terminal head defines (terminal_target, by DP);
* bases without flows are refused with what to use instead.
"""

from __future__ import annotations

import pytest
import torch
from smc_checks import histogram, run_noise_bound

import sculpting as sc
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.exact import log_visit_probs
from sculpting.gflownet.flows import FlowQ, flow_policy
from sculpting.gflownet.oracle import OracleQ
from sculpting.gflownet.paths import PathComposition
from sculpting.gflownet.policy import TabularPolicy, masked_log_softmax, policy_table
from sculpting.gflownet.smc import gflownet_smc_runs, terminal_target
from sculpting.smc_core import draw_from_runs

ENV = GridEnv(5, 2, "corners")


class FlowTable(TabularPolicy):
    """A tabular policy with the exact state flow of its own table: F(s) / Z = P(s visited)."""

    def __init__(self, env, table, log_z: float):
        super().__init__(env, table)
        self._log_visit, self.log_z = log_visit_probs(env, table.double()), log_z

    def log_state_flow(self, states):
        return self._log_visit[self.env.index(states)] + self.log_z  # F(s) = Z · P(s visited)


def _bases(m=2):
    """Random tables, each with its own Z (3 and −1.5): a flow classifier that forgot to divide
    by Z_i would weigh the bases by e^{4.5}."""
    out = []
    for s in range(m):
        g = torch.Generator().manual_seed(40 + s)
        logits = torch.randn(ENV.n_states, ENV.n_actions, generator=g, dtype=torch.float64) * 1.5
        out.append(FlowTable(ENV, masked_log_softmax(logits, ENV.action_mask(ENV.all_states())), 3.0 - 4.5 * s))
    return out


def test_exact_flows_give_the_oracles_posteriors():
    bases = _bases()
    tables = torch.stack([policy_table(ENV, b) for b in bases])
    for op in ("harmonic", "contrast"):
        comp = sc.parse_composition(op, 2, 0.3)
        flow, oracle = FlowQ(bases, comp), OracleQ(ENV, tables, comp)
        states = ENV.all_states()
        f_flow, _ = flow.nonterminal(states)
        f_oracle, _ = oracle.nonterminal(states)
        assert float((f_flow - f_oracle).abs().max()) < 1e-12
        (_tf, ty), (_of, oy) = flow.terminal(states), oracle.terminal(states)
        ok = torch.isfinite(oy)
        assert torch.equal(ok, torch.isfinite(ty)) and float((ty[ok] - oy[ok]).abs().max()) < 1e-12
        # control: the flows of the other base order are other posteriors
        swapped, _ = FlowQ(bases[::-1], comp).nonterminal(states)
        assert float((swapped - f_oracle).abs().max()) > 0.1


@pytest.mark.parametrize("op", ["harmonic", "contrast"])
def test_smc_with_the_flow_twist_lands_on_the_x_space_composition(op):
    """32 runs of 256 particles (base proposal, ESS-triggered resampling); the bound is the runs'
    own spread. Controls: the other operation's target lies 2 bounds away, and for the harmonic
    mean the guided policy alone (product of marginals, no weights) misses the target."""
    bases = _bases()
    model = PathComposition(bases, sc.parse_composition(op, 2, 0.3))
    target = model.composition.target_log_prob(torch.stack([sc.exact_distribution(b) for b in bases]).double())
    policy = flow_policy(model)
    ft, _ = terminal_target(policy)
    assert sc.l1_distance(ft, target) < 1e-10  # exact flows: the terminal head is the exact posterior
    runs, n = 32, 256
    tracker, x, _ = gflownet_smc_runs(policy, n, runs, torch.Generator().manual_seed(7), "base", 0.5, "classifier")
    draws = x[draw_from_runs(tracker.log_w, torch.Generator().manual_seed(8))]
    bound = run_noise_bound(ENV, draws, runs, target)
    got = sc.l1_distance(histogram(ENV, draws).clamp_min(1e-300).log(), target)
    assert got < bound, (got, bound)
    other = {"harmonic": "contrast", "contrast": "harmonic"}[op]
    wrong = sc.parse_composition(other, 2, 0.3).target_log_prob(
        torch.stack([sc.exact_distribution(b) for b in bases]).double()
    )
    assert sc.l1_distance(wrong, target) > 2 * bound
    if op == "harmonic":
        guided = sc.l1_distance(sc.exact_distribution(policy), target)
        assert guided > bound, (guided, bound)
    # through the API: the same run by name
    run = sc.smc(model, 64, seed=0, twist="flows")
    assert run.states.shape[0] == 64 and run.stats["twist_rows"] > 0
    x2 = sc.sample(model, 64, seed=0, sampler="smc", twist="flows", particles=32)
    assert x2.shape[0] == 64


def test_torchgfn_db_bases_with_their_learned_flows():
    pytest.importorskip("gfn")
    from gfn import gym
    from gfn.estimators import DiscretePolicyEstimator, ScalarEstimator
    from gfn.gflownet import DBGFlowNet
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

    from sculpting.adapters.torchgfn import TorchGFNEnv, TorchGFNPolicy

    e = gym.HyperGrid(ndim=2, height=4, validate_modes=False)
    pre = KHotPreprocessor(e.height, e.ndim)
    env = TorchGFNEnv(e, preprocessor=pre)
    bases = []
    for s in (0, 1):
        torch.manual_seed(s)
        pf = DiscretePolicyEstimator(MLP(pre.output_dim, e.n_actions, hidden_dim=16), e.n_actions, preprocessor=pre)
        pb = DiscretePolicyEstimator(
            MLP(pre.output_dim, e.n_actions - 1, hidden_dim=16), e.n_actions, preprocessor=pre, is_backward=True
        )
        log_f = ScalarEstimator(MLP(pre.output_dim, 1, hidden_dim=16), preprocessor=pre)
        with torch.no_grad():  # peaked policies and flows far from uniform: the twist moves the particles
            for net, scale in ((pf.module, 8.0), (log_f.module, 6.0)):
                last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
                last.weight.mul_(scale)
        bases.append(TorchGFNPolicy.from_gflownet(DBGFlowNet(pf, pb, log_f), env))
    model = PathComposition(bases, sc.parse_composition("harmonic", 2, 0.3))  # (sc.compose: the DP oracle here)
    policy = flow_policy(model)
    target, _ = terminal_target(policy)
    runs, n = 32, 256
    tracker, x, _ = gflownet_smc_runs(policy, n, runs, torch.Generator().manual_seed(2), "base", 0.5, "classifier")
    draws = x[draw_from_runs(tracker.log_w, torch.Generator().manual_seed(3))]
    bound = run_noise_bound(env, draws, runs, target)
    assert sc.l1_distance(histogram(env, draws).clamp_min(1e-300).log(), target) < bound
    mix = torch.logsumexp(
        torch.stack([sc.exact_distribution(b) for b in bases]).double() + torch.tensor([0.3, 0.7]).log()[:, None], 0
    )
    assert sc.l1_distance(mix, target) > 2 * bound  # control: the twist moved the law off the mixture


def test_bases_without_state_flows_are_refused():
    bases = [TabularPolicy(ENV, policy_table(ENV, b)) for b in _bases()]
    model = PathComposition(bases, sc.parse_composition("harmonic", 2, 0.3))
    with pytest.raises(ValueError, match="carry no state flow.*twist='paths'"):
        sc.smc(model, 8, seed=0, twist="flows")


def test_an_oracle_composition_keeps_its_bases_flows():
    """sc.compose(bases, None) on an enumerable env holds the bases' exact tables; twist='flows' reads
    the flows of the bases it was given (the same run as the path composition of those bases)."""
    bases = _bases()
    oracle = sc.compose(bases, None, "harmonic", alpha=0.3)
    path = PathComposition(bases, oracle.composition)
    assert torch.equal(sc.smc(oracle, 32, seed=1, twist="flows").states, sc.smc(path, 32, seed=1, twist="flows").states)
