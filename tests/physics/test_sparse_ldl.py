"""Sparse LDLᵀ (physics._kernels.sparse_ldl) against numpy.linalg.solve on the dense matrix.

The matrices are the zone model's pressure Jacobian: a positive diagonal plus the weighted graph Laplacian of
vents (edges to outside, end −1, on the diagonal only). A direct solve is exact up to round-off: the error
bound is a few ulps times the condition number (Higham, Accuracy and Stability of Numerical Algorithms, §10),
so the comparison is to 1e-9 relative on matrices whose condition number stays below 1e5.
"""

from __future__ import annotations

import numpy as np
import pytest

from physics._kernels import sparse_ldl as S


def _graph(rng, n):
    """A tower-like graph: a chain (a shaft), leaves on it (rooms off corridors), random cross links, outside."""
    edges = [(i, i + 1) for i in range(n // 3 - 1)]
    edges += [(i, int(rng.integers(0, n // 3))) for i in range(n // 3, n)]
    edges += [(int(rng.integers(0, n)), int(rng.integers(0, n))) for _ in range(n // 10)]
    edges += [(int(i), -1) for i in rng.integers(0, n, n // 5)]
    edges += [edges[0]]  # two vents between one pair share an entry
    return np.array(edges, np.int64)


def _assemble(n, edges, diag, w, order):
    ap, ai, dpos, epos = S.pattern(n, edges, order)
    dense = np.diag(diag.copy())
    ax = np.zeros(ai.shape[0])
    ax[dpos] += diag
    for e, (a, b) in enumerate(edges):
        if a == b:
            continue
        dense[a, a] += w[e]
        ax[dpos[a]] += w[e]
        if b >= 0:
            dense[b, b] += w[e]
            dense[a, b] -= w[e]
            dense[b, a] -= w[e]
            ax[dpos[b]] += w[e]
            ax[epos[e]] -= w[e]
    return ap, ai, ax, dense


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ldl_solves_vent_laplacians_as_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 200
    edges = _graph(rng, n)
    order = S.minimum_degree(n, edges)
    assert sorted(order.tolist()) == list(range(n))  # a permutation
    diag = rng.uniform(0.5, 2.0, n)
    w = rng.uniform(0.1, 50.0, len(edges))
    ap, ai, ax, dense = _assemble(n, edges, diag, w, order)
    parent, lp = S.symbolic(ap, ai)
    li, lx, d = np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n)
    assert S.numeric(ap, ai, ax, parent, lp, li, lx, d) == n
    assert np.linalg.cond(dense) < 1e5
    b = rng.normal(size=n)
    new = np.empty(n, np.int64)
    new[order] = np.arange(n)
    x = np.empty(n)
    x[new] = b
    S.solve(lp, li, lx, d, x)
    expected = np.linalg.solve(dense, b)
    np.testing.assert_allclose(x[new], expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_minimum_degree_takes_leaves_first_so_a_star_has_no_fill():
    """A corridor with 50 rooms off it: eliminating the rooms first leaves L with one entry per room."""
    n = 51
    edges = np.array([(0, i) for i in range(1, n)], np.int64)
    order = S.minimum_degree(n, edges)
    assert 0 in order[-2:]  # the corridor goes last (or with the last room: degree 1 each, a tie)
    ap, ai, _d, _e = S.pattern(n, edges, order)
    _parent, lp = S.symbolic(ap, ai)
    assert lp[-1] == n - 1


def test_not_positive_definite_is_reported():
    """A singular Laplacian (no diagonal, no outside vent) stops at the last column: D there is 0."""
    n = 4
    edges = np.array([(0, 1), (1, 2), (2, 3)], np.int64)
    order = S.minimum_degree(n, edges)
    ap, ai, ax, _dense = _assemble(n, edges, np.zeros(n), np.ones(3), order)
    parent, lp = S.symbolic(ap, ai)
    li, lx, d = np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n)
    assert S.numeric(ap, ai, ax, parent, lp, li, lx, d) < n


def _lists(ap, ai):
    """The static plan of :func:`S.numeric_lists`/:func:`S.solve_rows` for the pattern (ap, ai)."""
    parent, lp = S.symbolic(ap, ai)
    rp, rj = S.row_patterns(ap, ai, parent)
    lq, li = S.row_positions(rp, rj, lp)
    up, us, ut = S.update_lists(rp, rj, lp, li, lq)
    sj, sq = S.rows_by_column(rp, rj, lq)
    return parent, lp, rp, rj, lq, li, up, us, ut, sj, sq


def _lower_into_l(ap, ai, ax, rp, rj, lq, nnz):
    """A's strictly lower entries at L's positions (fill zeros) and A's diagonal, as ``numeric_lists`` takes them."""
    n = ap.shape[0] - 1
    at = {(k, int(rj[t])): int(lq[t]) for k in range(n) for t in range(rp[k], rp[k + 1])}
    lx, ad = np.zeros(nnz), np.empty(n)
    for k in range(n):
        for p in range(ap[k], ap[k + 1]):
            if ai[p] == k:
                ad[k] = ax[p]
            else:
                lx[at[(k, int(ai[p]))]] = ax[p]
    return ad, lx


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("index", [np.int64, np.uint32])
def test_update_lists_give_numeric_rows_factor_and_solve_bit_for_bit(seed, index):
    # the same operations in the same order: L, D and x to the bit, whatever the index type (the kernel's plan
    # holds uint32), and x also against numpy's dense solve
    rng = np.random.default_rng(seed)
    n = 200
    edges = _graph(rng, n)
    order = S.minimum_degree(n, edges)
    ap, ai, ax, dense = _assemble(n, edges, rng.uniform(0.5, 2.0, n), rng.uniform(0.1, 50.0, len(edges)), order)
    parent, lp, rp, rj, lq, li, up, us, ut, sj, sq = _lists(ap, ai)
    assert up[-1] > 0  # the graph has fill: there are updates to list
    ref_li, ref_lx, ref_d = np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n)
    assert S.numeric_rows(ap, ai, ax, rp, rj, lp, ref_li, ref_lx, ref_d) == n
    assert np.array_equal(li, ref_li)
    ad, lx = _lower_into_l(ap, ai, ax, rp, rj, lq, lp[-1])
    d = np.empty(n)
    ix = [a.astype(index) for a in (rp, rj, lq, up, us, ut, sj, sq, lp, li, order)]
    rp_, rj_, lq_, up_, us_, ut_, sj_, sq_, lp_, li_, order_ = ix
    assert S.numeric_lists(rp_, rj_, lq_, up_, us_, ut_, ad, lx, d) == n
    assert np.array_equal(lx.view(np.int64), ref_lx.view(np.int64))
    assert np.array_equal(d.view(np.int64), ref_d.view(np.int64))
    b = rng.normal(size=n)
    new = np.empty(n, np.int64)
    new[order] = np.arange(n)
    ref = np.empty(n)
    ref[new] = b
    S.solve(lp, li, lx, d, ref)
    x, y = np.empty(n), np.empty(n)
    S.solve_rows(rp_, sj_, sq_, lp_, li_, lx, d, order_, b, y, x)
    assert np.array_equal(x.view(np.int64), ref[new].view(np.int64))
    expected = np.linalg.solve(dense, b)
    np.testing.assert_allclose(x, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_update_lists_report_the_column_where_d_is_not_positive():
    """numeric_lists stops where numeric_rows does: a singular Laplacian at its last column."""
    n = 4
    edges = np.array([(0, 1), (1, 2), (2, 3)], np.int64)
    order = S.minimum_degree(n, edges)
    ap, ai, ax, _dense = _assemble(n, edges, np.zeros(n), np.ones(3), order)
    _parent, lp, rp, rj, lq, li, up, us, ut, _sj, _sq = _lists(ap, ai)
    ad, lx = _lower_into_l(ap, ai, ax, rp, rj, lq, lp[-1])
    ref = S.numeric_rows(ap, ai, ax, rp, rj, lp, np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n))
    assert ref < n and S.numeric_lists(rp, rj, lq, up, us, ut, ad, lx, np.empty(n)) == ref


def test_rows_by_column_sorts_each_row_and_keeps_its_positions():
    rng = np.random.default_rng(4)
    n = 120
    edges = _graph(rng, n)
    ap, ai, _ax, _dense = _assemble(n, edges, np.ones(n), np.ones(len(edges)), S.minimum_degree(n, edges))
    _parent, lp, rp, rj, lq, li, *_rest, sj, sq = _lists(ap, ai)
    assert np.any([np.any(np.diff(rj[rp[k]:rp[k + 1]]) < 0) for k in range(n)])  # some row not sorted already
    for k in range(n):
        a, b = rp[k], rp[k + 1]
        assert np.all(np.diff(sj[a:b]) > 0)
        assert dict(zip(sj[a:b].tolist(), sq[a:b].tolist(), strict=True)) == dict(
            zip(rj[a:b].tolist(), lq[a:b].tolist(), strict=True))
        assert np.all(li[sq[a:b]] == k)  # each position holds row k's entry
