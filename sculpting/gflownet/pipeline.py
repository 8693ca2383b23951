"""Training batches drawn by CPU worker processes while the trainer's device trains.

On a GPU a molecule GFlowNet's training step is dominated by drawing its trajectories: a dozen
sequential policy calls on small graph batches (each a chain of short kernels and host reads)
plus RDKit rewards on the host, while the loss — one batched forward and backward over every
transition — is what the GPU is good at. :class:`TrajectoryWorkers` moves the drawing to ``W``
persistent CPU processes of one torch thread each, one step ahead of the trainer:

    step k:  workers draw batch k+1 with the sampler's weights before update k (a CPU copy in
             shared memory)  ‖  the device computes the trajectory-balance loss of batch k and
             updates the weights.

So each batch is drawn by the sampler one update older than in-process training (off-policy by
one step; trajectory balance holds for any full-support sampler, and the ε-exploration and the
sampler EMA already make it off-policy). Worker j draws its share ``split_counts(B, W)[j]`` of
batch k with a generator seeded :func:`batch_seed` ``(seed, k, j)``: conditions ``c ~
conditioning.sample``, trajectories, log R(x | c) — so a run depends on its seed and ``W`` only,
never on timing, and :meth:`TrajectoryWorkers.pending_state` lets a resumed run continue with
the batch an uninterrupted run would have used.

Workers start with :func:`sculpting.infrastructure.workers.start_method` (``forkserver`` where CUDA is visible),
exit when the parent dies and report their exceptions to the parent.
"""

from __future__ import annotations

import os
import traceback

import torch

from sculpting.infrastructure.bounds import MAX_WORKERS
from sculpting.gflownet.parallel import split_counts
from sculpting.gflownet.rollout import Trajectories, sample_trajectories
from sculpting.infrastructure.runtime import device_of
from sculpting.infrastructure.workers import _MainHidden, _watch_parent, can_fork, start_method

__all__ = ["TrajectoryWorkers", "batch_seed", "draw_share"]


