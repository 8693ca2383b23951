"""Molecule benchmark, measured in one run on this machine (issue: fragment-molecule domain).

    SCULPTING_DATA_DIR=DIR .venv/bin/python benchmarks/molecules.py [--steps 20] [--threads 1 2]
        [--beta 32] [--forms anchored paper] [--guided-batch 128] [--device cuda]

Prints, per torch thread count: trajectory-balance training throughput (trajectories/s, batch 64,
EMA sampler, exploration 0.1, SEH reward), base sampling throughput, guided sampling throughput
(valid molecules/s) of the mixture, SEH⊗SA, SEH◑SA (α = 0.05) and SA◑SEH (α = 0.95) at β with each
GFlowNet sampler — "full" (every successor of every legal action scored by the classifier) and
"rejection" (exact, :mod:`sculpting.gflownet.rejection`) — with the classifier rows scored per
molecule, and for thread counts T > 1 the exact sampler in T forked worker processes of one
thread each (``sc.sample(..., workers=T)``, the same cores used as independent trajectories), and
sEH-proxy throughput (molecules/s) with the cached edge network vs torch-geometric's NNConv as is.
Uses the shipped CPU models when present (else freshly initialised networks of the same size: the
cost then differs, the guidance being uninformative).
"""
from __future__ import annotations

import argparse
import time

import torch
from torch_geometric.data import Batch

from sculpting.gflownet.rejection import RejectionStats, action_sampler_for
from sculpting.gflownet.sampler import sample_trajectories
from sculpting.gflownet.training import train_gflownet
from sculpting.domains.molecules.classifier import make_graph_classifier
from sculpting.domains.molecules.env import FragmentGraphEnv
from sculpting.compose import compose, sample
from sculpting.domains.molecules.experiments import base_train_config
from sculpting.domains.molecules.policy import PRESETS, BetaConditioning, MoleculeGFlowNet
from sculpting.domains.molecules.proxy import load_seh_proxy, mol_to_graph


def _models():
    try:
        from sculpting.domains.molecules.io import load_molecule_models
        m = load_molecule_models()
        if "seh_sa" in m["classifiers"]:
            return m["bases"]["seh"], m["bases"]["sa"], m["classifiers"]["seh_sa"], "shipped"
    except Exception:
        pass
    torch.manual_seed(0)
    env = FragmentGraphEnv(9, "seh")
    return (MoleculeGFlowNet(env, **PRESETS["cpu"]), MoleculeGFlowNet(FragmentGraphEnv(9, "sa"), **PRESETS["cpu"]),
            make_graph_classifier(FragmentGraphEnv(9), 2), "untrained")


COMPOSITIONS = (("mixture", 0.5), ("harmonic", 0.5), ("contrast", 0.05), ("reverse_contrast", 0.95))
LABELS = {"mixture": "SEH+SA", "harmonic": "SEH⊗SA", "contrast": "SEH◑SA", "reverse_contrast": "SA◑SEH"}


def _full_rows(env, traj) -> int:
    """Successor graphs that full scoring evaluates along these trajectories (the mixture: none)."""
    states = traj.states[:, :-1][traj.valid]
    return int(env.action_mask(states)[:, :-1].sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="training steps to time")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--guided-batch", type=int, default=128, help="molecules per guided measurement")
    ap.add_argument("--beta", type=float, default=32.0)
    ap.add_argument("--forms", nargs="*", default=["anchored", "paper"])
    ap.add_argument("--device", default="cpu", help="where the models run (RDKit rewards stay on the CPU)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    seh, sa, clf, source = _models()
    seh, sa, clf = seh.to(dev), sa.to(dev), clf.to(dev)
    print(f"torch {torch.__version__}; models: {source} (cpu preset, at most {seh.env.max_frags} fragments); "
          f"device {dev}\n")
    print("| threads | what | value |\n|---|---|---|")
    gen = torch.Generator(device=dev).manual_seed(0)
    traj = sample_trajectories(seh.env, seh.at_beta(32.0), 256, 0.0, gen)
    mols = [m for m in seh.env.to_mols(traj.terminal) if m is not None]
    batch = Batch.from_data_list([mol_to_graph(m) for m in mols])
    proxy = load_seh_proxy()
    for th in args.threads:
        torch.set_num_threads(th)
        torch.manual_seed(0)
        model = MoleculeGFlowNet(FragmentGraphEnv(9, "seh"), **PRESETS["cpu"]).to(dev)
        cfg = base_train_config("seh", steps=args.steps, batch_size=64)
        t0 = time.perf_counter()
        train_gflownet(model, cfg, progress=False, conditioning=BetaConditioning())
        dt = time.perf_counter() - t0
        print(f"| {th} | TB training, trajectories/s (batch 64; {dt / args.steps:.2f} s/step) | {64 * args.steps / dt:.1f} |", flush=True)
        t0 = time.perf_counter()
        with torch.no_grad():
            sample_trajectories(seh.env, seh.at_beta(32.0), 128, 0.0, gen)
        print(f"| {th} | base sampling, trajectories/s | {128 / (time.perf_counter() - t0):.1f} |", flush=True)
        for op, alpha in COMPOSITIONS:
            for form in args.forms:
                pol = compose([seh, sa], clf, op, alpha=alpha, beta=args.beta, form=form)
                for name in ("full", "rejection") if op != "mixture" else ("full",):
                    stats = RejectionStats()
                    act = action_sampler_for(pol, name, stats=stats)
                    t0 = time.perf_counter()
                    traj = sample_trajectories(seh.env, pol, args.guided_batch, 0.0, gen, action_sampler=act)
                    dt = time.perf_counter() - t0
                    n_valid = int(seh.env.is_valid_terminal(traj.terminal).sum())
                    rows = (stats.scored_rows if name == "rejection" else
                            0 if op == "mixture" else _full_rows(seh.env, traj))
                    print(f"| {th} | guided {LABELS[op]} ({form}, β={args.beta:g}), sampler {name}: valid molecules/s "
                          f"[classifier rows per molecule] | {n_valid / dt:.2f} [{rows / max(1, n_valid):.0f}] |",
                          flush=True)
                if th > 1 and dev.type == "cpu":  # the same cores as th worker processes of one thread each
                    pol = compose([seh, sa], clf, op, alpha=alpha, beta=args.beta, form=form)
                    t0 = time.perf_counter()
                    x = sample(pol, args.guided_batch, seed=1, workers=th)
                    dt = time.perf_counter() - t0
                    n_valid = int(seh.env.is_valid_terminal(x).sum())
                    print(f"| {th} | guided {LABELS[op]} ({form}, β={args.beta:g}), sampler auto (exact), {th} worker "
                          f"processes × 1 thread: valid molecules/s | {n_valid / dt:.2f} |", flush=True)
        with torch.no_grad():
            for cache, label in ((True, "cached edge net"), (False, "PyG NNConv as is")):
                proxy(batch, cache_edge_net=cache)
                t0 = time.perf_counter()
                proxy(batch, cache_edge_net=cache)
                print(f"| {th} | sEH proxy, molecules/s ({label}, batch {len(mols)}) | {len(mols) / (time.perf_counter() - t0):.0f} |", flush=True)


if __name__ == "__main__":
    main()
