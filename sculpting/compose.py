"""The public API of the method: compose bases, sample, and solve compositions exactly.

    import sculpting as sc
    bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
    model = sc.compose(bases, clf, "harmonic", alpha=0.3)   # a GFlowNet policy or a score model
    x = sc.sample(model, 64, seed=0)
    sc.exact_distribution(model)                            # enumerable GFlowNets only

A composed model has the interface of its family (GFlowNet: ``env`` + ``log_probs``; diffusion:
``sde`` + ``image_shape`` + ``score``), so it can be sampled, solved exactly, or composed again.
The maths is in ``docs/algebra.md`` and ``docs/guidance.md``.
"""

from __future__ import annotations

import math

import torch

from sculpting.algebra import Composition, parse_composition
from sculpting.infrastructure.bounds import MAX_STEPS, MAX_WORKERS
from sculpting.diffusion.smc import runs_at_once as diffusion_runs_at_once
from sculpting.families import GFlowNetFamily, family_of, family_of_bases
from sculpting.infrastructure.fingerprint import check_bases
from sculpting.gflownet.exact import terminal_log_probs
from sculpting.gflownet.policy import policy_table
from sculpting.gflownet.smc import runs_at_once as gflownet_runs_at_once
from sculpting.protocols import is_enumerable
from sculpting.smc_core import check_smc_options
from sculpting.infrastructure.training_scaffold import check_seed, global_rng_kept

__all__ = ["compose", "sample", "smc", "exact_distribution", "target_distribution"]


def _check_classifier(family, bases, classifier, check: bool, beta) -> None:
    """Refuse a classifier of another family, base count, space or image shape, or (``check``)
    one trained on other bases, before anything is built (``family``: a
    :class:`~sculpting.families.ModelFamily`)."""
    if classifier is None:
        return
    n_bases = getattr(classifier, "n_bases", None)
    if not isinstance(n_bases, int) or not hasattr(classifier, "n_slots"):
        raise TypeError(
            f"classifier must be a trained sculpting classifier (sc.fit_classifier) or None, got "
            f"{type(classifier).__name__}"
        )
    family.check_classifier(bases, classifier)
    if n_bases != len(bases):
        raise ValueError(f"the classifier was trained on {n_bases} bases, got {len(bases)}")
    if check:
        try:
            check_bases(classifier, bases)
        except ValueError:
            if beta is None or not all(hasattr(b, "at_beta") for b in bases):
                raise
            check_bases(classifier, [b.at_beta(beta) for b in bases])  # trained at one fixed β


