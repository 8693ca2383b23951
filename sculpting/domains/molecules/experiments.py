"""Pinned settings and helpers of the molecule experiments (docs/molecules.md §8–§11).

Base GFlowNets: one β-conditional model per objective ("seh", "sa", "qed"), trained with
trajectory balance (β ~ U[0, 96], EMA sampler 0.95, exploration 0.1, per-tensor gradient
clipping 10, Adam with weight decay 1e-8 and lr·2^(−t/20 000), log Z lr·2^(−t/50 000)).
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from sculpting.algebra import TWO_BASE_OPERATIONS
from sculpting.compose import compose
from sculpting.domains.molecules.classifier_sets import CLASSIFIER_SETS
from sculpting.domains.molecules.env import FragmentGraphEnv
from sculpting.domains.molecules.metrics import high_low_table, validity_uniqueness_diversity
from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet
from sculpting.domains.molecules.rewards import compute_rewards
from sculpting.gflownet.parallel import sample_terminal_parallel
from sculpting.gflownet.samplers import draw_terminal, gflownet_sampler
from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet
from sculpting.infrastructure.runtime import device_of
from sculpting.infrastructure.workers import fork_map, resolve_workers

__all__ = [
    "OBJECTIVES",
    "LEARNING_RATES",
    "base_train_config",
    "train_molecule_base",
    "train_molecule_bases",
    "sample_molecules",
]

OBJECTIVES = ("seh", "sa", "qed")
LEARNING_RATES = {"seh": (5e-4, 5e-4), "qed": (1e-4, 1e-3), "sa": (5e-4, 5e-4), "mw": (5e-4, 5e-4)}


def base_train_config(objective: str, steps: int = 20000, batch_size: int = 64, seed: int = 0) -> GFlowNetTrainConfig:
    """The docs/molecules.md §8 training settings for one objective."""
    if objective not in LEARNING_RATES:
        raise ValueError(f"unknown objective {objective!r}; choose from {sorted(LEARNING_RATES)}")
    lr, z_lr = LEARNING_RATES[objective]
    return GFlowNetTrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        lr_log_z=z_lr,
        epsilon=0.1,
        seed=seed,
        eval_every=0,
        sampler_ema=0.95,
        weight_decay=1e-8,
        clip_grad_per_param=10.0,
        lr_half_life=20000,
        log_z_half_life=50000,
    )


def train_molecule_base(
    objective: str,
    steps: int,
    preset: str = "cpu",
    max_frags: int = 9,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    callback=None,
    callback_every: int = 0,
    checkpoint_path=None,
):
    """Train a β-conditional base for ``objective``; returns (model, history)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    model = MoleculeGFlowNet(FragmentGraphEnv(max_frags, objective), **PRESETS[preset], seed=seed)
    cfg = base_train_config(objective, steps, batch_size, seed)
    hist = train_gflownet(
        model,
        cfg,
        progress=progress,
        desc=f"{objective} GFlowNet",
        conditioning=BetaConditioning(),
        callback=callback,
        callback_every=callback_every,
        checkpoint_path=checkpoint_path,
    )
    hist["config"] = cfg.to_dict()
    return model.eval(), hist


def train_molecule_bases(
    objectives,
    steps: int,
    preset: str = "cpu",
    max_frags: int = 9,
    batch_size: int = 64,
    seed: int = 0,
    workers: int | str = 1,
    progress: bool = True,
) -> dict:
    """{objective: (model, history)} for every objective (:func:`train_molecule_base`, each seeded
    by ``seed`` alone). ``workers`` > 1 trains that many bases at a time in forked processes of one
    torch thread each (:func:`sculpting.infrastructure.workers.fork_map`): the same weights as one at a time, bit for
    bit; their progress bars are off and one line is printed per base. The costliest objective
    (SEH: the proxy network's reward) starts first, so that the workers finish close together."""

    workers = resolve_workers(workers)

    objectives = list(objectives)
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"objectives must be distinct, got {objectives}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")

    def one(obj):
        model, hist = train_molecule_base(
            obj,
            steps,
            preset=preset,
            max_frags=max_frags,
            batch_size=batch_size,
            seed=seed,
            progress=progress and workers == 1,
        )
        return model.state_dict(), hist  # weights travel back, the model (env, RDKit objects) is rebuilt here

    order = sorted(objectives, key=lambda o: o != "seh")  # stable: SEH first, the rest in the given order
    trained = dict(zip(order, fork_map(one, order, workers)))
    out = {}
    for obj in objectives:
        state, hist = trained[obj]
        model = MoleculeGFlowNet(FragmentGraphEnv(max_frags, obj), **PRESETS[preset], seed=seed)
        model.load_state_dict(state)
        out[obj] = (model.eval(), hist)
        if workers > 1 and progress:
            print(f"base {obj}: trained in {hist['train_time_s']:.0f} s", flush=True)
    return out


