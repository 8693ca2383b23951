"""Sampling GFlowNet trajectories in several worker processes, one CPU core each.

Guided sampling on a CPU runs many small network calls (a few hundred rows each). PyTorch's
intra-op threads barely speed those up (on a 2-core machine, 2 threads give ≈ 1.1–1.3× over 1),
while independent trajectories parallelise perfectly. :func:`sample_terminal_parallel` forks
``workers`` processes; worker k sets ``threads_per_worker`` torch threads, draws its share of
the trajectories with its own generator seeded ``seed + k · RANK_STRIDE`` (worker 0 uses ``seed``
itself, so ``workers=1`` is the single-process result) and sends back the terminal states; they
are concatenated in worker order: same seed and workers, same result.

The models reach the workers by ``fork`` on CPU-only machines (no pickling, copy-on-write memory),
else serialised (:mod:`sculpting.infrastructure.workers`). CUDA models: worker k computes on GPU ``k mod
device_count`` (one process per GPU is :func:`sculpting.infrastructure.workers.default_workers`), with a generator on
that GPU; the terminal states come back through the host and are concatenated on the model's device.
"""

from __future__ import annotations

import torch

from sculpting.infrastructure.distributed import RANK_STRIDE
from sculpting.gflownet.samplers import draw_terminal, gflownet_sampler
from sculpting.infrastructure.runtime import device_of
from sculpting.infrastructure.workers import fork_map, resolve_workers, worker_device, worker_devices

__all__ = ["sample_terminal_parallel", "split_counts"]


def split_counts(n: int, workers: int) -> list[int]:
    """``n`` items over ``workers`` (the first ones get the remainder): [3, 3, 2] for (8, 3)."""
    return [n // workers + (k < n % workers) for k in range(workers)]


def _draw(model, sampler, n: int, seed: int, batch_size: int, options: dict) -> torch.Tensor:
    """``[n, *S]`` terminal states drawn with a generator seeded ``seed`` on the model's device (the
    worker's device, :func:`sculpting.infrastructure.workers.worker_device`, where it is pinned to another)."""

    here = device_of(model)
    dev = torch.device(worker_device(here))
    if dev != here:
        model = model.to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    return draw_terminal(model, n, gen, sampler, batch_size, **options)


def sample_terminal_parallel(
    model,
    n: int,
    seed: int,
    workers: int = 2,
    sampler="auto",
    batch_size: int | None = None,
    threads_per_worker: int = 1,
    options: dict | None = None,
) -> torch.Tensor:
    """``[n, *S]`` terminal states of ``model`` (a base or guided policy) drawn by ``workers``
    forked processes (:mod:`module docs <sculpting.gflownet.parallel>`); ``batch_size``: trajectories
    per sampling call within a worker (default: its whole share); ``options``: the sampler's
    options (:mod:`sculpting.gflownet.samplers`), checked before any process starts."""

    sampler, options = gflownet_sampler(sampler, **dict(options or {})), {}  # checked here, carried by the instance

    dev = device_of(model)
    workers = resolve_workers(workers, dev)
    counts = split_counts(n, workers)
    bs = batch_size or max(counts)
    if workers == 1:
        return _draw(model, sampler, n, seed, bs, options)
    jobs = [(k, c) for k, c in enumerate(counts) if c]
    parts = fork_map(
        lambda job: _draw(model, sampler, job[1], int(seed) + job[0] * RANK_STRIDE, bs, options).cpu(),
        jobs,
        workers,
        threads_per_worker,
        devices=worker_devices(dev, workers),
    )
    return torch.cat(parts).to(dev)
