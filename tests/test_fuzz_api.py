"""A fuzz suite over the public API (hypothesis).

Every argument of every public function is replaced, one at a time, by values drawn from a pool of
wrong things: integers (0, negative, huge), floats (nan, ±inf), bools, strings, None, containers,
tensors of the wrong dtype or shape. Each call must either return a correct result, or raise
``TypeError``, ``ValueError`` or a package error (``CheckpointError``, ``RunFolderError``); never
another exception type, never a silent coercion (a call that succeeds had a valid value), and
never a refusal of a value the suite lists as valid.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import sculpting as sc  # noqa: E402
from sculpting.infrastructure.checkpoints import CheckpointError  # noqa: E402
from sculpting.infrastructure.runs import RunFolderError  # noqa: E402

ALLOWED = (TypeError, ValueError, CheckpointError, RunFolderError)

WRONG = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 3, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.5, 1.5, -0.0]),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["harmonic", "y=12", "y=²", "", "grid/circles", "0.3"]),
    st.none(),
    st.sampled_from([[], {}, (1, 2), [1.5], {"steps": 1}, object()]),
    st.sampled_from(
        [
            torch.zeros(3),
            torch.zeros(2, 2, dtype=torch.int64),
            torch.tensor(float("nan")),
            torch.zeros(0),
            torch.ones(1, dtype=torch.bool),
        ]
    ),
)


def _int(lo=1, hi=None):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)


def _real(pred):
    return lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and pred(v)


# --------------------------------------------------------------------- fixtures (small, shared)
@pytest.fixture(scope="module")
def world():
    from sculpting.diffusion.gaussian import ExactGaussianClassifier, GaussianMixtureScore
    from sculpting.diffusion.sde import VPSDE
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.policy import GFlowNet

    env = GridEnv(4, 2, "circle1")
    bases = [GFlowNet(env, hidden=8, seed=0), GFlowNet(GridEnv(4, 2, "circle2"), hidden=8, seed=1)]
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    gm = [
        GaussianMixtureScore(means, [0.7, 0.3], s=0.3, sde=VPSDE()),
        GaussianMixtureScore(means, [0.3, 0.7], s=0.3, sde=VPSDE()),
    ]
    return {
        "bases": bases,
        "model": sc.compose(bases, None, "harmonic"),
        "gm": gm,
        "gm_model": sc.compose(gm, ExactGaussianClassifier(gm), "harmonic"),
    }


COUNT = {"cases": 0}


def BOOL_OK(v) -> bool:
    """The predicate of flags: only True and False."""
    return isinstance(v, bool)


def ONLY_FALSE(v) -> bool:
    """The predicate of a flag that only its default (False) may take (a GFlowNet's progress bar)."""
    return v is False


def _valid(pred, value) -> bool:
    """``pred(value)``; a value the predicate cannot even compare (a tensor) is invalid, and so is a
    bool anywhere but a flag (``True == 1`` must not make ``True`` a valid count)."""
    if isinstance(value, torch.Tensor):
        return False
    if isinstance(value, bool) and pred not in (BOOL_OK, ONLY_FALSE):
        return False
    return bool(pred(value))


def _probe(call, valid: bool, name: str, value):
    """Run ``call()``: an allowed exception is fine; success with an invalid value is a silent coercion."""
    COUNT["cases"] += 1
    try:
        call()
    except ALLOWED as e:
        assert not valid, f"{name}={value!r} is valid but was refused: {type(e).__name__}: {e}"
        return
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{name}={value!r}: {type(e).__name__}: {e}")
    assert valid, f"{name}={value!r} was accepted (a silent coercion)"


FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)


# --------------------------------------------------------------------- sample
SAMPLE_ARGS = {
    "n": (3, _int(1)),
    "seed": (0, lambda v: v is None or _int(0, 2**63 - 1)(v)),
    "steps": (5, lambda v: v is None or _int(1)(v)),
    "batch_size": (None, lambda v: v is None or _int(1)(v)),
    "workers": (1, lambda v: v == 1 or _int(2)(v)),
    "progress": (False, BOOL_OK),
}


def _bounded(name, value):
    """Valid values that would only make the call long (many samples, steps or processes) are skipped."""
    return not (
        isinstance(value, int)
        and not isinstance(value, bool)
        and ((name in ("n", "steps") and value > 200) or (name == "workers" and value > 1))
    )


