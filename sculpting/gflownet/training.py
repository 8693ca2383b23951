"""Training loop of base GFlowNets (trajectory balance, ε-exploration; docs/grid.md).

On an enumerable environment each step evaluates the policy once on all N states (one
batched network call), samples the batch from that table without gradients and gathers the
log-probabilities of the visited transitions from the same table (with gradients). On other
environments it samples without gradients and re-scores all visited states in one call.
Both are exact TB gradients: TB is off-policy, so sampling without autograd changes nothing.

Options used by the molecule domain (docs/molecules.md §8), all off by default: a ``conditioning``
object (per-trajectory condition c, e.g. β, with log R(x | c) and log Z(c)), an EMA copy of the
model as the sampler (θ_s ← d·θ_s + (1 − d)·θ after every step), weight decay, per-tensor
gradient clipping, and exponential learning-rate decay lr·2^(−t / half-life).

``trajectory_workers=W`` (non-enumerable environments; off by default): the batches are drawn by
W CPU processes one step ahead of the update, while the model's device trains
(:mod:`sculpting.gflownet.pipeline`; each batch drawn by the sampler one update older).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch

from sculpting.infrastructure.bounds import MAX_WORKERS
from sculpting.infrastructure.distributed import average_gradients, broadcast_module, is_main, local_batch, rank_seed
from sculpting.infrastructure.fingerprint import describe
from sculpting.finite import NonFiniteError
from sculpting.gflownet.exact import reward_log_distribution, terminal_log_probs
from sculpting.gflownet.losses import trajectory_balance_loss, trajectory_log_pb
from sculpting.gflownet.pipeline import TrajectoryWorkers
from sculpting.gflownet.policy import policy_table
from sculpting.gflownet.rollout import sample_trajectories, sample_trajectories_tabular
from sculpting.protocols import is_enumerable
from sculpting.infrastructure.training_scaffold import (
    Resumable,
    TrainConfig,
    ema_update,
    frozen_copy,
    keeps_global_rng,
    seeded,
)
from sculpting.infrastructure.training_scaffold import progress as progress_bar

__all__ = ["GFlowNetTrainConfig", "train_gflownet", "exact_l1_to_reward"]


@dataclass
class GFlowNetTrainConfig(TrainConfig):
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    lr_log_z: float = 0.1
    epsilon: float = 0.05
    seed: int = 0
    eval_every: int = 100  # exact L1 evaluation period on enumerable envs (0: never)
    target_l1: float | None = None  # stop early once the exact L1 is at or below this
    sampler_ema: float = 0.0  # d > 0: sample with an EMA copy of the model (molecules: 0.95)
    weight_decay: float = 0.0  # on all parameters but log Z
    clip_grad_per_param: float = 0.0  # > 0: clip each parameter tensor's gradient to this L2 norm
    lr_half_life: float = 0.0  # > 0: lr × 2^(−t / half-life) (log Z: log_z_half_life)
    log_z_half_life: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0 or self.lr_log_z <= 0:
            raise ValueError(f"invalid training config {self}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if not 0 <= self.sampler_ema < 1:
            raise ValueError(f"sampler_ema must be in [0, 1), got {self.sampler_ema}")


@torch.no_grad()
def exact_l1_to_reward(model) -> float:
    """Σ_x |p_θ(x) − R(x)/Z| computed exactly by dynamic programming."""
    env = model.env
    p = terminal_log_probs(env, policy_table(env, model))
    return float((p.exp() - reward_log_distribution(env).exp()).abs().sum())


def _step_log_pf(model, traj, table=None, cond=None):
    """``[B]`` Σ_t log π(a_t | s_t) with gradients (visited transitions only)."""
    env = model.env
    b, t = traj.actions.shape
    if table is not None:
        src = traj.states[:, :-1].reshape(b * t, *traj.states.shape[2:])
        lp = table[env.index(src), traj.actions.clamp(min=0).reshape(-1)].reshape(b, t)
        return lp.masked_fill(~traj.valid, 0.0).sum(1)
    flat = traj.valid.reshape(-1).nonzero().squeeze(1)  # the visited transitions (one host read), row-major
    row = torch.div(flat, t, rounding_mode="floor")  # their trajectory
    src = traj.states[:, :-1].reshape(b * t, *traj.states.shape[2:])[flat]
    c = None if cond is None else cond[row]
    lp = model.log_probs(src) if c is None else model.log_probs(src, c)
    lp = lp.gather(1, traj.actions.reshape(-1)[flat][:, None]).squeeze(1)
    return torch.zeros(b, dtype=lp.dtype, device=lp.device).index_add(0, row, lp)


def _device(module) -> torch.device:
    return next(module.parameters()).device


def _tb_loss(model, sampler, all_states, conditioning, batch: int, epsilon: float, gen):
    """One batch's trajectory-balance loss (and its log Z, log R). ``all_states`` (enumerable envs):
    the policy is evaluated once on every state and the batch sampled from that table."""
    env = model.env
    if all_states is not None:
        table = model.log_probs(all_states)
        traj = sample_trajectories_tabular(env, table.detach(), batch, epsilon, gen)
        log_pf = _step_log_pf(model, traj, table)
        cond = None
    else:
        cond = None if conditioning is None else conditioning.sample(batch, gen)
        traj = sample_trajectories(env, sampler, batch, epsilon, gen, cond=cond)
        log_r = (
            env.log_reward(traj.terminal) if conditioning is None else conditioning.log_reward(env, traj.terminal, cond)
        )
        return _tb_loss_of(model, traj, cond, log_r)
    log_z, log_r = model.log_partition(), env.log_reward(traj.terminal).float()
    return trajectory_balance_loss(log_z, log_pf, trajectory_log_pb(env, traj).float(), log_r), log_z, log_r


def _non_finite_step(step: int, loss: float, log_r: torch.Tensor) -> None:
    """Raise the error of a training step whose loss or log-rewards are not finite (named)."""

    bad = int((~torch.isfinite(log_r.detach())).sum())
    if bad:
        raise NonFiniteError(
            f"training step {step}: the reward returned non-finite log-rewards (NaN or ±inf) for {bad} "
            f"of {len(log_r)} terminal states; fix the reward (a zero reward needs a floor, e.g. "
            "log(max(R, 1e-8)))"
        )
    raise NonFiniteError(
        f"training step {step}: the loss is {loss} (the policy or log Z diverged); lower the learning "
        "rate or clip the gradients"
    )


def _tb_loss_of(model, traj, cond, log_r):
    """The trajectory-balance loss (and log Z, log R) of drawn trajectories with their conditions
    (or None) and log-rewards, the log-probabilities re-scored by ``model`` with gradients."""
    env = model.env
    log_pf = _step_log_pf(model, traj, cond=cond)
    log_z = model.log_partition() if cond is None else model.log_partition(cond)
    log_r = log_r.float()
    return trajectory_balance_loss(log_z, log_pf, trajectory_log_pb(env, traj).float(), log_r), log_z, log_r


class _PendingBatch:
    """The trajectory workers' batch in flight, as a resumable object (``training_scaffold.Resumable``)."""

    def __init__(self, pipe):
        self.pipe = pipe

    def state_dict(self) -> dict:
        return self.pipe.pending_state()

    def load_state_dict(self, state: dict) -> None:
        self.pipe.load_pending_state(state)


