"""Your own models end to end with only ``sc.*`` calls and the adapters' constructors:
``sc.fit_classifier`` on a user reward pair, a user-written environment, torchgfn environments and a
class-conditional diffusers UNet; ``sc.save`` / ``sc.load_model`` round trips; domains that declare
themselves (a domain registered from this file shows up everywhere without editing the package)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import sculpting as sc
from sculpting.gflownet.policy import GFlowNet
from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet


# ------------------------------------------------------------------ a tiny domain of this file
class LineEnv:
    """Walk right on 0..L−1 and stop anywhere: states [B, 1] (position), actions 0 = step, 1 = stop."""

    def __init__(self, length: int = 6, reward: str = "ramp"):
        self.length, self.reward = int(length), reward
        self.n_actions, self.stop_action, self.max_trajectory_length = 2, 1, self.length
        self.feature_dim = self.length
        self.space = {"kind": "test_line", "length": self.length}
        self.config = {"length": self.length, "reward": reward}
        self.n_states = self.length
        self.levels = [torch.tensor([i]) for i in range(self.length)]
        self.child_index = torch.tensor([[i + 1] for i in range(self.length - 1)] + [[self.length]])
        self.parent_index = torch.tensor([[self.length]] + [[i - 1] for i in range(1, self.length)])
        self.state_log_n_parents = torch.zeros(self.length, dtype=torch.float64)

    def initial_states(self, b):
        return torch.zeros(b, 1, dtype=torch.long)

    def all_states(self):
        return torch.arange(self.length)[:, None]

    def index(self, s):
        return s[:, 0]

    def action_mask(self, s):
        return torch.stack([s[:, 0] < self.length - 1, torch.ones(len(s), dtype=torch.bool)], 1)

    def step(self, s, a):
        return s + (a == 0).long()[:, None]

    def log_n_parents(self, s):
        return torch.zeros(len(s))

    def log_reward(self, s):
        x = s[:, 0].double()
        return x * 0.5 if self.reward == "ramp" else -x * 0.5

    def encode(self, s):
        return torch.nn.functional.one_hot(s[:, 0], self.length).float()


def _line_base(a, cfg, out, device):
    model = GFlowNet(LineEnv(a.length, a.reward), hidden=16, seed=cfg.seed)
    train_gflownet(model, cfg, progress=False)
    sc.save(model, out / "model.pt")
    return {}


TEST_DOMAIN = sc.Domain(
    name="test_line",
    env_kinds={"test_line": LineEnv},
    pretrained={
        "ramps": lambda directory=None, base_directory=None: (
            [GFlowNet(LineEnv(reward=r), hidden=8, seed=i) for i, r in enumerate(("ramp", "slope"))],
            None,
        )
    },
    commands={
        "line-base": sc.Command(
            _line_base,
            {p: GFlowNetTrainConfig(steps=5, batch_size=4, eval_every=0) for p in ("cpu", "smoke", "paper")},
            arguments=[(("--reward",), {"default": "ramp"}), (("--length",), {"type": int, "default": 6})],
            help="a walk on a line",
        )
    },
)


def test_a_domain_registered_here_appears_everywhere(tmp_path, capsys):
    sc.register_domain(TEST_DOMAIN)
    assert "test_line/ramps" in sc.pretrained_names()
    with pytest.raises(ValueError, match="test_line/ramps"):
        sc.load_pretrained("nope/nothing")
    bases, _ = sc.load_pretrained("test_line/ramps")
    assert len(bases) == 2
    from sculpting.infrastructure.cli import main, parser

    assert "line-base" in parser().format_help()
    main(["line-base", "--preset", "smoke", "--out", str(tmp_path / "run"), "--reward", "slope"])
    model = sc.load_model(tmp_path / "run" / "model.pt")
    assert model.env.config == {"length": 6, "reward": "slope"}
    clf = sc.fit_classifier(bases, 2, {"steps": 20, "warmup_steps": 5}, progress=False)
    sc.save(clf, tmp_path / "clf.pt")
    again = sc.load_model(tmp_path / "clf.pt")
    assert all(torch.equal(a, b) for a, b in zip(clf.state_dict().values(), again.state_dict().values()))


def test_a_domain_module_named_in_the_environment_appears_in_a_new_process(tmp_path):
    (tmp_path / "my_domain.py").write_text(
        textwrap.dedent("""
        import sculpting as sc
        DOMAIN = sc.Domain(name="mine", commands={"mine-base": sc.Command(lambda *a: {}, lambda name, args=None: None,
                                                                          help="my command")})
    """)
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path), "SCULPTING_DOMAINS": "my_domain"}
    out = subprocess.run(
        [sys.executable, "-m", "sculpting", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "mine-base" in out and "[mine] my command" in out and "grid-base" in out


def test_the_method_core_and_the_package_root_import_no_domain():
    code = (
        "import sys, sculpting.algebra, sculpting.compose, sculpting.gflownet, sculpting.diffusion, sculpting;"
        "print([m for m in sys.modules if m.startswith('sculpting.domains')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_domain_dispatch_chain_in_the_package():
    import pathlib

    root = pathlib.Path(sc.__file__).parent
    bad = [str(p) for p in root.rglob("*.py") if "if domain ==" in p.read_text() or "elif domain ==" in p.read_text()]
    assert not bad


# ------------------------------------------------------------------ fit_classifier, GFlowNets
def _two_grid_bases():
    """A user's reward pair (not shipped), as Python functions, trained briefly."""
    from sculpting.domains.grid import GridEnv, register_reward

    def ridge(z):
        return -((z[:, 0] - z[:, 1]).double() ** 2) / 8

    def corner(z):
        return -(z.double() ** 2).sum(-1) / 30

    register_reward("test_ridge", ridge)
    register_reward("test_corner", corner)
    bases = []
    for i, name in enumerate(("test_ridge", "test_corner")):
        b = GFlowNet(GridEnv(8, 2, name), hidden=32, seed=i)
        train_gflownet(b, GFlowNetTrainConfig(steps=300, batch_size=64, lr=3e-3, eval_every=0, seed=i), progress=False)
        bases.append(b)
    return bases


