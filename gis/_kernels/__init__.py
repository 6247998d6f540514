"""Private numba kernels of the gis package.

Kernels are pure ``@njit(cache=True, nogil=True)`` functions over numpy arrays
and scalars: no xarray, no CRS, no I/O. The public wrappers (e.g.
:mod:`gis.terrain`) unpack DataArrays, allocate ``out`` and re-wrap results.
"""
