"""The data oracle: the exact time classifier of diffusion bases trained on finite sets, checked
against brute force on a tiny image set and against the closed-form Gaussian check."""

import pytest
import torch

import sculpting as sc
from sculpting.diffusion.gaussian import ExactGaussianClassifier, GaussianMixtureScore
from sculpting.diffusion.oracle import brute_force_log_joint
from sculpting.diffusion.sde import VESDE, VPSDE


def _tiny_sets(m):
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(5, 1, 2, 2, generator=g)
    picks = [[0, 1, 1, 2], [1, 2, 3], [3, 4, 4, 0, 2]][:m]  # shared images, duplicates, unequal sizes
    return [pool[p] for p in picks]


@pytest.mark.parametrize("sde", [VESDE(), VPSDE()], ids=["ve", "vp"])
@pytest.mark.parametrize(
    "m, n_slots, logit_alpha", [(2, 2, 0.0), (2, 2, 1.3), (2, 3, -0.4), (3, 2, None), (3, 3, None)]
)
def test_matches_brute_force_on_a_tiny_image_set(sde, m, n_slots, logit_alpha):
    sets = _tiny_sets(m)
    oracle = sc.data_oracle(sets, sde, n_slots=n_slots)
    assert oracle.n_images == (4 if m == 2 else 5)
    g = torch.Generator().manual_seed(1)
    t = torch.tensor([0.05, 0.3, 0.7, 1.0])
    x = (sde.mean_coef(t)[:, None, None, None] * sets[0][:4] + 0.5 * torch.randn(4, 1, 2, 2, generator=g)).double()
    got = oracle.log_joint(x, t, logit_alpha)
    want = brute_force_log_joint(sets, sde, x, t, logit_alpha, n_slots)
    assert got.shape == (4, m**n_slots)
    assert torch.allclose(got.exp(), want.exp(), atol=1e-9), (got.exp() - want.exp()).abs().max()
    assert torch.allclose(got.exp().sum(1), torch.ones(4, dtype=torch.float64))


def test_agrees_with_the_closed_form_gaussian_classifier():
    """Point-mass data sets are Gaussian mixtures of vanishing width: the two exact classifiers agree."""
    means = torch.tensor([[-1.5, 0.0], [0.0, 1.5], [1.5, 0.0]])
    sde = VPSDE()
    gm = [
        GaussianMixtureScore(means, [0.5, 0.5, 0], s=1e-4, sde=sde),
        GaussianMixtureScore(means, [0, 0.5, 0.5], s=1e-4, sde=sde),
    ]
    oracle = sc.data_oracle([means[[0, 1]], means[[1, 2]]], gm)
    exact = ExactGaussianClassifier(gm)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    t = torch.rand(64, generator=g) * 0.9 + 0.1
    for la in (0.0, 1.0):
        assert torch.allclose(oracle.log_joint(x, t, la).exp(), exact.log_joint(x, t, la).exp(), atol=1e-4)


@pytest.mark.parametrize(
    "op, want", [("harmonic", [0, 1, 0]), ("contrast", [2 / 3, 1 / 3, 0]), ("reverse_contrast", [0, 1 / 3, 2 / 3])]
)
def test_guides_the_composition_to_its_exact_masses(op, want):
    means = torch.tensor([[-1.5, 0.0], [0.0, 1.5], [1.5, 0.0]])
    gm = [
        GaussianMixtureScore(means, [0.5, 0.5, 0], s=0.25, sde=VPSDE()),
        GaussianMixtureScore(means, [0, 0.5, 0.5], s=0.25, sde=VPSDE()),
    ]
    # data sets of the same law: many points around each mean, the same points in both bases
    g = torch.Generator().manual_seed(0)
    clouds = [mu + 0.25 * torch.randn(200, 2, generator=g) for mu in means]
    oracle = sc.data_oracle([torch.cat(clouds[:2]), torch.cat(clouds[1:])], gm)
    x = sc.sample(sc.compose(gm, oracle, op), 1000, seed=0, steps=100)
    got = torch.bincount(torch.cdist(x, means).argmin(1), minlength=3).double() / len(x)
    assert (got - torch.tensor(want, dtype=torch.float64)).abs().max() < 0.06, got


def test_refuses_what_it_cannot_use():
    with pytest.raises(TypeError, match="list of"):
        sc.data_oracle(torch.zeros(3, 2), VESDE())
    with pytest.raises(ValueError, match="one image shape"):
        sc.data_oracle([torch.zeros(3, 2), torch.zeros(3, 4)], VESDE())
    with pytest.raises(ValueError, match="non-finite"):
        sc.data_oracle([torch.zeros(3, 2), torch.full((3, 2), float("nan"))], VESDE())
    with pytest.raises(TypeError, match="SDE"):
        sc.data_oracle([torch.zeros(3, 2), torch.ones(3, 2)], "ve")
    oracle = sc.data_oracle([torch.zeros(3, 2), torch.ones(3, 2)], VESDE())
    with pytest.raises(ValueError, match="takes images"):
        oracle.log_joint(torch.zeros(2, 3), torch.full((2,), 0.5))


