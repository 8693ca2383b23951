"""Contract suite: every registered kind of GFlowNet environment × every GFlowNet sampler, and
every diffusion sampler (ours and diffusers' schedulers) × VE / VP, checked for the same four
properties — normalisation, exactness against the target (enumerable / closed form), device
placement, same seed → same bytes.

GFlowNet environments: the grid, bit strings (a user-style env), the enumerated fragment world and
the molecule env itself, and torchgfn's HyperGrid, DiscreteEBM, SetAddition and BitSequence through
the adapter. Bases are random policies (the oracle composition is exact for any bases).
"""

import pytest
import torch
from smc_checks import NoisyTwistQ, run_noise_bound

import sculpting as sc
from sculpting.gflownet.exact import base_tables
from sculpting.gflownet.guidance import GuidedPolicy
from sculpting.gflownet.policy import GFlowNet, policy_table
from sculpting.gflownet.rollout import sample_trajectories_tabular
from sculpting.protocols import is_enumerable

FRAGS = [("C", [0]), ("O", [0]), ("CC", [0, 1])]


SHARP = {"factor": 4.0, "tilt": 3.0}  # _case(..., sharp=False): the plain random bases


def sharpen(model, seed, factor=None, tilt=None):
    """Multiply the output layers of a random policy by ``factor`` and add N(0, ``tilt``²) to their
    biases (from ``seed``): peaked bases with different preferred actions, so that the composed
    target is far (> 0.5 in L1) from each base and a sampler that ignores the guidance fails."""
    factor = SHARP["factor"] if factor is None else factor
    tilt = SHARP["tilt"] if tilt is None else tilt
    heads = [getattr(model, h) for h in ("stop_head", "add_head", "set_head") if hasattr(model, h)]
    heads = heads or [[m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]]
    g = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        for layer in heads:
            layer.weight.mul_(factor)
            layer.bias.mul_(factor).add_(torch.randn(layer.bias.shape, generator=g) * tilt)
    return model


def _torchgfn_bases(gfn_env, pre, seeds=(0, 1)):
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.utils.modules import MLP

    from sculpting.adapters.torchgfn import TorchGFNEnv, TorchGFNPolicy

    env = TorchGFNEnv(gfn_env, preprocessor=pre)
    out = []
    for s in seeds:
        torch.manual_seed(s)
        pf = DiscretePolicyEstimator(
            MLP(pre.output_dim, gfn_env.n_actions, hidden_dim=16), gfn_env.n_actions, preprocessor=pre
        )
        out.append(sharpen(TorchGFNPolicy(pf, env), s))
    return out


def _case(name, sharp: bool = True):
    """(bases, enumerable env or None for exactness) of one environment kind; ``sharp=False``: the
    plain random bases (no :func:`sharpen`), e.g. for fitting a classifier quickly."""
    if not sharp:
        saved = dict(SHARP)
        SHARP.update(factor=1.0, tilt=0.0)
        try:
            return _case(name)
        finally:
            SHARP.update(saved)
    if name == "grid":
        from sculpting.domains.grid import GridEnv

        env = GridEnv(6, 2, "symmetric_shubert")
        return [sharpen(GFlowNet(env, hidden=16, seed=s), s) for s in (0, 1)], env
    if name == "bitstrings":
        from sculpting.domains.bitstrings import BitStringEnv

        env = BitStringEnv(4)
        return [sharpen(GFlowNet(env, hidden=16, seed=s), s + 10) for s in (0, 1)], env
    if name in ("fragments_enumerated", "molecules"):
        pytest.importorskip("rdkit")
        from sculpting.domains.molecules.enumerated import EnumeratedFragmentEnv
        from sculpting.domains.molecules.env import FragmentGraphEnv
        from sculpting.domains.molecules.policy import MoleculeGFlowNet

        env = FragmentGraphEnv(3, fragments=FRAGS)
        E = EnumeratedFragmentEnv(env)
        bases = []
        for s, beta in ((0, 10.0), (1, 60.0)):
            torch.manual_seed(s)
            b = sharpen(MoleculeGFlowNet(env, width=16, n_layers=1), s).at_beta(beta)
            if name == "fragments_enumerated":
                b.env = E
            bases.append(b)
        return bases, E
    from gfn import gym
    from gfn.preprocessors import IdentityPreprocessor, KHotPreprocessor

    if name == "torchgfn_hypergrid":
        e = gym.HyperGrid(ndim=2, height=5, validate_modes=False)
        return _torchgfn_bases(e, KHotPreprocessor(e.height, e.ndim)), None
    if name == "torchgfn_ebm":
        return _torchgfn_bases(gym.DiscreteEBM(ndim=4), IdentityPreprocessor(output_dim=4)), None
    if name == "torchgfn_set_addition":
        e = gym.SetAddition(n_items=5, max_items=3, reward_fn=lambda s: s.float().sum(-1) + 1.0)
        return _torchgfn_bases(e, IdentityPreprocessor(output_dim=5)), None
    if name == "torchgfn_bitsequence":
        e = gym.BitSequence(word_size=2, seq_size=8, n_modes=4)
        return _torchgfn_bases(e, IdentityPreprocessor(output_dim=4)), None
    raise KeyError(name)


