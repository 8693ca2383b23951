"""Environments: the enumerable grid (more domains plug in with the same interface)."""
from .grid import GridEnv
from .grid_rewards import REWARDS as GRID_REWARDS

__all__ = ["GridEnv", "GRID_REWARDS"]
