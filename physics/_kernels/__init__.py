"""Numba kernels of the physics models (pure array functions)."""