def test_empirical_scores_and_weighted_bases():
    """The empirical score is the exact score of the diffused data (finite differences of log p);
    an oracle from weights equals the one from data sets of the same shares."""
    sets = _tiny_sets(2)
    sde = VPSDE()
    oracle = sc.data_oracle([s.double() for s in sets], sde)
    x = torch.randn(3, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    score = oracle.empirical_scores()[0].score(x, t)

    def log_p(z):
        B = len(z)
        m, v = sde.mean_coef(t).reshape(B, 1).double(), sde.marginal_std(t).reshape(B, 1).double() ** 2
        d2 = ((z.reshape(B, 1, -1) - m[:, :, None] * sets[0].reshape(1, len(sets[0]), -1).double()) ** 2).sum(-1)
        return torch.logsumexp(-d2 / (2 * v), dim=1)

    eps, fd = 1e-6, torch.zeros_like(x)
    for i in range(4):
        e = torch.zeros_like(x).reshape(3, -1)
        e[:, i] = eps
        fd.reshape(3, -1)[:, i] = (log_p(x + e.reshape(x.shape)) - log_p(x - e.reshape(x.shape))) / (2 * eps)
    assert torch.allclose(score, fd, atol=1e-5)
    from sculpting.diffusion.oracle import DataOracle

    again = DataOracle.from_weights(oracle.images.reshape(-1, 1, 2, 2), oracle.W, sde)
    assert torch.allclose(again.log_joint(x, t, 0.3), oracle.log_joint(x, t, 0.3))
    with pytest.raises(ValueError, match="distribution"):
        DataOracle.from_weights(oracle.images, oracle.W * 2, sde)


def test_images_no_base_holds_are_dropped():
    """Regression: an exact composition of data-set bases gives zero weight to some images; those
    made 0/0 label posteriors (NaN guidance in the nested MNIST composition)."""
    from sculpting.diffusion.oracle import DataOracle

    images = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    W = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0]], dtype=torch.float64)
    oracle = DataOracle.from_weights(images, W, VPSDE())
    assert oracle.n_images == 3
    x = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    q = oracle.log_joint(x, torch.full((5,), 0.3), 0.0)
    assert bool(torch.isfinite(q).all()) and torch.allclose(q.exp().sum(1), torch.ones(5))


def test_the_build_distill_stage_fine_tunes_each_classifier_once(tmp_path, capsys):
    from sculpting.infrastructure.checkpoints import load_checkpoint
    from sculpting.domains.mnist import build

    build.main(["--smoke", "--out", str(tmp_path), "--stages", "bases", "classifiers", "nested", "distill"])
    for name in ("M1_M2", "MN", "nested"):
        _, meta = load_checkpoint(tmp_path / f"classifier_{name}.pt", "time_classifier")
        assert meta["distill_config"]["updates"] == 3 and len(meta["distill_kl"]) == 2
        assert meta["base_fingerprints"] if name != "nested" else True
    build.main(["--smoke", "--out", str(tmp_path), "--stages", "distill"])
    assert capsys.readouterr().out.count("already distilled") == 3
    # the nested classifier's first base is MN y=12 under the distilled MN classifier: it composes
    from sculpting.diffusion.io import load_score_model, load_time_classifier
    from sculpting.domains.mnist.experiments import NESTED

    mn = [load_score_model(tmp_path / f"base_{n}.pt") for n in ("MN1", "MN2", "MN3")]
    inner = sc.compose(mn, load_time_classifier(tmp_path / "classifier_MN.pt"), NESTED["inner"])
    sc.compose([inner, mn[2]], load_time_classifier(tmp_path / "classifier_nested.pt"), "contrast")


def test_sample_sets_and_the_decomposition_do_not_depend_on_workers():
    """Notebook 06 draws its sample sets in forked workers: the same samples as one at a time."""
    from sculpting.domains.mnist.experiments import draw_compositions
    from sculpting.domains.mnist.io import load_mnist_models
    from sculpting.domains.mnist.oracle import decompose, oracle_classifiers

    models = load_mnist_models()
    specs = [("M1", 1.0), ("M1◑M2", 1.0), ("MN y=11", 5.0), ("(MN y=12)◑MN3", 1.0)]
    one = draw_compositions(models["bases"], models["classifiers"], specs, 3, seed=4, steps=3)
    two = draw_compositions(models["bases"], models["classifiers"], specs, 3, seed=4, steps=3, workers=2)
    assert all(torch.equal(a, b) and a.shape == (3, 3, 16, 16) for a, b in zip(one, two))
    assert not torch.equal(one[1], one[2])
    oracles = oracle_classifiers(models)
    rows = [
        decompose(models, oracles, n=3, seed=1, steps=3, names=["M2◑M1", "(MN y=12)◑MN3"], workers=w) for w in (1, 2)
    ]
    assert rows[0] == rows[1] and [r["composition"] for r in rows[0]] == ["M2◑M1", "(MN y=12)◑MN3"]
    with pytest.raises(ValueError, match="unknown composition"):
        draw_compositions(models["bases"], models["classifiers"], [("M3", 1.0)], 3)
