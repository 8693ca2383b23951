"""Exact sculpting on a tiny, fully enumerated fragment world (C, O, CC; ≤ 3 fragments).

The generic exact machinery (terminal laws by DP, oracle classifier, guided tables) runs on the
labelled fragment trees: anchored guidance with the oracle hits the docs/algebra.md targets for any
bases (here untrained graph-transformer policies), the paper's guidance does for exact GFlowNet
bases of one shared backward policy; the batched successor scoring equals the table path.
"""

import pytest
import torch

pytest.importorskip("rdkit")

from smc_checks import multinomial_l1_bound  # noqa: E402

from sculpting.algebra import Composition, l1_distance  # noqa: E402
from sculpting.gflownet.exact import exact_policy_from_reward, terminal_log_probs  # noqa: E402
from sculpting.gflownet.guidance import GuidedPolicy  # noqa: E402
from sculpting.gflownet.oracle import OracleQ  # noqa: E402
from sculpting.gflownet.policy import TabularPolicy, policy_table  # noqa: E402

FRAGS = [("C", [0]), ("O", [0]), ("CC", [0, 1])]


@pytest.fixture(scope="module")
def world():
    from sculpting.domains.molecules.enumerated import EnumeratedFragmentEnv
    from sculpting.domains.molecules.env import FragmentGraphEnv

    env = FragmentGraphEnv(3, fragments=FRAGS)
    return env, EnumeratedFragmentEnv(env)


def test_enumeration(world):
    env, E = world
    assert E.n_states == 739 and len(E.terminal_states()) == 83
    assert torch.equal(E.index(E.all_states()), torch.arange(E.n_states))
    term = E.all_states()[E.terminal_states()]
    assert all(m is not None for m in env.to_mols(term))  # every terminal tree is a valid molecule
    # s0 (key 0) comes first; every other state has a forward parent
    has_parent = (E.parent_index < E.n_states).any(1)
    assert E.n_nodes(E.all_states()[:1]).item() == 0 and not has_parent[0] and has_parent[1:].all()


@pytest.fixture(scope="module")
def random_bases(world):
    from sculpting.domains.molecules.policy import MoleculeGFlowNet

    env, E = world
    torch.manual_seed(0)
    bases = []
    for beta in (10.0, 50.0, 90.0):
        b = MoleculeGFlowNet(env, width=16, n_layers=1).at_beta(beta)
        b.env = E
        bases.append(b)
    tables = torch.stack([policy_table(E, b) for b in bases])
    return bases, tables, terminal_log_probs(E, tables)


@pytest.mark.parametrize(
    "comp",
    [
        Composition.two_base("harmonic", 0.3),
        Composition.two_base("contrast", 0.5),
        Composition.two_base("reverse_contrast", 0.9),
        Composition.uniform(3, (1, 2, 3)),
        Composition.uniform(3, (2, 2)),
        Composition.uniform(3, (1, 3)),
    ],
    ids=lambda c: c.label(),
)
def test_anchored_guidance_with_oracle_is_exact_for_any_bases(world, random_bases, comp):
    _, E = world
    bases, tables, p = random_bases
    m = comp.n_bases
    g = GuidedPolicy(bases[:m], OracleQ(E, tables[:m], comp), "anchored")
    assert l1_distance(terminal_log_probs(E, policy_table(E, g)), comp.target_log_prob(p[:m])) < 1e-9


def test_guided_successor_scoring_equals_the_table(world, random_bases):
    _, E = world
    bases, tables, _ = random_bases
    comp = Composition.uniform(3, (1, 2))
    g = GuidedPolicy(bases, OracleQ(E, tables, comp), "paper")
    g.chunk_size = 37  # several classifier calls
    states = E.all_states()[::7]
    assert torch.allclose(g.log_probs(states).exp(), policy_table(E, g)[::7].exp(), atol=1e-12)


