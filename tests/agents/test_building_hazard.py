"""The building evacuation under a hazard (agents.building_hazard): smoke factors, closed stair doors, caught people.

Real runs of the example tower (``agents/data/tower_30_residential.toml``: 30 storeys, 928 people, stairs A
and B) and of a small 7-storey tower for the interpreted kernel.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from agents.building import load_building, parse_building, resolve
from agents.building_evac import V_FLOOR_MPS, _people, simulate
from agents.building_hazard import BuildingHazard, ScheduledHazard
from twin.errors import ValidationError

TOWER = "agents/data/tower_30_residential.toml"
#: sha256 of every data variable and the time axis of simulate(tower_30_residential, seed=0) as the code
#: stood before the hazard was added (commit 587c56c): the run without a hazard must not move.
BASELINE_SHA256 = "549dcd6543499f11a055ac0eb1fffcdb7a6e2c5ff1241b1c6160c5b86fd13b73"


def digest(ds, names=None) -> str:
    h = hashlib.sha256()
    for k in sorted(names or ds.data_vars):
        h.update(k.encode())
        h.update(np.ascontiguousarray(ds[k].values).tobytes())
    h.update(np.ascontiguousarray(ds["time"].values).tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tower():
    return resolve(load_building(TOWER))


@pytest.fixture(scope="module")
def clear(tower):
    return simulate(tower, seed=0)


def test_no_hazard_is_the_run_of_before(clear):
    assert digest(clear) == BASELINE_SHA256
    assert clear.attrs["rset_s"] == 647.0  # README: the example tower RSET 647 s


def test_factor_one_and_nothing_closed_is_the_same_run(tower, clear):
    h = ScheduledHazard(tower.n_floors, tower.n_stairs)
    ds = simulate(tower, seed=0, hazard=h)
    assert digest(ds, clear.data_vars) == digest(clear)
    for k, v in clear.attrs.items():
        if k != "events":  # events carry their wall time
            assert ds.attrs[k] == v, k
    assert len(h.calls) == clear.sizes["time"]  # at 0 s and after every block
    assert h.calls[0].t_s == 0.0 and h.calls[-1].t_s == clear.attrs["rset_s"]
    # door passages handed to the hazard add up to everyone who entered a stair
    passed = sum(c.door_passed for c in h.calls)
    np.testing.assert_array_equal(passed.sum(axis=1)[1:], clear["people_initial"].values[1:])
    np.testing.assert_allclose(passed, clear["door_flow"].values[1:].sum(axis=0) * 5.0, atol=1e-9)
    assert ds["people_cut_off"].sum() == 0 and np.isnan(ds["door_closed_time"]).all()


def test_walking_speed_factor_rules(tower):
    """Factor 0.5 from 0 s: walk time doubled. 1 until 60 s, then 0.5: the distance left walked at half speed."""
    p = _people(tower, np.random.default_rng(0))
    v = V_FLOOR_MPS * p["fac"]
    ds = simulate(tower, seed=0, hazard=ScheduledHazard(tower.n_floors, tower.n_stairs, floor_speed=0.5),
                  max_time_s=30.0)
    np.testing.assert_allclose(ds["t_at_door"].values, p["pre"] + p["dist"] / (0.5 * v), rtol=1e-12)

    def late(t, state):
        return BuildingHazard(np.full(tower.n_floors, 1.0 if t < 60 else 0.5), np.ones((tower.n_floors, 2)),
                              np.zeros((tower.n_floors, 2), bool))

    ds = simulate(tower, seed=0, hazard=late)
    t_clear = p["t_arrive"]
    walking = (t_clear > 60.0) & (p["pre"] < 60.0)
    expect = 60.0 + (p["dist"] - v * (60.0 - p["pre"])) / (0.5 * v)
    np.testing.assert_allclose(ds["t_at_door"].values[walking], expect[walking], rtol=1e-12)
    np.testing.assert_array_equal(ds["t_at_door"].values[t_clear <= 60.0], t_clear[t_clear <= 60.0])
    started_late = p["pre"] >= 60.0
    np.testing.assert_allclose(ds["t_at_door"].values[started_late],
                               (p["pre"] + p["dist"] / (0.5 * v))[started_late], rtol=1e-12)


def test_slower_flights_lengthen_the_evacuation(tower, clear):
    ds = simulate(tower, seed=0, hazard=ScheduledHazard(tower.n_floors, tower.n_stairs, flight_speed=0.5))
    assert ds.attrs["rset_s"] > clear.attrs["rset_s"] * 1.5
    # the busiest flight's flow cannot exceed half its clear-air capacity (SFPE flow S·D scales with S)
    cap = np.array(json.loads(ds.attrs["stair_capacity_p_s"]))
    flow = ds["stair_flow"].values[1:, 1:, :]
    assert (flow.max(axis=(0, 1)) <= 0.5 * cap + 1.0 / 5.0 + 1e-9).all()  # + the one banked person per record


def test_closed_stair_reroutes_to_the_other(tower, clear):
    floors = range(10, 20)
    h = ScheduledHazard(tower.n_floors, tower.n_stairs, closures=[(120.0, f, 0) for f in floors])
    ds = simulate(tower, seed=0, hazard=h)
    t = ds["time"].values
    after = t > 120.0
    assert ds["door_flow"].values[after][:, 10:20, 0].sum() == 0  # nobody enters A on those floors after 120 s
    late = np.isin(ds["occ_floor"].values, list(floors)) & (ds["t_leave_floor"].values > 120.0)
    assert late.sum() > 0 and (ds["occ_stair"].values[late] == 1).all()
    assert ds["occ_rerouted"].sum() > 0 and (ds["occ_rerouted"].values[~np.isin(ds["occ_floor"], list(floors))] == 0).all()
    assert ds.attrs["people_not_safe"] == 0 and ds.attrs["rset_s"] >= clear.attrs["rset_s"]
    np.testing.assert_array_equal(ds["stair_door_closed"].values[after][:, 10:20, 0], 1)
    kinds = [e["kind"] for e in json.loads(ds.attrs["events"])]
    assert kinds.count("stair_door_closed") == 10 and "floor_cut_off" not in kinds


def test_every_stair_closed_catches_the_floor(tower):
    h = ScheduledHazard(tower.n_floors, tower.n_stairs, closures=[(60.0, 15, 0), (60.0, 15, 1)])
    ds = simulate(tower, seed=0, hazard=h)
    on_floor_at_60 = int(ds["people_on_floor"].sel(time=60.0, floor=15))
    assert on_floor_at_60 > 0
    assert int(ds["people_cut_off"].sel(floor=15)) == on_floor_at_60 == ds.attrs["people_cut_off"]
    assert ds.attrs["people_not_safe"] == on_floor_at_60 and np.isnan(ds.attrs["rset_s"])
    assert (ds["people_on_floor"].sel(floor=15).values[ds["time"].values >= 60.0] == on_floor_at_60).all()
    assert float(ds["floor_closed_time"].sel(floor=15)) == 60.0
    assert ds["occ_cut_off"].values.sum() == on_floor_at_60
    assert np.isnan(ds["t_at_door"].values[ds["occ_cut_off"].values == 1]).all()
    # the run stops once only the caught remain
    assert ds["people_out"].values[-1] + on_floor_at_60 == ds.attrs["people"]
    cut = [e for e in json.loads(ds.attrs["events"]) if e["kind"] == "floor_cut_off"]
    assert cut == [{**cut[0], "time_s": 60.0}] and cut[0]["data"]["people_cut_off"] == on_floor_at_60


def test_hazard_values_are_checked(tower):
    def bad(t, state):
        return BuildingHazard(np.zeros(tower.n_floors), np.ones((tower.n_floors, 2)),
                              np.zeros((tower.n_floors, 2), bool))

    with pytest.raises(ValidationError, match="floor_speed"):
        simulate(tower, seed=0, hazard=bad)

    def wrong_shape(t, state):
        return BuildingHazard(np.ones(3), np.ones((3, 2)), np.zeros((3, 2), bool))

    with pytest.raises(ValidationError, match=r"shape \(3,\)"):
        simulate(tower, seed=0, hazard=wrong_shape)


def small_tower():
    return resolve(parse_building({
        "name": "reference", "storeys": {"count": 7, "height_m": 3.2},
        "occupancy": {"floor_area_m2": 500.0, "people_per_floor": 25, "ground_floor_people": 15,
                      "travel_m": 12.0},
        "floors": [{"index": 4, "refuge": True, "people": 5}],
        "stairs": [{"width_m": 1.1, "exit": 0}, {"width_m": 1.3, "riser_mm": 165.0, "tread_mm": 305.0, "exit": 0},
                   {"width_m": 1.2, "door_width_m": 1.2, "exit": 1}],
        "exits": [{"width_m": 1.4}, {"width_m": 1.0}],
        "movement": {"premovement": {"dist": "lognormal", "median_s": 20.0, "sigma": 0.6}},
    }))


def test_numba_kernel_equals_interpreted_kernel_under_a_hazard():
    tower = small_tower()
    F, S = tower.n_floors, tower.n_stairs
    rng = np.random.default_rng(3)
    flights = rng.uniform(0.3, 1.0, (F, S))

    def hazard(t, state):
        k = min(1.0, t / 60.0)
        closed = np.zeros((F, S), bool)
        if t >= 25.0:
            closed[6, 0] = closed[5, :2] = True
        if t >= 40.0:
            closed[3, :] = True
        return BuildingHazard(1.0 - 0.6 * k * np.linspace(0, 1, F), 1.0 - (1.0 - flights) * k, closed)

    fast = simulate(tower, seed=4, hazard=hazard)
    slow = simulate(tower, seed=4, hazard=hazard, reference=True)
    for name in ("t_safe", "t_leave_floor", "t_at_door", "occ_stair", "people_on_floor", "door_flow",
                 "people_cut_off"):
        np.testing.assert_array_equal(fast[name].values, slow[name].values, err_msg=name)
    assert fast["people_cut_off"].sel(floor=3) > 0 and fast["occ_rerouted"].sum() > 0
