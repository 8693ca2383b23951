"""Molecule benchmark, measured in one run on this machine (issue: fragment-molecule domain).

    SCULPTING_DATA_DIR=DIR .venv/bin/python benchmarks/molecules.py [--steps 20] [--threads 1 2] [--device cuda]

Prints, per torch thread count: trajectory-balance training throughput (trajectories/s, batch 64,
EMA sampler, exploration 0.1, SEH reward), base sampling and guided sampling throughput
(trajectories/s; SEH⊗SA at β = 32, every successor of every legal action scored by the
classifier), and sEH-proxy throughput (molecules/s) with the cached edge network vs
torch-geometric's NNConv as is. Uses the shipped CPU models when present (else freshly initialised
networks of the same size: the cost does not depend on the weights).
"""
from __future__ import annotations

import argparse
import time

import torch
from torch_geometric.data import Batch

from sculpting.algebra import Composition
from sculpting.gflownet.sampler import sample_trajectories
from sculpting.gflownet.training import train_gflownet
from sculpting.domains.molecules.classifier import make_graph_classifier
from sculpting.domains.molecules.env import FragmentGraphEnv
from sculpting.compose import compose
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20, help="training steps to time")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--guided-batch", type=int, default=32)
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
        pol = compose([seh, sa], clf, Composition.two_base("harmonic", 0.5), beta=32.0, form="paper")
        t0 = time.perf_counter()
        sample_trajectories(seh.env, pol, args.guided_batch, 0.0, gen)
        print(f"| {th} | guided sampling SEH⊗SA, trajectories/s | {args.guided_batch / (time.perf_counter() - t0):.2f} |", flush=True)
        with torch.no_grad():
            for cache, label in ((True, "cached edge net"), (False, "PyG NNConv as is")):
                proxy(batch, cache_edge_net=cache)
                t0 = time.perf_counter()
                proxy(batch, cache_edge_net=cache)
                print(f"| {th} | sEH proxy, molecules/s ({label}, batch {len(mols)}) | {len(mols) / (time.perf_counter() - t0):.0f} |", flush=True)


if __name__ == "__main__":
    main()
