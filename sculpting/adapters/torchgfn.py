"""Any torchgfn ``DiscreteEnv`` and its ``DiscretePolicyEstimator`` as sculpting GFlowNet bases
(extra: ``torchgfn``; tested with HyperGrid, DiscreteEBM, PerfectBinaryTree and BitSequence of
torchgfn 2.4.1).

:class:`TorchGFNEnv` presents a torchgfn environment through :class:`sculpting.protocols.GFlowNetEnv`:

* states are torchgfn's state tensors ``[B, *state_shape]`` (``s0`` first; the sink ``sf`` never
  appears: the exit action, torchgfn's last, is this package's ``stop_action`` and leaves the
  state unchanged, the state being the terminal object);
* ``action_mask`` is torchgfn's ``forward_masks``; ``step`` is the environment's own ``step`` on
  the non-exit rows; ``log_n_parents`` counts the ``backward_masks`` (the uniform backward policy);
* ``encode`` is the preprocessor's output (the estimator's, or one you pass) as float features,
  which is what a learned sculpting classifier reads;
* ``log_reward`` is the environment's ``log_reward``.

Where the environment can enumerate its states (``n_states``, ``all_states``,
``get_states_indices``), the adapter also offers :class:`sculpting.protocols.EnumerableEnv`: it
steps every state with every legal action once to build the child / parent tables and the levels
(longest path from ``s0``), so the exact terminal distribution, the oracle classifier and the exact
classifier estimator apply. Otherwise give ``max_trajectory_length``.

:class:`TorchGFNPolicy` wraps a forward estimator:
``log π(a | s) = log_softmax over the legal a of estimator(states_from_tensor(s))``. Guidance
needs forward policies only; the backward policy a torchgfn model was trained with does not enter
the composed law (``docs/guidance.md``).
"""

from __future__ import annotations

import math
import warnings

import torch

from sculpting.infrastructure.bounds import check_count, check_width
from sculpting.infrastructure.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_into,
    register_loader,
    register_saver,
    save_checkpoint,
)
from sculpting.gflownet.env_kinds import register_env
from sculpting.infrastructure.training_scaffold import check_seed, seeded_init

# torch-geometric (imported by torchgfn) calls torch.jit.script at import time, which torch ≥ 2.10 deprecates
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

from sculpting.gflownet.policy import masked_log_softmax  # noqa: E402

__all__ = [
    "TorchGFNEnv",
    "TorchGFNPolicy",
    "MAX_ENUMERATED_STATES",
    "RECIPES",
    "register_recipe",
    "build",
    "stamp",
    "save_torchgfn_policy",
    "load_torchgfn_policy",
    "hypergrid_policy",
]

#: environments with more states than this are treated as not enumerable (torchgfn's own
#: enumeration / a breadth-first search from s0 where torchgfn has none)
MAX_ENUMERATED_STATES = 2_000_000
MAX_SEARCHED_STATES = 50_000


def _enumeration(gfn_env):
    """``(n_states, all-states tensor)`` if torchgfn can enumerate the env, else None."""
    try:
        n = int(gfn_env.n_states)
        if n > MAX_ENUMERATED_STATES:
            return None
        states = gfn_env.all_states
        if states is None:
            return None
        return n, states.tensor
    except (NotImplementedError, AttributeError, TypeError):
        return None


