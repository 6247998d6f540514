"""RiMEA 3.0 validation tests of the crowd model (re-implemented from the guideline's descriptions).

RiMEA 3.0 (Richtlinie fuer Mikroskopische Entfluchtungsanalysen, 2016), tests
1, 4, 6, 7, 9 and 12; Weidmann 1993 for the fundamental diagram. Each test
names its expected figure and why its tolerance is what it is.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from agents._kernels import pedestrians as K
from agents.crowd import AgentsSpec, CrowdModel, model_params, place_random, simulate
from agents.geometry import Geometry


def weidmann(rho):
    """Weidmann 1993: v(rho) = v0 (1 - exp(-gamma (1/rho - 1/rho_max))), v0 1.34, gamma 1.913, rho_max 5.4."""
    return 1.34 * (1.0 - np.exp(-1.913 * (1.0 / rho - 1.0 / 5.4)))


def test_rimea_1_corridor_travel_time():
    # RiMEA test 1: one person at 1.33 m/s through a 2 m x 40 m corridor: 26-34 s.
    g = Geometry(box(0, 0, 40, 2), {"end": ((40, 0), (40, 2))})
    ds = simulate(g, AgentsSpec(positions=[[0.2, 1.0]], speeds=[1.33]), seed=1, until_s=60)
    assert 26.0 <= float(ds.exit_time[0]) <= 34.0


def _periodic_corridor_speed(rho, *, length=20.0, width=4.0, seed=1, warm_s=20.0, measure_s=10.0):
    rng = np.random.default_rng(seed)
    n = int(round(rho * length * width))
    prm = model_params(1.34)
    walls = np.array([[-5.0, 0.0, length + 5, 0.0], [-5.0, width, length + 5, width]])
    pos = place_random(box(0, 0, length, width), n, rng, prm.length, 0.15, walls)
    cells = K.make_cells((0, -1, length, width + 1), prm.cutoff, n, period_x=length)
    wg = K.make_wall_grid(walls, (-5, -3, length + 5, width + 3), prm.cutoff)
    e0 = np.tile([1.0, 0.0], (n, 1))
    v0 = np.full(n, 1.34)  # Weidmann's free speed: the FD's v0
    active = np.ones(n, np.uint8)
    dt = 0.05
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # a few hundred agents: one thread is faster (see agents.crowd)
    try:
        means = _run_corridor(pos, e0, v0, active, prm, cells, wg, dt, warm_s, measure_s)
    finally:
        numba.set_num_threads(threads)
    return float(np.mean(means))


def _run_corridor(pos, e0, v0, active, prm, cells, wg, dt, warm_s, measure_s):
    n = pos.shape[0]
    out, speed, ex = np.empty_like(pos), np.empty(n), np.empty(n, np.int64)
    means = []
    for s in range(int((warm_s + measure_s) / dt)):
        K.fill_cells(pos, active, cells)
        K.step(pos, e0, K.NO_FIELD, v0, active, prm, cells, wg, np.zeros((0, 4)), np.zeros(0, np.bool_), dt,
               out, speed, ex)  # fmt: skip
        pos, out = out, pos
        if s * dt >= warm_s:
            means.append(speed.mean())
    return means


def test_rimea_4_fundamental_diagram_emerges_close_to_weidmann():
    # RiMEA test 4 / Weidmann 1993. The speed is never imposed: agents only
    # keep the time gap T = 1 s to the one ahead in their lane. Band +-0.3 m/s:
    # the empirical speeds Weidmann's fit summarises scatter by about that
    # much at a given density (and RiMEA asks for agreement "within the
    # scatter of the empirical data", not a number); measured here at most
    # +0.20 m/s (at 1 P/m2; 0.04-0.09 elsewhere). The trend must be monotone.
    rhos = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    v = np.array([_periodic_corridor_speed(r) for r in rhos])
    assert np.all(np.abs(v - weidmann(rhos)) <= 0.3), dict(zip(rhos, v.round(3), strict=True))
    assert np.all(np.diff(v) < 0)


def _corner():
    # RiMEA test 6: a 2 m wide corridor turning left by 90 degrees (legs 12 m).
    walk = Polygon([(0, 0), (12, 0), (12, 12), (10, 12), (10, 2), (0, 2)])
    return Geometry(walk, {"out": ((10, 12), (12, 12))})


def test_rimea_6_corner_no_wall_penetration():
    # 20 people round the corner: no centre ever leaves the walkable area or
    # comes closer than the clearance (0.1 m) to a wall; everyone gets out.
    g = _corner()
    model = CrowdModel(g, AgentsSpec(n=20, region=box(0, 0, 6, 2)), seed=6, record_every=1)
    walls = shapely.MultiLineString([s.reshape(2, 2) for s in g.wall_segments()])
    while model.running and model.time_s < 120:
        model.step()
        inside = model.active.astype(bool)
        if not inside.any():
            break
        pts = shapely.points(model.position[inside])
        assert shapely.contains(g.walkable, pts).all()
        assert shapely.distance(walls, pts).min() >= model.prm.clearance - 1e-9
    assert model.n_evacuated == 20


def test_rimea_7_exit_speeds_follow_the_input_distribution():
    # RiMEA test 7: people drawn from the age-dependent speed table walk
    # without interacting (lanes 1 m apart: neighbour repulsion
    # 5 exp((0.3 - 1)/0.1) < 5e-3, and nobody ahead in the lane); each one's
    # mean speed over 38 m must be its drawn free speed. Tolerance 1 %: the
    # step is explicit Euler at constant speed, and the exit is detected at
    # the step that crosses it (<= v dt = 0.08 m over 38 m = 0.2 %).
    ys = np.arange(1.0, 20.0, 1.0)
    starts = np.column_stack([np.full(ys.size, 2.0), ys])
    g = Geometry(box(0, 0, 40, 20), {"end": ((40, 0), (40, 20))})
    spec = AgentsSpec(positions=starts, speed_profile="rimea_age")
    ds = simulate(g, spec, seed=7, until_s=120, cell_m=0.25)
    measured = 38.0 / ds.exit_time.values
    np.testing.assert_allclose(measured, ds.free_speed.values, rtol=0.01)
    # and the sample lies within the RiMEA bounds of ages 10-80 (0.60-1.65 m/s)
    assert measured.min() >= 0.60 * 0.99 and measured.max() <= 1.65 * 1.01


def _room_four_exits():
    # RiMEA test 9: a 30 m x 20 m room, four 1 m exits, two on each short side
    # near the corners.
    exits = {
        "w_south": ((0, 2), (0, 1)), "w_north": ((0, 19), (0, 18)),
        "e_south": ((30, 1), (30, 2)), "e_north": ((30, 18), (30, 19)),
    }  # fmt: skip
    return Geometry(box(0, 0, 30, 20), exits)


@pytest.mark.slow
def test_rimea_9_closing_two_of_four_exits_doubles_the_evacuation_time():
    # RiMEA test 9: 1000 people; evacuation time with 2 exits ~ twice that
    # with 4 (each exit's flow is the limit). Tolerance 1.6-2.4 per seed
    # and 1.7-2.3 for the mean of 3 seeds: the last walkers' approach and
    # the door flow's run-to-run scatter (about 10 %) move the ratio off 2;
    # measured 1.99, 1.93, 1.92 (80-83 s with 4 exits, 157-160 s with 2).
    ratios = []
    for seed in (1, 2, 3):
        times = []
        for closed in ((), ("e_south", "e_north")):
            model = CrowdModel(_room_four_exits(), AgentsSpec(n=1000, min_spacing_m=0.4),
                               seed=seed, dt=0.1, record_every=50, cell_m=0.25)  # fmt: skip
            for exit_id in closed:
                model.close_exit(exit_id)
            model.run(until_s=1500)
            assert model.n_evacuated == 1000
            times.append(np.nanmax(model.exit_time))
        ratios.append(times[1] / times[0])
    assert all(1.6 <= r <= 2.4 for r in ratios), ratios
    assert 1.7 <= np.mean(ratios) <= 2.3, ratios


def _bottleneck():
    # RiMEA test 12: a room (10 m x 10 m) joined by a 1 m wide, 2 m long
    # corridor to a second room (10 m x 10 m) whose far wall is the exit.
    walk = shapely.union_all([box(0, 0, 10, 10), box(10, 4.5, 12, 5.5), box(12, 0, 22, 10)])
    return Geometry(walk, {"out": ((22, 0), (22, 10))})


def test_rimea_12_congestion_only_before_the_corridor_and_door_flow():
    # 150 people in the first room. Congestion (local density > 2 P/m2 in a
    # 1.5 m half-disc) must form only before the corridor, never after it.
    # Flow through the 1 m corridor between the 10th and 90th percentile of
    # passages: 1.0-2.0 P/s. Reference figures: SFPE maximum specific flow
    # 1.32 P/(s m) for doors (SFPE Handbook, hydraulic model), Weidmann 1993
    # peak 1.22 P/(m s); the band is wide because laboratory bottleneck
    # flows at 1 m run higher than these design values.
    g = _bottleneck()
    model = CrowdModel(g, AgentsSpec(n=150, region=box(0, 0, 9, 10)), seed=12, dt=0.05,
                       record_every=10, cell_m=0.2)  # fmt: skip
    before = after = 0.0
    passed = np.full(150, np.nan)
    while model.running and model.time_s < 300:
        x_old = model.position[:, 0].copy()
        model.step()
        crossed = np.isnan(passed) & (x_old < 11.0) & (model.position[:, 0] >= 11.0)
        passed[crossed] = model.time_s
        if model.steps % 10 == 0:
            xy = model.position[model.active.astype(bool)]
            d_in = np.hypot(xy[:, 0] - 10.0, xy[:, 1] - 5.0)
            d_out = np.hypot(xy[:, 0] - 12.0, xy[:, 1] - 5.0)
            half_disc = np.pi * 1.5**2 / 2
            before = max(before, np.count_nonzero((d_in < 1.5) & (xy[:, 0] < 10)) / half_disc)
            after = max(after, np.count_nonzero((d_out < 1.5) & (xy[:, 0] > 12)) / half_disc)
    assert model.n_evacuated == 150
    assert before > 2.0 and after < 2.0, (before, after)
    t10, t90 = np.nanpercentile(passed, [10, 90])
    flow = 0.8 * 150 / (t90 - t10)
    assert 1.0 <= flow <= 2.0, (flow, before, after)
