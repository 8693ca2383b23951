"""2-D (or n-D) hypergrid GFlowNets: an exactly enumerable domain (``docs/grid.md``)."""

from sculpting.domains.grid.env import GridEnv
from sculpting.domains.grid.rewards import REWARDS, register_reward

__all__ = ["GridEnv", "REWARDS", "register_reward"]
