"""Sculpting GFlowNets with no classifier: the path composition of the bases' own path likelihoods
(sculpting.gflownet.paths, docs/classifier_free.md).

On small grids every trajectory can be enumerated, so the path composition's target Π(x) is known
exactly (``path_target``) and the SMC that samples it is checked against it:

* bases that are exact GFlowNets of one shared (uniform) backward policy: Π equals the x-space
  composition to float precision, for every operation, α-weighted and three-base ones included;
  random bases: the gap is measured by enumeration and reported (it is real: > 1e-3);
* the pooled SMC draws land within the noise bound of Π derived from the runs' own spread; the
  proposal alone (guidance by the product of path posteriors, weights ignored) does not: the bias
  the weights remove is real;
* E[exp(log Ẑ)] = Z within 4 standard errors, Z · e^{±0.1} outside;
* one observation gives constant weights (G sums to 1) and log Ẑ = log ω_y; the mixture is the
  plain mixture of the bases' chains, every weight 1.
"""

import math

import pytest
import torch
from smc_checks import histogram, run_noise_bound

import sculpting as sc
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.exact import exact_policy_from_reward
from sculpting.gflownet.paths import PathComposition, path_smc_runs, path_target
from sculpting.gflownet.policy import GFlowNet, TabularPolicy

ENV = GridEnv(5, 2, "symmetric_shubert")
OPERATIONS = ["mixture", "harmonic", "contrast", "reverse_contrast"]


def _consistent_bases(env, m=2, seed=3):
    """Exact GFlowNets of the uniform backward policy for random rewards (DP)."""
    g = torch.Generator().manual_seed(seed)
    return [
        TabularPolicy(env, exact_policy_from_reward(env, torch.randn(env.n_states, generator=g, dtype=torch.float64)))
        for _ in range(m)
    ]


def _random_bases(env, m=2, scale=1.5):
    """Policies with independent random logits at every state (float64 tables): far from
    consistent with any shared backward policy, so paths to one x carry different evidence."""
    from sculpting.gflownet.policy import masked_log_softmax

    out = []
    for s in range(m):
        g = torch.Generator().manual_seed(100 + s)
        logits = torch.randn(env.n_states, env.n_actions, generator=g, dtype=torch.float64) * scale
        out.append(TabularPolicy(env, masked_log_softmax(logits, env.action_mask(env.all_states()))))
    return out


def _network_bases(env):
    """Untrained networks (float32 log-probabilities)."""
    return [GFlowNet(env, hidden=16, seed=s) for s in (0, 1)]


@pytest.mark.parametrize("op, alpha", [*((op, 0.3) for op in OPERATIONS), ("harmonic", 0.5), ("y=123", None)])
def test_path_composition_is_the_x_space_composition_for_consistent_bases(op, alpha):
    bases = _consistent_bases(ENV, 3 if op == "y=123" else 2)
    comp = sc.parse_composition(op, len(bases), 0.5 if alpha is None else alpha)
    got, _ = path_target(PathComposition(bases, comp))
    want = comp.target_log_prob(torch.stack([sc.exact_distribution(b) for b in bases]).double())
    assert sc.l1_distance(got, want) < 1e-12


@pytest.mark.parametrize("op", ["harmonic", "contrast"])
def test_for_inconsistent_bases_the_path_composition_differs_by_a_measured_gap(op):
    bases = _random_bases(ENV)
    comp = sc.parse_composition(op, 2, 0.3)
    got, _ = path_target(PathComposition(bases, comp))
    gap = sc.l1_distance(got, sc.target_distribution(bases, op, alpha=0.3))
    print(f"\n{op}: L1(path composition, x-space composition) = {gap:.4f} (random bases, 5×5 grid)")
    assert gap > 1e-3  # the bases disagree about which paths lead to x: the two targets differ


