"""Regression tests of the hostile and careless inputs of the safety round: one test (or more) per
numbered case, each with a valid control beside the refusal.

1. a loaded file never imports or calls what it names; 2. ``sc.save`` never destroys a user's file;
3. memory pre-checks count what is allocated; 4. a worker that exits without a result is an error;
5. non-finite model outputs are errors, not samples or zero weights; 6. the same seed gives the same
bytes on every call; 7. silent cases refused or made correct; 8. obscure cases named.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sculpting as sc
from sculpting.infrastructure.checkpoints import CheckpointError, state_digest
from sculpting.finite import NonFiniteError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_registry():
    """Domains registered by a test are forgotten after it (the registry is process-wide)."""
    from sculpting.infrastructure import registry
    from sculpting.infrastructure.checkpoints import LOADERS
    from sculpting.gflownet.env_kinds import ENVS

    registry.discover()
    saved = registry._REGISTERED.copy(), ENVS.copy(), LOADERS.copy()
    yield
    for live, old in zip((registry._REGISTERED, ENVS, LOADERS), saved):
        live.clear()
        live.update(old)


@pytest.fixture
def small_memory(monkeypatch):
    """A 4 GB memory limit (below CI's 6 GB): the refusals do not depend on this machine's memory."""
    import sculpting.infrastructure.bounds
    import sculpting.diffusion.oracle

    for module in (sculpting.infrastructure.bounds, sculpting.diffusion.oracle):
        monkeypatch.setattr(module, "memory_limit", lambda: 4 * 2**30)


@pytest.fixture(scope="module")
def grid():
    return sc.load_pretrained("grid/shubert_sigmoid")


@pytest.fixture(scope="module")
def mnist():
    return sc.load_pretrained("mnist/M1_M2")


def _forge(path: Path, edit) -> None:
    """Rewrite a checkpoint's metadata with ``edit(meta)`` and a recomputed (valid) SHA-256: what an
    attacker can do to any file."""
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta_json"])
    edit(meta)
    payload["meta_json"] = json.dumps(meta)
    payload["sha256"] = state_digest(payload["state_dict"], payload["meta_json"])
    torch.save(payload, path)


# ------------------------------------------------------------------ 1. files name data, never code
@pytest.fixture(scope="module")
def hypergrid(tmp_path_factory):
    pytest.importorskip("gfn")
    from sculpting.adapters.torchgfn import build

    recipe = "sculpting.adapters.torchgfn:hypergrid_policy"
    b1 = build(recipe, ndim=2, height=4, hidden=8, seed=0)
    b2 = build(recipe, ndim=2, height=4, R0=1.0, hidden=8, seed=1)
    clf = sc.fit_classifier([b1, b2], "harmonic", {"steps": 2, "warmup_steps": 1}, progress=False, arch={"hidden": 8})
    d = tmp_path_factory.mktemp("hypergrid")
    sc.save(b1, d / "b1.pt")
    sc.save(clf, d / "clf.pt")
    return d


@pytest.mark.parametrize(
    "target,kwargs", [("os:system", "command"), ("subprocess:run", "args"), ("shutil:rmtree", "path")]
)
def test_a_forged_torchgfn_recipe_runs_nothing(hypergrid, tmp_path, target, kwargs):
    victim = tmp_path / "victim"
    victim.mkdir()
    marker = tmp_path / "MARKER"
    value = {"command": f"touch {marker}", "args": ["touch", str(marker)], "path": str(victim)}[kwargs]
    for name, where in (("b1.pt", ("recipe",)), ("clf.pt", ("env", "recipe"))):
        f = tmp_path / name
        f.write_bytes((hypergrid / name).read_bytes())

        def edit(meta, where=where):
            spec = meta
            for k in where:
                spec = spec[k]
            spec["recipe"], spec["kwargs"] = target, {kwargs: value}

        _forge(f, edit)
        with pytest.raises(CheckpointError, match=r"not registered in this process.*register_recipe"):
            sc.load_model(f)
        assert not marker.exists() and victim.is_dir()  # nothing ran
    assert sc.load_model(hypergrid / "b1.pt") is not None  # control: the genuine files load
    assert sc.load_model(hypergrid / "clf.pt") is not None


def test_a_recipe_is_a_registered_name_or_a_function_passed_in_this_process():
    pytest.importorskip("gfn")
    from sculpting.adapters.torchgfn import RECIPES, build, hypergrid_policy, register_recipe

    with pytest.raises(ValueError, match="not registered"):
        build("os:system", command="true")
    with pytest.raises(ValueError, match="is taken"):
        register_recipe("sculpting.adapters.torchgfn:hypergrid_policy", lambda **kw: None)
    policy = build(hypergrid_policy, ndim=2, height=4, hidden=8)  # a function: registered explicitly, then built
    assert policy.recipe["recipe"] in RECIPES
    with pytest.raises(ValueError, match="hidden must lie"):  # a file's kwargs are checked before anything is built
        build("sculpting.adapters.torchgfn:hypergrid_policy", hidden=10**6)


def test_a_forged_diffusers_class_name_is_refused(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    from sculpting.adapters.diffusers import DiffusersScoreModel

    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 8),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    )
    sc.save(DiffusersScoreModel(unet), tmp_path / "u.pt")
    assert sc.load_model(tmp_path / "u.pt") is not None  # control
    for name in ("DDPMScheduler", "load_image", "__class__", "os.system"):
        _forge(tmp_path / "u.pt", lambda meta, name=name: meta.update(unet_class=name))
        with pytest.raises(CheckpointError, match="not a diffusers ModelMixin class"):
            sc.load_model(tmp_path / "u.pt")


# ------------------------------------------------------------------ 2. saving never destroys a user's file
def test_save_refuses_a_json_path_and_a_users_files(grid, tmp_path):
    base = grid[0][0]
    with pytest.raises(ValueError, match="cannot end in .json"):
        sc.save(base, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "results.json").write_text('{"my": "results"}')
    with pytest.raises(FileExistsError, match="not written by sculpting.*overwrite=True"):
        sc.save(base, tmp_path / "results.pt")
    assert (tmp_path / "results.json").read_text() == '{"my": "results"}' and not (tmp_path / "results.pt").exists()
    (tmp_path / "notes.json").write_text("my notes")
    with pytest.raises(FileExistsError):
        sc.save(base, tmp_path / "notes")
    (tmp_path / "model.pt").write_text("not a checkpoint")
    with pytest.raises(FileExistsError):
        sc.save(base, tmp_path / "model.pt")
    for bad in ("", ".", tmp_path):
        with pytest.raises(ValueError, match="names a file|is a folder"):
            sc.save(base, bad)
    # controls: a new path, saving again over its own files, and overwrite=True
    sc.save(base, tmp_path / "b.pt")
    sc.save(base, tmp_path / "b.pt")
    sc.save(base, tmp_path / "results.pt", overwrite=True)
    assert json.loads((tmp_path / "results.json").read_text())["kind"] == "gflownet"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "b.json",
        "b.pt",
        "model.pt",
        "notes.json",
        "results.json",
        "results.pt",
    ]


def test_a_full_disk_is_named(grid, tmp_path, monkeypatch):
    import sculpting.infrastructure.checkpoints as ck

    sc.save(grid[0][0], tmp_path / "b.pt")
    before = (tmp_path / "b.pt").read_bytes()

    def torn(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc] . unexpected pos 68736 vs 68624")

    monkeypatch.setattr(ck.torch, "save", torn)
    monkeypatch.setattr(ck, "_disk_nearly_full", lambda folder, margin=0: True)
    with pytest.raises(OSError, match="is full"):
        sc.save(grid[0][1], tmp_path / "b.pt")
    assert (tmp_path / "b.pt").read_bytes() == before  # the earlier file survives
    monkeypatch.setattr(ck, "_disk_nearly_full", lambda folder, margin=0: False)
    with pytest.raises(RuntimeError, match="unexpected pos"):  # control: other failures pass through as they are
        sc.save(grid[0][1], tmp_path / "b.pt")


# ------------------------------------------------------------------ 3. memory pre-checks
def test_memory_pre_checks_count_the_particles_and_the_network(grid, mnist, small_memory):
    from sculpting.smc_core import SMCRun

    harmonic = sc.compose(*mnist, "harmonic")
    with pytest.raises(ValueError, match="GB allowed"):
        sc.smc(harmonic, 2**18, steps=4)
    with pytest.raises(ValueError, match="GB allowed"):
        sc.sample(harmonic, 64, sampler="smc", particles=2**22)
    with pytest.raises(ValueError, match="GB allowed"):
        sc.sample(sc.compose(*grid, "harmonic"), 2**22, sampler="smc", particles=2**22)
    run = sc.smc(sc.compose(*grid, "harmonic"), 8, seed=0)  # control
    with pytest.raises(ValueError, match="GB allowed"):
        run.draw(10**9)
    with pytest.raises(ValueError, match="positive integer"):
        run.draw(0)
    assert isinstance(run, SMCRun) and run.draw(16).shape == (16, 2)
    big = torch.zeros(1, 3, 16, 16).expand(10**6, 3, 16, 16)  # 2 × 10^6 images, no memory taken
    with pytest.raises(ValueError, match="GB allowed"):
        sc.data_oracle([big, big], mnist[0])
    assert sc.data_oracle([big[:50], big[:40] + 1], mnist[0]).n_images == 2  # control


def test_the_smc_memory_estimate_bounds_the_measured_peak(mnist):
    """The estimate is an upper bound of the measured peak, within 4×: measured in a fresh process
    (VmHWM after resetting it), N = 256 particles of the MNIST harmonic mean."""
    from sculpting.families import family_of

    model = sc.compose(*mnist, "harmonic")
    n = 256
    estimate = family_of(model).memory_need(model, n, n, n)
    code = f"""
import torch, sculpting as sc
torch.set_num_threads(1)
m = sc.compose(*sc.load_pretrained('mnist/M1_M2'), 'harmonic')
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(key))
sc.smc(m, 2, seed=0, steps=2)  # the one-time costs (thread pools, kernels) before the reset
open('/proc/self/clear_refs', 'w').write('5')
before = status('VmRSS:')
sc.smc(m, {n}, seed=0, steps=2)
print(status('VmHWM:') - before)
"""
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr
    measured = int(r.stdout)
    assert measured <= estimate <= 4 * measured + 2**24, (measured, estimate)


def test_size_arguments_are_bounded(grid, mnist):
    harmonic = sc.compose(*mnist, "harmonic")
    with pytest.raises(ValueError, match=r"steps must lie in \[2, 100000\]"):
        sc.smc(harmonic, 2, steps=10**7)
    with pytest.raises(TypeError, match="steps must be an integer"):
        sc.smc(harmonic, 2, steps="x")
    g = sc.compose(*grid, "harmonic")
    for steps in (-5, "x", 10):
        with pytest.raises(TypeError, match="steps= is for diffusion SMC"):
            sc.smc(g, 2, steps=steps)
    assert math.isfinite(sc.smc(harmonic, 2, seed=0, steps=3).log_z)  # control


# ------------------------------------------------------------------ 4. workers that exit without a result
def _exit_quietly(x):
    if x == 1:
        os._exit(0)
    return x * 10


def test_a_worker_that_exits_without_a_result_is_an_error():
    from sculpting.infrastructure.workers import fork_map

    with pytest.raises(RuntimeError, match=r"job 1: the worker process exited \(exit code 0\) without returning"):
        fork_map(_exit_quietly, [0, 1, 2], workers=2)
    assert fork_map(_exit_quietly, [0, 2, 3], workers=2) == [0, 20, 30]  # control


def test_sampling_with_a_worker_that_exits_is_an_error(grid):
    bases, _ = grid
    base = bases[0]

    class Quitter(type(base)):
        def log_probs(self, states):
            if len(states) < 999:  # in the workers' shares
                os._exit(0)
            return super().log_probs(states)

    quitter = Quitter.__new__(Quitter)
    quitter.__dict__.update(base.__dict__)
    with pytest.raises(RuntimeError, match="without returning a result"):
        sc.sample(quitter, 64, seed=0, workers=2)
    assert sc.sample(base, 64, seed=0, workers=2).shape == (64, 2)  # control


# ------------------------------------------------------------------ 5. non-finite values are errors
def _poisoned(clf, method, where):
    """A copy of ``clf`` whose ``method`` returns NaN / ±inf in the rows ``where(states)``."""
    import copy

    bad = copy.deepcopy(clf)
    original = getattr(bad, method)

    def poisoned(states, *a, **k):
        out = original(states, *a, **k)
        rows = where(states)
        return torch.where(rows.reshape(-1, *[1] * (out.dim() - 1)), torch.full_like(out, bad.poison), out)

    bad.poison = float("nan")
    setattr(bad, method, poisoned)
    return bad


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("method", ["terminal_log_posterior", "nonterminal_log_joint"])
def test_non_finite_grid_classifier_outputs_are_errors(grid, value, method):
    bases, clf = grid
    bad = _poisoned(clf, method, lambda s: s[:, 0] > 20)
    bad.poison = value
    model = sc.compose(bases, bad, "harmonic", check=False)
    for proposal in ("base", "guided"):
        with pytest.raises(NonFiniteError, match=r"SculptingClassifier returned non-finite .* rows"):
            sc.smc(model, 256, seed=0, proposal=proposal)
    with pytest.raises(NonFiniteError):
        sc.sample(model, 2000, seed=0, sampler="smc", proposal="base")
    good = sc.compose(bases, clf, "harmonic")  # control: the same calls on the genuine classifier
    assert math.isfinite(sc.smc(good, 256, seed=0, proposal="base").log_z)
    x = sc.sample(good, 2000, seed=0, sampler="smc", proposal="base")
    assert float((x[:, 0] > 20).float().mean()) > 0.1  # the states the poison would have emptied


def test_non_finite_mnist_classifier_rows_are_errors(mnist):
    bases, clf = mnist
    bad = _poisoned(clf, "log_joint", lambda x: torch.arange(len(x)) % 4 == 0)
    bad.poison = -float("inf")
    model = sc.compose(bases, bad, "harmonic", check=False)
    with pytest.raises(NonFiniteError, match="TimeClassifier returned non-finite"):
        sc.sample(model, 8, seed=0, sampler="smc", particles=8, steps=3)
    with pytest.raises(NonFiniteError, match="TimeClassifier"):
        sc.sample(model, 8, seed=0, sampler="edm", steps=3)
    bad.poison = float("nan")
    with pytest.raises(NonFiniteError):
        sc.smc(model, 8, seed=0, steps=3, proposal="base")
    good = sc.compose(bases, clf, "harmonic")  # control
    assert torch.isfinite(sc.sample(good, 8, seed=0, sampler="edm", steps=3)).all()


def test_non_finite_base_outputs_are_errors(grid, mnist):
    import copy

    bases, clf = grid
    nan_base = copy.deepcopy(bases[1])
    original = nan_base.log_probs
    nan_base.log_probs = lambda s: original(s).masked_fill((s[:, :1] > 20), float("nan"))
    with pytest.raises(NonFiniteError, match="non-finite action log-probabilities"):
        sc.smc(
            sc.compose([bases[0], nan_base], clf, "harmonic", form="paper", check=False), 64, seed=0, proposal="base"
        )
    mb, mclf = mnist
    nan_score = copy.deepcopy(mb[0])
    score = nan_score.score
    nan_score.score = lambda x, t: score(x, t) * float("nan")
    with pytest.raises(NonFiniteError, match="non-finite scores"):
        sc.smc(sc.compose([nan_score, mb[1]], mclf, "harmonic", check=False), 4, seed=0, steps=3)


def test_the_finite_checks_refuse_and_pass_what_they_should():
    from sculpting.finite import check_finite, check_log_probs

    ok = torch.tensor([[0.0, -math.inf], [-1.0, -0.5]])
    assert check_log_probs(ok, "q") is ok  # an exact zero beside mass passes
    for bad in ([[math.nan, 0.0], [0.0, 0.0]], [[math.inf, 0.0], [0.0, 0.0]], [[-math.inf, -math.inf], [0.0, 0.0]]):
        with pytest.raises(NonFiniteError, match="for 1 of 2 rows"):
            check_log_probs(torch.tensor(bad), "q")
    with pytest.raises(NonFiniteError, match="2 of 3 rows"):
        check_finite(torch.tensor([[1.0], [math.inf], [math.nan]]), "s")


# ------------------------------------------------------------------ 6. same seed, same bytes, every call
def test_the_same_seed_gives_the_same_bytes_on_every_call(grid):
    model = sc.compose(*grid, "harmonic")
    first = sc.smc(model, 32, seed=5)
    again = sc.smc(model, 32, seed=5)
    fresh = sc.smc(sc.compose(*grid, "harmonic"), 32, seed=5)
    for run in (again, fresh):
        assert torch.equal(run.states, first.states) and torch.equal(run.log_weights, first.log_weights)
        assert run.log_z == first.log_z
    assert torch.equal(sc.sample(model, 200, seed=3), sc.sample(model, 200, seed=3))
    assert not torch.equal(sc.smc(model, 32, seed=6).log_weights, first.log_weights)  # control


# ------------------------------------------------------------------ 7. silent cases refused
def test_alpha_with_a_composition_is_refused(grid):
    from sculpting.algebra import Composition

    bases, clf = grid
    comp = Composition(2, (1, 2), ((0.5, 0.5), (0.3, 0.7)))
    with pytest.raises(ValueError, match="carries its own priors"):
        sc.compose(bases, clf, comp, alpha=0.8)
    assert sc.compose(bases, clf, comp).composition is comp  # control


def test_a_classifier_of_bases_under_different_sdes_is_refused(mnist):
    import copy

    from sculpting.diffusion.sde import VPSDE

    vp = copy.deepcopy(mnist[0][1])
    vp.sde = VPSDE()
    with pytest.raises(ValueError, match="different SDEs"):
        sc.fit_classifier([mnist[0][0], vp], "harmonic", {"updates": 1}, progress=False)


@pytest.mark.parametrize(
    "options,error",
    [
        ({"particles": -5}, ValueError),
        ({"proposal": "bogus"}, ValueError),
        ({"twist": "head"}, ValueError),
        ({"resample_threshold": 5}, ValueError),
    ],
)
def test_smc_options_are_checked_on_a_base(grid, mnist, options, error):
    with pytest.raises(error):
        sc.sample(grid[0][0], 4, seed=0, sampler="smc", **options)
    if "twist" not in options:
        with pytest.raises(error):
            sc.sample(mnist[0][0], 2, seed=0, sampler="smc", steps=3, **options)
    assert sc.sample(grid[0][0], 4, seed=0, sampler="smc").shape == (4, 2)  # control


@pytest.mark.parametrize(
    "options",
    [
        {"proposals": 0},
        {"rounds": 0},
        {"acceptances": 0},
        {"acceptances": -1.0},
        {"min_actions": -1},
        {"proposals": 2.5},
        {"max_fraction": 0.0},
    ],
)
def test_rejection_options_are_not_coerced(grid, options):
    model = sc.compose(*grid, "harmonic")
    with pytest.raises((TypeError, ValueError), match=next(iter(options))):
        sc.sample(model, 4, seed=0, sampler="rejection", **options)


def test_amortised_and_successor_head_types(grid):
    from sculpting.sampling import check_option

    with pytest.raises(TypeError, match="envelope must be a number"):
        check_option("envelope", "2")
    check_option("envelope", 2.0)  # control
    with pytest.raises(TypeError, match="successor_head= takes a successor head"):
        sc.compose(*grid, "harmonic", successor_head="head")


@pytest.mark.parametrize("n_slots", [2.5, "3", True, 0])
def test_data_oracle_slots_are_not_coerced(mnist, n_slots):
    x = torch.zeros(4, 3, 16, 16)
    with pytest.raises((TypeError, ValueError), match="n_slots"):
        sc.data_oracle([x, x + 1], mnist[0], n_slots=n_slots)
    assert sc.data_oracle([x, x + 1], mnist[0], n_slots=2).n_slots == 2  # control


def test_a_domain_cannot_take_over_kinds_it_does_not_own(clean_registry):
    from sculpting.infrastructure.registry import Domain, register_domain

    with pytest.raises(ValueError, match="already served by the package"):
        register_domain(Domain("thief", checkpoint_loaders={"gflownet": lambda p: None}))
    with pytest.raises(ValueError, match="'grid' is already served"):
        register_domain(Domain("thief2", env_kinds={"grid": dict}))
    assert sc.load_pretrained("grid/circles") is not None  # control: the grid still loads
    register_domain(Domain("own_kinds", env_kinds={"own_kind_x": dict}))  # control: a new kind is fine


# ------------------------------------------------------------------ 8. obscure cases named
def test_domain_declarations_that_would_fail_later_are_named(clean_registry):
    from dataclasses import dataclass

    from sculpting.infrastructure.registry import Command, Domain, find_pretrained, register_domain

    @dataclass
    class Cfg:
        steps: int = 1

    with pytest.raises(TypeError, match=r"presets\['cpu'\] is a dict"):
        Command(run=lambda *a: {}, presets={"cpu": {"steps": 1}, "smoke": Cfg(), "paper": Cfg()})
    Command(run=lambda *a: {}, presets={"cpu": Cfg(), "smoke": Cfg(), "paper": Cfg()})  # control
    register_domain(Domain("answers", pretrained={"x": lambda directory=None, base_directory=None: 42}))
    with pytest.raises(TypeError, match="returned int, not \\(bases, classifier\\)"):
        find_pretrained("answers/x")()


def test_a_domain_module_that_raises_names_the_variable():
    r = subprocess.run(
        [sys.executable, "-c", "import sculpting as sc; sc.load_pretrained('grid/circles')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SCULPTING_DOMAINS": "this_module_raises_x", "PYTHONPATH": str(ROOT / "tests" / "fixtures")},
    )
    assert r.returncode != 0 and "$SCULPTING_DOMAINS" in r.stderr and "this_module_raises_x" in r.stderr, r.stderr


def test_seeds_at_and_beyond_2_to_the_38_work_with_trajectory_workers():
    from sculpting.gflownet.pipeline import batch_seed

    assert batch_seed(5, 3, 1) == (5 * 2**20 + 3) * 64 + 1  # below 2^37: the packing, unchanged bytes
    big = [batch_seed(2**62, s, w) for s in range(3) for w in range(2)]
    assert all(0 <= b < 2**63 for b in big) and len(set(big)) == len(big)
    torch.Generator().manual_seed(big[0])  # a valid generator seed


def test_a_command_that_returns_no_dict_leaves_no_run_behind(tmp_path, clean_registry):
    from dataclasses import dataclass

    from sculpting.infrastructure.cli import main
    from sculpting.infrastructure.registry import Command, Domain, register_domain

    @dataclass
    class Cfg:
        steps: int = 1

    register_domain(
        Domain(
            "returns_none",
            commands={
                "returns-none": Command(
                    run=lambda args, config, out, device: None, presets={p: Cfg() for p in ("cpu", "smoke", "paper")}
                )
            },
        )
    )
    with pytest.raises(TypeError, match="must return a dict"):
        main(["returns-none", "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_a_nan_log_reward_in_training_is_named():
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.policy import GFlowNet
    from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet

    cfg = GFlowNetTrainConfig(steps=20, batch_size=16, eval_every=0)
    train_gflownet(GFlowNet(GridEnv(4, 2, "corners"), hidden=8, seed=0), cfg, progress=False)  # control
    env = GridEnv(4, 2, "corners")
    env.log_reward_table[::3] = float("nan")
    with pytest.raises(NonFiniteError, match="non-finite log-rewards"):
        train_gflownet(GFlowNet(env, hidden=8, seed=0), cfg, progress=False)


def test_gpu_benchmark_arguments_are_named():
    for args, msg in ((["--device", "bogus"], "is not a torch device"), (["--sections", "bogus"], "invalid choice")):
        r = subprocess.run(
            [sys.executable, "benchmarks/gpu.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_scheduler_configs_name_schedulers_only(tmp_path):
    pytest.importorskip("diffusers")
    import diffusers

    from sculpting.adapters.diffusers import diffusers_class

    assert diffusers_class("DDPMScheduler", diffusers.SchedulerMixin, "x") is diffusers.DDPMScheduler  # control
    for name in ("UNet2DModel", "DiffusionPipeline", "os", "", None):
        with pytest.raises(ValueError, match="not a diffusers SchedulerMixin class"):
            diffusers_class(name, diffusers.SchedulerMixin, "x")
    with pytest.raises(ValueError, match="num_train_timesteps must be an integer"):
        from sculpting.adapters.diffusers import DiffusersScoreModel

        DiffusersScoreModel(torch.nn.Identity(), num_train_timesteps=-5)
