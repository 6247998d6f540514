"""The storey window of fire-ensemble members (physics.fire_window) against whole-building members.

The window's defaults and its guard threshold were chosen with ``bench/bench_fire_ensemble.py --parts window``
on these members (the ``choose`` set): the bench tower (``bench/bench_fire.py``'s 115-storey tower, 20
compartments per storey) storeys 8, 30, 50, 75, 95, 110 and the 30-storey example's storeys 2, 9, 16, 23, 29, the
four t² growths, summer and winter, sprinklers as the building file says and off. The members here are in neither
set: the 30-storey example's storeys 5, 13, 20, 26 and the Ping An example itself (8 office zones per storey and
every lift shaft: a network the study did not run), with sprinklers on and off.

Tolerance (the ensemble's time-step test, ``test_fire_ensemble_dt.py``, and for the same reason): every storey's
ASET within two record intervals (20 s), a storey untenable in one run and tenable in the other counting as the
distance to the run's end. ASET exists only on the record grid (record every 10 s; a criterion's crossing
interpolated between records), and the visibility criterion jumps when the route's smoke layer passes head
height, so a passage moved across one record time by however little (here: by the few pascals the window's
boundary does not hold exactly) moves ASET by up to two intervals. Ignition times likewise.
"""

from __future__ import annotations

import numpy as np
import pytest

from physics import fire_window as W
from physics.fire_ensemble import Member, fire_ensemble, prepared_building, run_member, window_arg
from physics.fire_network import COMPARTMENT_KINDS
from physics.fire_sim import FireSimulation, outside_temperature_k, resolve_building, simulate_fire
from physics.fire_zone import FireZoneModel
from twin.errors import ValidationError

DURATION_S = 600.0
RECORD_S = 10.0
TOL_S = 2 * RECORD_S
KW = {"duration_s": DURATION_S, "dt_s": 2.0, "record_every_s": RECORD_S}


def _censored(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, DURATION_S)


def _check_members(building: str, members: list[tuple[int, str, str, bool | None]]) -> list[str]:
    """Each member windowed (default window, guard ignored) against the whole building; the guarded
    ``run_member`` result too. Returns the guard's findings."""
    spec = resolve_building(building)
    prep = prepared_building(spec)
    found = []
    for k, (floor, growth, season, sprinklers) in enumerate(members):
        kw = {**KW, "season": season, "sprinklers": sprinklers}
        full = FireSimulation(spec, floor=floor, growth=growth, prepared=prep, **kw)
        full.advance_to(DURATION_S)
        first = W.default_window(outside_temperature_k(season))  # the season's default ("auto")
        win = W.cached_window(spec, prep, floor, *first)
        hist = W.cached_history(spec, prep, outside_temperature_k(season), 2.0, DURATION_S, RECORD_S)
        ws = W.window_simulation(spec, win, hist, floor=floor, growth=growth, **kw)
        ws.advance_to(DURATION_S)
        what = f"{building} storey {floor} {growth} {season} sprinklers {sprinklers}"
        for name, a, b in (("ASET", full.tenability.aset_s, win.to_building(ws.tenability.aset_s, np.inf)),
                           ("ignition", full.ignition_s, win.to_building(ws.ignition_s))):
            d = np.abs(_censored(a) - _censored(b))
            assert d.max() < TOL_S, f"{what}: {name} of storey {int(d.argmax())} {a[d.argmax()]} vs {b[d.argmax()]}"
        r = run_member(spec, Member(k, floor, None, growth), kw, window=first)
        assert r["ok"], r.get("error")
        if r["window_used"] == f"{first[0]},{first[1]}":  # guarded record by record: the same run
            a = ws.tenability.aset_s
            np.testing.assert_array_equal(r["aset_s"], win.to_building(np.where(np.isfinite(a), a, np.nan)))
            np.testing.assert_array_equal(r["ignition_s"], win.to_building(ws.ignition_s))
        d = np.abs(_censored(r["aset_s"]) - _censored(full.tenability.aset_s))
        assert d.max() < TOL_S, f"{what}: guarded member's ASET"
        found.append(r["window_fallback"])
    return found


