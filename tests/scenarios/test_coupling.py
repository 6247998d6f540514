"""The coupling registry: declarations, discovery, provider checks and the schedule within a step."""

from __future__ import annotations

import dataclasses

import pytest

from scenarios.coupling import (
    PHASES,
    Coupling,
    check_couplings,
    couplings,
    get_coupling,
    provider_problems,
    register_coupling,
    unregister_coupling,
)
from scenarios.runner import RunConfig, config_sha256, schedule
from twin.errors import ValidationError


def _noop_setup(ctx):
    pass


def _noop_step(ctx, t, dt):
    pass


def toy(name, phase="physics", reads=(), writes=(), period_s=60.0):
    return Coupling(name=name, phase=phase, reads=reads, writes=writes, period_s=period_s,
                    setup=_noop_setup, step=_noop_step)


def test_discovery_finds_the_first_couplings():
    known = couplings()
    assert {"flood", "roads", "routes"} <= set(known)
    assert known["flood"].phase == "physics" and "water_depth" in known["flood"].writes
    assert "water_depth" in known["roads"].reads and "event:road_closed" in known["roads"].writes
    assert known["routes"].phase == "response" and "road_state" in known["routes"].reads


def test_unknown_coupling_lists_the_known_ones():
    with pytest.raises(ValidationError, match=r"unknown coupling 'tsunami'.*'flood'"):
        get_coupling("tsunami")


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "Bad Name"}, "name='Bad Name'"),
    ({"phase": "later"}, r"phase='later': use one of \['forcing'"),
    ({"period_s": 0}, "period_s=0"),
    ({"period_s": float("nan")}, "period_s=nan"),
    ({"reads": ("Water Depth",)}, "reads entry 'Water Depth'"),
    ({"reads": ("x",), "writes": ("x",)}, r"reads and writes both name \['x'\]"),
])
def test_bad_declarations_are_refused_naming_the_field(kwargs, match):
    args = {"name": "toy", "phase": "physics", "reads": (), "writes": (), "period_s": 60.0,
            "setup": _noop_setup, "step": _noop_step} | kwargs
    with pytest.raises(ValidationError, match=match):
        Coupling(**args)


def test_register_refuses_a_name_taken_by_another_module_but_accepts_re_registration():
    a = toy("toy_taken")
    register_coupling(a)
    try:
        register_coupling(a)  # the same one again (a module re-import) is fine
        other = dataclasses.replace(a, step=lambda ctx, t, dt: None)
        with pytest.raises(ValidationError, match="already registered"):
            register_coupling(other)
        assert register_coupling(other, replace=True) is other
    finally:
        unregister_coupling("toy_taken")
    assert "toy_taken" not in couplings()


def test_reads_without_a_writer_are_listed_all_at_once():
    roads, routes = get_coupling("roads"), get_coupling("routes")
    problems = provider_problems([roads, routes])
    text = "; ".join(problems)
    assert "'roads' reads 'water_depth'" in text and "enable flood" in text
    assert "'routes' reads 'road_state'" not in text  # roads writes it
    assert len(problems) == 2  # water_depth and water_speed
    with pytest.raises(ValidationError, match="coupled run refused"):
        check_couplings([roads, routes])
    check_couplings([roads, routes], external=["water_depth", "water_speed"])
    check_couplings([toy("t", reads=("elevation",))], static=["elevation"])


def test_schedule_orders_by_phase_then_by_data_dependency():
    a = toy("a_reader", phase="consequences", reads=("x",))
    b = toy("b_writer", phase="consequences", writes=("x",))
    c = toy("c_response", phase="response")
    d = toy("d_forcing", phase="forcing")
    order = [k.name for k in schedule([c, a, b, d])]
    # by name alone a_reader would come first; the writer of x goes before its reader
    assert order == ["d_forcing", "b_writer", "a_reader", "c_response"]
    assert PHASES == ("forcing", "physics", "consequences", "response")


def test_schedule_of_the_registered_couplings():
    order = [c.name for c in schedule([get_coupling(n) for n in ("routes", "roads", "flood")])]
    assert order == ["flood", "roads", "routes"]


def test_a_cycle_within_a_phase_is_refused_naming_it():
    a = toy("alpha", reads=("y",), writes=("x",))
    b = toy("beta", reads=("x",), writes=("y",))
    c = toy("gamma")
    with pytest.raises(ValidationError, match=r"cycle: alpha -> beta -> alpha"):
        schedule([c, b, a])
    # the same pair in two phases is no cycle: the later phase's write is read one step late
    ok = schedule([a, dataclasses.replace(b, phase="response")])
    assert [k.name for k in ok] == ["alpha", "beta"]


def test_run_config_lists_every_problem():
    with pytest.raises(ValidationError) as err:
        RunConfig.from_mapping({"couplings": {}, "duration_s": -1, "seed": -2, "start": "soon",
                                "resolution_m": "fine", "colour": "red"})
    msg = str(err.value)
    assert "colour: unknown setting" in msg
    with pytest.raises(ValidationError) as err:
        RunConfig.from_mapping({"couplings": {}, "duration_s": -1, "seed": -2, "start": "soon",
                                "resolution_m": "fine"})
    msg = str(err.value)
    for part in ("couplings={}", "duration_s=-1", "seed=-2", "start='soon'", "resolution_m='fine'"):
        assert part in msg


def test_config_hash_is_of_the_canonical_json():
    a = RunConfig.from_mapping({"couplings": {"flood": {"storm": 50, "hours": 1}}, "duration_s": 60})
    b = RunConfig.from_mapping({"duration_s": 60, "couplings": {"flood": {"hours": 1, "storm": 50}}})
    assert a.sha256() == b.sha256() == config_sha256(a.to_dict())
    c = RunConfig.from_mapping({"couplings": {"flood": {"storm": 51, "hours": 1}}, "duration_s": 60})
    assert c.sha256() != a.sha256()


def test_checkpoints_need_save_and_restore_from_every_coupling():
    from scenarios.runner import build_run

    assert all(get_coupling(n).resumable for n in ("flood", "roads", "routes"))
    stateless = toy("toy_stateless")
    with pytest.raises(ValidationError, match=r"couplings \['toy_stateless'\] define no save/restore"):
        build_run({"couplings": {"toy_stateless": {}}, "duration_s": 60.0},
                  couplings={"toy_stateless": stateless}, checkpoint_every_s=30.0)
    with pytest.raises(ValidationError, match="checkpoint_every_s=0"):
        build_run({"couplings": {"toy_stateless": {}}, "duration_s": 60.0},
                  couplings={"toy_stateless": stateless}, checkpoint_every_s=0)
