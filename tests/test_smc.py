"""Sequential Monte Carlo (sc.smc, sampler="smc"): exact for the composition the classifier's
terminal head defines, whatever the errors of its non-terminal head (docs/smc.md).

GFlowNets on enumerable environments (grid, bit strings, torchgfn's HyperGrid) with a classifier
whose weights carry noise: the pooled SMC histogram is within the noise bound of the exact
terminal-defined target (computed by DP), the guided policy's exact law is not (the control).
The normalising-constant estimate averages to the exact value. Diffusion: the closed-form
Gaussian mixture with a classifier that is exact at t = ε and wrong at larger t.
"""

import math

import pytest
import torch
from smc_checks import histogram, noisy_composition, run_noise_bound

import sculpting as sc
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.gflownet.policy import GFlowNet
from sculpting.gflownet.smc import gflownet_smc, terminal_target


def _noisy_classifier(env, seed, scale=0.3):
    """A randomly initialised classifier whose weights then get Gaussian noise of ``scale``."""
    clf = SculptingClassifier(env, 2, 2, hidden=32, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in clf.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return clf


def sharpen(model, factor):
    """Multiply the last linear layer of a random policy by ``factor``: distinct, peaked bases."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(factor)
        last.bias.mul_(factor)
    return model


def _env(name):
    if name == "grid":
        from sculpting.domains.grid import GridEnv

        return GridEnv(6, 2, "symmetric_shubert")
    if name == "bitstrings":
        from sculpting.domains.bitstrings import BitStringEnv

        return BitStringEnv(5)
    pytest.importorskip("gfn")
    from gfn import gym
    from gfn.preprocessors import KHotPreprocessor

    from sculpting.adapters.torchgfn import TorchGFNEnv

    e = gym.HyperGrid(ndim=2, height=8, validate_modes=False)
    return TorchGFNEnv(e, preprocessor=KHotPreprocessor(e.height, e.ndim))


def _bases(env_name):
    env = _env(env_name)
    if env_name != "torchgfn_hypergrid":
        return [sharpen(GFlowNet(env, hidden=16, seed=s), 8.0) for s in (0, 1)]
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.utils.modules import MLP

    from sculpting.adapters.torchgfn import TorchGFNPolicy

    bases = []
    for s in (0, 1):
        torch.manual_seed(s)
        pf = DiscretePolicyEstimator(
            MLP(env.feature_dim, env.n_actions, hidden_dim=16), env.n_actions, preprocessor=env.preprocessor
        )
        bases.append(sharpen(TorchGFNPolicy(pf, env), 8.0))
    return bases


# SMC samples are correlated: each run ends with a multinomial draw of N from its N particles, and
# every resampling on the way repeats particles too. The bound is derived from the spread of the 64
# runs' own histograms (run_noise_bound); the guided law must fail it (the control), and so must
# each base.
@pytest.mark.parametrize("proposal", ["base", "guided"])
@pytest.mark.parametrize("form", ["anchored", "paper"])
@pytest.mark.parametrize("env_name", ["grid", "bitstrings", "torchgfn_hypergrid"])
def test_smc_converges_to_the_terminal_defined_target(env_name, form, proposal):
    bases = _bases(env_name)
    env = bases[0].env
    n = 8192
    for op in ("harmonic", "contrast"):
        model = noisy_composition(bases, op, form)
        target, _ = terminal_target(model)
        assert sc.l1_distance(target, sc.target_distribution(bases, op, alpha=0.3)) < 1e-9  # exact terminal head
        x = sc.sample(model, n, seed=11, sampler="smc", particles=128, proposal=proposal)
        bound = run_noise_bound(env, x, n // 128, target)
        guided = sc.l1_distance(sc.exact_distribution(model), target)
        assert guided > bound, f"{op}: the guided law is already at the target ({guided:.3f}): no control"
        got = sc.l1_distance(histogram(env, x).clamp_min(1e-300).log(), target)
        assert got < bound, (
            f"{env_name} {form} {proposal} {op}: SMC L1 {got:.4f} ≥ bound {bound:.4f} (guided {guided:.3f})"
        )
        for b in bases:  # a sampler that ignores the guidance fails the bound
            assert sc.l1_distance(histogram(env, sc.sample(b, n, seed=11)).clamp_min(1e-300).log(), target) > bound


def test_smc_with_a_learned_classifier_whose_weights_carry_noise():
    """A real SculptingClassifier with noisy weights: SMC reaches what its terminal head defines."""
    bases = _bases("grid")
    env = bases[0].env
    clf = _noisy_classifier(env, seed=9, scale=0.3)
    for form in ("anchored", "paper"):
        model = sc.compose(bases, clf, "contrast", alpha=0.3, form=form, check=False)
        target, _ = terminal_target(model)
        n = 8192
        x = sc.sample(model, n, seed=5, sampler="smc", particles=128)
        bound = run_noise_bound(env, x, n // 128, target)  # from the 64 runs' own spread
        guided = sc.l1_distance(sc.exact_distribution(model), target)
        got = sc.l1_distance(histogram(env, x).clamp_min(1e-300).log(), target)
        assert got < bound < guided, (form, got, bound, guided)


@pytest.mark.parametrize("proposal", ["base", "guided"])
@pytest.mark.parametrize("form", ["anchored", "paper"])
def test_normalising_constant_is_unbiased(form, proposal):
    model = noisy_composition(_bases("grid"), "contrast", form)
    _, log_z = terminal_target(model)
    g = torch.Generator().manual_seed(5)
    z = torch.tensor([math.exp(gflownet_smc(model, 8, g, proposal).log_z) for _ in range(400)], dtype=torch.float64)
    mean, se = float(z.mean()), float(z.std() / math.sqrt(len(z)))
    exact = math.exp(log_z)
    assert abs(mean - exact) < 3 * se + 1e-9, (mean, se, exact)
    assert abs(mean - 1.2 * exact) > 3 * se, "the check is too loose to tell a 20 % error"


def test_smc_run_fields_and_resampling_bookkeeping():
    model = noisy_composition(_bases("grid"), "harmonic", "anchored", delta=3.0)
    run = sc.smc(model, 64, seed=0, proposal="base", resample_threshold=1.0)  # resample after every step
    assert run.states.shape == (64, 2) and run.log_weights.shape == (64,)
    assert abs(float(torch.logsumexp(run.log_weights, 0))) < 1e-9
    assert len(run.ess) == run.stats["steps"] and all(1 - 1e-9 <= e <= 64 + 1e-9 for e in run.ess)
    assert run.resampled_at == list(range(len(run.ess) - 1))  # all but the last step (all stopped)
    never = sc.smc(model, 64, seed=0, proposal="base", resample_threshold=0.0)
    assert never.resampled_at == []
    # one classifier row per particle per step (+ the root once)
    assert never.stats["twist_rows"] == never.stats["particle_steps"] + 1
    # same seed, same bytes; the global generator untouched
    state = torch.random.get_rng_state()
    again = sc.smc(model, 64, seed=0, proposal="base", resample_threshold=1.0)
    assert torch.equal(run.states, again.states) and torch.equal(run.log_weights, again.log_weights)
    assert torch.equal(state, torch.random.get_rng_state())


def test_smc_sampler_options_are_declared_and_checked():
    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    model = sc.compose(bases, clf, "harmonic", alpha=0.3)
    with pytest.raises(TypeError, match="no option 'epsilon'"):
        sc.sample(model, 4, seed=0, epsilon=0.9)
    with pytest.raises(TypeError, match="no option 'particles'"):
        sc.sample(model, 4, seed=0, sampler="rejection", particles=4)
    with pytest.raises(ValueError, match=r"particles must lie in \[1, 4194304\]"):
        sc.sample(model, 4, seed=0, sampler="smc", particles=0)
    with pytest.raises(ValueError, match="unknown SMC proposal"):
        sc.smc(model, 4, proposal="magic")
    with pytest.raises(ValueError, match="successor head"):
        sc.smc(model, 4, proposal="amortised")
    with pytest.raises(ValueError, match="resample_threshold"):
        sc.smc(model, 4, resample_threshold=1.5)
    with pytest.raises(TypeError, match="composition"):
        sc.smc(bases[0], 4)
    x = sc.sample(model, 70, seed=0, sampler="smc", particles=32)  # ⌈70 / 32⌉ = 3 runs, truncated
    assert x.shape == (70, 2)


def test_smc_in_worker_processes_matches_one_process():
    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    model = sc.compose(bases, clf, "contrast", alpha=0.3)
    two = sc.sample(model, 256, seed=4, sampler="smc", particles=32, workers=2)
    assert torch.equal(two[:128], sc.sample(model, 128, seed=4, sampler="smc", particles=32))
    assert torch.equal(two, sc.sample(model, 256, seed=4, sampler="smc", particles=32, workers=2))


# ------------------------------------------------------------------ diffusion
MEANS = torch.tensor([[-1.5, 0.0], [0.0, 1.5], [1.5, 0.0]])


def _gaussian_bases(kind):
    from sculpting.diffusion.gaussian import GaussianMixtureScore
    from sculpting.diffusion.sde import VESDE, VPSDE

    sde = VPSDE() if kind == "vp" else VESDE()
    return [
        GaussianMixtureScore(MEANS, [0.5, 0.5, 0], s=0.25, sde=sde),
        GaussianMixtureScore(MEANS, [0, 0.5, 0.5], s=0.25, sde=sde),
    ]


class _FlatAtLargeT:
    """The exact classifier at t = ε, increasingly under-confident as t grows (logits · (1 − 0.9 u^0.3),
    u = t − ε): the composition it defines at ε is exact, the guidance on the way is not."""

    def __init__(self, bases):
        from sculpting.diffusion.gaussian import ExactGaussianClassifier

        self.exact = ExactGaussianClassifier(bases)
        for k in ("n_bases", "n_slots", "alpha_conditioned", "image_shape"):
            setattr(self, k, getattr(self.exact, k))

    def log_joint(self, x, t, logit_alpha=None):
        u = (t - 1e-3).clamp(min=0)[:, None]
        return torch.log_softmax(self.exact.log_joint(x, t, logit_alpha) * (1 - 0.9 * u**0.3), dim=1)

    def log_first(self, x, t, logit_alpha=None):
        j = self.log_joint(x, t, logit_alpha)
        return torch.logsumexp(j.reshape(len(j), self.n_bases, -1), dim=2)


@pytest.mark.parametrize("kind", ["ve", "vp"])
def test_diffusion_smc_converges_with_a_perturbed_classifier(kind):
    bases = _gaussian_bases(kind)
    model = sc.compose(bases, _FlatAtLargeT(bases), "contrast", check=False)
    # exact p1 ◑ p2 = (2/3) N(μ_1, s²) + (1/3) N(μ_2, s²): mean (−1, 0.5), std 0.75 per coordinate
    want_mass, want_mean, want_std = 2 / 3, torch.tensor([-1.0, 0.5]), 0.75

    def errors(x):
        mass = float((torch.cdist(x, MEANS).argmin(1) == 0).double().mean())
        return (
            abs(mass - want_mass),
            float((x.mean(0) - want_mean).abs().max()),
            float((x.std(0) - want_std).abs().max()),
        )

    n = 2048
    guided = errors(sc.sample(model, n, seed=0, steps=150, corrector=False))
    # the particles of one run without resampling, unweighted, have the proposal's law
    one = errors(sc.smc(model, n, seed=0, steps=150, resample_threshold=0.0).states)
    many = errors(sc.sample(model, n, seed=0, steps=150, sampler="smc", particles=256))
    assert many[0] < 0.05 and many[1] < 0.1 and many[2] < 0.06, many
    assert guided[0] > 0.15 and one[0] > 0.15, (guided, one)
    run = sc.smc(model, 64, seed=1, steps=50)
    assert run.states.shape == (64, 2) and len(run.ess) == 50 and math.isfinite(run.log_z)


def test_diffusion_sampler_options_are_checked():
    bases = _gaussian_bases("ve")
    from sculpting.diffusion.gaussian import ExactGaussianClassifier

    model = sc.compose(bases, ExactGaussianClassifier(bases), "harmonic")
    with pytest.raises(TypeError, match="no option 'particles'"):
        sc.sample(model, 4, seed=0, steps=5, sampler="edm", particles=3)
    with pytest.raises(TypeError, match="no option 'epsilon'"):
        sc.sample(model, 4, seed=0, steps=5, epsilon=0.3)
    with pytest.raises(TypeError, match="composition"):
        sc.smc(bases[0], 4, steps=5)
    x = sc.sample(model, 10, seed=0, steps=5, sampler="smc", particles=4)
    assert x.shape == (10, 2) and torch.equal(x, sc.sample(model, 10, seed=0, steps=5, sampler="smc", particles=4))


# ------------------------------------------------------------------ molecules (shipped models)
@pytest.mark.parametrize("proposal,twist", [("amortised", "classifier"), ("amortised", "head"), ("base", "head")])
def test_molecule_smc_with_the_shipped_successor_head(proposal, twist):
    from molecule_data import require_data

    require_data()
    from sculpting.domains.molecules.io import load_molecule_models

    m = load_molecule_models()
    pol = sc.compose(
        [m["bases"]["seh"], m["bases"]["sa"]],
        m["classifiers"]["seh_sa"],
        "harmonic",
        beta=32.0,
        successor_head=m["successor_heads"]["seh_sa"],
    )
    run = sc.smc(pol, 16, seed=0, proposal=proposal, twist=twist)
    assert run.states.shape[0] == 16 and torch.isfinite(run.log_weights).any() and math.isfinite(run.log_z)
    assert all(1 - 1e-9 <= e <= 16 + 1e-9 for e in run.ess)
    mols = pol.env.to_mols(run.draw(16, torch.Generator().manual_seed(0)))
    assert sum(x is not None for x in mols) >= 12
    if twist == "head":  # the classifier runs once per particle, at the stop (and once at the root)
        assert run.stats["twist_rows"] == 16 + 1
    else:
        assert run.stats["twist_rows"] == run.stats["particle_steps"] + 1
    assert sc.smc(pol, 16, seed=0, proposal=proposal, twist=twist).states.equal(run.states)


@pytest.mark.parametrize("kind, operation, z", [("ve", "harmonic", 1 / 8), ("vp", "contrast", 3 / 8)])
def test_diffusion_log_z_is_unbiased_against_the_closed_form(kind, operation, z):
    """E[exp(log Ẑ)] = Z = E_p̄[Q(y | x)] at the last grid time. The bases' components are far apart
    (distance 2.1, std 0.25), so at t = ε the component posterior is one-hot and Z is a sum over
    components k: Σ_k p̄(k) P(y_1 | k) P(y_2 | k). Bases (½, ½, 0) and (0, ½, ½), slot priors ½:
    p̄(k) = (¼, ½, ¼), P(y = 1 | k) = (1, ½, 0), P(y = 2 | k) = (0, ½, 1), so harmonic (y = 1, 2)
    Z = ½·½·½ = 1/8 and contrast (y = 1, 1) Z = ¼ + ½·½·½ = 3/8 (quadrature on an 801² grid:
    0.1250000, 0.3750000). 200 runs of 64 particles (advanced
    together); the bound is 4 standard errors of their mean. Controls: Z · e^{±0.1} fail it."""
    from sculpting.diffusion.gaussian import ExactGaussianClassifier
    from sculpting.diffusion.smc import diffusion_smc_runs

    bases = _gaussian_bases(kind)
    model = sc.compose(bases, ExactGaussianClassifier(bases), operation)
    gen = torch.Generator().manual_seed(7)
    tracker, _, _ = diffusion_smc_runs(model, 64, runs=200, generator=gen, steps=100)
    zs = tracker.log_z.exp()
    mean, se = float(zs.mean()), float(zs.std() / math.sqrt(len(zs)))
    assert abs(mean - z) < 4 * se, (mean, z, se)
    for wrong in (z * math.exp(0.1), z * math.exp(-0.1)):  # controls: a 10 % error is detected
        assert abs(mean - wrong) > 4 * se, (mean, wrong, se)
