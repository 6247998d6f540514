"""Fire and evacuation in one run (scenarios.fire_evacuation) on the 30-storey example tower, short runs.

Real runs: :class:`physics.fire_sim.FireSimulation` of ``tower_30_residential`` (270 compartments, 2 stairs)
co-stepped with :class:`agents.building_evac.BuildingEvacuation` of the same file (928 people).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from scenarios.fire_evacuation import (
    FireEvacuation,
    FireHazard,
    closed_doors,
    evacuate_with_fire,
    evacuation_tower,
    speed_factors,
)

BUILDING = "tower_30_residential"
FIRE = {"floor": 15, "growth": "fast", "sprinklers": False, "season": "summer"}


def test_speed_factor_of_a_uniform_extinction():
    """Frantzich & Nilsson (2003) as FDS+Evac applies it: v/v0 = max(0.1, 1 + β/α·K), α = 0.706 m/s,
    β = −0.057 m²/s. Jin (1978): visibility S = C/K, C = 3 for a reflecting sign, so S = 3 m is K = 1/m,
    S = 1 m is K = 3/m. Exact arithmetic, so to round-off."""
    F, S = 30, 2
    for k, expect in ((0.0, 1.0), (1.0, 1 - 0.057 / 0.706), (3.0, 1 - 3 * 0.057 / 0.706), (5.0, 1 - 5 * 0.057 / 0.706),
                      (20.0, 0.1)):
        floor, flight = speed_factors(np.full(F, k), np.full((F, S), k))
        np.testing.assert_allclose(floor, expect, rtol=1e-12)
        np.testing.assert_allclose(flight, expect, rtol=1e-12)
    assert 1 - 0.057 / 0.706 == pytest.approx(0.9193, abs=1e-4)  # 3 m visibility: 8 % slower
    # a flight joins two landings: it takes the smokier of storeys f and f - 1
    k = np.zeros((F, S))
    k[10, 0] = 3.0
    _, flight = speed_factors(np.zeros(F), k)
    assert flight[10, 0] == flight[11, 0] == pytest.approx(1 - 3 * 0.057 / 0.706)
    assert flight[9, 0] == 1.0 and (flight[:, 1] == 1.0).all()


def test_closed_doors_rule():
    route = np.zeros(6, bool)
    stair = np.zeros((6, 2), bool)
    route[4] = True          # storey 4's lobby untenable: both its doors closed
    stair[2, 1] = True       # stair 1 untenable at storey 2: closed for storeys 2 and up (the way down is cut)
    closed = closed_doors(route, stair)
    assert closed[4].all() and closed[2:, 1].all()
    assert not closed[:2].any() and not closed[[2, 3, 5], 0].any()


def test_clear_air_at_ignition_gives_factor_one_and_nothing_closed():
    co = FireEvacuation(BUILDING, **FIRE, duration_s=60.0)
    tower = evacuation_tower(co.path)
    h = FireHazard(co.sim, tower.stair_names, door_hold="passing", t_alarm_s=0.0, block_s=5.0).hazard_now()
    assert (h.floor_speed == 1.0).all() and (h.flight_speed == 1.0).all() and not h.door_closed.any()
    assert co.sim.network.n_storeys == tower.n_floors == 30


@pytest.fixture(scope="module")
def passing():
    """The whole evacuation (RSET 647 s without smoke) beside a fast fire on L16, doors held by passers."""
    return evacuate_with_fire(BUILDING, **FIRE, duration_s=660.0, seed=0, door_hold="passing", alarm_s=0.0)


@pytest.fixture(scope="module")
def closed():
    """The same run's first 240 s with every stair door kept closed."""
    return evacuate_with_fire(BUILDING, **FIRE, duration_s=240.0, seed=0, door_hold="closed", alarm_s=0.0,
                              uncoupled=False)