@pytest.mark.parametrize("op", ["harmonic", "contrast", "reverse_contrast"])
def test_path_smc_draws_the_path_target(op):
    """64 runs of 256 particles; bound: the runs'-spread bound of tests/smc_checks.py."""
    model = sc.compose(_random_bases(GridEnv(5, 2, "corners")), None, op, alpha=0.3)
    env = model.env
    path_model = PathComposition(model.bases, model.composition)
    target, _ = path_target(path_model)
    runs, n = 64, 256
    tracker, x, _ = path_smc_runs(path_model, n, runs, torch.Generator().manual_seed(11))
    from sculpting.smc_core import draw_from_runs

    draws = x[draw_from_runs(tracker.log_w, torch.Generator().manual_seed(12))]
    bound = run_noise_bound(env, draws, runs, target)
    got = sc.l1_distance(histogram(env, draws).clamp_min(1e-300).log(), target)
    assert got < bound, (op, got, bound)
    # controls: the other operations' targets are 2 bounds away (a sampler that swapped the
    # observations or α fails); for the harmonic mean, guidance by the product of the path
    # posteriors alone (the proposal, never resampled, weights dropped) misses the target, so the
    # weights carry a real correction (for the contrasts of these bases the proposal alone is
    # within the noise: measured 0.053 against 0.057 and 0.029 against 0.034)
    for other in {"harmonic", "contrast", "reverse_contrast"} - {op}:
        wrong, _ = path_target(PathComposition(model.bases, sc.parse_composition(other, 2, 0.3)))
        assert sc.l1_distance(wrong, target) > 2 * bound, other
    if op == "harmonic":
        _, guided, _ = path_smc_runs(path_model, n, runs, torch.Generator().manual_seed(11), resample_threshold=0.0)
        unweighted = sc.l1_distance(histogram(env, guided).clamp_min(1e-300).log(), target)
        assert unweighted > bound, (op, unweighted, bound)


@pytest.mark.parametrize("op", ["harmonic", "contrast"])
def test_the_normalising_constant_is_unbiased(op):
    path_model = PathComposition(_random_bases(ENV), sc.parse_composition(op, 2, 0.3))
    _, log_z = path_target(path_model)
    tracker, _, _ = path_smc_runs(path_model, 16, 400, torch.Generator().manual_seed(5))
    zs = tracker.log_z.exp()
    mean, se, z = float(zs.mean()), float(zs.std() / math.sqrt(len(zs))), math.exp(log_z)
    assert abs(mean - z) < 4 * se, (mean, z, se)
    for wrong in (z * math.exp(0.1), z * math.exp(-0.1)):
        assert abs(mean - wrong) > 4 * se, (mean, wrong, se)


def test_one_observation_keeps_the_weights_equal_and_the_mixture_is_the_bases_chains():
    """With one observation G(a) = P_y(a | s) sums to one: every increment is 0 up to the rounding
    of the policies' float32 log-softmax (a few 2⁻²⁴ per step, over at most 9 steps: < 1e-5)."""
    bases = _network_bases(ENV)
    one = PathComposition(bases, sc.Composition(2, (2,), ((0.3, 0.7),), name="y=2"))
    tracker, x, _ = path_smc_runs(one, 64, 4, torch.Generator().manual_seed(0))
    tol = 8 * (ENV.max_trajectory_length + 1) * 2**-24
    assert float(tracker.log_w.max() - tracker.log_w.min()) < tol
    assert torch.allclose(tracker.log_z, torch.full_like(tracker.log_z, math.log(0.7)), atol=tol)
    mix = PathComposition(bases, sc.parse_composition("mixture", 2, 0.3))
    tracker, x, _ = path_smc_runs(mix, 4096, 4, torch.Generator().manual_seed(0))
    assert float(tracker.log_w.abs().max()) < tol and not any(bool(r.any()) for r in tracker.resampled)
    p1, p2 = (sc.exact_distribution(b).double().exp() for b in bases)
    p = 0.3 * p1 + 0.7 * p2
    n = len(x)
    v = p * (1 - p) / n
    bound = float((2 * v / math.pi).sqrt().sum() + 4 * (v * (1 - 2 / math.pi)).sum().sqrt())
    assert float((histogram(ENV, x) - p).abs().sum()) < bound
    assert float((p1 - p).abs().sum()) > 2 * bound  # control: base 1 alone is another law


