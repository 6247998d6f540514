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
                     acc_max=flow + size.max(), occ=np.zeros(n_edges), acc=flow + size.max(), acc_in=flow + size.max(),
                     head=np.full(n_edges, -1, np.int64), tail=np.full(n_edges, -1, np.int64),
                     max_queue=np.zeros(n_edges), max_occ=np.zeros(n_edges), people_out=np.zeros(n_edges),
                     forced=np.zeros(n_edges))
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
        steps = nf.Steps(k * 100.0, 1.0, 100, k * 100, 30.0)  # a short stuck time: the rule is exercised too
        ma = nf.advance(*a, steps, ca[k * 100:(k + 1) * 100])
        mb = nf.advance_reference(*b, steps, cb[k * 100:(k + 1) * 100])
        assert ma == mb
    for name, x, y in [*zip(nf.Edges._fields, a[0], b[0], strict=True),
                       *zip(nf.Groups._fields, a[1], b[1], strict=True)]:
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ca, cb, rtol=1e-12, atol=1e-9)
    assert (a[1].state >= nf.ARRIVED).sum() > 0 and (a[0].max_queue > 0).any()  # the case did exercise queues
    assert (a[0].forced > 0).any()  # ... and the stuck-time rule


def test_people_are_conserved_and_storage_is_never_exceeded():
    edges, groups, route, order, wait = _random_case(7)
    total = groups.size.sum()
    counts = np.zeros((1, 4))
    for k in range(600):
        nf.advance(edges, groups, route, order, wait, nf.Steps(float(k), 1.0, 1, k, np.inf), counts)
        assert counts.sum() == pytest.approx(total, abs=1e-9)
        assert (edges.occ <= edges.storage + 1e-9).all()
        on_edges = groups.size[groups.state == nf.MOVING].sum()
        assert edges.occ.sum() == pytest.approx(on_edges, abs=1e-9)
    assert (edges.max_occ <= edges.storage + 1e-9).all()


def test_the_stuck_time_breaks_a_gridlock():
    """Two full one-group edges whose heads want each other's edge: without the rule they wait for ever
    (MATSim's gridlock); with a stuck time of 60 s the first served moves after being held 60 s."""
    n = 2
    edges = nf.Edges(travel_s=np.array([10.0, 10.0]), flow_cap=np.full(n, 100.0), storage=np.full(n, 20.0),
                     acc_max=np.full(n, 120.0), occ=np.zeros(n), acc=np.full(n, 120.0), acc_in=np.full(n, 120.0), head=np.full(n, -1, np.int64),
                     tail=np.full(n, -1, np.int64), max_queue=np.zeros(n), max_occ=np.zeros(n),
                     people_out=np.zeros(n), forced=np.zeros(n))
    groups = nf.Groups(size=np.array([20.0, 20.0]), state=np.zeros(2, np.int8), depart_s=np.zeros(2),
                       pos=np.array([0, 2]), end=np.array([2, 4]), strand_at_end=np.zeros(2, np.int8),
                       exit_s=np.zeros(2), enter_s=np.zeros(2), next_in_q=np.full(2, -1, np.int64),
                       done_s=np.full(2, np.nan), last_step=np.full(2, -1, np.int64))
    route = np.array([0, 1, 1, 0], dtype=np.int64)
    order, wait = np.array([0, 1], dtype=np.int64), np.array([0, 1], dtype=np.int64)
    counts = np.zeros((300, 4))
    locked = _copy((edges, groups, route, order, wait))
    nf.advance(*locked, nf.Steps(0.0, 1.0, 300, 0, np.inf), counts)
    assert (locked[1].state == nf.MOVING).all() and locked[0].forced.sum() == 0
    nf.advance(edges, groups, route, order, wait, nf.Steps(0.0, 1.0, 300, 0, 60.0), counts)
    assert (groups.state == nf.ARRIVED).all()
    assert edges.forced.sum() == 20.0  # one forced move unlocks both
    # ready at 10 s, held 60 s, then 10 s along the other edge (flows too large to matter)
    assert np.nanmax(groups.done_s) == pytest.approx(10.0 + 60.0 + 10.0, abs=1.0)
