"""The scaffolding every trainer shares: configs that serialise, seeding, EMA copies, progress bars.

* :class:`TrainConfig` — a dataclass base with ``to_dict()`` (stored in checkpoint metadata).
* :func:`seeded` — seeds torch's global generator (dropout, initialisation done later) and returns a
  private CPU generator for the data stream: the same seed gives the same bytes.
* :func:`frozen_copy` / :func:`ema_update` — θ_ema ← d θ_ema + (1 − d) θ after every step.
* :func:`progress` — a tqdm range ``1..steps`` that is silent when ``enabled`` is False.
* :class:`Resumable` — periodic checkpoints of every training state (model, EMA, optimiser,
  scheduler, RNGs, history) so that a killed run continues bit-exactly.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict

import torch
from tqdm.auto import tqdm

from sculpting.infrastructure.checkpoints import CheckpointError, atomic_write
from sculpting.infrastructure.distributed import average_gradients, world
from sculpting.infrastructure.fingerprint import diff_fields
from sculpting.version import __version__ as _version

__all__ = [
    "TrainConfig",
    "seeded",
    "seeded_init",
    "frozen_copy",
    "ema_update",
    "optimiser_step",
    "progress",
    "Resumable",
]


#: config fields that must be ≥ 1 (integers) or > 0 (floats); every other number must be ≥ 0
POSITIVE_FIELDS = {
    "steps",
    "batch_size",
    "batch_per_base",
    "pool_size",
    "pool_steps",
    "keep_every",
    "updates",
    "batch",
    "alpha_groups",
    "context_groups",
    "lr",
    "t_max",
}
#: config fields that are fractions in [0, 1]
FRACTION_FIELDS = {"ema_decay", "sampler_ema", "epsilon", "final_lr_fraction"}


class TrainConfig:
    """Mixin for training-config dataclasses: every field is checked when the config is built
    (and by ``dataclasses.replace``): integers are ints (not bools or floats), numbers finite,
    ``POSITIVE_FIELDS`` positive, the rest non-negative, ``FRACTION_FIELDS`` in [0, 1]."""

    def __post_init__(self):
        import math
        from dataclasses import fields

        name = type(self).__name__
        for f in fields(self):
            v, kind = getattr(self, f.name), f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if kind == "int":
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError(f"{name}.{f.name} must be an integer, got {v!r}")
                low = 1 if f.name in POSITIVE_FIELDS else 0
                if v < low:
                    raise ValueError(f"{name}.{f.name} must be ≥ {low}, got {v}")
            elif kind == "float":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError(f"{name}.{f.name} must be a number, got {v!r}")
                if not math.isfinite(v) or v < 0 or (f.name in POSITIVE_FIELDS and v == 0):
                    raise ValueError(
                        f"{name}.{f.name} must be a finite number "
                        f"{'> 0' if f.name in POSITIVE_FIELDS else '≥ 0'}, got {v}"
                    )
                if f.name in FRACTION_FIELDS and v > 1:
                    raise ValueError(f"{name}.{f.name} must be in [0, 1], got {v}")
            elif kind == "bool" and not isinstance(v, bool):
                raise TypeError(f"{name}.{f.name} must be True or False, got {v!r}")
            elif kind == "str" and not isinstance(v, str):
                raise TypeError(f"{name}.{f.name} must be a string, got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def seeded(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """``torch.manual_seed(seed)`` and a fresh generator on ``device`` (the model's: random numbers
    are drawn where they are used) seeded alike. Called inside :func:`keeps_global_rng` trainers
    only, so the caller's global generator is left as it was."""
    check_seed(seed)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def check_seed(seed, allow_none: bool = False):
    """Seeds are integers (``None`` where allowed): bool, float and str are refused."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer{' or None' if allow_none else ''}, got {seed!r}")
    if seed < 0 or seed >= 2**63:
        raise ValueError(f"seed must be in [0, 2^63), got {seed}")
    return seed


def _rng_devices() -> list:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() else []


def global_rng_kept(keep: bool = True):
    """Context: the body may seed and draw from torch's global generator; the caller's generator
    state is restored afterwards (``keep=False``: a no-op, the body draws from it as usual)."""
    return torch.random.fork_rng(devices=_rng_devices()) if keep else contextlib.nullcontext()


def keeps_global_rng(fn):
    """Decorator: ``fn`` may seed and draw from torch's global generator (its randomness is its
    own, from its config's seed); the caller's generator state is restored afterwards."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with global_rng_kept():
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def seeded_init(seed):
    """Build a module's initial weights from ``seed`` (``None``: torch's global generator, as
    usual) without changing the caller's global generator state."""
    if seed is None:
        yield
        return
    check_seed(seed)
    with torch.random.fork_rng(devices=_rng_devices()):
        torch.manual_seed(seed)
        yield


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy without gradients (an EMA target, a frozen classifier, an EMA sampler)."""
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← decay · θ_ema + (1 − decay) · θ (``lerp``, all parameters in one foreach call where
    torch has it: a few kernel launches on a GPU instead of one per parameter; the same values)."""
    ema_params, params = list(ema.parameters()), list(model.parameters())
    if hasattr(torch, "_foreach_lerp_"):
        torch._foreach_lerp_(ema_params, params, 1 - decay)
        return
    for pe, p in zip(ema_params, params):
        pe.lerp_(p, 1 - decay)