@FUZZ
@given(arg=st.sampled_from(sorted(SAMPLE_ARGS)), value=WRONG, family=st.sampled_from(["gflownet", "diffusion"]))
def test_sample_fuzz(world, arg, value, family):
    hypothesis.assume(_bounded(arg, value))
    kwargs = {k: v for k, (v, _) in SAMPLE_ARGS.items()}
    kwargs[arg] = value
    model = world["model"] if family == "gflownet" else world["gm_model"]
    pred = SAMPLE_ARGS[arg][1]
    if family == "gflownet":  # GFlowNets take no steps and no progress bar
        kwargs["steps"] = None if arg != "steps" else value
        pred = {"steps": lambda v: v is None, "progress": ONLY_FALSE}.get(arg, pred)

    def call():
        x = sc.sample(
            model,
            kwargs["n"],
            kwargs["seed"],
            steps=kwargs["steps"],
            batch_size=kwargs["batch_size"],
            workers=kwargs["workers"],
            progress=kwargs["progress"],
        )
        assert len(x) == kwargs["n"] and bool(torch.isfinite(x.double()).all())

    _probe(call, _valid(pred, value), arg, value)


# --------------------------------------------------------------------- smc (and its draws)
SMC_ARGS = {
    "particles": (4, _int(1, 2**22)),
    "seed": (0, lambda v: v is None or _int(0, 2**63 - 1)(v)),
    "proposal": ("auto", lambda v: v in ("auto", "base", "guided")),
    "resample_threshold": (0.5, _real(lambda v: 0 <= v <= 1)),
    "twist": ("classifier", lambda v: v == "classifier"),
    "steps": (None, None),  # per family below
    "progress": (False, BOOL_OK),
}


@FUZZ
@given(arg=st.sampled_from(sorted(SMC_ARGS)), value=WRONG, family=st.sampled_from(["gflownet", "diffusion"]))
def test_smc_fuzz(world, arg, value, family):
    """sc.smc: every option checked on both families (GFlowNets take no steps); a run that succeeds
    has N particles, normalised weights and a finite log Ẑ."""
    hypothesis.assume(
        not (isinstance(value, int) and not isinstance(value, bool) and arg in ("particles", "steps") and value > 200)
    )
    kwargs = {k: v for k, (v, _) in SMC_ARGS.items()}
    kwargs[arg] = value
    model = world["model"] if family == "gflownet" else world["gm_model"]
    pred = SMC_ARGS[arg][1]
    if arg == "steps":
        pred = (lambda v: v is None) if family == "gflownet" else (lambda v: v is None or _int(2, 100_000)(v))
    if family == "diffusion" and kwargs["steps"] is None:
        kwargs["steps"] = 4 if arg != "steps" else None

    def call():
        run = sc.smc(
            model,
            kwargs["particles"],
            kwargs["seed"],
            proposal=kwargs["proposal"],
            resample_threshold=kwargs["resample_threshold"],
            twist=kwargs["twist"],
            steps=kwargs["steps"],
            progress=kwargs["progress"],
        )
        assert run.particles == kwargs["particles"] and math.isfinite(run.log_z)
        assert abs(float(torch.logsumexp(run.log_weights, 0))) < 1e-9

    _probe(call, _valid(pred, value), arg, value)


@FUZZ
@given(value=WRONG)
def test_smc_draw_fuzz(world, value):
    run = sc.smc(world["model"], 4, seed=0)
    hypothesis.assume(not (isinstance(value, int) and not isinstance(value, bool) and 200 < value < 2**40))

    def call():
        assert len(run.draw(value)) == (run.particles if value is None else value)

    _probe(call, value is None or (_valid(_int(1), value) and value <= 200), "k", value)


REJECTION_ARGS = {
    "proposals": _int(1, 4096),
    "rounds": _int(1, 10_000),
    "min_actions": _int(0, 10**9),
    "acceptances": _real(lambda v: 0 < v <= 1e6),
    "max_fraction": _real(lambda v: 0 < v <= 1),
}


