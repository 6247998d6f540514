"""numba kernels for terrain analysis (slope, aspect, hillshade, filling, D8).

Conventions shared by every kernel
----------------------------------
* ``z`` is a C-contiguous float64 array (ny, nx), row 0 the northernmost row,
  column 0 the westernmost; NaN marks nodata.
* ``dx_row`` and ``dy_row`` (length ny) are the east-west and north-south
  cell sizes of each row, in the units of ``z`` (metres). Rows may differ
  (a lon/lat grid converted to metres row by row).
* Outside the grid, Horn's 3x3 window uses either the nearest in-grid cell
  (``extrapolate=False``: edge replication, which halves the gradient across
  the edge on the outermost cells) or a linear extrapolation
  ``2 z[edge] - z[edge - 1]`` per axis (``extrapolate=True``: exact on
  planes). A nodata neighbour is replaced by the centre cell's value (and
  an extrapolation that would need a nodata cell falls back to replication).
* The caller allocates ``out`` and the kernel fills and returns it.

D8 codes (ESRI): 1 E, 2 SE, 4 S, 8 SW, 16 W, 32 NW, 64 N, 128 NE; 0 = no
downslope neighbour (pit, flat, or outlet at an edge); 255 = nodata.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: D8 neighbour order: (row offset, column offset, ESRI code).
D8_DI = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
D8_DJ = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)
D8_CODES = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)
D8_NODATA = 255

_DEG = 180.0 / math.pi

#: Smallest epsilon-fill step. Near z = 0 the next float64 (5e-324) is
#: subnormal and a D8 drop (step / distance) would underflow to 0; 1e-200
#: keeps drops normal and is below the float spacing of any |z| > 1e-184.
_MIN_STEP = 1e-200


# --------------------------------------------------------------------------
# Horn (1981) gradient
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _win(z, i, j, di, dj, ny, nx, zc, extrapolate):
    """Value of the window cell (i + di, j + dj) with the edge and nodata rules."""
    ii = i + di
    jj = j + dj
    ci = min(max(ii, 0), ny - 1)
    cj = min(max(jj, 0), nx - 1)
    v = z[ci, cj]
    if math.isnan(v):
        return zc
    if extrapolate and (ii != ci or jj != cj):
        # Linear extrapolation across the edge: v + (v - mirror) per axis.
        mi = min(max(2 * ci - ii, 0), ny - 1)
        mj = min(max(2 * cj - jj, 0), nx - 1)
        val = v
        if ii != ci:
            w = z[mi, cj]
            if math.isnan(w):
                return v
            val += v - w
        if jj != cj:
            w = z[ci, mj]
            if math.isnan(w):
                return v
            val += v - w
        return val
    return v


@njit(cache=True, nogil=True, inline="always")
def _horn(z, i, j, ny, nx, dx, dy, extrapolate):
    """Horn's gradient (dz/dx east, dz/dy north) at cell (i, j)."""
    zc = z[i, j]
    a = _win(z, i, j, -1, -1, ny, nx, zc, extrapolate)
    b = _win(z, i, j, -1, 0, ny, nx, zc, extrapolate)
    c = _win(z, i, j, -1, 1, ny, nx, zc, extrapolate)
    d = _win(z, i, j, 0, -1, ny, nx, zc, extrapolate)
    f = _win(z, i, j, 0, 1, ny, nx, zc, extrapolate)
    g = _win(z, i, j, 1, -1, ny, nx, zc, extrapolate)
    h = _win(z, i, j, 1, 0, ny, nx, zc, extrapolate)
    k = _win(z, i, j, 1, 1, ny, nx, zc, extrapolate)
    p = ((c + 2.0 * f + k) - (a + 2.0 * d + g)) / (8.0 * dx)
    q = ((a + 2.0 * b + c) - (g + 2.0 * h + k)) / (8.0 * dy)
    return p, q


