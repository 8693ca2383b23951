"""Diffusion models: score models, SDEs, composed scores, samplers (one per file in samplers/), SMC."""