@FUZZ
@given(arg=st.sampled_from(sorted(REJECTION_ARGS)), value=WRONG)
def test_rejection_options_fuzz(world, arg, value):
    """The rejection sampler's options: typed, ranged, never coerced (the model is the oracle
    composition, whose exact sampler ignores none of them)."""
    hypothesis.assume(not (arg == "rounds" and isinstance(value, int) and not isinstance(value, bool) and value > 64))

    def call():
        x = sc.sample(world["model"], 3, seed=0, sampler="rejection", **{arg: value})
        assert x.shape == (3, 2)

    _probe(call, _valid(REJECTION_ARGS[arg], value), arg, value)


@FUZZ
@given(value=WRONG)
def test_data_oracle_slots_fuzz(world, value):
    x = torch.zeros(3, 2)

    def call():
        assert sc.data_oracle([x, x + 1], world["gm"], n_slots=value).n_slots == (2 if value is None else value)

    _probe(call, value is None or _valid(_int(1, 4), value), "n_slots", value)


@FUZZ
@given(value=WRONG)
def test_save_overwrite_fuzz(world, value, tmp_path_factory):
    path = tmp_path_factory.mktemp("overwrite") / "x.pt"
    _probe(lambda: sc.save(world["bases"][0], path, overwrite=value), _valid(BOOL_OK, value), "overwrite", value)


# --------------------------------------------------------------------- compose
COMPOSE_ARGS = {
    "operation": (
        "harmonic",
        lambda v: (
            v
            in (
                "harmonic",
                "contrast",
                "reverse_contrast",
                "mixture",
                "p1",
                "p2",
                "y=12",
                "y=1",
                "y=2",
                "y=21",
                "y=11",
                "y=22",
                "y=",
                (1, 2),
                (1,),
                (2,),
                [1, 2],
                [1],
                [2],
                (),
                [],
            )
        ),
    ),
    "alpha": (0.5, _real(lambda v: 0 < v < 1)),
    "form": ("anchored", lambda v: v in ("anchored", "paper")),
    "gamma": (1.0, lambda v: v == 1),
    "beta": (None, lambda v: v is None),
    "check": (True, BOOL_OK),
    "classifier": (None, lambda v: v is None),
}


@FUZZ
@given(arg=st.sampled_from(sorted(COMPOSE_ARGS)), value=WRONG)
def test_compose_fuzz(world, arg, value):
    kwargs = {k: v for k, (v, _) in COMPOSE_ARGS.items()}
    kwargs[arg] = value
    bases = world["bases"]

    def call():
        m = sc.compose(
            bases,
            kwargs["classifier"],
            kwargs["operation"],
            alpha=kwargs["alpha"],
            form=kwargs["form"],
            gamma=kwargs["gamma"],
            beta=kwargs["beta"],
            check=kwargs["check"],
        )
        p = sc.exact_distribution(m).exp()
        assert abs(float(p.sum()) - 1) < 1e-6

    _probe(call, _valid(COMPOSE_ARGS[arg][1], value), arg, value)


@FUZZ
@given(value=WRONG)
def test_compose_bases_fuzz(value):
    _probe(lambda: sc.compose(value, None, "harmonic"), False, "bases", value)


# --------------------------------------------------------------------- algebra
@FUZZ
@given(arg=st.sampled_from(["spec", "n_bases", "alpha"]), value=WRONG)
def test_parse_composition_fuzz(arg, value):
    kwargs = {"spec": "y=12", "n_bases": 2, "alpha": 0.5}
    kwargs[arg] = value
    valid = {
        "spec": lambda v: (
            v
            in (
                "harmonic",
                "contrast",
                "reverse_contrast",
                "mixture",
                "p1",
                "p2",
                "y=12",
                "y=",
                "y=1",
                "y=2",
                "y=11",
                "y=21",
                "y=22",
                (1, 2),
                (1,),
                (2,),
                (),
                [],
                [1],
                [2],
                [1, 2],
            )
        ),
        "n_bases": _int(2, 16),
        "alpha": _real(lambda v: 0 < v < 1),
    }[arg]
    _probe(
        lambda: sc.parse_composition(kwargs["spec"], kwargs["n_bases"], kwargs["alpha"]),
        _valid(valid, value),
        arg,
        value,
    )


@FUZZ
@given(which=st.sampled_from([0, 1]), value=WRONG)
def test_l1_distance_fuzz(which, value):
    good = torch.log(torch.tensor([0.5, 0.5]))
    args = [good, good]
    args[which] = value
    valid = isinstance(value, torch.Tensor) and value.shape == good.shape
    _probe(lambda: sc.l1_distance(*args), valid, f"arg{which}", value)


