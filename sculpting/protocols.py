"""The interfaces a model or an environment must offer to be sculpted (``typing.Protocol``).

Bring your own: anything with these attributes works with :func:`sculpting.compose`,
:func:`sculpting.sample` and (for enumerable environments) the exact solvers. Shapes: ``B`` a
batch, ``A`` = ``n_actions`` (the last one, ``stop_action``, emits the current state as the
terminal object), ``N`` = ``n_states``. See ``docs/own_models.md`` for a worked example.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["GFlowNetEnv", "EnumerableEnv", "GFlowNetBase", "DiffusionBase", "SDE", "check_env"]


@runtime_checkable
class GFlowNetEnv(Protocol):
    """A DAG environment with tensor states (every state a row of one tensor).

    Attributes:
        n_actions: A; ``stop_action`` = A − 1.
        max_trajectory_length: an upper bound on the number of actions, the stop included.
        feature_dim: the width of ``encode``.
        space: a JSON-able dict; two models can be composed when their ``space`` is equal.
    """

    n_actions: int
    stop_action: int
    max_trajectory_length: int
    feature_dim: int
    space: dict

    def initial_states(self, batch_size: int) -> torch.Tensor: ...  # [B, *S]
    def action_mask(self, states: torch.Tensor) -> torch.Tensor: ...  # [B, A] bool
    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...  # [B, *S]; stop: unchanged
    def log_n_parents(self, states: torch.Tensor) -> torch.Tensor: ...  # [B] log #parents (uniform P_B)
    def log_reward(self, states: torch.Tensor) -> torch.Tensor: ...  # [B] log R(x)
    def encode(self, states: torch.Tensor) -> torch.Tensor: ...  # [B, feature_dim] float


@runtime_checkable
class EnumerableEnv(GFlowNetEnv, Protocol):
    """A GFlowNet environment small enough to list: the exact dynamic programmes need

    * ``n_states`` N, ``all_states()`` ``[N, *S]`` in index order and ``index(states)`` ``[B]``;
    * ``levels``: a list of index tensors such that every move goes from level l to a later one
      (e.g. level = number of actions taken);
    * ``child_index`` ``[N, A − 1]``: the state move k leads to (N where k is not allowed);
    * ``parent_index`` ``[N, A − 1]``: the state from which move k leads here (N where none);
    * ``state_log_n_parents`` ``[N]`` float64.
    """

    n_states: int
    levels: list
    child_index: torch.Tensor
    parent_index: torch.Tensor
    state_log_n_parents: torch.Tensor

    def all_states(self) -> torch.Tensor: ...
    def index(self, states: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class GFlowNetBase(Protocol):
    """A forward policy: ``log_probs(states)`` ``[B, A]`` masked, normalised log π(a | s)."""

    env: GFlowNetEnv

    def log_probs(self, states: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class BetaConditionalBase(Protocol):
    """A family of GFlowNets indexed by an inverse temperature: ``at_beta(β)`` is a :class:`GFlowNetBase`."""

    env: GFlowNetEnv

    def at_beta(self, beta: float) -> GFlowNetBase: ...


@runtime_checkable
class SDE(Protocol):
    eps: float

    def mean_coef(self, t: torch.Tensor) -> torch.Tensor: ...
    def marginal_std(self, t: torch.Tensor) -> torch.Tensor: ...
    def diffusion(self, t: torch.Tensor) -> torch.Tensor: ...
    def prior_sample(self, shape, generator=None) -> torch.Tensor: ...


@runtime_checkable
class DiffusionBase(Protocol):
    """A score model: ``score(x, t)`` ≈ ∇_x log p_t(x) for x ``[B, *image_shape]``, t ``[B]``."""

    sde: SDE
    image_shape: tuple

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


_ENV_ATTRS = (
    "n_actions",
    "stop_action",
    "max_trajectory_length",
    "feature_dim",
    "space",
    "initial_states",
    "action_mask",
    "step",
    "log_n_parents",
    "log_reward",
    "encode",
)
_ENUM_ATTRS = ("n_states", "levels", "child_index", "parent_index", "state_log_n_parents", "all_states", "index")


def check_env(env, enumerable: bool | None = None):
    """Raise a ``TypeError`` naming every missing attribute of the protocol; return ``env``.
    ``enumerable=None``: the enumerable attributes are required when the env declares the
    capability (``is_enumerable = True``, or any attribute of :class:`EnumerableEnv`)."""
    if enumerable is None:
        enumerable = getattr(env, "is_enumerable", None) is True or any(hasattr(env, a) for a in _ENUM_ATTRS)
    need = _ENV_ATTRS + (_ENUM_ATTRS if enumerable else ())
    missing = [a for a in need if not hasattr(env, a)]
    if missing:
        kind = "EnumerableEnv" if enumerable else "GFlowNetEnv"
        raise TypeError(
            f"{type(env).__name__} does not implement sculpting.protocols.{kind}: missing {', '.join(missing)}"
        )
    if env.stop_action != env.n_actions - 1:
        raise TypeError(f"stop_action must be the last action ({env.n_actions - 1}), got {env.stop_action}")
    return env


def is_enumerable(env) -> bool:
    """Whether ``env`` has every attribute of :class:`EnumerableEnv` (the one meaning of enumerable).
    An env that declares ``is_enumerable = True`` but lacks some is an error naming them."""
    missing = [a for a in _ENUM_ATTRS if not hasattr(env, a)]
    if missing and getattr(env, "is_enumerable", None) is True:
        raise TypeError(
            f"{type(env).__name__} declares is_enumerable = True but lacks "
            f"{', '.join(missing)} (sculpting.protocols.EnumerableEnv)"
        )
    return not missing
