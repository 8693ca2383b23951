"""Molecule benchmark, measured in one run on this machine (issues: fragment-molecule domain, guided
sampling at the speed of base sampling).

    SCULPTING_DATA_DIR=DIR .venv/bin/python benchmarks/molecules.py [--sections training guided workers
        proxy panel] [--steps 20] [--threads 1 2] [--beta 32] [--forms anchored] [--guided-batch 128]
        [--samplers full rejection amortised] [--device cuda]

Sections:
* ``training``: trajectory-balance training throughput (trajectories/s, batch 64, SEH reward).
* ``guided``: per torch thread count, base sampling throughput and, for every composition (the
  mixture, SEH⊗SA, SEH◑SA α = 0.05, SA◑SEH α = 0.95, the three-way y=123) and GFlowNet sampler
  ("full": every successor scored; "rejection": exact, :mod:`sculpting.gflownet.rejection`;
  "amortised": the successor-head proposal, :mod:`sculpting.gflownet.amortised`), valid
  molecules/s, the **guided/base ratio** (base measured right before and after each row, the
  mean of the two), classifier rows scored per molecule and the amortised envelope violations.
* ``workers``: base and SEH⊗SA sampling in T forked worker processes of one thread each
  (``sc.sample(..., workers=T)``), molecules/s and their ratio, per sampler.
* ``proxy``: sEH-proxy throughput with the cached edge network vs torch-geometric's NNConv.
* ``panel``: the interactive panel's "sample" of 16 molecules (harmonic, contrast, y=123; exact
  rejection and amortised sampler; one and two worker processes; median of 7 presses).
Uses the shipped CPU models when present (else freshly initialised networks of the same size: the
cost then differs, the guidance being uninformative).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch_geometric.data import Batch

from sculpting.gflownet.rejection import SamplerStats, action_sampler_for
from sculpting.gflownet.rollout import sample_trajectories
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
            return m, "shipped"
    except Exception:
        pass
    torch.manual_seed(0)
    bases = {o: MoleculeGFlowNet(FragmentGraphEnv(9, o), **PRESETS["cpu"]) for o in ("seh", "sa", "qed")}
    clfs = {
        "seh_sa": make_graph_classifier(FragmentGraphEnv(9), 2),
        "seh_sa_qed": make_graph_classifier(FragmentGraphEnv(9), 3),
    }
    return {"bases": bases, "classifiers": clfs, "successor_heads": {}}, "untrained"


COMPOSITIONS = (("mixture", 0.5), ("harmonic", 0.5), ("contrast", 0.05), ("reverse_contrast", 0.95), ("y=123", None))
LABELS = {
    "mixture": "SEH+SA",
    "harmonic": "SEH⊗SA",
    "contrast": "SEH◑SA",
    "reverse_contrast": "SA◑SEH",
    "y=123": "y=123 (SEH,SA,QED)",
}


def _policy(m, op, alpha, beta, form, dev):
    three = alpha is None
    names = ("seh", "sa", "qed") if three else ("seh", "sa")
    clf_name = "seh_sa_qed" if three else "seh_sa"
    clf = m["classifiers"][clf_name]
    return compose(
        [m["bases"][n] for n in names],
        clf,
        op,
        alpha=alpha if alpha is not None else 0.5,
        beta=beta,
        form=form,
        successor_head=m["successor_heads"].get(clf_name),
    )


def _full_rows(env, traj) -> int:
    """Successor graphs that full scoring evaluates along these trajectories."""
    states = traj.states[:, :-1][traj.valid]
    return int(env.action_mask(states)[:, :-1].sum())


def _rate(fn, n_of):
    t0 = time.perf_counter()
    out = fn()
    return n_of(out) / (time.perf_counter() - t0), out


def guided_section(m, args, gen, dev):
    seh = m["bases"]["seh"]
    env = seh.env
    print(
        "| threads | composition | sampler | valid molecules/s | base trajectories/s | guided/base | "
        "classifier rows per molecule | envelope violations per molecule |\n|---|---|---|---|---|---|---|---|"
    )
    for th in args.threads:
        torch.set_num_threads(th)

        def base_rate():
            with torch.no_grad():
                return _rate(
                    lambda: sample_trajectories(env, seh.at_beta(args.beta), args.guided_batch, 0.0, gen),
                    lambda t: len(t.terminal),
                )[0]

        base_rate()  # warm-up
        for op, alpha in COMPOSITIONS:
            for form in args.forms:
                pol = _policy(m, op, alpha, args.beta, form, dev)
                samplers = ("full",) if op == "mixture" else args.samplers
                for name in samplers:
                    if name == "amortised" and pol.successor_head is None:
                        continue
                    if name == "full" and op == "harmonic" and "rejection" in samplers and th > 1:
                        continue  # minutes, and the same law as rejection
                    stats = SamplerStats()
                    act = action_sampler_for(pol, name, stats=stats)
                    before = base_rate()
                    rate, traj = _rate(
                        lambda: sample_trajectories(env, pol, args.guided_batch, 0.0, gen, action_sampler=act),
                        lambda t: int(env.is_valid_terminal(t.terminal).sum()),
                    )
                    after = base_rate()
                    n_valid = max(1, int(env.is_valid_terminal(traj.terminal).sum()))
                    rows = stats.scored_rows if name != "full" else 0 if op == "mixture" else _full_rows(env, traj)
                    base = (before + after) / 2
                    viol = f"{stats.envelope_violations / n_valid:.2f}" if name == "amortised" else "–"
                    print(
                        f"| {th} | {LABELS[op]} ({form}, β={args.beta:g}) | {name} | {rate:.1f} | {base:.1f} | "
                        f"{rate / base:.2f} | {rows / n_valid:.0f} | {viol} |",
                        flush=True,
                    )


def workers_section(m, args):
    seh = m["bases"]["seh"]
    env = seh.env
    print("\n| worker processes × 1 thread | what | sampler | valid molecules/s | guided/base |\n|---|---|---|---|---|")
    for w in [t for t in args.threads if t > 1]:
        base = seh.at_beta(args.beta)
        n = args.guided_batch * w
        b_rate, _ = _rate(lambda: sample(base, n, seed=1, workers=w), lambda x: int(env.is_valid_terminal(x).sum()))
        print(f"| {w} | base SEH | – | {b_rate:.1f} | 1 |", flush=True)
        for op, alpha in (("harmonic", 0.5),):
            pol = _policy(m, op, alpha, args.beta, args.forms[0], "cpu")
            for name in args.samplers:
                if name == "full" or (name == "amortised" and pol.successor_head is None):
                    continue
                rate, _ = _rate(
                    lambda: sample(pol, n, seed=1, workers=w, sampler=name),
                    lambda x: int(env.is_valid_terminal(x).sum()),
                )
                print(f"| {w} | {LABELS[op]} | {name} | {rate:.1f} | {rate / b_rate:.2f} |", flush=True)


def panel_section(
    m,
    choices=("SEH ⊗ SA (harmonic)", "SEH ◑ SA (contrast)", "SEH⊗SA⊗QED (y=123)"),
    samplers=("auto", "amortised"),
    workers=(1, 2),
    presses: int = 7,
):
    """The panel's "sample" of 16 molecules: median of ``presses`` presses (after one warm-up) per
    composition, sampler and number of worker processes — sampling, RDKit drawing and the scatter."""
    from sculpting.domains.molecules.panel import MoleculeSculptingPanel

    torch.set_num_threads(1)
    print("\n| composition | sampler | worker processes | median s | min s | max s |\n|---|---|---|---|---|---|")
    for choice in choices:
        for sampler in samplers:
            for w in workers:
                panel = MoleculeSculptingPanel(m, n_molecules=16, sampler=sampler, workers=w)
                panel.operation.value = choice
                panel.sample()  # warm-up
                times = []
                for _ in range(presses):
                    t0 = time.perf_counter()
                    panel.sample()
                    times.append(time.perf_counter() - t0)
                name = "rejection (exact)" if sampler == "auto" else sampler
                print(
                    f"| {choice} | {name} | {w} | {statistics.median(times):.2f} | {min(times):.2f} | "
                    f"{max(times):.2f} |",
                    flush=True,
                )


def training_section(args, dev):
    print("| threads | TB training, trajectories/s (batch 64) | s/step |\n|---|---|---|")
    for th in args.threads:
        torch.set_num_threads(th)
        torch.manual_seed(0)
        model = MoleculeGFlowNet(FragmentGraphEnv(9, "seh"), **PRESETS["cpu"]).to(dev)
        cfg = base_train_config("seh", steps=args.steps, batch_size=64)
        t0 = time.perf_counter()
        train_gflownet(model, cfg, progress=False, conditioning=BetaConditioning())
        dt = time.perf_counter() - t0
        print(f"| {th} | {64 * args.steps / dt:.1f} | {dt / args.steps:.2f} |", flush=True)


def proxy_section(m, args, gen):
    seh = m["bases"]["seh"]
    traj = sample_trajectories(seh.env, seh.at_beta(32.0), 256, 0.0, gen)
    mols = [x for x in seh.env.to_mols(traj.terminal) if x is not None]
    batch = Batch.from_data_list([mol_to_graph(x) for x in mols])
    proxy = load_seh_proxy()
    print("\n| threads | sEH proxy | molecules/s |\n|---|---|---|")
    for th in args.threads:
        torch.set_num_threads(th)
        with torch.no_grad():
            for cache, label in ((True, "cached edge net"), (False, "PyG NNConv as is")):
                proxy(batch, cache_edge_net=cache)
                t0 = time.perf_counter()
                proxy(batch, cache_edge_net=cache)
                print(
                    f"| {th} | {label}, batch {len(mols)} | {len(mols) / (time.perf_counter() - t0):.0f} |", flush=True
                )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sections", nargs="*", default=["training", "guided", "workers", "proxy", "panel"])
    ap.add_argument("--steps", type=int, default=20, help="training steps to time")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--guided-batch", type=int, default=128, help="trajectories per guided measurement")
    ap.add_argument("--beta", type=float, default=32.0)
    ap.add_argument("--forms", nargs="*", default=["anchored"])
    ap.add_argument("--samplers", nargs="*", default=["full", "rejection", "amortised"])
    ap.add_argument("--device", default="cpu", help="where the models run (RDKit rewards stay on the CPU)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    m, source = _models()
    for group in ("bases", "classifiers", "successor_heads"):
        for v in m[group].values():
            v.to(dev)
    print(
        f"torch {torch.__version__}; models: {source} (cpu preset, at most {m['bases']['seh'].env.max_frags} "
        f"fragments); successor heads: {sorted(m['successor_heads']) or 'none'}; device {dev}\n"
    )
    gen = torch.Generator(device=dev).manual_seed(0)
    if "training" in args.sections:
        training_section(args, dev)
    if "guided" in args.sections:
        print()
        guided_section(m, args, gen, dev)
    if "workers" in args.sections and dev.type == "cpu":
        workers_section(m, args)
    if "proxy" in args.sections:
        proxy_section(m, args, gen)
    if "panel" in args.sections:
        panel_section(m)


if __name__ == "__main__":
    main()