def test_paper_guidance_with_oracle_is_exact_for_exact_gflownet_bases(world):
    _, E = world
    gen = torch.Generator().manual_seed(1)
    term = torch.zeros(E.n_states, dtype=torch.bool)
    term[E.terminal_states()] = True
    dp = []
    for _ in range(2):
        lr = torch.randn(E.n_states, generator=gen, dtype=torch.float64).masked_fill(~term, -float("inf"))
        dp.append(TabularPolicy(E, exact_policy_from_reward(E, lr)))
    T = torch.stack([d.table for d in dp])
    p = terminal_log_probs(E, T)
    assert torch.allclose(p.exp().sum(1), torch.ones(2, dtype=torch.float64))
    for comp in (
        Composition.two_base("harmonic", 0.3),
        Composition.two_base("contrast", 0.05),
        Composition.two_base("mixture", 0.7),
    ):
        g = GuidedPolicy(dp, OracleQ(E, T, comp), "paper")
        assert l1_distance(terminal_log_probs(E, policy_table(E, g)), comp.target_log_prob(p)) < 1e-9


@pytest.mark.parametrize("form", ["anchored", "paper"])
@pytest.mark.parametrize(
    "comp",
    [Composition.two_base("harmonic", 0.5), Composition.two_base("contrast", 0.05), Composition.uniform(3, (1, 2, 3))],
    ids=lambda c: c.label(),
)
def test_rejection_sampler_draws_the_exact_guided_policy(world, random_bases, comp, form):
    """Per-state action frequencies of the rejection sampler (forced on every state; 2 rounds of
    2 proposals, so the exact fallback also runs) equal the full-scoring policy within
    multinomial noise, while the proposal alone is measurably different."""
    from sculpting.gflownet.rejection import SamplerStats, rejection_sample_actions

    _, E = world
    bases, tables, _ = random_bases
    m = comp.n_bases
    g = GuidedPolicy(bases[:m], OracleQ(E, tables[:m], comp), form)
    all_states = E.all_states()
    n_valid = E.action_mask(all_states).sum(1)
    states = all_states[n_valid >= 4][:6]
    n = 8000
    exact = g.log_probs(states).exp()
    reps = states.repeat_interleave(n, dim=0)
    stats = SamplerStats()
    gen = torch.Generator().manual_seed(0)
    acts = rejection_sample_actions(
        g, reps, gen, proposals=2, rounds=2, max_fraction=float("inf"), min_actions=0, stats=stats
    )
    freq = torch.zeros_like(exact)
    freq.index_put_(
        (torch.arange(len(states)).repeat_interleave(n), acts),
        torch.ones(len(acts), dtype=exact.dtype),
        accumulate=True,
    )
    freq /= n
    l1 = (freq - exact).abs().sum(1)
    # sampling noise alone, per state; 5 s.d. for the maximum over the states (a 4.5σ tail per state)
    assert (l1 < multinomial_l1_bound(exact, n, sds=5.0)).all(), l1
    assert 0 < stats.full_states < len(reps) and stats.proposals > 0  # both paths ran
    base_part = (
        torch.logsumexp(
            g.q.nonterminal(states)[0].double()[:, :, None]
            + torch.stack([b.log_probs(states).double() for b in g.bases], 1),
            1,
        )
        if form == "paper"
        else g.bases[g.anchor].log_probs(states)
    )
    proposal = torch.softmax(base_part.double().masked_fill(~E.action_mask(states), -float("inf")), 1)
    assert (proposal - exact).abs().sum(1).max() > 0.15  # the guidance is not a no-op here


def test_rejection_sampled_trajectories_match_the_exact_terminal_law(world, random_bases):
    from sculpting.gflownet.rejection import action_sampler_for
    from sculpting.gflownet.rollout import sample_trajectories

    _, E = world
    bases, tables, p = random_bases
    comp = Composition.two_base("harmonic", 0.5)
    g = GuidedPolicy(bases[:2], OracleQ(E, tables[:2], comp), "anchored")
    target = comp.target_log_prob(p[:2]).exp()
    n = 20000
    act = action_sampler_for(g, "rejection", min_actions=0, max_fraction=float("inf"))
    traj = sample_trajectories(E, g, n, generator=torch.Generator().manual_seed(3), action_sampler=act)
    freq = torch.bincount(E.index(traj.terminal), minlength=E.n_states).double() / n
    assert (freq - target).abs().sum() < multinomial_l1_bound(target, n)  # sampling noise alone
    assert action_sampler_for(bases[0], "rejection") is None  # a base samples its own policy
    with pytest.raises(ValueError, match="unknown GFlowNet sampler"):
        action_sampler_for(g, "fast")
