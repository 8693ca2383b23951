"""One-line descriptions of models for their ``repr``: what a base, a classifier or a composed
model is (family, composition, α, β, γ, what guides it, the bases' names), not its layer tree
(``model.named_modules()`` still lists that)."""

from __future__ import annotations

__all__ = ["model_name", "n_parameters", "classifier_traits", "composition_text"]


def model_name(model) -> str:
    """A base's name: its checkpoint metadata ``name`` (molecules: its ``objective``, upper-case),
    else its environment's reward name, else its class name (a base fixed at one β: the wrapped
    model's)."""
    inner = getattr(model, "model", None)  # a β-conditional base fixed at one β wraps the model
    if inner is not None and getattr(model, "beta", None) is not None:
        return model_name(inner)
    meta = getattr(model, "meta", None)
    if isinstance(meta, dict) and meta.get("name"):
        return str(meta["name"])
    if isinstance(meta, dict) and meta.get("objective"):
        return str(meta["objective"]).upper()
    reward = getattr(getattr(model, "env", None), "reward_name", None)
    if reward:
        return str(reward)
    return type(model).__name__


def n_parameters(module) -> str:
    """The parameter count, readable: ``'70.1 k'``, ``'1.23 M'``."""
    params = getattr(module, "parameters", None)
    n = sum(p.numel() for p in params()) if callable(params) else 0
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def classifier_traits(classifier) -> str:
    """``'2 bases, 2 slots, α-conditioned'`` (and ``exchangeable``, ``β-conditioned`` where they hold)."""
    traits = [f"{classifier.n_bases} bases", f"{classifier.n_slots} slots"]
    traits += ["α-conditioned"] if getattr(classifier, "alpha_conditioned", False) else []
    traits += ["exchangeable"] if getattr(classifier, "exchangeable", False) else []
    traits += ["β-conditioned"] if getattr(classifier, "context_conditioned", False) else []
    return ", ".join(traits)


def composition_text(composition, bases) -> str:
    """``'p1 ⊗ p2 (α=0.3) of [shubert, sigmoid]'``; a β-conditional base fixed at β adds ``β=…``."""
    names = ", ".join(model_name(b) for b in bases)
    betas = {getattr(b, "beta", None) for b in bases} - {None}
    beta = f", β={next(iter(betas)):g}" if len(betas) == 1 else ""
    return f"{composition.label()}{beta} of [{names}]"
