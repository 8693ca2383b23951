"""Sampling GFlowNet trajectories in several worker processes, one CPU core each.

Guided sampling on a CPU runs many small network calls (a few hundred rows each). PyTorch's
intra-op threads barely speed those up (on a 2-core machine, 2 threads give ≈ 1.1–1.3× over 1),
while independent trajectories parallelise perfectly. :func:`sample_terminal_parallel` forks
``workers`` processes; worker k sets ``threads_per_worker`` torch threads, draws its share of
the trajectories with its own generator seeded ``seed + k · RANK_STRIDE`` (worker 0 uses ``seed``
itself, so ``workers=1`` is the single-process result) and sends back the terminal states; they
are concatenated in worker order: same seed and workers, same result.

The models reach the workers by ``fork`` (no pickling, copy-on-write memory), so this needs a
platform with the ``fork`` start method (Linux) and models on the CPU.
"""
from __future__ import annotations

import multiprocessing as mp

import torch

from sculpting.distributed import RANK_STRIDE

__all__ = ["sample_terminal_parallel", "split_counts"]

_JOB = None  # (model, sampler name, per-worker counts, seed, batch size, threads): read by the forked workers


def split_counts(n: int, workers: int) -> list[int]:
    """``n`` items over ``workers`` (the first ones get the remainder): [3, 3, 2] for (8, 3)."""
    return [n // workers + (k < n % workers) for k in range(workers)]


def _draw(model, sampler: str, n: int, seed: int, batch_size: int) -> torch.Tensor:
    from sculpting.gflownet.rejection import action_sampler_for
    from sculpting.gflownet.sampler import sample_trajectories
    gen = torch.Generator().manual_seed(seed)
    act = action_sampler_for(model, sampler)
    return torch.cat([sample_trajectories(model.env, model, min(batch_size, n - i), generator=gen,
                                          action_sampler=act).terminal for i in range(0, n, batch_size)])


def _worker(k: int, queue):
    model, sampler, counts, seed, batch_size, threads = _JOB
    try:
        torch.set_num_threads(threads)
        x = _draw(model, sampler, counts[k], seed + k * RANK_STRIDE, batch_size)
        queue.put((k, x.numpy(), None))
    except BaseException as e:  # the parent re-raises
        queue.put((k, None, f"{type(e).__name__}: {e}"))


def sample_terminal_parallel(model, n: int, seed: int, workers: int = 2, sampler: str = "auto",
                             batch_size: int | None = None, threads_per_worker: int = 1) -> torch.Tensor:
    """``[n, *S]`` terminal states of ``model`` (a base or guided policy) drawn by ``workers``
    forked processes (:mod:`module docs <sculpting.gflownet.parallel>`); ``batch_size``: trajectories
    per sampling call within a worker (default: its whole share)."""
    global _JOB
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not (isinstance(threads_per_worker, int) and threads_per_worker >= 1):
        raise ValueError(f"threads_per_worker must be a positive integer, got {threads_per_worker!r}")
    counts = split_counts(n, workers)
    bs = batch_size or max(counts)
    if workers == 1:
        return _draw(model, sampler, n, seed, bs)
    if "fork" not in mp.get_all_start_methods():
        raise RuntimeError("workers > 1 needs the 'fork' start method (Linux); use workers=1 here")
    dev = getattr(model.env, "device", torch.device("cpu"))
    if torch.device(dev).type != "cpu":
        raise ValueError(f"workers > 1 samples CPU models only (this one is on {dev}); use workers=1")
    ctx = mp.get_context("fork")
    queue = ctx.SimpleQueue()
    _JOB = (model, sampler, counts, int(seed), bs, threads_per_worker)
    try:
        procs = [ctx.Process(target=_worker, args=(k, queue), daemon=True) for k in range(workers) if counts[k]]
        for p in procs:
            p.start()
        parts, errors = {}, []
        for _ in procs:
            k, x, err = queue.get()
            if err is not None:
                errors.append(f"worker {k}: {err}")
            else:
                parts[k] = torch.from_numpy(x)
        for p in procs:
            p.join()
    finally:
        _JOB = None
    if errors:
        raise RuntimeError("parallel sampling failed: " + "; ".join(errors))
    return torch.cat([parts[k] for k in sorted(parts)])
