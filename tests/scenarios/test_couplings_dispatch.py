"""The dispatch coupling on real data (Futian, 250 m): calls answered on the run's clock and road graph.

* order: an incident injected at 30 min under the 2023-09-07 storm is answered
  at that instant by a unit whose route avoids every edge the flood has closed
  by then (and the free-flow route it would have taken crosses one of them);
* a lost station's free units are not sent to later calls (a call at the
  station's door before the loss is answered from it, one after is not);
* with no flood, the coupled run's response times equal those of
  :meth:`agents.dispatch.DispatchModel.run` alone on the same calls and seed;
* the same config and seed give the same ``events.jsonl``;
* a run with dispatch takes checkpoints (resuming one: ``test_dispatch_resume.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.coupling import Coupling, get_coupling
from scenarios.runner import run_coupled
from twin.errors import ValidationError
from twin.pipeline import read_run_events

# A street node of western Futian whose way in from the nearest ambulance station (H1) floods by
# t = 1800 s under the 2023-09-07 storm falling within 30 min at 250 m: its free-flow route crosses
# an edge closed by then.
FLOODED_CALL = [114.0320576, 22.5705033]
# The door of the demo station H1 (Peking University Shenzhen Hospital: 3 ambulances).
H1 = [114.0470, 22.5580]


def setup_graph(ctx):
    """A road graph with no hazard: the city's roads of the run's districts on its grid."""
    from agents.city_roads import city_road_graph
    from scenarios.couplings.roads import grid_outline_wgs84

    graph = city_road_graph(ctx.city, districts=list(ctx.domain.selection))
    ctx.shared["road_graph"] = graph.within(grid_outline_wgs84(ctx.domain)).largest_scc()


#: The provider of ``road_graph`` for runs without a flood (the roads coupling needs depths).
GRAPH = {"test_graph": Coupling(name="test_graph", phase="consequences", period_s=3600.0, reads=(),
                                writes=("road_graph",), setup=setup_graph, step=lambda ctx, t, dt: None,
                                save=lambda ctx: {}, restore=lambda ctx, saved: None)}


def record_danger(ctx, t, dt):
    """Cells where the water is dangerous to people now (ARR 2019 class >= H3), each minute.

    H3 (unsafe for children and the elderly), the dispatch's ``hazard_class`` in this run: at 250 m
    no Futian cell reaches the default H4 within the hour.
    """
    from agents.people_hazard import hazard_class

    st = ctx.state
    depth = np.nan_to_num(st.field("water_depth").values, nan=0.0)
    speed = np.nan_to_num(st.field("water_speed").values, nan=0.0)
    ctx.own.setdefault("danger", []).append((t, hazard_class(depth, speed) >= 3))


DANGER = {"danger_probe": Coupling(name="danger_probe", phase="response", period_s=60.0,
                                   reads=("water_depth", "water_speed"), writes=(), setup=lambda ctx: None,
                                   step=record_danger)}


def incident(after_s, lon, lat, kind="medical"):
    return {"t_s": float(after_s), "kind": "incident", "note": "",
            "payload": {"lon": lon, "lat": lat, "incident": kind}}


def base(couplings, duration_s=3600.0, seed=3):
    return {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": duration_s,
            "output_every_s": 600.0, "seed": seed, "couplings": couplings}


@pytest.fixture(scope="module")
def flooded(twin_data, tmp_path_factory):
    cfg = base({"rain": {"storm": "2023-09-07", "storm_hours": 0.5}, "flood": {}, "roads": {},
                "injects": {"injects": [incident(1800.0, *FLOODED_CALL)]},
                "dispatch": {"flood_rescues": 2, "hazard_class": 3}, "danger_probe": {}})
    return run_coupled(cfg, tmp_path_factory.mktemp("dispatch") / "flooded", couplings=DANGER)


def closed_after(events, t_s):
    """Edges closed once every event at or before ``t_s`` has happened (in log order)."""
    closed: set[str] = set()
    for e in events:
        if e.time_s > t_s:
            continue
        if e.kind == "road_closed":
            closed |= set(e.data["edges"])
        elif e.kind == "road_reopened":
            closed -= set(e.data["edges"])
    return closed


def driven_edges(model, req):
    """Edge ids a request's unit drove from its dispatch to its arrival."""
    unit = model.units[req.unit]
    out = []
    for leg in unit.track:
        if req.dispatch_s <= leg.t0 <= req.arrive_s:
            upto = leg.upto if leg.upto is not None else len(leg.edges)
            out += [str(model.router.edge_ids[i]) for i in leg.edges[:upto]]
    return out


