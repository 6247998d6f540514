"""The numba kernels of :mod:`agents._kernels.pedestrians` against their numpy references."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from agents._kernels import pedestrians as K
from agents.crowd import AgentsSpec, CrowdModel, model_params, place_random

ROOM = np.array(
    [[0, 0, 12, 0], [12, 0, 12, 4], [12, 6, 12, 10], [12, 10, 0, 10], [0, 10, 0, 0],
     [5, 4, 7, 4], [7, 4, 7, 6], [7, 6, 5, 6], [5, 6, 5, 4]],  # fmt: skip
    dtype=np.float64,
)  # a 12 x 10 m room, a 2 m door on the east side, a 2 x 2 m pillar in the middle
DOOR = np.array([[12.0, 4.0, 12.0, 6.0]])


def _random_state(seed, n, *, spacing=0.25):
    rng = np.random.default_rng(seed)
    area = box(0, 0, 12, 10).difference(box(5, 4, 7, 6))
    pos = place_random(area, n, rng, spacing, 0.12, ROOM)
    e0 = rng.normal(size=(n, 2))
    e0 /= np.linalg.norm(e0, axis=1)[:, None]
    v0 = rng.uniform(0.6, 2.0, n)
    active = (rng.random(n) > 0.1).astype(np.uint8)
    return pos, e0, v0, active


def _numba_step(pos, e0, v0, active, prm, walls, exits, dt, period_x=0.0):
    bounds = (-3.0, -3.0, 15.0, 13.0)
    n = pos.shape[0]
    cells = K.make_cells(bounds if period_x == 0 else (0, -3, period_x, 13), prm.cutoff, n, period_x)
    wg = K.make_wall_grid(walls, bounds, prm.cutoff)
    K.fill_cells(pos, active, cells)
    out, speed, ex = np.empty_like(pos), np.empty(n), np.empty(n, np.int64)
    K.step(pos, e0, K.NO_FIELD, v0, active, prm, cells, wg, exits, np.ones(len(exits), np.bool_), dt,
           out, speed, ex)  # fmt: skip
    return out, speed, ex


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_step_matches_the_numpy_reference(seed):
    # Random dense configurations (up to ~5 P/m2 locally), walls, a pillar and a door:
    # positions, speeds and exits agree to round-off (summation order differs).
    pos, e0, v0, active = _random_state(seed, 400)
    prm = model_params(v0.max())
    got = _numba_step(pos, e0, v0, active, prm, ROOM, DOOR, 0.05)
    ref = K.step_numpy(pos, e0, v0, active, prm, ROOM, DOOR, np.ones(1, bool), 0.05)
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(got[2], ref[2])
    assert np.any(got[1] > 0) and np.any(got[1] == 0)  # both free and blocked agents occur


def test_step_matches_the_reference_in_a_periodic_corridor():
    rng = np.random.default_rng(9)
    walls = np.array([[-5.0, 0.0, 25.0, 0.0], [-5.0, 3.0, 25.0, 3.0]])
    pos = place_random(box(0, 0, 20, 3), 150, rng, 0.3, 0.12, walls)
    e0 = np.tile([1.0, 0.0], (150, 1))
    v0 = np.full(150, 1.34)
    active = np.ones(150, np.uint8)
    prm = model_params(1.34)
    got = _numba_step(pos, e0, v0, active, prm, walls, np.zeros((0, 4)), 0.05, period_x=20.0)
    ref = K.step_numpy(pos, e0, v0, active, prm, walls, np.zeros((0, 4)), np.zeros(0, bool),
                       0.05, period_x=20.0)  # fmt: skip
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=1e-10)


def test_one_and_two_threads_give_identical_steps():
    # The update is synchronous (each agent reads the old positions): no thread-count dependence.
    pos, e0, v0, active = _random_state(5, 600)
    prm = model_params(v0.max())
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _numba_step(pos, e0, v0, active, prm, ROOM, DOOR, 0.05)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _numba_step(pos, e0, v0, active, prm, ROOM, DOOR, 0.05)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_agent_enters_a_wall_from_dense_random_starts():
    # 500 agents at ~4.5 P/m2 in a 12 x 10 m room with a pillar, pushing to a
    # 2 m door for 40 s: every centre stays inside the walkable area and at
    # least the clearance (0.1 m) from every wall, at every step.
    walk = Polygon([(0, 0), (12, 0), (12, 10), (0, 10)], [[(5, 4), (7, 4), (7, 6), (5, 6)]])
    from agents.geometry import Geometry

    g = Geometry(walk, {"door": ((12, 4), (12, 6))})
    model = CrowdModel(g, AgentsSpec(n=500, region=box(0, 0, 11.5, 10), min_spacing_m=0.3),
                       seed=4, record_every=20, agent_views=False)  # fmt: skip
    walls = shapely.MultiLineString([s.reshape(2, 2) for s in g.wall_segments()])
    for _ in range(800):
        model.step()
        xy = model.position[model.active.astype(bool)]
        if xy.size == 0:
            break
        pts = shapely.points(xy)
        assert shapely.contains(g.walkable, pts).all()
        assert shapely.distance(walls, pts).min() >= model.prm.clearance - 1e-9
    assert model.n_evacuated > 100


def test_dijkstra16_error_in_open_space_is_within_the_stated_bound():
    # One source cell in an empty 201 x 201 grid: distance / Euclidean - 1 in
    # [0, 2.75 %] (the 16-neighbour stencil's worst direction:
    # sqrt(1 + (sqrt(5) - 2)^2) - 1 = 2.75 %), exact along the axes.
    n, h = 201, 0.1
    free = np.ones((n, n), dtype=np.bool_)
    dist = np.full((n, n), np.inf)
    dist[100, 100] = 0.0
    K.dijkstra16(free, np.ones((n, n)), dist, h)
    iy, ix = np.mgrid[0:n, 0:n]
    exact = np.hypot(ix - 100, iy - 100) * h
    rel = dist[exact > 0] / exact[exact > 0] - 1
    assert rel.min() >= -1e-12 and rel.max() <= np.sqrt(1 + (np.sqrt(5) - 2) ** 2) - 1 + 1e-12
    np.testing.assert_allclose(dist[100, 100:], exact[100, 100:], rtol=1e-12)


def test_dijkstra16_does_not_cut_through_a_thin_wall():
    free = np.ones((40, 40), dtype=np.bool_)
    free[20, :35] = False  # a one-cell wall with a gap at the east end
    dist = np.full((40, 40), np.inf)
    dist[30, 5] = 0.0
    K.dijkstra16(free, np.ones((40, 40)), dist, 1.0)
    assert dist[10, 5] > 2 * 30  # around the end of the wall, not through it


def test_field_directions_match_numpy_bilinear():
    rng = np.random.default_rng(3)
    gx, gy = rng.normal(size=(2, 30, 40))
    pos = np.column_stack([rng.uniform(0.1, 7.9, 200), rng.uniform(0.1, 5.9, 200)])
    out = np.empty_like(pos)
    K.field_directions(pos, np.ones(200, np.uint8), K.Field(gx, gy, 0.0, 0.0, 0.2), out)
    fx, fy = pos[:, 0] / 0.2 - 0.5, pos[:, 1] / 0.2 - 0.5
    ix = np.clip(np.floor(fx).astype(int), 0, 38)
    iy = np.clip(np.floor(fy).astype(int), 0, 28)
    tx, ty = np.clip(fx - ix, 0, 1), np.clip(fy - iy, 0, 1)

    def bil(g):
        return ((1 - tx) * (1 - ty) * g[iy, ix] + tx * (1 - ty) * g[iy, ix + 1]
                + (1 - tx) * ty * g[iy + 1, ix] + tx * ty * g[iy + 1, ix + 1])  # fmt: skip

    u = -np.column_stack([bil(gx), bil(gy)])
    np.testing.assert_allclose(out, u / np.linalg.norm(u, axis=1)[:, None], atol=1e-12)


def test_cells_hold_every_active_agent_once():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 10, (1000, 2))
    active = (rng.random(1000) > 0.3).astype(np.uint8)
    c = K.make_cells((0, 0, 10, 10), 1.3, 1000)
    m = K.fill_cells(pos, active, c)
    assert m == active.sum()
    assert sorted(c.order[:m]) == list(np.flatnonzero(active))
    for cell in range(c.nx * c.ny):
        members = c.order[c.start[cell] : c.start[cell + 1]]
        cx = np.minimum((pos[members, 0] // c.csx).astype(int), c.nx - 1)
        cy = np.minimum((pos[members, 1] // c.csy).astype(int), c.ny - 1)
        assert np.all(cy * c.nx + cx == cell)


def test_step_with_a_field_equals_step_with_its_directions():
    # The model looks the floor field up inside the step (one parallel pass);
    # it must equal looking it up first (field_directions) and passing e0.
    from agents.floor_field import FloorField
    from agents.geometry import Geometry

    walk = Polygon([(0, 0), (12, 0), (12, 10), (0, 10)], [[(5, 4), (7, 4), (7, 6), (5, 6)]])
    field = FloorField(Geometry(walk, {"door": ((12, 4), (12, 6))}), cell_m=0.2)
    pos, _, v0, active = _random_state(7, 300)
    prm = model_params(v0.max())
    e0 = np.zeros_like(pos)
    field.directions(pos, active, e0)
    ref = _numba_step(pos, e0, v0, active, prm, ROOM, DOOR, 0.05)
    cells = K.make_cells((-3.0, -3.0, 15.0, 13.0), prm.cutoff, 300)
    wg = K.make_wall_grid(ROOM, (-3.0, -3.0, 15.0, 13.0), prm.cutoff)
    K.fill_cells(pos, active, cells)
    e0_fused = np.zeros_like(pos)
    out, speed, ex = np.empty_like(pos), np.empty(300), np.empty(300, np.int64)
    K.step(pos, e0_fused, field.kernel_field, v0, active, prm, cells, wg, DOOR, np.ones(1, np.bool_),
           0.05, out, speed, ex)  # fmt: skip
    np.testing.assert_array_equal(e0_fused[active == 1], e0[active == 1])
    np.testing.assert_array_equal(out, ref[0])
    np.testing.assert_array_equal(speed, ref[1])


@numba.njit
def _gather_both(pos, v0, active, prm, cells, out_rows, out_cells):
    # every active agent through the row-run gather and the cell-by-cell one
    m = K.MAX_NEIGHBOURS
    a = (np.empty(m), np.empty(m), np.empty(m))
    b = (np.empty(m), np.empty(m), np.empty(m))
    brep = np.empty(m, np.int64)
    for i in range(pos.shape[0]):
        if not active[i]:
            continue
        reach = K._reach(prm, v0[i])
        rx, ry, cnt = K._gather(i, pos, prm, cells, reach, a[0], a[1], a[2], brep)
        sx, sy, scnt = K._gather_cells(i, pos, prm, cells, reach, b[0], b[1], b[2])
        out_rows[i, 0], out_rows[i, 1], out_rows[i, 2] = rx, ry, cnt
        out_cells[i, 0], out_cells[i, 1], out_cells[i, 2] = sx, sy, scnt
        for k in range(min(cnt, m)):
            out_rows[i, 3] += a[0][k] * 3.0 + a[1][k] * 5.0 + a[2][k] * 7.0
        for k in range(min(scnt, m)):
            out_cells[i, 3] += b[0][k] * 3.0 + b[1][k] * 5.0 + b[2][k] * 7.0


@pytest.mark.parametrize("spacing", [0.25, 0.12])
def test_row_run_gather_equals_the_cell_by_cell_gather_bit_for_bit(spacing):
    # The step reads each row of cells as one run of the sorted positions; the sums,
    # counts and kept neighbours (in order) must equal the cell-by-cell walk exactly.
    # At 0.12 m spacing (~40 P/m2 locally) some agents have more candidates than the
    # buffers hold and take the cell-by-cell path.
    n = 400 if spacing == 0.25 else 700
    pos, _, v0, active = _random_state(11, n, spacing=spacing)
    if spacing < 0.2:
        pos = 4.0 + 0.3 * (pos - 4.0)  # squeezed around (4, 4): a dense knot
    prm = model_params(v0.max())
    cells = K.make_cells((-3.0, -3.0, 15.0, 13.0), prm.cutoff, n)
    K.fill_cells(pos, active, cells)
    rows, cell = np.zeros((n, 4)), np.zeros((n, 4))
    _gather_both(pos, v0, active, prm, cells, rows, cell)
    np.testing.assert_array_equal(rows, cell)
    if spacing < 0.2:
        assert rows[:, 2].max() > K.MAX_NEIGHBOURS  # the overflow path ran


def test_step_matches_the_reference_when_the_neighbour_buffers_overflow():
    # A knot of 300 agents in 3 x 3 m: more neighbours than the buffers hold (the
    # gather and the spacing walk the cells again); still the numpy reference.
    rng = np.random.default_rng(21)
    pos = place_random(box(1.0, 1.0, 4.0, 4.0), 300, rng, 0.12, 0.12, ROOM)
    e0 = rng.normal(size=(300, 2))
    e0 /= np.linalg.norm(e0, axis=1)[:, None]
    v0 = rng.uniform(0.6, 2.0, 300)
    active = np.ones(300, np.uint8)
    prm = model_params(v0.max())
    got = _numba_step(pos, e0, v0, active, prm, ROOM, DOOR, 0.05)
    ref = K.step_numpy(pos, e0, v0, active, prm, ROOM, DOOR, np.ones(1, bool), 0.05)
    np.testing.assert_allclose(got[0], ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(got[2], ref[2])
