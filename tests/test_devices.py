"""Device discipline: samplers, trainers, the oracle and guided policies create every tensor on the
device of the model or input they work with.

How it is checked, on any torch release: a ``TorchFunctionMode`` (public API) sees every call of a
tensor factory (``torch.zeros``, ``torch.randn``, ``torch.tensor``, ...). A call made *from the
package's own code* (the first frame outside torch lies in ``sculpting/``) without a ``device``
argument is a violation: that tensor lands on torch's default device, not necessarily its inputs'.
Nothing else is changed: torch's own internals (e.g. Adam's step counters) create their tensors as
they always do, so the check does not depend on how a release implements them. Where CUDA exists
the same paths also run there."""

import contextlib
import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

import sculpting as sc
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.classifier_training import DiffusionClassifierConfig, draw_pool, train_time_classifier
from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model
from sculpting.domains.bitstrings import BitStringEnv
from sculpting.domains.grid import GridEnv
from sculpting.gflownet.classifier import SculptingClassifier
from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
from sculpting.gflownet.policy import GFlowNet
from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

#: the tensor factories of torch's public API that take ``device=``
FACTORIES = {
    getattr(torch, n)
    for n in (
        "zeros",
        "ones",
        "empty",
        "full",
        "arange",
        "range",
        "linspace",
        "logspace",
        "eye",
        "rand",
        "randn",
        "randint",
        "randperm",
        "tensor",
        "as_tensor",
        "scalar_tensor",
        "empty_strided",
        "normal",
        "tril_indices",
        "triu_indices",
        "sparse_coo_tensor",
    )
    if hasattr(torch, n)
}
PACKAGE = str(Path(sc.__file__).resolve().parent)
TORCH = str(Path(torch.__file__).resolve().parent)


class FactoryWatch(TorchFunctionMode):
    """Record the package's device-less factory calls as ``(file:line, factory)``."""

    def __init__(self):
        super().__init__()
        self.violations = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (
            func in FACTORIES
            and kwargs.get("device") is None
            and not (func is torch.as_tensor and args and isinstance(args[0], torch.Tensor))
        ):  # as_tensor(t) keeps t's device
            frame = sys._getframe(1)  # the caller of the factory (torch.nn's own calls are torch's business)
            while (
                frame is not None
                and Path(frame.f_code.co_filename).name in ("overrides.py", "_device.py")
                and frame.f_code.co_filename.startswith(TORCH)
            ):
                frame = frame.f_back
            if frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(PACKAGE):
                where = f"{Path(frame.f_code.co_filename).relative_to(PACKAGE)}:{frame.f_lineno}"
                self.violations.append((where, func.__name__))
        return func(*args, **kwargs)


@contextlib.contextmanager
def strict_device():
    """Fail if the package calls a tensor factory without a device inside the block."""
    watch = FactoryWatch()
    with watch:
        yield watch
    stray = sorted(set(watch.violations))
    assert not stray, f"tensor factories called without a device in the package: {stray}"


def _gflownet_paths(env, device):
    torch.manual_seed(0)
    bases = [GFlowNet(env, hidden=16).to(device) for _ in range(2)]
    clf = SculptingClassifier(env, 2, 2, hidden=16).to(device)
    with strict_device():
        return _gflownet_work(bases, clf)


def _gflownet_work(bases, clf):
    device = bases[0].log_z.device
    for b in bases:
        train_gflownet(b, GFlowNetTrainConfig(steps=3, batch_size=8, eval_every=0), progress=False)
    train_classifier(clf, bases, ClassifierTrainConfig(steps=3, batch_per_base=4, warmup_steps=1), progress=False)
    out = {}
    for name, c in (("oracle", None), ("learned", clf)):
        model = sc.compose(bases, c, "harmonic", alpha=0.3)
        out[name] = sc.exact_distribution(model)
        x = sc.sample(model, 5, seed=0)
        assert x.device == device
    out["target"] = sc.target_distribution(bases, "harmonic", alpha=0.3)
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make_env", [lambda: GridEnv(6, 2, "circle1"), lambda: BitStringEnv(4)])
def test_gflownet_paths_create_no_stray_tensors(make_env, device):
    out = _gflownet_paths(make_env(), device)
    assert sc.l1_distance(out["oracle"].cpu(), out["target"].cpu()) < 1e-6