@pytest.fixture(scope="module")
def grid_pair():
    return _two_grid_bases()


def test_fit_classifier_on_a_user_reward_pair_is_close_to_exact_and_reproducible(grid_pair):
    rng = torch.get_rng_state()
    clf = sc.fit_classifier(grid_pair, "harmonic", progress=False, seed=3)
    assert torch.equal(rng, torch.get_rng_state()), "fit_classifier leaves torch's generator alone"
    assert clf.meta["train_config"]["estimator"] == "exact"  # chosen on an enumerable env
    again = sc.fit_classifier(grid_pair, "harmonic", progress=False, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(clf.state_dict().values(), again.state_dict().values()))
    for op in ("harmonic", "contrast", "reverse_contrast"):
        want = sc.target_distribution(grid_pair, op, alpha=0.5)
        learned = sc.l1_distance(sc.exact_distribution(sc.compose(grid_pair, clf, op)), want)
        oracle = sc.l1_distance(sc.exact_distribution(sc.compose(grid_pair, None, op)), want)
        assert oracle < 1e-6 and learned < 0.1, (op, learned)
    x = sc.sample(sc.compose(grid_pair, clf, "harmonic"), 16, seed=0)
    assert x.shape == (16, 2)


@pytest.mark.parametrize("env_name", ["torchgfn_ebm", "torchgfn_set_addition", "bitstrings"])
def test_fit_classifier_on_user_and_torchgfn_envs(env_name):
    from test_contracts import _case

    bases, _ = _case(env_name, sharp=False)
    clf = sc.fit_classifier(bases, "harmonic", progress=False)
    want = sc.target_distribution(bases, "harmonic", alpha=0.4)
    learned = sc.l1_distance(sc.exact_distribution(sc.compose(bases, clf, "harmonic", alpha=0.4)), want)
    assert learned < 0.01, learned  # measured 0.0011 .. 0.0018
    # control: a classifier after one step is 0.07 .. 0.08 away (the bound tells training from none)
    early = sc.fit_classifier(bases, "harmonic", {"steps": 1, "warmup_steps": 0}, progress=False)
    assert sc.l1_distance(sc.exact_distribution(sc.compose(bases, early, "harmonic", alpha=0.4)), want) > 0.01
    assert sc.sample(sc.compose(bases, clf, "harmonic", alpha=0.4), 8, seed=0).shape[0] == 8


def test_fit_classifier_says_what_is_wrong(grid_pair):
    with pytest.raises(ValueError, match="unknown setting"):
        sc.fit_classifier(grid_pair, 2, {"stepz": 3})
    with pytest.raises(TypeError, match="seed"):
        sc.fit_classifier(grid_pair, 2, {"steps": 1}, seed=1.5)
    with pytest.raises(TypeError, match="operation"):
        sc.fit_classifier(grid_pair, True)
    with pytest.raises(TypeError, match="sc.save takes"):
        sc.save(object(), "x.pt")


