"""Model families: one interface per family of iterative generative models.

``sc.compose``, ``sc.sample`` and ``sc.fit_classifier`` find the family of their bases with
:func:`family_of` and call its methods; nothing else in the API branches on the family. A family
says which models it owns and how to

* ``check_classifier(bases, classifier)``: refuse a classifier of another kind, space or shape;
* ``compose(bases, classifier, composition, options)``: the composed model;
* ``draw_options(...)`` / ``smc_options(...)``: the family's own options object
  (:class:`GFlowNetDraw` / :class:`DiffusionDraw`, :class:`GFlowNetSMCOptions` /
  :class:`DiffusionSMCOptions`), refusing an option the family ignores;
* ``sample(model, options)``: samples; ``smc(model, options)``: one sequential Monte Carlo run;
* ``bytes_per_sample(model)``: what one sample needs in memory (for ``sample``'s pre-check);
* ``default_config(bases)`` / ``prepare_fit(bases, beta)`` / ``fit(...)``: train a classifier.

The two families here are :class:`GFlowNetFamily` (``env`` + ``log_probs``) and
:class:`DiffusionFamily` (``sde`` + ``score``); a third is a new subclass added to
:data:`FAMILIES`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from sculpting.algebra import MAX_BASES
from sculpting.diffusion.classifier import TimeClassifier
from sculpting.diffusion.classifier_training import DiffusionClassifierConfig, draw_pool, train_time_classifier
from sculpting.diffusion.composition import ComposedScore
from sculpting.diffusion.fast import FastPath
from sculpting.diffusion.paths import DiffusionPathComposition, check_path_proposal
from sculpting.diffusion.paths import path_smc as diffusion_path_smc
from sculpting.diffusion.samplers import diffusion_sampler
from sculpting.diffusion.samplers.scheduler import SchedulerSampler
from sculpting.diffusion.schedulers import is_scheduler
from sculpting.diffusion.smc import diffusion_smc
from sculpting.infrastructure.fingerprint import weights_sha256
from sculpting.gflownet.classifier import ClassifierQ, SculptingClassifier
from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
from sculpting.gflownet.exact import base_tables
from sculpting.gflownet.flows import flow_policy
from sculpting.gflownet.guidance import GuidedPolicy
from sculpting.gflownet.oracle import OracleQ
from sculpting.gflownet.parallel import sample_terminal_parallel
from sculpting.gflownet.paths import PathComposition, check_path_options, path_smc
from sculpting.gflownet.policy import TabularPolicy
from sculpting.gflownet.samplers import DEFAULT_BATCH, gflownet_sampler, trajectory_bytes
from sculpting.gflownet.smc import gflownet_smc
from sculpting.protocols import BetaConditionalBase, DiffusionBase, GFlowNetBase, is_enumerable
from sculpting.infrastructure.bounds import MAX_STEPS, memory_limit
from sculpting.infrastructure.runtime import device_of
from sculpting.infrastructure.workers import default_workers
from sculpting.sampling import Sampler

__all__ = [
    "at_beta",
    "GFlowNetDraw",
    "DiffusionDraw",
    "GFlowNetSMCOptions",
    "DiffusionSMCOptions",
    "ModelFamily",
    "GFlowNetFamily",
    "DiffusionFamily",
    "FAMILIES",
    "family_of",
    "family_of_bases",
    "fitting_batch",
]


def at_beta(bases, beta):
    """The bases as composed: β-conditional ones fixed at ``beta`` (required for them, refused otherwise)."""
    conditional = [hasattr(b, "at_beta") for b in bases]
    if beta is None:
        if any(conditional):
            raise ValueError("these bases are β-conditional: pass beta= (e.g. beta=32)")
        return list(bases)
    if not all(conditional):
        raise ValueError("beta= is only for β-conditional bases (models with at_beta)")
    return [b.at_beta(beta) for b in bases]


@dataclass(frozen=True)
class GFlowNetDraw:
    """What one GFlowNet draw takes (built by :meth:`GFlowNetFamily.draw_options`, which refuses
    the diffusion-only ``steps`` / ``progress``).

    ``n`` terminal states, ``batch_size`` trajectories at a time (None: all at once), ``workers``
    processes (> 1 needs the int ``seed``), ``sampler``: the sampler's name or instance and its
    declared options (``{"sampler": "smc", "particles": 64}``)."""

    n: int
    generator: torch.Generator | None
    seed: int | None
    batch_size: int | None = None
    workers: int = 1
    sampler: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DiffusionDraw:
    """What one diffusion draw takes (built by :meth:`DiffusionFamily.draw_options`, which refuses
    the GFlowNet-only ``workers``).

    ``n`` images, ``steps`` sampler steps, ``batch_size`` images at a time (None: all at once),
    ``progress`` a bar over the steps, ``sampler``: the sampler's name, instance or diffusers
    scheduler and its declared options (``fast=`` among them)."""

    n: int
    generator: torch.Generator | None
    steps: int = 300
    batch_size: int | None = None
    progress: bool = False
    sampler: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GFlowNetSMCOptions:
    """One GFlowNet SMC run (:meth:`GFlowNetFamily.smc_options` refuses ``steps`` / ``progress``):
    N ``particles``, the ``proposal`` ("auto", "base", "guided", "amortised"), the
    ``resample_threshold`` and the ``twist`` ("classifier", "head", "paths", "flows")."""

    particles: int
    generator: torch.Generator | None
    proposal: str = "auto"
    resample_threshold: float = 0.5
    twist: str = "classifier"


@dataclass(frozen=True)
class DiffusionSMCOptions:
    """One diffusion SMC run (:meth:`DiffusionFamily.smc_options` refuses the GFlowNet twists):
    N ``particles``, the ``proposal`` ("auto", "guided", "base"), the ``resample_threshold``, the
    ``twist`` ("classifier" or "paths"), ``steps`` grid points and a ``progress`` bar."""

    particles: int
    generator: torch.Generator | None
    proposal: str = "auto"
    resample_threshold: float = 0.5
    twist: str = "classifier"
    steps: int = 200
    progress: bool = False


class ModelFamily:
    """The interface (module docs). ``name`` is what error messages and configs call the family."""

    name = "model"

    def owns(self, model) -> bool:
        raise NotImplementedError

    def check_classifier(self, bases, classifier) -> None:
        raise NotImplementedError

    def compose(self, bases, classifier, composition, *, form, gamma, beta, successor_head):
        raise NotImplementedError

    def draw_options(self, model, n, generator, seed, *, steps, batch_size, progress, workers, sampler):
        """This family's draw options object; an option it ignores is refused (TypeError / ValueError)."""
        raise NotImplementedError

    def sample(self, model, options):
        """``[n, *S]`` samples of ``model`` drawn as ``options`` (from :meth:`draw_options`) say."""
        raise NotImplementedError

    def bytes_per_sample(self, model):
        return None

    def memory_need(self, model, n: int, batch_size, in_flight: int | None = None) -> int | None:
        """Bytes a draw of ``n`` samples needs at its peak (None: no estimate); ``in_flight``: the
        samples (or SMC particles) worked on at once, where the sampler knows it."""
        per = self.bytes_per_sample(model)
        return None if per is None else n * per

    def smc_options(self, particles, generator, *, proposal, resample_threshold, twist, steps, progress):
        """This family's SMC options object; an option it ignores is refused."""
        raise NotImplementedError

    def smc(self, model, options):
        """One sequential Monte Carlo run (:class:`~sculpting.smc_core.SMCRun`) of a composition."""
        raise NotImplementedError

    def default_config(self, enumerable: bool = False):
        raise NotImplementedError

    def prepare_fit(self, bases, beta):
        """(bases as trained, whether the exact estimator applies) — or an error for bad input."""
        raise NotImplementedError

    def fit(self, bases, n_slots, cfg, arch, dev, progress, checkpoint_path, checkpoint_every):
        raise NotImplementedError