@pytest.mark.parametrize("device", DEVICES)
def test_diffusion_paths_create_no_stray_tensors(device):
    torch.manual_seed(0)
    bases = [ScoreModel(3, "smoke").to(device) for _ in range(2)]
    x = torch.rand(16, 3, 16, 16, device=device)
    clf = TimeClassifier((3, 16, 16), 2, 2, trunk=(4, 8), hidden=16, embed_dim=16).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    with strict_device():
        _diffusion_work(bases, clf, x, gen, device)


def _diffusion_work(bases, clf, x, gen, device):
    for b in bases:
        train_score_model(b, x, DiffusionTrainConfig(steps=2, batch_size=4), progress=False)
    cfg = DiffusionClassifierConfig(pool_size=4, pool_steps=4, keep_every=1, updates=3, batch=2, terminal_only=1)
    pools = [draw_pool(b, cfg, gen) for b in bases]
    train_time_classifier(clf, pools, cfg, progress=False)
    images = sc.sample(sc.compose(bases, clf.eval(), "contrast", gamma=2.0), 2, seed=0, steps=3)
    assert images.device.type == torch.device(device).type and bool(torch.isfinite(images).all())
    train_score_model(
        bases[0], x, DiffusionTrainConfig(steps=2, batch_size=4), progress=False, fast="channels_last,bf16"
    )  # the fast path (sculpting.diffusion.fast)
    for sampler, options in (("ode", {}), ("smc", {"particles": 2})):  # every sampler (pc above, edm below)
        sc.sample(sc.compose(bases, clf, "harmonic"), 2, seed=0, steps=3, sampler=sampler, **options)
    fast = sc.sample(sc.compose(bases, clf, "harmonic"), 2, seed=0, steps=3, sampler="edm", fast="channels_last,bf16")
    assert fast.device.type == torch.device(device).type and fast.dtype == torch.float32


def test_the_strict_mode_catches_a_stray_tensor(monkeypatch):
    """Control: a package function that calls a factory without a device is caught by name and line;
    the same call with a device, and device-less calls outside the package, pass."""
    import sculpting.infrastructure.runtime as runtime

    def stray(x):
        return x + torch.zeros(3)  # no device

    monkeypatch.setattr(runtime, "stray", stray, raising=False)
    stray.__code__ = stray.__code__.replace(co_filename=runtime.__file__)  # as if written in the package
    with pytest.raises(AssertionError, match=r"runtime.py:\d+', 'zeros'"):
        with strict_device():
            runtime.stray(torch.ones(3, device="cpu"))
    bases = [GFlowNet(GridEnv(4, 2), hidden=8, seed=0), GFlowNet(GridEnv(4, 2), hidden=8, seed=1)]  # built on the CPU
    with strict_device():
        torch.zeros(3) + torch.ones(3, device="cpu")  # outside the package: not the package's business
        sc.sample(sc.compose(bases, None, "harmonic"), 3, seed=0)


