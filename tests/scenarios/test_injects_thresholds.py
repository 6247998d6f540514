"""A water-level inject raises an alert when the scenario gives the gauge thresholds.

The scenario file's ``[[sensors]]`` thresholds go through ``injects_from_scenario`` to the coupling's
AlertEngine as the station's rules: a reading above ``warning`` gives ``threshold_crossed`` and a
``flood_rescue`` incident at the gauge at the inject's time; a reading below, or a gauge without
thresholds (the packaged alerts.toml has no default water-level rules), gives none.
"""

from __future__ import annotations

import pytest

from scenarios.coupling import Coupling
from scenarios.runner import run_coupled

WL1 = (114.0450, 22.5230)
WL2 = (114.0300, 22.5600)
SCENARIO = f"""
title = "two river gauges, one with its own levels"
seed = 1
[time]
start = 2024-06-01T20:00:00+08:00
duration = "30 min"
[area]
districts = ["Futian"]
[hazards.rain]
rate_mm_h = 30.0
[models.flood_forecast]
resolution = 250.0

[[sensors]]
station = "FT-WL01"
kind = "water_level"
lon = {WL1[0]}
lat = {WL1[1]}
thresholds = {{ advisory = 3.5, warning = 4.0, alarm = 4.5 }}

[[sensors]]
station = "FT-WL02"
kind = "water_level"
lon = {WL2[0]}
lat = {WL2[1]}

[[injects]]
after = "10 min"
kind = "sensor_value"
note = "below the advisory level (340 cm = 3.4 m)"
payload = {{ station = "FT-WL01", sensor = "water_level", value = 340.0, unit = "cm" }}

[[injects]]
after = "20 min"
kind = "sensor_value"
note = "past the warning level, below the alarm level"
payload = {{ station = "FT-WL01", sensor = "water_level", value = 4.2, unit = "m" }}

[[injects]]
after = "20 min"
kind = "sensor_value"
note = "the same level at the gauge without thresholds"
payload = {{ station = "FT-WL02", sensor = "water_level", value = 4.2, unit = "m" }}
"""


def setup_graph(ctx):
    """The city's roads of the run's districts on its grid (the injects coupling reads road_graph)."""
    from agents.city_roads import city_road_graph
    from scenarios.couplings.roads import grid_outline_wgs84

    graph = city_road_graph(ctx.city, districts=list(ctx.domain.selection))
    ctx.shared["road_graph"] = graph.within(grid_outline_wgs84(ctx.domain)).largest_scc()


GRAPH = {"test_graph": Coupling(name="test_graph", phase="consequences", period_s=60.0, reads=(),
                                writes=("road_graph",), setup=setup_graph, step=lambda ctx, t, dt: None)}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from scenarios.files import load_scenario

    path = tmp_path_factory.mktemp("scenario") / "gauges.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path).scenario


@pytest.fixture(scope="module")
def events(twin_data, scenario, tmp_path_factory):
    from scenarios.couplings.injects import injects_from_scenario

    params = injects_from_scenario({}, scenario)
    cfg = {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": scenario.time.duration, "seed": 1,
           "output_every_s": 600.0, "couplings": {"test_graph": {}, "injects": params}}
    return list(run_coupled(cfg, tmp_path_factory.mktemp("run"), couplings=GRAPH).state.events)


def test_the_scenarios_thresholds_reach_the_couplings_parameters(scenario):
    from scenarios.couplings.injects import check_params, injects_from_scenario

    params = injects_from_scenario({}, scenario)
    assert [s["thresholds"] for s in params["sensors"]] == [{"advisory": 3.5, "warning": 4.0, "alarm": 4.5}, {}]
    check_params(params)


def test_a_water_level_past_warning_raises_the_alert_and_a_flood_rescue_at_the_injects_time(events):
    readings = [(e.time_s, e.data["station"], e.data["value"]) for e in events if e.kind == "sensor_reading"]
    assert readings == [(600.0, "FT-WL01", pytest.approx(3.4)), (1200.0, "FT-WL01", 4.2),
                        (1200.0, "FT-WL02", 4.2)]
    (crossed,) = [e for e in events if e.kind == "threshold_crossed"]
    assert (crossed.time_s, str(crossed.severity), crossed.data["station"]) == (1200.0, "warning", "FT-WL01")
    assert (crossed.data["threshold"], crossed.data["value"], crossed.data["metric"]) == (4.0, 4.2, "level_m")
    assert (crossed.data["lon"], crossed.data["lat"]) == WL1
    assert "FT-WL01" in crossed.data["rule_source"]
    (incident,) = [e for e in events if e.kind == "incident"]
    assert (incident.time_s, incident.data["incident"], (incident.data["lon"], incident.data["lat"])) == (
        1200.0, "flood_rescue", WL1)
    assert events.index(crossed) < events.index(incident)


def test_below_the_levels_or_without_thresholds_no_alert_and_no_incident(events):
    at_600 = [e.kind for e in events if e.time_s == 600.0 and e.kind != "sensor_reading"]
    assert "threshold_crossed" not in at_600 and "incident" not in at_600
    assert not [e for e in events if e.kind in ("threshold_crossed", "incident")
                and e.data.get("station") == "FT-WL02"]


def test_bad_thresholds_in_the_couplings_parameters_are_refused_naming_level_and_value():
    from scenarios.couplings.injects import check_params
    from twin.errors import ValidationError

    sensors = [{"station": "RG", "kind": "rain_gauge", "lon": 114.0, "lat": 22.5, "thresholds": {"warning": 0.05}},
               {"station": "WL", "kind": "water_level", "lon": 114.0, "lat": 22.5,
                "thresholds": {"warning": 4.0, "alarm": 3.0, "red": 5.0}}]
    with pytest.raises(ValidationError) as exc:
        check_params({"injects": [], "sensors": sensors})
    msg = str(exc.value)
    for part in ("sensors[0].thresholds={'warning': 0.05}: kind 'rain_gauge' takes no sensor thresholds",
                 "sensors[1].thresholds.alarm=3.0: must be above warning = 4.0",
                 "sensors[1].thresholds.red=5.0: unknown level"):
        assert part in msg, msg