@FUZZ
@given(arg=st.sampled_from(["operation", "alpha"]), value=WRONG)
def test_target_distribution_fuzz(world, arg, value):
    kwargs = {"operation": "harmonic", "alpha": 0.5}
    kwargs[arg] = value
    valid = _valid(COMPOSE_ARGS[arg][1], value)
    _probe(
        lambda: sc.target_distribution(world["bases"], kwargs["operation"], alpha=kwargs["alpha"]), valid, arg, value
    )


@FUZZ
@given(value=WRONG)
def test_exact_distribution_fuzz(value):
    _probe(lambda: sc.exact_distribution(value), False, "model", value)


# --------------------------------------------------------------------- loading, saving, fitting
@FUZZ
@given(arg=st.sampled_from(["name", "directory", "base_directory"]), value=WRONG)
def test_load_pretrained_fuzz(arg, value):
    hypothesis.assume(not (arg == "name" and value == "grid/circles"))
    kwargs = {"name": "grid/shubert_sigmoid", "directory": None, "base_directory": None}
    kwargs[arg] = value
    valid = value is None if arg != "name" else False
    _probe(lambda: sc.load_pretrained(**kwargs), valid, arg, value)


@FUZZ
@given(arg=st.sampled_from(["name", "directory"]), value=WRONG)
def test_load_bases_fuzz(arg, value):
    hypothesis.assume(not (arg == "name" and value == "grid/circles"))
    kwargs = {"name": "grid/shubert_sigmoid", "directory": None}
    kwargs[arg] = value
    _probe(lambda: sc.load_bases(**kwargs), arg == "directory" and value is None, arg, value)


@FUZZ
@given(value=WRONG)
def test_load_model_fuzz(value):
    _probe(lambda: sc.load_model(value), False, "path", value)


@FUZZ
@given(value=WRONG)
def test_save_fuzz(value, tmp_path_factory):
    path = tmp_path_factory.mktemp("save") / "x.pt"
    _probe(lambda: sc.save(value, path), False, "model", value)