def test_window_network_cuts_shafts_into_reservoirs():
    spec = resolve_building("tower_30_residential")
    net = prepared_building(spec)[1]
    win = W.make_window(net, 12, 2, 3)
    sub = win.network
    assert (win.lo, win.hi, win.edges) == (10, 15, (10, 15))
    assert win.storey0 == 9 and sub.n_storeys == 8  # storeys 9 and 16 hold the reservoirs only
    kinds = np.asarray(COMPARTMENT_KINDS)[sub.kind[win.reservoirs]]
    assert set(kinds) <= set(W.SHAFT_KINDS) and len(win.reservoirs) > 0
    assert set(net.storey[win.reservoir_of]) == {9, 16}
    assert [sub.names[i] for i in win.reservoirs] == [net.names[i] for i in win.reservoir_of]
    np.testing.assert_allclose(sub.area_m2[win.reservoirs], W.RESERVOIR_VOLUME_FACTOR * net.area_m2[win.reservoir_of])
    # a reservoir keeps only its shaft vent into the window; every window compartment keeps all of its vents
    for r in win.reservoirs:
        assert not np.any((sub.vent_a == r) | (sub.vent_b == r))
        assert np.sum((sub.vvent_lower == r) | (sub.vvent_upper == r)) == 1
    inner = np.flatnonzero((net.storey >= 10) & (net.storey <= 15))
    n_vents = np.sum(np.isin(net.vent_a, inner) | np.isin(net.vent_b, inner))
    assert sub.n_vents == n_vents
    assert float(np.asarray(sub.attrs["fuel_load_mj_m2"])[win.reservoirs].max()) == 0.0
    # at the building's ground the window has no edge below and no reservoir there
    low = W.make_window(net, 1, 2, 3)
    assert (low.lo, low.edges, low.storey0) == (0, (4,), 0)


def test_window_without_fire_holds_the_whole_buildings_pressures():
    """With no fire, the window's compartments follow the whole building's fire-free run (the stack effect of all
    115 storeys, > 40 Pa here) to within 0.1 Pa: the orifice law's linear range is 1e-4 Pa and Newton's tolerance
    1e-6 Pa, so what is left is the reservoirs' own drift within a step (0.047 Pa measured)."""
    from physics.fire_correlations import AMBIENT_K

    spec = resolve_building("ping_an_finance_centre")
    prep = prepared_building(spec)
    net = prep[1]
    win = W.make_window(net, 80, 2, 3)
    t_out = outside_temperature_k("winter")
    hist = W.prefire_history(prep, t_out, 2.0, 120.0, RECORD_S, win.compartments)
    zone = FireZoneModel(win.network, t_inside_k=AMBIENT_K, t_outside_k=t_out, dt_max=2.0, plan=win.plan)
    for t1 in W.step_times(120.0, 2.0, RECORD_S):
        zone.state[win.reservoirs] = W.RESERVOIR_VOLUME_FACTOR * hist.at(t1, win.reservoir_of)
        zone.step(t1 - zone.t)
    inner = np.setdiff1d(np.arange(win.network.n_compartments), win.reservoirs)
    full = FireZoneModel(net, t_inside_k=AMBIENT_K, t_outside_k=t_out, dt_max=2.0, plan=prep[2])
    full.step(120.0)
    diff = np.abs(zone.pressure[inner] - full.pressure[win.compartments[inner]])
    assert diff.max() < 0.1
    assert np.abs(full.pressure[win.compartments[inner]]).max() > 40.0  # the stack effect the window holds


def test_window_matches_whole_building_30_storeys():
    _check_members("tower_30_residential", [(5, "fast", "summer", None), (13, "slow", "winter", None),
                                            (20, "ultrafast", "summer", False), (26, "medium", "winter", False)])


def test_window_matches_whole_building_ping_an_summer():
    _check_members("ping_an_finance_centre", [(62, "ultrafast", "summer", False), (101, "medium", "summer", None)])


def test_window_matches_whole_building_ping_an_winter():
    _check_members("ping_an_finance_centre", [(30, "fast", "winter", False), (40, "slow", "winter", None)])