@torch.no_grad()
def sample_molecules(
    policy,
    n_valid: int,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    max_batches: int | None = None,
    desc: str = "sampling",
    sampler: str = "auto",
    workers: int | str = 1,
    **sampler_options,
) -> dict:
    """Sample until ``n_valid`` valid molecules (or ``max_batches``) from a policy (a
    :class:`~sculpting.domains.molecules.policy.FixedBeta` base or a guided policy). ``sampler``:
    "auto" / "rejection" (exact, scores a few successors per step), "full" (scores them all) or
    "amortised" (successor-head proposal, the policy needs a head) or "smc" (sequential Monte
    Carlo, options ``particles``, ``proposal``, ``twist``) for guided policies, see
    :mod:`sculpting.gflownet.samplers`; ``sampler_options`` go to that sampler (e.g. ``envelope=``).
    ``workers`` > 1: each round draws ``workers`` batches in forked processes of one thread each
    (:mod:`sculpting.gflownet.parallel`, round r seeded ``seed + r · 7919``; CUDA models: one
    process per GPU); ``"auto"``: :func:`sculpting.infrastructure.workers.default_workers`; same seed and workers,
    same molecules.

    Returns {"states": [n, S] terminal states, "mols": RDKit molecules, "n_sampled": total
    trajectories (valid + invalid), "n_valid_sampled": valid ones among them (≥ n: the last batch's
    surplus counts for validity), "seconds": wall time}.
    """

    workers = resolve_workers(workers, device_of(policy))
    if n_valid < 1:
        raise ValueError(f"n_valid must be ≥ 1, got {n_valid}")

    gflownet_sampler(sampler, **sampler_options)  # an unknown sampler or option fails before any work
    env = policy.env
    gen = torch.Generator(device=device_of(policy)).manual_seed(seed)
    states, mols, n_sampled, n_valid_sampled, t0 = [], [], 0, 0, time.perf_counter()
    bar = tqdm(total=n_valid, desc=desc, disable=not progress)
    batches = 0
    while len(mols) < n_valid and (max_batches is None or batches < max_batches):
        if workers > 1:
            terminal = sample_terminal_parallel(
                policy,
                batch_size * workers,
                seed + batches * 7919,
                workers,
                sampler,
                batch_size,
                options=sampler_options,
            )
            n_sampled += batch_size * workers
        else:
            terminal = draw_terminal(policy, batch_size, gen, sampler, **sampler_options)
            n_sampled += batch_size
        batches += 1
        for s, m in zip(terminal, env.to_mols(terminal)):
            n_valid_sampled += m is not None
            if m is not None and len(mols) < n_valid:
                states.append(s)
                mols.append(m)
                bar.update(1)
    bar.close()
    st = torch.stack(states) if states else env.initial_states(0)
    return {
        "states": st,
        "mols": mols,
        "n_sampled": n_sampled,
        "n_valid_sampled": n_valid_sampled,
        "seconds": time.perf_counter() - t0,
    }


def reward_table(mols, names=("seh", "sa", "qed", "mw")) -> dict:
    """{name: numpy array} of rewards of valid molecules."""

    return {k: v.numpy() for k, v in compute_rewards(mols, names).items()}


