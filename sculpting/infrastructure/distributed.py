"""Data-parallel training with ``torch.distributed`` (launched by ``torchrun``).

Every trainer of the package runs unchanged on one process; under ``torchrun --nproc_per_node N``
(``WORLD_SIZE`` > 1) each rank draws ``batch / N`` of every step's trajectories or images from its own
sampling stream (seed + rank·104729, reproducible), computes the loss on them, and the gradients are
averaged over ranks with ``all_reduce`` before the optimiser step — the gradient of the global batch
mean, exactly what data-parallel ``DistributedDataParallel`` computes (our models' losses go through
methods such as ``log_probs`` rather than ``forward``, so the all-reduce is explicit). Parameters are
broadcast from rank 0 at the start. Only rank 0 shows progress and writes models; every rank keeps
its own resume file (its RNG streams differ). Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "world",
    "on_main",
    "init_from_env",
    "shutdown",
    "rank_seed",
    "local_batch",
    "average_gradients",
    "broadcast_module",
    "is_main",
]

RANK_STRIDE = 104729  # a prime: rank streams never coincide with the seeds of neighbouring runs


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def on_main(fn):
    """``fn`` on rank 0 only, a no-op elsewhere (under torchrun every rank trains; one writes)."""
    return fn if is_main() else (lambda *a, **k: None)


def init_from_env(device: torch.device | str = "cpu") -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment (no-op for one process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        device = torch.device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return world()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int) -> int:
    """This rank's sampling seed (rank 0 keeps ``seed``: one process is unchanged)."""
    return int(seed) + RANK_STRIDE * world()[0]


def local_batch(global_batch: int) -> int:
    """This rank's share of a global batch (which must divide evenly)."""
    _, size = world()
    if global_batch % size:
        raise ValueError(f"batch {global_batch} does not split evenly over {size} ranks")
    return global_batch // size


def average_gradients(params) -> None:
    """All-reduce (mean) the gradients of ``params`` over ranks (no-op for one process)."""
    _, size = world()
    if size == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(size)


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (no-op for one process)."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)
