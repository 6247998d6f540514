"""Numba kernel of landslide runout: energy-line reach and volume routing (arrays in, arrays out).

Method
------
Each *slide* (a set of source cells sharing one travel angle alpha, e.g. one
connected body of failed cells) is routed on its own; the slides' deposits
are then summed (they do not interact).

1. **Reach: energy line** (the Fahrböschung / travel-angle rule, Heim 1932;
   as used on grids by Flow-R, Horton et al. 2013, NHESS 13:869, and
   com4FlowPy). Material leaving a source at ground elevation ``z0`` carries
   an energy line ``E = z0 - L tan(alpha)`` after a horizontal path length
   ``L``. A move from cell ``c`` to a neighbour ``n`` (8 neighbours, step
   ``d`` = cell size or cell size x sqrt 2) is allowed when

   * it does not go uphill: ``z_n <= z_c`` (flat moves are allowed), and
   * the energy line stays at or above the ground: ``E_c - d tan(alpha) >= z_n``.

   ``E(n)`` is the highest energy line any source of the slide brings to
   ``n`` over allowed paths (max over sources of ``z0_s - L_s(n) tan alpha``,
   i.e. the shortest allowed path from each source). It is computed by a
   multi-source Dijkstra search (a binary heap, largest ``E`` first); the
   rule is monotone in ``E``, so the search is exact for it. Every reached
   cell therefore lies at or below the highest source, and within
   ``(z0 - z_n) / tan(alpha)`` of path length from a source. Path lengths
   are along 8-connected steps, so they exceed the straight-line distance by
   up to 8 % off the grid axes: the reach is slightly shorter there.

2. **Routing: multiple flow directions.** Cells are taken in decreasing
   ``E`` (the Dijkstra order). A cell passes the material it holds to the
   reached neighbours ``n`` that satisfy both rules above *and* have
   ``E_n < E_c`` (so the routing graph is acyclic), in shares proportional
   to the modified Holmgren (1994) weight of Horton et al. (2013)::

       w_n = ((z_c - z_n + dh) / d_n) ** p

   (``dh`` raises the centre cell so that material spreads over flat ground;
   the caller's defaults, dh = 2 m and p = 4, are the debris-flow values we
   take from Horton et al. 2013, not re-checked against the paper here; p = 1
   spreads widest, large p approaches steepest descent). A neighbour outside
   the grid or on NaN elevation is an *exit* with the ground of ``c``
   (edge replicated): material sent there leaves the grid and is counted
   per slide.

3. **Deposition: volume conserving.** The kinetic head is ``h = E - z``
   (>= 0 in the reach). A share arriving at ``n`` from ``c`` deposits the
   fraction ``1 - h_n / h_c`` when ``h_n < h_c`` (the flow decelerates:
   the share of material kept moving equals the share of head kept) and
   nothing otherwise; a cell with no allowed move (the energy line meets
   the ground, a pit, a closed flat) deposits all it holds. Down the fall
   line of a plane steeper than alpha nothing deposits (sideways, flat
   moves across it lose head, so a little does); on flat ground ``h`` falls
   with path length, and the deposit ends where the energy line meets the
   ground. Every share is either deposited, passed on or counted as left,
   so released volume = deposited + left to round-off.

On flat ground every direction the energy line allows gets the same weight:
material fans out from where it reaches the flat (no persistence or
inertia weighting, unlike Flow-R), and next to a grid edge part of it
leaves through the edge (flat exits), so keep the area of interest a runout
length away from the edges.

Routing neither lowers the DEM at the sources nor raises it by the
deposit, and the energy line starts at the source's ground surface (not
the centre of mass). No velocity cap, unlike Flow-R.

4. **Settling: the deposit limit** (:func:`settle`, after routing; volume
   conserving). Routing alone heaps everything that reaches a pit or a
   cell with no allowed move in that one cell (hundreds of metres in a
   30 m cell). The deposit is then relaxed on the *deposit surface*
   ``S = ground + deposit`` (ground: the DEM with every source cell
   lowered by its released depth, the slip scar): a cell whose surface
   stands above a neighbour's by more than ``tan(deposit angle) x d``
   topples, downhill only, to the level at which it is exactly stable
   against the neighbours it feeds (a sandpile relaxation, first-in
   first-out, repeated until every cell is stable to a tolerance or a
   topple budget runs out; the remaining excess is returned). A pit fills
   up to its spill level (within the deposit angle) and the rest spills
   on; a neighbour off the grid or on NaN elevation is an exit at the
   donor's own ground (edge replicated, as in routing): what it takes
   leaves the grid. Deposit cannot rest on ground steeper than the deposit
   angle, so settling also carries thin veneers off steep ground and may
   move material past the energy line's reach, down to ground gentler
   than the angle; it never moves material up the deposit surface.

Layout
------
``elev`` (ny * nx,) float64 ground elevation, rows of ``nx`` (NaN = outside the model);
``src_vol`` (ny * nx,) float64 released volume per cell (m^3);
``slide_ptr`` (n_slides + 1,) int64 and ``slide_cells`` (sum,) int64: the
flat cell indices of slide ``s`` are ``slide_cells[slide_ptr[s]:slide_ptr[s+1]]``;
``tan_alpha`` (n_slides,) float64. Slides are split over ``n_chunks``
workers (slide ``s`` to chunk ``s % n_chunks``); each chunk sums into its
own arrays, summed in chunk order at the end, so results are identical
for the same ``n_chunks`` (and equal to round-off otherwise).
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: 8-neighbour row and column offsets: the 4 orthogonal first, then the 4 diagonal.
DR = np.array([-1, 1, 0, 0, -1, -1, 1, 1], dtype=np.int64)
DC = np.array([0, 0, -1, 1, -1, 1, -1, 1], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _push(keys, vals, size, key, val):
    """Push (key, val) on the min-heap ``keys[:size]``; returns (keys, vals, size) (grown if full)."""
    if size == keys.shape[0]:
        k2 = np.empty(2 * keys.shape[0], dtype=np.float64)
        v2 = np.empty(2 * keys.shape[0], dtype=np.int64)
        k2[:size] = keys[:size]
        v2[:size] = vals[:size]
        keys, vals = k2, v2
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return keys, vals, size + 1


@numba.njit(cache=True, nogil=True)
def _pop(keys, vals, size):
    """Remove the smallest entry of the min-heap; returns (key, val, new size)."""
    key = keys[0]
    val = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        j = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            j = left + 1
        if keys[i] <= keys[j]:
            break
        keys[i], keys[j] = keys[j], keys[i]
        vals[i], vals[j] = vals[j], vals[i]
        i = j
    return key, val, size


@numba.njit(cache=True, nogil=True)
def _route_slide(elev, ny, nx, src_vol, cells, tan_a, cell_size, dh, exponent,
                 energy, held, order, keys, vals, dep, through, dep_tan):
    """Route one slide; adds to ``dep`` and ``through`` (m^3), and ``tan_a`` x its deposit to ``dep_tan``.

    Returns (volume left m^3, cells the material entered, length m, drop m,
    keys, vals): length is the largest horizontal distance from the
    slide's highest source cell to a cell its material entered, drop the
    height from that source down to the lowest such cell.

    ``energy`` must be -inf and ``held`` 0 on entry; both are reset on exit
    (only the cells this slide touched, listed in ``order``).
    """
    dist = np.empty(8, dtype=np.float64)
    drop = np.empty(8, dtype=np.float64)
    for k in range(8):
        dist[k] = cell_size if k < 4 else cell_size * math.sqrt(2.0)
        drop[k] = dist[k] * tan_a
    # 1. reach: multi-source Dijkstra on the energy line (largest E first).
    size = 0
    for i in range(cells.shape[0]):
        c = cells[i]
        z0 = elev[c]
        if z0 > energy[c]:
            energy[c] = z0
            keys, vals, size = _push(keys, vals, size, -z0, c)
    n_order = 0
    while size > 0:
        key, c, size = _pop(keys, vals, size)
        ec = energy[c]
        if -key != ec or held[c] < 0.0:
            continue  # stale entry, or already settled
        held[c] = -1.0  # settled marker during the search
        order[n_order] = c
        n_order += 1
        r = c // nx
        q = c - r * nx
        zc = elev[c]
        for k in range(8):
            rr = r + DR[k]
            qq = q + DC[k]
            if rr < 0 or rr >= ny or qq < 0 or qq >= nx:
                continue
            n = rr * nx + qq
            zn = elev[n]
            if not (zn <= zc):  # uphill or NaN
                continue
            cand = ec - drop[k]
            if cand >= zn and cand > energy[n]:
                energy[n] = cand
                keys, vals, size = _push(keys, vals, size, -cand, n)
    for i in range(n_order):
        held[order[i]] = 0.0
    for i in range(cells.shape[0]):
        c = cells[i]
        held[c] += src_vol[c]
    # the highest source: origin of the slide's length and drop
    top = cells[0]
    for i in range(cells.shape[0]):
        if elev[cells[i]] > elev[top]:
            top = cells[i]
    rt = top // nx
    qt = top - rt * nx
    # 2-3. routing and deposition in decreasing E.
    w = np.empty(8, dtype=np.float64)
    left = 0.0
    n_moved = 0
    length = 0.0
    zlow = elev[top]
    for i in range(n_order):
        c = order[i]
        m = held[c]
        if m <= 0.0:
            continue
        through[c] += m
        r = c // nx
        q = c - r * nx
        n_moved += 1
        length = max(length, math.hypot(r - rt, q - qt) * cell_size)
        zlow = min(zlow, elev[c])
        zc = elev[c]
        ec = energy[c]
        hc = ec - zc
        total = 0.0
        for k in range(8):
            w[k] = 0.0
            rr = r + DR[k]
            qq = q + DC[k]
            inside = 0 <= rr < ny and 0 <= qq < nx
            zn = np.nan
            if inside:
                zn = elev[rr * nx + qq]
            if not inside or math.isnan(zn):
                if ec - drop[k] >= zc:  # exit: edge ground replicated
                    w[k] = (dh / dist[k]) ** exponent
            else:
                n = rr * nx + qq
                en = energy[n]
                if zn <= zc and en < ec and ec - drop[k] >= zn:
                    w[k] = ((zc - zn + dh) / dist[k]) ** exponent
            total += w[k]
        if total <= 0.0:
            dep[c] += m
            dep_tan[c] += m * tan_a
            continue
        for k in range(8):
            if w[k] <= 0.0:
                continue
            share = m * (w[k] / total)
            rr = r + DR[k]
            qq = q + DC[k]
            if not (0 <= rr < ny and 0 <= qq < nx) or math.isnan(elev[rr * nx + qq]):
                left += share
                continue
            n = rr * nx + qq
            hn = energy[n] - elev[n]
            if hn < hc:
                keep = share * (hn / hc)
                dep[n] += share - keep
                dep_tan[n] += (share - keep) * tan_a
                held[n] += keep
            else:
                held[n] += share
    for i in range(n_order):
        c = order[i]
        energy[c] = -np.inf
        held[c] = 0.0
    return left, n_moved, length, elev[top] - zlow, keys, vals


@numba.njit(cache=True, nogil=True, parallel=True)
def route(elev, ny, nx, src_vol, slide_ptr, slide_cells, tan_alpha, cell_size, dh, exponent,
          n_chunks, dep, through, stats, dep_tan):
    """Route all slides; fill ``dep``, ``through``, ``dep_tan`` (ny * nx) and ``stats`` (4, n_slides).

    ``dep`` is the volume deposited per cell, ``through`` the volume that
    passed through (or started in) each cell, ``dep_tan`` the sum over
    slides of tan(alpha) x the slide's deposit there (m^3; divided by ``dep``
    it is the deposit-weighted tan(alpha) of the cell) (all overwritten). ``stats``
    rows per slide: volume that left the grid (m^3), cells its material
    entered, length (m) and drop (m) (see :func:`_route_slide`). Returns ``dep``.
    """
    n_cells = ny * nx
    n_slides = tan_alpha.shape[0]
    part_dep = np.zeros((n_chunks, n_cells), dtype=np.float64)
    part_thr = np.zeros((n_chunks, n_cells), dtype=np.float64)
    part_tan = np.zeros((n_chunks, n_cells), dtype=np.float64)
    for j in numba.prange(n_chunks):
        energy = np.full(n_cells, -np.inf)
        held = np.zeros(n_cells, dtype=np.float64)
        order = np.empty(n_cells, dtype=np.int64)
        keys = np.empty(1024, dtype=np.float64)
        vals = np.empty(1024, dtype=np.int64)
        for s in range(j, n_slides, n_chunks):
            cells = slide_cells[slide_ptr[s]:slide_ptr[s + 1]]
            lv, nr, ln, dz, keys, vals = _route_slide(elev, ny, nx, src_vol, cells, tan_alpha[s],
                                                      cell_size, dh, exponent, energy, held, order,
                                                      keys, vals, part_dep[j], part_thr[j], part_tan[j])
            stats[0, s] = lv
            stats[1, s] = nr
            stats[2, s] = ln
            stats[3, s] = dz
    dep[:] = 0.0
    through[:] = 0.0
    dep_tan[:] = 0.0
    for j in range(n_chunks):
        dep += part_dep[j]
        through += part_thr[j]
        dep_tan += part_tan[j]
    return dep


# ----------------------------------------------------------------------------- settling
@numba.njit(cache=True, nogil=True)
def _level(a, m, value, fall):
    """Level ``L`` over the sorted ``a[:m]`` at which the receivers ``a_i < L`` are filled.

    ``fall``: the donor's surface ``value`` is lowered to ``L`` and feeds
    them, ``sum(max(0, L - a_i)) = value - L``; otherwise a fixed thickness
    ``value`` is shared, ``sum(max(0, L - a_i)) = value``.
    """
    acc = 0.0
    level = a[0]
    for j in range(m):
        acc += a[j]
        if fall:
            level = (value + acc) / (j + 2)
        else:
            level = (value + acc) / (j + 1)
        if j + 1 == m or level <= a[j + 1]:
            return level
    return level


@numba.njit(cache=True, nogil=True)
def settle(elev, ny, nx, h, tan_d, cell_size, tol, max_topples, received):
    """Relax the deposit ``h`` (m, per cell, changed in place) to the deposit angle; volume conserving.

    A cell ``c`` holding deposit (``h_c > 0``) is *unstable* when its deposit
    surface ``S_c = z_c + h_c`` stands above a neighbour's ``S_n`` by more than
    ``tan_d[c] * d`` (+ ``tol``), ``d`` the centre distance (cell size, or x
    sqrt 2 diagonally). It *topples*: its surface is lowered to the level
    ``L`` at which it is exactly stable against the neighbours it feeds, each
    of which is raised to ``L - tan_d[c] * d_n`` (if lower), the volume
    lowered equal to the volume raised; when that would dig below the
    ground, the whole deposit ``h_c`` is shared the same way (raising the
    lowest first). A neighbour outside the grid or on NaN elevation is an
    exit at the donor's ground: what it receives leaves (returned), and it
    never rises. Material only moves to neighbours whose surface ends at
    least ``tan_d * d`` below the donor's (never uphill, never overshooting).
    ``tan_d`` of a receiver becomes the volume-weighted mean of its own and
    the donor's (the angle travels with the material).

    Order: a first-in first-out queue, seeded with the cells holding deposit
    in index order; a toppled cell queues its neighbours that hold deposit
    (in neighbour order DR/DC), each at most once at a time. The final state
    of a sandpile depends on the order of topples, so the order is part of
    the rule (the numpy reference follows it).

    Returns (volume left in thickness units x 1 cell, i.e. m; multiply by the
    cell area; topples made; largest remaining excess m over all cells with
    deposit, 0 when every cell is stable to ``tol``). Stops after
    ``max_topples`` topples. ``received`` (uint8) is set to 1 on cells that
    received material.
    """
    n_cells = ny * nx
    dist = np.empty(8, dtype=np.float64)
    for k in range(8):
        dist[k] = cell_size if k < 4 else cell_size * math.sqrt(2.0)
    queue = np.empty(n_cells, dtype=np.int64)
    inq = np.zeros(n_cells, dtype=np.uint8)
    head = 0
    count = 0
    for c in range(n_cells):
        if h[c] > 0.0:
            queue[(head + count) % n_cells] = c
            count += 1
            inq[c] = 1
    a = np.empty(8, dtype=np.float64)
    nb = np.empty(8, dtype=np.int64)
    srt_a = np.empty(8, dtype=np.float64)
    srt_k = np.empty(8, dtype=np.int64)
    left = 0.0
    topples = 0
    while count > 0 and topples < max_topples:
        c = queue[head]
        head = (head + 1) % n_cells
        count -= 1
        inq[c] = 0
        hc = h[c]
        if hc <= 0.0:
            continue
        r = c // nx
        q = c - r * nx
        zc = elev[c]
        sc = zc + hc
        t = tan_d[c]
        unstable = False
        for k in range(8):
            rr = r + DR[k]
            qq = q + DC[k]
            if 0 <= rr < ny and 0 <= qq < nx and not math.isnan(elev[rr * nx + qq]):
                n = rr * nx + qq
                nb[k] = n
                a[k] = elev[n] + h[n] + t * dist[k]
            else:
                nb[k] = -1
                a[k] = zc + t * dist[k]
            if sc - a[k] > tol:
                unstable = True
        if not unstable:
            continue
        topples += 1
        # neighbours below the donor, sorted by a (insertion sort; stable in k)
        m = 0
        for k in range(8):
            if a[k] < sc:
                j = m
                while j > 0 and srt_a[j - 1] > a[k]:
                    srt_a[j] = srt_a[j - 1]
                    srt_k[j] = srt_k[j - 1]
                    j -= 1
                srt_a[j] = a[k]
                srt_k[j] = k
                m += 1
        # non-exit receivers only, then the lowest exit level as a cap
        m_in = 0
        exit_min = np.inf
        for j in range(m):
            k = srt_k[j]
            if nb[k] < 0:
                exit_min = min(exit_min, srt_a[j])
            else:
                a[m_in] = srt_a[j]  # reuse a[] as the sorted non-exit levels
                nb_k = srt_k[j]
                srt_k[m_in] = nb_k
                m_in += 1
        level = _level(a, m_in, sc, True) if m_in > 0 else sc
        full = False
        if exit_min < sc and level > exit_min:
            level = exit_min  # > z_c: the exits take the rest
        elif level < zc:  # would dig below the ground: share all of h_c
            level = _level(a, m_in, hc, False)
            full = True
        given = 0.0
        for j in range(m_in):
            k = srt_k[j]
            add = level - a[j]
            if add <= 0.0:
                continue
            n = nb[k]
            hn = h[n]
            tan_d[n] = (hn * tan_d[n] + add * t) / (hn + add)
            h[n] = hn + add
            received[n] = 1
            given += add
        if full:
            out = 0.0
            h[c] = 0.0
        else:
            out = 0.0
            if exit_min < sc and level == exit_min:
                out = max(0.0, sc - level - given)  # what the exits take
            h[c] = hc - given - out
            if h[c] < 0.0:
                h[c] = 0.0
        left += out
        for k in range(8):
            n = nb[k]
            if n >= 0 and inq[n] == 0 and h[n] > 0.0:
                queue[(head + count) % n_cells] = n
                count += 1
                inq[n] = 1
    # remaining excess
    worst = 0.0
    for c in range(n_cells):
        hc = h[c]
        if hc <= 0.0:
            continue
        r = c // nx
        q = c - r * nx
        zc = elev[c]
        for k in range(8):
            rr = r + DR[k]
            qq = q + DC[k]
            if 0 <= rr < ny and 0 <= qq < nx and not math.isnan(elev[rr * nx + qq]):
                n = rr * nx + qq
                e = zc + hc - (elev[n] + h[n]) - tan_d[c] * dist[k]
            else:
                e = hc - tan_d[c] * dist[k]
            worst = max(worst, e)
    return left, topples, worst
