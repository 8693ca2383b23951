"""Grid benchmark: this package's trainers against a faithful re-statement of the reference
loops, measured side by side in one run on this machine (issue: foundation, acceptance).

    .venv/bin/python benchmarks/grid.py [--cap-s 600] [--quick] [--device cuda]

``--device`` moves our trainer's models there (the reference loops stay on the CPU, as written).

Prints Markdown tables:
1. base GFlowNet training — trajectories/s and wall time to exact L1 ≤ 0.1 (symmetric Shubert
   T = 0.5; diagonal sigmoid T = 1): the reference loop (one network call per rollout step over
   the unfinished trajectories, autograd through the whole rollout, batch 16, Adam lr 1e-3,
   log Z lr 0.1, ε = 0.05) against ours (policy evaluated once on all states per step, tabular
   sampling without gradients, batch 128, lr 2e-3), with 1 and 2 torch threads;
2. classifier training — wall time until every two-base composition (HM, contrast, reverse
   at α ∈ {0.05, 0.5, 0.95}) is within L1 ≤ 0.1 in both guidance forms: the reference loop
   (bases sampled with a network call per step, classifier evaluated on every visited state
   with its own α) against ours (tabular sampling, per-state aggregated loss);
3. the latency of one slider update of notebook 03 (exact guided distribution + redraw).
Evaluation time (exact DP) is excluded from all training times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sculpting.domains.grid import GridEnv
from sculpting.gflownet.classifier_training import ClassifierTrainConfig, train_classifier
from sculpting.gflownet.losses import trajectory_balance_loss
from sculpting.gflownet.policy import GFlowNet, masked_log_softmax
from sculpting.gflownet.training import GFlowNetTrainConfig, exact_l1_to_reward, train_gflownet
from sculpting.domains.grid.experiments import evaluate_compositions, make_classifier, two_base_compositions
from sculpting.domains.grid.io import load_grid_pair

TARGET = 0.1


def reference_tb_step(model, opt, batch_size=16, epsilon=0.05):
    """The reference loop: roll out with one network call per step, autograd through it all."""
    env = model.env
    states = env.initial_states(batch_size)
    done = torch.zeros(batch_size, dtype=torch.bool)
    log_pf, log_pb = [], []
    while not bool(done.all()):
        active = torch.nonzero(~done).flatten()
        cur = states[active]
        mask = env.action_mask(cur)
        lp = masked_log_softmax(model.net(env.encode(cur)), mask)
        with torch.no_grad():
            probs = (1 - epsilon) * lp.exp() + epsilon * mask / mask.sum(1, keepdim=True)
            a = torch.multinomial(probs, 1).squeeze(1)
        pf = torch.zeros(batch_size).index_put((active,), lp.gather(1, a[:, None]).squeeze(1))
        log_pf.append(pf)
        stop = a == env.stop_action
        nxt = env.step(cur, a)
        pb = torch.zeros(batch_size)
        pb[active[~stop]] = -env.log_n_parents(nxt[~stop])
        log_pb.append(pb)
        states[active] = nxt
        done[active[stop]] = True
    loss = trajectory_balance_loss(
        model.log_z, torch.stack(log_pf).sum(0), torch.stack(log_pb).sum(0), env.log_reward(states).float()
    )
    opt.zero_grad()
    loss.backward()
    opt.step()


def time_reference_base(env, cap_s, eval_every=50, seed=0):
    torch.manual_seed(seed)
    model = GFlowNet(env)
    opt = torch.optim.Adam([{"params": model.net.parameters(), "lr": 1e-3}, {"params": [model.log_z], "lr": 0.1}])
    train, steps, l1 = 0.0, 0, float("nan")
    while train < cap_s:
        t0 = time.perf_counter()
        for _ in range(eval_every):
            reference_tb_step(model, opt)
        train += time.perf_counter() - t0
        steps += eval_every
        l1 = exact_l1_to_reward(model)
        if l1 <= TARGET:
            return {"steps": steps, "traj_per_s": 16 * steps / train, "time_to_target_s": train, "l1": l1}
    return {"steps": steps, "traj_per_s": 16 * steps / train, "time_to_target_s": None, "l1": l1}


DEVICE = torch.device("cpu")


def time_ours_base(env, cap_s, threads=1):
    """Our trainer (shipped settings) until L1 ≤ 0.1, with a step budget of about ``cap_s``."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GFlowNet(env).to(DEVICE)
    cfg = GFlowNetTrainConfig(steps=int(cap_s * 80), batch_size=128, lr=2e-3, eval_every=50, target_l1=TARGET)
    h = train_gflownet(model, cfg, progress=False)
    torch.set_num_threads(1)
    reached = [t for t, l in zip(h["eval_time"], h["l1"]) if l <= TARGET]
    n = h["step"][-1]
    return {
        "steps": n,
        "traj_per_s": 128 * n / h["train_time_s"],
        "time_to_target_s": reached[0] if reached else None,
        "l1": h["l1"][-1],
    }


def classifier_time_to_target(bases, config, cap_s, eval_every):
    clf = make_classifier("shubert_sigmoid", bases[0].env)
    comps = two_base_compositions()
    state = {"train": 0.0, "t": time.perf_counter(), "reached": None, "worst": None}

    def cb(step, c):
        state["train"] += time.perf_counter() - state["t"]
        rows = evaluate_compositions(bases, comps, c, oracle=False)
        worst = max(max(r["l1_anchored_learned"], r["l1_paper_learned"]) for r in rows)
        state["worst"] = worst
        if worst <= TARGET and state["reached"] is None:
            state["reached"] = (step, state["train"])
        state["t"] = time.perf_counter()
        return {"worst": worst}

    steps = config.steps
    train_classifier(clf, bases, config, progress=False, callback=cb, callback_every=eval_every)
    state["train"] += time.perf_counter() - state["t"]
    n_traj = 2 * config.batch_per_base * steps
    return {
        "steps": steps,
        "traj_per_s": n_traj / state["train"],
        "train_s": state["train"],
        "time_to_target_s": state["reached"][1] if state["reached"] else None,
        "worst_final": state["worst"],
    }