ENVS = [
    "grid",
    "bitstrings",
    "fragments_enumerated",
    "molecules",
    "torchgfn_hypergrid",
    "torchgfn_ebm",
    "torchgfn_set_addition",
    "torchgfn_bitsequence",
]
GFN_SAMPLERS = ["full", "rejection", "smc", "tabular"]
# SMC from the base proposal is consistent in N but biased at small N (a target state the anchor
# base rarely visits is missed by every particle of a run): 512 particles keep that bias under the
# noise here, and 32 runs give the spread the bound is derived from.
SMC_RUNS, SMC_PARTICLES = 16, 4096
# the base proposal everywhere but SetAddition, where the harmonic target sits on a first action the
# anchor base almost never takes (ESS/N = 0.001 after step 1): every run descends from ~4 particles
# and the honest bound (0.63) cannot tell the noisy guided law (0.31 away) from the target. There
# the noisy twist's own guided proposal (ESS/N ≥ 0.8) is used: still wrong, so the weights decide.
SMC_PROPOSAL = {"torchgfn_set_addition": "guided"}
_CACHE = {}


def _bases(name):
    if name not in _CACHE:
        _CACHE[name] = _case(name)
    return _CACHE[name]


def _exact_env(name, bases, exact_env):
    env = exact_env or bases[0].env
    assert is_enumerable(env), f"{name}: expected an enumerable environment"
    return env


def _frequencies(env, x):
    counts = torch.bincount(env.index(x), minlength=env.n_states).double()
    return counts / counts.sum()


def _noise_bound(p, n, draws=200):
    """E[L1] + 4 s.d. of the empirical law of n i.i.d. draws from p (simulated binomial noise)."""
    g = torch.Generator().manual_seed(0)
    l1 = torch.tensor(
        [
            float(
                (
                    torch.bincount(
                        torch.multinomial(p.float(), n, replacement=True, generator=g), minlength=len(p)
                    ).double()
                    / n
                    - p
                )
                .abs()
                .sum()
            )
            for _ in range(draws)
        ]
    )
    return float(l1.mean() + 4 * l1.std())