class TorchGFNEnv:
    """A torchgfn ``DiscreteEnv`` as a sculpting GFlowNet environment (see the module docstring).

    Args:
        gfn_env: the torchgfn environment.
        preprocessor: a torchgfn preprocessor (``output_dim``, called on ``States``) for ``encode``;
            default: the environment's own, else the raw state tensor as floats.
        name: a label for ``space`` (two bases compose when their ``space`` is equal).
        enumerate: ``"auto"``: torchgfn's enumeration where the env has one, else a breadth-first
            search from ``s0`` when it finds at most ``MAX_SEARCHED_STATES`` states (indexed by
            their bytes); ``False``: never.
        max_trajectory_length: actions in the longest trajectory, stop included (needed when the
            env is not enumerated; default then: ``state numel + 1``).
    """

    def __init__(
        self,
        gfn_env,
        preprocessor=None,
        name: str | None = None,
        enumerate="auto",
        max_trajectory_length: int | None = None,
    ):
        for attr in ("n_actions", "s0", "states_from_tensor", "step", "log_reward", "state_shape"):
            if not hasattr(gfn_env, attr):
                raise TypeError(f"expected a torchgfn DiscreteEnv, got {type(gfn_env).__name__} (no {attr})")
        exit_action = getattr(gfn_env, "exit_action", None)
        self.gfn_env = gfn_env
        self.n_actions = int(gfn_env.n_actions)
        self.stop_action = self.n_actions - 1
        if exit_action is not None and int(torch.as_tensor(exit_action).flatten()[0]) != self.stop_action:
            raise ValueError(f"torchgfn's exit action must be the last action ({self.stop_action}), got {exit_action}")
        self.state_shape = tuple(int(d) for d in gfn_env.state_shape)
        self.preprocessor = preprocessor if preprocessor is not None else getattr(gfn_env, "preprocessor", None)
        self.feature_dim = (
            int(self.preprocessor.output_dim) if self.preprocessor is not None else math.prod(self.state_shape)
        )
        self.name = name or type(gfn_env).__name__
        self.space = {
            "kind": "torchgfn",
            "env": type(gfn_env).__name__,
            "name": self.name,
            "state_shape": list(self.state_shape),
            "n_actions": self.n_actions,
        }
        self.config = {"name": self.name}
        self.device = torch.as_tensor(gfn_env.s0).device
        if enumerate not in ("auto", False):
            raise ValueError(f"enumerate must be 'auto' or False, got {enumerate!r}")
        self._keys = None
        found = _enumeration(gfn_env) if enumerate == "auto" else None
        if found is None and enumerate == "auto":
            found = self._search()
        if found is not None:
            self._enumerate(*found)
        else:
            self.max_trajectory_length = int(max_trajectory_length or math.prod(self.state_shape) + 1)

    # ---- conversion
    def wrap(self, states: torch.Tensor):
        """torchgfn ``States`` of a state tensor ``[B, *state_shape]``."""
        return self.gfn_env.states_from_tensor(states.to(self.device))

    # ---- the GFlowNetEnv protocol
    def initial_states(self, batch_size: int) -> torch.Tensor:
        s0 = torch.as_tensor(self.gfn_env.s0, device=self.device)
        return s0.expand(int(batch_size), *self.state_shape).clone()

    def action_mask(self, states: torch.Tensor) -> torch.Tensor:
        return self.wrap(states).forward_masks.to(states.device).bool()

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = states.clone()
        move = actions != self.stop_action
        if bool(move.any()):
            acts = self.gfn_env.actions_from_tensor(actions[move].to(self.device).reshape(-1, 1))
            out[move] = self.gfn_env.step(self.wrap(states[move]), acts).tensor.to(out.device, out.dtype)
        return out

    def log_n_parents(self, states: torch.Tensor) -> torch.Tensor:
        n = self.wrap(states).backward_masks.sum(-1).clamp(min=1)
        return n.float().log().to(states.device)

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.gfn_env.log_reward(self.wrap(states)).double().to(states.device)

    def encode(self, states: torch.Tensor) -> torch.Tensor:
        if self.preprocessor is None:
            return states.float().reshape(len(states), -1)
        with torch.no_grad():
            return self.preprocessor(self.wrap(states)).float().to(states.device).reshape(len(states), -1)

    def to(self, device) -> "TorchGFNEnv":
        """The torchgfn environment stays where it is; states are moved to it and back."""
        return self

    # ---- the EnumerableEnv protocol (set only where torchgfn enumerates the env)
    def index(self, states: torch.Tensor) -> torch.Tensor:
        if self._keys is not None:  # found by search: look the rows up by their bytes
            rows = states.detach().cpu().contiguous().numpy()
            try:
                return torch.tensor([self._keys[r.tobytes()] for r in rows], dtype=torch.long, device=states.device)
            except KeyError as e:
                raise ValueError("a state that is not reachable from s0") from e
        return self.gfn_env.get_states_indices(self.wrap(states)).long().to(states.device)

    def _search(self):
        """Breadth-first search from ``s0``: ``(n, states in discovery order)``, or None when the
        env has more than ``MAX_SEARCHED_STATES`` states."""
        keys: dict = {}
        found = []
        frontier = self.initial_states(1)
        while len(frontier):
            fresh = []
            for row in frontier:
                k = row.cpu().contiguous().numpy().tobytes()
                if k not in keys:
                    keys[k] = len(keys)
                    found.append(row)
                    fresh.append(row)
            if len(keys) > MAX_SEARCHED_STATES:
                return None
            if not fresh:
                break
            f = torch.stack(fresh)
            mask = self.action_mask(f)
            kids = [
                self.step(f[mask[:, a]], torch.full((int(mask[:, a].sum()),), a, device=f.device))
                for a in range(self.n_actions - 1)
                if bool(mask[:, a].any())
            ]
            frontier = torch.cat(kids) if kids else f[:0]
        self._keys = keys
        return len(found), torch.stack(found)

    def all_states(self) -> torch.Tensor:
        return self._all_states

    def _enumerate(self, n: int, states: torch.Tensor):
        idx = self.index(states).cpu()
        if len(states) != n or not torch.equal(torch.sort(idx).values, torch.arange(n, device=idx.device)):
            raise ValueError(
                f"{type(self.gfn_env).__name__}: get_states_indices(all_states) is not a permutation "
                f"of 0..{n - 1}; pass enumerate=False"
            )
        s = torch.empty_like(states)
        s[idx] = states
        self._all_states, self.n_states = s, n
        A = self.n_actions - 1
        mask = self.action_mask(s)
        child = torch.full((n, A), n, dtype=torch.long)
        parent = torch.full((n, A), n, dtype=torch.long)
        ar = torch.arange(n)
        for a in range(A):
            legal = mask[:, a].cpu()
            if not bool(legal.any()):
                continue
            kids = self.index(self.step(s[legal], torch.full((int(legal.sum()),), a, device=s.device))).cpu()
            child[legal, a] = kids
            if len(set(kids.tolist())) != len(kids):
                raise ValueError(
                    f"{type(self.gfn_env).__name__}: action {a} leads two states to one child; the "
                    "exact tables need the action to determine the parent (pass enumerate=False)"
                )
            parent[kids, a] = ar[legal]
        depth = torch.zeros(n, dtype=torch.long)
        for _ in range(n + 1):  # longest path from the sources: every move goes to a later level
            src, act = torch.nonzero(child < n, as_tuple=True)
            new = depth.clone().scatter_reduce_(0, child[src, act], depth[src] + 1, "amax")
            if torch.equal(new, depth):
                break
            depth = new
        self.child_index, self.parent_index = child, parent
        self.levels = [torch.nonzero(depth == d).flatten() for d in range(int(depth.max()) + 1)]
        self.state_log_n_parents = (parent < n).sum(1).clamp(min=1).double().log()
        self.max_trajectory_length = int(depth.max()) + 1


