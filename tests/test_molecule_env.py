"""The batched tensor fragment environment agrees with the readable reference on random walks;
graph featurisation and the β-conditional policy network behave as specified."""

import random

import pytest
import torch

pytest.importorskip("rdkit")
from molecule_data import needs_data  # noqa: E402

pytestmark = needs_data


@pytest.fixture(scope="module")
def env():
    from sculpting.domains.molecules.env import FragmentGraphEnv

    return FragmentGraphEnv(max_frags=5)


def _flat(env, a):
    if a[0] == "stop":
        return env.stop_action
    if a[0] == "add":
        return a[1] * env.n_frags + a[2]
    return env.n_add + 12 * a[1] + a[2]


def test_tensor_env_matches_reference_on_random_walks(env):
    ref, rng = env.ref, random.Random(0)
    n_steps = 0
    for _ in range(150):
        s = ref.initial_state()
        while True:
            t = env.from_tree(s)
            assert env.to_tree(t) == s
            mask = env.action_mask(t[None])[0]
            legal = {_flat(env, a) for a in ref.legal_actions(s)}
            assert set(mask.nonzero().squeeze(1).tolist()) == legal
            assert mask.any()
            if s.n >= 1:
                assert env.log_n_parents(t[None]).exp().item() == pytest.approx(ref.n_backward(s))
            a = rng.choice(ref.legal_actions(s))
            n_steps += 1
            if a[0] == "stop":
                break
            s2 = ref.step(s, a)
            assert env.to_tree(env.step(t[None], torch.tensor([_flat(env, a)]))[0]) == s2
            s = s2
        assert n_steps > 0


def test_sampled_trajectories_have_3n_minus_1_actions_and_valid_molecules(env):
    from sculpting.domains.molecules.policy import PRESETS, MoleculeGFlowNet
    from sculpting.gflownet.rollout import sample_trajectories

    torch.manual_seed(0)
    model = MoleculeGFlowNet(env, **PRESETS["smoke"])
    traj = sample_trajectories(env, model.at_beta(32.0), 64, 0.0, torch.Generator().manual_seed(0))
    n = env.n_nodes(traj.terminal)
    assert torch.equal(traj.lengths, 3 * n - 1)
    valid = env.is_valid_terminal(traj.terminal)
    assert valid.float().mean() >= 0.9
    # no illegal action was ever taken
    for b in range(8):
        for t in range(int(traj.lengths[b])):
            assert env.action_mask(traj.states[b, t][None])[0, traj.actions[b, t]]


def test_featurisation_layout(env):
    from sculpting.domains.molecules.graph_transformer import featurize

    s = env.initial_states(2)
    s[1] = env.step(env.step(s[1:2], torch.tensor([3])), torch.tensor([0 * env.n_frags + 7]))[0]
    g = featurize(env, s)
    assert g.x.shape == (1 + 2, env.n_frags + 1)
    assert g.x[0, -1] == 1 and g.x[0, :-1].sum() == 0  # empty tree: flag-only row
    assert g.x[1, 3] == 1 and g.x[2, 7] == 1
    assert g.edge_index.shape == (2, 2) and g.edge_attr.shape == (2, 14)
    assert torch.equal(g.edge_attr[:, 0], torch.ones(2)) and torch.equal(g.edge_attr[:, 7], torch.ones(2))  # unset


def test_policy_normalises_and_masks(env):
    from sculpting.domains.molecules.policy import PRESETS, MoleculeGFlowNet, thermometer

    torch.manual_seed(1)
    model = MoleculeGFlowNet(env, **PRESETS["smoke"])
    s = env.initial_states(3)
    s = env.step(s, torch.tensor([5, 9, 11]))
    s[2] = env.initial_states(1)[0]
    lp = model.log_probs(s, torch.tensor([0.0, 32.0, 96.0]))
    assert torch.allclose(lp.exp().sum(1), torch.ones(3), atol=1e-5)
    assert torch.isinf(lp[~env.action_mask(s)]).all()
    assert model.log_partition(torch.tensor([1.0, 50.0])).shape == (2,)
    th = thermometer(torch.tensor([0.0, 96.0, 48.0]))
    assert th[0].sum() == 0 and th[1, :31].sum() == 31 and th[1, 31] == 0
    assert 0 < th[2].sum() < 32
    with pytest.raises(ValueError, match="β"):
        model.log_probs(s, 200.0)
    with pytest.raises(ValueError, match="needs beta"):
        model.log_probs(s)


