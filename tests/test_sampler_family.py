"""Samplers are one class family (sculpting.sampling): a new sampler is one new file.

The two toys below are the whole of what a contributor writes — a subclass with a name, a family,
its options and ``draw`` — and nothing else in the package is edited: defining the class
registers it, so ``sc.sample(model, n, sampler="toy_...")`` and ``sampler=ToySampler(...)`` work.
Both are checked against what they must draw: the GFlowNet toy (the base policy at temperature 1,
by its own rollout) against the exact law by enumeration, within the multinomial bound; the
diffusion toy (Euler–Maruyama without corrector) draws the same bytes as ``pc`` with
``corrector=False``, which is the same chain.
"""

import math

import pytest
import torch

import sculpting as sc
from sculpting.diffusion.samplers.pc import pc_sample
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.policy import GFlowNet
from sculpting.sampling import Sampler, SamplerError, registered


class ToyTemperedSampler(Sampler):
    """Rolls out the model's own policy at a temperature: π(a | s)^(1/T), renormalised."""

    name = "toy_tempered"
    family = "gflownet"
    options = {"temperature": 1.0}

    def draw(self, model, n, generator=None, *, steps=None, batch_size=None, progress=False):
        env, t = model.env, float(self.values["temperature"])
        states = env.initial_states(n)
        done = torch.zeros(n, dtype=torch.bool)
        for _ in range(env.max_trajectory_length):
            if bool(done.all()):
                break
            live = (~done).nonzero().squeeze(1)
            logits = model.log_probs(states[live]).double() / t
            a = torch.multinomial(torch.softmax(logits, 1).float(), 1, generator=generator).squeeze(1)
            states[live] = env.step(states[live], a)
            done[live[a == env.stop_action]] = True
        return states


class ToyEulerSampler(Sampler):
    """The reverse SDE by Euler–Maruyama alone (the predictor of ``pc`` without its corrector)."""

    name = "toy_euler"
    family = "diffusion"
    options = {}

    def draw(self, model, n, generator=None, *, steps=300, batch_size=None, progress=False):
        return pc_sample(model, n, steps, generator=generator, corrector=False)


def test_a_new_gflownet_sampler_is_one_class():
    assert registered("gflownet")["toy_tempered"] is ToyTemperedSampler
    env = GridEnv(6, 2, "circle1")
    base = GFlowNet(env, hidden=16, seed=0)
    n = 20_000
    x = sc.sample(base, n, seed=0, sampler="toy_tempered", temperature=1.0)
    assert torch.equal(x, sc.sample(base, n, seed=0, sampler=ToyTemperedSampler(temperature=1.0)))
    p = sc.exact_distribution(base).double().exp()
    h = torch.bincount(env.index(x), minlength=env.n_states).double() / n
    v = p * (1 - p) / n  # multinomial: E|h − p| = sqrt(2v/π) per state; the bound adds 4 s.d. of the sum
    bound = float((2 * v / math.pi).sqrt().sum() + 4 * (v * (1 - 2 / math.pi)).sum().sqrt())
    assert float((h - p).abs().sum()) < bound
    cold = sc.sample(base, n, seed=0, sampler="toy_tempered", temperature=0.3)  # control: another law
    hc = torch.bincount(env.index(cold), minlength=env.n_states).double() / n
    assert float((hc - p).abs().sum()) > bound
    with pytest.raises(TypeError, match="takes no option 'temprature'"):
        sc.sample(base, 4, seed=0, sampler="toy_tempered", temprature=2.0)
    with pytest.raises(TypeError, match="is an instance"):
        sc.sample(base, 4, seed=0, sampler=ToyTemperedSampler(), temperature=2.0)
    with pytest.raises(SamplerError, match="samples diffusion models"):
        sc.sample(base, 4, seed=0, sampler=ToyEulerSampler())


def test_a_new_diffusion_sampler_is_one_class():
    from sculpting.diffusion.gaussian import GaussianMixtureScore

    assert registered("diffusion")["toy_euler"] is ToyEulerSampler
    means = torch.tensor([[-1.5, 0.0], [1.5, 0.0]])
    base = GaussianMixtureScore(means, [0.5, 0.5], s=0.25)
    x = sc.sample(base, 64, seed=0, steps=50, sampler="toy_euler")
    assert torch.equal(x, sc.sample(base, 64, seed=0, steps=50, sampler="pc", corrector=False))
    assert torch.equal(x, sc.sample(base, 64, seed=0, steps=50, sampler=ToyEulerSampler()))
    assert not torch.equal(x, sc.sample(base, 64, seed=0, steps=50, sampler="pc"))  # control
    with pytest.raises(SamplerError, match="unknown diffusion sampler 'toy_eular'"):
        sc.sample(base, 4, seed=0, steps=5, sampler="toy_eular")


