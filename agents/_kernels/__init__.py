"""Numba kernels of the agent models (pure array functions, numpy references beside them)."""
