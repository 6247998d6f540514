"""A second numba dispatcher of a compiled function's own code, with some of the functions it calls swapped.

The two-thread zone step (:mod:`physics._kernels.fire_zone_parallel`) and the compiled steps on it
(:func:`physics._kernels.fire_steps.run_steps_parallel`) are the serial functions' own code with their parallel
pieces bound in place of the serial ones, not copies of that code.
"""

from __future__ import annotations

import types

from numba import njit


def rebound(disp, name: str, doc: str, parallel: bool = False, **swap):
    """A new ``njit(cache=True)`` dispatcher of ``disp``'s Python code named ``name``, whose globals are ``disp``'s
    with ``swap``'s names bound to other functions; ``doc`` heads its docstring. numba keys the cache on the file the
    code comes from (``disp``'s), so ``name`` must change whenever a swapped-in function's code does (the callers
    put a hash of that function's file in it). Same error model, fastmath and boundscheck as ``disp``;
    ``parallel``: compiled with ``parallel=True`` (its ``prange`` loops then run on numba's threads)."""
    f = disp.py_func
    glob = dict(f.__globals__)
    glob.update(swap)
    code = f.__code__.replace(co_name=name, co_qualname=name)
    g = types.FunctionType(code, glob, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    g.__doc__ = f"{doc}\n\n{f.__doc__}"
    options = {k: v for k, v in disp.targetoptions.items() if k in ("error_model", "fastmath", "boundscheck")}
    return njit(cache=True, parallel=parallel, **options)(g)
