"""The molecule domain's data directory: fragment vocabulary and sEH proxy weights.

Resolved from ``$SCULPTING_DATA_DIR`` (e.g. ``export SCULPTING_DATA_DIR=~/data/sculpting``), else a
per-user cache (``$XDG_CACHE_HOME/sculpting`` or ``~/.cache/sculpting``), laid out as::

    fragments_72.json              [{"smiles": ..., "attachment_atoms": [...]}, ...]
    seh_proxy/best_params.npz      arrays p00..p21 of the sEH proxy

Users with internet fetch the public MIT-licensed originals, verified by SHA-256 and converted
without executing anything (the proxy pickle through an unpickler that accepts only numpy
arrays; the fragment list by ``ast.literal_eval`` of the ``FRAGMENTS`` assignment)::

    python -m sculpting.domains.molecules.data download
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import os
import pickle
import sys
import urllib.request
from pathlib import Path

import numpy as np

from sculpting.infrastructure.checkpoints import atomic_write

__all__ = [
    "data_dir",
    "fragments_path",
    "proxy_params_path",
    "load_fragments",
    "load_proxy_params",
    "MissingDataError",
    "CorruptDataError",
    "convert_proxy_pickle",
    "convert_fragment_source",
    "download",
    "verify_file",
    "ensure_data",
]

ENV_VAR = "SCULPTING_DATA_DIR"
DOWNLOAD_CMD = "python -m sculpting.domains.molecules.data download"
SOURCES = {
    "fragments": {
        "url": "https://raw.githubusercontent.com/recursionpharma/gflownet/3d311c3d0d18f3c7f9ce67dd1fff502c44ca57d9/"
        "src/gflownet/models/bengio2021flow.py",
        "sha256": "48b3b5c6a0fb744f790620d6795f9b70e356507aed8741470e71e6953076ab04",
        "converted_sha256": "12c4639aee8359e81c225ba8b4ff892c0ab2c5f4635135ad0b8c366288c47e80",
    },
    "proxy": {
        "url": "https://raw.githubusercontent.com/GFNOrg/gflownet/3ba65d243bb2e4fe77b3b93dc5f1634fd3ea5ea6/"
        "mols/data/pretrained_proxy/best_params.pkl.gz",
        "sha256": "f76ab480b62e23dda04fd45fefe0e7ae2374b3f8c3f18fb7e00651cad05b9e1f",
        "converted_sha256": "83168c271a1661f31d78e9c387520a4f4f586df6e6b5c733cda014e8563e1236",
        # the arrays themselves (name, dtype, shape, bytes): accepted if another numpy wrote the .npz
        "arrays_sha256": "d013a1c75bcc8b2c65a4f5996f7c53528bda2ea46940aa639d0ff66921858791",
    },
}


class MissingDataError(FileNotFoundError):
    pass


class CorruptDataError(ValueError):
    """A data file exists but is not the pinned one (checksum) or does not make sense."""


#: (path, inode, size, mtime, ctime) of files whose SHA-256 was checked in this process. Any write
#: changes the ctime, which no user call can set back (utime restores only atime and mtime), so an
#: edited file is hashed again even when its size and mtime are restored.
_VERIFIED: set = set()


def npz_arrays_sha256(path: Path) -> str:
    """SHA-256 of the arrays of an ``.npz`` (name, dtype, shape, bytes in name order)."""
    h = hashlib.sha256()
    with np.load(path) as z:
        for k in sorted(z.files):
            a = np.ascontiguousarray(z[k])
            h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def verify_file(path: Path, sha256: str, arrays_sha256: str | None = None) -> Path:
    """Check ``path``'s SHA-256 (or, for an ``.npz``, that of its arrays) once per process (again if
    the file changes); a mismatch raises a :class:`CorruptDataError` naming the file and the fix."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _VERIFIED:
        return path
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != sha256 and arrays_sha256 is not None:
        try:
            got = sha256 if npz_arrays_sha256(path) == arrays_sha256 else got
        except Exception:  # noqa: BLE001 — not a readable npz: reported as corrupt below
            pass
    if got != sha256:
        raise CorruptDataError(
            f"molecule data file {path} is not the pinned one (SHA-256 {got[:12]}…, expected "
            f"{sha256[:12]}…): it is truncated, edited or from another source. Delete it and "
            f"run: {DOWNLOAD_CMD}"
        )
    _VERIFIED.add(key)
    return path


def data_dir() -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "sculpting"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise MissingDataError(
            f"molecule data file {path} not found. Set {ENV_VAR} to a folder holding "
            f"fragments_72.json and seh_proxy/best_params.npz (docs/molecules.md §13), or fetch the public "
            f"originals with: {DOWNLOAD_CMD}"
        )
    return path


def fragments_path() -> Path:
    return verify_file(_require(data_dir() / "fragments_72.json"), SOURCES["fragments"]["converted_sha256"])