FIT_ARGS = {
    "operation_family_or_n_slots": (
        "harmonic",
        lambda v: (
            v
            in (
                "harmonic",
                "contrast",
                "reverse_contrast",
                "mixture",
                "p1",
                "p2",
                "y=12",
                "y=1",
                "y=2",
                "y=21",
                "y=11",
                "y=22",
                "y=",
                1,
                2,
                3,
                (1, 2),
                [1, 2],
                (1,),
                [1],
                (),
                [],
            )
        ),
    ),
    "config": ({"steps": 2}, lambda v: v is None or v == {"steps": 1}),
    "seed": (0, lambda v: v is None or _int(0, 2**63 - 1)(v)),
    "progress": (False, BOOL_OK),
    "arch": ({"hidden": 8}, lambda v: v is None or v == {} or v == {"hidden": 8}),
    "beta": (None, lambda v: v is None),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(arg=st.sampled_from(sorted(FIT_ARGS)), value=WRONG)
def test_fit_classifier_fuzz(world, arg, value):
    hypothesis.assume(
        not (
            arg == "operation_family_or_n_slots"
            and isinstance(value, int)
            and not isinstance(value, bool)
            and 3 < value <= 8
        )
    )  # valid, only slow
    kwargs = {k: v for k, (v, _) in FIT_ARGS.items()}
    kwargs[arg] = value
    if arg == "config" and value is None:
        hypothesis.assume(False)  # the default config trains for thousands of steps: valid, only slow

    def call():
        clf = sc.fit_classifier(
            world["bases"],
            kwargs["operation_family_or_n_slots"],
            kwargs["config"],
            progress=kwargs["progress"],
            seed=kwargs["seed"],
            arch=kwargs["arch"],
            beta=kwargs["beta"],
        )
        assert clf.n_bases == 2

    _probe(call, _valid(FIT_ARGS[arg][1], value), arg, value)


# --------------------------------------------------------------------- the registry: Domain, Command, register_domain
DOMAIN_FIELDS = {
    "name": ("d", lambda v: isinstance(v, str) and v != "" and "/" not in v),
    "description": ("", lambda v: isinstance(v, str)),
    "pretrained": ({}, lambda v: v == {}),
    "bases": ({}, lambda v: v == {}),
    "env_kinds": ({}, lambda v: v == {}),
    "checkpoint_loaders": ({}, lambda v: v == {}),
    "commands": ({}, lambda v: v == {}),
}


@FUZZ
@given(arg=st.sampled_from(sorted(DOMAIN_FIELDS)), value=WRONG)
def test_domain_fuzz(arg, value):
    from sculpting.infrastructure.registry import Domain

    kwargs = {k: v for k, (v, _) in DOMAIN_FIELDS.items()}
    kwargs[arg] = value
    _probe(lambda: Domain(**kwargs), _valid(DOMAIN_FIELDS[arg][1], value), arg, value)


@FUZZ
@given(value=WRONG)
def test_register_domain_fuzz(value):
    _probe(lambda: sc.register_domain(value), False, "domain", value)


@dataclasses.dataclass
class _Preset:
    steps: int = 1


COMMAND_FIELDS = {
    "run": (lambda *a: {}, lambda v: False),  # no value of the pool is a callable
    "presets": ({"cpu": _Preset(), "smoke": _Preset(), "paper": _Preset()}, lambda v: False),
    "arguments": ([], lambda v: v in ([], ())),
    "help": ("", lambda v: isinstance(v, str)),
    "inputs": (None, lambda v: v is None),
    "normalise": (None, lambda v: v is None),
}


@FUZZ
@given(arg=st.sampled_from(sorted(COMMAND_FIELDS)), value=WRONG)
def test_command_fuzz(arg, value):
    from sculpting.infrastructure.registry import Command

    kwargs = {k: v for k, (v, _) in COMMAND_FIELDS.items()}
    kwargs[arg] = value
    _probe(lambda: Command(**kwargs), _valid(COMMAND_FIELDS[arg][1], value), arg, value)


# --------------------------------------------------------------------- sc.save metadata
def _json_able(v) -> bool:
    import json

    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


@FUZZ
@given(
    key=st.sampled_from(["note", "kind", "env", "sha256", "base_fingerprints", "arch", "versions", "seed_note"]),
    value=WRONG,
)
def test_save_metadata_fuzz(world, key, value, tmp_path_factory):
    from sculpting.infrastructure.checkpoints import RESERVED_META

    path = tmp_path_factory.mktemp("meta") / "b.pt"

    def call():
        sc.save(world["bases"][0], path, **{key: value})
        back = sc.load_model(path)  # what was saved loads, with the extra kept
        assert key in back.meta and torch.equal(next(back.parameters()), next(world["bases"][0].parameters()))

    valid = key not in RESERVED_META and not isinstance(value, torch.Tensor) and _json_able(value)
    _probe(call, valid, key, value)


# --------------------------------------------------------------------- SculptingPipeline
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    diffusers = pytest.importorskip("diffusers")
    from sculpting.adapters.diffusers import SculptingPipeline, class_bases
    from sculpting.diffusion.classifier import TimeClassifier
    from sculpting.infrastructure.fingerprint import base_fingerprints

    kw = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        num_class_embeds=2,
    )
    bases = class_bases(unet, diffusers.DDPMScheduler(**kw))
    clf = TimeClassifier((1, 8, 8), 2, 2, trunk=(4, 8), hidden=16, embed_dim=8, sde=bases[0].sde.config, seed=0)
    clf.base_fingerprints = base_fingerprints(bases)
    pipe = SculptingPipeline(bases, clf, diffusers.DDIMScheduler(**kw, clip_sample=False))
    d = pipe.save_pretrained(tmp_path_factory.mktemp("pipe") / "p")
    return pipe, bases, d


