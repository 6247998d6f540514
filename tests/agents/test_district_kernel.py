"""The queue-model kernel (agents._kernels.network_flow): numba against the plain reference, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest

from agents._kernels import network_flow as nf


def _random_case(seed: int, n_edges: int = 40, n_groups: int = 300):
    """A congested random case: small storages and flows, routes of 1-6 random edges."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 30, n_groups).astype(float)
    lengths = rng.integers(1, 7, n_groups)
    route = rng.integers(0, n_edges, lengths.sum()).astype(np.int64)
    end = np.cumsum(lengths).astype(np.int64)
    pos = end - lengths
    flow = rng.uniform(0.5, 8.0, n_edges)
    edges = nf.Edges(travel_s=rng.uniform(0.5, 40.0, n_edges), flow_cap=flow,
                     storage=np.maximum(rng.uniform(5, 200, n_edges), size.max()),
                     acc_max=flow + size.max(), occ=np.zeros(n_edges), acc=flow + size.max(),
                     head=np.full(n_edges, -1, np.int64), tail=np.full(n_edges, -1, np.int64),
                     max_queue=np.zeros(n_edges), max_occ=np.zeros(n_edges), people_out=np.zeros(n_edges))
    depart = rng.uniform(0, 120, n_groups)
    groups = nf.Groups(size=size, state=np.zeros(n_groups, np.int8), depart_s=depart, pos=pos.copy(), end=end,
                       strand_at_end=(rng.random(n_groups) < 0.1).astype(np.int8), exit_s=np.zeros(n_groups),
                       enter_s=np.zeros(n_groups), next_in_q=np.full(n_groups, -1, np.int64),
                       done_s=np.full(n_groups, np.nan), last_step=np.full(n_groups, -1, np.int64))
    order = rng.permutation(n_edges).astype(np.int64)
    wait = np.argsort(depart, kind="stable").astype(np.int64)
    return edges, groups, route, order, wait


def _copy(case):
    edges, groups, route, order, wait = case
    return (nf.Edges(*[a.copy() for a in edges]), nf.Groups(*[a.copy() for a in groups]), route.copy(),
            order.copy(), wait.copy())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numba_kernel_matches_the_plain_reference(seed):
    case = _random_case(seed)
    a, b = _copy(case), _copy(case)
    ca, cb = np.zeros((400, 4)), np.zeros((400, 4))
    for k in range(4):  # in chunks, as the model calls it (the FIFOs carry over)
        ma = nf.advance(*a, k * 100.0, 1.0, 100, k * 100, ca[k * 100:(k + 1) * 100])
        mb = nf.advance_reference(*b, k * 100.0, 1.0, 100, k * 100, cb[k * 100:(k + 1) * 100])
        assert ma == mb
    for name, x, y in [*zip(nf.Edges._fields, a[0], b[0], strict=True),
                       *zip(nf.Groups._fields, a[1], b[1], strict=True)]:
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ca, cb, rtol=1e-12, atol=1e-9)
    assert (a[1].state >= nf.ARRIVED).sum() > 0 and (a[0].max_queue > 0).any()  # the case did exercise queues


def test_people_are_conserved_and_storage_is_never_exceeded():
    edges, groups, route, order, wait = _random_case(7)
    total = groups.size.sum()
    counts = np.zeros((1, 4))
    for k in range(600):
        nf.advance(edges, groups, route, order, wait, float(k), 1.0, 1, k, counts)
        assert counts.sum() == pytest.approx(total, abs=1e-9)
        assert (edges.occ <= edges.storage + 1e-9).all()
        on_edges = groups.size[groups.state == nf.MOVING].sum()
        assert edges.occ.sum() == pytest.approx(on_edges, abs=1e-9)
    assert (edges.max_occ <= edges.storage + 1e-9).all()
