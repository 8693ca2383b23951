"""The package on a device, in one command: training step times, sampling throughput, molecules,
memory, and host–device synchronisations per step.

    python benchmarks/gpu.py                          # on a GPU: the full table (≤ 6 minutes)
    python benchmarks/gpu.py --device cpu --quick     # the same table on the CPU (< 3 minutes, 2 cores)

* **Training** (``python -m sculpting <command> --preset paper``, in process): ms per step
  from two run lengths, so start-up, compilation, evaluation and saving cancel:
  (t(k₂) − t(k₁)) / (k₂ − k₁). The MNIST base twice: plain, and on the fast path (``--fast auto``
  on CUDA: channels-last, bf16 autocast, CUDA graphs; on the CPU ``channels_last,bf16``).
* **Sampling**: M1 ⊗ M2 (the shipped MNIST bases and classifier), EDM, images per second at
  several batch sizes, plain and ``fast=`` (CUDA: ``auto``; CPU: ``bf16``); peak device memory.
* **Molecules**: base training also with ``--trajectory-workers`` (CPU processes drawing each batch
  one step ahead while the device trains); sampling base SEH and SEH ⊗ SA harmonic (β 32),
  molecules per second.
* **Synchronisations**: calls that make the host wait for the device (``Tensor.item``, ``bool``,
  ``int`` / ``float`` of a tensor, ``tolist``, ``nonzero``, ``cpu()``) counted per training step by a
  ``TorchFunctionMode`` — measurable on a CPU too — and, apart, the implicit ones (boolean-mask
  indexing, ``masked_select``, ``unique``, … whose output size torch reads from the data).

Prints a markdown table and writes ``--json``. Molecule rows need the molecule data
(``SCULPTING_DATA_DIR``) and RDKit; where missing they are reported as such.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

SYNC_METHODS = {
    torch.Tensor.item,
    torch.Tensor.__bool__,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.tolist,
    torch.Tensor.nonzero,
    torch.nonzero,
    torch.Tensor.cpu,
    torch.Tensor.numpy,
}


PACKAGE = str(Path(__file__).resolve().parents[1] / "sculpting")


def _bool_index(args) -> bool:
    """Whether a ``__getitem__`` / ``__setitem__`` index holds a boolean tensor (its result's size is
    the mask's count: read on the host)."""
    index = args[1] if len(args) > 1 else None
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts)


#: calls whose output size depends on tensor values: torch reads them on the host (implicitly)
IMPLICIT = {
    torch.masked_select,
    torch.Tensor.masked_select,
    torch.unique,
    torch.Tensor.unique,
    torch.repeat_interleave,
    torch.Tensor.repeat_interleave,
}


class SyncCounter(TorchFunctionMode):
    """Counts the package's own calls that read a tensor's value on the host (a device
    synchronisation when the tensor lives on a GPU): the caller of the read is in ``sculpting/``
    (torch's internals, e.g. the optimiser's CPU step counters, are not counted). ``count``: the
    explicit reads (``item``, ``bool``, ``tolist``, …); ``implicit``: the calls whose output size is
    read from the data (boolean-mask indexing, ``masked_select``, ``unique``, ``repeat_interleave``,
    one-argument ``where``)."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.implicit = 0
        self.sites: dict = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        explicit = func in SYNC_METHODS
        implicit = (
            func in IMPLICIT
            or (func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__) and _bool_index(args))
            or (func is torch.where and len(args) + len(kwargs or {}) == 1)
        )
        if explicit or implicit:
            caller = sys._getframe(1)
            name = caller.f_code.co_filename
            if str(Path(name).resolve()).startswith(PACKAGE):
                if explicit:
                    self.count += 1
                else:
                    self.implicit += 1
                site = f"{Path(name).relative_to(PACKAGE)}:{caller.f_lineno}"
                self.sites[site] = self.sites.get(site, 0) + 1
        return func(*args, **(kwargs or {}))


def _train(command: str, steps: int, device: str, extra=(), count_syncs=False):
    """Seconds (and synchronisations) of one in-process training run of ``steps`` steps."""
    from sculpting.infrastructure.cli import main

    with tempfile.TemporaryDirectory() as out:  # noqa: SIM117
        argv = [
            command,
            "--preset",
            "paper",
            "--steps",
            str(steps),
            "--device",
            device,
            "--checkpoint-every",
            str(10**6),
            "--out",
            out,
            *extra,
        ]
        counter = SyncCounter() if count_syncs else None
        import contextlib
        import io

        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), counter or contextlib.nullcontext():
            main(argv)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, ((counter.count, counter.implicit) if counter else None)


def training_rows(device: str, quick: bool) -> list[dict]:
    rows = []
    fast = _fast(device)
    for label, command, extra, lengths in (
        ("grid base", "grid-base", ["--base", "shubert"], (20, 120)),
        ("MNIST base (28×28)", "mnist-base", ["--base", "M1"], (2, 6)),
        (f"MNIST base (28×28), --fast {fast}", "mnist-base", ["--base", "M1", "--fast", fast], (2, 6)),
        ("molecule base (SEH)", "molecule-base", ["--objective", "seh"], (2, 6)),
        (
            f"molecule base (SEH), {_trajectory_workers(device)} trajectory workers",
            "molecule-base",
            ["--objective", "seh", "--trajectory-workers", str(_trajectory_workers(device))],
            (2, 6),
        ),
    ):
        k1, k2 = lengths if quick else (lengths[0] * 10, lengths[1] * 10)
        try:
            _train(command, 1, device, extra)  # warm-up: imports, data, kernels
            t1, s1 = _train(command, k1, device, extra, count_syncs=True)
            t2, s2 = _train(command, k2, device, extra, count_syncs=True)
        except Exception as e:  # noqa: BLE001 (missing data: reported, the other rows still run)
            rows.append({"what": f"{label}, paper preset", "error": f"{type(e).__name__}: {e}"[:120]})
            continue
        rows.append(
            {
                "what": f"{label}, paper preset",
                "ms_per_step": 1000 * (t2 - t1) / (k2 - k1),
                "syncs_per_step": (s2[0] - s1[0]) / (k2 - k1),
                "implicit_syncs_per_step": (s2[1] - s1[1]) / (k2 - k1),
                "steps": [k1, k2],
            }
        )
    return rows


def _trajectory_workers(device: str) -> int:
    """CPU processes drawing the molecule batches: on a GPU machine all cores but the trainer's (at
    most 8); on the CPU one (the other core trains)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores - 1)) if device.startswith("cuda") else 1