def test_an_incident_at_30_min_is_routed_around_the_roads_flooded_by_then(flooded):
    from agents.routing import Router

    model = flooded.contexts["dispatch"].own["model"]
    [i] = [k for k, inc in enumerate(model.incidents) if inc.id == "inject-1"]
    [req] = model._by_incident[i]
    assert req.dispatch_s == 1800.0 and np.isfinite(req.arrive_s)  # answered at the inject's instant
    closed = closed_after(flooded.state.events, 1800.0)
    assert closed  # the flood has closed roads by then
    edges = driven_edges(model, req)
    assert edges and not set(edges) & closed
    # the way in without the flood crosses an edge closed at 1800 s: the detour is the closure's doing
    free = Router(model.router.roads)
    free.set_state(np.zeros(free.n_edges, bool), np.ones(free.n_edges))
    station_node = model.units[req.unit].home
    _, free_edges = free.route_ids(free.route(station_node, req.target))
    assert set(map(str, free_edges)) & closed
    log = [e for e in flooded.state.events if e.time_s == 1800.0]
    call = next(k for k, e in enumerate(log) if e.kind == "incident" and e.data["id"] == "inject-1")
    sent = next(k for k, e in enumerate(log) if e.kind == "unit_dispatched" and e.data["incident"] == "inject-1")
    assert call < sent


def test_flood_rescues_are_called_when_and_where_the_water_becomes_dangerous(flooded):
    from gis.crs import WGS84, transformer
    from scenarios.couplings.roads import sample_cells

    model = flooded.contexts["dispatch"].own["model"]
    rescues = [inc for inc in model.incidents if inc.id.startswith("rescue-")]
    assert 1 <= len(rescues) <= 2 and all(inc.kind == "flood_rescue" for inc in rescues)
    danger = dict(flooded.contexts["danger_probe"].own["danger"])
    dom = flooded.contexts["dispatch"].domain
    for inc in rescues:
        x, y = transformer(WGS84, dom.crs).transform(inc.lon, inc.lat)
        row, col, inside = sample_cells(np.array([[x, y]]), dom.transform, dom.shape)
        assert inside[0]
        assert danger[inc.time_s][row[0], col[0]]  # dangerous at the call
        assert not any(d[row[0], col[0]] for t, d in danger.items() if t < inc.time_s)  # not before


def test_the_flooded_run_lists_its_calls_and_units(flooded):
    coupling = get_coupling("dispatch")
    tables = coupling.tables(flooded.contexts["dispatch"])
    inc, units = tables["incidents"], tables["units"]
    model = flooded.contexts["dispatch"].own["model"]
    assert list(inc["id"]) == [i.id for i in model.incidents] and "inject-1" in set(inc["id"])
    assert inc.geometry.notna().all() and inc["response_s"].notna().any()
    assert len(units) == len(model.units) and units["missions"].sum() == len(model.requests)
    layers = coupling.layers(flooded.contexts["dispatch"], flooded.frame_times)
    assert layers[0].label == "Units" and list(layers[0].times_s) == list(flooded.frame_times)
    html = "".join(coupling.report(flooded.contexts["dispatch"]))
    assert "建标152-2017" in html


@pytest.fixture(scope="module")
def station_run(twin_data, tmp_path_factory):
    lost = {"t_s": 900.0, "kind": "station_lost", "note": "",
            "payload": {"station": "H1", "reason": "yard flooded"}}
    cfg = base({"test_graph": {}, "injects": {"injects": [incident(300.0, *H1), lost,
                                                           incident(1200.0, *H1)]},
                "dispatch": {}}, duration_s=1800.0)
    return run_coupled(cfg, tmp_path_factory.mktemp("dispatch") / "station", couplings=GRAPH)


def test_a_lost_station_sends_no_unit_to_later_calls(station_run):
    model = station_run.contexts["dispatch"].own["model"]
    by_id = {inc.id: k for k, inc in enumerate(model.incidents)}
    before = model._by_incident[by_id["inject-1"]][0]
    after = model._by_incident[by_id["inject-3"]][0]
    assert model.stations[model.units[before.unit].station].id == "H1"  # the nearest, before the loss
    assert after.unit >= 0 and model.stations[model.units[after.unit].station].id != "H1"
    assert after.dispatch_s == 1200.0
    out = [e for e in station_run.state.events if e.kind == "station_out_of_service"]
    assert len(out) == 1 and out[0].time_s == 900.0
    h1 = [u.id for u in model.units if model.stations[u.station].id == "H1"]
    assert sorted(out[0].data["units"]) == sorted(set(h1) - {model.units[before.unit].id})
    assert station_run.summary["couplings"]["dispatch"]["stations_out_of_service"] == ["H1"]


