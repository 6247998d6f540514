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