def _optimizer(model, config: GFlowNetTrainConfig):
    """Adam with two groups (log Z apart, no weight decay on it) and 2^(−t / half-life) decay."""
    z_params = [p for n, p in model.named_parameters() if n.startswith("log_z")]
    z_ids = {id(p) for p in z_params}
    other = [p for p in model.parameters() if id(p) not in z_ids]
    opt = torch.optim.Adam(
        [
            {"params": other, "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": z_params, "lr": config.lr_log_z},
        ]
    )
    decay = lambda hl: (lambda t: 2.0 ** (-t / hl)) if hl > 0 else (lambda t: 1.0)  # noqa: E731
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, [decay(config.lr_half_life), decay(config.log_z_half_life)])


def _update(model, loss, opt, sched, clip_per_param: float):
    """One optimiser step (gradients averaged over ranks under ``torchrun``); with ``clip_per_param``
    > 0 each parameter tensor's gradient is clipped to that L2 norm separately (not a global norm)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(model.parameters())
    if clip_per_param > 0:
        for p in model.parameters():
            if p.grad is not None:
                torch.nn.utils.clip_grad_norm_([p], clip_per_param)
    opt.step()
    sched.step()


@keeps_global_rng
def train_gflownet(
    model,
    config: GFlowNetTrainConfig,
    progress: bool = True,
    desc: str = "GFlowNet",
    conditioning=None,
    callback=None,
    callback_every: int = 0,
    checkpoint_path=None,
    checkpoint_every: int = 100,
    trajectory_workers: int = 0,
):
    """Train ``model`` in place; returns a history dict (loss, exact L1 per eval, wall time).

    ``conditioning`` (optional): ``sample(B, generator)`` → ``[B]`` conditions and
    ``log_reward(env, terminal, cond)`` → ``[B]`` log R(x | c); the model then takes
    ``log_probs(states, cond)`` and ``log_partition(cond)``. ``callback(step, model)`` → dict,
    every ``callback_every`` steps. With ``sampler_ema`` > 0 the EMA sampler's weights are copied
    into ``model`` at the end (the EMA model is what docs/molecules.md §8 samples from).
    ``checkpoint_path``: a resume file written every ``checkpoint_every`` steps; rerunning after a
    kill continues from it and ends with the weights of an uninterrupted run
    (:class:`~sculpting.infrastructure.training_scaffold.Resumable`).
    ``trajectory_workers`` > 0: that many CPU processes draw
    each batch one step ahead (module docs; the same seed and W, the same run — resumed ones too).
    """
    env = model.env

    if (
        isinstance(trajectory_workers, bool)
        or not isinstance(trajectory_workers, int)
        or not 0 <= trajectory_workers <= MAX_WORKERS
    ):
        raise ValueError(f"trajectory_workers must be an integer in [0, {MAX_WORKERS}], got {trajectory_workers!r}")
    if trajectory_workers and is_enumerable(env):
        raise ValueError(
            "trajectory_workers are for non-enumerable environments (an enumerable one samples "
            "from its policy table, one network call per step)"
        )
    gen = seeded(rank_seed(config.seed), _device(model))
    broadcast_module(model)
    B = local_batch(config.batch_size)
    progress = progress and is_main()
    opt, sched = _optimizer(model, config)
    sampler = frozen_copy(model) if config.sampler_ema > 0 else model
    hist = {
        "step": [],
        "loss": [],
        "eval_step": [],
        "l1": [],
        "eval_time": [],
        "log_z": [],
        "mean_log_reward": [],
        "callback": [],
    }
    objects = {"model": model, "opt": opt, "sched": sched, **({"sampler": sampler} if sampler is not model else {})}
    pipe = None
    if trajectory_workers:
        pipe = TrajectoryWorkers(sampler, conditioning, trajectory_workers, B, config.epsilon, rank_seed(config.seed))
        objects["pending_batch"] = _PendingBatch(pipe)
    record = {"kind": "gflownet", **config.to_dict(), **({"trajectory_workers": trajectory_workers} if pipe else {})}
    with pipe if pipe is not None else contextlib.nullcontext():  # the workers stop with the run
        return _train(
            model,
            config,
            progress,
            desc,
            conditioning,
            callback,
            callback_every,
            checkpoint_path,
            checkpoint_every,
            env,
            gen,
            B,
            opt,
            sched,
            sampler,
            hist,
            objects,
            record,
            pipe,
        )


def _train(
    model,
    config,
    progress,
    desc,
    conditioning,
    callback,
    callback_every,
    checkpoint_path,
    checkpoint_every,
    env,
    gen,
    B,
    opt,
    sched,
    sampler,
    hist,
    objects,
    record,
    pipe,
):
    """The loop of :func:`train_gflownet` (its arguments and the objects it built)."""

    resume = Resumable(
        checkpoint_path,
        checkpoint_every,
        record,
        objects,
        gen,
        what={"model": describe(model), "conditioning": None if conditioning is None else describe(conditioning)}
        if checkpoint_path is not None
        else None,
    )
    start = resume.start(hist)
    start = config.steps + 1 if hist.get("finished") else start
    enumerable = is_enumerable(env)
    all_states = env.all_states() if enumerable else None
    t0, train_time = time.perf_counter(), hist.get("train_time_s", 0.0)
    bar = progress_bar(config.steps, desc, progress, start=start)
    if pipe is not None and start <= config.steps:
        pipe.submit(start)
    for step in bar:
        ts = time.perf_counter()
        if pipe is not None:
            traj, cond, log_r = pipe.collect()
            if step < config.steps:
                pipe.submit(step + 1)  # drawn by the workers while this step trains
            loss, log_z, log_r = _tb_loss_of(model, traj, cond, log_r)
        else:
            loss, log_z, log_r = _tb_loss(model, sampler, all_states, conditioning, B, config.epsilon, gen)
        _update(model, loss, opt, sched, config.clip_grad_per_param)
        if sampler is not model:
            ema_update(sampler, model, config.sampler_ema)
        train_time += time.perf_counter() - ts
        # one host read for the three numbers (the same floats as three reads: stacking promotes exactly)
        loss_v, log_z_v, log_r_v = torch.stack([loss.detach(), log_z.detach().mean(), log_r.detach().mean()]).tolist()
        if not math.isfinite(log_r_v) or not math.isfinite(loss_v):
            _non_finite_step(step, loss_v, log_r)
        for k, v in (("step", step), ("loss", loss_v), ("log_z", log_z_v), ("mean_log_reward", log_r_v)):
            hist[k].append(v)
        if not enumerable and step % 10 == 0:
            bar.set_postfix(loss=f"{loss_v:.3f}", logZ=f"{log_z_v:.2f}")
        if callback is not None and callback_every and (step % callback_every == 0 or step == config.steps):
            hist["callback"].append({"step": step, **callback(step, model)})
        if enumerable and config.eval_every and (step % config.eval_every == 0 or step == config.steps):
            l1 = exact_l1_to_reward(model)
            hist["eval_step"].append(step)
            hist["l1"].append(l1)
            hist["eval_time"].append(train_time)
            bar.set_postfix(loss=f"{loss_v:.3f}", l1=f"{l1:.3f}")
            if config.target_l1 is not None and l1 <= config.target_l1:
                break
        hist["train_time_s"] = train_time
        resume.save(step, hist)
    hist["finished"] = True
    hist["train_time_s"] = train_time
    resume.save(config.steps, hist, force=True)
    if sampler is not model:
        model.load_state_dict(sampler.state_dict())
    hist["wall_time_s"] = time.perf_counter() - t0
    return hist