PIPE_ARGS = {
    "operation": (
        None,
        lambda v: (
            v is None
            or v
            in (
                "harmonic",
                "contrast",
                "reverse_contrast",
                "mixture",
                "p1",
                "p2",
                "y=12",
                "y=1",
                "y=2",
                "y=21",
                "y=11",
                "y=22",
                "y=",
                (1, 2),
                (1,),
                (2,),
                [1, 2],
                [1],
                [2],
                (),
                [],
            )
        ),
    ),
    "alpha": (None, lambda v: v is None or _real(lambda a: 0 < a < 1)(v)),
    "gamma": (None, lambda v: v is None or _real(lambda g: 0 <= g <= 100)(v)),
    "num_inference_steps": (2, _int(1, 1000)),
    "generator": (None, lambda v: v is None),
    "batch_size": (1, _int(1, 10**6)),
    "output_type": ("pt", lambda v: v in ("pt", "np")),
    "progress": (False, BOOL_OK),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(arg=st.sampled_from(sorted(PIPE_ARGS)), value=WRONG)
def test_pipeline_call_fuzz(pipeline, arg, value):
    hypothesis.assume(
        not (
            arg in ("num_inference_steps", "batch_size")
            and isinstance(value, int)
            and not isinstance(value, bool)
            and 4 < value <= 10**6
        )
    )  # valid, only slow
    pipe = pipeline[0]
    kwargs = {k: v for k, (v, _) in PIPE_ARGS.items()}
    kwargs[arg] = value

    def call():
        out = pipe(**kwargs)
        imgs = torch.as_tensor(out.images)
        assert len(imgs) == kwargs["batch_size"] and float(imgs.min()) >= 0 and float(imgs.max()) <= 1

    _probe(call, _valid(PIPE_ARGS[arg][1], value), arg, value)


@FUZZ
@given(arg=st.sampled_from(["directory", "bases", "operation", "gamma"]), value=WRONG)
def test_pipeline_from_pretrained_fuzz(pipeline, arg, value):
    from sculpting.adapters.diffusers import SculptingPipeline

    _, bases, d = pipeline
    kwargs = {"directory": d, "bases": bases, arg: value}  # one argument replaced, the others valid
    valid = {
        "directory": lambda v: False,
        "bases": lambda v: False,
        "operation": PIPE_ARGS["operation"][1],
        "gamma": PIPE_ARGS["gamma"][1],
    }[arg]

    def call():
        pipe = SculptingPipeline.from_pretrained(**kwargs)
        assert pipe.composition[arg] == value  # the override took effect (operation, gamma)

    _probe(call, _valid(valid, value) and value is not None, arg, value)


# --------------------------------------------------------------------- the training CLI: arguments and folders
CLI_FLAGS = [
    "--horizon",
    "--steps",
    "--lr",
    "--temperature",
    "--threads",
    "--checkpoint-every",
    "--preset",
    "--reward",
    "--base",
    "--out",
    "--batch_size",
    "--seed",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(flag=st.sampled_from(CLI_FLAGS), value=WRONG)
def test_train_cli_fuzz(flag, value, tmp_path_factory):
    """Any value of any flag: a finished run, or an exit with a message (SystemExit) / a clear
    ValueError or TypeError; never another exception, and an error leaves no run record behind."""
    from sculpting.infrastructure.cli import main

    text = str(value)
    if flag in ("--steps", "--horizon", "--batch_size", "--threads"):
        try:  # valid large sizes only make the run long
            hypothesis.assume(not (float(text) > 12))
        except ValueError:
            pass
    root = tmp_path_factory.mktemp("cli")
    out = root / "o"
    args = {"--preset": "smoke", "--horizon": "4", "--steps": "2", "--checkpoint-every": "1", "--out": str(out)}
    if flag == "--out":
        out = root / text if text and "\x00" not in text else out
        args["--out"] = str(root / text) if text else ""
    else:
        args[flag] = text
    argv = ["grid-base"] + [x for k, v in args.items() for x in (k, v)]
    COUNT["cases"] += 1
    try:
        main(argv)
    except SystemExit as e:
        assert e.code not in (0, None) or isinstance(e.code, str)
    except (ValueError, TypeError, RunFolderError):
        pass
    else:
        assert (out / "model.pt").is_file() and (out / "summary.json").is_file()
        return
    assert not (out / "run.json").is_file() or (out / "resume.pt").is_file(), "an input error left a run record"


def test_fuzz_case_count_is_reported(world):
    """Runs last in this module: the number of probed calls (see the closing note). It runs one
    fuzz test itself, so that it checks the harness probes calls even when it runs alone."""
    before = COUNT["cases"]
    test_compose_fuzz(world)
    assert COUNT["cases"] - before >= 100, COUNT["cases"] - before
    print(f"fuzz cases run: {COUNT['cases']}")
