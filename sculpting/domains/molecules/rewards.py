"""Molecule rewards (docs/molecules.md): sEH proxy, QED, synthetic accessibility, molecular weight.

    SEH = clip(proxy, 1e-4, 100) / 8        QED = RDKit QED
    SA  = (10 − SA score) / 9               MW  = clip((300 − MolWt) / 700 + 1, 0, 1)
Failure defaults (docs/molecules.md §7): QED 0, SA score 10, MolWt 1000, proxy NaN → 0.
Every function takes a list of RDKit molecules, SMILES strings or None (invalid).
SA uses RDKit's own Contrib ``sascorer`` (found through ``RDConfig.RDContribDir``).
"""

from __future__ import annotations

import os
import sys

import torch
from rdkit import RDConfig
from rdkit.Chem import QED, Descriptors

from sculpting.domains.molecules.proxy import as_mols, seh_reward

__all__ = ["qed_reward", "sa_reward", "mw_reward", "seh_reward", "REWARDS", "compute_rewards"]


def _sascorer():
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer  # noqa: E402  (RDKit's Contrib module)

    return sascorer


def _safe(f, default):
    try:
        return float(f())
    except Exception:
        return default


def qed_reward(mols) -> torch.Tensor:
    mols = as_mols(mols)
    return torch.tensor(
        [0.0 if m is None else _safe(lambda: QED.qed(m), 0.0) for m in mols], device="cpu"
    )  # RDKit: on the host


def sa_reward(mols) -> torch.Tensor:
    sa, mols = _sascorer(), as_mols(mols)
    scores = [10.0 if m is None else _safe(lambda: sa.calculateScore(m), 10.0) for m in mols]
    return (10.0 - torch.tensor(scores, device="cpu")) / 9.0


def mw_reward(mols) -> torch.Tensor:
    mols = as_mols(mols)
    mw = torch.tensor(
        [1000.0 if m is None else _safe(lambda: Descriptors.MolWt(m), 1000.0) for m in mols], device="cpu"
    )
    return ((300.0 - mw) / 700.0 + 1.0).clamp(0.0, 1.0)


REWARDS = {"seh": seh_reward, "qed": qed_reward, "sa": sa_reward, "mw": mw_reward}


def compute_rewards(mols, names=("seh", "qed", "sa", "mw")) -> dict:
    unknown = set(names) - set(REWARDS)
    if unknown:
        raise ValueError(f"unknown molecule rewards {sorted(unknown)}; choose from {sorted(REWARDS)}")
    mols = as_mols(mols)
    return {n: REWARDS[n](mols) for n in names}
