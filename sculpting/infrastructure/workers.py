"""Run independent jobs in worker processes, one CPU core each, that die with their parent.

Small networks on a CPU gain little from PyTorch's intra-op threads (on a 2-core machine two
threads run a guided-sampling step or a 16×16 U-Net training step only ≈ 1.1–1.3× faster than
one), while independent jobs — the trajectories of a sample, the base models of a domain —
parallelise perfectly. :func:`fork_map` runs ``fn(item)`` for every item in at most ``workers``
processes of ``threads`` torch threads each and returns the results in item order.

**Start method** (:func:`start_method`): ``fork`` where it is safe — Linux, and no CUDA device
visible — so the children share the parent's objects copy-on-write and only indices and results
are pickled. Where CUDA is visible, a forked child cannot use autograd once the parent has
(torch refuses: "Unable to handle autograd's threading in combination with fork-based
multiprocessing"), so the jobs go to ``forkserver`` children (``spawn`` where there is no
forkserver): the job (``fn`` and its item) is serialised with ``cloudpickle``, which carries
closures and the models they hold. ``$SCULPTING_START_METHOD`` (``fork`` / ``forkserver`` /
``spawn``) overrides the choice. Every method gives the same results: a job's randomness comes
from its own seed, never from the process.

**Parent death.** A worker watches its parent (Linux: ``PR_SET_PDEATHSIG``; everywhere: a thread
polling the parent's PID) and exits at once when the parent dies — even ``kill -9`` — instead of
blocking on a full result pipe. An exception in a job is raised in the parent.

**Devices.** ``fork_map(..., devices=[...])`` pins worker slot k to ``devices[k]`` (a CUDA device is
made the worker's current one, so ``"cuda"`` means it); a job asks :func:`worker_device` where to
compute. :func:`default_workers` follows where the models live: one process per GPU for CUDA
models (:func:`worker_devices` gives ``cuda:0 … cuda:{n−1}``), one per usable core on the CPU;
``workers="auto"`` (:func:`resolve_workers`) asks it. Results come back as CPU tensors.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import threading
import traceback
from queue import Empty

import torch

from sculpting.infrastructure.bounds import MAX_WORKERS

__all__ = [
    "fork_map",
    "can_fork",
    "start_method",
    "START_METHODS",
    "default_workers",
    "resolve_workers",
    "worker_devices",
    "worker_device",
]

START_METHODS = ("fork", "forkserver", "spawn")
_JOB = None  # (fn, items, threads): read by forked children
_DEVICE = None  # the device this worker is pinned to (None: not a pinned worker)


def default_workers(device=None) -> int:
    """How many worker processes suit models on ``device``: CUDA → one per visible GPU
    (``torch.cuda.device_count()``, at least 1); otherwise one per core this process may use
    (``os.sched_getaffinity``, else ``os.cpu_count()``). At most :data:`sculpting.infrastructure.bounds.MAX_WORKERS`;
    1 where worker processes are unavailable."""

    if not can_fork():
        return 1
    if device is not None and torch.device(device).type == "cuda":
        n = torch.cuda.device_count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            n = os.cpu_count() or 1
    return max(1, min(n, MAX_WORKERS))


def resolve_workers(workers, device=None) -> int:
    """``workers`` checked (an int in [1, MAX_WORKERS]), or ``"auto"`` → :func:`default_workers`."""

    if workers == "auto":
        return default_workers(device)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f'workers must be "auto" or an integer in [1, {MAX_WORKERS}], got {workers!r}')
    return workers


def worker_devices(device, workers: int) -> list:
    """The device of each of ``workers`` worker slots for models on ``device``: CUDA → the visible
    GPUs in turn (``cuda:k mod count``); any other device → that device for every slot."""
    device = torch.device(device)
    if device.type != "cuda":
        return [device] * workers
    count = max(1, torch.cuda.device_count())
    return [torch.device("cuda", k % count) for k in range(workers)]


def worker_device(default=None):
    """Inside a job: the device its worker is pinned to (``fork_map(devices=)``); in this process
    (``workers=1``, or no devices given): ``default``."""
    return _DEVICE if _DEVICE is not None else default


def can_fork() -> bool:
    """Whether worker processes are available here (any start method; the name is historical)."""
    return bool(set(START_METHODS) & set(mp.get_all_start_methods()))


def start_method() -> str:
    """The start method of the workers (module docs): ``$SCULPTING_START_METHOD``, else ``fork``
    without CUDA, else ``forkserver`` (or ``spawn``)."""
    available = mp.get_all_start_methods()
    wanted = os.environ.get("SCULPTING_START_METHOD", "").strip()
    if wanted:
        if wanted not in START_METHODS or wanted not in available:
            raise ValueError(
                f"$SCULPTING_START_METHOD={wanted!r}: choose one of {[m for m in START_METHODS if m in available]}"
            )
        return wanted
    if "fork" in available and not torch.cuda.is_available():  # (is_available does not initialise CUDA)
        return "fork"
    return "forkserver" if "forkserver" in available else "spawn"


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as ``parent`` is gone: the kernel's parent-death signal (Linux, fork
    children) and a thread that polls the parent's PID every 0.5 s. ``$SCULPTING_PARENT_WATCH``
    (comma-separated ``pdeathsig``, ``poll``; default both) keeps only some, so that the tests can
    check each mechanism alone (and that without either a worker outlives its parent)."""
    watch = os.environ.get("SCULPTING_PARENT_WATCH", "pdeathsig,poll").split(",")
    try:  # Linux: the kernel sends SIGKILL when the parent dies (fork children only: their parent is ours)
        if "pdeathsig" in watch and os.getppid() == parent:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before the call
                os._exit(1)
    except (OSError, AttributeError):
        pass

    def poll():
        import time

        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(0.5)

    if "poll" in watch:
        threading.Thread(target=poll, daemon=True).start()