def batch_seed(seed: int, step: int, worker: int) -> int:
    """The seed of worker ``worker``'s share of batch ``step`` (distinct for distinct triples of
    seeds < 2^31, steps < 2^20 and workers < 2^6). Where that packing would not fit a generator's
    seed (< 2^63: seeds from 2^37 on), the seed is a hash of the triple instead (every seed the
    trainer accepts works with workers as without)."""
    packed = (int(seed) * (1 << 20) + int(step)) * 64 + int(worker)
    if packed < 1 << 63:
        return packed
    import hashlib

    digest = hashlib.sha256(f"{int(seed)},{int(step)},{int(worker)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@torch.no_grad()
def draw_share(env, sampler, conditioning, n: int, epsilon: float, seed: int) -> dict:
    """One worker's share: ``n`` trajectories of ``sampler`` (ε-exploration) with conditions drawn
    by ``conditioning`` (or none) and their log-rewards, from a CPU generator seeded ``seed``.
    Returns {"states", "actions", "lengths", "cond" (or None), "log_r"} (CPU tensors)."""
    gen = torch.Generator().manual_seed(seed)
    cond = None if conditioning is None else conditioning.sample(n, gen)
    traj = sample_trajectories(env, sampler, n, epsilon, gen, cond=cond)
    if conditioning is None:
        log_r = env.log_reward(traj.terminal)
    else:
        log_r = conditioning.log_reward(env, traj.terminal, cond)
    return {"states": traj.states, "actions": traj.actions, "lengths": traj.lengths, "cond": cond, "log_r": log_r}


def _worker(conn, payload: bytes, shared, parent: int) -> None:
    _watch_parent(parent)
    torch.set_num_threads(1)
    try:
        import cloudpickle

        conditioning, epsilon = cloudpickle.loads(payload)
        sampler = shared  # the parent's CPU copy, in shared memory: it writes, between batches
        env = sampler.env
    except BaseException as e:  # noqa: BLE001
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        n, seed = msg
        try:
            conn.send(("ok", draw_share(env, sampler, conditioning, n, epsilon, seed)))
        except BaseException as e:  # noqa: BLE001
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"))


class TrajectoryWorkers:
    """``workers`` CPU processes drawing training batches of ``batch`` trajectories of ``sampler``
    (module docs). Use as a context manager (or call :meth:`close`)::

        with TrajectoryWorkers(sampler, conditioning, 4, batch=64, epsilon=0.05, seed=0) as pipe:
            pipe.submit(1)                    # batch 1 with the current weights
            for step in range(1, steps + 1):
                batch = pipe.collect()        # batch ``step``
                pipe.submit(step + 1)         # drawn while this step trains
                ...train on batch, update the weights...
    """

    def __init__(self, sampler, conditioning, workers: int, batch: int, epsilon: float, seed: int):
        import cloudpickle

        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"trajectory workers must be an integer in [1, {MAX_WORKERS}], got {workers!r}")
        if workers > batch:
            raise ValueError(f"{workers} trajectory workers for a batch of {batch}: use at most {batch}")
        if not can_fork():
            raise RuntimeError("trajectory workers need worker processes, which this platform lacks")
        self.sampler, self.seed, self.batch = sampler, int(seed), batch
        self.counts = split_counts(batch, workers)
        # the CPU copy the workers draw with (its environment too): shared memory, written by
        # refresh() between batches; torch.multiprocessing hands its storages to the workers
        import copy

        self.shared = copy.deepcopy(sampler).to("cpu").requires_grad_(False)
        self.shared.share_memory()
        import torch.multiprocessing as tmp

        ctx = tmp.get_context(start_method())
        payload = cloudpickle.dumps((conditioning, float(epsilon)))
        self.conns, self.procs, self.waiting = [], [], False
        try:
            for _ in range(workers):
                here, there = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(there, payload, self.shared, os.getpid()), daemon=True)
                with _MainHidden():  # the workers need not import the caller's script
                    proc.start()
                there.close()
                self.conns.append(here)
                self.procs.append(proc)
        except BaseException:
            self.close()
            raise
        self._pending_loaded = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the sampler's current weights into the workers' shared CPU copy (workers idle)."""
        for (_, dst), (_, src) in zip(
            self.shared.state_dict(keep_vars=True).items(), self.sampler.state_dict(keep_vars=True).items()
        ):
            dst.copy_(src)

    def submit(self, step: int) -> None:
        """Start drawing batch ``step`` with the sampler's current weights."""
        if self.waiting:
            raise RuntimeError("collect() the batch in flight before submitting another")
        if self._pending_loaded is not None and self._pending_loaded[0] == step:
            self.waiting = True  # a resumed run: the batch an uninterrupted run drew is already here
            return
        self.refresh()
        for j, (conn, n) in enumerate(zip(self.conns, self.counts)):
            conn.send((n, batch_seed(self.seed, step, j)))
        self.step, self.waiting = step, True

    def collect(self) -> tuple[Trajectories, torch.Tensor | None, torch.Tensor]:
        """(trajectories, conditions or None, log-rewards) of the batch in flight, on the sampler's
        device, concatenated in worker order."""
        if not self.waiting:
            raise RuntimeError("no batch in flight: submit() first")
        if self._pending_loaded is not None:
            parts, self._pending_loaded = self._pending_loaded[1], None
        else:
            parts = self._receive()
        self.waiting = False

        dev = device_of(self.sampler)
        cat = lambda k: torch.cat([p[k] for p in parts]).to(dev)  # noqa: E731
        traj = Trajectories(cat("states"), cat("actions"), cat("lengths"))
        return traj, (None if parts[0]["cond"] is None else cat("cond")), cat("log_r")

    def _receive(self) -> list:
        parts, errors = [], []
        for j, (conn, proc) in enumerate(zip(self.conns, self.procs)):
            try:
                status, value = conn.recv()
            except EOFError:
                status, value = "error", f"the worker process died (exit code {proc.exitcode})"
            if status == "ok":
                parts.append(value)
            else:
                errors.append(f"trajectory worker {j}: {value}")
        if errors:
            self.close()
            raise RuntimeError("\n".join(errors))
        return parts

    def pending_state(self) -> dict:
        """The batch in flight as tensors (waits for it): stored in a resume file, so that a resumed
        run trains on the batch an uninterrupted run would have. Empty when none is in flight."""
        if not self.waiting:
            return {}
        if self._pending_loaded is None:
            self._pending_loaded = (self.step, self._receive())
        step, parts = self._pending_loaded
        out = {"step": torch.tensor(step, device="cpu")}
        for j, p in enumerate(parts):
            for k, v in p.items():
                if v is not None:
                    out[f"{j}.{k}"] = v
        return out

    def load_pending_state(self, state: dict) -> None:
        """Hold a batch saved by :meth:`pending_state` for the next ``submit`` of its step."""
        if not state:
            return
        parts = []
        for j in range(len(self.counts)):
            parts.append({k: state.get(f"{j}.{k}") for k in ("states", "actions", "lengths", "cond", "log_r")})
        self._pending_loaded = (int(state["step"]), parts)
        self.step = int(state["step"])

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        for conn in self.conns:
            conn.close()
        self.conns, self.procs = [], []