# ------------------------------------------------------------------ diffusers: class-conditional UNet
TEMPLATES = torch.full((3, 1, 8, 8), -1.0)
TEMPLATES[0, :, :, :4] = 1.0  # A: left half
TEMPLATES[1, :, :4, :] = 1.0  # B: top half
TEMPLATES[2, :, 4:, 4:] = 1.0  # C: a corner


def _judge(x):
    return torch.cdist(x.flatten(1), TEMPLATES.flatten(1)).argmin(1)


@pytest.fixture(scope="module")
def class_conditional():
    import diffusers

    from sculpting.adapters.diffusers import class_bases, fit_unet

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        num_class_embeds=2,
    )
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    # class 0 = {A, B}, class 1 = {B, C}: the harmonic mean of the classes is B, 0 ◑ 1 is mostly A
    types = torch.tensor([0, 1] * 64 + [1, 2] * 64)
    labels = torch.tensor([0] * 128 + [1] * 128)
    images = TEMPLATES[types] + 0.05 * torch.randn(len(types), 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fit_unet(unet, sched, images, labels, steps=800, batch_size=64, lr=3e-3, seed=0, progress=False)
    bases = class_bases(unet, sched)
    clf = sc.fit_classifier(
        bases,
        "harmonic",
        {"pool_size": 256, "pool_steps": 15, "updates": 500, "batch": 64},
        progress=False,
        arch={"trunk": (8, 16), "hidden": 32, "embed_dim": 16},
    )
    return unet, sched, bases, clf


def test_class_conditional_unet_classes_are_sculpted(class_conditional):
    import diffusers

    _, _, bases, clf = class_conditional
    kw = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    ddim = diffusers.DDIMScheduler(**kw, clip_sample=False)
    share = {}
    for name, model in (
        ("base0", bases[0]),
        ("base1", bases[1]),
        ("harmonic", sc.compose(bases, clf, "harmonic")),
        ("contrast", sc.compose(bases, clf, "contrast")),
    ):
        x = sc.sample(model, 128, seed=1, steps=25, sampler=ddim)
        share[name] = torch.bincount(_judge(x), minlength=3).double() / len(x)
    print({k: [round(float(v), 2) for v in s] for k, s in share.items()})
    assert share["base0"][2] < 0.1 and share["base1"][0] < 0.1  # each class keeps to its types
    # γ = 1: harmonic → B only; contrast 0 ◑ 1 → A 2/3, B 1/3 (judged on 128 samples)
    assert share["harmonic"][1] > 0.85 and share["harmonic"][1] > share["base0"][1] + 0.2
    assert abs(float(share["contrast"][0]) - 2 / 3) < 0.15 and share["contrast"][2] < 0.05
    with pytest.raises(ValueError, match="clip_sample"):  # clipping undoes guidance: refused
        sc.sample(sc.compose(bases, clf, "harmonic"), 2, seed=0, steps=3, sampler=diffusers.DDIMScheduler(**kw))


def test_sculpting_pipeline_round_trip(class_conditional, tmp_path):
    import diffusers

    from sculpting.adapters.diffusers import DiffusersScoreModel, SculptingPipeline

    unet, sched, bases, clf = class_conditional
    pipe = SculptingPipeline(
        bases, clf, diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    )
    out = pipe(
        "harmonic",
        alpha=0.5,
        gamma=1.0,
        num_inference_steps=10,
        generator=torch.Generator().manual_seed(0),
        batch_size=4,
    )
    assert out.images.shape == (4, 1, 8, 8) and 0 <= float(out.images.min()) and float(out.images.max()) <= 1
    pipe.save_pretrained(tmp_path / "pipe")
    again = SculptingPipeline.from_pretrained(tmp_path / "pipe", bases)
    assert json.loads((tmp_path / "pipe" / "composition.json").read_text())["class_labels"] == [0, 1]
    out2 = again("harmonic", num_inference_steps=10, generator=torch.Generator().manual_seed(0), batch_size=4)
    assert torch.equal(out.images, out2.images)
    with pytest.raises(ValueError, match="class-conditional"):
        DiffusersScoreModel(unet)
    with pytest.raises(TypeError, match="from_ddpm"):
        DiffusersScoreModel(unet, sched, class_label=0)
