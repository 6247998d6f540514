"""Pure numpy/Python reference of the runout kernel (``physics/_kernels/runout.py``), for tests.

Same rules, computed another way: the energy line ``E`` of a slide by
whole-grid Bellman-Ford relaxation with shifted numpy arrays until nothing
changes (instead of a Dijkstra heap), then routing in the order of a sort by
``E`` descending (instead of the heap's pop order), cell by cell in Python.
Slow: small grids only.

The settling of the deposit to the deposit angle (:func:`settle_reference`)
follows the kernel's topple rule and its first-in first-out queue order (the
final state of a sandpile depends on the order of topples, so the order is
part of the rule), written independently: the level of a topple is found by
trying every count of receivers with numpy over the sorted neighbour
levels (instead of the kernel's running sum), on 2-D arrays with
``collections.deque``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

DR = (-1, 1, 0, 0, -1, -1, 1, 1)
DC = (0, 0, -1, 1, -1, 1, -1, 1)


def _shift(a, dr, dc, fill):
    """out[r, c] = a[r + dr, c + dc] (``fill`` outside)."""
    ny, nx = a.shape
    out = np.full_like(a, fill)
    r0, r1 = max(0, -dr), min(ny, ny - dr)
    c0, c1 = max(0, -dc), min(nx, nx - dc)
    out[r0:r1, c0:c1] = a[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
    return out


def energy_line(z, sources, tan_a, cs):
    """Highest energy line over allowed paths from ``sources`` (bool), -inf where unreached."""
    dist = [cs] * 4 + [cs * np.sqrt(2.0)] * 4
    e = np.where(sources, z, -np.inf)
    while True:
        new = e.copy()
        for k in range(8):
            # candidate for cell n from its neighbour c = n - (DR, DC)
            ec = _shift(e, -DR[k], -DC[k], -np.inf)
            zc = _shift(z, -DR[k], -DC[k], np.nan)
            cand = ec - dist[k] * tan_a
            with np.errstate(invalid="ignore"):
                ok = (z <= zc) & (cand >= z) & np.isfinite(ec)
            new = np.where(ok & (cand > new), cand, new)
        if np.array_equal(new, e):
            return e
        e = new


def route_reference(z, source_depth, labels, tan_alpha, cs, dh, p, with_tan=False):
    """(deposit m^3, through m^3, left m^3 per slide) with the kernel's rules; see its docstring.

    ``with_tan``: also return the deposit-weighted tan(alpha) per cell (0 where nothing deposited).
    """
    ny, nx = z.shape
    dist = [cs] * 4 + [cs * np.sqrt(2.0)] * 4
    dep = np.zeros((ny, nx))
    through = np.zeros((ny, nx))
    left = np.zeros(len(tan_alpha))
    dep_tan = np.zeros((ny, nx))
    for s, tan_a in enumerate(tan_alpha):
        before = dep.copy()
        src = labels == s + 1
        e = energy_line(z, src, tan_a, cs)
        held = np.where(src, source_depth * cs * cs, 0.0)
        reached = np.argwhere(np.isfinite(e))
        order = np.argsort(-e[reached[:, 0], reached[:, 1]], kind="stable")
        for r, c in reached[order]:
            m = held[r, c]
            if m <= 0:
                continue
            through[r, c] += m
            zc, ec = z[r, c], e[r, c]
            w = np.zeros(8)
            for k in range(8):
                rr, qq = r + DR[k], c + DC[k]
                if not (0 <= rr < ny and 0 <= qq < nx) or np.isnan(z[rr, qq]):
                    if ec - dist[k] * tan_a >= zc:
                        w[k] = (dh / dist[k]) ** p
                elif z[rr, qq] <= zc and e[rr, qq] < ec and ec - dist[k] * tan_a >= z[rr, qq]:
                    w[k] = ((zc - z[rr, qq] + dh) / dist[k]) ** p
            if w.sum() <= 0:
                dep[r, c] += m
                continue
            hc = ec - zc
            for k in np.flatnonzero(w):
                share = m * w[k] / w.sum()
                rr, qq = r + DR[k], c + DC[k]
                if not (0 <= rr < ny and 0 <= qq < nx) or np.isnan(z[rr, qq]):
                    left[s] += share
                    continue
                hn = e[rr, qq] - z[rr, qq]
                if hn < hc:
                    dep[rr, qq] += share * (1.0 - hn / hc)
                    held[rr, qq] += share * hn / hc
                else:
                    held[rr, qq] += share
        dep_tan += (dep - before) * tan_a
    if with_tan:
        with np.errstate(invalid="ignore", divide="ignore"):
            return dep, through, left, np.where(dep > 0, dep_tan / dep, 0.0)
    return dep, through, left


def _topple_level(levels, budget=None, top=None):
    """Level L over the sorted ``levels``: sum(max(0, L - a)) = top - L, or = budget.

    Tries j = 1..m receivers (the j lowest) and keeps the j whose level lies
    in [a_j, a_{j+1}].
    """
    m = len(levels)
    j = np.arange(1, m + 1)
    cums = np.cumsum(levels)
    cand = (top + cums) / (j + 1) if budget is None else (budget + cums) / j
    upper = np.append(levels[1:], np.inf)
    ok = np.flatnonzero((cand >= levels) & (cand <= upper))
    return cand[ok[0]]


def settle_reference(z, h, tan_d, cs, tol, max_topples=10**9):
    """Settle the deposit thickness ``h`` (m, 2-D) to ``tan_d`` (2-D): (h, tan_d, left m, topples, received).

    ``left`` is in m (thickness over one cell; multiply by the cell area).
    Rules and order: ``physics._kernels.runout.settle``.
    """
    ny, nx = z.shape
    h = np.asarray(h, dtype=float).copy()
    tan_d = np.asarray(tan_d, dtype=float).copy()
    dist = np.array([cs] * 4 + [cs * np.sqrt(2.0)] * 4)
    received = np.zeros((ny, nx), dtype=bool)
    queue = deque((int(r), int(c)) for r, c in zip(*np.nonzero(h > 0), strict=True))
    queued = h > 0
    left = 0.0
    topples = 0
    while queue and topples < max_topples:
        r, c = queue.popleft()
        queued[r, c] = False
        if h[r, c] <= 0:
            continue
        zc, t = z[r, c], tan_d[r, c]
        sc = zc + h[r, c]
        inside = []
        a = np.empty(8)
        for k in range(8):
            rr, qq = r + DR[k], c + DC[k]
            ok = 0 <= rr < ny and 0 <= qq < nx and not np.isnan(z[rr, qq])
            inside.append(ok)
            a[k] = (z[rr, qq] + h[rr, qq] if ok else zc) + t * dist[k]
        if not (sc - a > tol).any():
            continue
        topples += 1
        inside = np.array(inside)
        below = a < sc
        ks = np.flatnonzero(below & inside)
        ks = ks[np.argsort(a[ks], kind="stable")]
        exits = a[below & ~inside]
        exit_min = exits.min() if exits.size else np.inf
        level = _topple_level(a[ks], top=sc) if ks.size else sc
        full = False
        if exit_min < sc and level > exit_min:
            level = exit_min
        elif level < zc:
            level = _topple_level(a[ks], budget=h[r, c])
            full = True
        given = 0.0
        for k in ks:
            add = level - a[k]
            if add <= 0:
                continue
            rr, qq = r + DR[k], c + DC[k]
            tan_d[rr, qq] = (h[rr, qq] * tan_d[rr, qq] + add * t) / (h[rr, qq] + add)
            h[rr, qq] += add
            received[rr, qq] = True
            given += add
        if full:
            h[r, c] = 0.0
        else:
            out = max(0.0, sc - level - given) if (exit_min < sc and level == exit_min) else 0.0
            h[r, c] = max(0.0, h[r, c] - given - out)
            left += out
        for k in range(8):
            rr, qq = r + DR[k], c + DC[k]
            if inside[k] and not queued[rr, qq] and h[rr, qq] > 0:
                queue.append((rr, qq))
                queued[rr, qq] = True
    return h, tan_d, left, topples, received
