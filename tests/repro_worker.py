"""Run by tests/test_reproducibility.py in fresh processes: train tiny models, print weight hashes."""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch


def digest(module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(what: str, out: str):
    torch.set_num_threads(1)
    res = {}
    if what == "grid":
        from sculpting.domains.grid import build
        from sculpting.gflownet.io import load_classifier, load_gflownet

        build.main(["--smoke", "--out", out])
        for p in sorted(Path(out).glob("*.pt")):
            res[p.name] = digest((load_classifier if p.name.startswith("classifier") else load_gflownet)(p))
    elif what == "mnist":
        from sculpting.diffusion.model import DiffusionTrainConfig
        from sculpting.domains.mnist.data import load_mnist
        from sculpting.domains.mnist.experiments import train_base

        model, _ = train_base(
            "M1", load_mnist(), DiffusionTrainConfig(steps=1, batch_size=4, seed=3), "smoke", progress=False
        )
        res["M1"] = digest(model)
    elif what == "molecules":
        from sculpting.domains.molecules.experiments import train_molecule_base

        model, _ = train_molecule_base("seh", 1, preset="smoke", max_frags=3, batch_size=4, seed=5, progress=False)
        res["seh"] = digest(model)
    elif what == "api":
        res = api_script()
    print(json.dumps(res))


def api_script() -> dict:
    """One user script over every domain, public calls only, a seed passed to every call. torch's
    global generator is never seeded here (torch seeds it differently in each process); the script
    also checks that no call changed it."""
    import sculpting as sc
    from sculpting.diffusion.model import DiffusionTrainConfig, ScoreModel, train_score_model
    from sculpting.domains.bitstrings import BitStringEnv
    from sculpting.domains.grid import GridEnv
    from sculpting.gflownet.policy import GFlowNet
    from sculpting.gflownet.training import GFlowNetTrainConfig, train_gflownet

    state = torch.get_rng_state()
    res = {}
    for name, envs in (
        ("grid", [GridEnv(6, 2, "circle1"), GridEnv(6, 2, "circle2")]),
        ("bitstrings", [BitStringEnv(4, "ones"), BitStringEnv(4, "alternating")]),
    ):
        bases = [GFlowNet(e, hidden=16, seed=i) for i, e in enumerate(envs)]
        for i, b in enumerate(bases):
            train_gflownet(b, GFlowNetTrainConfig(steps=20, batch_size=8, eval_every=0, seed=i), progress=False)
        clf = sc.fit_classifier(bases, "harmonic", {"steps": 20}, progress=False, seed=7)
        x = sc.sample(sc.compose(bases, clf, "harmonic"), 16, seed=3)
        smc = sc.smc(sc.compose(bases, clf, "contrast"), 32, seed=4, resample_threshold=1.0)
        res[name] = [digest(b) for b in bases] + [
            digest(clf),
            hashlib.sha256(x.numpy().tobytes()).hexdigest(),
            hashlib.sha256(smc.states.numpy().tobytes() + smc.log_weights.numpy().tobytes()).hexdigest(),
        ]
    images = torch.linspace(-1, 1, 8 * 3 * 8 * 8).reshape(8, 3, 8, 8)
    dbases = []
    for i in range(2):
        m = ScoreModel(3, "smoke", image_size=8, seed=i)
        train_score_model(
            m, images.flip(0) if i else images, DiffusionTrainConfig(steps=3, batch_size=4, seed=i), progress=False
        )
        dbases.append(m)
    clf = sc.fit_classifier(
        dbases,
        "harmonic",
        {"pool_size": 8, "pool_steps": 3, "updates": 3, "batch": 4},
        progress=False,
        seed=5,
        arch={"trunk": (4, 8), "hidden": 8, "embed_dim": 8},
    )
    x = sc.sample(sc.compose(dbases, clf, "harmonic"), 2, seed=1, steps=3)
    xs = sc.sample(sc.compose(dbases, clf, "harmonic"), 4, seed=1, steps=3, sampler="smc", particles=2)
    res["diffusion"] = [digest(b) for b in dbases] + [
        digest(clf),
        hashlib.sha256(x.numpy().tobytes()).hexdigest(),
        hashlib.sha256(xs.numpy().tobytes()).hexdigest(),
    ]
    from molecule_data import HAVE_DATA

    if HAVE_DATA:
        from sculpting.domains.molecules.env import FragmentGraphEnv
        from sculpting.domains.molecules.policy import BetaConditioning, MoleculeGFlowNet

        mbases = []
        for i, obj in enumerate(("seh", "sa")):
            m = MoleculeGFlowNet(FragmentGraphEnv(3, obj), width=16, n_layers=1, seed=i)
            train_gflownet(
                m,
                GFlowNetTrainConfig(steps=2, batch_size=4, eval_every=0, seed=i),
                progress=False,
                conditioning=BetaConditioning(),
            )
            mbases.append(m)
        clf = sc.fit_classifier(
            mbases,
            "harmonic",
            {"steps": 2, "batch_per_base": 4},
            progress=False,
            seed=2,
            beta=16.0,
            arch={"width": 16, "n_layers": 1},
        )
        x = sc.sample(sc.compose(mbases, clf, "harmonic", beta=16.0), 4, seed=1)
        res["molecules"] = [digest(b) for b in mbases] + [digest(clf), hashlib.sha256(x.numpy().tobytes()).hexdigest()]
    res["global_rng_untouched"] = bool(torch.equal(state, torch.get_rng_state()))
    return res


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.devnull)
