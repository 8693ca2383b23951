"""The package version (read by checkpoints, run folders and the CLI without importing the API)."""

__version__ = "0.3.0"
