"""scenarios.translate: a scenario -> the coupled run's config, each coupling with why it runs.

Most tests use toy couplings in a registry of their own (no global
registration); every built-in scenario is translated with the registered
couplings.
"""

from __future__ import annotations

import pytest

from scenarios.coupling import Coupling, couplings
from scenarios.files import builtin_names, load_scenario
from scenarios.schema import Scenario
from scenarios.translate import STATIC_NAMES, describe, grid_of, scenario_to_config, translate
from twin.errors import ValidationError


def _noop(*_a):
    return None


def toy(name, *, kinds=(), reads=(), writes=(), phase="physics", from_scenario=None, period_s=60.0):
    return Coupling(name=name, phase=phase, period_s=period_s, reads=reads, writes=writes, setup=_noop,
                    step=_noop, kinds=kinds, from_scenario=from_scenario)


def scenario(**more) -> Scenario:
    data = {"name": "toy", "title": "toy", "seed": 5,
            "time": {"start": "2023-09-07T22:00:00+08:00", "duration": "3 h"},
            "area": {"districts": ["Futian"]}, "hazards": {"rain": {"storm": "2023-09-07"},
                                                         "sea": {"tide_m": 1.0}},
            "models": {"flood_forecast": {"resolution": 120.0}}}
    return Scenario.model_validate(data | more)


def test_a_model_enables_every_coupling_that_lists_its_kind():
    reg = {"a": toy("a", kinds=("flood_forecast",)), "b": toy("b", kinds=("flood_forecast", "x")),
           "c": toy("c")}
    tr = translate(scenario(), registry=reg)
    assert sorted(tr.config.couplings) == ["a", "b"]
    assert tr.reasons == {"a": "models.flood_forecast", "b": "models.flood_forecast"}
    assert describe(tr) == ["a: models.flood_forecast", "b: models.flood_forecast"]
    assert scenario_to_config(scenario(), registry=reg) == tr.config


def test_from_scenario_gets_the_section_over_the_shared_values_and_the_scenario():
    seen = {}

    def grab(section, sc):
        seen.update(section=section, scenario=sc)
        return {"tide": section["tide_m"], "storm": section["storm"]}

    reg = {"a": toy("a", kinds=("flood_forecast",), from_scenario=grab)}
    sc = scenario(models={"flood_forecast": {"resolution": 120.0, "tide_m": 2.5}})
    tr = translate(sc, registry=reg)
    # the section's own tide wins over hazards.sea.tide_m; the storm and hours come from the scenario
    assert tr.config.couplings["a"] == {"tide": 2.5, "storm": "2023-09-07"}
    assert seen["section"]["hours"] == sc.time.hours and seen["section"]["seed"] == sc.seed
    assert seen["section"]["resolution"] == 120.0 and seen["scenario"] is sc


def test_a_provider_is_added_for_each_unwritten_read_to_a_fixed_point():
    reg = {"a": toy("a", kinds=("flood_forecast",), reads=("rain",), writes=("water_depth",)),
           "sky": toy("sky", reads=("cloud",), writes=("rain",), phase="forcing"),
           "vapour": toy("vapour", writes=("cloud",), phase="forcing"),
           "unused": toy("unused", writes=("other",))}
    tr = translate(scenario(), registry=reg)
    assert sorted(tr.config.couplings) == ["a", "sky", "vapour"]
    assert tr.reasons["sky"] == "provides rain read by a"
    assert tr.reasons["vapour"] == "provides cloud read by sky"


def test_static_layers_of_the_grid_need_no_provider():
    reg = {"a": toy("a", kinds=("flood_forecast",), reads=("elevation", "land")),
           "dem": toy("dem", writes=("elevation",))}
    assert sorted(translate(scenario(), registry=reg).config.couplings) == ["a"]
    assert {"elevation", "land", "sea"} <= set(STATIC_NAMES)


def test_two_registered_writers_of_a_read_are_refused_naming_both():
    reg = {"a": toy("a", kinds=("flood_forecast",), reads=("rain",)),
           "sky1": toy("sky1", writes=("rain",)), "sky2": toy("sky2", writes=("rain",))}
    with pytest.raises(ValidationError, match=r"rain \(read by a\).*\['sky1', 'sky2'\]"):
        translate(scenario(), registry=reg)


def test_a_read_nobody_writes_is_refused_before_running():
    reg = {"a": toy("a", kinds=("flood_forecast",), reads=("lava",))}
    with pytest.raises(ValidationError, match="'a' reads 'lava'"):
        translate(scenario(), registry=reg)


def test_a_model_without_a_coupling_is_refused_naming_it_and_the_known_kinds():
    reg = {"a": toy("a", kinds=("flood_forecast",))}
    sc = scenario(models={"flood_forecast": {}, "dispatch": {}, "slope_forecast": {}})
    with pytest.raises(ValidationError) as err:
        translate(sc, registry=reg)
    text = str(err.value)
    assert "models.dispatch" in text and "models.slope_forecast" in text
    assert "['flood_forecast']" in text and "models.flood_forecast:" not in text