def test_guard_falls_back_to_the_whole_building():
    """A window of one storey each way under an 1800 s ultrafast fire with sprinklers off: smoke reaches its edges and
    those of the window WIDEN times wider, so the member is rerun on the whole building and equals that run to the
    bit."""
    spec = resolve_building("tower_30_residential")
    kw = {**KW, "duration_s": 1800.0, "season": "winter", "sprinklers": False}
    mem = Member(0, 14, None, "ultrafast")
    r = run_member(spec, mem, kw, window=(1, 1))
    assert r["ok"] and not r["windowed"] and r["window_used"] == ""
    assert "window edge" in r["window_fallback"]
    whole = run_member(spec, mem, kw)
    np.testing.assert_array_equal(r["aset_s"], whole["aset_s"])
    np.testing.assert_array_equal(r["ignition_s"], whole["ignition_s"])
    assert r["events"] == whole["events"]


def test_guard_widens_the_window_first():
    """A member whose 1/1 window's edge storey gets smoke (30-storey example, storey 14, fast, summer: the storey
    below, 0.0131 1/m in the bench) runs on a wider window next; its result is within the tolerance of the whole
    building's."""
    spec = resolve_building("tower_30_residential")
    kw = {**KW, "season": "summer", "sprinklers": None}
    mem = Member(0, 14, None, "fast")
    r = run_member(spec, mem, kw, window=(1, 1))
    assert r["ok"] and r["window_fallback"]
    whole = run_member(spec, mem, kw)
    d = np.abs(_censored(r["aset_s"]) - _censored(whole["aset_s"]))
    assert d.max() < TOL_S
    assert r["window_used"] in ("", *("{},{}".format(*w) for w in W.REVERSE_STACK_WIDER))  # summer's steps


def test_summer_members_step_through_the_wider_windows():
    """Summer members of the Ping An example (held out: REVERSE_STACK_WIDER was chosen on the bench tower) whose
    smoke leaves their 2,3 window at its lower edge: one stays in the first wider window, two leave that one too
    and end in the second; every storey's ASET and ignition within the tolerance of the whole building's."""
    spec = resolve_building("ping_an_finance_centre")
    prep = prepared_building(spec)
    (b1, a1), (b2, a2) = W.REVERSE_STACK_WIDER
    for k, (floor, growth, sprinklers, used) in enumerate([(92, "fast", None, (b1, a1)),
                                                           (110, "ultrafast", None, (b2, a2)),
                                                           (104, "fast", False, (b2, a2))]):
        kw = {**KW, "season": "summer", "sprinklers": sprinklers}
        r = run_member(spec, Member(k, floor, None, growth), kw, window=W.default_window(outside_temperature_k("summer")))
        assert r["ok"] and r["windowed"] and f"storey {floor - 2} (window edge)" in r["window_fallback"]
        assert r["window_used"] == f"{used[0]},{used[1]}"
        full = FireSimulation(spec, floor=floor, growth=growth, prepared=prep, **kw)
        full.advance_to(DURATION_S)
        for name, a, b in (("ASET", full.tenability.aset_s, r["aset_s"]), ("ignition", full.ignition_s,
                                                                             r["ignition_s"])):
            d = np.abs(_censored(a) - _censored(b))
            assert d.max() < TOL_S, f"storey {floor} {growth}: {name} of storey {int(d.argmax())}"


def test_guards_quick_check_agrees_with_the_full_one_at_every_record():
    """run_guarded's quick check of the last record (one vectorised test of every edge) says "quiet" exactly when
    the full check finds nothing, record by record, on a member whose smoke reaches its window's lower edge
    (30-storey example, storey 14, fast, summer, window 1,1: the storey below at ~0.013 1/m) and after it."""
    spec = resolve_building("tower_30_residential")
    prep = prepared_building(spec)
    kw = {**KW, "season": "summer", "sprinklers": None}
    win = W.cached_window(spec, prep, 14, 1, 1)
    hist = W.cached_history(spec, prep, outside_temperature_k("summer"), 2.0, DURATION_S, RECORD_S)
    sim = W.window_simulation(spec, win, hist, floor=14, growth="fast", **kw)
    verdicts = []
    while sim.t < DURATION_S - 1e-9:
        sim.advance_to(min(sim.t + RECORD_S, DURATION_S))
        full = W._edge_finding(sim, win, True)[0]
        assert W._last_record_quiet(sim, win) == (not full), f"t = {sim.t} s: {full!r}"
        verdicts.append(bool(full))
    assert any(verdicts) and not all(verdicts)  # both answers were checked