@njit(cache=True, nogil=True, parallel=True)
def slope_aspect(z, dx_row, dy_row, z_factor, extrapolate, out_slope, out_aspect):
    """Slope and aspect by Horn (1981), as GDAL ``gdaldem`` and xarray-spatial.

    With the 3x3 window ``a b c / d e f / g h k`` (north row first)::

        p = [(c + 2f + k) - (a + 2d + g)] / (8 dx)     dz/dx, east
        q = [(a + 2b + c) - (g + 2h + k)] / (8 dy)     dz/dy, north
        slope  = atan(z_factor * sqrt(p^2 + q^2))      degrees, [0, 90)
        aspect = atan2(-p, -q) mod 360                 degrees clockwise
                                                       from north, downslope
        aspect = -1 where p = q = 0 (flat)

    Parameters
    ----------
    z : float64[:, :]
        Elevation, NaN = nodata.
    dx_row, dy_row : float64[:]
        Cell sizes per row (same units as ``z``).
    z_factor : float
        Vertical exaggeration applied to the gradient.
    extrapolate : bool
        Edge rule: False = replicate the edge cells, True = linear extrapolation.
    out_slope, out_aspect : float64[:, :]
        Filled with slope and aspect (degrees); NaN where ``z`` is NaN.

    Returns
    -------
    (out_slope, out_aspect)
    """
    ny, nx = z.shape
    for i in prange(ny):
        dx = dx_row[i]
        dy = dy_row[i]
        for j in range(nx):
            if math.isnan(z[i, j]):
                out_slope[i, j] = np.nan
                out_aspect[i, j] = np.nan
                continue
            p, q = _horn(z, i, j, ny, nx, dx, dy, extrapolate)
            out_slope[i, j] = math.atan(z_factor * math.sqrt(p * p + q * q)) * _DEG
            if p == 0.0 and q == 0.0:
                out_aspect[i, j] = -1.0
            else:
                asp = math.atan2(-p, -q) * _DEG
                if asp < 0.0:
                    asp += 360.0
                if asp >= 360.0:
                    asp -= 360.0
                out_aspect[i, j] = asp
    return out_slope, out_aspect


@njit(cache=True, nogil=True, parallel=True)
def hillshade(z, dx_row, dy_row, azimuth, altitude, z_factor, extrapolate, out):
    """Lambertian hillshade from Horn's gradient (as ESRI / GDAL).

    ``shade = cos(zenith) cos(slope) + sin(zenith) sin(slope) cos(azimuth - aspect)``,
    clipped to [0, 1], with zenith = 90 - altitude, slope and aspect (downslope
    bearing) from :func:`slope_aspect` with ``z_factor``; azimuth is the
    bearing of the sun, degrees clockwise from north.

    Parameters
    ----------
    z : float64[:, :]
        Elevation, NaN = nodata.
    dx_row, dy_row : float64[:]
        Cell sizes per row.
    azimuth, altitude : float
        Sun bearing and elevation angle (degrees).
    z_factor : float
        Vertical exaggeration.
    extrapolate : bool
        Edge rule (see :func:`slope_aspect`).
    out : float64[:, :]
        Filled with shade in [0, 1]; NaN where ``z`` is NaN.

    Returns
    -------
    out
    """
    ny, nx = z.shape
    zen = math.radians(90.0 - altitude)
    az = math.radians(azimuth)
    cz = math.cos(zen)
    sz = math.sin(zen)
    for i in prange(ny):
        dx = dx_row[i]
        dy = dy_row[i]
        for j in range(nx):
            if math.isnan(z[i, j]):
                out[i, j] = np.nan
                continue
            p, q = _horn(z, i, j, ny, nx, dx, dy, extrapolate)
            p *= z_factor
            q *= z_factor
            g = math.sqrt(p * p + q * q)
            slp = math.atan(g)
            if g == 0.0:
                shade = cz
            else:
                asp = math.atan2(-p, -q)
                shade = cz * math.cos(slp) + sz * math.sin(slp) * math.cos(az - asp)
            if shade < 0.0:
                shade = 0.0
            elif shade > 1.0:
                shade = 1.0
            out[i, j] = shade
    return out


# --------------------------------------------------------------------------
# Priority-flood (Barnes, Lehman & Mulla 2014)
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _heap_push(keys, idx, size, key, cell):
    """Push (key, cell) on a binary min-heap stored in ``keys``/``idx``; return new size."""
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if keys[parent] <= key:
            break
        keys[pos] = keys[parent]
        idx[pos] = idx[parent]
        pos = parent
    keys[pos] = key
    idx[pos] = cell
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def _heap_pop(keys, idx, size):
    """Remove the minimum; return (cell, new size). ``size`` must be > 0."""
    top = idx[0]
    size -= 1
    if size > 0:
        key = keys[size]
        cell = idx[size]
        pos = 0
        while True:
            child = 2 * pos + 1
            if child >= size:
                break
            if child + 1 < size and keys[child + 1] < keys[child]:
                child += 1
            if keys[child] >= key:
                break
            keys[pos] = keys[child]
            idx[pos] = idx[child]
            pos = child
        keys[pos] = key
        idx[pos] = cell
    return top, size