def optimiser_step(opt, loss: torch.Tensor, module: torch.nn.Module, sched=None, clip_norm: float | None = None):
    """One update of ``module``: zero its gradients, backpropagate ``loss``, average the gradients
    over the training processes (nothing alone), clip their norm to ``clip_norm`` (None: no
    clipping), step the optimiser, then the learning-rate schedule ``sched`` if any."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(module.parameters())
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip_norm)
    opt.step()
    if sched is not None:
        sched.step()


def progress(steps: int, desc: str, enabled: bool = True, mininterval: float = 0.5, start: int = 1):
    """``tqdm(range(start, steps + 1))`` (a resumed run starts the bar where it left off)."""
    return tqdm(
        range(start, steps + 1), desc=desc, disable=not enabled, mininterval=mininterval, initial=start - 1, total=steps
    )


class Resumable:
    """Periodic training checkpoints for ``kill -9``-safe, bit-exact resumption.

    Every ``every`` steps the state of each object in ``objects`` (model, EMA copy, optimiser,
    scheduler: anything with ``state_dict``/``load_state_dict``), torch's global RNG, the private
    generator and the history are written atomically to ``path``. :meth:`start` loads that file when
    it exists and returns the first step still to run, so rerunning the same command after a kill
    continues where the last checkpoint left off and ends with the same weights as an uninterrupted
    run (same seed, same thread count). The file records the training config; resuming with another
    config is an error. ``path=None`` disables all of it.
    """

    def __init__(
        self, path, every: int, config: dict, objects: dict, generator: torch.Generator, what: dict | None = None
    ):
        import json

        self.path = None if path is None else __import__("pathlib").Path(path)
        self.every, self.objects, self.generator = int(every), objects, generator

        rank, size = world()
        # everything that decides the result: the training config and the world size (a run resumed
        # with another number of ranks would mix per-rank states), what is trained (environment or
        # data, architecture, bases: ``what``, see sculpting.infrastructure.fingerprint.describe), the package version
        self.record = json.loads(
            json.dumps(
                {"config": {**config, "world_size": size}, "what": what or {}, "sculpting": _version},
                sort_keys=True,
                default=str,
            )
        )
        self.config_json = json.dumps(self.record, sort_keys=True)
        if self.path is not None and size > 1:  # each rank has its own RNG streams: its own file
            self.path = self.path.with_name(f"{self.path.stem}.rank{rank}{self.path.suffix}")
        if self.path is not None and self.every < 1:
            raise ValueError(f"checkpoint_every must be ≥ 1 with a checkpoint path, got {every}")

    def start(self, hist: dict) -> int:
        """Restore the saved state into the objects and ``hist`` (in place); return the next step."""
        import json

        if self.path is None or not self.path.is_file():
            return 1

        try:
            s = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                f"resume file {self.path} is unreadable ({type(e).__name__}: {e}); delete it to start over"
            ) from e
        if s.get("config") != self.config_json:
            try:
                old = json.loads(s.get("config"))
            except (TypeError, ValueError):
                old = {}
            differ = diff_fields(old if isinstance(old, dict) else {}, self.record) or ["its record"]
            raise CheckpointError(
                f"resume file {self.path} belongs to another run; these differ: "
                f"{'; '.join(differ[:8])}. Nothing was changed. Delete it (the CLI: --restart) "
                "or use another checkpoint path (the CLI: another --out)"
            )
        for name, obj in self.objects.items():
            obj.load_state_dict(s["states"][name])
        torch.set_rng_state(s["torch_rng"])
        self.generator.set_state(s["generator"])
        hist.clear()
        hist.update(json.loads(s["hist"]))
        import sys

        print(f"resuming from {self.path} after step {int(s['step'])} (delete it to start over)", file=sys.stderr)
        return int(s["step"]) + 1

    def due(self, step: int) -> bool:
        """Whether :meth:`save` writes after ``step``."""
        return self.path is not None and step % self.every == 0

    def save(self, step: int, hist: dict, force: bool = False) -> None:
        """Write the state after ``step`` (every ``every`` steps, or now with ``force``)."""
        import json

        if self.path is None or not (force or step % self.every == 0):
            return
        state = {
            "config": self.config_json,
            "step": int(step),
            "states": {name: obj.state_dict() for name, obj in self.objects.items()},
            "torch_rng": torch.get_rng_state(),
            "generator": self.generator.get_state(),
            "hist": json.dumps(hist),
        }
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))
