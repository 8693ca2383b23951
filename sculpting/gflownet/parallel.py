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

import torch

from sculpting.distributed import RANK_STRIDE
from sculpting.forked import fork_map

__all__ = ["sample_terminal_parallel", "split_counts"]


def split_counts(n: int, workers: int) -> list[int]:
    """``n`` items over ``workers`` (the first ones get the remainder): [3, 3, 2] for (8, 3)."""
    return [n // workers + (k < n % workers) for k in range(workers)]


def _draw(model, sampler: str, n: int, seed: int, batch_size: int, options: dict) -> torch.Tensor:
    from sculpting.gflownet.samplers import draw_terminal
    gen = torch.Generator().manual_seed(seed)
    return draw_terminal(model, n, gen, sampler, batch_size, **options)


def sample_terminal_parallel(model, n: int, seed: int, workers: int = 2, sampler: str = "auto",
                             batch_size: int | None = None, threads_per_worker: int = 1,
                             options: dict | None = None) -> torch.Tensor:
    """``[n, *S]`` terminal states of ``model`` (a base or guided policy) drawn by ``workers``
    forked processes (:mod:`module docs <sculpting.gflownet.parallel>`); ``batch_size``: trajectories
    per sampling call within a worker (default: its whole share); ``options``: the sampler's
    options (:mod:`sculpting.gflownet.samplers`), checked before any process starts."""
    from sculpting.gflownet.samplers import check_options, gflownet_sampler
    options = dict(options or {})
    check_options(gflownet_sampler(sampler), options)
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    counts = split_counts(n, workers)
    bs = batch_size or max(counts)
    if workers == 1:
        return _draw(model, sampler, n, seed, bs, options)
    dev = getattr(model.env, "device", torch.device("cpu"))
    if torch.device(dev).type != "cpu":
        raise ValueError(f"workers > 1 samples CPU models only (this one is on {dev}); use workers=1")
    jobs = [(k, c) for k, c in enumerate(counts) if c]
    parts = fork_map(lambda job: _draw(model, sampler, job[1], int(seed) + job[0] * RANK_STRIDE, bs, options), jobs,
                     workers, threads_per_worker)
    return torch.cat(parts)
