"""Numba kernels of the pedestrian model: one step of the collision-free speed model, cell
lists, floor-field look-up and the floor field's shortest paths (numpy references beside).

Model (Tordeux, Chraibi & Seyfried 2016, "Collision-free speed model for
pedestrian dynamics", Traffic and Granular Flow '15, Springer, pp. 225-232;
arXiv:1512.05597). Agent i at x_i with desired direction e0_i (from the floor
field) and free speed v0_i moves, over one step dt, by

    e_i   = unit( e0_i + sum_j R(|x_i - x_j|) (x_i - x_j)/|x_i - x_j|
                       + sum_w R_w(d_iw) n_iw )
    s_i   = min( min_{j in J_i} |x_j - x_i| ,  t_iw + l/2 )
    v_i   = min( v0_i, max(0, (s_i - l) / T) )
    x_i  += v_i e_i dt

with R(s) = a exp((l - s)/D) (neighbours), R_w(d) = a_w exp((l/2 - d)/D_w)
(walls: d_iw the distance to wall segment w, n_iw the unit vector from its
closest point to x_i), l the body diameter, T the time gap. J_i are the
agents ahead of i within its lane: (x_j - x_i).e_i > 0 and lateral offset
|(x_j - x_i) x e_i| <= l (the paper's conflict set); t_iw is the distance
along e_i from x_i to wall w (a wall ahead limits the speed like an agent l/2
behind it). A neighbour farther than l + T v0_i (+ 0.1 m) cannot lower
agent i's speed, so each agent searches only that radius (:func:`_reach`;
at most the cut-off r_c = l + T max(v0) + 0.1 m, which also bounds the
walls listed per cell); neighbour repulsion is neglected beyond
``rep_cutoff`` = l + 12 D, where R < a e^-12 = 6e-6 a (with a = 5 a
direction change below 3e-5 rad per neighbour against |e0| = 1).
The update is synchronous (every agent reads the old positions), so the
result does not depend on the thread count.

Walls are never crossed: the displacement is slid along every wall it would
bring closer than ``clearance`` to (its component towards that wall removed);
if the slid position still crosses a wall or comes closer than ``clearance``
to one it was not already closer to, the agent stays put this step.
Agents whose displacement crosses an open exit segment leave (``out_exit``
gets the exit index).

Layout: positions ``pos`` (n, 2) metres; ``active`` uint8 (n,); walls and
exits (k, 4) segments x0, y0, x1, y1. The uniform cell list is a counting
sort of the active agents into cells of r_c / 3 (``Cells``); walls are
listed per cell of a static grid with every wall within r_c of the cell
(``WallGrid``). Periodic in x when ``Cells.period_x > 0`` (corridor tests).
The cells of a grid row that reach an agent hold one contiguous run of the
sorted positions, so the neighbour search reads a run per row rather than a
cell at a time (:func:`_gather`; same neighbours, same order, same sums).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

#: Exit index written for agents that did not leave in a step.
NO_EXIT = -1


class Params(NamedTuple):
    """Collision-free speed model parameters (SI units)."""

    time_gap: float  # T, s
    length: float  # l, body diameter, m
    a: float  # neighbour repulsion strength, -
    d: float  # neighbour repulsion range D, m
    a_wall: float  # wall repulsion strength, -
    d_wall: float  # wall repulsion range, m
    clearance: float  # closest an agent's centre may come to a wall, m
    cutoff: float  # r_c, m
    rep_cutoff: float  # neighbour repulsion neglected beyond this distance, m


class Cells(NamedTuple):
    """A uniform grid of cells; ``start``/``order`` its counting-sorted agents."""

    x0: float
    y0: float
    csx: float
    csy: float
    nx: int
    ny: int
    period_x: float  # 0: not periodic
    start: np.ndarray  # int64 (nx*ny + 1,)
    order: np.ndarray  # int64 (n,)
    spos: np.ndarray  # float64 (n, 2): pos[order], so a cell's agents are contiguous


class WallGrid(NamedTuple):
    """Wall segments and, per cell of a static grid, the walls within r_c of it."""

    segments: np.ndarray  # float64 (m, 4)
    x0: float
    y0: float
    cs: float
    nx: int
    ny: int
    start: np.ndarray  # int64 (nx*ny + 1,)
    index: np.ndarray  # int64


class Field(NamedTuple):
    """A floor field's gradient at cell centres (x0 + (i + 1/2) h, y0 + (j + 1/2) h).

    With ``h`` <= 0 (:data:`NO_FIELD`) the step takes the desired directions
    ``e0`` as given instead of looking them up.
    """

    gx: np.ndarray  # float64 (ny, nx)
    gy: np.ndarray
    x0: float
    y0: float
    h: float


NO_FIELD = Field(np.zeros((2, 2)), np.zeros((2, 2)), 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------
# Cell lists
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _cell_of(x, y, x0, y0, csx, csy, nx, ny):
    cx = int(math.floor((x - x0) / csx))
    cy = int(math.floor((y - y0) / csy))
    cx = min(max(cx, 0), nx - 1)
    cy = min(max(cy, 0), ny - 1)
    return cy * nx + cx


@njit(cache=True, nogil=True)
def fill_cells(pos, active, cells):
    """Counting sort of the active agents into cells: ``order[start[c]:start[c+1]]`` are cell c's.

    Agents keep increasing index order inside a cell; ``spos`` gets their
    positions in that order (the step reads neighbours from it: contiguous
    in memory, cache-friendly). ``order`` and ``spos`` need room for every
    agent; returns the number of active agents.
    """
    x0, y0, csx, csy, nx, ny = cells.x0, cells.y0, cells.csx, cells.csy, cells.nx, cells.ny
    start, order, spos = cells.start, cells.order, cells.spos
    ncell = nx * ny
    start[:] = 0
    cell = np.empty(pos.shape[0], np.int64)
    for i in range(pos.shape[0]):
        if active[i]:
            c = _cell_of(pos[i, 0], pos[i, 1], x0, y0, csx, csy, nx, ny)
            cell[i] = c
            start[c + 1] += 1
    for c in range(ncell):
        start[c + 1] += start[c]
    fill = start[:ncell].copy()
    for i in range(pos.shape[0]):
        if active[i]:
            c = cell[i]
            order[fill[c]] = i
            spos[fill[c], 0] = pos[i, 0]
            spos[fill[c], 1] = pos[i, 1]
            fill[c] += 1
    return start[ncell]


# --------------------------------------------------------------------------
# Geometry helpers (shared by the numba step; the numpy reference has its own)
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _closest(px, py, w):
    """Closest point of segment w (x0, y0, x1, y1) to (px, py)."""
    ax, ay, bx, by = w[0], w[1], w[2], w[3]
    ux, uy = bx - ax, by - ay
    uu = ux * ux + uy * uy
    t = 0.0
    if uu > 0.0:
        t = ((px - ax) * ux + (py - ay) * uy) / uu
        t = min(max(t, 0.0), 1.0)
    return ax + t * ux, ay + t * uy


@njit(cache=True, nogil=True, inline="always")
def _ray_hit(px, py, ex, ey, w):
    """Distance along the ray (px, py) + t (ex, ey), t > 0, to segment w; inf when it misses."""
    ax, ay, bx, by = w[0], w[1], w[2], w[3]
    ux, uy = bx - ax, by - ay
    den = ex * uy - ey * ux
    if den == 0.0:
        return np.inf
    qx, qy = ax - px, ay - py
    t = (qx * uy - qy * ux) / den
    s = (qx * ey - qy * ex) / den
    if t > 0.0 and 0.0 <= s <= 1.0:
        return t
    return np.inf


@njit(cache=True, nogil=True, inline="always")
def _crosses(px, py, qx, qy, w):
    """True when segment p-q and segment w properly intersect (touching counts)."""
    ax, ay, bx, by = w[0], w[1], w[2], w[3]
    d1 = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    d2 = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
    d3 = (qx - px) * (ay - py) - (qy - py) * (ax - px)
    d4 = (qx - px) * (by - py) - (qy - py) * (bx - px)
    return (d1 * d2 <= 0.0) and (d3 * d4 <= 0.0) and not (d1 == 0.0 and d2 == 0.0)


# --------------------------------------------------------------------------
# One step
# --------------------------------------------------------------------------
#: Neighbours kept per agent between the two passes (more: the second pass walks the cells again).
MAX_NEIGHBOURS = 256
#: Agents per parallel work item (each item owns one neighbour buffer).
CHUNK = 256


@njit(cache=True, nogil=True, inline="always")
def _reach(prm, v0i):
    """Neighbour search radius of an agent with free speed v0i: beyond l + T v0i (+ 0.1 m) no
    neighbour can lower its speed, and beyond ``rep_cutoff`` none repels it."""
    return min(prm.cutoff, max(prm.rep_cutoff, prm.length + prm.time_gap * v0i + 0.1))


@njit(cache=True, nogil=True, inline="always")
def _cell_range(p, x0, cs, n, reach, periodic):
    """First and last cell index (may run past 0..n-1 when periodic) within ``reach`` of p."""
    lo = int(math.floor((p - reach - x0) / cs))
    hi = int(math.floor((p + reach - x0) / cs))
    if not periodic:
        lo = max(lo, 0)
        hi = min(hi, n - 1)
    elif hi - lo + 1 > n:
        hi = lo + n - 1
    return lo, hi


@njit(cache=True, nogil=True)
def _gather_cells(i, pos, prm, cells, reach, bdx, bdy, bd2):
    """:func:`_gather` cell by cell, for any grid (also periodic: the corridor's x wraps around).

    Returns (rx, ry, count); count > :data:`MAX_NEIGHBOURS` means the buffers
    overflowed. Cells wholly farther than the cut-off are skipped (not when periodic).
    """
    px, py = pos[i, 0], pos[i, 1]
    rc, ell = reach, prm.length
    rr2 = prm.rep_cutoff * prm.rep_cutoff
    period = cells.period_x
    periodic = period > 0.0
    y_lo, y_hi = _cell_range(py, cells.y0, cells.csy, cells.ny, rc, False)
    x_lo, x_hi = _cell_range(px, cells.x0, cells.csx, cells.nx, rc, periodic)
    rx = ry = 0.0
    cnt = 0
    cap = MAX_NEIGHBOURS
    for yy in range(y_lo, y_hi + 1):
        cy0 = cells.y0 + yy * cells.csy
        gy = max(0.0, cy0 - py, py - cy0 - cells.csy)
        for xr in range(x_lo, x_hi + 1):
            if periodic:
                xx = xr % cells.nx
            else:
                xx = xr
                cx0 = cells.x0 + xx * cells.csx
                gx = max(0.0, cx0 - px, px - cx0 - cells.csx)
                if gx * gx + gy * gy >= rc * rc:
                    continue
            c = yy * cells.nx + xx
            for k in range(cells.start[c], cells.start[c + 1]):
                if cells.order[k] == i:
                    continue
                dx = px - cells.spos[k, 0]
                dy = py - cells.spos[k, 1]
                if periodic:
                    dx -= period * np.rint(dx / period)
                d2 = dx * dx + dy * dy
                if d2 >= rc * rc or d2 == 0.0:
                    continue
                if d2 < rr2:
                    d = math.sqrt(d2)
                    r = prm.a * math.exp((ell - d) / prm.d) / d
                    rx += r * dx
                    ry += r * dy
                if cnt < cap:
                    bdx[cnt], bdy[cnt], bd2[cnt] = dx, dy, d2
                cnt += 1
    return rx, ry, cnt


@njit(cache=True, nogil=True, inline="always")
def _row_span(px, gy2, rc2, x_lo, x_hi, x0, cs):
    """First and last cell of a row (x_lo..x_hi) not wholly farther than sqrt(rc2) from px
    (gy2: the row's squared y gap); the kept cells are contiguous (the gap is valley-shaped)."""
    a = x_lo
    while a <= x_hi:
        cx0 = x0 + a * cs
        gx = max(0.0, cx0 - px, px - cx0 - cs)
        if gx * gx + gy2 < rc2:
            break
        a += 1
    b = x_hi
    while b >= a:
        cx0 = x0 + b * cs
        gx = max(0.0, cx0 - px, px - cx0 - cs)
        if gx * gx + gy2 < rc2:
            break
        b -= 1
    return a, b


@njit(cache=True, nogil=True, inline="always")
def _gather(i, pos, prm, cells, reach, bdx, bdy, bd2, brep):
    """Neighbour repulsion sum of agent i and its neighbours within the cut-off (into the buffers).

    Returns (rx, ry, count); count > :data:`MAX_NEIGHBOURS` means the buffers
    overflowed. Cells wholly farther than the cut-off are skipped. The kept
    cells of a row of the grid are contiguous, and so are their agents in the
    counting sort: each row is one run of ``spos``. Its neighbours within the
    cut-off are compacted into the buffers without a branch per candidate,
    then those within ``rep_cutoff`` into ``brep`` (int64), and only then are
    the repulsion terms summed - in the same order as cell by cell
    (:func:`_gather_cells`), so the sums are identical bit for bit. Agent i
    itself has distance 0 and is never kept. More than :data:`MAX_NEIGHBOURS`
    candidates (some 30 P/m2 around the agent) and periodic grids go cell by
    cell.
    """
    if cells.period_x > 0.0:
        return _gather_cells(i, pos, prm, cells, reach, bdx, bdy, bd2)
    px, py = pos[i, 0], pos[i, 1]
    rc, ell = reach, prm.length
    rc2 = rc * rc
    rr2 = prm.rep_cutoff * prm.rep_cutoff
    a, dd = prm.a, prm.d
    nx, csx, csy, cx0, cy0 = cells.nx, cells.csx, cells.csy, cells.x0, cells.y0
    start, spos = cells.start, cells.spos
    y_lo, y_hi = _cell_range(py, cy0, csy, cells.ny, rc, False)
    x_lo, x_hi = _cell_range(px, cx0, csx, nx, rc, False)
    cnt = 0
    for yy in range(y_lo, y_hi + 1):
        ry0 = cy0 + yy * csy
        gy = max(0.0, ry0 - py, py - ry0 - csy)
        c0, c1 = _row_span(px, gy * gy, rc2, x_lo, x_hi, cx0, csx)
        if c0 > c1:
            continue
        k0, k1 = start[yy * nx + c0], start[yy * nx + c1 + 1]
        if cnt + (k1 - k0) > MAX_NEIGHBOURS:
            return _gather_cells(i, pos, prm, cells, reach, bdx, bdy, bd2)
        for k in range(k0, k1):  # every write lands below cnt + (k1 - k0): in the buffers
            dx = px - spos[k, 0]
            dy = py - spos[k, 1]
            d2 = dx * dx + dy * dy
            bdx[cnt], bdy[cnt], bd2[cnt] = dx, dy, d2
            cnt += (d2 < rc2) & (d2 != 0.0)
    nrep = 0
    for q in range(cnt):
        brep[nrep] = q
        nrep += bd2[q] < rr2
    rx = ry = 0.0
    for t in range(nrep):
        q = brep[t]
        d = math.sqrt(bd2[q])
        r = a * math.exp((ell - d) / dd) / d
        rx += r * bdx[q]
        ry += r * bdy[q]
    return rx, ry, cnt


@njit(cache=True, nogil=True, inline="always")
def _ahead(dx, dy, d2, ex, ey, ell, s):
    """Spacing update for one neighbour at (x_i - x_j) = (dx, dy): kept when ahead and in the lane."""
    if -(ex * dx + ey * dy) <= 0.0 or abs(ey * dx - ex * dy) > ell:
        return s
    return min(s, math.sqrt(d2))


@njit(cache=True, nogil=True)
def _spacing(i, pos, prm, cells, reach, ex, ey, bdx, bdy, bd2, cnt):
    """Distance to the nearest neighbour ahead of agent i in its lane (inf if none)."""
    s = np.inf
    ell = prm.length
    if cnt <= MAX_NEIGHBOURS:
        # min of the squared distances, one square root: the same value (sqrt is monotone and
        # correctly rounded), without a branch per neighbour
        s2 = np.inf
        for k in range(cnt):
            dx, dy = bdx[k], bdy[k]
            ok = (-(ex * dx + ey * dy) > 0.0) & (abs(ey * dx - ex * dy) <= ell)
            s2 = min(s2, bd2[k] if ok else np.inf)
        return math.sqrt(s2)
    # overflow: walk the cells again (same set of neighbours)
    px, py = pos[i, 0], pos[i, 1]
    rc = reach
    period = cells.period_x
    y_lo, y_hi = _cell_range(py, cells.y0, cells.csy, cells.ny, rc, False)
    x_lo, x_hi = _cell_range(px, cells.x0, cells.csx, cells.nx, rc, period > 0.0)
    for yy in range(y_lo, y_hi + 1):
        for xr in range(x_lo, x_hi + 1):
            c = yy * cells.nx + (xr % cells.nx)
            for k in range(cells.start[c], cells.start[c + 1]):
                if cells.order[k] == i:
                    continue
                dx = px - cells.spos[k, 0]
                dy = py - cells.spos[k, 1]
                if period > 0.0:
                    dx -= period * np.rint(dx / period)
                d2 = dx * dx + dy * dy
                if d2 < rc * rc and d2 > 0.0:
                    s = _ahead(dx, dy, d2, ex, ey, ell, s)
    return s


@njit(cache=True, nogil=True)
def _move(px, py, mx, my, prm, walls, w0, w1):
    """Displacement (mx, my) slid along walls closer than the clearance; (0, 0) if it still fails."""
    c2 = prm.clearance * prm.clearance
    for k in range(w0, w1):
        w = walls.segments[walls.index[k]]
        qx, qy = _closest(px + mx, py + my, w)
        if (px + mx - qx) ** 2 + (py + my - qy) ** 2 >= c2:
            continue
        cx0, cy0 = _closest(px, py, w)
        nx_, ny_ = px - cx0, py - cy0
        nn = math.sqrt(nx_ * nx_ + ny_ * ny_)
        if nn == 0.0:
            continue
        nx_ /= nn
        ny_ /= nn
        along = mx * nx_ + my * ny_
        if along < 0.0:
            mx -= along * nx_
            my -= along * ny_
    qx1, qy1 = px + mx, py + my
    for k in range(w0, w1):
        w = walls.segments[walls.index[k]]
        if _crosses(px, py, qx1, qy1, w):
            return 0.0, 0.0
        ax, ay = _closest(qx1, qy1, w)
        dq2 = (qx1 - ax) ** 2 + (qy1 - ay) ** 2
        if dq2 < c2:
            bx, by = _closest(px, py, w)
            if dq2 < (px - bx) ** 2 + (py - by) ** 2:
                return 0.0, 0.0
    return mx, my


@njit(cache=True, nogil=True, inline="always")
def _agent_step(i, pos, e0, v0, prm, cells, walls, exits, exit_open, dt, bdx, bdy, bd2, brep):
    """New position, speed and exit index of active agent i."""
    px, py = pos[i, 0], pos[i, 1]
    ell = prm.length
    rc2 = prm.cutoff * prm.cutoff
    wc = _cell_of(px, py, walls.x0, walls.y0, walls.cs, walls.cs, walls.nx, walls.ny)
    w0, w1 = walls.start[wc], walls.start[wc + 1]
    reach = _reach(prm, v0[i])
    rx, ry, cnt = _gather(i, pos, prm, cells, reach, bdx, bdy, bd2, brep)
    ex, ey = e0[i, 0] + rx, e0[i, 1] + ry
    for k in range(w0, w1):
        w = walls.segments[walls.index[k]]
        qx, qy = _closest(px, py, w)
        dx, dy = px - qx, py - qy
        d2 = dx * dx + dy * dy
        if d2 >= rc2 or d2 == 0.0:
            continue
        d = math.sqrt(d2)
        r = prm.a_wall * math.exp((0.5 * ell - d) / prm.d_wall) / d
        ex += r * dx
        ey += r * dy
    norm = math.sqrt(ex * ex + ey * ey)
    if norm == 0.0:
        return px, py, 0.0, NO_EXIT
    ex /= norm
    ey /= norm
    s = _spacing(i, pos, prm, cells, reach, ex, ey, bdx, bdy, bd2, cnt)
    for k in range(w0, w1):
        t = _ray_hit(px, py, ex, ey, walls.segments[walls.index[k]])
        s = min(s, t + 0.5 * ell)
    v = min(v0[i], max(0.0, (s - ell) / prm.time_gap))
    mx, my = _move(px, py, v * ex * dt, v * ey * dt, prm, walls, w0, w1)
    qx1, qy1 = px + mx, py + my
    gone = NO_EXIT
    for k in range(exits.shape[0]):
        if exit_open[k] and _crosses(px, py, qx1, qy1, exits[k]):
            gone = k
            break
    speed = math.sqrt(mx * mx + my * my) / dt
    if cells.period_x > 0.0:
        qx1 = qx1 - cells.period_x * math.floor(qx1 / cells.period_x)
    return qx1, qy1, speed, gone


@njit(cache=True, nogil=True, parallel=True)
def step(pos, e0, field, v0, active, prm, cells, walls, exits, exit_open, dt, out_pos, out_speed,
         out_exit):  # fmt: skip
    """Advance every active agent by ``dt`` (formulas in the module docstring).

    Reads ``pos`` (old positions; ``cells`` must be filled from them) and
    writes ``out_pos``, ``out_speed`` (m/s) and ``out_exit`` (exit index or
    :data:`NO_EXIT`). Inactive agents are copied unchanged with speed 0.
    With a ``field`` (:class:`Field`) each agent's desired direction is
    looked up in it first and written to ``e0`` (as
    :func:`field_directions` would); with :data:`NO_FIELD` ``e0`` is read.
    Parallel over chunks of :data:`CHUNK` agents taken in cell order, each
    chunk with its own neighbour buffer (the first pass's neighbours, reused
    by the second).
    """
    n = pos.shape[0]
    m = cells.start[cells.nx * cells.ny]
    nchunk = max(1, (m + CHUNK - 1) // CHUNK)
    for ch in prange(nchunk):
        if ch == 0:  # inactive agents stay where they are
            for i in range(n):
                if not active[i]:
                    out_pos[i, 0], out_pos[i, 1] = pos[i, 0], pos[i, 1]
                    out_speed[i] = 0.0
                    out_exit[i] = NO_EXIT
        bdx = np.empty(MAX_NEIGHBOURS)
        bdy = np.empty(MAX_NEIGHBOURS)
        bd2 = np.empty(MAX_NEIGHBOURS)
        brep = np.empty(MAX_NEIGHBOURS, np.int64)
        for kk in range(ch * CHUNK, min(m, (ch + 1) * CHUNK)):
            i = cells.order[kk]  # cell order: neighbours' data stay in cache
            if field.h > 0.0:
                e0[i, 0], e0[i, 1] = _direction(pos[i, 0], pos[i, 1], field)
            x, y, v, gone = _agent_step(
                i, pos, e0, v0, prm, cells, walls, exits, exit_open, dt, bdx, bdy, bd2, brep
            )
            out_pos[i, 0], out_pos[i, 1] = x, y
            out_speed[i] = v
            out_exit[i] = gone

# --------------------------------------------------------------------------
# Floor field: direction look-up and shortest paths
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _direction(px, py, field):
    """-grad(distance) at (px, py), bilinear between cell centres, normalised; (0, 0) if it vanishes."""
    gx, gy, h = field.gx, field.gy, field.h
    ny, nx = gx.shape
    fx = (px - field.x0) / h - 0.5
    fy = (py - field.y0) / h - 0.5
    ix = min(max(int(math.floor(fx)), 0), nx - 2)
    iy = min(max(int(math.floor(fy)), 0), ny - 2)
    tx = min(max(fx - ix, 0.0), 1.0)
    ty = min(max(fy - iy, 0.0), 1.0)
    w00, w01, w10, w11 = (1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty
    ux = w00 * gx[iy, ix] + w01 * gx[iy, ix + 1] + w10 * gx[iy + 1, ix] + w11 * gx[iy + 1, ix + 1]
    uy = w00 * gy[iy, ix] + w01 * gy[iy, ix + 1] + w10 * gy[iy + 1, ix] + w11 * gy[iy + 1, ix + 1]
    nrm = math.sqrt(ux * ux + uy * uy)
    if nrm == 0.0:
        return 0.0, 0.0
    return -ux / nrm, -uy / nrm


@njit(cache=True, nogil=True, parallel=True)
def field_directions(pos, active, field, out):
    """Unit desired directions -grad(distance) at ``pos`` from a :class:`Field`, bilinear
    between cell centres (0 gradient where unknown). Writes ``out`` (n, 2); (0, 0) where the
    interpolated gradient vanishes or the agent is inactive."""
    for i in prange(pos.shape[0]):
        out[i, 0] = 0.0
        out[i, 1] = 0.0
        if active[i]:
            out[i, 0], out[i, 1] = _direction(pos[i, 0], pos[i, 1], field)


#: The 16-neighbour stencil (dx, dy): 4 axial, 4 diagonal, 8 knight moves.
STENCIL16 = np.array(
    [
        (1, 0), (-1, 0), (0, 1), (0, -1),
        (1, 1), (1, -1), (-1, 1), (-1, -1),
        (2, 1), (2, -1), (-2, 1), (-2, -1),
        (1, 2), (1, -2), (-1, 2), (-1, -2),
    ],
    dtype=np.int64,
)  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def _passable(free, ix, iy, dx, dy):
    """A move may not cut a blocked cell: diagonals need both side cells,
    knight moves the two cells the straight line crosses."""
    adx, ady = abs(dx), abs(dy)
    sx = 1 if dx > 0 else -1
    sy = 1 if dy > 0 else -1
    if adx == 1 and ady == 1:
        return free[iy, ix + sx] and free[iy + sy, ix]
    if adx == 2:
        return free[iy, ix + sx] and free[iy + sy, ix + sx]
    if ady == 2:
        return free[iy + sy, ix] and free[iy + sy, ix + sx]
    return True


@njit(cache=True, nogil=True)
def _heap_push(hk, hv, size, key, val):
    i = size
    hk[i] = key
    hv[i] = val
    while i > 0:
        p = (i - 1) // 2
        if hk[p] <= hk[i]:
            break
        hk[p], hk[i] = hk[i], hk[p]
        hv[p], hv[i] = hv[i], hv[p]
        i = p
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(hk, hv, size):
    key, val = hk[0], hv[0]
    size -= 1
    hk[0], hv[0] = hk[size], hv[size]
    i = 0
    while True:
        lft, rgt, m = 2 * i + 1, 2 * i + 2, i
        if lft < size and hk[lft] < hk[m]:
            m = lft
        if rgt < size and hk[rgt] < hk[m]:
            m = rgt
        if m == i:
            break
        hk[m], hk[i] = hk[i], hk[m]
        hv[m], hv[i] = hv[i], hv[m]
        i = m
    return key, val, size


@njit(cache=True, nogil=True)
def dijkstra16(free, cost, dist, h):
    """Shortest weighted path length from the sources to every free cell (16-neighbour stencil).

    ``dist`` (ny, nx) holds the sources' initial distances (finite) and inf
    elsewhere; it is completed in place. A move from cell a to b costs
    ``|move| * h * (cost[a] + cost[b]) / 2``. In open space with cost 1 the
    result exceeds the Euclidean distance by at most 2.75 % (between the
    stencil's directions; exact along them).
    """
    ny, nx = free.shape
    cap = 2 * ny * nx + 16  # lazy deletion: a cell may be pushed more than once; grown on demand
    hk = np.empty(cap, np.float64)
    hv = np.empty(cap, np.int64)
    size = 0
    for iy in range(ny):
        for ix in range(nx):
            if free[iy, ix] and np.isfinite(dist[iy, ix]):
                size = _heap_push(hk, hv, size, dist[iy, ix], iy * nx + ix)
    done = np.zeros((ny, nx), np.bool_)
    while size > 0:
        d, v, size = _heap_pop(hk, hv, size)
        iy, ix = v // nx, v % nx
        if done[iy, ix] or d > dist[iy, ix]:
            continue
        done[iy, ix] = True
        for k in range(STENCIL16.shape[0]):
            dx, dy = STENCIL16[k, 0], STENCIL16[k, 1]
            jx, jy = ix + dx, iy + dy
            if jx < 0 or jy < 0 or jx >= nx or jy >= ny or not free[jy, jx] or done[jy, jx]:
                continue
            if not _passable(free, ix, iy, dx, dy):
                continue
            nd = d + math.sqrt(dx * dx + dy * dy) * h * 0.5 * (cost[iy, ix] + cost[jy, jx])
            if nd < dist[jy, jx]:
                dist[jy, jx] = nd
                if size == hk.shape[0]:
                    hk = np.concatenate((hk, np.empty(hk.shape[0], np.float64)))
                    hv = np.concatenate((hv, np.empty(hv.shape[0], np.int64)))
                size = _heap_push(hk, hv, size, nd, jy * nx + jx)
    return dist


# --------------------------------------------------------------------------
# Pure-numpy reference of `step` (tests and the benchmark's reference)
# --------------------------------------------------------------------------
def _np_closest(px, py, w):
    ax, ay, bx, by = w
    ux, uy = bx - ax, by - ay
    uu = ux * ux + uy * uy
    t = np.zeros_like(px) if uu == 0.0 else np.clip(((px - ax) * ux + (py - ay) * uy) / uu, 0, 1)
    return ax + t * ux, ay + t * uy


def _np_crosses(px, py, qx, qy, w):
    ax, ay, bx, by = w
    d1 = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    d2 = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
    d3 = (qx - px) * (ay - py) - (qy - py) * (ax - px)
    d4 = (qx - px) * (by - py) - (qy - py) * (bx - px)
    return (d1 * d2 <= 0.0) & (d3 * d4 <= 0.0) & ~((d1 == 0.0) & (d2 == 0.0))


def step_numpy(pos, e0, v0, active, prm, walls, exits, exit_open, dt, period_x=0.0, block=1024):
    """The same step as :func:`step`, vectorised with numpy over all pairs (O(n^2), in row blocks).

    Parameters are the kernel's, with ``walls`` a plain (m, 4) segment array
    (no cell lists: every pair and wall is tested against the cut-off).

    Returns
    -------
    (new_pos, speed, exit_index) : tuple of ndarray
    """
    n = pos.shape[0]
    act = active.astype(bool)
    idx = np.flatnonzero(act)
    ell, rc2 = prm.length, prm.cutoff**2
    new = pos.astype(np.float64).copy()
    speed = np.zeros(n)
    out_exit = np.full(n, NO_EXIT, dtype=np.int64)
    xa, ya = pos[idx, 0], pos[idx, 1]
    for b0 in range(0, idx.size, block):
        rows = idx[b0 : b0 + block]
        px, py = pos[rows, 0], pos[rows, 1]
        dx = px[:, None] - xa[None, :]
        dy = py[:, None] - ya[None, :]
        if period_x > 0.0:
            dx = dx - period_x * np.rint(dx / period_x)
        d2 = dx * dx + dy * dy
        reach = np.minimum(prm.cutoff, np.maximum(prm.rep_cutoff, ell + prm.time_gap * v0[rows] + 0.1))
        near = (d2 < reach[:, None] ** 2) & (d2 > 0.0) & (rows[:, None] != idx[None, :])
        rep = near & (d2 < prm.rep_cutoff**2)
        d = np.sqrt(np.where(rep, d2, 1.0))
        r = np.where(rep, prm.a * np.exp((ell - d) / prm.d) / d, 0.0)
        ex = e0[rows, 0] + (r * dx).sum(axis=1)
        ey = e0[rows, 1] + (r * dy).sum(axis=1)
        for w in walls:
            qx, qy = _np_closest(px, py, w)
            wx, wy = px - qx, py - qy
            wd2 = wx * wx + wy * wy
            hit = (wd2 < rc2) & (wd2 > 0.0)
            wd = np.sqrt(np.where(hit, wd2, 1.0))
            rw = np.where(hit, prm.a_wall * np.exp((0.5 * ell - wd) / prm.d_wall) / wd, 0.0)
            ex = ex + rw * wx
            ey = ey + rw * wy
        norm = np.sqrt(ex * ex + ey * ey)
        moving = norm > 0.0
        ex = np.where(moving, ex / np.where(moving, norm, 1.0), 0.0)
        ey = np.where(moving, ey / np.where(moving, norm, 1.0), 0.0)
        ahead = near & ((-dx) * ex[:, None] + (-dy) * ey[:, None] > 0.0)
        ahead &= np.abs(ex[:, None] * (-dy) - ey[:, None] * (-dx)) <= ell
        s = np.where(ahead, np.sqrt(d2), np.inf).min(axis=1, initial=np.inf)
        for w in walls:
            ax, ay, bx, by = w
            ux, uy = bx - ax, by - ay
            den = ex * uy - ey * ux
            safe = np.where(den == 0.0, 1.0, den)
            qx, qy = ax - px, ay - py
            t = (qx * uy - qy * ux) / safe
            sw = (qx * ey - qy * ex) / safe
            hit = (den != 0.0) & (t > 0.0) & (sw >= 0.0) & (sw <= 1.0)
            s = np.minimum(s, np.where(hit, t, np.inf) + 0.5 * ell)
        v = np.minimum(v0[rows], np.maximum(0.0, (s - ell) / prm.time_gap))
        v = np.where(moving, v, 0.0)
        mx, my = v * ex * dt, v * ey * dt
        for w in walls:
            qx, qy = _np_closest(px + mx, py + my, w)
            close = (px + mx - qx) ** 2 + (py + my - qy) ** 2 < prm.clearance**2
            cx0, cy0 = _np_closest(px, py, w)
            nx_, ny_ = px - cx0, py - cy0
            nn = np.sqrt(nx_ * nx_ + ny_ * ny_)
            close &= nn > 0.0
            nns = np.where(nn > 0.0, nn, 1.0)
            nx_, ny_ = nx_ / nns, ny_ / nns
            along = mx * nx_ + my * ny_
            slide = close & (along < 0.0)
            mx = np.where(slide, mx - along * nx_, mx)
            my = np.where(slide, my - along * ny_, my)
        qx1, qy1 = px + mx, py + my
        bad = np.zeros(rows.size, dtype=bool)
        for w in walls:
            bad |= _np_crosses(px, py, qx1, qy1, w)
            ax, ay = _np_closest(qx1, qy1, w)
            dq2 = (qx1 - ax) ** 2 + (qy1 - ay) ** 2
            bx, by = _np_closest(px, py, w)
            bad |= (dq2 < prm.clearance**2) & (dq2 < (px - bx) ** 2 + (py - by) ** 2)
        qx1 = np.where(bad, px, qx1)
        qy1 = np.where(bad, py, qy1)
        ex_id = np.full(rows.size, NO_EXIT, dtype=np.int64)
        for k in range(exits.shape[0] - 1, -1, -1):  # the first crossing exit wins
            if exit_open[k]:
                ex_id = np.where(_np_crosses(px, py, qx1, qy1, exits[k]), k, ex_id)
        step_len = np.sqrt((qx1 - px) ** 2 + (qy1 - py) ** 2)
        if period_x > 0.0:
            qx1 = qx1 - period_x * np.floor(qx1 / period_x)
        new[rows, 0], new[rows, 1] = qx1, qy1
        speed[rows] = step_len / dt
        out_exit[rows] = ex_id
    return new, speed, out_exit


# --------------------------------------------------------------------------
# Set-up helpers (numpy; run once, or when an exit closes)
# --------------------------------------------------------------------------
def make_cells(bounds, cutoff, n_agents, period_x=0.0):
    """An empty :class:`Cells` covering ``bounds`` (xmin, ymin, xmax, ymax) with cells of a third of the cut-off.

    Small cells fit the search to each agent's own radius (often well below
    the cut-off) and let it skip the cells beyond it; a third of the cut-off
    measured about 15 % faster than half. With ``period_x`` > 0 the x range
    is [0, period_x) and the cell count along x divides it exactly (at least
    2 cut-offs and a cell, so no neighbour is seen twice).
    """
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    cs = cutoff / 3.0
    if period_x > 0.0:
        nx = int(period_x // cs)
        if period_x < 2 * cutoff + cs:
            raise ValueError(f"period_x {period_x} m must be at least {2 * cutoff + cs:.2f} m")
        x0, csx = 0.0, period_x / nx
    else:
        nx = max(1, int(math.ceil((xmax - xmin) / cs)))
        x0, csx = xmin, cs
    ny = max(1, int(math.ceil((ymax - ymin) / cs)))
    return Cells(
        x0, ymin, csx, cs, nx, ny, float(period_x),
        np.zeros(nx * ny + 1, np.int64), np.zeros(max(n_agents, 1), np.int64),
        np.zeros((max(n_agents, 1), 2)),
    )  # fmt: skip


def make_wall_grid(segments, bounds, cutoff):
    """A :class:`WallGrid` listing, per cell of size ``cutoff``, every wall within ``cutoff`` of it.

    A wall is listed in every cell its bounding box grown by ``cutoff``
    overlaps (a superset, in increasing wall index), so an agent's own cell
    lists every wall within ``cutoff`` of the agent.
    """
    seg = np.ascontiguousarray(segments, dtype=np.float64).reshape(-1, 4)
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    cs = float(cutoff)
    nx = max(1, int(math.ceil((xmax - xmin) / cs)))
    ny = max(1, int(math.ceil((ymax - ymin) / cs)))
    lists: list[list[int]] = [[] for _ in range(nx * ny)]
    for k, (ax, ay, bx, by) in enumerate(seg):
        i0 = max(0, int(math.floor((min(ax, bx) - cs - xmin) / cs)))
        i1 = min(nx - 1, int(math.floor((max(ax, bx) + cs - xmin) / cs)))
        j0 = max(0, int(math.floor((min(ay, by) - cs - ymin) / cs)))
        j1 = min(ny - 1, int(math.floor((max(ay, by) + cs - ymin) / cs)))
        for j in range(j0, j1 + 1):
            for i in range(i0, i1 + 1):
                lists[j * nx + i].append(k)
    start = np.zeros(nx * ny + 1, np.int64)
    start[1:] = np.cumsum([len(c) for c in lists])
    index = np.array([k for c in lists for k in c], dtype=np.int64)
    if index.size == 0:
        index = np.zeros(0, np.int64)
    if seg.shape[0] == 0:
        seg = np.zeros((1, 4))  # numba needs a 2-D array; no cell lists it
    return WallGrid(seg, xmin, ymin, cs, nx, ny, start, index)
