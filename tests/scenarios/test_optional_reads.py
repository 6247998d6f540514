"""Optional reads of a coupling: used when present, never required, still ordered after their writers.

The ordering rule is checked on a real run (Futian at 1 km, 30 min, toy
couplings on the real clock): a writer of an optional read in the same phase
runs before its reader at every instant, whatever their names say; without
the declaration the reader, first by name, sees the writer's previous value.
"""

from __future__ import annotations

import json

import pytest

from scenarios.coupling import Coupling, check_couplings, get_coupling
from scenarios.runner import run_coupled, schedule
from scenarios.schema import Scenario
from scenarios.translate import translate
from twin.errors import ValidationError


def _noop(*_a):
    return None


def toy(name, *, phase="response", reads=(), writes=(), optional_reads=(), kinds=(), step=_noop,
        setup=_noop, period_s=300.0):
    return Coupling(name=name, phase=phase, period_s=period_s, reads=reads, writes=writes,
                    optional_reads=optional_reads, setup=setup, step=step, kinds=kinds)


def test_optional_reads_default_to_none_and_are_checked_like_reads():
    assert toy("a").optional_reads == ()
    assert toy("a", optional_reads=["x", "event:y"]).all_reads == ("x", "event:y")
    with pytest.raises(ValidationError, match="optional_reads entry 'Water Depth'"):
        toy("a", optional_reads=("Water Depth",))
    with pytest.raises(ValidationError, match=r"optional_reads and reads both name \['x'\]"):
        toy("a", reads=("x",), optional_reads=("x",))
    with pytest.raises(ValidationError, match=r"optional_reads and writes both name \['x'\]"):
        toy("a", writes=("x",), optional_reads=("x",))


def test_a_writer_of_an_optional_read_in_the_same_phase_runs_first():
    reader = toy("a_reader", optional_reads=("level",))
    writer = toy("z_writer", writes=("level",))
    assert [c.name for c in schedule([writer, reader])] == ["z_writer", "a_reader"]
    # without the declaration, ties go by name: the reader would run first
    assert [c.name for c in schedule([writer, toy("a_reader")])] == ["a_reader", "z_writer"]
    # a writer in an earlier phase keeps the phase order; a later one stays after (a lag)
    early = toy("z_writer", phase="physics", writes=("level",))
    late = toy("a_reader", phase="forcing", optional_reads=("level",))
    assert [c.name for c in schedule([reader, early])] == ["z_writer", "a_reader"]
    assert [c.name for c in schedule([late, writer])] == ["a_reader", "z_writer"]


def test_an_optional_read_in_a_cycle_is_refused_like_a_read():
    a = toy("a", writes=("x",), optional_reads=("y",))
    b = toy("b", writes=("y",), reads=("x",))
    with pytest.raises(ValidationError, match="cycle: a -> b -> a"):
        schedule([a, b])


def test_an_absent_writer_is_fine_and_pulls_no_provider_into_a_scenario():
    reader = toy("reader", kinds=("flood_forecast",), optional_reads=("water_depth", "event:incident"))
    check_couplings([reader])  # nothing refused
    reg = {"reader": reader, "flood": toy("flood", phase="physics", writes=("water_depth",)),
           "injects": toy("injects", phase="forcing", writes=("event:incident",))}
    sc = Scenario.model_validate({
        "name": "toy", "title": "toy", "seed": 1,
        "time": {"start": "2023-09-07T22:00:00+08:00", "duration": "1 h"},
        "area": {"districts": ["Futian"]}, "hazards": {"rain": {"storm": "2023-09-07"}},
        "models": {"flood_forecast": {"resolution": 500.0}}})
    tr = translate(sc, registry=reg)
    assert list(tr.config.couplings) == ["reader"]
    assert tr.config.external == [] and tr.notes == []


def test_dispatch_declares_what_it_uses_when_present():
    d = get_coupling("dispatch")
    assert set(d.optional_reads) == {"water_depth", "water_speed", "event:incident", "event:station_lost"}
    assert d.reads == ("road_graph",)


def _recorder(seen):
    def step(ctx, t, dt):
        seen.append((t, ctx.shared.get("level")))
    return step


def _writer_step(ctx, t, dt):
    ctx.shared["level"] = t


@pytest.mark.parametrize("declared", [True, False])
def test_on_a_run_the_reader_sees_the_value_its_writer_made_at_the_same_instant(twin_data, tmp_path,
                                                                                declared):
    seen: list = []
    reader = toy("a_reader", optional_reads=("level",) if declared else (), step=_recorder(seen))
    writer = toy("z_writer", writes=("level",), step=_writer_step)
    cfg = {"districts": ["Futian"], "resolution_m": 1000.0, "duration_s": 1800.0, "output_every_s": 900.0,
           "couplings": {"a_reader": {}, "z_writer": {}}}
    run = run_coupled(cfg, tmp_path / "run", couplings={"a_reader": reader, "z_writer": writer})
    times = [300.0 * k for k in range(1, 7)]
    assert [t for t, _ in seen] == times
    if declared:
        assert [c.name for c in run.order] == ["z_writer", "a_reader"]
        assert [v for _, v in seen] == times
    else:
        assert [c.name for c in run.order] == ["a_reader", "z_writer"]
        assert [v for _, v in seen] == [None] + times[:-1]  # one step behind
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    entry = {e["name"]: e for e in manifest["schedule"]}
    assert entry["a_reader"]["optional_reads"] == (["level"] if declared else [])
    assert entry["z_writer"]["optional_reads"] == []


def test_a_run_without_the_writer_runs_and_the_reader_finds_nothing(twin_data, tmp_path):
    seen: list = []
    reader = toy("a_reader", optional_reads=("level", "event:incident"), step=_recorder(seen))
    cfg = {"districts": ["Futian"], "resolution_m": 1000.0, "duration_s": 600.0, "output_every_s": 600.0,
           "couplings": {"a_reader": {}}}
    run_coupled(cfg, tmp_path / "run", couplings={"a_reader": reader})
    assert seen == [(300.0, None), (600.0, None)]