@njit(cache=True, nogil=True)
def priority_flood(z, outlet, epsilon, use_epsilon, out):
    """Fill depressions by Priority-Flood (Barnes, Lehman & Mulla 2014).

    Seeds (outlets) are valid cells on the grid edge, valid cells with a
    nodata 8-neighbour, and cells where ``outlet`` is True (e.g. the sea);
    seeds keep their elevation. Cells are then visited from the lowest open
    cell outward (binary min-heap), each unvisited neighbour ``n`` of the
    current cell ``c`` getting::

        flat mode:     z[n] = max(z[n], z[c])                    (Algorithm 2)
        epsilon mode:  z[n] = z[c] + eps  if z[n] <= z[c]        (Algorithm 3)

    Raised cells go on a FIFO "pit" queue that is served before the heap, so
    a depression is filled in one sweep. In epsilon mode ``eps`` is
    ``epsilon`` or, when the step ``(z[c] + epsilon) - z[c]`` is below
    ``_MIN_STEP`` = 1e-200 (e.g. epsilon = 0), the larger of the next
    representable float64 above ``z[c]`` and ``z[c] + 1e-200`` (the latter
    only matters near z = 0, where the next float is subnormal and a D8 drop
    would underflow to zero); every non-seed cell then has
    a strictly lower 8-neighbour (the one it was reached from), so D8 finds
    no pits. O(n log n) time; each cell enters a queue once.

    Parameters
    ----------
    z : float64[:, :]
        Elevation, NaN = nodata (left NaN).
    outlet : bool[:, :]
        Extra seed cells.
    epsilon : float
        Gradient added across filled flats (units of ``z``), epsilon mode only.
    use_epsilon : bool
        False = flat fill, True = epsilon fill.
    out : float64[:, :]
        Filled elevation.

    Returns
    -------
    out
    """
    ny, nx = z.shape
    n = ny * nx
    zf = out.reshape(n)
    zf[:] = z.ravel()
    of = outlet.ravel()
    closed = np.zeros(n, dtype=np.bool_)
    keys = np.empty(n, dtype=np.float64)
    idx = np.empty(n, dtype=np.int64)
    pit = np.empty(n, dtype=np.int64)
    size = 0
    head = 0
    tail = 0
    for i in range(ny):
        for j in range(nx):
            c = i * nx + j
            if math.isnan(zf[c]):
                closed[c] = True
                continue
            seed = of[c] or i == 0 or j == 0 or i == ny - 1 or j == nx - 1
            if not seed:
                for k in range(8):
                    if math.isnan(zf[(i + D8_DI[k]) * nx + j + D8_DJ[k]]):
                        seed = True
                        break
            if seed:
                closed[c] = True
                size = _heap_push(keys, idx, size, zf[c], c)
    while size > 0 or head < tail:
        if head < tail:
            c = pit[head]
            head += 1
        else:
            c, size = _heap_pop(keys, idx, size)
        ci = c // nx
        cj = c - ci * nx
        zc = zf[c]
        if use_epsilon:
            raised = zc + epsilon
            if raised - zc < _MIN_STEP:
                raised = max(np.nextafter(zc, np.inf), zc + _MIN_STEP)
        else:
            raised = zc
        for k in range(8):
            ni = ci + D8_DI[k]
            nj = cj + D8_DJ[k]
            if ni < 0 or ni >= ny or nj < 0 or nj >= nx:
                continue
            nb = ni * nx + nj
            if closed[nb]:
                continue
            closed[nb] = True
            if zf[nb] <= zc:
                zf[nb] = raised
                pit[tail] = nb
                tail += 1
            else:
                size = _heap_push(keys, idx, size, zf[nb], nb)
    return out