def test_the_api_offers_the_path_composition_where_no_oracle_exists():
    pytest.importorskip("rdkit")
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.policy import MoleculeGFlowNet

    env = FragmentGraphEnv(3, fragments=[("C", [0]), ("O", [0]), ("CC", [0, 1])])
    bases = []
    for s in (0, 1):
        torch.manual_seed(s)
        bases.append(MoleculeGFlowNet(env, width=16, n_layers=1))
    model = sc.compose([b.at_beta(10.0) for b in bases], None, "harmonic")
    assert isinstance(model, PathComposition) and "path space" in repr(model) and "no classifier" in repr(model)
    run = sc.smc(model, 16, seed=0)
    assert run.states.shape[0] == 16 and math.isfinite(run.log_z) and len(run.ess) == run.stats["steps"]
    x = sc.sample(model, 20, seed=1)  # sampler="auto": the path SMC
    assert torch.equal(x, sc.sample(model, 20, seed=1, sampler="smc")) and x.shape[0] == 20
    with pytest.raises(ValueError, match="follows a guided policy"):
        sc.sample(model, 4, seed=0, sampler="rejection")
    with pytest.raises(ValueError, match="fully adapted"):
        sc.smc(model, 4, seed=0, proposal="base")
    with pytest.raises(ValueError, match="not a twist of a path composition"):
        sc.smc(model, 4, seed=0, twist="head")
    # a classifier composition takes the path twist too (its classifier unused)
    grid = sc.compose(_random_bases(ENV), None, "harmonic", alpha=0.3)
    run = sc.smc(grid, 32, seed=0, twist="paths")
    assert run.stats["policy_rows"] == 2 * run.stats["particle_steps"] + 0 * run.stats["steps"]