def test_with_no_flood_the_coupled_response_times_are_those_of_the_model_alone(twin_data, tmp_path):
    from agents.dispatch import DispatchModel, make_incident
    from agents.dispatch_run import DEMO_STATIONS, _stations_on_roads, read_stations
    from agents.routing import Router

    duration = 7200.0
    run = run_coupled(base({"test_graph": {}, "dispatch": {"calls_per_hour": 20.0}}, duration_s=duration),
                      tmp_path / "calls", couplings=GRAPH)
    ctx = run.contexts["dispatch"]
    coupled = ctx.own["model"]
    assert len(coupled.incidents) >= 10  # a Poisson(40) draw
    calls = [make_incident(i.id, i.time_s, i.lon, i.lat, i.kind) for i in coupled.incidents]
    router = Router(ctx.shared["road_graph"])
    stations, _ = _stations_on_roads(read_stations(DEMO_STATIONS), router)
    alone = DispatchModel(router, stations, calls, seed=ctx.own["seeds"]["model"]).run(duration)
    a = alone.incident_table().set_index("id")
    c = coupled.incident_table().set_index("id")
    done = a.index[a["first_arrival_s"] <= duration]  # the coupled run stops at its end
    assert len(done) >= 10
    assert np.array_equal(c.loc[done, "response_s"].to_numpy(), a.loc[done, "response_s"].to_numpy())
    assert list(c.loc[done, "first_unit"]) == list(a.loc[done, "first_unit"])
    # and the events say so: one unit_arrived per reached request, at the model's times
    arrived = [e for e in run.state.events if e.kind == "unit_arrived"]
    req = coupled.request_table()
    assert sorted(e.time_s for e in arrived) == sorted(req["arrive_s"].dropna())


def test_same_config_and_seed_give_the_same_events(twin_data, tmp_path):
    injects = [incident(600.0, *H1), incident(660.0, *FLOODED_CALL, kind="fire"),
               {"t_s": 900.0, "kind": "station_lost", "note": "", "payload": {"station": "F1"}}]
    cfg = base({"test_graph": {}, "injects": {"injects": injects},
                "dispatch": {"calls_per_hour": 30.0}}, duration_s=1800.0, seed=11)
    a = run_coupled(cfg, tmp_path / "a", couplings=GRAPH)
    b = run_coupled(cfg, tmp_path / "b", couplings=GRAPH)
    ea, eb = (r.paths["events"].read_bytes() for r in (a, b))
    assert ea == eb
    kinds = {e.kind for e in read_run_events(tmp_path / "a")}
    assert {"incident", "unit_dispatched", "unit_arrived", "station_out_of_service"} <= kinds


def test_a_run_with_dispatch_takes_checkpoints(twin_data, tmp_path):
    # the coupling saves and restores its model (a crash and resume: test_dispatch_resume.py)
    assert get_coupling("dispatch").resumable
    injects = [incident(240.0, *H1), incident(270.0, *FLOODED_CALL, kind="fire")]
    run = run_coupled(base({"test_graph": {}, "injects": {"injects": injects}, "dispatch": {}}, duration_s=600.0),
                      tmp_path / "ck", couplings=GRAPH, checkpoint_every_s=300.0)
    saved = sorted((tmp_path / "ck" / "checkpoints").glob("*.json"))
    assert len(saved) == 2 and run.summary["couplings"]["dispatch"]["reached"] >= 1


def test_a_scenario_section_gives_the_parameters_and_refuses_a_flood_file():
    from scenarios.couplings.dispatch import dispatch_from_scenario

    got = dispatch_from_scenario({"flood": "run:flood_forecast", "flood_rescues": 20, "calls_per_hour": 10.0,
                                  "hours": 3.0, "seed": 1, "city": "shenzhen", "stations": None})
    assert got == {"flood_rescues": 20, "calls_per_hour": 10.0}
    with pytest.raises(ValidationError, match="run:flood_forecast"):
        dispatch_from_scenario({"flood": "/tmp/flood.nc"})