def test_the_package_samplers_are_classes_with_declared_options():
    gfn, diff = registered("gflownet"), registered("diffusion")
    assert {"auto", "full", "rejection", "amortised", "smc"} <= set(gfn)
    assert {"pc", "ode", "edm", "smc", "scheduler"} <= set(diff)
    for cls in [*gfn.values(), *diff.values()]:
        assert issubclass(cls, Sampler) and cls.__module__.rsplit(".", 1)[-1] in (cls.name, "test_sampler_family")
    r = gfn["rejection"](rounds=16)
    assert r.values["rounds"] == 16 and r == gfn["rejection"](rounds=16) and "rounds=16" in repr(r)
    with pytest.raises(ValueError, match="rounds must be an integer"):
        gfn["rejection"](rounds=0)
    with pytest.raises(ValueError, match="needs scheduler="):
        diff["scheduler"]()


def test_each_family_builds_its_own_options_and_refuses_what_it_ignores():
    """``sc.sample`` / ``sc.smc`` hand each family an options object of its own
    (families.GFlowNetDraw / DiffusionDraw, GFlowNetSMCOptions / DiffusionSMCOptions); an option
    the family has no use for is refused, not silently dropped. Controls: the same calls without
    the foreign option succeed."""
    from sculpting.diffusion.model import ScoreModel
    from sculpting.families import (
        DiffusionDraw,
        DiffusionSMCOptions,
        GFlowNetDraw,
        GFlowNetSMCOptions,
        family_of,
    )

    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    g = sc.compose(bases, clf, "harmonic", alpha=0.3)
    fam = family_of(g)
    common = dict(steps=None, batch_size=None, progress=False, workers=1, sampler={})
    assert isinstance(fam.draw_options(g, 4, None, 0, **common), GFlowNetDraw)
    smc_common = dict(proposal="auto", resample_threshold=0.5, twist="classifier", steps=None, progress=False)
    assert isinstance(fam.smc_options(8, None, **smc_common), GFlowNetSMCOptions)
    with pytest.raises(TypeError, match="steps= is for diffusion samplers"):
        sc.sample(g, 4, seed=0, steps=10)
    with pytest.raises(TypeError, match="progress= is for diffusion samplers"):
        sc.sample(g, 4, seed=0, progress=True)
    with pytest.raises(TypeError, match="steps= is for diffusion SMC"):
        sc.smc(g, 8, seed=0, steps=10)
    with pytest.raises(TypeError, match="progress= is for diffusion SMC"):
        sc.smc(g, 8, seed=0, progress=True)
    assert sc.sample(g, 4, seed=0).shape[0] == 4 and sc.smc(g, 8, seed=0).particles == 8  # controls

    d = ScoreModel(3, "smoke", seed=0)
    dfam = family_of(d)
    assert isinstance(dfam.draw_options(d, 2, None, 0, **common), DiffusionDraw)
    assert dfam.draw_options(d, 2, None, 0, **common).steps == 300  # the documented default
    assert isinstance(dfam.smc_options(4, None, **smc_common), DiffusionSMCOptions)
    with pytest.raises(ValueError, match="workers= is for GFlowNets"):
        sc.sample(d, 2, seed=0, steps=3, workers=2)
    with pytest.raises(ValueError, match="twist='head'"):
        dfam.smc_options(4, None, **{**smc_common, "twist": "head"})
    assert sc.sample(d, 2, seed=0, steps=3).shape == (2, 3, 16, 16)  # control


def test_sample_documents_every_declared_sampler_option():
    """``help(sc.sample)`` names every registered sampler and every option it declares, in the
    tables per family (control: an undeclared name is not there)."""
    doc = sc.sample.__doc__
    for family in ("gflownet", "diffusion"):
        for name, cls in registered(family).items():
            if name.startswith("toy_"):
                continue
            assert f'"{name}"' in doc or name == "scheduler", (family, name)
            for option in cls.options:
                assert f"``{option}``" in doc, (family, name, option)
    assert "``no_such_option``" not in doc
