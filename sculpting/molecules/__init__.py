"""Fragment-based molecule domain (in progress): data directory, sEH proxy, rewards."""
from .proxy import seh_reward  # noqa: F401