def proxy_params_path() -> Path:
    return verify_file(
        _require(data_dir() / "seh_proxy" / "best_params.npz"),
        SOURCES["proxy"]["converted_sha256"],
        SOURCES["proxy"]["arrays_sha256"],
    )


def validate_fragments(frags, where="fragments") -> list[tuple[str, list[int]]]:
    """Every SMILES parses and every attachment index is an atom of its fragment (distinct)."""
    from rdkit import Chem

    out = []
    for i, (smi, att) in enumerate(frags):
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            raise CorruptDataError(f"{where}: fragment {i} has an unparsable SMILES {smi!r}")
        att = list(att)
        if (
            not att
            or len(set(att)) != len(att)
            or not all(isinstance(a, int) and 0 <= a < mol.GetNumAtoms() for a in att)
        ):
            raise CorruptDataError(
                f"{where}: fragment {i} ({smi}) has attachment atoms {att} outside its "
                f"{mol.GetNumAtoms()} atoms (or repeated)"
            )
        out.append((smi, att))
    return out


def load_fragments() -> list[tuple[str, list[int]]]:
    """The 72 fragments as (SMILES, attachment atom indices), checksum-verified and validated."""
    path = fragments_path()
    data = json.loads(path.read_text())
    return validate_fragments([(d["smiles"], d["attachment_atoms"]) for d in data], str(path))


def load_proxy_params() -> list[np.ndarray]:
    with np.load(proxy_params_path()) as z:
        return [z[f"p{i:02d}"] for i in range(22)]


# ---------------------------------------------------------------------------- conversion
class _NumpyOnlyUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are accepted")


def convert_proxy_pickle(pkl_gz: bytes) -> bytes:
    """``best_params.pkl.gz`` (a pickled list of 22 numpy arrays) → ``.npz`` bytes (p00..p21)."""
    arrays = _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(pkl_gz))).load()
    if not isinstance(arrays, (list, tuple)) or len(arrays) != 22 or not all(isinstance(a, np.ndarray) for a in arrays):
        raise ValueError("the proxy pickle must hold a list of 22 numpy arrays")
    buf = io.BytesIO()
    np.savez(buf, **{f"p{i:02d}": np.asarray(a, dtype=np.float32) for i, a in enumerate(arrays)})
    return buf.getvalue()


def convert_fragment_source(source: str) -> str:
    """The ``FRAGMENTS = [...]`` literal of bengio2021flow.py → our JSON (nothing is executed)."""
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "FRAGMENTS" for t in targets):
            frags = ast.literal_eval(node.value)
            out = [{"smiles": s, "attachment_atoms": list(a)} for s, a in frags]
            return json.dumps(out)
    raise ValueError("no FRAGMENTS assignment found")


def _fetch(url: str, sha256: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 (pinned https URL)
        data = r.read()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ValueError(f"checksum mismatch for {url}: expected {sha256}, got {got}")
    return data


def _atomic_write(path: Path, data: bytes):
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def ensure_data(quiet: bool = False) -> bool:
    """Fetch the molecule data into :func:`data_dir` when it is missing; on failure (no network)
    say so and return False without raising (the setup script calls this)."""
    d = data_dir()
    if (d / "fragments_72.json").is_file() and (d / "seh_proxy" / "best_params.npz").is_file():
        return True
    try:
        download(d)
    except Exception as e:  # noqa: BLE001 — any failure is reported, never fatal here
        print(
            f"molecule data: not available in {d} and could not be downloaded ({type(e).__name__}: {e}).\n"
            f"  The molecule notebooks and tests need it: set {ENV_VAR} to a folder holding it, or run "
            f"{DOWNLOAD_CMD} with internet access.",
            file=sys.stderr,
        )
        return False
    if not quiet:
        print(f"molecule data downloaded and verified into {d}")
    return True


def download(target: Path | None = None) -> Path:
    """Fetch, verify and convert the public originals into ``target`` (default: :func:`data_dir`)."""
    target = Path(target) if target else data_dir()
    frag = convert_fragment_source(_fetch(SOURCES["fragments"]["url"], SOURCES["fragments"]["sha256"]).decode())
    _atomic_write(target / "fragments_72.json", frag.encode())
    _atomic_write(
        target / "seh_proxy" / "best_params.npz",
        convert_proxy_pickle(_fetch(SOURCES["proxy"]["url"], SOURCES["proxy"]["sha256"])),
    )
    return target


if __name__ == "__main__":
    if sys.argv[1:] == ["ensure"]:
        sys.exit(0 if ensure_data() else 0)  # informative only: never fails the setup
    if sys.argv[1:] != ["download"]:
        sys.exit(f"usage: {DOWNLOAD_CMD}    (writes into ${ENV_VAR} or ~/.cache/sculpting)")
    print(f"molecule data written to {download()}")
