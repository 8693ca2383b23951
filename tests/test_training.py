import pytest
import torch

from sculpting.domains.grid import GridEnv
from sculpting.gflownet.policy import GFlowNet
from sculpting.gflownet.training import GFlowNetTrainConfig, exact_l1_to_reward, train_gflownet


def test_trajectory_balance_learns_a_small_grid():
    torch.manual_seed(0)
    model = GFlowNet(GridEnv(8, 2, "symmetric_shubert", 0.5), hidden=64)
    start = exact_l1_to_reward(model)
    hist = train_gflownet(model, GFlowNetTrainConfig(steps=600, batch_size=64, lr=3e-3, eval_every=100), progress=False)
    assert start > 0.3
    assert hist["l1"][-1] < 0.1, hist["l1"]
    assert hist["l1"][-1] == pytest.approx(exact_l1_to_reward(model))


def test_training_is_reproducible():
    def run():
        torch.manual_seed(123)
        m = GFlowNet(GridEnv(6, 2, "corners"), hidden=16)
        train_gflownet(m, GFlowNetTrainConfig(steps=20, batch_size=8, seed=5, eval_every=0), progress=False)
        return m.log_probs(m.env.all_states())

    assert torch.equal(run(), run())


def test_bad_configs():
    with pytest.raises(ValueError, match="epsilon"):
        GFlowNetTrainConfig(epsilon=1.5)
    with pytest.raises(ValueError):
        GFlowNetTrainConfig(batch_size=0)


def test_grid_bases_trained_in_worker_processes_equal_one_at_a_time():
    """train_bases(workers=2) forks one process per base: the same weights and losses, bit for bit."""
    from sculpting.domains.grid.experiments import train_bases

    configs = {
        n: GFlowNetTrainConfig(steps=5, batch_size=8, seed=i, eval_every=0)
        for i, n in enumerate(["circle1", "sigmoid", "circle2"])
    }
    one, two = (train_bases(configs, horizon=6, workers=w, progress=False) for w in (1, 2))
    assert list(two) == list(configs)
    for name in configs:
        a, b = one[name][0].state_dict(), two[name][0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a) and one[name][1]["loss"] == two[name][1]["loss"]
    assert not torch.equal(one["circle1"][0].state_dict()["log_z"], torch.zeros(()))


def test_the_tabular_sampler_tests_for_exit_every_few_steps_with_the_same_result(monkeypatch):
    """Fewer host reads (one "all stopped?" per EXIT_TEST_EVERY steps): the same trajectories as a
    test after every step, bit for bit; another seed (control) gives others."""
    import torch

    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet import rollout
    from sculpting.gflownet.policy import GFlowNet, policy_table

    env = GridEnv(7, 2, "circle1")
    table = policy_table(env, GFlowNet(env, hidden=16, seed=0))

    def draw(every, seed=0):
        monkeypatch.setattr(rollout, "EXIT_TEST_EVERY", every)
        t = rollout.sample_trajectories_tabular(env, table, 50, 0.1, torch.Generator().manual_seed(seed))
        return t.states, t.actions, t.lengths

    one, four, seven = draw(1), draw(4), draw(7)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(one, four, seven))
    assert not torch.equal(draw(4, seed=1)[0], four[0])
