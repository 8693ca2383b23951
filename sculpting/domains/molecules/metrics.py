"""Evaluation of molecule sample sets (docs/molecules.md).

* validity (share of sampled trajectories whose molecule sanitises), uniqueness (share of
  distinct canonical SMILES), diversity (mean pairwise Tanimoto distance 1 − T over Morgan
  fingerprints);
* the high/low table: % of molecules in each cell of thresholds SEH 0.5, SA 0.6, QED 0.25, with
  the binomial standard error 100 · sqrt(p (1 − p) / n) of each cell (``table_with_se``);
* the earth mover's distance between two sample sets over Morgan fingerprints (radius 3,
  2048 bits) with ground cost c(a, b) = clip(1 / Tanimoto(a, b) − 1, 0, 100); for two sets of
  equal size n with uniform weights the optimal transport plan is a permutation, so
  EMD = min_σ (1/n) Σ_i c(a_i, b_σ(i)) (solved exactly by ``scipy.optimize.linear_sum_assignment``;
  unequal sets are subsampled to the smaller size);
* a 2-D embedding of a distance matrix by classical multidimensional scaling.
"""

from __future__ import annotations

import itertools

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

__all__ = [
    "THRESHOLDS",
    "fingerprints",
    "tanimoto_matrix",
    "validity_uniqueness_diversity",
    "high_low_table",
    "emd",
    "emd_matrix",
    "classical_mds",
    "binomial_se_pct",
    "table_with_se",
    "pm",
]

THRESHOLDS = {"seh": 0.5, "sa": 0.6, "qed": 0.25}
_GEN = {}


def fingerprints(mols, radius: int = 3, n_bits: int = 2048) -> list:
    key = (radius, n_bits)
    if key not in _GEN:
        _GEN[key] = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    return [_GEN[key].GetFingerprint(m) for m in mols]


def tanimoto_matrix(fps_a, fps_b) -> np.ndarray:
    """``[len(a), len(b)]`` Tanimoto similarities."""
    return np.array([DataStructs.BulkTanimotoSimilarity(f, fps_b) for f in fps_a], dtype=np.float64)


def validity_uniqueness_diversity(mols, n_sampled: int | None = None, n_valid_sampled: int | None = None) -> dict:
    """``mols``: the valid molecules of a sample; ``n_sampled``: trajectories drawn and
    ``n_valid_sampled``: valid ones among them (default ``len(mols)``); validity = their ratio."""
    if not mols:
        raise ValueError("no molecules to evaluate")
    smiles = [Chem.MolToSmiles(m) for m in mols]
    fps = fingerprints(mols)
    sim = tanimoto_matrix(fps, fps)
    n = len(mols)
    div = float((1 - sim)[np.triu_indices(n, 1)].mean()) if n > 1 else 0.0
    out = {"n": n, "uniqueness": len(set(smiles)) / n, "diversity": div}
    if n_sampled:
        out["validity"] = (n if n_valid_sampled is None else n_valid_sampled) / n_sampled
    return out


def high_low_table(rewards: dict, names=("seh", "sa"), thresholds=None) -> dict:
    """% of molecules per high/low cell, e.g. {"seh+ sa+": 12.5, "seh+ sa-": ...}.

    ``rewards``: {name: 1-D array-like of rewards of the same molecules}."""
    th = {**THRESHOLDS, **(thresholds or {})}
    missing = [k for k in names if k not in rewards]
    if missing:
        raise ValueError(f"rewards lack {missing}")
    lengths = {k: len(np.asarray(rewards[k]).reshape(-1)) for k in names}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"rewards of different lengths {lengths}: they must describe the same molecules")
    high = {k: np.asarray(rewards[k], dtype=np.float64).reshape(-1) >= th[k] for k in names}
    n = len(next(iter(high.values())))
    out = {}
    for signs in itertools.product((True, False), repeat=len(names)):
        cell = np.ones(n, dtype=bool)
        for k, s in zip(names, signs):
            cell &= high[k] if s else ~high[k]
        out[" ".join(f"{k}{'+' if s else '-'}" for k, s in zip(names, signs))] = 100.0 * cell.mean()
    return out


def emd(fps_a, fps_b, seed: int = 0, max_cost: float = 100.0) -> float:
    """Earth mover's distance between two fingerprint sets (uniform weights)."""
    from scipy.optimize import linear_sum_assignment

    if not fps_a or not fps_b:
        raise ValueError("EMD needs two non-empty sets")
    n = min(len(fps_a), len(fps_b))
    rng = np.random.default_rng(seed)
    a = [fps_a[i] for i in sorted(rng.choice(len(fps_a), n, replace=False))] if len(fps_a) > n else list(fps_a)
    b = [fps_b[i] for i in sorted(rng.choice(len(fps_b), n, replace=False))] if len(fps_b) > n else list(fps_b)
    sim = tanimoto_matrix(a, b)
    with np.errstate(divide="ignore"):
        cost = np.clip(1.0 / sim - 1.0, 0.0, max_cost)
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean())


def emd_matrix(sets: dict, seed: int = 0) -> tuple[list, np.ndarray]:
    """Pairwise EMDs between named molecule sets → (names, ``[k, k]`` symmetric matrix)."""
    names = list(sets)
    fps = {k: fingerprints(v) for k, v in sets.items()}
    d = np.zeros((len(names), len(names)))
    for i, j in itertools.combinations(range(len(names)), 2):
        d[i, j] = d[j, i] = emd(fps[names[i]], fps[names[j]], seed)
    return names, d


def classical_mds(d: np.ndarray, dim: int = 2) -> np.ndarray:
    """``[k, dim]`` coordinates whose Euclidean distances approximate ``d`` (Torgerson MDS:
    eigenvectors of −½ J D² J scaled by √eigenvalue)."""
    d = np.asarray(d, dtype=np.float64)
    k = len(d)
    j = np.eye(k) - 1.0 / k
    b = -0.5 * j @ (d**2) @ j
    w, v = np.linalg.eigh(b)
    order = np.argsort(w)[::-1][:dim]
    return v[:, order] * np.sqrt(np.clip(w[order], 0, None))


def binomial_se_pct(pct: float, n: int) -> float:
    """Standard error (percentage points) of a share of ``pct`` % measured on ``n`` molecules."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    p = pct / 100.0
    return 100.0 * float(np.sqrt(max(p * (1 - p), 0.0) / n))


def table_with_se(table: dict, n: int) -> dict:
    """{cell: [%, standard error in points]} of a high/low table measured on ``n`` molecules."""
    return {k: [v, binomial_se_pct(v, n)] for k, v in table.items()}


def pm(pct: float, se: float, digits: int = 1) -> str:
    """ "12.3 ± 0.7"."""
    return f"{pct:.{digits}f} ± {se:.{digits}f}"