# --------------------------------------------------------------------------
# D8
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True, parallel=True)
def d8_flowdir(z, dx_row, dy_row, out):
    """D8 flow direction: steepest distance-weighted drop (O'Callaghan & Mark 1984).

    For each valid cell, ``drop_k = (z[c] - z[n_k]) / L_k`` over the 8
    in-grid valid neighbours, L = dx (E, W), dy (N, S), sqrt(dx^2 + dy^2)
    (diagonals), using the centre row's cell sizes. The code of the largest
    positive drop is written (ties: first in the order E, SE, S, SW, W, NW,
    N, NE); 0 where no drop is positive; 255 where ``z`` is NaN.

    Parameters
    ----------
    z : float64[:, :]
        Elevation, NaN = nodata.
    dx_row, dy_row : float64[:]
        Cell sizes per row.
    out : uint8[:, :]
        ESRI D8 codes.

    Returns
    -------
    out
    """
    ny, nx = z.shape
    for i in prange(ny):
        dx = dx_row[i]
        dy = dy_row[i]
        dd = math.sqrt(dx * dx + dy * dy)
        for j in range(nx):
            zc = z[i, j]
            if math.isnan(zc):
                out[i, j] = D8_NODATA
                continue
            best = 0.0
            code = 0
            for k in range(8):
                ni = i + D8_DI[k]
                nj = j + D8_DJ[k]
                if ni < 0 or ni >= ny or nj < 0 or nj >= nx:
                    continue
                zn = z[ni, nj]
                if math.isnan(zn):
                    continue
                if D8_DI[k] == 0:
                    dist = dx
                elif D8_DJ[k] == 0:
                    dist = dy
                else:
                    dist = dd
                drop = (zc - zn) / dist
                if drop > best:
                    best = drop
                    code = D8_CODES[k]
            out[i, j] = code
    return out


@njit(cache=True, nogil=True, inline="always")
def _d8_target(code, i, j, ny, nx):
    """Linear index of the cell that ``code`` at (i, j) points to, or -1."""
    k = -1
    for m in range(8):
        if D8_CODES[m] == code:
            k = m
            break
    if k < 0:
        return -1
    ni = i + D8_DI[k]
    nj = j + D8_DJ[k]
    if ni < 0 or ni >= ny or nj < 0 or nj >= nx:
        return -1
    return ni * nx + nj


@njit(cache=True, nogil=True)
def d8_accumulation(fdir, weights, out):
    """D8 flow accumulation in O(n) by topological order (Kahn's algorithm).

    ``out[c] = weights[c] + sum(out[u] for u draining into c)``. The in-degree
    of every cell is counted; cells with in-degree 0 are queued; popping a
    cell adds its total to its receiver and queues the receiver once all its
    donors are done. No recursion. A code pointing off the grid, at a nodata
    cell, or not one of the 8 codes makes the cell terminal.

    Parameters
    ----------
    fdir : uint8[:, :]
        ESRI D8 codes, 255 = nodata.
    weights : float64[:, :]
        Per-cell contribution (ones for cell counts).
    out : float64[:, :]
        Accumulation; NaN on nodata cells.

    Returns
    -------
    int
        Number of valid cells processed. Fewer than the number of valid
        cells means ``fdir`` contains a cycle (those cells are left NaN).
    """
    ny, nx = fdir.shape
    n = ny * nx
    fd = fdir.ravel()
    w = weights.ravel()
    acc = out.reshape(n)
    recv = np.empty(n, dtype=np.int64)
    indeg = np.zeros(n, dtype=np.int32)
    for i in range(ny):
        for j in range(nx):
            c = i * nx + j
            if fd[c] == D8_NODATA:
                recv[c] = -1
                acc[c] = np.nan
                continue
            acc[c] = w[c]
            r = _d8_target(fd[c], i, j, ny, nx)
            if r >= 0 and fd[r] == D8_NODATA:
                r = -1
            recv[c] = r
            if r >= 0:
                indeg[r] += 1
    queue = np.empty(n, dtype=np.int64)
    tail = 0
    for c in range(n):
        if fd[c] != D8_NODATA and indeg[c] == 0:
            queue[tail] = c
            tail += 1
    head = 0
    while head < tail:
        c = queue[head]
        head += 1
        r = recv[c]
        if r >= 0:
            acc[r] += acc[c]
            indeg[r] -= 1
            if indeg[r] == 0:
                queue[tail] = r
                tail += 1
    if head < n:
        for c in range(n):
            if fd[c] != D8_NODATA and indeg[c] > 0:
                acc[c] = np.nan
    return head
