"""diffusers models and schedulers with sculpting (extra: ``diffusers``). Nothing is downloaded:
pass models you built or loaded yourself.

**Bases.** :class:`DiffusersScoreModel` turns a ``UNet2DModel`` into a score model, in one of two
conventions:

* ``prediction="epsilon"`` (DDPM, variance preserving): the UNet predicts the noise ε of
  x_t = m_t x_0 + σ_t ε at the discrete timestep t·(N − 1); the score is −ε̂ / σ_t. The continuous
  VP-SDE of a DDPM scheduler with a linear β schedule is β_min = N β_start, β_max = N β_end
  (:meth:`DiffusersScoreModel.from_ddpm`).
* ``prediction="score"`` (score-SDE, variance exploding): the UNet is called with the noise level
  σ_t and returns the score itself (diffusers' ``ScoreSdeVe`` convention).

A **class-conditional** UNet (``num_class_embeds`` / ``class_embed_type``, or any model taking
``class_labels``) gives one base per class: ``DiffusersScoreModel(unet, ..., class_label=k)``, or
all at once with :func:`class_bases`; their classes are then sculpted like any bases.

**Schedulers.** :func:`scheduler_sample` samples any VP score model — a base, or a composition of
bases — with a diffusers scheduler (``DDPMScheduler``, ``DDIMScheduler``,
``DPMSolverMultistepScheduler``, ``EulerDiscreteScheduler``, ...): at timestep k the model's noise
prediction is ε̂ = −σ_t s(x, t) at t = k / (N − 1), for a composed score
s = Σ_i w_i s_i + γ ∇ log Q. ``sc.sample(model, n, sampler=scheduler, steps=...)`` calls it.

**Pipeline.** :class:`SculptingPipeline` (bases, classifier, scheduler) in the diffusers manner:
``pipe(operation, alpha, gamma, num_inference_steps, generator)`` returns images in [0, 1];
``save_pretrained`` / ``from_pretrained`` store the classifier, the scheduler and the composition.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sculpting.infrastructure.checkpoints import (
    CheckpointError,
    load_checkpoint,
    rebuild,
    register_loader,
    register_saver,
    save_checkpoint,
)
from sculpting.compose import _check_memory, compose
from sculpting.diffusion.schedulers import check_schedule, is_scheduler, scheduler_sample  # (re-exported)
from sculpting.diffusion.sde import VESDE, VPSDE, sde_from_config
from sculpting.families import family_of
from sculpting.infrastructure.fingerprint import base_fingerprints
from sculpting.fit import save
from sculpting.infrastructure.pretrained import load_model
from sculpting.infrastructure.training_scaffold import keeps_global_rng

__all__ = [
    "DiffusersScoreModel",
    "class_bases",
    "scheduler_sample",
    "is_scheduler",
    "check_schedule",
    "fit_unet",
    "SculptingPipeline",
    "PipelineOutput",
]


def _unet_shape(unet) -> tuple:
    cfg = unet.config
    size = cfg.sample_size
    h, w = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    return (int(cfg.in_channels), int(h), int(w))


def _is_class_conditional(unet) -> bool:
    cfg = getattr(unet, "config", {})
    get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: getattr(cfg, k, d))
    return get("num_class_embeds", None) is not None or get("class_embed_type", None) is not None


class DiffusersScoreModel(torch.nn.Module):
    """``score(x, t)`` ``[B, C, H, W]`` of a ``UNet2DModel`` under ``sde``.

    Args:
        unet: the model (``sample_size`` int or (H, W)).
        sde: the SDE (default: ``VPSDE()`` for ε-prediction, ``VESDE()`` for score prediction).
        prediction: "epsilon" or "score".
        num_train_timesteps: N, the discrete timesteps of ε-prediction models.
        class_label: the class this base generates, for a class-conditional UNet (required there).
    """

    def __init__(
        self,
        unet,
        sde=None,
        prediction: str = "epsilon",
        num_train_timesteps: int = 1000,
        class_label: int | None = None,
    ):
        super().__init__()
        if (
            isinstance(num_train_timesteps, bool)
            or not isinstance(num_train_timesteps, int)
            or not 2 <= num_train_timesteps <= 100_000
        ):
            raise ValueError(f"num_train_timesteps must be an integer in [2, 100000], got {num_train_timesteps!r}")
        if is_scheduler(sde):
            raise TypeError(
                f"sde= takes an SDE, got a {type(sde).__name__}: for a DDPM scheduler use "
                "DiffusersScoreModel.from_ddpm(unet, scheduler)"
            )
        if prediction not in ("epsilon", "score"):
            raise ValueError(f"prediction must be 'epsilon' (VP, DDPM) or 'score' (VE), got {prediction!r}")
        if _is_class_conditional(unet) and class_label is None:
            raise ValueError("this UNet is class-conditional: pass class_label= (one base per class, see class_bases)")
        if class_label is not None:
            if isinstance(class_label, bool) or not isinstance(class_label, int) or class_label < 0:
                raise TypeError(f"class_label must be a non-negative int, got {class_label!r}")
            n = getattr(unet.config, "num_class_embeds", None)
            if n is not None and class_label >= n:
                raise ValueError(f"class_label {class_label} ≥ num_class_embeds {n}")
        self.unet, self.prediction, self.num_train_timesteps = unet, prediction, int(num_train_timesteps)
        self.class_label = class_label
        self.sde = sde or (VPSDE() if prediction == "epsilon" else VESDE())
        self.image_shape = _unet_shape(unet)

    @classmethod
    def from_ddpm(cls, unet, scheduler, class_label: int | None = None):
        """From a ``DDPMScheduler`` (or any scheduler with a linear β schedule and ε prediction)."""
        c = scheduler.config
        if c.get("beta_schedule", "linear") != "linear":
            raise ValueError(f"only the linear β schedule maps to the VP-SDE here, got {c['beta_schedule']!r}")
        if c.get("prediction_type", "epsilon") != "epsilon":
            raise ValueError(f"only ε-prediction is supported, got {c['prediction_type']!r}")
        n = int(c["num_train_timesteps"])
        return cls(unet, VPSDE(c["beta_start"] * n, c["beta_end"] * n), "epsilon", n, class_label)

    @property
    def schedule(self) -> dict:
        """The schedule this base was trained with (what a sampler's scheduler must match)."""
        out = {
            "num_train_timesteps": self.num_train_timesteps,
            "prediction_type": self.prediction,
            "sde": self.sde.config,
        }
        if isinstance(self.sde, VPSDE):
            out.update(
                beta_schedule="linear",
                beta_start=self.sde.beta_min / self.num_train_timesteps,
                beta_end=self.sde.beta_max / self.num_train_timesteps,
            )
        return out

    def fingerprint_extra(self) -> dict:
        """What besides the UNet's weights decides this base (hashed by ``weights_sha256``): its class
        label (bases of one class-conditional UNet differ only there) and its schedule."""
        return {"class_label": self.class_label, **self.schedule}

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def _call(self, x, timestep):
        kw = {}
        if self.class_label is not None:
            kw["class_labels"] = torch.full((len(x),), self.class_label, dtype=torch.long, device=x.device)
        return self.unet(x, timestep, **kw).sample

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        std = self.sde.marginal_std(t).to(x.device, x.dtype)
        if self.prediction == "epsilon":
            eps = self._call(x, t * (self.num_train_timesteps - 1))
            return -eps / std.reshape(-1, *[1] * (x.dim() - 1))
        return self._call(x, std)


def class_bases(unet, scheduler=None, labels=None, **options) -> list:
    """One base per class of a class-conditional UNet (sharing its weights): ``labels`` (default:
    every class of ``num_class_embeds``), built with :meth:`DiffusersScoreModel.from_ddpm` when a
    ``scheduler`` is given, else with ``options`` for :class:`DiffusersScoreModel`."""
    if not _is_class_conditional(unet):
        raise ValueError("class_bases needs a class-conditional UNet (num_class_embeds / class_embed_type)")
    if labels is None:
        n = getattr(unet.config, "num_class_embeds", None)
        if n is None:
            raise ValueError("pass labels= (the UNet does not say how many classes it has)")
        labels = range(int(n))
    if scheduler is not None:
        return [DiffusersScoreModel.from_ddpm(unet, scheduler, class_label=int(k)) for k in labels]
    return [DiffusersScoreModel(unet, class_label=int(k), **options) for k in labels]


@keeps_global_rng
def fit_unet(
    unet,
    scheduler,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
) -> list:
    """Train a ``UNet2DModel`` in place by the DDPM ε-objective ‖ε̂(√ᾱ_k x_0 + √(1−ᾱ_k) ε, k[, y]) − ε‖²
    on ``images`` ``[M, C, H, W]`` in [−1, 1] (with class ``labels`` ``[M]`` for a class-conditional
    one); a private generator seeded ``seed`` draws everything. Returns the losses."""
    from tqdm.auto import trange

    dev = next(unet.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    abar = scheduler.alphas_cumprod.to(dev)
    opt = torch.optim.Adam(unet.parameters(), lr=lr)
    losses = []
    unet.train()
    for _ in trange(steps, disable=not progress, desc="unet"):
        j = torch.randint(len(images), (batch_size,), generator=gen, device=dev)
        x0 = images[j].to(dev)
        k = torch.randint(len(abar), (batch_size,), generator=gen, device=dev)
        eps = torch.randn(x0.shape, generator=gen, device=dev)
        a = abar[k].reshape(-1, 1, 1, 1)
        kw = {} if labels is None else {"class_labels": labels[j].to(dev)}
        pred = unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, k, **kw).sample
        loss = torch.nn.functional.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    unet.eval()
    return losses


class PipelineOutput(dict):
    """``images`` ``[B, C, H, W]`` in [0, 1] (also as ``output["images"]``)."""

    @property
    def images(self):
        return self["images"]


class SculptingPipeline:
    """Sample compositions of diffusion ``bases`` with a ``classifier`` and a diffusers ``scheduler``.

        pipe = SculptingPipeline(bases, classifier, DDIMScheduler(...))
        images = pipe("harmonic", alpha=0.5, gamma=1.0, num_inference_steps=50,
                      generator=torch.Generator().manual_seed(0), batch_size=16).images
        pipe.save_pretrained("my_pipe"); SculptingPipeline.from_pretrained("my_pipe", bases)

    ``operation`` / ``alpha`` / ``gamma`` default to the pipeline's stored composition.
    """

    def __init__(self, bases, classifier, scheduler, operation="harmonic", alpha: float = 0.5, gamma: float = 1.0):
        if not is_scheduler(scheduler):
            raise TypeError(f"scheduler must be a diffusers scheduler, got {type(scheduler).__name__}")
        self.bases, self.classifier, self.scheduler = list(bases), classifier, scheduler
        self.composition = {"operation": operation, "alpha": alpha, "gamma": gamma}
        model = self.compose(operation, alpha, gamma)  # checks the parts belong together now, not at the first call
        self.composition = {"operation": operation, "alpha": float(alpha), "gamma": float(gamma)}
        if not isinstance(model.sde, VPSDE):
            raise ValueError(
                "a diffusers scheduler samples variance-preserving bases; these diffuse under "
                f"{type(model.sde).__name__}"
            )
        check_schedule(model, scheduler)

    def compose(self, operation=None, alpha=None, gamma=None):
        """The composed score model (``sc.compose``) for these settings."""

        c = self.composition
        return compose(
            self.bases,
            self.classifier,
            c["operation"] if operation is None else operation,
            alpha=c["alpha"] if alpha is None else alpha,
            gamma=c["gamma"] if gamma is None else gamma,
        )

    def __call__(
        self,
        operation=None,
        alpha=None,
        gamma=None,
        num_inference_steps: int = 50,
        generator=None,
        batch_size: int = 1,
        output_type: str = "pt",
        progress: bool = False,
    ) -> PipelineOutput:
        if output_type not in ("pt", "np"):
            raise ValueError(f"output_type must be 'pt' or 'np', got {output_type!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__} "
                "(for a seed: torch.Generator().manual_seed(5))"
            )
        model = self.compose(operation, alpha, gamma)

        _check_memory(model, family_of(model), batch_size)
        x = scheduler_sample(model, batch_size, self.scheduler, num_inference_steps, generator, progress)
        images = (x / 2 + 0.5).clamp(0, 1)
        if output_type == "np":
            images = images.permute(0, 2, 3, 1).cpu().numpy()
        return PipelineOutput(images=images)

    def save_pretrained(self, directory) -> Path:
        """``classifier.pt`` (+ ``.json``), ``scheduler/`` (diffusers' own format) and ``composition.json``."""

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save(self.classifier, d / "classifier.pt")
        self.scheduler.save_pretrained(d / "scheduler")

        info = {
            **self.composition,
            "n_bases": len(self.bases),
            "image_shape": list(self.bases[0].image_shape),
            "class_labels": [getattr(b, "class_label", None) for b in self.bases],
            "base_fingerprints": base_fingerprints(self.bases),
        }
        (d / "composition.json").write_text(json.dumps(info, indent=2))
        return d

    @staticmethod
    def _read_composition(d: Path) -> dict:
        """``composition.json``, every field checked (a clear error for a garbage or partial file)."""
        path = d / "composition.json"
        if not path.is_file():
            raise ValueError(f"{d} holds no composition.json: not a folder written by save_pretrained")
        try:
            info = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not valid JSON ({e}); write it again with pipe.save_pretrained") from None
        if not isinstance(info, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(info).__name__}")
        need = {
            "operation": str,
            "alpha": (int, float),
            "gamma": (int, float),
            "n_bases": int,
            "image_shape": list,
            "class_labels": list,
        }
        missing = sorted(k for k in need if k not in info)
        if missing:
            raise ValueError(f"{path} lacks {missing}; write it again with pipe.save_pretrained")
        bad = sorted(k for k, t in need.items() if isinstance(info[k], bool) or not isinstance(info[k], t))
        if bad:
            raise ValueError(f"{path} has fields of the wrong type: {bad}")
        if len(info["class_labels"]) != info["n_bases"]:
            raise ValueError(f"{path} lists {len(info['class_labels'])} class labels for {info['n_bases']} bases")
        return info

    @classmethod
    def from_pretrained(cls, directory, bases, **overrides) -> "SculptingPipeline":
        """Rebuild with your ``bases`` (in the stored order; their count and image shape are checked)."""
        import os

        import diffusers

        if not isinstance(directory, (str, os.PathLike)) or not str(directory):
            raise TypeError(f"directory must be a folder path (str or Path), got {directory!r}")
        d = Path(directory)
        if not d.is_dir():
            raise ValueError(f"{d} is not a folder (SculptingPipeline.save_pretrained writes one)")
        info = cls._read_composition(d)
        if isinstance(bases, (str, bytes)) or not hasattr(bases, "__iter__"):
            raise TypeError(f"bases must be a list of base models, got {type(bases).__name__}")
        bases = list(bases)
        if not all(hasattr(b, "image_shape") and hasattr(b, "score") for b in bases):
            raise TypeError("bases must be diffusion base models (image_shape, score)")
        if not bases or len(bases) != info["n_bases"] or list(bases[0].image_shape) != info["image_shape"]:
            raise ValueError(
                f"{d} was saved for {info['n_bases']} bases of shape {info['image_shape']}, got "
                f"{len(bases)}" + (f" of shape {list(bases[0].image_shape)}" if bases else "")
            )
        labels = [getattr(b, "class_label", None) for b in bases]
        if labels != info["class_labels"]:
            raise ValueError(
                f"{d} was saved for bases of class labels {info['class_labels']} (in this order), got "
                f"{labels}: pass the bases in the stored order"
            )
        if "base_fingerprints" in info:
            got = [f["sha256"] for f in base_fingerprints(bases)]
            want = [f.get("sha256") if isinstance(f, dict) else f for f in info["base_fingerprints"]]
            if got != want:
                bad = [i + 1 for i, (a, b) in enumerate(zip(want, got)) if a != b] or "count"
                raise ValueError(
                    f"{d} was saved with other bases: base(s) {bad} differ (weights, class label or schedule)"
                )
        unknown = sorted(set(overrides) - {"operation", "alpha", "gamma"})
        if unknown:
            raise TypeError(f"from_pretrained takes the overrides operation, alpha, gamma; got {unknown}")
        cfg_path = d / "scheduler" / "scheduler_config.json"
        try:
            sched_cfg = json.loads(cfg_path.read_text())
            scheduler = diffusers_class(sched_cfg["_class_name"], diffusers.SchedulerMixin, cfg_path).from_pretrained(
                d / "scheduler"
            )
        except FileNotFoundError:
            raise ValueError(
                f"{d} holds no scheduler/scheduler_config.json; save it with pipe.save_pretrained"
            ) from None
        except Exception as e:  # noqa: BLE001 (diffusers raises what its constructors raise on bad values)
            raise ValueError(
                f"{cfg_path} does not describe a diffusers scheduler ({type(e).__name__}: {e}); "
                "save it again with pipe.save_pretrained"
            ) from None
        n_train = scheduler.config.get("num_train_timesteps")
        if isinstance(n_train, bool) or not isinstance(n_train, int) or not 2 <= n_train <= 100_000:
            raise ValueError(
                f"{cfg_path}: num_train_timesteps must be an integer in [2, 100000], got {n_train!r}; "
                "save the scheduler again with pipe.save_pretrained"
            )
        comp = {k: overrides.get(k, info[k]) for k in ("operation", "alpha", "gamma")}
        return cls(bases, load_model(d / "classifier.pt"), scheduler, **comp)


# ------------------------------------------------------------------ saving a diffusers base
def save_diffusers_base(model: DiffusersScoreModel, path, **meta):
    """Save a :class:`DiffusersScoreModel`: the UNet's weights, its class and config, and what makes
    the base (class label, prediction type, ``num_train_timesteps``, SDE)."""

    unet_cfg = {k: v for k, v in dict(model.unet.config).items() if not k.startswith("_")}
    info = {
        "unet_class": type(model.unet).__name__,
        "unet_config": json.loads(json.dumps(unet_cfg, default=list)),
        "prediction": model.prediction,
        "num_train_timesteps": model.num_train_timesteps,
        "class_label": model.class_label,
        "sde": model.sde.config,
    }
    return save_checkpoint(path, "diffusers_base", model.state_dict(), {**info, **meta})


def diffusers_class(name, base: type, where) -> type:
    """The diffusers class ``name`` that a file names, if it is a subclass of ``base`` exported by
    diffusers (a scheduler, a model); anything else a file names is refused, never called."""
    import diffusers

    cls = getattr(diffusers, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(
            f"{where} names {name!r}, which is not a diffusers {base.__name__} class; files select "
            f"only such classes (e.g. {'DDPMScheduler' if base.__name__ == 'SchedulerMixin' else 'UNet2DModel'})"
        )
    return cls


def load_diffusers_base(path) -> DiffusersScoreModel:
    import diffusers

    sd, meta = load_checkpoint(path, "diffusers_base")
    try:
        unet_cls = diffusers_class(meta["unet_class"], diffusers.ModelMixin, path)
        cfg, sde = dict(meta["unet_config"]), sde_from_config(meta["sde"])
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable diffusers-base metadata ({type(e).__name__}: {e})") from e
    return rebuild(
        lambda: DiffusersScoreModel(
            unet_cls.from_config(cfg), sde, meta["prediction"], meta["num_train_timesteps"], meta["class_label"]
        ),
        sd,
        meta,
        path,
    )


def _register() -> None:
    register_loader("diffusers_base", load_diffusers_base)
    register_saver(DiffusersScoreModel, save_diffusers_base)


_register()