@pytest.mark.parametrize("device", DEVICES)
def test_molecule_paths_create_no_stray_tensors(device):
    from molecule_data import require_data

    require_data()
    from sculpting.domains.molecules.classifier import make_graph_classifier
    from sculpting.domains.molecules.env import FragmentGraphEnv
    from sculpting.domains.molecules.experiments import base_train_config
    from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet

    torch.manual_seed(0)
    bases = [MoleculeGFlowNet(FragmentGraphEnv(3, o), **PRESETS["smoke"]).to(device) for o in ("qed", "mw")]
    clf = make_graph_classifier(FragmentGraphEnv(3), 2, width=16, n_layers=1).to(device)
    with strict_device():
        for b in bases:
            train_gflownet(b, base_train_config(b.env.objective, 2, 4), progress=False, conditioning=BetaConditioning())
        train_gflownet(
            bases[0],
            base_train_config("qed", 2, 4),
            progress=False,
            conditioning=BetaConditioning(),
            trajectory_workers=1,
        )  # batches from a CPU worker, trained on the device
        train_classifier(
            clf,
            [b.at_beta(8.0) for b in bases],
            ClassifierTrainConfig(steps=2, batch_per_base=2, warmup_steps=1),
            progress=False,
        )
        x = sc.sample(sc.compose(bases, clf.eval(), "harmonic", beta=8.0), 3, seed=0)
    assert x.device == torch.device(device) and len(bases[0].env.to_mols(x)) == 3


#: the modules that sample, weight and guide: every tensor they make lives on the device of the
#: model or states they were given. A literal device (``device="cpu"``, ``torch.device("cuda")``,
#: ``.cpu()``, ``.to("cpu")``) there is a bug on a GPU that no CPU run shows, so it is allowed only
#: on a line that says why the host is meant (``# host: …``: a time grid turned into floats, a hash).
SAMPLING_CORE = [
    "algebra.py",
    "compose.py",
    "families.py",
    "smc_core.py",
    *(f"gflownet/{n}.py" for n in ("smc", "guidance", "rejection", "acceptance", "amortised", "rollout")),
    *(f"gflownet/{n}.py" for n in ("oracle", "exact", "classifier", "policy", "score_cache")),
    *(f"diffusion/{n}.py" for n in ("smc", "composition", "sde", "schedulers", "gaussian", "classifier")),
    "diffusion/oracle.py",
    "sampling.py",
    *(str(p.relative_to(PACKAGE)) for p in sorted(Path(PACKAGE).glob("*/samplers/*.py"))),
]


def literal_devices(source: str) -> list:
    """``[(line, text)]`` of the calls in ``source`` that name a device by a literal, unless one of
    the call's lines carries ``# host:``."""
    import ast

    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        literal = any(
            k.arg == "device" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
            for k in node.keywords
        )
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        str_arg = bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        literal |= name == "device" and str_arg  # torch.device("cpu")
        literal |= name == "to" and str_arg  # t.to("cpu")
        literal |= name in ("cpu", "cuda") and isinstance(f, ast.Attribute)  # t.cpu()
        span = lines[node.lineno - 1 : node.end_lineno]
        if literal and not any("# host:" in s for s in span):
            found.append((node.lineno, lines[node.lineno - 1].strip()))
    return found


def test_the_sampling_core_names_no_device_by_a_literal():
    """A hard-coded device in a sampler (say ``device="cpu"`` in the SMC loop) passes every CPU test
    and breaks the first GPU run: it is caught here without a GPU, by reading the code."""
    stray = {}
    for rel in SAMPLING_CORE:
        found = literal_devices((Path(PACKAGE) / rel).read_text())
        if found:
            stray[rel] = found
    assert not stray, f"literal devices in the sampling core (mark a meant host line '# host: why'): {stray}"
    # controls: each way of hard-coding a device is seen; the marked host line and a device taken
    # from a tensor are not
    for bad in (
        'w = torch.zeros(k, device="cpu")',
        'w = torch.zeros(k, dtype=torch.float64, device="cuda")',
        'w = torch.zeros(k, device=torch.device("cpu"))',
        'w = x.to("cpu")',
        "w = x.cpu()",
    ):
        assert literal_devices(bad), bad
    assert not literal_devices('k = torch.arange(5, device="cpu")  # host: a time grid read as floats')
    assert not literal_devices("w = torch.zeros(k, device=x.device)")
