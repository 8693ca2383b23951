"""Faster diffusion training steps on a GPU: channels-last memory, bf16 autocast, ``torch.compile``.

A small U-Net at batch 32 leaves a GPU idle between hundreds of short kernel launches (9 ms a
step on an H200 that multiplies at ~790 TFLOP/s). Three switches, each off by default, change how
the denoising-score-matching loss L = mean_b Σ_pixels (σ_t s_θ(x_t, t) + z)² is computed, never
what it is (the random t, z and batch indices are drawn as before, from the run's generator):

* ``channels_last`` — NHWC memory for the U-Net and its inputs (tensor-core friendly convolutions);
  the same numbers up to floating-point reassociation.
* ``bf16`` — the U-Net's forward (and so its backward) under ``torch.autocast(dtype=bfloat16)``;
  the score is cast back to float32 before the loss, and the weights, gradients, optimiser and EMA
  stay float32. The loss curve matches float32 within noise (``tests/test_fast_training.py``).
* ``compile`` — the loss function through ``torch.compile`` (fused kernels); ``cudagraphs`` uses
  the ``reduce-overhead`` mode, which replays the whole forward and backward as CUDA graphs.

``FastPath.parse("auto", device)`` turns on all three on CUDA (graphs included) and none on the
CPU. The state dict is untouched (the module is not wrapped), so checkpoints load anywhere.

Sampling (``sc.sample(model, n, fast=...)``, diffusion models) takes ``channels_last`` and ``bf16``
(``"auto"``: both on CUDA): :meth:`FastPath.sampling` puts every network of the model (bases, nested
compositions, classifier) in channels-last for the call and back afterwards, and runs the score
calls under bf16 autocast; the sampler's state, the noise and the guidance gradient's leaf stay
float32, and so do the samples.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

from sculpting.infrastructure.runtime import device_of

__all__ = ["FastPath", "FAST_SWITCHES"]

#: what ``--fast`` accepts (comma-separated): each switch, ``auto`` (all on CUDA), ``off``
FAST_SWITCHES = ("channels_last", "bf16", "compile", "cudagraphs")


@dataclass(frozen=True)
class FastPath:
    channels_last: bool = False
    bf16: bool = False
    compile: str | None = None  # None, or a torch.compile mode ("default", "reduce-overhead")

    @classmethod
    def parse(cls, spec, device="cpu") -> "FastPath":
        """``spec``: None / False / ``"off"`` (nothing), True / ``"auto"`` (everything on CUDA, nothing
        on the CPU), a FastPath, or a comma list of :data:`FAST_SWITCHES` (``"channels_last,bf16"``)."""
        if isinstance(spec, FastPath):
            return spec
        if spec is None or spec is False or spec == "off" or spec == "":
            return cls()
        if spec is True or spec == "auto":
            if torch.device(device).type == "cuda":
                return cls(channels_last=True, bf16=True, compile="reduce-overhead")
            return cls()
        if not isinstance(spec, str):
            raise TypeError(f"fast must be 'off', 'auto' or a comma list of {FAST_SWITCHES}, got {spec!r}")
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        bad = [p for p in parts if p not in FAST_SWITCHES]
        if bad:
            raise ValueError(f"unknown fast-path switch(es) {bad}; choose from {FAST_SWITCHES}, 'auto' or 'off'")
        mode = "reduce-overhead" if "cudagraphs" in parts else ("default" if "compile" in parts else None)
        return cls(channels_last="channels_last" in parts, bf16="bf16" in parts, compile=mode)

    @property
    def on(self) -> bool:
        return self.channels_last or self.bf16 or self.compile is not None

    @property
    def label(self) -> str:
        """The switches as ``--fast`` spells them ("off" when none)."""
        parts = [n for n, v in (("channels_last", self.channels_last), ("bf16", self.bf16)) if v]
        parts += {None: [], "default": ["compile"], "reduce-overhead": ["cudagraphs"]}.get(
            self.compile, [f"compile={self.compile}"]
        )
        return ",".join(parts) or "off"

    def to_dict(self) -> dict:
        return asdict(self)

    def prepare(self, model: torch.nn.Module) -> None:
        """Put ``model`` in the memory format of this path (in place; the values are unchanged)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, C, H, W]`` in the memory format of this path."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self, device) -> contextlib.AbstractContextManager:
        """bf16 autocast on ``device`` (or nothing)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)

    @contextlib.contextmanager
    def sampling(self, model):
        """Run a sampler of ``model`` (a score model or a composition) on this path (module docs)."""
        modules = _networks(model)
        if self.channels_last:
            for m in modules:
                m.to(memory_format=torch.channels_last)
        try:
            with self.autocast(_device(model)):
                yield
        finally:
            if self.channels_last:
                for m in modules:
                    m.to(memory_format=torch.contiguous_format)

    def wrap(self, fn):
        """``fn`` compiled with this path's mode (or ``fn`` itself)."""
        if self.compile is None:
            return fn
        return torch.compile(fn, mode=self.compile, dynamic=False)


def _device(model) -> torch.device:
    return device_of(model)


def _networks(model) -> list:
    """The ``nn.Module`` s a (composed) score model computes with: itself, or its bases' (recursively)
    and its classifier's."""
    if isinstance(model, torch.nn.Module):
        return [model]
    out = []
    for b in getattr(model, "bases", []):
        out += _networks(b)
    clf = getattr(model, "classifier", None)
    if isinstance(clf, torch.nn.Module):
        out.append(clf)
    return out