def _run(fn, item, threads, i, queue, device=None):
    global _DEVICE
    try:
        torch.set_num_threads(threads)
        if device is not None:
            _DEVICE = torch.device(device)
            if _DEVICE.type == "cuda":
                torch.cuda.set_device(_DEVICE)
        queue.put((i, pickle.dumps(fn(item)), None))  # plain pickle: the data itself, not a shared handle
    except BaseException as e:  # reported to the parent
        queue.put((i, None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"))


def _forked_child(i: int, queue, parent: int, device=None):
    _watch_parent(parent)
    fn, items, threads = _JOB
    _run(fn, items[i], threads, i, queue, device)


def _spawned_child(i: int, payload: bytes, queue, parent: int, device=None):
    _watch_parent(parent)
    import cloudpickle

    try:
        fn, item, threads = cloudpickle.loads(payload)
    except BaseException as e:  # noqa: BLE001
        queue.put((i, None, f"the job could not be unpickled: {type(e).__name__}: {e}"))
        return
    _run(fn, item, threads, i, queue, device)


class _MainHidden:
    """While starting a forkserver / spawn worker, hide ``__main__`` from multiprocessing: the job is
    self-contained (cloudpickle carries functions of ``__main__`` by value), so the worker need not
    import the caller's script — which would run it again where it has no ``__main__`` guard."""

    def __enter__(self):
        import sys

        self.main = sys.modules.get("__main__")
        self.saved = {k: getattr(self.main, k) for k in ("__spec__", "__file__") if hasattr(self.main, k)}
        for k in self.saved:
            if k == "__spec__":
                self.main.__spec__ = None
            else:
                delattr(self.main, k)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            setattr(self.main, k, v)


def _receive(i, res, err, running, slots, free, results, errors) -> None:
    """Book a worker's report: its result (or error) and its slot freed."""
    proc = running.pop(i, None)
    if proc is not None:
        proc.join()
        free.append(slots[i])
    if err is not None:
        errors.append(f"job {i}: {err}")
    else:
        results[i] = pickle.loads(res)


def _drain(queue, running, slots, free, results, errors, wait_s: float = 1.0) -> None:
    """Read every report still in ``queue`` (waiting up to ``wait_s`` for the first)."""
    while True:
        try:
            i, res, err = queue.get(timeout=wait_s)
        except Empty:
            return
        _receive(i, res, err, running, slots, free, results, errors)
        wait_s = 0.05


def fork_map(fn, items, workers=2, threads: int = 1, devices=None) -> list:
    """``[fn(item) for item in items]``, each call in a worker process (at most ``workers`` at a
    time, ``threads`` torch threads each; start method: :func:`start_method`). ``workers=1`` runs
    them in this process; ``"auto"``: :func:`default_workers` of ``devices[0]`` (else the CPU).
    ``devices``: one device per worker slot (at least ``workers``); a job runs pinned to the
    device of a free slot (:func:`worker_device`), so that no two running jobs share one."""
    global _JOB
    workers = resolve_workers(workers, devices[0] if devices else None)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    if devices is not None:
        devices = [torch.device(d) for d in devices]
        if len(devices) < workers:
            raise ValueError(f"devices: one per worker slot, got {len(devices)} for {workers} workers")
    items = list(items)
    if workers == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    if not can_fork():
        raise RuntimeError("workers > 1 needs worker processes, which this platform lacks; use workers=1")
    method = start_method()
    ctx = mp.get_context(method)
    queue = ctx.Queue()
    parent = os.getpid()
    if method == "fork":
        _JOB = (fn, items, threads)
        make = lambda i, d: ctx.Process(target=_forked_child, args=(i, queue, parent, d), daemon=True)  # noqa: E731
    else:
        import cloudpickle

        try:
            payloads = [cloudpickle.dumps((fn, x, threads)) for x in items]
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(
                f"the jobs cannot be sent to {method} workers ({type(e).__name__}: {e}); use workers=1"
            ) from e
        make = lambda i, d: ctx.Process(
            target=_spawned_child,
            args=(i, payloads[i], queue, parent, d),  # noqa: E731
            daemon=True,
        )
    results, errors, running, slots = {}, [], {}, {}
    free = list(range(workers))
    try:
        todo = list(range(len(items)))
        while todo or running:
            while todo and len(running) < workers:
                i = todo.pop(0)
                slots[i] = min(free)  # the lowest free slot: the same pinning on every run
                free.remove(slots[i])
                proc = make(i, devices[slots[i]] if devices is not None else None)
                if method == "fork":
                    proc.start()
                else:
                    with _MainHidden():
                        proc.start()
                running[i] = proc
            try:
                i, res, err = queue.get(timeout=2.0)
            except Empty:  # a child that exited without reporting (killed, crashed, or exited early)
                ended = [j for j, p in running.items() if p.exitcode is not None]
                if ended:  # its report may still be in the pipe: read what is there before calling it lost
                    _drain(queue, running, slots, free, results, errors)
                for j in [j for j in ended if j in running]:
                    code = running.pop(j).exitcode
                    why = "died" if code != 0 else "exited"
                    errors.append(
                        f"job {j}: the worker process {why} (exit code {code}) without returning a "
                        "result (did the job call os._exit or sys.exit, or was it killed?)"
                    )
                    free.append(slots[j])
                continue
            _receive(i, res, err, running, slots, free, results, errors)
    finally:
        for p in running.values():
            p.terminate()
        _JOB = None
    if errors:
        raise RuntimeError(f"worker jobs ({method}) failed:\n" + "\n".join(errors))
    return [results[i] for i in range(len(items))]