def test_a_non_empty_scenario_list_enables_the_coupling_of_that_name():
    injects = [{"after": "30 min", "kind": "incident",
                "payload": {"lon": 114.06, "lat": 22.53, "incident": "flood_rescue"}},
               {"after": "1 h", "kind": "station_lost", "payload": {"station": "F1"}}]
    reg = {"a": toy("a", kinds=("flood_forecast",)), "injects": toy("injects", phase="forcing",
                                                                    from_scenario=lambda s, sc: {"n": len(sc.injects)})}
    assert "injects" not in translate(scenario(), registry=reg).config.couplings
    tr = translate(scenario(injects=injects), registry=reg)
    assert tr.config.couplings["injects"] == {"n": 2}
    assert tr.reasons["injects"] == "the scenario has 2 injects"


def test_grid_time_and_step_come_from_the_scenario():
    reg = {"a": toy("a", kinds=("flood_forecast",)), "b": toy("b", kinds=("slope_forecast",)),
           "c": toy("c", kinds=("dispatch",), from_scenario=lambda s, sc: {"period_s": 30.0})}
    sc = scenario(models={"flood_forecast": {"resolution": 120.0, "buffer_m": 300.0},
                          "slope_forecast": {"resolution": 60.0, "buffer_m": 900.0}, "dispatch": {}},
                  time={"start": "2023-09-07T22:00:00+08:00", "duration": "3 h", "step": "2 min"},
                  outputs={"frame_every": "15 min"}, area={"districts": ["Futian"], "buffer_m": 1500.0})
    cfg = translate(sc, registry=reg).config
    assert cfg.resolution_m == 60.0  # the finest asked
    assert cfg.buffer_m == 1500.0  # the largest margin (area's here)
    assert cfg.districts == ["Futian"] and cfg.seed == 5
    assert cfg.duration_s == 3 * 3600.0 and cfg.output_every_s == 900.0
    assert cfg.start == "2023-09-07T22:00:00+08:00"
    # time.step is the period of every coupling that sets none of its own
    assert cfg.couplings["a"]["period_s"] == 120.0 and cfg.couplings["c"]["period_s"] == 30.0
    short = translate(sc, registry=reg, duration_s=1800.0, resolution_m=250.0).config
    assert short.duration_s == 1800.0 and short.resolution_m == 250.0


def test_the_whole_city_has_no_district_list():
    reg = {"a": toy("a", kinds=("flood_forecast",))}
    assert translate(scenario(area={"districts": "all"}), registry=reg).config.districts is None



@pytest.mark.parametrize("name", builtin_names())
def test_each_builtin_translates_with_its_models_and_their_providers(name):
    loaded = load_scenario(name)
    sc = loaded.scenario
    tr = translate(loaded)
    known = couplings()
    for kind in sc.models:
        for c in known.values():
            if kind in c.kinds:
                assert c.name in tr.config.couplings and f"models.{kind}" in tr.reasons[c.name]
    enabled = [known[n] for n in tr.config.couplings]
    written = {w for c in enabled for w in c.writes} | set(STATIC_NAMES)
    assert all(r in written or r in tr.config.external for c in enabled for r in c.reads)
    assert all(n.startswith("event:") for n in tr.config.external)  # only events may be absent
    for why in tr.reasons.values():
        assert why.startswith(("models.", "provides ", "the scenario has "))
    res = [float(s["resolution"]) for s in sc.models.values() if "resolution" in s]
    assert tr.config.resolution_m == grid_of(sc)[0]
    if res:  # a building-only scenario (ping_an_fire) names no cell size: the grid's default
        assert tr.config.resolution_m == min(res)
    assert tr.config.buffer_m >= max([float(s.get("buffer_m", 0)) for s in sc.models.values()]
                                     + [sc.area.buffer_m])
    # districts: the area's list; None for the whole city or a bbox/polygon area (ping_an_fire's bbox)
    assert tr.config.districts == (None if sc.area.whole_city or sc.area.districts is None
                                   else list(sc.area.districts))
    assert tr.config.seed == sc.seed and tr.config.duration_s == sc.time.duration
    # every file the scenario names is an input (ping_an_fire names only a packaged example building: none)
    assert (tr.inputs or name == "ping_an_fire") and all(p.is_file() for p in tr.inputs.values())


def test_an_event_writer_joins_only_when_the_events_it_reads_are_made():
    reg = {"evac": toy("evac", kinds=("evacuate_district",), reads=("event:people_to_move",),
                       phase="response"),
           "debris": toy("debris", reads=("event:slope_failure",), writes=("event:people_to_move",),
                         phase="consequences"),
           "slope": toy("slope", kinds=("slope_forecast",), writes=("event:slope_failure",))}
    alone = translate(scenario(models={"evacuate_district": {}}), registry=reg)
    assert sorted(alone.config.couplings) == ["evac"]  # no slope model is dragged in
    assert alone.config.external == ["event:people_to_move"]
    assert alone.notes and alone.notes[0].startswith("event:people_to_move")
    both = translate(scenario(models={"evacuate_district": {}, "slope_forecast": {}}), registry=reg)
    assert sorted(both.config.couplings) == ["debris", "evac", "slope"]
    assert both.reasons["debris"] == "provides event:people_to_move read by evac"
    assert both.config.external == []
