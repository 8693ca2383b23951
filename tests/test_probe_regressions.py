"""Regression tests of the fault probe: each silently wrong result, hang and obscure error it found,
by its number (run-folder cases 1-3, 7 and 12 are in ``test_run_folders.py`` and ``test_readme.py``;
resume fingerprints in ``test_resume.py``; checkpoint formats in ``test_checkpoints.py``; the data
checksum cache in ``test_reliability.py``; the fuzz suite in ``test_fuzz_api.py``)."""

from __future__ import annotations

import time
import warnings

import pytest
import torch

import sculpting as sc
from sculpting.infrastructure.checkpoints import CheckpointError
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.policy import GFlowNet


@pytest.fixture(scope="module")
def grid():
    return sc.load_pretrained("grid/shubert_sigmoid")


@pytest.fixture(scope="module")
def mnist():
    return sc.load_pretrained("mnist/M1_M2")


# ------------------------------------------------------------------ 4. seeds belong to the call
def _tiny_bases():
    return [GFlowNet(GridEnv(4, 2, r), hidden=8, seed=i) for i, r in enumerate(("circle1", "circle2"))]


def _trainers():
    from sculpting.adapters.diffusers import fit_unet
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.classifier_training import DiffusionClassifierConfig, draw_pool, train_time_classifier
    from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model
    from sculpting.gflownet.classifier import SculptingClassifier
    from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
    from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet

    def gflownet():
        train_gflownet(
            GFlowNet(GridEnv(4, 2, "circle1"), hidden=8, seed=0),
            GFlowNetTrainConfig(steps=3, batch_size=4, eval_every=0),
            progress=False,
        )

    def classifier():
        b = _tiny_bases()
        train_classifier(
            SculptingClassifier(b[0].env, 2, 2, hidden=8, seed=0),
            b,
            ClassifierTrainConfig(steps=3, batch_per_base=4, warmup_steps=1),
            progress=False,
        )

    def score_model():
        train_score_model(
            ScoreModel(3, "smoke", image_size=8, seed=0),
            torch.zeros(4, 3, 8, 8),
            DiffusionTrainConfig(steps=2, batch_size=2),
            progress=False,
        )

    def time_classifier():
        m = ScoreModel(3, "smoke", image_size=8, seed=0)
        cfg = DiffusionClassifierConfig(pool_size=4, pool_steps=10, updates=2, batch=2, terminal_only=0)
        pools = [draw_pool(m, cfg, torch.Generator().manual_seed(0)) for _ in range(2)]
        train_time_classifier(
            TimeClassifier((3, 8, 8), 2, 2, trunk=(4, 8), hidden=8, embed_dim=8, seed=0), pools, cfg, progress=False
        )

    def fit():
        sc.fit_classifier(_tiny_bases(), "harmonic", {"steps": 2}, progress=False, seed=3)

    def unet():
        import diffusers

        with torch.random.fork_rng():  # diffusers builds from the global generator: the test's own draw
            u = diffusers.UNet2DModel(
                sample_size=8,
                in_channels=1,
                out_channels=1,
                layers_per_block=1,
                block_out_channels=(8, 16),
                down_block_types=("DownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "UpBlock2D"),
                norm_num_groups=4,
            )
        fit_unet(u, diffusers.DDPMScheduler(), torch.zeros(4, 1, 8, 8), steps=2, batch_size=2, progress=False)

    def sample():
        sc.sample(sc.compose(_tiny_bases(), None, "harmonic"), 4, seed=1)
        quiet = ScoreModel(3, "smoke", image_size=8, seed=0)  # output layer scaled down 1000×: a score near 0,
        with torch.no_grad():  # samples near the VE prior's noise (std ≈ 10), in range (random weights diverged)
            quiet.unet.out.weight.mul_(1e-3)
            quiet.unet.out.bias.mul_(1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sc.sample(quiet, 2, seed=1, steps=3, corrector=False)

    return {
        "train_gflownet": gflownet,
        "train_classifier": classifier,
        "train_score_model": score_model,
        "train_time_classifier": time_classifier,
        "fit_classifier": fit,
        "fit_unet": unet,
        "sample": sample,
    }


@pytest.mark.parametrize("name", sorted(_trainers()))
def test_no_public_trainer_or_sampler_changes_the_global_generator(name):
    before = torch.get_rng_state()
    _trainers()[name]()
    assert torch.equal(before, torch.get_rng_state()), f"{name} changed torch's global generator"


@pytest.mark.parametrize(
    "make",
    [
        lambda s: GFlowNet(GridEnv(4, 2), hidden=8, seed=s),
        lambda s: __import__("sculpting.diffusion.model", fromlist=["ScoreModel"]).ScoreModel(
            3, "smoke", image_size=8, seed=s
        ),
        lambda s: sc.sample(sc.compose(_tiny_bases(), None, "harmonic"), 2, seed=s),
        lambda s: sc.fit_classifier(_tiny_bases(), 2, {"steps": 1}, progress=False, seed=s),
    ],
)
@pytest.mark.parametrize("seed", [1.5, True, "0", -1])
def test_seeds_are_integers(make, seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        make(seed)


def test_every_constructor_takes_a_seed_and_repeats():
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.diffusion.model import ScoreModel
    from sculpting.gflownet.classifier import SculptingClassifier

    env = GridEnv(4, 2)
    makers = [
        lambda: GFlowNet(env, hidden=8, seed=4),
        lambda: SculptingClassifier(env, 2, 2, hidden=8, seed=4),
        lambda: TimeClassifier((3, 8, 8), 2, 2, trunk=(4, 8), hidden=8, embed_dim=8, seed=4),
        lambda: ScoreModel(3, "smoke", image_size=8, seed=4),
    ]
    for make in makers:
        a, b = make().state_dict(), make().state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ 5. late or obscure errors
def test_bool_sample_size_and_foreign_classifier_are_named(grid, mnist):
    with pytest.raises(TypeError, match="n must be a positive integer"):
        sc.sample(sc.compose(grid[0], grid[1], "harmonic"), True)
    with pytest.raises(TypeError, match="GFlowNet classifier; diffusion bases need a time classifier"):
        sc.compose(mnist[0], grid[1], "harmonic")
    with pytest.raises(TypeError, match="diffusion classifier; GFlowNet bases need"):
        sc.compose(grid[0], mnist[1], "harmonic")


# ------------------------------------------------------------------ 6. diffusers adapter at construction
def test_diffusers_adapter_refuses_at_construction_and_keeps_the_true_shape():
    import diffusers

    from sculpting.adapters.diffusers import DiffusersScoreModel

    unet = diffusers.UNet2DModel(
        sample_size=(8, 16),
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    base = DiffusersScoreModel.from_ddpm(unet, diffusers.DDPMScheduler())
    assert tuple(base.image_shape) == (1, 8, 16)
    assert tuple(sc.sample(base, 2, seed=0, steps=3).shape) == (2, 1, 8, 16)
    with pytest.raises(TypeError, match="from_ddpm"):
        DiffusersScoreModel(unet, diffusers.DDIMScheduler())


# ------------------------------------------------------------------ 8. declared capabilities
def test_an_env_declaring_enumerable_without_its_tables_is_named_at_once():
    from sculpting.domains.bitstrings import BitStringEnv
    from sculpting.protocols import check_env, is_enumerable

    class Half(BitStringEnv):
        is_enumerable = True

    env = Half(3)
    del env.levels  # declared enumerable, one table missing
    with pytest.raises(TypeError, match="declares is_enumerable = True but lacks levels"):
        is_enumerable(env)
    with pytest.raises(TypeError, match="missing levels"):
        check_env(env)
    # an enumerable env without reward_log_distribution: the exact paths still work
    plain = BitStringEnv(3)
    assert not hasattr(plain, "reward_log_distribution") and is_enumerable(plain)
    from sculpting.gflownet.training import exact_l1_to_reward

    assert 0 <= exact_l1_to_reward(GFlowNet(plain, hidden=8, seed=0)) <= 2


# ------------------------------------------------------------------ 9. parts that do not belong together
def test_a_classifier_of_other_bases_is_refused(grid):
    circles, _ = sc.load_pretrained("grid/circles")
    bases, clf = grid
    with pytest.raises(ValueError, match="trained on other bases"):
        sc.compose(circles[:2], clf, "harmonic", alpha=0.5)
    m = sc.compose(circles[:2], clf, "harmonic", alpha=0.5, check=False)  # the user insists
    assert sc.exact_distribution(m).shape[0] == bases[0].env.n_states
    mb, _ = sc.load_pretrained("mnist/MN")
    _, m12 = sc.load_pretrained("mnist/M1_M2")
    with pytest.raises(ValueError, match="trained on 2 bases, got 3"):
        sc.compose(mb, m12, "y=12")
    with pytest.raises(ValueError, match="trained on other bases"):
        sc.compose(mb[:2], m12, "harmonic")


def test_load_pretrained_verifies_renamed_files(tmp_path):
    import shutil

    from sculpting.domains.grid.io import PRETRAINED_DIR

    for src, dst in (("circle1", "shubert"), ("circle2", "sigmoid")):
        shutil.copy(PRETRAINED_DIR / f"base_{src}.pt", tmp_path / f"base_{dst}.pt")
    shutil.copy(PRETRAINED_DIR / "classifier_shubert_sigmoid.pt", tmp_path)
    with pytest.raises(CheckpointError, match="holds a base of reward 'circle1'"):
        sc.load_pretrained("grid/shubert_sigmoid", directory=tmp_path)


# ------------------------------------------------------------------ 10. non-finite results
def test_non_finite_parameters_and_outputs_raise(mnist):
    model = sc.compose(*mnist, "harmonic")
    with pytest.raises(ValueError, match="snr must be finite"):
        sc.sample(model, 2, steps=3, snr=float("nan"))
    for huge in (1e30, 1e6, 100.5):  # beyond the documented range (MAX_GAMMA = 100): refused, not sampled
        with pytest.raises(ValueError, match=r"gamma must be a number in \[0, 100\]"):
            sc.compose(*mnist, "harmonic", gamma=huge)
    with pytest.raises(ValueError, match="snr"):
        sc.sample(model, 2, steps=3, snr=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        sc.compose(*mnist, "harmonic", gamma=float("inf"))


# ------------------------------------------------------------------ 11. sizes bounded before allocating
def test_huge_sizes_are_refused_at_once(grid, mnist):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="2 to 16 bases"):
        sc.parse_composition("y=12", 10**9)
    with pytest.raises(ValueError, match="would need about"):
        sc.sample(sc.compose(grid[0], grid[1], "harmonic"), 10**9)
    with pytest.raises(ValueError, match="would need about"):
        sc.sample(sc.compose(*mnist, "harmonic"), 10**9)
    assert time.perf_counter() - t0 < 5


# ------------------------------------------------------------------ 14. silent coercions
@pytest.mark.parametrize(
    "make, err",
    [
        (
            lambda: __import__("sculpting.gflownet.training", fromlist=["x"]).GFlowNetTrainConfig(batch_size=-1),
            ValueError,
        ),
        (lambda: __import__("sculpting.gflownet.training", fromlist=["x"]).GFlowNetTrainConfig(steps=2.5), TypeError),
        (
            lambda: __import__("sculpting.gflownet.training", fromlist=["x"]).GFlowNetTrainConfig(lr=float("nan")),
            ValueError,
        ),
        (lambda: sc.parse_composition("y=²", 2), ValueError),
        (lambda: sc.parse_composition({}, 2), TypeError),
        (lambda: sc.l1_distance(torch.zeros(3), torch.zeros(4)), ValueError),
    ],
)
def test_silent_coercions_are_refused(make, err):
    with pytest.raises(err):
        make()


def test_compose_refuses_options_of_the_other_family(grid, mnist):
    with pytest.raises(TypeError, match="trained sculpting classifier"):
        sc.compose(grid[0], "clf")
    with pytest.raises(ValueError, match="form= is the GFlowNet guidance form"):
        sc.compose(*mnist, "harmonic", form="paper")
    with pytest.raises(ValueError, match="leave it at 0.5"):
        sc.compose(*sc.load_pretrained("grid/circles"), "y=123", alpha=0.3)
    x = sc.sample(sc.compose(*mnist, "harmonic"), 4, seed=0, steps=3, batch_size=2)  # honoured, not ignored
    assert x.shape[0] == 4


def test_a_misspelled_notebook_parameter_is_named():
    from sculpting.lab.validation import ParameterError, validate_parameters

    with pytest.raises(ParameterError, match="stpes: not a parameter of this notebook \\(did you mean 'steps'"):
        validate_parameters({"steps": 3, "stpes": 10}, {"steps": "int>0"})
