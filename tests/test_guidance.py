"""Exactness of guided sampling with the oracle classifier (docs/guidance.md)."""

import pytest
import torch
from conftest import random_table

from sculpting.algebra import THREE_BASE_OBSERVATIONS, Composition, l1_distance
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.exact import exact_policy_from_reward, terminal_log_probs
from sculpting.gflownet.guidance import GuidedPolicy
from sculpting.gflownet.oracle import OracleQ
from sculpting.gflownet.policy import TabularPolicy
from sculpting.gflownet.rollout import sample_trajectories

TWO = [
    Composition.two_base(op, a)
    for op in ("harmonic", "contrast", "reverse_contrast", "mixture")
    for a in (0.05, 0.5, 0.95)
]
THREE = [Composition.uniform(3, y) for y in THREE_BASE_OBSERVATIONS]


def _guided_l1(env, tables, comp, form):
    bases = [TabularPolicy(env, t) for t in tables]
    q = OracleQ(env, tables, comp)
    g = GuidedPolicy(bases, q, form)
    return l1_distance(terminal_log_probs(env, g.table_on(env)), comp.target_log_prob(terminal_log_probs(env, tables)))


@pytest.mark.parametrize("comp", TWO + THREE, ids=lambda c: c.label())
def test_anchored_oracle_is_exact_for_random_policies(comp):
    env = GridEnv(8, 2, "corners")
    tables = torch.stack([random_table(env, seed=s) for s in range(comp.n_bases)])
    assert _guided_l1(env, tables, comp, "anchored") < 1e-4


@pytest.mark.parametrize("comp", TWO + THREE, ids=lambda c: c.label())
def test_paper_oracle_is_exact_for_exact_gflownets(comp):
    env = GridEnv(10, 2, "corners")
    rewards = ["circle1", "circle2", "circle3"] if comp.n_bases == 3 else ["symmetric_shubert", "diag_sigmoid"]
    tables = torch.stack([exact_policy_from_reward(env, GridEnv(10, 2, r).log_reward_table) for r in rewards])
    assert _guided_l1(env, tables, comp, "paper") < 1e-4
    assert _guided_l1(env, tables, comp, "anchored") < 1e-4


def test_paper_oracle_is_not_exact_for_inconsistent_policies():
    env = GridEnv(8, 2, "corners")
    tables = torch.stack([random_table(env, seed=s) for s in range(2)])
    assert _guided_l1(env, tables, Composition.two_base("harmonic"), "paper") > 1e-3


def test_state_wise_policy_equals_table_and_samples_match():
    env = GridEnv(6, 2, "corners")
    tables = torch.stack([random_table(env, seed=s) for s in range(3)])
    comp = Composition.uniform(3, (1, 2, 3))
    g = GuidedPolicy([TabularPolicy(env, t) for t in tables], OracleQ(env, tables, comp), "anchored")
    table = g.table_on(env)
    assert torch.allclose(g.log_probs(env.all_states()), table, atol=1e-12)
    traj = sample_trajectories(env, g, 30000, 0.0, torch.Generator().manual_seed(0))
    emp = torch.bincount(env.index(traj.terminal), minlength=env.n_states).double() / 30000
    exact = comp.target_log_prob(terminal_log_probs(env, tables)).exp()
    assert (emp - exact).abs().sum() < 0.06


def test_guided_policy_is_a_base_of_another_composition():
    env = GridEnv(6, 2, "corners")
    tables = torch.stack([random_table(env, seed=s) for s in range(3)])
    bases = [TabularPolicy(env, t) for t in tables]
    hm = GuidedPolicy(bases[:2], OracleQ(env, tables[:2], Composition.two_base("harmonic")), "anchored")
    inner = hm.table_on(env)
    outer_tables = torch.stack([inner, tables[2]])
    comp = Composition.two_base("contrast")
    g = GuidedPolicy([hm, bases[2]], OracleQ(env, outer_tables, comp), "anchored")
    target = comp.target_log_prob(terminal_log_probs(env, outer_tables))
    assert l1_distance(terminal_log_probs(env, g.table_on(env)), target) < 1e-4


def test_mismatched_spaces_are_rejected():
    env8, env6 = GridEnv(8, 2, "corners"), GridEnv(6, 2, "corners")
    t8, t6 = random_table(env8), random_table(env6)
    comp = Composition.two_base("harmonic")
    with pytest.raises(ValueError, match="different spaces"):
        GuidedPolicy([TabularPolicy(env8, t8), TabularPolicy(env6, t6)], OracleQ(env8, torch.stack([t8, t8]), comp))
    with pytest.raises(ValueError, match="classifier was built for"):
        GuidedPolicy([TabularPolicy(env8, t8)] * 2, OracleQ(env6, torch.stack([t6, t6]), comp))
    with pytest.raises(ValueError, match="unknown guidance form"):
        GuidedPolicy([TabularPolicy(env8, t8)] * 2, OracleQ(env8, torch.stack([t8, t8]), comp), "exact")
    with pytest.raises(ValueError, match="3 bases got 2"):
        GuidedPolicy([TabularPolicy(env8, t8)] * 2, OracleQ(env8, torch.stack([t8] * 3), Composition.uniform(3, (1,))))


def test_exact_evaluation_rejects_bases_of_different_grids():
    from sculpting.domains.grid.experiments import guided_distribution
    from sculpting.gflownet.policy import GFlowNet

    bases = [GFlowNet(GridEnv(8, 2, "corners"), hidden=8), GFlowNet(GridEnv(6, 2, "corners"), hidden=8)]
    with pytest.raises(ValueError, match="different spaces"):
        guided_distribution(bases, Composition.two_base("harmonic"))