@pytest.mark.parametrize("sampler", GFN_SAMPLERS)
@pytest.mark.parametrize("env_name", ENVS)
def test_gflownet_contract(env_name, sampler):
    bases, exact_env = _bases(env_name)
    env = _exact_env(env_name, bases, exact_env)
    comp_bases = bases
    if env_name == "molecules":  # the raw molecule env (not enumerable): a base, sampled, against the exact law
        assert not is_enumerable(bases[0].env)
        model, exact_model = bases[0], None
        want = sc.exact_distribution(_with_env(bases[0], env))
    else:
        model = sc.compose(comp_bases, None, "harmonic", alpha=0.3)
        want = sc.target_distribution(comp_bases, "harmonic", alpha=0.3)
        # the target written out, independently of sculpting.algebra: p1 p2 / (α p1 + (1 − α) p2), α = 0.3
        p1, p2 = (sc.exact_distribution(_with_env(b, env)).double().exp() for b in comp_bases)
        brute = p1 * p2 / (0.3 * p1 + 0.7 * p2).clamp_min(1e-300)
        assert float((want.double().exp() - brute / brute.sum()).abs().sum()) < 1e-6
        swapped = p1 * p2 / (0.7 * p1 + 0.3 * p2).clamp_min(1e-300)  # control: α ↔ 1 − α is another law
        assert float((want.double().exp() - swapped / swapped.sum()).abs().sum()) > 1e-3
        # normalisation and exactness of the composed law (by DP; the anchored form is exact for any
        # bases, the paper form for exact GFlowNets: test_both_guidance_forms_are_exact_on_exact_gflownets)
        got = sc.exact_distribution(model)
        assert abs(float(got.exp().sum()) - 1) < 1e-9
        assert sc.l1_distance(got, want) < 1e-6
        exact_model = model
    n = 3000
    if sampler == "tabular":
        if exact_model is None:
            pytest.skip("the tabular sampler needs the enumerable env (covered by fragments_enumerated)")
        table = policy_table(env, exact_model)
        assert torch.allclose(
            table.exp().sum(1)[table.isfinite().any(1)].double(), torch.ones(1, dtype=torch.float64), atol=1e-5
        )  # normalised rows
        draw = lambda seed: (
            sample_trajectories_tabular(env, table, n, 0.0, torch.Generator().manual_seed(seed)).terminal
        )
    elif sampler == "smc":
        if exact_model is None:
            pytest.skip("SMC samples compositions (a base is sampled exactly by the other samplers)")
        # the weights must do the work: the bases' own proposal, and a twist whose non-terminal head
        # carries noise (exact terminal head, so the target stays p1 p2 / (α p1 + (1 − α) p2))
        n, proposal = SMC_RUNS * SMC_PARTICLES, SMC_PROPOSAL.get(env_name, "base")
        model = GuidedPolicy(
            comp_bases, NoisyTwistQ(env, base_tables(comp_bases), model.composition, delta=1.5, seed=0), "anchored"
        )
        guided = sc.l1_distance(sc.exact_distribution(model), want)
        draw = lambda seed: sc.sample(model, n, seed=seed, sampler="smc", particles=SMC_PARTICLES, proposal=proposal)
    else:
        draw = lambda seed: sc.sample(model, n, seed=seed, sampler=sampler)
    x = draw(0)
    assert x.device == torch.device("cpu")
    p = want.exp()
    if sampler == "smc":  # particles repeat (resampling, the final draw): the bound from the runs' spread
        bound = run_noise_bound(env, x, SMC_RUNS, want)
        assert guided > bound, f"the noisy twist's guided law is already at the target ({guided:.3f}): no control"
    else:
        bound = _noise_bound(p, n)
    assert sc.l1_distance(_frequencies(env, x).clamp_min(1e-300).log(), want) < bound
    if exact_model is not None:  # the control: sampling base 1 (ignoring the guidance) fails the bound
        for b in comp_bases:
            assert sc.l1_distance(sc.exact_distribution(_with_env(b, env)), want) > 0.5
        base1 = sc.sample(_with_env(comp_bases[0], env), n, seed=0)
        assert sc.l1_distance(_frequencies(env, base1).clamp_min(1e-300).log(), want) > bound
    assert torch.equal(x, draw(0)), "same seed, same bytes"
    assert not torch.equal(x, draw(1))


def _with_env(base, env):
    import copy

    b = copy.copy(base)
    b.env = env
    return b


# ------------------------------------------------------------------ diffusion
MEANS = torch.tensor([[-1.5, 0.0], [0.0, 1.5], [1.5, 0.0]])
TARGETS = {"harmonic": [0, 1, 0], "contrast": [2 / 3, 1 / 3, 0]}


def _scheduler(name):
    import diffusers

    kw = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    return {
        "ddpm": lambda: diffusers.DDPMScheduler(**kw, clip_sample=False),
        "ddim": lambda: diffusers.DDIMScheduler(**kw, clip_sample=False),
        "dpm_multistep": lambda: diffusers.DPMSolverMultistepScheduler(**kw),
        "euler": lambda: diffusers.EulerDiscreteScheduler(**kw),
    }[name]()


DIFFUSION_CASES = [("ve", s, k) for s, k in (("pc", 200), ("ode", 40), ("edm", 40), ("smc", 100))] + [
    ("vp", s, k)
    for s, k in (
        ("pc", 200),
        ("ode", 40),
        ("edm", 40),
        ("smc", 100),
        ("ddpm", 100),
        ("ddim", 50),
        ("dpm_multistep", 25),
        ("euler", 50),
    )
]


@pytest.mark.parametrize("sde_kind,sampler,steps", DIFFUSION_CASES)
def test_diffusion_contract(sde_kind, sampler, steps):
    from sculpting.diffusion.gaussian import ExactGaussianClassifier, GaussianMixtureScore
    from sculpting.diffusion.sde import VESDE, VPSDE

    sde = VPSDE() if sde_kind == "vp" else VESDE()
    p1 = GaussianMixtureScore(MEANS, [0.5, 0.5, 0], s=0.25, sde=sde)
    p2 = GaussianMixtureScore(MEANS, [0, 0.5, 0.5], s=0.25, sde=sde)
    clf = ExactGaussianClassifier([p1, p2])
    opt = (
        (lambda: {"sampler": _scheduler(sampler)})
        if sampler in ("ddpm", "ddim", "dpm_multistep", "euler")
        else (lambda: {"sampler": sampler})
    )
    if sampler == "smc":  # 3 runs of 500 particles
        opt = lambda: {"sampler": "smc", "particles": 500}  # noqa: E731
    for op, want in TARGETS.items():
        model = sc.compose([p1, p2], clf, op)
        x = sc.sample(model, 1500, seed=0, steps=steps, **opt())
        assert x.shape == (1500, 2) and x.device == torch.device("cpu") and torch.isfinite(x).all()
        got = torch.bincount(torch.cdist(x, MEANS).argmin(1), minlength=3).double() / len(x)
        assert (got - torch.tensor(want, dtype=torch.float64)).abs().max() < 0.05, (op, got)
        if op == "harmonic":  # the one component, with its width
            assert abs(float(x.std(0).mean()) - 0.25) < 0.05
    assert torch.equal(x, sc.sample(model, 1500, seed=0, steps=steps, **opt())), "same seed, same bytes"


