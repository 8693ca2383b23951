"""An independent judge of colored-digit samples: a small CNN trained on *real* colored digits
that predicts (digit, colour), and support rates of sample sets.

Support rate of a sample set = share of samples whose predicted (digit, colour) type lies in
the expected support (e.g. HM(M1, M2) → {green 0}).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sculpting.infrastructure.checkpoints import load_checkpoint, rebuild, register_loader, save_checkpoint
from sculpting.domains.mnist.data import COLOURS, colour_digits, resize
from sculpting.infrastructure.training_scaffold import keeps_global_rng

__all__ = [
    "DigitColourJudge",
    "judge_dataset",
    "train_judge",
    "support_rate",
    "EXPECTED_SUPPORT",
    "save_judge",
    "load_judge",
]

G, R = COLOURS["green"], COLOURS["red"]
#: composition / base name -> set of (digit, colour index) types
EXPECTED_SUPPORT = {
    "M1": {(0, R), (0, G)},
    "M2": {(0, G), (1, G)},
    "MN1": {(d, G) for d in range(4)},
    "MN2": {(d, c) for d in (0, 1) for c in (R, G)},
    "MN3": {(d, c) for d in (0, 2) for c in (R, G)},
    "M1⊗M2": {(0, G)},
    "M1◑M2": {(0, R)},
    "M2◑M1": {(1, G)},
    "MN y=123": {(0, G)},
}


class DigitColourJudge(nn.Module):
    """``[B, 3, S, S]`` → (digit logits ``[B, 10]``, colour logits ``[B, 2]``)."""

    def __init__(self, image_size: int = 16, width: int = 32):
        super().__init__()
        self.image_size = image_size
        self.config = {"image_size": image_size, "width": width}
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
        )
        feat = 2 * width * (image_size // 4) ** 2
        self.digit = nn.Sequential(nn.Linear(feat, 128), nn.ReLU(), nn.Linear(128, 10))
        self.colour = nn.Linear(feat, 2)

    def forward(self, x):
        h = self.features(x)
        return self.digit(h), self.colour(h)

    @torch.no_grad()
    def predict(self, x, batch: int = 512):
        """``[B, 2]`` (digit, colour index) of images (clamped to [0, 1] first)."""
        self.eval()
        out = []
        for i in range(0, len(x), batch):
            d, c = self(x[i : i + batch].clamp(0, 1))
            out.append(torch.stack([d.argmax(1), c.argmax(1)], dim=1))
        return torch.cat(out)


def judge_dataset(digits, image_size: int = 16):
    """Every digit in red and in green: (images ``[2N, 3, S, S]``, types ``[2N, 2]``)."""
    grey = resize(digits.images, image_size)
    imgs = torch.cat([colour_digits(grey, "red"), colour_digits(grey, "green")])
    types = torch.cat([torch.stack([digits.labels, torch.full_like(digits.labels, c)], 1) for c in (R, G)])
    return imgs, types


def _augment(x, gen, max_shift=1, max_noise=0.15):
    """A random 1-pixel shift, and pixel noise of a random scale in [0, max_noise] (clamped to
    [0, 1]) so that the residual noise of short PC runs does not fool the judge."""
    dx, dy = (torch.randint(-max_shift, max_shift + 1, (2,), generator=gen)).tolist()
    x = torch.roll(x, shifts=(dx, dy), dims=(2, 3))
    scale = torch.rand(len(x), 1, 1, 1, generator=gen) * max_noise
    return (x + scale * torch.randn(x.shape, generator=gen)).clamp(0, 1)


@keeps_global_rng
def train_judge(
    digits,
    image_size: int = 16,
    epochs: int = 20,
    batch: int = 128,
    lr: float = 3e-3,
    holdout: float = 0.1,
    width: int = 48,
    seed: int = 0,
    progress: bool = True,
):
    """Train on real colored digits (every digit in red and green) with random 1-pixel shifts and
    pixel noise (see :func:`_augment`).

    The held-out split is made on the grey digits *before* colouring, so no shape seen in
    training (in either colour) is tested. Returns (judge, held-out accuracy of the
    (digit, colour) pair, info).
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(digits.labels), generator=gen)
    n_test = int(holdout * len(perm))

    def split(idx):
        sub = type(digits)(digits.images[idx], digits.labels[idx], digits.source)
        return judge_dataset(sub, image_size)

    (x_test, y_test), (x, y) = split(perm[:n_test]), split(perm[n_test:])
    judge = DigitColourJudge(image_size, width)
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    steps = epochs * (len(x) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.perf_counter()
    for _ in tqdm(range(steps), desc="judge", disable=not progress, mininterval=1.0):
        j = torch.randint(len(x), (batch,), generator=gen)
        judge.train()
        d, c = judge(_augment(x[j], gen))
        loss = F.cross_entropy(d, y[j, 0]) + F.cross_entropy(c, y[j, 1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    acc = float((judge.predict(x_test) == y_test).all(1).float().mean())
    return (
        judge.eval(),
        acc,
        {
            "train_time_s": time.perf_counter() - t0,
            "n_train_images": len(x),
            "n_test_images": len(x_test),
            "source": digits.source,
        },
    )


def support_rate(judge, samples, support) -> float:
    """Share of ``samples`` whose predicted (digit, colour) is in ``support`` (a set of pairs)."""
    pred = judge.predict(samples)
    return float(torch.tensor([tuple(p) in support for p in pred.tolist()]).float().mean())


def save_judge(judge: DigitColourJudge, path, half: bool = False, **meta):
    return save_checkpoint(path, "judge", judge.state_dict(), {"arch": judge.config, **meta}, half)


def load_judge(path) -> DigitColourJudge:
    sd, meta = load_checkpoint(path, "judge")
    return rebuild(lambda: DigitColourJudge(**meta["arch"]), sd, meta, path)


def _register():
    register_loader("judge", load_judge)


_register()