class TorchGFNPolicy(torch.nn.Module):
    """A torchgfn forward ``DiscretePolicyEstimator`` as a sculpting base.

    Args:
        estimator: the forward estimator (``is_backward=False``).
        env: the torchgfn environment it was trained on, or a :class:`TorchGFNEnv` of it (share
            one ``TorchGFNEnv`` between bases to enumerate once). Other keywords go to
            :class:`TorchGFNEnv` (the estimator's preprocessor is the default ``encode``).

    ``log_probs(states)`` ``[B, A]``: masked, normalised log π(a | s) with states ``[B, *state_shape]``.
    With ``log_flow`` (the ``logF`` ``ScalarEstimator`` of a ``DBGFlowNet`` / ``SubTBGFlowNet``; see
    :meth:`from_gflownet`), ``log_state_flow(states)`` ``[B]`` is its learned log F(s) (plus log R(s)
    for a forward-looking parametrisation): what ``twist="flows"`` composes by
    (:mod:`sculpting.gflownet.flows`).
    """

    def __init__(self, estimator, env, log_flow=None, forward_looking: bool = False, **env_options):
        super().__init__()
        if getattr(estimator, "is_backward", False):
            raise ValueError("wrap the forward policy estimator (is_backward=False)")
        if not isinstance(env, TorchGFNEnv):
            env_options.setdefault("preprocessor", getattr(estimator, "preprocessor", None))
            env = TorchGFNEnv(env, **env_options)
        elif env_options:
            raise ValueError("env is already a TorchGFNEnv: pass the options to it")
        if int(getattr(estimator, "expected_output_dim", env.n_actions)) != env.n_actions:
            raise ValueError(
                f"the estimator outputs {estimator.expected_output_dim} logits, the env has {env.n_actions} actions"
            )
        self.estimator, self.env = estimator, env
        self.log_flow, self.forward_looking = log_flow, bool(forward_looking)

    @classmethod
    def from_gflownet(cls, gflownet, env, **env_options) -> "TorchGFNPolicy":
        """The forward policy of a torchgfn GFlowNet, with its state flow where it learned one
        (``DBGFlowNet``, ``SubTBGFlowNet``: ``logF``; a ``TBGFlowNet`` has none)."""
        if not hasattr(gflownet, "pf"):
            raise TypeError(f"expected a torchgfn GFlowNet (with .pf), got {type(gflownet).__name__}")
        return cls(
            gflownet.pf,
            env,
            log_flow=getattr(gflownet, "logF", None),
            forward_looking=bool(getattr(gflownet, "forward_looking", False)),
            **env_options,
        )

    @property
    def has_state_flow(self) -> bool:
        return self.log_flow is not None

    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        logits = self.estimator(self.env.wrap(states)).to(states.device).float()
        return masked_log_softmax(logits, self.env.action_mask(states))

    def log_state_flow(self, states: torch.Tensor) -> torch.Tensor:
        """``[B]`` the learned log F(s) (float64); an error for a base without a state flow."""
        if self.log_flow is None:
            raise ValueError(
                "this base has no state flow (wrap a DBGFlowNet / SubTBGFlowNet with TorchGFNPolicy.from_gflownet)"
            )
        with torch.no_grad():
            out = self.log_flow(self.env.wrap(states)).reshape(-1).to(states.device).double()
        return out + self.env.log_reward(states) if self.forward_looking else out


