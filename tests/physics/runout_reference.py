"""Pure numpy/Python reference of the runout kernel (``physics/_kernels/runout.py``), for tests.

Same rules, computed another way: the energy line ``E`` of a slide by
whole-grid Bellman-Ford relaxation with shifted numpy arrays until nothing
changes (instead of a Dijkstra heap), then routing in the order of a sort by
``E`` descending (instead of the heap's pop order), cell by cell in Python.
Slow: small grids only.
"""

from __future__ import annotations

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


def route_reference(z, source_depth, labels, tan_alpha, cs, dh, p):
    """(deposit m^3, through m^3, left m^3 per slide) with the kernel's rules; see its docstring."""
    ny, nx = z.shape
    dist = [cs] * 4 + [cs * np.sqrt(2.0)] * 4
    dep = np.zeros((ny, nx))
    through = np.zeros((ny, nx))
    left = np.zeros(len(tan_alpha))
    for s, tan_a in enumerate(tan_alpha):
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
    return dep, through, left
