"""Colored-MNIST score-based diffusion models (``docs/mnist.md``)."""