def compose(
    bases,
    classifier,
    operation="harmonic",
    *,
    alpha: float = 0.5,
    form: str = "anchored",
    gamma: float = 1.0,
    beta: float | None = None,
    check: bool = True,
    successor_head=None,
):
    """The sculpted model of ``bases`` under ``operation``.

    Args:
        bases: m ≥ 2 models of one family over one space (order = label order 1..m).
        classifier: a trained sculpting classifier of these bases, or ``None`` for the exact
            (oracle) classifier of enumerable GFlowNet bases.
        operation: "harmonic", "contrast", "reverse_contrast", "mixture", "p1", "p2" (two bases,
            weight ``alpha``), "y=123"-style observed labels, a tuple of labels, or a
            :class:`~sculpting.algebra.Composition`.
        alpha: the two-base weight (α of p1 in the denominator, see ``docs/algebra.md``).
        form: GFlowNet guidance form, "anchored" (default) or "paper".
        gamma: diffusion guidance scale (1 = the exact composition, > 1 sharpens).
        beta: the inverse temperature of β-conditional GFlowNet bases (molecules).
        check: refuse a classifier that records other bases than ``bases`` (its training bases'
            weight fingerprints, :mod:`sculpting.infrastructure.fingerprint`); ``False`` composes anyway.
        successor_head: an amortised successor head distilled from ``classifier`` (GFlowNets;
            enables ``sample(..., sampler="amortised")``, see :mod:`sculpting.gflownet.amortised`).
    Returns:
        a :class:`~sculpting.gflownet.guidance.GuidedPolicy` or a
        :class:`~sculpting.diffusion.composition.ComposedScore`.

    Examples:
        >>> import sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
        >>> model = sc.compose(bases, clf, "harmonic", alpha=0.3)     # a guided GFlowNet policy
        >>> sc.sample(model, 4, seed=0).shape                          # 4 cells of the 32 × 32 grid
        torch.Size([4, 2])
        >>> oracle = sc.compose(bases, None, "harmonic", alpha=0.3)   # enumerable: the exact oracle, no classifier
        >>> round(float(sc.l1_distance(sc.exact_distribution(oracle),
        ...                            sc.target_distribution(bases, "harmonic", alpha=0.3))), 6)
        0.0
    """
    if isinstance(bases, (str, bytes)) or not hasattr(bases, "__len__"):
        raise TypeError(f"bases must be a list of models, got {type(bases).__name__}")

    family = family_of_bases(bases)
    comp = parse_composition(operation, len(bases), alpha)
    if form not in ("anchored", "paper"):
        raise ValueError(f"unknown guidance form {form!r}; choose 'anchored' or 'paper'")
    for name, v in (("gamma", gamma), ("beta", beta)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise (TypeError if not isinstance(v, (int, float)) or isinstance(v, bool) else ValueError)(
                f"{name} must be a finite number, got {v!r}"
            )
    if not isinstance(check, bool):
        raise TypeError(f"check must be True or False, got {check!r}")
    _check_classifier(family, bases, classifier, check, beta)
    if isinstance(successor_head, (str, bytes, int, float)) or (
        successor_head is not None and not callable(successor_head) and not hasattr(successor_head, "forward")
    ):
        raise TypeError(
            f"successor_head= takes a successor head module (sculpting.gflownet.amortised), got {successor_head!r}"
        )
    if successor_head is not None and classifier is None:
        raise ValueError("successor_head= is for GFlowNet compositions with a trained classifier")
    return family.compose(
        list(bases), classifier, comp, form=form, gamma=gamma, beta=beta, successor_head=successor_head
    )


def sample(
    model,
    n: int,
    seed: int | None = 0,
    *,
    steps: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    workers: int | str = 1,
    **sampler_options,
) -> torch.Tensor:
    """Draw ``n`` samples of a base or composed model.

    Returns ``[n, *S]``: GFlowNets terminal states (molecules: ``model.env.to_mols(x)``),
    diffusion models images ``[n, C, H, W]`` in [−1, 1]. ``seed`` seeds a private generator on
    the model's device and leaves torch's global generator as it was (``None``: the global one).
    Checked first: ``n``, ``seed``, ``steps`` and ``workers`` are integers, sampler options are
    finite, the draw fits in a quarter of memory; the output must be finite
    (:class:`NonFiniteSampleError` otherwise). Each sampler declares its options: an option it
    does not take, or one the model's family ignores, is refused (``TypeError`` / ``ValueError``).

    Options every family takes:

    | option | meaning |
    |---|---|
    | ``batch_size`` | draw that many at a time (default: all at once) |
    | ``sampler`` | a registered name (below) or a ``Sampler`` instance (:mod:`sculpting.sampling`) |
    | ``sampler="smc"``, ``particles`` | ⌈n / N⌉ independent SMC runs of N particles (:func:`smc`) |
    | ``proposal``, ``resample_threshold`` | SMC's proposal and resampling threshold (:func:`smc`) |

    GFlowNets (``steps=`` and ``progress=`` are refused):

    | option | meaning |
    |---|---|
    | ``sampler="auto"`` (default) | rejection for guided policies off the grid, else full; SMC without classifier |
    | ``sampler="full"`` | score every successor of a guided policy |
    | ``sampler="rejection"`` | exact, scoring a few successors (:mod:`sculpting.gflownet.rejection`) |
    | ``proposals``, ``rounds``, ``max_fraction``, ``min_actions``, ``acceptances`` | the rejection sampler's budget |
    | ``sampler="amortised"``, ``envelope`` | propose from the successor head (``compose(..., successor_head=)``) |
    | ``twist`` (SMC) | ``"classifier"``, ``"head"`` (successor head), ``"paths"`` (none), ``"flows"`` (state flows) |
    | ``workers`` | worker processes of one thread (an int ``seed``); ``"auto"``: one per core or GPU |

    Diffusion models (``workers=`` is refused):

    | option | meaning |
    |---|---|
    | ``steps`` | sampler steps (default 300) |
    | ``progress`` | a progress bar over the steps |
    | ``sampler="pc"`` (default), ``snr``, ``corrector`` | the predictor–corrector sampler |
    | ``sampler="ode"``, ``rho`` | the probability-flow ODE in Heun steps (far fewer, e.g. 40) |
    | ``sampler="edm"``, ``churn``, ``rho``, ``s_noise`` | the EDM sampler (e.g. 50 steps) |
    | ``sampler=DDIMScheduler(...)`` | a diffusers scheduler (VP models; DDPM also for path SMC) |
    | ``scheduler`` (SMC) | a diffusers ``DDPMScheduler`` whose kernel the path SMC follows |
    | ``fast`` | ``"auto"`` (channels-last, bf16 on CUDA), ``"channels_last"``, ``"bf16"`` |

    Examples:
        >>> import sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
        >>> model = sc.compose(bases, clf, "harmonic")
        >>> x = sc.sample(model, 8, seed=0)
        >>> bool((x == sc.sample(model, 8, seed=0)).all())           # the same seed, the same samples
        True
        >>> sc.sample(model, 8, seed=0, sampler="smc", particles=16).shape
        torch.Size([8, 2])
    """

    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be a positive integer, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    check_seed(seed, allow_none=True)

    checked = [] if steps is None else [("steps", steps, MAX_STEPS)]
    checked += [] if workers == "auto" else [("workers", workers, MAX_WORKERS)]  # "auto": the family resolves it
    for name, v, high in checked:
        if isinstance(v, bool) or not isinstance(v, int):
            what = "an integer or 'auto'" if name == "workers" else "an integer"
            raise TypeError(f"{name} must be {what}, got {v!r}")
        if v < 1:
            raise ValueError(f"{name} must be ≥ 1, got {v}")
        if v > high:
            raise ValueError(f"{name} must be at most {high} (sculpting.infrastructure.bounds), got {v}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    for k, v in sampler_options.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{k} must be finite, got {v}")

    family = family_of(model)
    gen = None if seed is None else torch.Generator(device=_device_of(model)).manual_seed(seed)
    options = family.draw_options(  # refuses what this family ignores
        model,
        n,
        gen,
        seed,
        steps=steps,
        batch_size=batch_size,
        progress=progress,
        workers=workers,
        sampler=sampler_options,
    )
    _check_memory(model, family, n, batch_size, _smc_in_flight(family, n, batch_size, sampler_options))
    forget_cached_scores(model)
    with global_rng_kept(seed is not None):  # a seeded call leaves torch's global generator as it was
        out = family.sample(model, options)
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise NonFiniteSampleError(
            f"the sampler produced non-finite values ({int((~torch.isfinite(out)).sum())} "
            "entries): a guidance scale (gamma) or a sampler option too large for this model"
        )
    return out


class NonFiniteSampleError(ValueError):
    """A sampler produced NaN or infinite values."""


from sculpting.infrastructure.bounds import check_memory as _check_memory  # noqa: E402
from sculpting.infrastructure.runtime import device_of as _device_of  # noqa: E402


def _smc_in_flight(family, n: int, batch_size, options: dict) -> int | None:
    """The particles an SMC draw of ``n`` samples advances at once (None for other samplers)."""
    if options.get("sampler") != "smc":
        return None

    particles, _ = check_smc_options(options.get("particles", 64), options.get("resample_threshold", 0.5))
    runs = math.ceil(n / particles)
    if family.name == "gflownet":
        per = gflownet_runs_at_once(particles, batch_size)
    else:
        per = diffusion_runs_at_once(runs, particles, batch_size)
    return min(per, runs) * particles


def forget_cached_scores(model) -> None:
    """Empty the classifier-score caches of ``model`` and of its bases (recursively), so that a call
    depends on its seed alone, not on what earlier calls scored (values computed in other batches
    differ by float rounding)."""
    cache = getattr(model, "cache", None)
    if hasattr(cache, "clear"):
        cache.clear()
    for b in getattr(model, "bases", None) or ():
        if b is not model:
            forget_cached_scores(b)


def smc(
    model,
    particles: int = 64,
    seed: int | None = 0,
    *,
    proposal: str = "auto",
    resample_threshold: float = 0.5,
    twist: str = "classifier",
    steps: int | None = None,
    progress: bool = False,
):
    """One sequential Monte Carlo run of ``particles`` particles of a composition (``docs/smc.md``).

    The particles target the composition that the classifier's *terminal* head defines (GFlowNets:
    p_b(x) Π_{k≥2} p_T(y_k | x) anchored, p̄(x) Π_k p_T(y_k | x) in the paper form; diffusion:
    p̄(x) Q_ε(y | x)^γ), exactly as the particles grow, whatever the errors of the intermediate
    classifier or the proposal (they change the variance only).

    Args:
        model: a composition from :func:`compose` (GFlowNet or diffusion).
        particles: N.
        seed: seeds a private generator (torch's global one is left as it was); None: the global one.
        proposal: GFlowNets "base", "guided" (every successor scored), "amortised" (the successor
            head); diffusion "guided" or "base"; "auto": the best the model offers.
        resample_threshold: resample when ESS < threshold · N (0: never, 1: every step).
        twist: GFlowNets with a successor head: "classifier" (the chosen successor scored, one row
            per particle per step) or "head" (the head's own prediction). Any composition: "paths"
            (the bases' path posteriors, no classifier: ``docs/classifier_free.md``); GFlowNets whose
            bases learned state flows (torchgfn DB / SubTB): "flows" (the flow classifier
            Q(i | s) ∝ ω_i F_i(s) / Z_i, no classifier trained).
        steps: diffusion grid points (steps − 1 Euler–Maruyama transitions; default 200, at most
            :data:`~sculpting.infrastructure.bounds.MAX_STEPS`). GFlowNets take none (a trajectory ends when it
            stops): passing ``steps`` there is refused, as is a ``twist`` other than "classifier" for
            diffusion models.
    Returns:
        :class:`~sculpting.smc_core.SMCRun`: ``states`` ``[N, *S]``, normalised ``log_weights`` ``[N]``,
        ``log_z`` (log Ẑ; exp(log Ẑ) is unbiased), ``ess`` after every step, ``resampled_at``,
        ``stats``; ``run.draw(k)`` gives k equal-weight samples.

    Examples:
        >>> import sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
        >>> run = sc.smc(sc.compose(bases, clf, "harmonic"), 32, seed=0)
        >>> run.states.shape, run.log_weights.shape, run.draw(4).shape
        (torch.Size([32, 2]), torch.Size([32]), torch.Size([4, 2]))
    """
    check_seed(seed, allow_none=True)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    family = family_of(model)
    check_smc_options(particles, resample_threshold)
    for name, v in (("proposal", proposal), ("twist", twist)):
        if not isinstance(v, str):
            raise TypeError(f"{name} must be a string, got {v!r}")
    gen = None if seed is None else torch.Generator(device=_device_of(model)).manual_seed(seed)
    options = family.smc_options(  # refuses what this family ignores
        particles,
        gen,
        proposal=proposal,
        resample_threshold=resample_threshold,
        twist=twist,
        steps=steps,
        progress=progress,
    )
    _check_memory(model, family, particles, particles, particles, what="smc")  # before any particle is drawn
    forget_cached_scores(model)  # a run depends on its seed alone
    with global_rng_kept(seed is not None):
        return family.smc(model, options)


def exact_distribution(model) -> torch.Tensor:
    """``[N]`` exact terminal log-distribution of a GFlowNet policy on an enumerable environment
    (index order of ``env.all_states()``), by dynamic programming.

    Examples:
        >>> import sculpting as sc
        >>> bases, clf = sc.load_pretrained("grid/shubert_sigmoid")
        >>> log_p = sc.exact_distribution(sc.compose(bases, clf, "harmonic"))
        >>> log_p.shape, round(float(log_p.exp().sum()), 6)            # one entry per grid cell, summing to 1
        (torch.Size([1024]), 1.0)
    """

    if not isinstance(family_of(model), GFlowNetFamily) or not is_enumerable(model.env):
        raise ValueError("exact_distribution needs a GFlowNet policy on an enumerable environment")
    return terminal_log_probs(model.env, policy_table(model.env, model))


def target_distribution(bases, operation="harmonic", *, alpha: float = 0.5) -> torch.Tensor:
    """``[N]`` the exact sculpted target p(x | y) of enumerable GFlowNet ``bases`` (computed from
    their exact terminal distributions; see ``docs/algebra.md``).

    Examples:
        >>> import sculpting as sc
        >>> bases, _ = sc.load_pretrained("grid/shubert_sigmoid")
        >>> target = sc.target_distribution(bases, "contrast", alpha=0.05)
        >>> target.shape, round(float(target.exp().sum()), 6)
        (torch.Size([1024]), 1.0)
    """
    comp: Composition = parse_composition(operation, len(bases), alpha)
    spaces = [getattr(getattr(b, "env", None), "space", None) for b in bases]
    if any(sp != spaces[0] for sp in spaces):
        raise ValueError(
            f"the bases live on different spaces ({', '.join(sorted({repr(sp) for sp in spaces}))}): "
            "a target needs one space"
        )
    base_lp = torch.stack([exact_distribution(b) for b in bases])
    return comp.target_log_prob(base_lp)