def test_wider_window_then_the_whole_building():
    w = W.WIDEN
    assert W.wider_window((2, 3), (2, 3), 115, 60) == (2 * w, 3 * w)
    assert W.wider_window((2 * w, 3 * w), (2, 3), 115, 60) is None  # tried already: the whole building next
    assert W.wider_window((2, 3), (2, 3), 30, 14) is None  # 0..29 would span the building
    assert W.wider_window((1, 1), (1, 1), 30, 14) == (w, w)
    # reverse stack effect (summer): REVERSE_STACK_WIDER in turn, the first window's sides where wider
    (b1, a1), (b2, a2) = W.REVERSE_STACK_WIDER
    assert W.wider_window((2, 3), (2, 3), 115, 100, reverse=True) == (b1, a1)
    assert W.wider_window((b1, a1), (2, 3), 115, 100, reverse=True) == (b2, a2)
    assert W.wider_window((b2, a2), (2, 3), 115, 100, reverse=True) is None
    assert W.wider_window((2, 5), (2, 5), 115, 100, reverse=True) == (b1, 5)
    assert W.wider_window((50, 3), (50, 3), 115, 100, reverse=True) is None  # no step wider than the first below
    assert W.wider_window((2, 3), (2, 3), 20, 14, reverse=True) == (b1, a1)  # storeys 0..17 of 0..19
    assert W.wider_window((b1, a1), (2, 3), 20, 14, reverse=True) is None  # the second cuts 0..17 too
    assert W.wider_window((2, 3), (2, 3), 16, 14, reverse=True) is None  # 0..15 would span the building
    # near the ground the two steps cut the same storeys: the second is skipped, not rerun
    assert W.wider_window((b1, a1), (2, 3), 115, b1 - 1, reverse=True) is None
    assert W.wider_window((2, 3), (2, 3), 115, b1 + 5, reverse=True) == (b1, a1)
    assert W.wider_window((b1, a1), (2, 3), 115, b1 + 5, reverse=True) == (b2, a2)


def test_no_window_is_the_whole_building_run_bit_for_bit():
    kw = {**KW, "season": "summer"}
    r = run_member("tower_30_residential", Member(0, 7, None, "fast"), kw, setup_cache=False, window=None)
    ref = simulate_fire("tower_30_residential", floor=7, growth="fast", **kw)
    assert not r["windowed"] and r["window_fallback"] == ""
    np.testing.assert_array_equal(r["aset_s"], ref.dataset["aset_s"].values)
    np.testing.assert_array_equal(r["ignition_s"], ref.dataset["ignition_s"].values)


def test_ensemble_window_option():
    ds = fire_ensemble("tower_30_residential", origins=[3, 18], growths=["fast"], duration_s=120.0, window=(2, 3))
    assert ds.attrs["window"] == "2,3"
    whole = ds.attrs["window_fallbacks"] - ds.attrs["window_widened"]
    assert ds.attrs["n_windowed"] + whole == 2
    assert ds["member_windowed"].values.sum() == ds.attrs["n_windowed"]
    # "auto" (the default) leaves a building shorter than AUTO_MIN_STOREYS whole
    auto = fire_ensemble("tower_30_residential", origins=[3], growths=["fast"], duration_s=60.0)
    assert auto.attrs["window"] == "none" and auto.attrs["n_windowed"] == 0
    assert window_arg("auto", 115) == (W.DEFAULT_BELOW, W.DEFAULT_ABOVE) == (2, 3)
    assert window_arg("auto", 115, "winter") == W.DEFAULT_NORMAL_STACK == (1, 1)


def test_default_window_follows_the_stack_effect():
    """Summer (outside 33 °C, warmer than the 20 °C inside: reverse stack, shafts draw down) keeps 2 below and 3
    above; winter (10 °C: normal stack) 1 and 1; an outside as warm as the inside takes the summer window."""
    assert W.default_window(outside_temperature_k("summer")) == (2, 3)
    assert W.default_window(outside_temperature_k("winter")) == (1, 1)
    assert W.default_window(293.15) == (2, 3) and W.default_window(293.0) == (1, 1)
    assert window_arg("auto", 30) is None and window_arg(None, 115) is None


@pytest.mark.parametrize("bad", [(0, 3), (2, -1), "wide", (1.5, 2), 3])
def test_bad_window_is_refused(bad):
    with pytest.raises(ValidationError, match="window"):
        fire_ensemble("tower_30_residential", origins=[3], growths=["fast"], duration_s=60.0, window=bad)
