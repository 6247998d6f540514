"""The fire ensemble's set-up cache (physics.fire_ensemble.prepared_building): members run on a building's network
and LDLᵀ plan made once per thread are the same, to the bit, as fresh runs.

Internal checks (no published figures). The members run one after another on the cached set-up, the first of
them a fire that flashes over and breaks its glazing (the Ping An example, storey 62, ultrafast, winter,
sprinklers off: flashover at ≈ 230 s), so state left behind in a shared array by one member would show in the
next; the last member repeats the first.
"""

from __future__ import annotations

import threading

import xarray as xr

from physics.fire_ensemble import (
    Member,
    building_spec,
    member_simulation,
    prepared_building,
    run_member,
)
from physics.fire_sim import simulate_fire

BUILDING = "ping_an_finance_centre"
RUN = {"duration_s": 300.0, "dt_s": 2.5, "record_every_s": 10.0, "sprinklers": False, "season": "winter"}
MEMBERS = [Member(0, 62, None, "ultrafast"), Member(1, 10, None, "fast"), Member(2, 62, None, "ultrafast")]


def test_members_on_the_cached_setup_equal_fresh_runs():
    spec = building_spec(BUILDING)
    prepared = prepared_building(spec)
    kinds = set()
    for m in MEMBERS:
        sim = member_simulation(spec, m, RUN, setup_cache=True)
        assert sim.network is prepared[1]  # the cached network, not a new one
        sim.advance_to(sim.duration_s)
        cached = sim.result()
        fresh = simulate_fire(spec, floor=m.floor, compartment=m.compartment, growth=m.growth, **RUN)
        xr.testing.assert_identical(cached.dataset, fresh.dataset)
        assert cached.events == fresh.events
        kinds |= {e["kind"] for e in cached.events}
    assert {"flashover", "glazing_broken"} <= kinds  # the first member changed the building's state


def test_run_member_is_the_same_with_and_without_the_cache():
    spec = building_spec("tower_30_residential")
    run = {**RUN, "season": "summer", "duration_s": 200.0}
    m = Member(0, 28, None, "ultrafast")
    a, b = run_member(spec, m, run, setup_cache=True), run_member(spec, m, run, setup_cache=False)
    assert a["ok"] and b["ok"]
    assert a["aset_s"].tobytes() == b["aset_s"].tobytes()
    assert a["ignition_s"].tobytes() == b["ignition_s"].tobytes()
    assert a["events"] == b["events"] and a["compartment"] == b["compartment"]


def test_the_cache_holds_one_building_per_thread():
    tower = building_spec("tower_30_residential")
    first = prepared_building(tower)
    assert prepared_building(tower) is first
    other = building_spec("tower_30_residential")  # another object: its own set-up
    assert prepared_building(other) is not first
    seen = []
    t = threading.Thread(target=lambda: seen.append(prepared_building(other)))
    t.start()
    t.join()
    assert seen[0] is not prepared_building(other)  # another thread builds its own (the plan is scratch)