def _fast(device: str) -> str:
    """The fast path measured: ``auto`` on CUDA (channels_last, bf16, CUDA graphs); on the CPU, where
    ``auto`` is the plain path, channels_last and bf16."""
    return "auto" if device.startswith("cuda") else "channels_last,bf16"


def _memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sampling_rows(device: str, quick: bool) -> list[dict]:
    import sculpting as sc

    bases, clf = sc.load_pretrained("mnist/M1_M2")
    bases, clf = [b.to(device) for b in bases], clf.to(device)
    model = sc.compose(bases, clf, "harmonic")
    steps = 10 if quick else 50
    rows = []
    for batch in (8, 64) if quick else (64, 1024, 8192):
        for fast in ("off", "auto" if device.startswith("cuda") else "bf16"):
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            sc.sample(model, min(batch, 8), seed=0, steps=2, sampler="edm", fast=fast)  # warm-up
            t0 = time.perf_counter()
            sc.sample(model, batch, seed=0, steps=steps, sampler="edm", fast=fast)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            rows.append(
                {
                    "what": f"M1⊗M2 sampling, EDM {steps} steps, batch {batch}, fast {fast}",
                    "images_per_s": batch / dt,
                    "peak_memory_mb": _memory_mb(device),
                }
            )
    return rows


def molecule_rows(device: str, quick: bool) -> list[dict]:
    import sculpting as sc

    n = 8 if quick else 32
    try:
        bases, clf = sc.load_pretrained("molecules/seh_sa")
    except Exception as e:  # noqa: BLE001
        return [{"what": "molecules", "error": f"{type(e).__name__}: {e}"[:120]}]
    bases, clf = [b.to(device) for b in bases], clf.to(device)
    rows = []
    for label, model in (
        ("molecules, base SEH (β 32)", bases[0].at_beta(32.0)),
        ("molecules, SEH⊗SA harmonic (β 32)", sc.compose(bases, clf, "harmonic", beta=32.0)),
    ):
        sc.sample(model, 2, seed=0)  # warm-up
        t0 = time.perf_counter()
        sc.sample(model, n, seed=1)
        rows.append({"what": f"{label}, {n} molecules", "molecules_per_s": n / (time.perf_counter() - t0)})
    return rows


def table(rows: list[dict]) -> str:
    cols = [
        "what",
        "ms_per_step",
        "syncs_per_step",
        "implicit_syncs_per_step",
        "images_per_s",
        "molecules_per_s",
        "peak_memory_mb",
        "error",
    ]
    used = [c for c in cols if any(c in r for r in rows)]
    fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(used) + " |", "|" + "---|" * len(used)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in used) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="short runs and small batches (a CPU smoke of the table)")
    p.add_argument(
        "--sections",
        nargs="+",
        default=["training", "sampling", "molecules"],
        choices=["training", "sampling", "molecules"],
    )
    p.add_argument("--json", default=None, help="write the rows here (default: benchmarks/gpu_<device>.json)")
    a = p.parse_args(argv)
    try:
        dev = torch.device(a.device)
    except RuntimeError as e:
        p.error(f"--device {a.device!r} is not a torch device ({e}); use cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: this machine has no CUDA device; use --device cpu")
    torch.set_num_threads(1 if a.device == "cpu" else torch.get_num_threads())
    t0 = time.perf_counter()
    rows = []
    for section, fn in (("training", training_rows), ("sampling", sampling_rows), ("molecules", molecule_rows)):
        if section in a.sections:
            rows += fn(a.device, a.quick)
    info = {
        "device": a.device,
        "name": torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "quick": a.quick,
        "wall_s": time.perf_counter() - t0,
        "rows": rows,
    }
    out = Path(a.json or f"benchmarks/gpu_{a.device.split(':')[0]}{'_quick' if a.quick else ''}.json")
    out.write_text(json.dumps(info, indent=2))
    print(f"device {info['name']}, torch {info['torch']}, {info['wall_s']:.0f} s" + (" (quick)" if a.quick else ""))
    print(table(rows))
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
