"""Sculpt your own models: callable grid rewards, a user environment written against the
protocol, a torchgfn-trained base, diffusers UNets, and the VP-SDE (docs/own_models.md)."""

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch

import sculpting as sc
from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.gaussian import ExactGaussianClassifier, GaussianMixtureScore
from sculpting.diffusion.samplers import pc_sample
from sculpting.diffusion.sde import VESDE, VPSDE
from sculpting.domains.bitstrings import BitStringEnv
from sculpting.domains.grid import GridEnv, register_reward
from sculpting.gflownet.io import load_gflownet, save_gflownet
from sculpting.gflownet.policy import GFlowNet
from sculpting.protocols import EnumerableEnv, check_env

OPS = ["harmonic", "contrast", "reverse_contrast", "mixture", "y=12", "y=22"]


def bumps(z):
    """log r of integer coordinates: two bumps."""
    z = z.double()
    return torch.logsumexp(torch.stack([-((z - 2) ** 2).sum(-1) / 4, -((z - 6) ** 2).sum(-1) / 2]), 0)


def test_callable_grid_reward_trains_saves_and_needs_registration_to_load(tmp_path):
    env = GridEnv(8, 2, bumps)
    assert env.reward_name == "bumps" and env.config["reward"] == "bumps"
    z = env.all_states()
    assert torch.allclose(env.log_reward_table, bumps(z))
    torch.manual_seed(0)
    model = GFlowNet(env, hidden=32)
    save_gflownet(model, tmp_path / "b.pt")
    assert load_gflownet(tmp_path / "b.pt").env.reward_name == "bumps"  # registered in this process
    code = textwrap.dedent(f"""
        from sculpting.gflownet.io import load_gflownet
        try:
            load_gflownet({str(tmp_path / "b.pt")!r})
        except Exception as e:
            print(type(e).__name__, e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("CheckpointError") and "register_reward('bumps', fn)" in out, out
    with pytest.raises(ValueError, match="give the reward a name"):
        GridEnv(8, 2, lambda z: z.sum(-1).double())
    with pytest.raises(ValueError, match="built-in"):
        register_reward("circle1", bumps)
    with pytest.raises(ValueError, match="returned shape"):

        def wrong(z):
            return torch.zeros(3)

        GridEnv(8, 2, wrong)


@pytest.mark.parametrize("op", OPS)
def test_user_environment_composes_exactly_with_the_oracle(op):
    env = check_env(BitStringEnv(5), enumerable=True)
    assert isinstance(env, EnumerableEnv)
    torch.manual_seed(1)
    bases = [GFlowNet(env, hidden=16), GFlowNet(env, hidden=16)]  # untrained: anchored + oracle is exact anyway
    model = sc.compose(bases, None, op, alpha=0.3)
    got, want = sc.exact_distribution(model), sc.target_distribution(bases, op, alpha=0.3)
    assert abs(float(got.exp().sum()) - 1) < 1e-9
    assert sc.l1_distance(got, want) < 1e-6
    x = sc.sample(model, 50, seed=0)
    assert x.shape == (50, 5) and bool((x >= 0).all())  # full strings only


def test_protocol_check_names_the_missing_parts():
    class Half:
        n_actions = 3

    with pytest.raises(TypeError, match="missing stop_action"):
        check_env(Half())


def test_three_bit_bases_and_a_composition_of_compositions():
    env = BitStringEnv(4)
    torch.manual_seed(2)
    bases = [GFlowNet(env, hidden=16) for _ in range(3)]
    inner = sc.compose(bases, None, "y=12")
    outer = sc.compose([inner, bases[2]], None, "contrast", alpha=0.4)
    lp = torch.stack([sc.exact_distribution(b) for b in bases])
    want = sc.parse_composition("contrast", 2, 0.4).target_log_prob(
        torch.stack([sc.parse_composition("y=12", 3).target_log_prob(lp), lp[2]])
    )
    assert sc.l1_distance(sc.exact_distribution(outer), want) < 1e-6


def _train_torchgfn(reward_kwargs, steps=60, seed=0):
    from gfn import gym  # installed by scripts/setup_env.sh: this test must run, not skip
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.gflownet import TBGFlowNet
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

    torch.manual_seed(seed)
    env = gym.HyperGrid(
        ndim=2, height=6, reward_fn_str="original", reward_fn_kwargs=reward_kwargs, validate_modes=False
    )
    pre = KHotPreprocessor(env.height, env.ndim)
    pf = DiscretePolicyEstimator(MLP(pre.output_dim, env.n_actions, hidden_dim=32), env.n_actions, preprocessor=pre)
    pb = DiscretePolicyEstimator(
        MLP(pre.output_dim, env.n_actions - 1, hidden_dim=32), env.n_actions, preprocessor=pre, is_backward=True
    )
    gfn = TBGFlowNet(pf=pf, pb=pb)
    opt = torch.optim.Adam(gfn.parameters(), lr=3e-3)
    for _ in range(steps):
        traj = gfn.sample_trajectories(env, n=32, save_logprobs=True)
        loss = gfn.loss(env, traj, recalculate_all_logprobs=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return env, pf


def test_torchgfn_trained_bases_compose_exactly():
    from sculpting.adapters.torchgfn import TorchGFNPolicy

    env1, pf1 = _train_torchgfn({"R0": 0.1, "R1": 0.5, "R2": 2.0}, seed=0)
    env2, pf2 = _train_torchgfn({"R0": 1.0, "R1": 0.1, "R2": 0.1}, seed=1)
    b1, b2 = TorchGFNPolicy(pf1, env1), TorchGFNPolicy(pf2, env2)
    assert b1.env.space == b2.env.space and b1.env.space["kind"] == "torchgfn"
    # the adapter's policy is torchgfn's: same masked probabilities
    s = b1.env.all_states()
    with torch.no_grad():
        ref = torch.log_softmax(pf1(env1.states_from_tensor(s)).masked_fill(~b1.env.action_mask(s), -float("inf")), 1)
        assert torch.allclose(b1.log_probs(s), ref, atol=1e-6)
    for op in ("harmonic", "contrast", "y=22"):
        model = sc.compose([b1, b2], None, op, alpha=0.4)
        assert sc.l1_distance(sc.exact_distribution(model), sc.target_distribution([b1, b2], op, alpha=0.4)) < 1e-6
    clf = sc.fit_classifier(
        [b1, b2], "harmonic", {"steps": 30, "warmup_steps": 10}, progress=False, arch={"hidden": 32}
    )
    got = sc.exact_distribution(sc.compose([b1, b2], clf, "harmonic"))
    assert abs(float(got.exp().sum()) - 1) < 1e-6


# ------------------------------------------------------------------ diffusion: VP-SDE and diffusers
MEANS = torch.tensor([[-1.5, 0.0], [0.0, 1.5], [1.5, 0.0]])


@pytest.mark.parametrize("sampler,steps", [("pc", 200), ("edm", 50)])
@pytest.mark.parametrize("op,expected", [("harmonic", [0, 1, 0]), ("contrast", [2 / 3, 1 / 3, 0])])
def test_vp_sde_gaussian_composition_hits_target_masses(op, expected, sampler, steps):
    sde = VPSDE()
    p1 = GaussianMixtureScore(MEANS, [0.5, 0.5, 0], s=0.25, sde=sde)
    p2 = GaussianMixtureScore(MEANS, [0, 0.5, 0.5], s=0.25, sde=sde)
    model = sc.compose([p1, p2], ExactGaussianClassifier([p1, p2]), op)
    x = sc.sample(model, 2000, seed=0, steps=steps, sampler=sampler)
    got = torch.bincount(torch.cdist(x, MEANS).argmin(1), minlength=3).double() / len(x)
    assert (got - torch.tensor(expected, dtype=torch.float64)).abs().max() < 0.04, got


def test_vp_sde_marginals_and_a_base_sample():
    sde = VPSDE()
    t = torch.tensor([1e-3, 0.5, 1.0])
    assert torch.allclose(sde.mean_coef(t) ** 2 + sde.marginal_std(t) ** 2, torch.ones(3))
    p = GaussianMixtureScore(MEANS[:1], [1.0], s=0.25, sde=sde)
    x = pc_sample(p, 2000, 150, generator=torch.Generator().manual_seed(0))
    assert (x.mean(0) - MEANS[0]).abs().max() < 0.05 and abs(float(x.std(0).mean()) - 0.25) < 0.03
    x = sc.sample(p, 2000, seed=0, steps=40, sampler="edm")  # the scaled-variable EDM sampler on a VP-SDE
    assert (x.mean(0) - MEANS[0]).abs().max() < 0.05 and abs(float(x.std(0).mean()) - 0.25) < 0.03
    assert VESDE().drift(x, t) is None


def test_diffusers_unet_is_a_base_of_a_composition():
    import diffusers  # the [diffusers] extra, installed by scripts/setup_env.sh

    from sculpting.adapters.diffusers import DiffusersScoreModel
    from sculpting.diffusion.classifier import TimeClassifier

    def unet(seed):
        torch.manual_seed(seed)
        return diffusers.UNet2DModel(
            sample_size=8,
            in_channels=1,
            out_channels=1,
            layers_per_block=1,
            block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
        )

    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    b1, b2 = DiffusersScoreModel.from_ddpm(unet(0), sched), DiffusersScoreModel.from_ddpm(unet(1), sched)
    assert b1.sde == VPSDE(0.1, 20.0) and b1.image_shape == (1, 8, 8)
    x, t = torch.randn(3, 1, 8, 8), torch.full((3,), 0.5)
    with torch.no_grad():
        eps = b1.unet(x, t * 999).sample
    assert torch.allclose(b1.score(x, t), -eps / b1.sde.marginal_std(t).reshape(-1, 1, 1, 1))
    clf = TimeClassifier((1, 8, 8), n_bases=2, n_slots=2, sde=b1.sde.config, trunk=(4, 8), hidden=16, embed_dim=16)
    model = sc.compose([b1, b2], clf.eval(), "contrast", alpha=0.3, gamma=2.0)
    assert isinstance(model, ComposedScore)
    # untrained UNets predict garbage: their samples leave the data range, and the package says so
    with pytest.warns(RuntimeWarning, match="the sampler diverged"):
        assert sc.sample(model, 2, seed=0, steps=30).shape == (2, 1, 8, 8)
    run = sc.smc(model, 4, seed=0, steps=5)  # sequential Monte Carlo over diffusers bases
    assert run.states.shape == (4, 1, 8, 8) and torch.isfinite(run.states).all() and len(run.ess) == 5
    ve = DiffusersScoreModel(unet(2), prediction="score")
    assert isinstance(ve.sde, VESDE)
    with pytest.warns(RuntimeWarning, match="the sampler diverged"):
        assert sc.sample(ve, 2, seed=0, steps=3).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="prediction"):
        DiffusersScoreModel(unet(3), prediction="v")


class _GaussianUNet(torch.nn.Module):
    """A stand-in for ``diffusers.UNet2DModel`` whose ε-prediction is exact for a Gaussian mixture
    of 2-D points, seen as ``[B, 1, 1, 2]`` images: ε(x, k) = −σ_t ∇log p_t(x), t = k / (N − 1).
    Through :class:`DiffusersScoreModel` it is a base whose composition has a closed form."""

    def __init__(self, mixture, n_train=1000):
        super().__init__()
        from types import SimpleNamespace

        self.mixture, self.n_train = mixture, n_train
        self.config = SimpleNamespace(sample_size=(1, 2), in_channels=1)
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the base a device

    def forward(self, x, timestep):
        from types import SimpleNamespace

        t = timestep / (self.n_train - 1)
        std = self.mixture.sde.marginal_std(t).reshape(-1, 1)
        eps = -std * self.mixture.score(x.reshape(len(x), 2), t)
        return SimpleNamespace(sample=eps.reshape(x.shape))


class _FlatClassifier:
    """The exact Gaussian classifier read on ``[B, 1, 1, 2]`` images."""

    def __init__(self, exact):
        self.exact, self.n_bases, self.n_slots = exact, exact.n_bases, exact.n_slots
        self.alpha_conditioned, self.image_shape = exact.alpha_conditioned, (1, 1, 2)

    def log_joint(self, x, t, logit_alpha=None):
        return self.exact.log_joint(x.reshape(len(x), 2), t, logit_alpha)


@pytest.mark.parametrize("operation, z, masses", [("contrast", 3 / 8, [2 / 3, 1 / 3, 0])])
def test_smc_over_diffusers_bases_reaches_the_closed_form(operation, z, masses):
    """SMC over two adapted diffusers-style ε-prediction bases (DDPM β from 1e-4 to 0.02 over 1000
    steps, i.e. VP β from 0.1 to 20) whose predictions are exact for the Gaussian mixtures
    (½, ½, 0) and (0, ½, ½) of three far-apart components: the contrast y = (1, 1) has
    Z = ¼ + ½·½·½ = 3/8 and component masses (2/3, 1/3, 0) (test_smc's closed form). 200 runs of 64
    particles, 100 steps: E[exp(log Ẑ)] within 4 standard errors of Z, and the pooled weighted
    component masses within 4 standard errors (from the runs' spread) of the target; controls:
    Z · e^{±0.1} and the first base's masses (½, ½, 0) fail."""
    import diffusers

    from sculpting.adapters.diffusers import DiffusersScoreModel
    from sculpting.diffusion.smc import diffusion_smc_runs

    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    sde = VPSDE(0.1, 20.0)
    mixtures = [GaussianMixtureScore(MEANS, w, s=0.25, sde=sde) for w in ([0.5, 0.5, 0], [0, 0.5, 0.5])]
    bases = [DiffusersScoreModel.from_ddpm(_GaussianUNet(m), sched) for m in mixtures]
    assert bases[0].sde == sde and bases[0].image_shape == (1, 1, 2)
    model = sc.compose(bases, _FlatClassifier(ExactGaussianClassifier(mixtures)), operation)
    runs, n = 200, 64
    tracker, x, _ = diffusion_smc_runs(model, n, runs=runs, generator=torch.Generator().manual_seed(3), steps=100)
    zs = tracker.log_z.exp()
    mean, se = float(zs.mean()), float(zs.std() / math.sqrt(runs))
    assert abs(mean - z) < 4 * se, (mean, z, se)
    for wrong in (z * math.exp(0.1), z * math.exp(-0.1)):
        assert abs(mean - wrong) > 4 * se, (mean, wrong, se)
    w = (tracker.log_w - torch.logsumexp(tracker.log_w, -1, keepdim=True)).exp()  # [R, N] normalised
    comp = torch.cdist(x.reshape(-1, 2), MEANS).argmin(1).reshape(runs, n)
    per_run = torch.stack([(w * (comp == k)).sum(1) for k in range(3)], 1)  # [R, 3] weighted masses
    got, err = per_run.mean(0), per_run.std(0) / math.sqrt(runs)
    want = torch.tensor(masses, dtype=torch.float64)
    assert ((got - want).abs() <= 4 * err + 1e-12).all(), (got, want, err)
    assert ((got - torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)).abs() > 4 * err).any()


def test_time_classifier_records_its_sde(tmp_path):
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.io import load_time_classifier, save_time_classifier

    clf = TimeClassifier((1, 8, 8), n_bases=3, n_slots=3, sde=VPSDE().config, trunk=(4, 8), hidden=16, embed_dim=16)
    save_time_classifier(clf, tmp_path / "c.pt")
    again = load_time_classifier(tmp_path / "c.pt")
    assert again.sde == VPSDE() and json.loads((tmp_path / "c.json").read_text())["arch"]["sde"]["kind"] == "vp"


def test_probability_flow_ode_sampler_hits_the_vp_masses():
    sde = VPSDE()
    p1 = GaussianMixtureScore(MEANS, [0.5, 0.5, 0], s=0.25, sde=sde)
    p2 = GaussianMixtureScore(MEANS, [0, 0.5, 0.5], s=0.25, sde=sde)
    x = sc.sample(
        sc.compose([p1, p2], ExactGaussianClassifier([p1, p2]), "contrast"), 2000, seed=0, steps=20, sampler="ode"
    )
    got = torch.bincount(torch.cdist(x, MEANS).argmin(1), minlength=3).double() / len(x)
    assert (got - torch.tensor([2 / 3, 1 / 3, 0], dtype=torch.float64)).abs().max() < 0.04, got
    with pytest.raises(ValueError, match="unknown diffusion sampler"):
        sc.sample(p1, 2, sampler="ddim")