def test_trajectory_balance_training_raises_reward(env):
    """A few dozen TB steps on QED at fixed high β: the mean log-reward goes up."""
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.experiments import base_train_config
    from sculpting.domains.molecules.policy import PRESETS, MoleculeGFlowNet
    from sculpting.gflownet.training import train_gflownet

    class FixedHighBeta:
        def sample(self, n, generator=None):
            return torch.full((n,), 64.0)

        def log_reward(self, env, terminal, cond):
            from sculpting.domains.molecules.policy import BetaConditioning

            return BetaConditioning().log_reward(env, terminal, cond)

    torch.manual_seed(0)
    e = FragmentGraphEnv(3, "qed")
    model = MoleculeGFlowNet(e, **PRESETS["smoke"])
    cfg = base_train_config("qed", steps=60, batch_size=32)
    cfg.lr, cfg.lr_log_z = 3e-3, 3e-2
    hist = train_gflownet(model, cfg, progress=False, conditioning=FixedHighBeta())
    first, last = sum(hist["mean_log_reward"][:10]) / 10, sum(hist["mean_log_reward"][-10:]) / 10
    assert last > first + 5.0, (first, last)


def test_sample_validity_counts_every_drawn_trajectory(env):
    """Validity = valid / drawn over all batches, not the kept n over the drawn count."""
    from sculpting.domains.molecules.experiments import sample_molecules, summarize_samples
    from sculpting.domains.molecules.policy import PRESETS, MoleculeGFlowNet

    torch.manual_seed(0)
    model = MoleculeGFlowNet(env, **PRESETS["smoke"])
    s = sample_molecules(model.at_beta(32.0), 2, batch_size=16, progress=False)
    assert len(s["mols"]) == 2 and s["n_sampled"] == 16 and 2 <= s["n_valid_sampled"] <= 16
    summary, _ = summarize_samples(s)
    assert summary["validity"] == s["n_valid_sampled"] / 16 and summary["validity"] >= 0.8


def test_sample_molecules_in_worker_processes_is_reproducible(env):
    """workers=2: each round draws two batches in forked processes; same seed, same molecules."""
    from sculpting.domains.molecules.experiments import sample_molecules
    from sculpting.domains.molecules.policy import PRESETS, MoleculeGFlowNet

    model = MoleculeGFlowNet(env, **PRESETS["smoke"], seed=0).at_beta(32.0)
    a = sample_molecules(model, 20, batch_size=8, seed=3, progress=False, workers=2)
    b = sample_molecules(model, 20, batch_size=8, seed=3, progress=False, workers=2)
    c = sample_molecules(model, 20, batch_size=8, seed=4, progress=False, workers=2)
    assert len(a["mols"]) == 20 and a["n_sampled"] % 16 == 0
    assert torch.equal(a["states"], b["states"]) and not torch.equal(a["states"], c["states"])
    with pytest.raises(ValueError, match="workers"):
        sample_molecules(model, 2, progress=False, workers=0)


def test_bases_and_classifier_sets_trained_in_worker_processes_equal_one_at_a_time():
    """workers=2 trains bases / classifier sets in forked processes: the same weights, bit for bit."""
    from dataclasses import replace

    from sculpting.domains.molecules.classifier_sets import SMOKE_ARCH, SMOKE_CONFIG, train_classifier_sets
    from sculpting.domains.molecules.experiments import train_molecule_bases

    kw = dict(steps=3, preset="smoke", max_frags=3, batch_size=4, seed=1, progress=False)
    one, two = (train_molecule_bases(["sa", "seh"], workers=w, **kw) for w in (1, 2))
    assert list(two) == ["sa", "seh"]
    for obj in one:
        a, b = one[obj][0].state_dict(), two[obj][0].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert one[obj][1]["loss"] == two[obj][1]["loss"]
    bases = [one["seh"][0], one["sa"][0]]
    jobs = {"a": (bases, SMOKE_CONFIG), "b": (bases, replace(SMOKE_CONFIG, seed=5))}
    c1, c2 = (train_classifier_sets(jobs, "conditional", SMOKE_ARCH, workers=w, progress=False) for w in (1, 2))
    for name in jobs:
        a, b = c1[name][0].state_dict(), c2[name][0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(next(iter(c1["a"][0].parameters())), next(iter(c1["b"][0].parameters())))
    with pytest.raises(ValueError, match="distinct"):
        train_molecule_bases(["sa", "sa"], workers=2, **kw)
