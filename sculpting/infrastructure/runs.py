"""Output folders of training runs: one writer at a time, bound to one invocation.

:class:`RunFolder` is what ``python -m sculpting`` holds for the whole run:

* the folder must be writable and have free space, checked before any training;
* a lock (``fcntl.flock`` on ``OUT/.lock``) held for the whole run: a second run into a held
  folder stops at once, naming the holder's PID and command. The operating system drops the lock
  of a killed process, so a stale lock is taken over and the killed run resumes;
* ``OUT/run.json`` records the invocation (command, arguments, preset, resolved config, world
  size, package version). Another invocation on the folder is refused, naming what differs and
  the ways out (``--restart``, another ``--out``). The exact command of a finished run is a no-op
  that returns its summary, once the outputs the summary lists (with their SHA-256) are verified;
  a missing or changed output is rewritten from the resume file (the run resumes at its end) or,
  without one, refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from sculpting.infrastructure.checkpoints import atomic_write
from sculpting.infrastructure.fingerprint import diff_fields

__all__ = ["RunFolder", "RunFolderError", "MIN_FREE_BYTES", "output_checksums", "verify_outputs"]

#: free space an output folder needs before training starts
MIN_FREE_BYTES = 64 * 2**20


_NOT_OUTPUTS = ("run.json", "summary.json", ".lock")


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def output_checksums(out) -> dict:
    """``{relative path: SHA-256}`` of what a finished run wrote (not its record, summary, lock,
    resume files or hidden temporaries)."""
    out = Path(out)
    return {
        str(p.relative_to(out)): _sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in _NOT_OUTPUTS and not p.name.startswith(".") and not p.name.startswith("resume")
    }


def verify_outputs(out, recorded) -> list[str]:
    """The recorded outputs that are missing or changed (``recorded``: :func:`output_checksums`;
    a summary without the record is checked for ``model.pt`` only)."""
    out = Path(out)
    if not isinstance(recorded, dict):
        return [] if (out / "model.pt").is_file() else ["model.pt (missing)"]
    bad = []
    for name, digest in sorted(recorded.items()):
        p = out / name
        if not p.is_file():
            bad.append(f"{name} (missing)")
        elif _sha256(p) != digest:
            bad.append(f"{name} (changed)")
    return bad


class RunFolderError(RuntimeError):
    """An output folder that cannot take this run (busy, another run's, not writable, full)."""


class RunFolder:
    """Context manager: ``with RunFolder(out, invocation, restart) as run: ...``; ``run.finished``
    holds the summary of a finished identical run (then skip the work)."""

    def __init__(self, out, invocation: dict, restart: bool = False, min_free_bytes: int = MIN_FREE_BYTES):
        self.out, self.restart, self.min_free = Path(out), bool(restart), int(min_free_bytes)
        self.invocation = json.loads(json.dumps(invocation, sort_keys=True, default=str))
        self.finished: dict | None = None
        self._fd = None

    # ------------------------------------------------------------------ checks
    def _check_writable(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"--out {self.out} cannot be created: {e.strerror or e}") from e
        probe = self.out / f".write-test-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise RunFolderError(
                f"--out {self.out} is not writable ({e.strerror or e}); nothing was trained. Choose a writable folder"
            ) from e
        free = shutil.disk_usage(self.out).free
        if free < self.min_free:
            raise RunFolderError(
                f"--out {self.out} has {free / 2**20:.0f} MB free, less than the "
                f"{self.min_free / 2**20:.0f} MB a run needs; nothing was trained"
            )

    def _lock(self) -> None:
        import fcntl

        path = self.out / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.read(fd, 65536).decode() or "{}")
            except (ValueError, OSError):
                holder = {}
            os.close(fd)
            raise RunFolderError(
                f"--out {self.out} is in use by another run (PID {holder.get('pid', '?')}: "
                f"{holder.get('command', '?')}, since {holder.get('started', '?')}); wait for it "
                "or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "command": " ".join(sys.argv) or "python",
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            ).encode(),
        )
        os.fsync(fd)
        self._fd = fd

    def _unlock(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _bind(self) -> None:
        record = self.out / "run.json"
        summary = self.out / "summary.json"
        if self.restart:
            for p in [record, summary, *self.out.glob("resume*.pt")]:
                p.unlink(missing_ok=True)
        elif record.is_file():
            try:
                old = json.loads(record.read_text())["invocation"]
            except (ValueError, KeyError, TypeError):
                raise RunFolderError(f"{record} is unreadable; pass --restart to start this folder over") from None
            if old != self.invocation:
                differ = diff_fields(old, self.invocation)
                state = "a finished run" if summary.is_file() else "an unfinished run"
                raise RunFolderError(
                    f"--out {self.out} holds {state} of another invocation; these differ: {'; '.join(differ[:8])}. "
                    "Nothing was changed. Use another --out, or --restart to discard that run"
                )
            if summary.is_file():
                finished = json.loads(summary.read_text())
                broken = verify_outputs(self.out, finished.get("outputs"))
                if not broken:
                    self.finished = finished
                    return
                if not any(self.out.glob("resume*.pt")):
                    raise RunFolderError(
                        f"--out {self.out} holds a finished run whose outputs are missing or changed "
                        f"({', '.join(broken)}) and no resume file to rewrite them from; pass "
                        "--restart to train again"
                    )
                print(
                    f"{self.out}: the finished run's outputs are missing or changed ({', '.join(broken)}); "
                    "rewriting them from the resume file",
                    file=sys.stderr,
                )
                summary.unlink()
                return
        elif any(self.out.glob("resume*.pt")) or summary.is_file():
            raise RunFolderError(
                f"--out {self.out} holds files of a run without its record (run.json); "
                "use another --out, or --restart to discard them"
            )
        self._created_record = True
        atomic_write(
            record,
            lambda tmp: Path(tmp).write_text(
                json.dumps(
                    {"invocation": self.invocation, "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")},
                    indent=2,
                    sort_keys=True,
                )
            ),
        )

    def discard_if_untouched(self) -> None:
        """Remove the record this run wrote when the run failed before writing anything else (an
        input error): the folder is left as it was found."""
        if getattr(self, "_created_record", False) and not any(
            p.name not in ("run.json", ".lock") for p in self.out.iterdir()
        ):
            (self.out / "run.json").unlink(missing_ok=True)

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "RunFolder":
        self._check_writable()
        self._lock()
        try:
            self._bind()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._unlock()
        if not (self.out / "summary.json").exists():  # no run is held here any more: no lock file left behind
            self.discard_if_untouched()
            if not any(p.name not in (".lock",) for p in self.out.iterdir()):
                (self.out / ".lock").unlink(missing_ok=True)