def composition_policy(
    models: dict, choice: str, alpha: float = 0.5, beta: float = 32.0, form: str = "anchored", classifier: bool = True
):
    """A samplable policy for a named choice of the interactive panel / notebook 09; with
    ``classifier=False`` a composition is the path composition of the bases (no classifier,
    sampled by SMC: ``docs/classifier_free.md``).

    ``choice``: "base seh" | "base sa" | "base qed" | one of the two-way operations of
    :data:`~sculpting.algebra.TWO_BASE_OPERATIONS` on (SEH, SA) | "y=<labels>" / "mixture3" on
    (SEH, SA, QED). ``models`` = :func:`sculpting.domains.molecules.io.load_molecule_models` output.
    """

    if choice.startswith("base "):
        name = choice[5:]
        if name not in models["bases"]:
            raise ValueError(f"unknown base {name!r}; choose from {sorted(models['bases'])}")
        return models["bases"][name].at_beta(beta)
    if choice in TWO_BASE_OPERATIONS:
        spec, set_name = choice, "seh_sa"
    elif choice == "mixture3" or choice.startswith("y="):
        spec, set_name = ("mixture" if choice == "mixture3" else choice), "seh_sa_qed"
    else:
        raise ValueError(f"unknown choice {choice!r}")
    bases = [models["bases"][n] for n in CLASSIFIER_SETS[set_name]]

    if not classifier:
        return compose(bases, None, spec, alpha=alpha, beta=beta)
    return compose(
        bases,
        models["classifiers"][set_name],
        spec,
        alpha=alpha,
        beta=beta,
        form=form,
        successor_head=models.get("successor_heads", {}).get(set_name),
    )


def summarize_samples(sample: dict, names=("seh", "sa", "qed", "mw")) -> dict:
    """Rewards, validity / uniqueness / diversity and both high/low tables of one sample set."""

    r = reward_table(sample["mols"], names)
    out = validity_uniqueness_diversity(sample["mols"], sample["n_sampled"], sample.get("n_valid_sampled"))
    out["mean"] = {k: float(v.mean()) for k, v in r.items()}
    out["table_seh_sa"] = high_low_table(r, ("seh", "sa"))
    out["table_seh_sa_qed"] = high_low_table(r, ("seh", "sa", "qed"))
    out["seconds"] = sample["seconds"]
    return out, r


def importance_target_table(
    base_sample: dict, base_index: int, classifier, composition, names=("seh", "sa"), beta: float | None = None
) -> dict:
    """High/low table of a composition's *target*, estimated without guided sampling: samples of
    base b re-weighted by target(x) / p_b(x) = [Σ_i ω¹_i post_i(x) / post_b(x)] · Π_k p(y_k | x),
    with post_i(x) = p_i(x) / Σ_j p_j(x) from the classifier's terminal head (self-normalised
    importance sampling). Shows what the composition of the *learned* bases should look like,
    free of the non-terminal head's errors; ``ess`` is the effective sample size. ``beta``: the
    bases' β, needed by a β-conditional classifier."""
    import numpy as np

    with torch.no_grad():
        ctx = {"context": beta} if getattr(classifier, "context_conditioned", False) else {}
        lt = classifier.terminal_log_posterior(base_sample["states"], **ctx).double()  # [n, m]
    log_w = composition.log_priors(torch.float64)
    log_mix = torch.logsumexp(lt + log_w[0], dim=1) - lt[:, base_index]
    for k, y in enumerate(composition.observations):
        log_mix = log_mix + torch.log_softmax(lt + log_w[k], dim=1)[:, y - 1]
    w = torch.softmax(log_mix, 0).numpy()
    r = reward_table(base_sample["mols"], names)
    cells = high_low_table(r, names)
    out = {}
    for cell in cells:
        mask = np.ones(len(w), dtype=bool)
        for part, k in zip(cell.split(), names):
            hi = r[k] >= {"seh": 0.5, "sa": 0.6, "qed": 0.25}[k]
            mask &= hi if part.endswith("+") else ~hi
        out[cell] = 100.0 * float(w[mask].sum())
    return {"table": out, "ess": float(1.0 / (w**2).sum())}
