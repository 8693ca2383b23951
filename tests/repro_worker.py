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
        model, _ = train_base("M1", load_mnist(), DiffusionTrainConfig(steps=1, batch_size=4, seed=3), "smoke",
                              progress=False)
        res["M1"] = digest(model)
    elif what == "molecules":
        from sculpting.domains.molecules.experiments import train_molecule_base
        model, _ = train_molecule_base("seh", 1, preset="smoke", max_frags=3, batch_size=4, seed=5, progress=False)
        res["seh"] = digest(model)
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.devnull)