def fmt(v, f="{:.1f}"):
    return "not reached" if v is None else f.format(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cap-s", type=float, default=600, help="training-time cap per reference run")
    ap.add_argument("--quick", action="store_true", help="small caps (a smoke run of this script)")
    ap.add_argument(
        "--only",
        choices=["bases", "classifier", "slider"],
        nargs="*",
        default=["bases", "classifier", "slider"],
        help="parts to run",
    )
    ap.add_argument("--device", default="cpu", help="where our trainers run")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    cap = 20 if args.quick else args.cap_s
    torch.set_num_threads(1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) unless stated; our trainers on {DEVICE}; "
        f"target L1 ≤ {TARGET}\n"
    )

    if "bases" in args.only:
        bench_bases(cap)
    if "classifier" in args.only:
        bench_classifier(cap, args.quick)
    if "slider" in args.only:
        bench_slider()


def bench_bases(cap):
    print("## Base GFlowNet training (32×32 grid)\n")
    print("| base | trainer | threads | trajectories/s | steps run | time to L1 ≤ 0.1 (s) | final L1 |")
    print("|---|---|---|---|---|---|---|")
    speedups = {}
    for reward, temp in [("symmetric_shubert", 0.5), ("diag_sigmoid", 1.0)]:
        env = GridEnv(32, 2, reward, temp)
        ref = time_reference_base(env, cap)
        print(
            f"| {reward} T={temp:g} | reference (batch 16) | 1 | {ref['traj_per_s']:.0f} | {ref['steps']} | "
            f"{fmt(ref['time_to_target_s'])} | {ref['l1']:.3f} |",
            flush=True,
        )
        for threads in (1, 2):
            ours = time_ours_base(env, cap, threads)
            print(
                f"| {reward} T={temp:g} | ours (batch 128) | {threads} | {ours['traj_per_s']:.0f} | {ours['steps']} | "
                f"{fmt(ours['time_to_target_s'])} | {ours['l1']:.3f} |",
                flush=True,
            )
            if threads == 1:
                speedups[reward] = (ref["time_to_target_s"] or float("inf"), ours["time_to_target_s"])
    for k, (r, o) in speedups.items():
        bound = "≥ " if r == float("inf") else ""
        rr = cap if r == float("inf") else r
        print(f"\nspeed-up to L1 ≤ 0.1 on {k}: {bound}{rr / o:.1f}×" if o else f"\n{k}: ours not reached")


def bench_classifier(cap, quick):
    print("\n## Classifier training (Shubert/sigmoid, α-conditioned, shipped bases)\n")
    bases, _ = load_grid_pair("shubert_sigmoid")
    print(
        "| trainer | trajectories/s | steps | train time (s) | time until all 9 compositions ≤ 0.1 (s) "
        "| worst final L1 |"
    )
    print("|---|---|---|---|---|---|")
    ref_steps = 400 if quick else 15000
    ref_cfg = ClassifierTrainConfig(
        steps=ref_steps,
        batch_per_base=64,
        warmup_steps=min(3000, ref_steps // 5),
        lr_schedule="constant",
        fast_path=False,
    )
    # the reference runs until the cap: estimate its steps/s first
    probe = classifier_time_to_target(bases, ClassifierTrainConfig(**{**ref_cfg.to_dict(), "steps": 20}), 1e9, 20)
    ref_steps = max(20, min(ref_steps, int(cap * probe["steps"] / probe["train_s"])))
    ref = classifier_time_to_target(
        bases,
        ClassifierTrainConfig(**{**ref_cfg.to_dict(), "steps": ref_steps, "warmup_steps": min(3000, ref_steps // 5)}),
        cap,
        max(20, ref_steps // 10),
    )
    print(
        f"| reference (per-visit rows, network sampling) | {ref['traj_per_s']:.0f} | {ref['steps']} | "
        f"{ref['train_s']:.0f} | {fmt(ref['time_to_target_s'])} | {ref['worst_final']:.3f} |",
        flush=True,
    )
    from sculpting.domains.grid.build import CLASSIFIER_CONFIG

    ours_cfg = CLASSIFIER_CONFIG if not quick else ClassifierTrainConfig(steps=200, warmup_steps=50)
    ours = classifier_time_to_target(bases, ours_cfg, cap, 250 if not quick else 50)
    print(
        f"| ours (shipped settings) | {ours['traj_per_s']:.0f} | {ours['steps']} | {ours['train_s']:.0f} | "
        f"{fmt(ours['time_to_target_s'])} | {ours['worst_final']:.3f} |",
        flush=True,
    )


def bench_slider():
    print("\n## Slider update in notebook 03 (exact guided distribution recomputed + figure redrawn)\n")
    from sculpting.domains.grid.panel import GridSculptingPanel

    bases, clf = load_grid_pair("shubert_sigmoid")
    panel = GridSculptingPanel(bases, clf)
    times = []
    for k in range(60):
        panel.alpha.value = round(0.05 + 0.9 * (k % 30) / 29, 2)
        times.append(1000 * panel.last["seconds"])
    panel.operation.value = "contrast"
    print("| updates | median (ms) | p90 (ms) | max (ms) |\n|---|---|---|---|")
    q = sorted(times)
    print(f"| {len(times)} | {statistics.median(q):.1f} | {q[int(0.9 * len(q))]:.1f} | {q[-1]:.1f} |")


if __name__ == "__main__":
    main()