@pytest.mark.parametrize("operation, alpha", [("harmonic", 0.3), ("contrast", 0.3), ("reverse_contrast", 0.7)])
def test_both_guidance_forms_are_exact_on_exact_gflownets(operation, alpha):
    """Bases that are exact GFlowNets for the uniform backward policy (built by DP from rewards): the
    paper form (mixture of the bases' policies weighted by Q(y_1 = i | s)) and the anchored form
    both give the target, written out independently of sculpting.algebra:
    harmonic p1 p2 / (α p1 + (1 − α) p2), contrast p1² / (α p1 + (1 − α) p2), reverse p2² / (·).
    Control: the paper form on random (inexact) bases misses it (docs/guidance.md)."""
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.exact import exact_policy_from_reward
    from sculpting.gflownet.policy import TabularPolicy

    env = GridEnv(6, 2, "symmetric_shubert")
    g = torch.Generator().manual_seed(3)
    rewards = [torch.randn(env.n_states, generator=g, dtype=torch.float64) * 2 for _ in range(2)]
    bases = [TabularPolicy(env, exact_policy_from_reward(env, r)) for r in rewards]
    p1, p2 = (torch.softmax(r, 0) for r in rewards)  # every grid state is terminal: p_i = R_i / Z_i
    mix = alpha * p1 + (1 - alpha) * p2
    top = {"harmonic": p1 * p2, "contrast": p1 * p1, "reverse_contrast": p2 * p2}[operation]
    want = top / mix
    want = want / want.sum()
    for form in ("paper", "anchored"):
        got = sc.exact_distribution(sc.compose(bases, None, operation, alpha=alpha, form=form)).double().exp()
        assert float((got - want).abs().sum()) < 1e-6, form
    random_bases = [GFlowNet(env, hidden=16, seed=s) for s in (0, 1)]
    q1, q2 = (sc.exact_distribution(b).double().exp() for b in random_bases)
    top = {"harmonic": q1 * q2, "contrast": q1 * q1, "reverse_contrast": q2 * q2}[operation]
    want = top / (alpha * q1 + (1 - alpha) * q2)
    paper = sc.exact_distribution(sc.compose(random_bases, None, operation, alpha=alpha, form="paper")).double().exp()
    assert float((paper - want / want.sum()).abs().sum()) > 1e-3


def test_rejection_where_the_acceptance_step_decides(monkeypatch):
    """A 3-D grid (4 actions, so every state with all of them valid goes through the rejection
    path, min_actions = 4, where Z(s) ≥ 1/4) and peaked bases: the exact
    rejection sampler matches the exact target within the binomial noise bound. Control: an
    acceptance step that accepts every proposal (w ≡ 1) samples the guided proposal instead and
    fails the same bound."""
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet import acceptance
    from sculpting.gflownet.samplers import gflownet_sampler

    env = GridEnv(5, 3, "corners")
    assert env.n_actions == 4
    bases = [sharpen(GFlowNet(env, hidden=16, seed=s), s, factor=2.0, tilt=1.0) for s in (0, 1)]
    model = sc.compose(bases, None, "harmonic", alpha=0.3)
    want = sc.target_distribution(bases, "harmonic", alpha=0.3)
    n = 4000  # measured: L1 0.048 against a bound of 0.072; accept-all 0.74
    bound = _noise_bound(want.exp(), n)
    stats = acceptance.SamplerStats()
    from sculpting.gflownet.rejection import action_sampler_for
    from sculpting.gflownet.rollout import sample_trajectories

    act = action_sampler_for(model, "rejection", stats=stats, **gflownet_sampler("rejection").options)
    x = sample_trajectories(env, model, n, generator=torch.Generator().manual_seed(0), action_sampler=act).terminal
    assert stats.proposals > 0.05 * stats.states  # the acceptance step ran on many states
    assert sc.l1_distance(_frequencies(env, x).clamp_min(1e-300).log(), want) < bound
    monkeypatch.setattr(acceptance, "log_weights", lambda policy, f, y: torch.zeros(len(y), dtype=torch.float64))
    x = sc.sample(model, n, seed=0, sampler="rejection")
    assert sc.l1_distance(_frequencies(env, x).clamp_min(1e-300).log(), want) > bound
