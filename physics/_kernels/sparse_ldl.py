"""Sparse LDLᵀ factorisation of a symmetric positive definite matrix with a pattern fixed once.

The zone model's pressure Jacobian is the same graph every step (compartments joined by vents) with new
values every Newton iteration, so the pattern work is done once per network and only the numbers each time:

- :func:`minimum_degree` orders the graph's nodes to keep the fill low (the greedy minimum-degree rule of
  Tinney & Walker 1967 / George & Liu 1989: leaves first, so a flat joined to one corridor costs nothing);
- :func:`symbolic` builds the elimination tree and the column counts of L (Davis, *Direct Methods for Sparse
  Linear Systems*, SIAM 2006, §4; the row-subtree algorithm of his LDL package);
- :func:`numeric` computes L and D (up-looking, row by row), :func:`solve` does L·D·Lᵀ·x = b;
- :func:`numeric_rows` is :func:`numeric` on the rows' patterns found once (:func:`row_patterns`), and
  :func:`numeric_lists` / :func:`solve_rows` the same arithmetic again from static lists of its operations
  (:func:`row_positions`, :func:`update_lists`, :func:`rows_by_column`), in place and without a work vector.

The matrix is held as the upper triangle by columns (CSC: column k lists rows i ≤ k), in the permuted order.
Pure kernels over arrays; the reference for tests is ``numpy.linalg.solve`` on the dense matrix.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit


def minimum_degree(n: int, edges: np.ndarray) -> np.ndarray:
    """An elimination order of the ``n`` nodes of the graph with ``edges`` (E, 2) by the greedy minimum-degree
    rule (ties by the lower node number): ``order[k]`` is the node eliminated k-th. Plain Python, once per graph."""
    adj: list[set[int]] = [set() for _ in range(n)]
    for a, b in np.asarray(edges, np.int64).reshape(-1, 2):
        if a != b and a >= 0 and b >= 0:
            adj[a].add(int(b))
            adj[b].add(int(a))
    heap = [(len(adj[i]), i) for i in range(n)]
    heapq.heapify(heap)
    done = np.zeros(n, bool)
    order = np.empty(n, np.int64)
    k = 0
    while heap:
        deg, i = heapq.heappop(heap)
        if done[i] or deg != len(adj[i]):
            continue  # eliminated already, or a stale entry (its degree changed since)
        done[i] = True
        order[k] = i
        k += 1
        nbrs = adj[i]
        for j in nbrs:  # eliminating i joins its neighbours into a clique (the fill)
            adj[j].discard(i)
            adj[j].update(m for m in nbrs if m != j)
            heapq.heappush(heap, (len(adj[j]), j))
        adj[i] = set()
    return order


def pattern(n: int, edges: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The permuted upper triangle's CSC pattern of the matrix diag + Σ edges.

    Returns (ap, ai, diag_pos, edge_pos): column pointers and row indices (rows ascending within a column, the
    diagonal last), the position of each node's diagonal entry and of each edge's off-diagonal entry (−1 where
    the edge has an end < 0, which adds to the diagonal only). Several edges between one pair share a position.
    """
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    new = np.empty(n, np.int64)
    new[np.asarray(order, np.int64)] = np.arange(n)
    cols: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        if a >= 0 and b >= 0 and a != b:
            i, j = sorted((int(new[a]), int(new[b])))
            cols[j].add(i)
    ap = np.zeros(n + 1, np.int64)
    ai_list: list[int] = []
    where: dict[tuple[int, int], int] = {}
    for j in range(n):
        for i in sorted(cols[j]):
            where[(i, j)] = len(ai_list)
            ai_list.append(i)
        where[(j, j)] = len(ai_list)
        ai_list.append(j)
        ap[j + 1] = len(ai_list)
    diag_pos = np.array([where[(int(new[i]), int(new[i]))] for i in range(n)], np.int64)
    edge_pos = np.full(edges.shape[0], -1, np.int64)
    for e, (a, b) in enumerate(edges):
        if a >= 0 and b >= 0 and a != b:
            i, j = sorted((int(new[a]), int(new[b])))
            edge_pos[e] = where[(i, j)]
    return ap, np.asarray(ai_list, np.int64), diag_pos, edge_pos


@njit(cache=True)
def symbolic(ap, ai):
    """Elimination tree ``parent`` and column pointers ``lp`` of L (strictly lower part, by columns) for the
    upper-triangular CSC pattern (ap, ai) (Davis 2006, LDL: ``ldl_symbolic``)."""
    n = ap.shape[0] - 1
    parent = np.full(n, -1, np.int64)
    flag = np.empty(n, np.int64)
    lnz = np.zeros(n, np.int64)
    for k in range(n):
        flag[k] = k
        for p in range(ap[k], ap[k + 1]):
            i = ai[p]
            while i < k and flag[i] != k:  # walk up the tree from i to the root of row k's subtree
                if parent[i] == -1:
                    parent[i] = k
                lnz[i] += 1
                flag[i] = k
                i = parent[i]
    lp = np.zeros(n + 1, np.int64)
    for k in range(n):
        lp[k + 1] = lp[k] + lnz[k]
    return parent, lp