# ------------------------------------------------------------------ diffusion (no classifier)
MEANS = torch.tensor([[-1.5, 0.0], [0.0, 1.5], [1.5, 0.0]])  # far apart (std 0.25): masses per component
W2 = [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
W3 = [[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]]


def _gaussian_path_model(kind, op, alpha, weights):
    from sculpting.diffusion.gaussian import GaussianMixtureScore
    from sculpting.diffusion.paths import DiffusionPathComposition
    from sculpting.diffusion.sde import VESDE, VPSDE

    sde = VPSDE() if kind == "vp" else VESDE()
    bases = [GaussianMixtureScore(MEANS, w, s=0.25, sde=sde) for w in weights]
    comp = sc.parse_composition(op, len(bases), alpha)
    # the x-space target's component masses: p̄(k) Π_j p(y_j | k), from the components' weights
    want = comp.target_log_prob(torch.tensor(weights, dtype=torch.float64).clamp_min(1e-300).log()).exp()
    return DiffusionPathComposition(bases, comp), want


def _component_masses(tracker, x, runs):
    """``[R, 3]`` each run's weighted mass per component."""
    w = torch.softmax(tracker.log_w, -1)
    k = torch.cdist(x.float(), MEANS).argmin(1).reshape(runs, -1)
    return torch.stack([(w * (k == c)).sum(1) for c in range(3)], 1)


def test_the_kernel_ratio_is_the_difference_of_gaussian_log_densities():
    from sculpting.diffusion.paths import kernel_log_ratios
    from sculpting.diffusion.smc import _gauss

    g = torch.Generator().manual_seed(0)
    x, z = (torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    scores = torch.randn(3, 5, 3, 4, 4, generator=g, dtype=torch.float64)
    s_q, var = scores.mean(0) + 0.3, 0.037
    x_new = x + var * s_q + math.sqrt(var) * z
    direct = torch.stack([_gauss(x_new, x + var * s_q, var) - _gauss(x_new, x + var * s, var) for s in scores], 1)
    assert float((kernel_log_ratios(z, var, s_q, scores) - direct).abs().max()) < 1e-10
    assert float((kernel_log_ratios(z, 1.1 * var, s_q, scores) - direct).abs().max()) > 1e-3  # control


@pytest.mark.parametrize(
    "kind, op, alpha, weights",
    [
        ("ve", "harmonic", 0.5, W2),
        ("vp", "harmonic", 0.3, W2),
        ("ve", "contrast", 0.5, W2),
        ("vp", "reverse_contrast", 0.5, W2),
        ("ve", "y=123", 0.5, W3),
    ],
)
def test_diffusion_path_smc_lands_on_the_x_space_masses(kind, op, alpha, weights):
    """Analytic scores, so each chain is (up to the 100-step discretisation) the exact reversal of
    the shared noising and the path composition is the x-space composition. 32 runs of 64
    particles; per component the weighted mass of each run, its mean within 4 standard errors of
    the target (the spread across runs, floored at the multinomial s.e. of the pooled draws).
    Controls: for the harmonic means, guidance by the product of the path posteriors alone (never
    resampled, weights dropped) misses them (the bias the weights remove); for the others, the
    masses of a neighbouring composition fail the same bound."""
    from sculpting.diffusion.paths import path_smc_runs

    model, want = _gaussian_path_model(kind, op, alpha, weights)
    runs, n = 32, 64
    tracker, x, _ = path_smc_runs(model, n, runs, torch.Generator().manual_seed(1), steps=100)
    per_run = _component_masses(tracker, x, runs)
    got = per_run.mean(0)
    se = torch.maximum(per_run.std(0) / math.sqrt(runs), (want * (1 - want) / (runs * n)).sqrt())
    assert ((got - want).abs() < 4 * se + 1e-9).all(), (got, want, se)
    if op == "harmonic":
        t0, x0, _ = path_smc_runs(model, n, runs, torch.Generator().manual_seed(1), resample_threshold=0.0, steps=100)
        flat = torch.stack([(torch.cdist(x0, MEANS).argmin(1) == c).double().mean() for c in range(3)])
        assert ((flat - want).abs() > 4 * se).any(), (flat, want, se)
    else:
        other = {"contrast": "reverse_contrast", "reverse_contrast": "contrast", "y=123": "mixture"}[op]
        _, wrong = _gaussian_path_model(kind, other, alpha, weights)
        assert ((wrong - got).abs() > 4 * se).any(), (wrong, got, se)


def test_diffusion_one_observation_keeps_weights_equal_and_the_mixture_has_none():
    from sculpting.diffusion.paths import path_smc_runs

    model, _ = _gaussian_path_model("ve", "harmonic", 0.5, W2)
    model.composition = sc.Composition(2, (1,), ((0.4, 0.6),), name="y=1")
    tracker, _, _ = path_smc_runs(model, 32, 2, torch.Generator().manual_seed(0), steps=30)
    # s_q = s̄ + (s̃_1 − s̄) is base 1's own score up to float32 rounding, so e_1 ≈ 0 and each
    # increment is 0 up to that rounding: a few 2⁻²⁴ relative per step, over 29 steps (< 3e-5)
    tol = 29 * 16 * 2**-24
    assert float(tracker.log_w.max() - tracker.log_w.min()) < tol
    assert torch.allclose(tracker.log_z, torch.full_like(tracker.log_z, math.log(0.4)), atol=tol)
    model.gamma = 2.0  # control: γ ≠ 1 moves the proposal off the base, and the weights spread
    tracker, _, _ = path_smc_runs(model, 32, 2, torch.Generator().manual_seed(0), steps=30)
    assert float(tracker.log_w.max() - tracker.log_w.min()) > 100 * tol
    mix, want = _gaussian_path_model("vp", "mixture", 0.3, W2)
    tracker, x, _ = path_smc_runs(mix, 2048, 1, torch.Generator().manual_seed(0), steps=60)
    assert float(tracker.log_w.abs().max()) == 0.0
    got = _component_masses(tracker, x, 1)[0]
    assert ((got - want).abs() < 4 * (want * (1 - want) / 2048).sqrt() + 1e-9).all(), (got, want)


def test_diffusion_path_composition_api():
    from sculpting.diffusion.gaussian import GaussianMixtureScore
    from sculpting.diffusion.paths import DiffusionPathComposition

    bases = [GaussianMixtureScore(MEANS, w, s=0.25) for w in W2]
    model = sc.compose(bases, None, "contrast", gamma=1.0)
    assert isinstance(model, DiffusionPathComposition) and "no classifier" in repr(model)
    x = sc.sample(model, 40, seed=0, steps=20)  # sampler="smc" by default, "auto" the same
    assert torch.equal(x, sc.sample(model, 40, seed=0, steps=20, sampler="auto")) and x.shape == (40, 2)
    run = sc.smc(model, 16, seed=0, steps=20)
    assert math.isfinite(run.log_z) and len(run.ess) == 19
    for bad in ("pc", "ode", "edm"):
        with pytest.raises(ValueError, match="sampled by SMC with the path twist"):
            sc.sample(model, 4, seed=0, steps=10, sampler=bad)
    with pytest.raises(ValueError, match="path-posterior score"):
        sc.sample(model, 4, seed=0, steps=10, sampler="smc", proposal="guided")
    # a classifier composition takes the path twist: the same run as the composition without one
    from sculpting.diffusion.gaussian import ExactGaussianClassifier

    with_clf = sc.compose(bases, ExactGaussianClassifier(bases), "contrast")
    assert torch.equal(sc.smc(with_clf, 16, seed=0, steps=20, twist="paths").states, run.states)
    with pytest.raises(ValueError, match="path posteriors"):
        sc.smc(with_clf, 4, seed=0, steps=10, twist="head")


def test_torchgfn_bases_compose_by_their_paths():
    """torchgfn policies through the adapter: the path SMC draws its exact (enumerated) target."""
    pytest.importorskip("gfn")
    from gfn import gym
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

    from sculpting.adapters.torchgfn import TorchGFNEnv, TorchGFNPolicy

    e = gym.HyperGrid(ndim=2, height=4, validate_modes=False)
    pre = KHotPreprocessor(e.height, e.ndim)
    env = TorchGFNEnv(e, preprocessor=pre)
    bases = []
    for s in (0, 1):
        torch.manual_seed(s)
        net = MLP(pre.output_dim, e.n_actions, hidden_dim=16)
        with torch.no_grad():  # peaked policies: bases far from each other and from the target
            last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.mul_(8.0)
            last.bias.mul_(8.0)
        bases.append(TorchGFNPolicy(DiscretePolicyEstimator(net, e.n_actions, preprocessor=pre), env))
    model = PathComposition(bases, sc.parse_composition("harmonic", 2, 0.3))
    target, _ = path_target(model)
    runs, n = 32, 256
    tracker, x, _ = path_smc_runs(model, n, runs, torch.Generator().manual_seed(2))
    from sculpting.smc_core import draw_from_runs

    draws = x[draw_from_runs(tracker.log_w, torch.Generator().manual_seed(3))]
    bound = run_noise_bound(env, draws, runs, target)
    assert sc.l1_distance(histogram(env, draws).clamp_min(1e-300).log(), target) < bound
    for b in bases:  # control: each base is another law
        assert sc.l1_distance(sc.exact_distribution(b), target) > 2 * bound


def _weighted_noise_bound(log_w: torch.Tensor, onehot: torch.Tensor, sds: float = 4.0) -> float:
    """The L1 that self-normalised importance sampling alone gives the weighted law of ``onehot``
    ``[K, C]`` draws with log weights ``log_w`` ``[K]``: per cell the delta-method variance
    v = Σ_k w̃_k² (1[x_k = c] − p̂_c)², |error| ≈ |N(0, v)| (mean sqrt(2v/π), variance v(1 − 2/π));
    the sum of the means plus ``sds`` standard deviations of the sum."""
    w = torch.softmax(log_w.double(), 0)
    p = w @ onehot
    v = ((w[:, None] ** 2) * (onehot - p) ** 2).sum(0)
    return float((2 * v / math.pi).sqrt().sum() + sds * (v * (1 - 2 / math.pi)).sum().sqrt())


@pytest.mark.parametrize("op", ["harmonic", "contrast", "y=123"])
def test_the_bases_own_chains_importance_weighted_estimate_the_path_target(op):
    """mixture_paths + Composition.path_log_weights: the estimate of Π that benchmarks/free.py sets
    beside the SMC samples (independent of SMC) lands on the enumerated path target within its own
    importance-sampling noise; unweighted (the mixture) it does not, nor do another operation's weights."""
    from sculpting.gflownet.paths import mixture_paths

    env = GridEnv(5, 2, "corners")
    bases = _random_bases(env, 3 if op == "y=123" else 2)
    alpha = 0.5 if op == "y=123" else 0.3
    model = PathComposition(bases, sc.parse_composition(op, len(bases), alpha))
    target, _ = path_target(model)
    x, ell = mixture_paths(model, 32768, torch.Generator().manual_seed(21))
    onehot = torch.nn.functional.one_hot(env.index(x), env.n_states).double()
    log_w = model.composition.path_log_weights(ell)
    bound = _weighted_noise_bound(log_w, onehot)
    got = float((torch.softmax(log_w, 0) @ onehot - target.exp()).abs().sum())
    assert got < bound, (got, bound)
    flat = float((onehot.mean(0) - target.exp()).abs().sum())
    assert flat > 2 * bound, (flat, bound)
    other = "mixture" if op == "y=123" else {"harmonic": "contrast", "contrast": "harmonic"}[op]
    log_w2 = sc.parse_composition(other, len(bases), alpha).path_log_weights(ell)
    assert float((torch.softmax(log_w2, 0) @ onehot - target.exp()).abs().sum()) > 2 * bound
    with pytest.raises(ValueError, match=r"must be \[K, "):
        model.composition.path_log_weights(ell[:, :1])


def test_diffusion_bases_own_chains_importance_weighted_reach_the_x_space_masses():
    """Analytic scores: the chains of the slot-1 mixture, weighted by Π / P̄, give the x-space
    component masses within the importance-sampling noise; unweighted they do not."""
    from sculpting.diffusion.paths import mixture_paths

    model, want = _gaussian_path_model("vp", "harmonic", 0.3, W2)
    x, ell = mixture_paths(model, 4096, torch.Generator().manual_seed(4), steps=60)
    onehot = torch.nn.functional.one_hot(torch.cdist(x.float(), MEANS).argmin(1), 3).double()
    log_w = model.composition.path_log_weights(ell)
    got = torch.softmax(log_w, 0) @ onehot
    bound = _weighted_noise_bound(log_w, onehot)
    assert float((got - want).abs().sum()) < bound, (got, want, bound)
    assert float((onehot.mean(0) - want).abs().sum()) > 2 * bound


def test_the_ddpm_kernel_is_the_schedulers_own_step():
    """The path SMC's DDPM kernel: base i's step x + v (μ_i − x) / v + √v z equals DDPMScheduler.step
    with the same noise. Bound: the scheduler forms β_t = 1 − ᾱ_t / ᾱ_t' in float32, a relative
    error of ~2⁻²⁴ / β_t in its coefficients (the kernel uses float64), times the sizes of x and x̂_0
    (≤ 8 here): 16 · 2⁻²⁴ · 8 / β_t. Control: the "fixed_large" variance is another kernel."""
    diffusers = pytest.importorskip("diffusers")
    from sculpting.diffusion.paths import _DDPMKernel

    model, _ = _gaussian_path_model("vp", "harmonic", 0.3, W2)
    base, sde = model.bases[0], model.sde
    for variance in ("fixed_small", "fixed_large"):
        sched = diffusers.DDPMScheduler(clip_sample=False, variance_type=variance)
        kernel = _DDPMKernel(model, sched, 50)
        x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
        for k in (0, 20, 40, 48):
            t = int(sched.timesteps[k])
            tc = torch.full((16,), max(t / 999, sde.eps))
            eps = -sde.marginal_std(tc)[:, None] * base.score(x, tc)
            want = sched.step(eps, t, x, generator=torch.Generator().manual_seed(k)).prev_sample
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(k))
            v = kernel.var(k)
            got = x + v * kernel.scores([base], x, k)[0] + math.sqrt(v) * z
            beta = 1 - float(sched.alphas_cumprod[t] / sched.alphas_cumprod[int(sched.timesteps[k + 1])])
            assert float((got - want).abs().max()) < 16 * 2**-24 * 8 / beta, (variance, k)
            if variance == "fixed_small" and k >= 40:  # control: the other variance (the two meet at high noise)
                other = _DDPMKernel(model, diffusers.DDPMScheduler(clip_sample=False, variance_type="fixed_large"), 50)
                wrong = x + other.var(k) * other.scores([base], x, k)[0] + math.sqrt(other.var(k)) * z
                assert float((wrong - want).abs().max()) > 1e-3


@pytest.mark.parametrize("op, alpha", [("harmonic", 0.3), ("reverse_contrast", 0.5)])
def test_path_smc_along_a_ddpm_schedulers_kernel_lands_on_the_x_space_masses(op, alpha):
    """The chains follow DDPMScheduler's own kernel (100 of its 1 000 timesteps); the same check and
    controls as the package's own steps above."""
    diffusers = pytest.importorskip("diffusers")
    from sculpting.diffusion.paths import path_smc_runs

    model, want = _gaussian_path_model("vp", op, alpha, W2)
    sched = diffusers.DDPMScheduler(clip_sample=False)
    runs, n = 32, 64
    tracker, x, _ = path_smc_runs(model, n, runs, torch.Generator().manual_seed(3), steps=100, scheduler=sched)
    per_run = _component_masses(tracker, x, runs)
    got = per_run.mean(0)
    se = torch.maximum(per_run.std(0) / math.sqrt(runs), (want * (1 - want) / (runs * n)).sqrt())
    assert ((got - want).abs() < 4 * se + 1e-9).all(), (got, want, se)
    other = {"harmonic": "mixture", "reverse_contrast": "contrast"}[op]
    _, wrong = _gaussian_path_model("vp", other, alpha, W2)
    assert ((wrong - got).abs() > 4 * se).any(), (wrong, got, se)
    # through the API: a DDPM scheduler as the sampler is path SMC along its kernel
    assert sc.sample(model, 16, seed=0, sampler=sched, steps=20).shape == (16, 2)


def test_schedulers_without_a_gaussian_kernel_are_refused_for_a_path_composition():
    diffusers = pytest.importorskip("diffusers")
    model, _ = _gaussian_path_model("vp", "harmonic", 0.3, W2)
    for sched in (diffusers.DDIMScheduler(clip_sample=False), diffusers.EulerDiscreteScheduler()):
        with pytest.raises(ValueError, match="without noise"):
            sc.sample(model, 4, seed=0, sampler=sched, steps=10)
    with pytest.raises(ValueError, match="variance-preserving"):
        ve, _ = _gaussian_path_model("ve", "harmonic", 0.3, W2)
        sc.sample(ve, 4, seed=0, sampler=diffusers.DDPMScheduler(clip_sample=False), steps=10)
    from sculpting.diffusion.gaussian import ExactGaussianClassifier

    with_clf = sc.compose(model.bases, ExactGaussianClassifier(model.bases), "harmonic", alpha=0.3)
    with pytest.raises(ValueError, match="kernel of a path composition"):
        sc.sample(with_clf, 4, seed=0, sampler="smc", scheduler=diffusers.DDPMScheduler(), steps=10)