class _OutputBytes(torch.overrides.TorchFunctionMode):
    """Sums the bytes of the tensors every torch function returns while active (an upper bound of
    what is alive at once in a pass without gradients: nothing is counted as freed, and a view or
    an in-place result counts as a new tensor)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(o, torch.Tensor):
                self.total += o.numel() * o.element_size()
        return out


def _layer_output_bytes(net, call) -> int:
    """Bytes of the tensors computed during ``call()`` (every torch function's output but views)."""
    with _OutputBytes() as mode:
        call()
    return mode.total


class GFlowNetFamily(ModelFamily):
    name = "gflownet"

    def owns(self, model) -> bool:  # dispatch by protocol (sculpting.protocols), not by class
        return isinstance(model, (GFlowNetBase, BetaConditionalBase, PathComposition))

    def check_classifier(self, bases, classifier) -> None:
        if not hasattr(classifier, "nonterminal_log_joint"):
            raise TypeError(
                f"a {type(classifier).__name__} is a diffusion classifier; GFlowNet bases need a "
                "GFlowNet classifier (sc.fit_classifier on these bases)"
            )
        space, want = getattr(classifier, "space", None), getattr(bases[0].env, "space", None)
        if space is not None and want is not None and space != want:
            raise ValueError(f"the classifier is for the space {space}, the bases live on {want}")

    def compose(self, bases, classifier, composition, *, form, gamma, beta, successor_head):
        if isinstance(gamma, bool) or gamma != 1.0:
            raise ValueError("gamma= is for diffusion models; GFlowNet compositions are exact (use form=)")
        bases = at_beta(bases, beta)
        if classifier is None:
            env = bases[0].env
            if not is_enumerable(env):  # no exact oracle: the composition the bases' paths define
                if form != "anchored":
                    raise ValueError(
                        "form= chooses the guidance of a classifier composition; with no classifier "
                        "on a non-enumerable environment the composition is the path composition"
                    )
                if successor_head is not None:
                    raise ValueError("successor_head= needs a classifier (a path composition has none)")
                return PathComposition(bases, composition)
            tables = base_tables(bases)
            policy = GuidedPolicy([TabularPolicy(env, t) for t in tables], OracleQ(env, tables, composition), form)
            policy.source_bases = bases  # the bases themselves (their state flows, for twist="flows")
            return policy

        context = beta if getattr(classifier, "context_conditioned", False) else None
        policy = GuidedPolicy(bases, ClassifierQ(classifier, composition, context), form)
        if successor_head is not None:
            own = getattr(successor_head, "classifier", None)
            if own is not classifier:  # the same classifier loaded again is the same: compare by content
                if own is None or weights_sha256(own) != weights_sha256(classifier):
                    raise ValueError(
                        "successor_head was built on another classifier than the one composed "
                        "(other weights): build the head on this classifier"
                    )
            policy.successor_head = successor_head
        return policy

    def draw_options(self, model, n, generator, seed, *, steps, batch_size, progress, workers, sampler):
        if steps is not None or progress:
            raise TypeError(
                f"{'steps=' if steps is not None else 'progress='} is for diffusion samplers; a GFlowNet trajectory "
                "ends when it stops, drawn in batches without a progress bar"
            )
        if workers == "auto":  # one per usable core (CPU) or GPU, never more than the samples
            workers = min(default_workers(device_of(model)), n) if seed is not None else 1
        if workers != 1 and seed is None:
            raise ValueError("workers > 1 needs an integer seed")
        return GFlowNetDraw(n, generator, seed, batch_size, workers, dict(sampler))

    def sample(self, model, options: GFlowNetDraw):
        if hasattr(model, "at_beta") and not hasattr(model, "log_probs"):
            raise ValueError("a β-conditional model: sample model.at_beta(beta)")

        chosen = dict(options.sampler)
        name = chosen.pop("sampler", "auto")
        if isinstance(model, PathComposition) and name == "auto":
            name = "smc"  # a path composition is sampled by SMC only: "auto" takes SMC's options too
        sampler = gflownet_sampler(name, **chosen)
        if options.workers != 1:
            return sample_terminal_parallel(
                model, options.n, options.seed, options.workers, sampler, options.batch_size
            )
        return sampler.draw(model, options.n, options.generator, batch_size=options.batch_size)

    def smc_options(self, particles, generator, *, proposal, resample_threshold, twist, steps, progress):
        if steps is not None:
            raise TypeError("steps= is for diffusion SMC (its grid points); a GFlowNet trajectory ends when it stops")
        if progress:
            raise TypeError("progress= is for diffusion SMC (its grid steps); GFlowNet SMC runs without a progress bar")
        return GFlowNetSMCOptions(particles, generator, proposal, resample_threshold, twist)

    def smc(self, model, options: GFlowNetSMCOptions):
        o = options
        if o.twist == "flows":  # the bases' learned state flows as the classifier (sculpting.gflownet.flows)
            return gflownet_smc(
                flow_policy(model), o.particles, o.generator, o.proposal, o.resample_threshold, "classifier"
            )
        if isinstance(model, PathComposition) or o.twist == "paths":
            check_path_options(model, o.proposal, o.twist)
            return path_smc(model, o.particles, o.generator, o.resample_threshold)
        return gflownet_smc(model, o.particles, o.generator, o.proposal, o.resample_threshold, o.twist)

    def bytes_per_sample(self, model):
        try:
            s0 = model.env.initial_states(1)
        except Exception:  # noqa: BLE001 (an env without initial_states: no estimate)
            return None
        return s0.numel() * s0.element_size()  # one terminal state

    def memory_need(self, model, n: int, batch_size, in_flight: int | None = None) -> int | None:
        """The output twice (the batches and their concatenation) plus the trajectories in flight
        (the batch, or the SMC particles of the runs advanced together)."""

        out, traj = self.bytes_per_sample(model), trajectory_bytes(model.env)
        if out is None or traj is None:
            return None
        k = in_flight if in_flight is not None else min(n, batch_size or DEFAULT_BATCH)
        return 2 * n * out + k * traj

    def default_config(self, enumerable: bool = False):
        if enumerable:  # expected losses by DP: one pass over every state per step
            return ClassifierTrainConfig(steps=1500, lr=3e-3, warmup_steps=300, alpha_groups=4, estimator="exact")
        return ClassifierTrainConfig(steps=2000, batch_per_base=64, lr=1e-3, warmup_steps=500)

    def prepare_fit(self, bases, beta):
        bases = at_beta(bases, beta)
        spaces = {repr(b.env.space) for b in bases}
        if len(spaces) != 1:
            raise ValueError(f"the bases live on different spaces: {sorted(spaces)}")
        return bases, is_enumerable(bases[0].env)

    def fit(self, bases, n_slots, cfg, arch, dev, progress, checkpoint_path, checkpoint_every):
        env = bases[0].env
        if hasattr(env, "default_classifier"):  # an env with its own classifier body (molecules: a graph transformer)
            clf = env.default_classifier(len(bases), n_slots, seed=cfg.seed, **arch).to(dev)
        else:
            clf = SculptingClassifier(env, len(bases), n_slots, **{"hidden": 128, **arch}, seed=cfg.seed).to(dev)
        hist = train_classifier(
            clf,
            bases,
            cfg,
            progress=progress,
            desc="classifier",
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
        )
        return clf, hist


class DiffusionFamily(ModelFamily):
    name = "diffusion"

    def owns(self, model) -> bool:
        return isinstance(model, (DiffusionBase, DiffusionPathComposition))

    def check_classifier(self, bases, classifier) -> None:
        if not hasattr(classifier, "log_joint") or not hasattr(classifier, "image_shape"):
            raise TypeError(
                f"a {type(classifier).__name__} is a GFlowNet classifier; diffusion bases need a time "
                "classifier (sc.fit_classifier on these bases)"
            )
        shape, want = tuple(classifier.image_shape), tuple(bases[0].image_shape)
        if shape != want:
            raise ValueError(f"the classifier takes images {shape}, the bases make {want}")

    def compose(self, bases, classifier, composition, *, form, gamma, beta, successor_head):
        if form != "anchored":
            raise ValueError("form= is the GFlowNet guidance form; diffusion compositions take gamma=")
        if successor_head is not None:
            raise ValueError("successor_head= is for GFlowNet compositions with a trained classifier")
        if beta is not None:
            raise ValueError("beta= is for β-conditional GFlowNets, not diffusion models")
        if classifier is None:  # no classifier: the composition the bases' own paths define
            return DiffusionPathComposition(bases, composition, gamma)

        return ComposedScore(bases, classifier, composition, gamma)

    def draw_options(self, model, n, generator, seed, *, steps, batch_size, progress, workers, sampler):
        if workers not in (1, "auto"):
            raise ValueError("workers= is for GFlowNets (a diffusion batch is one tensor computation)")
        return DiffusionDraw(
            n, generator, DiffusionDraw.steps if steps is None else steps, batch_size, progress, dict(sampler)
        )

    def sample(self, model, draw: DiffusionDraw):
        n, generator, steps, batch_size, progress = draw.n, draw.generator, draw.steps, draw.batch_size, draw.progress
        options = dict(draw.sampler)
        sampler = options.pop("sampler", "smc" if isinstance(model, DiffusionPathComposition) else "pc")
        if isinstance(model, DiffusionPathComposition):
            if sampler == "auto":
                sampler = "smc"
            if is_scheduler(sampler):  # a DDPM scheduler: path SMC along its own kernel (others refused there)
                rest = {k: options.pop(k) for k in list(options) if k != "fast"}
                sampler = diffusion_sampler("smc", scheduler=sampler, **rest)
            if getattr(sampler, "name", sampler) != "smc":
                raise ValueError(
                    f"sampler={getattr(sampler, 'name', sampler)!r} follows one score field; a path composition "
                    "(no classifier) targets paths and is sampled by SMC with the path twist: sampler='smc' "
                    "(or 'auto'). ODE, EDM and Langevin-corrected steps have no path density to weigh"
                )
        spec = options.pop("fast", None)
        fast = FastPath.parse(spec, device_of(model))
        if fast.compile is not None:
            raise ValueError(
                "fast= for sampling takes channels_last and bf16 (compile / cudagraphs are training switches)"
            )
        if is_scheduler(sampler):  # a diffusers scheduler instance (sculpting.adapters.diffusers)
            if options:
                raise ValueError("sampler= is a name or a diffusers scheduler (which takes no other option)")
            sampler = SchedulerSampler(scheduler=sampler)
        elif not isinstance(sampler, (str, Sampler)):
            raise ValueError("sampler= is a name, a Sampler or a diffusers scheduler (which takes no other option)")
        sampler = diffusion_sampler(sampler, **options)
        bs, parts = batch_size or n, []
        with fast.sampling(model):
            for i in range(0, n, bs):  # a plain loop: the sampler is one frame below sc.sample's family call
                parts.append(sampler.draw(model, min(bs, n - i), generator, steps=steps, progress=progress))
        x = torch.cat(parts).float()
        _report_out_of_range(x)
        return x

    def smc_options(self, particles, generator, *, proposal, resample_threshold, twist, steps, progress):
        steps = DiffusionSMCOptions.steps if steps is None else steps  # the default, written once
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps must be an integer, got {steps!r}")
        if not 2 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must lie in [2, {MAX_STEPS}] (sculpting.infrastructure.bounds), got {steps}")
        if twist not in ("classifier", "paths"):
            raise ValueError(
                f"twist={twist!r}: diffusion SMC twists by the classifier ('classifier') or by the bases' "
                "path posteriors ('paths', docs/classifier_free.md)"
            )
        return DiffusionSMCOptions(particles, generator, proposal, resample_threshold, twist, steps, progress)

    def smc(self, model, options: DiffusionSMCOptions):
        particles, generator, proposal = options.particles, options.generator, options.proposal
        resample_threshold, twist, steps, progress = (
            options.resample_threshold,
            options.twist,
            options.steps,
            options.progress,
        )
        if twist == "paths" and hasattr(model, "composition") and not isinstance(model, DiffusionPathComposition):
            # a classifier composition sampled with the path twist: the same bases, no classifier
            model = DiffusionPathComposition(model.bases, model.composition, getattr(model, "gamma", 1.0))
            proposal = "auto" if proposal in ("auto", "guided") else proposal
        if isinstance(model, DiffusionPathComposition):
            check_path_proposal(proposal, twist)
            return diffusion_path_smc(model, particles, generator, resample_threshold, steps, progress)
        if twist != "classifier":
            raise ValueError("twist= is for GFlowNet compositions with a successor head")

        return diffusion_smc(model, particles, generator, proposal, resample_threshold, steps, progress)

    def bytes_per_sample(self, model):
        return 4 * 4 * math.prod(tuple(model.image_shape))  # float32 state, score, noise, output

    def working_bytes_per_image(self, model) -> int:
        """Bytes one image in flight takes at the peak of a sampler step (SMC's included), measured
        on a probe of one image: the step's float32 tensors, (7 + 2m)·D (state, proposal, noise,
        mean, mixed score, guidance gradient and output; per base a score and a mean), plus the
        largest network pass: a base's score (the sum of its layers' outputs, no gradient kept) or
        the classifier's forward and backward (twice its layers' outputs)."""
        bases = list(getattr(model, "bases", None) or [model])
        d = math.prod(tuple(model.image_shape))
        dev = getattr(bases[0], "device", None) or torch.device("cpu")  # host: the fallback for a model without .device
        x, t = torch.zeros(1, *model.image_shape, device=dev), torch.full((1,), 0.5, device=dev)
        with torch.no_grad():
            net = max(_layer_output_bytes(b, lambda b=b: b.score(x, t)) for b in bases)
        q = getattr(model, "q", None)
        if q is not None and model.composition.n_observations:
            xg = x.clone().requires_grad_(True)
            with torch.enable_grad():
                net = max(net, 2 * _layer_output_bytes(model.classifier, lambda: q.log_q_y(xg, t)))
        return 4 * (7 + 2 * len(bases)) * d + net

    def memory_need(self, model, n: int, batch_size, in_flight: int | None = None) -> int | None:
        """The output twice (the batches and their concatenation) plus the images in flight (the
        batch, or the SMC particles of the runs advanced together) × :meth:`working_bytes_per_image`."""
        k = in_flight if in_flight is not None else min(n, batch_size or n)
        return 2 * n * self.bytes_per_sample(model) // 4 + k * self.working_bytes_per_image(model)

    def default_config(self, enumerable: bool = False):
        return DiffusionClassifierConfig(
            pool_size=512,
            pool_steps=50,
            pool_sampler="edm",
            noising="forward",
            updates=1500,
            batch=64,
            lr=1e-3,
            terminal_only=100,
        )

    def prepare_fit(self, bases, beta):
        if beta is not None:
            raise ValueError("beta= is for β-conditional GFlowNets, not diffusion models")
        shapes = {tuple(b.image_shape) for b in bases}
        if len(shapes) != 1:
            raise ValueError(f"the bases have different image shapes: {sorted(shapes)}")
        sdes = [getattr(getattr(b, "sde", None), "config", repr(getattr(b, "sde", None))) for b in bases]
        if any(s != sdes[0] for s in sdes):
            raise ValueError(
                f"the bases diffuse under different SDEs ({sdes}): a classifier (and a composition) "
                "needs one forward process; a VP and a VE base have different noisy marginals at the "
                "same t"
            )
        return bases, False

    def fit(self, bases, n_slots, cfg, arch, dev, progress, checkpoint_path, checkpoint_every):
        shape = tuple(bases[0].image_shape)
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 6:
            raise ValueError(f"the time classifier takes square images [C, S, S] with S ≥ 6, got {shape}")
        clf = TimeClassifier(
            shape,
            len(bases),
            n_slots,
            sde=bases[0].sde.config,
            **{"trunk": (32, 64), "hidden": 128, "embed_dim": 64, **arch},
            seed=cfg.seed,
        ).to(dev)
        gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        pools = [draw_pool(b, cfg, gen, progress=progress) for b in bases]
        hist = train_time_classifier(
            clf,
            pools,
            cfg,
            progress=progress,
            desc="classifier",
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
            bases=bases,
        )
        return clf, hist


#: diffusion samples live in [−1, 1]; beyond this many times that range a sampler has diverged
OUT_OF_RANGE_FACTOR = 100.0


def _report_out_of_range(x: torch.Tensor) -> None:
    """Warn (``RuntimeWarning``) when samples leave the data range [−1, 1] by orders of magnitude
    (too strong a guidance for too few steps)."""
    if x.numel() and bool((x.abs() > OUT_OF_RANGE_FACTOR).any()):
        share = float((x.abs() > OUT_OF_RANGE_FACTOR).float().mean())
        warnings.warn(
            f"{share:.1%} of the sampled values lie beyond ±{OUT_OF_RANGE_FACTOR:g} (the data range is "
            f"[−1, 1], largest |x| = {float(x.abs().max()):.3g}): the sampler diverged; lower gamma or "
            "take more steps",
            RuntimeWarning,
            stacklevel=3,
        )


#: the families, asked in order (diffusion first: a score model that also had ``env`` is diffusion)
FAMILIES: list = [DiffusionFamily(), GFlowNetFamily()]


def family_of(model) -> ModelFamily:
    """The family that owns ``model`` (a TypeError naming the protocols otherwise)."""
    for fam in FAMILIES:
        if fam.owns(model):
            return fam
    raise TypeError(
        f"{type(model).__name__} is neither a GFlowNet base (env, log_probs) nor a diffusion "
        "base (sde, score); see sculpting.protocols"
    )


def fitting_batch(model, n: int) -> int:
    """The largest batch size n, ⌈n/2⌉, ⌈n/4⌉, … whose estimated peak (the family's
    :meth:`ModelFamily.memory_need`) fits :func:`~sculpting.infrastructure.bounds.memory_limit`;
    1 at least. ``n`` itself whenever the whole draw fits (one batch: the same bytes as without)."""
    family, limit, b = family_of(model), memory_limit(), n
    while b > 1 and (family.memory_need(model, n, b) or 0) > limit:
        b = (b + 1) // 2
    return b


def family_of_bases(bases) -> ModelFamily:
    """The one family of ≥ 2 bases (errors for fewer bases or mixed families)."""

    if not 2 <= len(bases) <= MAX_BASES:
        raise ValueError(
            f"a composition takes 2 to {MAX_BASES} bases (its joint classifier has m^n outputs), got {len(bases)}"
        )
    fams = {family_of(b).name: family_of(b) for b in bases}
    if len(fams) != 1:
        raise TypeError(f"cannot compose GFlowNets with diffusion models (got {sorted(fams)})")
    return next(iter(fams.values()))
