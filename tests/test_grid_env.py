import pytest
import torch
from conftest import random_table
from smc_checks import multinomial_l1_bound  # noqa: E402

from sculpting.domains.grid import REWARDS as GRID_REWARDS
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.exact import exact_policy_from_reward, log_expectation, terminal_log_probs
from sculpting.gflownet.policy import TabularPolicy
from sculpting.gflownet.rollout import sample_trajectories, sample_trajectories_tabular


@pytest.mark.parametrize("name", sorted(GRID_REWARDS))
def test_every_reward_is_finite(name):
    env = GridEnv(32, 2, name, 0.5)
    assert env.log_reward_table.shape == (1024,)
    assert torch.isfinite(env.log_reward_table).all()


def test_reward_values_follow_design():
    env = GridEnv(32, 2, "diag_sigmoid", 1.0)
    x = env.coordinates(env.all_states())
    assert torch.allclose(env.log_reward_table, torch.log(torch.sigmoid(5 * x.sum(1)) + 1e-5))
    hot = GridEnv(32, 2, "diag_sigmoid", 0.5)
    assert torch.allclose(hot.log_reward_table, 2 * env.log_reward_table)
    sym = GridEnv(32, 2, "symmetric_shubert").as_image(GridEnv(32, 2, "symmetric_shubert").log_reward_table)
    assert torch.allclose(sym, sym.flip(0)) and torch.allclose(sym, sym.flip(1))
    c1 = GridEnv(32, 2, "circle1")
    far = c1.log_reward_table[c1.index(torch.tensor([[31, 31]]))]
    assert torch.allclose(far, torch.log(torch.tensor(0.1 + 1e-8, dtype=torch.float64)))


def test_unknown_reward_and_bad_temperature():
    with pytest.raises(ValueError, match="unknown grid reward 'shubbert'"):
        GridEnv(8, 2, "shubbert")
    with pytest.raises(ValueError, match="temperature"):
        GridEnv(8, 2, "corners", 0.0)
    with pytest.raises(ValueError, match="2-D"):
        GridEnv(8, 3, "circle1")


def test_masks_and_transitions(small_env):
    env = small_env
    s = torch.tensor([[0, 0], [7, 3], [7, 7]])
    assert env.action_mask(s).tolist() == [[True, True, True], [False, True, True], [False, False, True]]
    assert env.step(s[:1], torch.tensor([1])).tolist() == [[0, 1]]
    assert env.log_n_parents(torch.tensor([[0, 0], [0, 3], [2, 3]])).exp().round().tolist() == [1, 1, 2]


def test_exact_policy_from_reward_reproduces_reward(small_env):
    for ndim, name in [(2, "circle2"), (3, "corners")]:
        env = GridEnv(6, ndim, name)
        lp = terminal_log_probs(env, exact_policy_from_reward(env, env.log_reward_table))
        assert (lp.exp() - env.reward_log_distribution().exp()).abs().sum() < 1e-10


def test_dp_matches_samples(small_env):
    env = small_env
    table = random_table(env)
    exact = terminal_log_probs(env, table).exp()
    assert abs(float(exact.sum()) - 1) < 1e-10
    gen = torch.Generator().manual_seed(1)
    for sampler in (
        lambda n: sample_trajectories(env, TabularPolicy(env, table), n, 0.0, gen),
        lambda n: sample_trajectories_tabular(env, table, n, 0.0, gen),
    ):
        traj = sampler(40000)
        emp = torch.bincount(env.index(traj.terminal), minlength=env.n_states).double() / 40000
        assert (emp - exact).abs().sum() < multinomial_l1_bound(exact, 40000)  # sampling noise alone


def test_trajectories_are_consistent(small_env):
    env = small_env
    traj = sample_trajectories_tabular(env, random_table(env), 200, 0.3, torch.Generator().manual_seed(0))
    steps = (traj.states[:, 1:] - traj.states[:, :-1]).sum(-1)
    moved = traj.valid & (traj.actions != env.stop_action)
    assert torch.equal(steps, moved.long())
    assert torch.equal(traj.lengths, traj.valid.sum(1))
    assert torch.equal(traj.terminal.sum(1) + 1, traj.lengths)


def test_log_expectation_of_constant_is_constant(small_env):
    env = small_env
    f = torch.full((env.n_states, 1), 0.7, dtype=torch.float64).log()
    v = log_expectation(env, random_table(env), f)
    assert torch.allclose(v.exp(), torch.full_like(v, 0.7))