# ------------------------------------------------------------------ saving: models built by a recipe
#: recipe name -> function returning a TorchGFNPolicy. Filled by this module (the built-in
#: recipes) and by the user, explicitly, in their own process (:func:`register_recipe`, or
#: :func:`build` given a function). A checkpoint names a recipe by its key here: loading a file
#: never imports or calls anything the file names that is not in this table.
RECIPES: dict = {}


def register_recipe(name: str, fn) -> str:
    """Make ``fn(**kwargs) -> TorchGFNPolicy`` the recipe called ``name`` in this process, so that
    :func:`build` and ``sc.load_model`` can use it (a checkpoint stores only the name). Registering
    another function under a taken name is refused (re-registering the same one is a no-op)."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError(f"a recipe name is a non-empty string (at most 200 characters), got {name!r}")
    if not callable(fn):
        raise TypeError(f"register_recipe({name!r}, fn): fn must be a function returning a TorchGFNPolicy, got {fn!r}")
    if RECIPES.get(name, fn) is not fn:
        raise ValueError(f"the recipe name {name!r} is taken by {RECIPES[name]!r}; pick another name")
    RECIPES[name] = fn
    return name


def recipe_name(fn) -> str:
    """The name :func:`build` registers a recipe function under: ``"module:qualname"``."""
    return f"{fn.__module__}:{fn.__qualname__}"


def _registered(name, path=None):
    if not isinstance(name, str) or name not in RECIPES:
        where = f"{path}: " if path is not None else ""
        raise LookupError(
            f"{where}the torchgfn recipe {name!r} is not registered in this process (known: "
            f"{sorted(RECIPES)}). Loading never imports or runs code a file names: call "
            f"sculpting.adapters.torchgfn.register_recipe({name!r}, your_function) first "
            "(docs/own_models.md)"
        )
    return RECIPES[name]


def build(recipe, **kwargs) -> "TorchGFNPolicy":
    """``recipe(**kwargs)``: a (fresh or trained) :class:`TorchGFNPolicy` from a registered recipe,
    stamped with the recipe's name and ``kwargs``, so that ``sc.save`` can store the model and
    ``sc.load_model`` rebuild it (the recipe is looked up by name in :data:`RECIPES`, called again
    with ``kwargs`` (JSON-able) for the estimator's architecture and the environment, and the saved
    weights are loaded into it). ``recipe``: a registered name (built in:
    ``"sculpting.adapters.torchgfn:hypergrid_policy"``) or a function, which is registered under
    :func:`recipe_name` first. A classifier fitted on such bases saves and loads too (its
    environment is rebuilt the same way). In another process, register your function again before
    ``sc.load_model``."""
    import json

    if callable(recipe):
        fn, recipe = recipe, register_recipe(recipe_name(recipe), recipe)
    else:
        try:
            fn = _registered(recipe)
        except LookupError as e:
            raise ValueError(str(e)) from None
    json.dumps(kwargs)  # the recipe's arguments are stored as JSON: refuse anything else now
    policy = fn(**kwargs)
    if not isinstance(policy, TorchGFNPolicy):
        raise TypeError(f"the recipe {recipe!r} must return a TorchGFNPolicy, got {type(policy).__name__}")
    stamp(policy, recipe, kwargs)
    return policy


def stamp(policy: "TorchGFNPolicy", recipe: str, kwargs: dict) -> "TorchGFNPolicy":
    """Record on ``policy`` (and its environment) the recipe that rebuilds it (see :func:`build`)."""
    spec = {"recipe": recipe, "kwargs": dict(kwargs)}
    policy.recipe = spec
    policy.env.config = {**policy.env.config, "recipe": spec}
    return policy


def _rebuild_policy(spec: dict, path=None) -> "TorchGFNPolicy":
    if not isinstance(spec, dict) or not isinstance(spec.get("kwargs"), dict):
        raise CheckpointError(f"{path}: its torchgfn recipe is malformed: {spec!r}")
    try:
        _registered(spec.get("recipe"), path)  # before anything is called: only what this process registered
    except LookupError as e:
        raise CheckpointError(str(e)) from None
    try:
        return build(spec["recipe"], **spec["kwargs"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot rebuild its torchgfn model: {e}") from e


def env_from_recipe(name: str, recipe: dict | None = None) -> TorchGFNEnv:
    """The :class:`TorchGFNEnv` a checkpoint describes (``env.config``): its recipe's environment."""

    if recipe is None:
        raise CheckpointError(
            f"this checkpoint's torchgfn environment {name!r} was not built by a recipe, so it "
            "cannot be rebuilt: build the bases with sculpting.adapters.torchgfn.build("
            "'package.module:function', **kwargs) before fitting and saving (docs/own_models.md)"
        )
    return _rebuild_policy(recipe).env