@njit(cache=True)
def numeric(ap, ai, ax, parent, lp, li, lx, d):
    """L (unit lower, strictly-lower entries by columns into ``li``/``lx``) and D (``d``) of the matrix with
    upper-triangular CSC values ``ax`` on the pattern (ap, ai); returns n, or the column k where D[k] ≤ 0
    (not positive definite; L and D are then incomplete)."""
    n = ap.shape[0] - 1
    y = np.zeros(n)
    pat = np.empty(n, np.int64)
    flag = np.empty(n, np.int64)
    lnz = np.zeros(n, np.int64)
    for k in range(n):
        top = n
        flag[k] = k
        for p in range(ap[k], ap[k + 1]):
            i = ai[p]
            y[i] += ax[p]
            length = 0
            while i < k and flag[i] != k:  # the nonzero pattern of row k of L: a subtree of the etree
                pat[length] = i
                length += 1
                flag[i] = k
                i = parent[i]
            while length > 0:
                top -= 1
                length -= 1
                pat[top] = pat[length]
        dk = y[k]
        y[k] = 0.0
        for t in range(top, n):
            i = pat[t]
            yi = y[i]
            y[i] = 0.0
            p2 = lp[i] + lnz[i]
            for p in range(lp[i], p2):
                y[li[p]] -= lx[p] * yi
            lki = yi / d[i]
            dk -= lki * yi
            li[p2] = k
            lx[p2] = lki
            lnz[i] += 1
        d[k] = dk
        if not dk > 0.0:
            return k
    return n


@njit(cache=True)
def row_patterns(ap, ai, parent):
    """The nonzero pattern of every row of L, once per pattern: row k's columns ``rj[rp[k]:rp[k+1]]`` in the order
    :func:`numeric` visits them (its walk up the elimination tree), so :func:`numeric_rows` on them gives the same
    L and D, exactly, without the walks."""
    n = ap.shape[0] - 1
    flag = np.empty(n, np.int64)
    pat = np.empty(n, np.int64)
    rp = np.zeros(n + 1, np.int64)
    rows = np.empty(0, np.int64)
    for sweep in range(2):  # count, then fill
        for k in range(n):
            top = n
            flag[k] = k
            for p in range(ap[k], ap[k + 1]):
                i = ai[p]
                length = 0
                while i < k and flag[i] != k:
                    pat[length] = i
                    length += 1
                    flag[i] = k
                    i = parent[i]
                while length > 0:
                    top -= 1
                    length -= 1
                    pat[top] = pat[length]
            if sweep == 0:
                rp[k + 1] = rp[k] + n - top
            else:
                rows[rp[k]:rp[k + 1]] = pat[top:n]
        if sweep == 0:
            rows = np.empty(rp[n], np.int64)
    return rp, rows


@njit(cache=True)
def numeric_rows(ap, ai, ax, rp, rj, lp, li, lx, d):
    """:func:`numeric` with the rows' patterns of :func:`row_patterns` (the same arithmetic in the same order: the
    same L and D to the bit); returns n, or the column k where D[k] ≤ 0."""
    n = ap.shape[0] - 1
    y = np.zeros(n)
    lnz = np.zeros(n, np.int64)
    for k in range(n):
        for p in range(ap[k], ap[k + 1]):
            y[ai[p]] += ax[p]
        dk = y[k]
        y[k] = 0.0
        for t in range(rp[k], rp[k + 1]):
            i = rj[t]
            yi = y[i]
            y[i] = 0.0
            p2 = lp[i] + lnz[i]
            for p in range(lp[i], p2):
                y[li[p]] -= lx[p] * yi
            lki = yi / d[i]
            dk -= lki * yi
            li[p2] = k
            lx[p2] = lki
            lnz[i] += 1
        d[k] = dk
        if not dk > 0.0:
            return k
    return n


@njit(cache=True)
def solve(lp, li, lx, d, x):
    """x ← (L·D·Lᵀ)⁻¹·x in place."""
    n = d.shape[0]
    for j in range(n):
        xj = x[j]
        for p in range(lp[j], lp[j + 1]):
            x[li[p]] -= lx[p] * xj
    for j in range(n):
        x[j] /= d[j]
    for j in range(n - 1, -1, -1):
        s = x[j]
        for p in range(lp[j], lp[j + 1]):
            s -= lx[p] * x[li[p]]
        x[j] = s


# ----------------------------------------------------------------------------- static update lists
# The zone model's factor is almost a forest (the 2,212-compartment tower: nnz(L) = 4,749, 2.1 entries a row, most
# columns of L with 0-2 entries), so :func:`numeric_rows`' dense work vector costs more than its arithmetic: a
# scatter of A's column, a gather and reset of every entry, a count per column. The functions below list, once per
# pattern, every multiply-subtract of the up-looking factorisation by the positions of its operands in ``lx``; the
# factorisation then runs in place in ``lx`` (A's strictly lower entries written there, fill zeros) with the same
# operations in the same order as :func:`numeric_rows`: the same L and D to the bit.