def test_alarm_at_the_first_detector_and_stepwise_events():
    co = FireEvacuation(BUILDING, **FIRE, duration_s=120.0)
    fire_events, evac_events = co.advance_to(60.0)
    assert [e["kind"] for e in fire_events] == ["ignition"] and evac_events == [] and np.isnan(co.alarm_s)
    fire_events, _ = co.advance_to(120.0)
    first = min(e["time_s"] for e in co.sim.events if e["kind"] in ("detector", "sprinkler"))
    assert first <= co.alarm_s < first + 5.0 + 1e-9  # the alarm on the 5 s grid at or after the detector
    assert "detector" in [e["kind"] for e in fire_events]
    assert co.people_by_floor_now().sum() < co.tower.people.sum()  # people on their way since the alarm


@pytest.fixture(scope="module")
def propped():
    """The same run's first 240 s with every stair door propped open."""
    return evacuate_with_fire(BUILDING, **FIRE, duration_s=240.0, seed=0, door_hold="open", alarm_s=0.0,
                              uncoupled=False)


def stairs(res, var: str, t_end: float) -> np.ndarray:
    """``var`` of every stair compartment, per record to t_end."""
    ds = res.fire.dataset.sel(time=slice(0.0, t_end))
    return ds[var].values[:, ds["compartment_kind"].values.astype(str) == "stair"]


def stair_smoke_m2(res, t_end: float) -> float:
    """Smoke in the stairs' upper layers at t_end: Σ extinction × upper-layer volume (m², ∝ soot mass)."""
    ds = res.fire.dataset.sel(time=slice(0.0, t_end)).isel(time=-1)
    m = ds["compartment_kind"].values.astype(str) == "stair"
    vu = ds["compartment_area_m2"].values[m] * (ds["compartment_height_m"].values[m] - ds["layer_height"].values[m])
    return float((ds["upper_layer__extinction"].values[m] * vu).sum())


def test_doors_held_open_by_evacuees_change_the_smoke_in_the_stairs(passing, closed, propped):
    """Evacuees' doors act on the fire. Identical inputs give identical runs, so any difference is the doors':
    doors held while people pass change the stairs' smoke (which way depends on the stack: in summer, 33 °C
    outside over 20 °C inside, it runs down the stairs, and a door opened on a clear floor also lets smoke out
    of the stair); doors propped open let the fire floor's smoke into the stairs wholesale (GB 50016's
    self-closing fire doors exist for this) — more than three times the smoke of closed doors at 240 s
    (measured ~7×; the factor 3 leaves room for the zone model's changes, the direction is the physics)."""
    t_end = float(closed.fire.dataset["time"].values[-1])
    k_pass, k_closed = stairs(passing, "upper_layer__extinction", t_end), stairs(closed, "upper_layer__extinction", t_end)
    assert k_pass.shape == k_closed.shape and k_closed.max() > 0.0
    assert np.abs(k_pass - k_closed).max() > 0.01 * k_closed.max()
    assert stair_smoke_m2(propped, t_end) > 3.0 * stair_smoke_m2(closed, t_end) > 0.0
    passed = passing.evacuation["door_flow"].sel(time=slice(0.0, t_end)).sum(("time", "stair")).values
    assert passed[FIRE["floor"]] > 0 and (passed[1:] > 0).all()  # every floor's doors were passed, the fire's too


def test_smoke_acts_on_the_agents(passing):
    ev, t = passing.evacuation, passing.margin
    f = FIRE["floor"]
    assert float(ev["floor_speed_factor"].sel(floor=f).min()) < 1.0  # the fire floor's route had smoke
    assert (ev["stair_door_closed"].sel(floor=f).values[-1] == 1).all()  # its route became untenable: cut off
    assert t["people_in_smoke_s"][f] > 0
    assert int(ev["people_cut_off"].sel(floor=f)) == t["people_cut_off"][f]


def test_rset_with_smoke_is_not_shorter(passing):
    s = passing.summary
    assert s["rset_uncoupled_s"] is not None and s["rset_s"] is not None
    assert s["rset_s"] >= s["rset_uncoupled_s"]
    assert s["people_caught"] >= s["people_caught_uncoupled"] or s["people_cut_off"] > 0