def save_torchgfn_policy(policy: "TorchGFNPolicy", path, **meta):
    """Save a :class:`TorchGFNPolicy` built by :func:`build` (its weights and its recipe)."""

    spec = getattr(policy, "recipe", None)
    if spec is None:
        raise TypeError(
            "this TorchGFNPolicy was not built by a recipe: build it with "
            "sculpting.adapters.torchgfn.build('package.module:function', **kwargs) (a function "
            "returning the policy), so that sc.load_model can rebuild it (docs/own_models.md)"
        )
    return save_checkpoint(path, "torchgfn_policy", policy.state_dict(), {"recipe": spec, **meta})


def load_torchgfn_policy(path) -> "TorchGFNPolicy":
    sd, meta = load_checkpoint(path, "torchgfn_policy")
    policy = _rebuild_policy(meta.get("recipe"), path)
    want = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    if want != got:
        raise CheckpointError(f"{path}: its recipe builds a model of other shapes than the saved weights")
    return load_into(policy, sd, meta, path)


def hypergrid_policy(
    ndim: int = 2, height: int = 8, R0: float = 0.1, R1: float = 0.5, R2: float = 2.0, hidden: int = 64, seed: int = 0
) -> "TorchGFNPolicy":
    """A recipe (for :func:`build`): torchgfn's ``HyperGrid(ndim, height)`` with its "original" reward
    (R0, R1, R2) and a fresh forward ``DiscretePolicyEstimator`` (an MLP of width ``hidden`` on the
    K-hot state, initial weights from ``seed``), wrapped as a :class:`TorchGFNPolicy`. Train its
    ``estimator`` with torchgfn, then ``sc.save`` it; ``sc.load_model`` calls this again and loads
    the weights. Its arguments are checked first (they may come from a file): ``ndim`` 1 .. 16,
    ``height`` 2 .. 1024, ``hidden`` 1 .. ``MAX_WIDTH``, finite rewards, an integer seed."""
    import math

    check_count("ndim", ndim, 1, 16)
    check_count("height", height, 2, 1024)
    check_width("hidden", hidden)
    check_seed(seed)
    for k, v in (("R0", R0), ("R1", R1), ("R2", R2)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{k} must be a finite number, got {v!r}")
    from gfn import gym
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

    env = gym.HyperGrid(
        ndim=ndim,
        height=height,
        reward_fn_str="original",
        reward_fn_kwargs={"R0": R0, "R1": R1, "R2": R2},
        validate_modes=False,
    )
    pre = KHotPreprocessor(env.height, env.ndim)
    with seeded_init(seed):
        pf = DiscretePolicyEstimator(
            MLP(pre.output_dim, env.n_actions, hidden_dim=hidden), env.n_actions, preprocessor=pre
        )
    return TorchGFNPolicy(pf, env)


def _register() -> None:
    register_recipe(recipe_name(hypergrid_policy), hypergrid_policy)

    register_loader("torchgfn_policy", load_torchgfn_policy)
    register_saver(TorchGFNPolicy, save_torchgfn_policy)
    register_env("torchgfn", env_from_recipe)


_register()