@njit(cache=True)
def row_positions(rp, rj, lp):
    """Where each entry of the rows' patterns (:func:`row_patterns`) sits in L's columns: ``lq[t]`` the position in
    ``lx`` of L[k, rj[t]] (t in row k), and ``li`` the row of every entry of L (as :func:`numeric` fills it: a
    column's rows ascending). Once per pattern."""
    n = rp.shape[0] - 1
    cnt = np.zeros(n, np.int64)
    lq = np.empty(rp[n], np.int64)
    li = np.empty(lp[n], np.int64)
    for k in range(n):
        for t in range(rp[k], rp[k + 1]):
            i = rj[t]
            q = lp[i] + cnt[i]
            cnt[i] += 1
            lq[t] = q
            li[q] = k
    return lq, li


@njit(cache=True)
def update_lists(rp, rj, lp, li, lq):
    """The multiply-subtracts of the up-looking factorisation, once per pattern: while row k eliminates column
    i = rj[t], every entry L[j, i] already known (j < k: positions lp[i] .. lq[t] − 1) updates L[k, j]'s partial
    value, ``lx[ut[u]] −= lx[us[u]]·y_i`` for u in up[t] .. up[t+1] − 1, in :func:`numeric_rows`' order. The tower
    has 6,275 of them for 4,749 entries of L."""
    n = rp.shape[0] - 1
    loc = np.full(n, -1, np.int64)  # L[k, j]'s position for j in row k's pattern, for the current row k
    up = np.zeros(rp[n] + 1, np.int64)
    us = np.empty(0, np.int64)
    ut = np.empty(0, np.int64)
    for sweep in range(2):  # count, then fill
        for k in range(n):
            for t in range(rp[k], rp[k + 1]):
                loc[rj[t]] = lq[t]
            for t in range(rp[k], rp[k + 1]):
                i = rj[t]
                if sweep == 0:
                    up[t + 1] = up[t] + lq[t] - lp[i]
                else:
                    u = up[t]
                    for p in range(lp[i], lq[t]):
                        us[u] = p
                        ut[u] = loc[li[p]]
                        u += 1
        if sweep == 0:
            us = np.empty(up[rp[n]], np.int64)
            ut = np.empty(up[rp[n]], np.int64)
    return up, us, ut


@njit(cache=True)
def rows_by_column(rp, rj, lq):
    """Each row's entries of L sorted by column: ``sj[t]`` the columns ascending, ``sq[t]`` their positions in
    ``lx`` (:func:`solve_rows`' forward substitution by rows subtracts in the column order of :func:`solve`'s)."""
    n = rp.shape[0] - 1
    sj = np.empty(rp[n], np.int64)
    sq = np.empty(rp[n], np.int64)
    for k in range(n):
        a, b = rp[k], rp[k + 1]
        o = np.argsort(rj[a:b])
        for s in range(b - a):
            sj[a + s] = rj[a + o[s]]
            sq[a + s] = lq[a + o[s]]
    return sj, sq


@njit(cache=True)
def numeric_lists(rp, rj, lq, up, us, ut, ad, lx, d):
    """L and D in place: on entry ``lx`` holds the matrix's strictly lower entries on L's pattern (A[k, i] at L[k, i]'s
    position, fill zeros) and ``ad`` its diagonal; on return ``lx`` holds L and ``d`` D, those of :func:`numeric_rows`
    to the bit (the same operations in the same order, from the lists of :func:`row_positions` and
    :func:`update_lists`). Returns n, or the column k where D[k] ≤ 0 (L and D then incomplete)."""
    n = rp.shape[0] - 1
    for k in range(n):
        dk = ad[k]
        for t in range(rp[k], rp[k + 1]):
            q = lq[t]
            yi = lx[q]
            for u in range(up[t], up[t + 1]):
                lx[ut[u]] -= lx[us[u]] * yi
            i = rj[t]
            lki = yi / d[i]
            dk -= lki * yi
            lx[q] = lki
        d[k] = dk
        if not dk > 0.0:
            return k
    return n


@njit(cache=True)
def solve_rows(rp, sj, sq, lp, li, lx, d, order, b, y, x):
    """x = A⁻¹·b for A[order][:, order] = L·D·Lᵀ (``order[k]`` the original index of row k), :func:`solve`'s
    arithmetic in its order with the permutations folded in: the forward substitution by rows (each row's columns
    ascending, :func:`rows_by_column`) reads b through ``order``, the backward one divides by D as it goes and writes
    x through ``order``; ``y`` scratch of n."""
    n = d.shape[0]
    for k in range(n):
        s = b[order[k]]
        for t in range(rp[k], rp[k + 1]):
            s -= lx[sq[t]] * y[sj[t]]
        y[k] = s
    for j in range(n - 1, -1, -1):
        s = y[j] / d[j]
        for p in range(lp[j], lp[j + 1]):
            s -= lx[p] * y[li[p]]
        y[j] = s
        x[order[j]] = s
