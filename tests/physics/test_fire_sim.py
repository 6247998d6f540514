"""The fire run (physics.fire_sim) on the 30-storey example tower: real zone-model runs, short durations.

What is checked holds whatever the zone model's numbers: the contract's Dataset, the event timeline, the
sprinkler "control" assumption (NFPA 13 / PD 7974-1: heat release held at its value at activation), the
flashover criterion (upper-layer ΔT 500 K, NUREG-1805 ch. 13) and the fully developed fire after it
(EN 1991-1-2 Annex E.4: min(RHR_f·A_floor, ventilation limit)), the step-wise tenability against
fire_tenability.assess_history on the same record, conservation, determinism and the coupling hooks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from physics.fire_building import load_example
from physics.fire_sim import FIRE_EVENT_KINDS, FireSimulation, device_set, simulate_fire
from physics.fire_source import FLASHOVER_DT_K
from physics.fire_spread import DEFAULT_DELAY_S, RHO_G
from physics.fire_tenability import ZONE_FIELDS, assess_history
from twin.errors import ValidationError

TOWER = "tower_30_residential"
FLOOR = 5
SPREAD_DELAY_S = 100.0  # shorter than fire_spread's 600 s default, to keep the run short
CONTRACT_TC = ("upper_layer__temperature", "lower_layer__temperature", "layer_height", "upper_layer__co",
               "lower_layer__co", "upper_layer__o2", "upper_layer__extinction", "lower_layer__extinction",
               "heat_release_rate", "pressure")
CONTRACT_TS = ("floor_temperature_max", "floor_layer_height_min", "floor_visibility_min", "floor_fed_asphyxiant_max",
               "floor_fed_heat_max", "floor_status", "floor_heat_release")
CONTRACT_S = ("storey_base_m", "storey_height_m", "refuge", "aset_s", "ignition_s")
CONTRACT_ATTRS = ("building", "origin_storey", "origin_compartment", "growth", "sprinklers", "season", "t_outside_k",
                  "duration_s", "dt_s", "lon", "lat", "floor_area_m2", "events", "source_note")


@pytest.fixture(scope="module")
def sprinklered():
    """A fast fire on storey 5 with sprinklers on (the tower's file has none: the override)."""
    sim = FireSimulation(TOWER, floor=FLOOR, growth="fast", sprinklers=True, duration_s=420.0, record_every_s=5.0)
    sim.advance_to(420.0)
    return sim


def open_window_tower():
    """The example tower with windows that fall out at 100 °C (as good as open, the Shenzhen summer habit).

    With the file's closed flat and double glazing (600 °C) the fire runs out of air at ~320 °C and never
    flashes over; an open window feeds it."""
    spec = load_example(TOWER)
    glazing = spec.fire.glazing.model_copy(update={"break_c": 100.0})
    return spec.model_copy(update={"fire": spec.fire.model_copy(update={"glazing": glazing})})


@pytest.fixture(scope="module")
def free():
    """The same fire without sprinklers and an open window, recorded every step, past the spread upward."""
    sim = FireSimulation(open_window_tower(), floor=FLOOR, growth="fast", sprinklers=False, duration_s=1500.0,
                         record_every_s=1.0, spread_delay_s=SPREAD_DELAY_S)
    while sim.t < sim.duration_s:  # until the flat above has burned 20 s (the zone model sets when)
        sim.advance_to(min(sim.t + 20.0, sim.duration_s))
        spread = [e["time_s"] for e in sim.events if e["kind"] == "spread"]
        if spread and sim.t >= spread[0] + 20.0:
            break
    return sim


@pytest.fixture(scope="module")
def closed():
    """The file's tower as it is (flat door and windows closed, no sprinklers): smoke leaks to the lobby."""
    sim = FireSimulation(TOWER, floor=FLOOR, growth="fast", sprinklers=False, duration_s=300.0, record_every_s=5.0)
    sim.advance_to(300.0)
    return sim


def test_dataset_has_every_contract_variable_with_units(sprinklered):
    ds = sprinklered.result().dataset
    assert set(ds.dims) == {"time", "compartment", "storey"}
    n, s_n = sprinklered.network.n_compartments, sprinklered.network.n_storeys
    for name in CONTRACT_TC:
        assert ds[name].dims == ("time", "compartment"), name
    for name in CONTRACT_TS:
        assert ds[name].dims == ("time", "storey"), name
    for name in CONTRACT_S:
        assert ds[name].dims == ("storey",), name
    for name in ("compartment_storey", "compartment_kind", "compartment_area_m2", "compartment_height_m"):
        assert ds[name].dims == ("compartment",), name
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds["upper_layer__temperature"].attrs["units"] == "K" and ds["heat_release_rate"].attrs["units"] == "kW"
    assert ds.sizes["compartment"] == n and ds.sizes["storey"] == s_n
    assert ds["floor_status"].dtype == np.int8
    np.testing.assert_allclose(ds["storey_plate_m2"].values, 600.0)  # the tower's [occupancy] floor_area_m2
    np.testing.assert_allclose(ds["time"].values, np.arange(0.0, 421.0, 5.0))
    for key in CONTRACT_ATTRS:
        assert key in ds.attrs, key
    assert ds.attrs["sprinklers"] == "on" and ds.attrs["origin_storey"] == FLOOR
    assert ds.attrs["building_source"] == TOWER  # what simulate_fire was given (an example name here)
    assert ds.attrs["origin_compartment"] == "5/flat A"
    assert ds.attrs["t_outside_k"] == pytest.approx(306.15)  # summer: 33 °C
    assert json.loads(ds.attrs["events"]) == sprinklered.result().events
    assert ds["ignition_s"].values[FLOOR] == 0.0 and np.isnan(ds["ignition_s"].values[FLOOR + 1])
    assert np.all(np.isfinite(ds["upper_layer__temperature"].values))


def test_events_time_ordered_ignition_first(sprinklered, free, closed):
    for sim in (sprinklered, free, closed):
        ev = sim.result().events
        assert ev[0]["kind"] == "ignition" and ev[0]["time_s"] == 0.0 and ev[0]["compartment"] == "5/flat A"
        times = [e["time_s"] for e in ev]
        assert times == sorted(times)
        assert {e["kind"] for e in ev} <= set(FIRE_EVENT_KINDS)
        for e in ev:
            assert set(e) == {"time_s", "kind", "storey", "compartment", "device", "detail"}


def test_sprinklers_hold_the_fire_before_flashover(sprinklered):
    # "control" (NFPA 13 / PD 7974-1): once the first sprinkler in the fire compartment operates, the heat
    # release stays at its value then, α·t_act² (fast: α = 0.0469 kW/s², NFPA 72), and no flashover follows.
    ev = sprinklered.result().events
    kinds = [e["kind"] for e in ev]
    assert "sprinkler" in kinds and "flashover" not in kinds
    t_act = next(e["time_s"] for e in ev if e["kind"] == "sprinkler" and e["compartment"] == "5/flat A")
    ds = sprinklered.result().dataset
    q = ds["design_heat_release_rate"].sel(compartment="5/flat A")
    held = q.sel(time=slice(t_act + sprinklered.dt_s + 1e-9, None)).values
    assert len(held) > 5
    np.testing.assert_allclose(held, 0.0469 * t_act**2, rtol=1e-12)
    # burned = design while the lower layer holds oxygen
    np.testing.assert_allclose(ds["heat_release_rate"].sel(compartment="5/flat A").values[-1], held[-1], rtol=1e-9)


def test_flashover_at_500_k_then_the_fully_developed_fire(free):
    # NUREG-1805 ch. 13: flashover when the upper layer is 500 K above ambient (20 °C inside); after it
    # EN 1991-1-2 Annex E.4: the fire burns at min(RHR_f·A_floor, ventilation limit) - here the window's limit.
    ev = free.result().events
    fo = [e for e in ev if e["kind"] == "flashover"]
    assert len(fo) == 1 and fo[0]["compartment"] == "5/flat A"
    t_fo = fo[0]["time_s"]
    ds = free.result().dataset
    tu = ds["upper_layer__temperature"].sel(compartment="5/flat A").values
    t = ds["time"].values
    limit = free.t_inside_k + FLASHOVER_DT_K
    k = int(np.searchsorted(t, t_fo))
    assert tu[k - 1] < limit <= tu[k]  # the event lies in the step where the criterion is first met
    assert np.interp(limit, tu[k - 1:k + 1], t[k - 1:k + 1]) == pytest.approx(t_fo, abs=1e-9)
    src = free.fires[free.origin].source
    assert src.vent_limit_kw < src.rhr_f_kw_m2 * src.floor_area_m2  # ventilation controlled
    after = ds["design_heat_release_rate"].sel(compartment="5/flat A").values[k + 1:]
    np.testing.assert_allclose(after, src.vent_limit_kw, rtol=1e-12)


def test_facade_flame_ignites_the_flat_above(free):
    # EN 1991-1-2 Annex B.4.1: L_L = h_eq·(2.37·(Q/(A_v·ρ_g·√(g·h_eq)))^(2/3) − 1) above the soffit, Q the fuel's
    # rate after flashover RHR_f·A_floor (Annex E.4); it reaches the sill of the flat above (gap 3 + 0.9 − 2.4 =
    # 1.5 m) once the glazing is out, and that flat ignites spread_delay_s later (fire_spread's 600 s by default).
    ev = free.result().events
    kinds = [(e["kind"], e["compartment"]) for e in ev]
    assert ("glazing_broken", "5/flat A") in kinds and ("spread", "6/flat A") in kinds
    up = free.network.index("6/flat A")
    reach = free.spread.reach_s[up]
    t_fo = next(e["time_s"] for e in ev if e["kind"] == "flashover")
    # the fire's rate follows the flashover found in a step from the next step on: the flame is there one step later
    assert t_fo < reach <= t_fo + 2.0 * free.dt_s
    a_v, h_eq, _, soffit = free.spread.window(free.origin)
    src = free.fires[free.origin].source
    q_mw = src.rhr_f_kw_m2 * src.floor_area_m2 / 1000.0
    flame = h_eq * (2.37 * (q_mw / (a_v * RHO_G * np.sqrt(9.81 * h_eq))) ** (2.0 / 3.0) - 1.0)
    assert free.spread.flame_m[free.origin] == pytest.approx(flame, rel=1e-12)
    gap = free.spread.window(up)[2] - soffit
    assert gap == pytest.approx(1.5) and flame >= gap
    spread = next(e for e in ev if e["kind"] == "spread")
    assert spread["time_s"] == pytest.approx(reach + SPREAD_DELAY_S) and spread["storey"] == FLOOR + 1
    ds = free.result().dataset
    assert ds["ignition_s"].values[FLOOR + 1] == pytest.approx(reach + SPREAD_DELAY_S)
    assert np.isnan(ds["ignition_s"].values[FLOOR + 2])
    q_up = ds["design_heat_release_rate"].sel(compartment="6/flat A")
    assert float(q_up.sel(time=spread["time_s"] - 1.0)) == 0.0 and float(q_up[-1]) > 0.0


def test_burnout_when_the_fuel_is_spent():
    # EN 1991-1-2 Annex E.4 (Figure E.1): the decay starts when 70 % of the fire load is consumed and the heat
    # release falls linearly to zero with the last 30 %. A tiny load (5 MJ/m² × 0.8 × 135 m² = 541 MJ) burns out
    # before flashover in the closed flat: the stepped fire's decay starts where FireSource.events() puts it
    # (trapezoid on 1 s steps vs its 0.5 s grid: within 0.05 s) and the burn-out event is the first step after
    # its end. The design fire counts pyrolysis (CFAST's convention), whatever the oxygen lets burn.
    spec = load_example(TOWER)
    spec = spec.model_copy(update={"fire": spec.fire.model_copy(update={"fuel_load_mj_m2": 5.0})})
    sim = FireSimulation(spec, floor=FLOOR, growth="fast", sprinklers=False, duration_s=400.0)
    sim.advance_to(400.0)
    fire = sim.fires[sim.origin]
    ref = fire.source.events()
    assert fire.source.energy_kj == pytest.approx(0.8 * 5.0 * float(sim.network.area_m2[sim.origin]) * 1000.0)
    assert np.isinf(ref["t_flashover_s"]) and fire.t_decay_s == pytest.approx(ref["t_decay_s"], abs=0.05)
    out = [e for e in sim.result().events if e["kind"] == "burnout"]
    assert len(out) == 1 and out[0]["compartment"] == "5/flat A"
    assert ref["t_burnout_s"] <= out[0]["time_s"] < ref["t_burnout_s"] + sim.dt_s + 0.05
    assert float(sim.result().dataset["design_heat_release_rate"].sel(compartment="5/flat A")[-1]) == 0.0


def test_stepwise_tenability_equals_assess_history(sprinklered, free, closed):
    # The running FED sums and crossings are assess()'s trapezoid and linear crossing term by term: the
    # same numbers to 1e-9 on the same record.
    for sim in (sprinklered, free, closed):
        ds = sim.result().dataset
        hist = {k: ds[k].values for k in ZONE_FIELDS if k in ds}
        ref = assess_history(ds["time"].values, sim.network, hist)
        ref_aset = np.where(np.isfinite(ref["aset_s"].values), ref["aset_s"].values, np.nan)
        np.testing.assert_allclose(ds["aset_s"].values, ref_aset, rtol=0, atol=1e-9, equal_nan=True)
        assert sim.result().aset_by_floor() == pytest.approx({int(k): v for k, v in
                                                               {s: a for s, a in enumerate(ref_aset)
                                                                if np.isfinite(a)}.items()}, abs=1e-9)
        for s, route in enumerate(sim.tenability.routes):
            np.testing.assert_allclose(ds["floor_fed_asphyxiant_max"].values[:, s],
                                       ref["fed_asphyxiant"].values[:, route].max(axis=1), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(ds["floor_fed_heat_max"].values[:, s],
                                       ref["fed_heat"].values[:, route].max(axis=1), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sim.tenability.compartment_aset_s, ref["compartment_aset_s"].values, atol=1e-9)
        untenable = ds["floor_status"].values == 2
        np.testing.assert_array_equal(untenable, ref["untenable"].values)


def test_origin_floor_fails_first(closed):
    # smoke leaks from the flat (its door closed) into the lobby of the fire storey first
    aset = closed.result().aset_by_floor()
    assert FLOOR in aset
    assert all(aset[FLOOR] <= a for a in aset.values())
    ev = [e for e in closed.result().events if e["kind"] == "floor_untenable"]
    assert ev and ev[0]["storey"] == FLOOR and ev[0]["time_s"] == pytest.approx(aset[FLOOR])


def test_mass_and_energy_conserved(free):
    b = free.zone.balance()
    assert abs(b["mass_residual"]) < 1e-9 * b["mass"]
    assert abs(b["energy_residual"]) < 1e-9 * b["energy"]


def test_deterministic():
    a = simulate_fire(TOWER, floor=FLOOR, growth="fast", sprinklers=True, duration_s=60.0)
    b = simulate_fire(TOWER, floor=FLOOR, growth="fast", sprinklers=True, duration_s=60.0)
    assert a.events == b.events
    assert a.dataset.equals(b.dataset) and a.dataset.attrs == b.dataset.attrs


def test_coupling_hooks_and_progress():
    calls = []
    sim = FireSimulation(TOWER, floor=FLOOR, growth="fast", sprinklers=True, duration_s=40.0,
                         progress=lambda t, d, info: calls.append((t, d, info)))
    net = sim.network
    assert sim.spread.delay_s == DEFAULT_DELAY_S == 600.0  # fire_spread's assumed delay by default
    devices = device_set(net, sprinklers_on=True)
    assert devices.names == sim.devices.names
    assert devices.names.count("smoke 5/lobby") == 1 and "sprinkler 5/flat A" in devices.names
    assert sum(k == "sprinkler" for k in devices.kind) == 5 * net.n_storeys  # 4 flats + the lobby per storey
    doors = sim.stair_door_vents()
    assert len(doors) == 2 * net.n_storeys  # stairs A and B on every storey
    shafts = sim.shaft_compartments()
    assert set(shafts) == {"A", "B"}
    for name, col in shafts.items():
        assert col.shape == (net.n_storeys,) and np.all(col >= 0)
        assert all(net.names[c] == f"{s}/stair {name}" for s, c in enumerate(col))
    v = doors[(FLOOR, "A")]
    assert {int(net.vent_a[v]), int(net.vent_b[v])} == {net.index(f"{FLOOR}/lobby"), int(shafts["A"][FLOOR])}
    first = sim.advance_to(20.0)
    assert first[0]["kind"] == "ignition"  # the t = 0 events come with the first call
    assert sim.vent_open_fraction([v])[0] == net.vent_open[v] == 0.0  # the stair door starts closed
    sim.set_vent_open([v], 1.0)
    assert sim.vent_open_fraction([v])[0] == 1.0 and sim.vent_open_fraction().shape == (net.n_vents,)
    assert sim.advance_to(40.0) is not None and sim.t == pytest.approx(40.0)
    now = sim.floor_now()
    for key in ("visibility_m", "extinction_per_m", "untenable", "t_upper_k"):
        assert now[key].shape == (net.n_storeys,), key
    assert now["untenable"].dtype == bool
    assert sim.compartment_untenable_now().shape == (net.n_compartments,)
    comp = sim.compartments_now()
    for key in ("extinction_per_m", "visibility_m", "t_upper_k", "layer_height_m"):
        assert comp[key].shape == (net.n_compartments,), key
    # the storey's route values are the compartments' own, worst over the route
    route = sim.tenability.routes[FLOOR]
    assert now["extinction_per_m"][FLOOR] == comp["extinction_per_m"][route].max()
    assert now["visibility_m"][FLOOR] == comp["visibility_m"][route].min()
    assert [c[0] for c in calls] == [float(x) for x in range(0, 41, 10)] and calls[-1][1] == 40.0
    with pytest.raises(ValidationError, match="within the run's duration_s"):
        sim.advance_to(50.0)
    with pytest.raises(ValidationError, match="open fractions lie in 0..1"):
        sim.set_vent_open([v], 1.5)


@pytest.mark.parametrize(("kw", "match"), [
    ({"floor": 30}, "floor=30: give a storey index 0..29"),
    ({"floor": 5, "season": "spring"}, "season='spring'"),
    ({"floor": 5, "compartment": "6/flat A"}, "is on storey 6, not 5"),
    ({"floor": 5, "compartment": "flat Z"}, "compartment '5/flat Z' is not in building"),
    ({"floor": 5, "dt_s": 20.0}, "dt_s=20.0: must not exceed record_every_s"),
])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValidationError, match=match):
        FireSimulation(TOWER, **kw)
    with pytest.raises(ValidationError, match="give a fire building file"):
        FireSimulation("no such building", floor=0)