def test_margin_table_is_consistent(passing):
    t = passing.margin
    m = t["aset_s"] - t["rset_s"]
    np.testing.assert_array_equal(np.isnan(t["margin_s"]), np.isnan(m))
    np.testing.assert_allclose(t["margin_s"].dropna(), m.dropna(), rtol=0, atol=1e-9)
    ev, alarm = passing.evacuation, passing.alarm_s
    np.testing.assert_allclose(t["rset_s"], alarm + ev["rset_floor"].values)
    np.testing.assert_array_equal(t["people"], ev["people_initial"].values)
    assert np.isfinite(t["aset_s"]).any()
    for f in np.nonzero(np.isfinite(t["aset_s"].to_numpy()))[0]:  # caught = still on the floor at its ASET
        times = ev["time"].values + alarm
        i = min(int(np.searchsorted(times, t["aset_s"][f] - 1e-9)), times.size - 1)
        expect = ev["people_on_floor"].values[0, f] if t["aset_s"][f] <= alarm else ev["people_on_floor"].values[i, f]
        assert t["people_caught"][f] == expect
    # the smallest margin is the scenario coupling's: a floor still occupied at the end counts as ASET − end
    from scenarios.fire_evacuation import smallest_margin, summary_of

    least, rule = summary_of(passing)["smallest_margin"], smallest_margin(t, float(passing.fire.dataset["time"][-1]))
    assert least is not None and least["margin_s"] == round(rule["smallest_margin_s"], 1)
    assert least["level"] == rule["smallest_margin_level"] and least["is_bound"] == rule["smallest_margin_is_bound"]
    ds = passing.fire.dataset  # the map's Dataset carries the margins per storey
    for name in ("rset_s", "margin_s", "people_caught"):
        np.testing.assert_array_equal(ds[name].values, t[name].to_numpy())
        assert ds[name].attrs["units"]


def test_run_kind_writes_fire_and_evacuation(tmp_path):
    from twin.runkinds import RunContext, get_kind

    kind = get_kind("fire_evacuation")
    req = kind.validate({"building": BUILDING, "floor": 15, "growth": "fast", "sprinklers": "off",
                         "duration_s": 120.0, "seed": 1, "door_hold": "open", "alarm_s": 30.0})
    kind.precheck(req)
    ctx = RunContext(out_dir=tmp_path)
    ds = kind.run(req, ctx)
    out = kind.write(ds, tmp_path, req, ctx)
    for role in ("fire", "aset", "evacuation", "evacuation_uncoupled", "margin"):
        assert out.paths[role].is_file(), role
    fire = xr.open_dataset(out.paths["fire"])
    assert {"rset_s", "margin_s", "people_caught"} <= set(fire.data_vars)
    evac = xr.open_dataset(out.paths["evacuation"])
    assert evac.attrs["alarm_s"] == 30.0 and evac.attrs["door_hold"] == "open"
    assert out.summary["alarm_s"] == 30.0 and out.summary["fire"]["building"]
    json.dumps(out.summary, allow_nan=True)
    from twin.pipeline import read_run_events

    events = read_run_events(tmp_path)
    kinds = {e.kind for e in events}
    assert "building_evacuated" in kinds or "person_stranded" in kinds  # the evacuation's, beside the fire's
    assert len(kinds) > 2 and [e.time_s for e in events] == sorted(e.time_s for e in events)
    rows = (tmp_path / "margin.csv").read_text().splitlines()
    assert rows[0].startswith("floor,level,refuge,people,aset_s,rset_s,margin_s,people_caught") and len(rows) == 31


def test_bad_door_hold_is_refused():
    from twin.errors import ValidationError

    with pytest.raises(ValidationError, match="door_hold='ajar'"):
        FireEvacuation(BUILDING, floor=15, door_hold="ajar")
