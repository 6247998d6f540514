"""The agent runs in the store and the console: a run's events stored with the run (any kind, through
the one pipeline), a building evacuation started from the console's API, its map (no model grid) and
its events, refusals that make sense for agent runs, and the run's map and events in headless Chromium.

The events contract (:mod:`twin.pipeline`): a kind writes ``events.jsonl`` (one
:class:`twin.events.Event` record per line) into its run folder; with a store attached the pipeline
appends them to the store's event log tied to the run, idempotently.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from twin import pipeline
from twin.errors import ValidationError
from twin.events import Event, Severity
from twin.runkinds import RunKind, RunOutputs, register_kind, unregister_kind
from twin.store import Store
from viz.console import ConsoleServer, create_app

TOKEN = "agents-console-token-5"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READY = "window.consoleReady === true"
TOWER = Path(__file__).resolve().parents[2] / "agents" / "data" / "tower_30_residential.toml"
#: A small generated tower (10 storeys of 400 m²): a real building evacuation in a few seconds.
SMALL_TOWER = {"kind": "evacuate_building", "levels": 10, "floor_area_m2": 400.0, "seed": 2}
#: Half an hour of random calls over the city's roads, from the console's form.
DISPATCH = {"kind": "dispatch", "hours": 0.5, "calls_per_hour": 12.0, "seed": 1}


# ------------------------------------------------------------------ a throwaway kind with events
class ToyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    closures: int = Field(default=3, ge=0, le=50)
    bad_line: bool = False


def _toy_run(req, ctx):
    import xarray as xr

    ctx.report(1.0, 1.0)
    return xr.Dataset({"closed": ("time", list(range(req.closures + 1)))},
                      coords={"time": [60.0 * i for i in range(req.closures + 1)]})


def _toy_write(ds, out_dir, req, ctx):
    out = Path(out_dir)
    path = out / "toy.nc"
    ds.to_netcdf(path)
    events = [Event(time_s=60.0 * (i + 1), kind="road_closed", source="toy_roads",
                    severity=Severity.WARNING, message=f"road {i} closed", data={"edge": i})
              for i in range(req.closures)]
    events.append(Event(time_s=60.0 * (req.closures + 1), kind="unit_arrived", source="toy_roads",
                        message="engine 1 on scene", data={"unit": "E1"}))
    with (out / pipeline.EVENTS_NAME).open("w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e.to_record()) + "\n")
        if req.bad_line:
            fh.write(json.dumps({"time_s": "soon", "kind": "road_closed"}) + "\n")
    return RunOutputs(paths={"toy": path}, summary={"closures": req.closures})


@pytest.fixture
def toy_kind():
    kind = register_kind(RunKind(name="toy_events", title="Toy events", request=ToyRequest, run=_toy_run,
                                 write=_toy_write, layers=lambda ds, **kw: [], output="toy.nc"))
    yield kind
    unregister_kind("toy_events")


def test_pipeline_stores_a_runs_events_tied_to_the_run_once(tmp_path, toy_kind):
    with Store.open(tmp_path / "store") as store:
        res = pipeline.run("toy_events", {"closures": 4}, tmp_path / "run", store=store, report=False, map=False)
        assert res.run_id is not None and res.events_stored == 5
        info = store.run(res.run_id)
        assert (info.kind, info.status, info.params["closures"]) == ("toy_events", "done", 4)
        rows = store.run_event_rows(res.run_id)
        assert [r.kind for r in rows] == ["road_closed"] * 4 + ["unit_arrived"]
        assert [r.time_s for r in rows] == [60.0, 120.0, 180.0, 240.0, 300.0]  # the run's order
        assert {(r.run_id, r.run_kind) for r in rows} == {(res.run_id, "toy_events")}
        assert rows[2].data == {"edge": 2} and rows[2].severity == "warning" and rows[2].source == "toy_roads"
        # idempotent: the same folder again adds nothing, nothing is duplicated
        assert pipeline.store_run_events(store, res.run_id, tmp_path / "run") == 0
        assert store.run_event_counts(res.run_id) == {"road_closed": 4, "unit_arrived": 1}
        # other readers of the store see them (the live log, filtered by run)
        assert len(store.events(kind="road_closed", run_id=res.run_id)) == 4
        assert [e.id for e in store.event_rows_after(0)] == [r.id for r in rows]
        # a second run's events are its own
        res2 = pipeline.run("toy_events", {"closures": 1}, tmp_path / "run2", store=store, report=False, map=False)
        assert res2.run_id != res.run_id and store.run_event_counts(res2.run_id)["road_closed"] == 1
        assert store.run_event_counts(res.run_id)["road_closed"] == 4


def test_without_a_store_nothing_is_stored_and_the_file_stays(tmp_path, toy_kind):
    res = pipeline.run("toy_events", {"closures": 2}, tmp_path / "run", report=False, map=False)
    assert res.run_id is None and res.events_stored == 0
    assert res.summary["files"]["events"] == pipeline.EVENTS_NAME
    assert [e.kind for e in pipeline.read_run_events(tmp_path / "run")] == ["road_closed"] * 2 + ["unit_arrived"]


def test_a_malformed_event_fails_the_run_naming_the_line_and_stores_none(tmp_path, toy_kind):
    with Store.open(tmp_path / "store") as store:
        with pytest.raises(ValidationError, match=r"events\.jsonl, line 5: .*time_s"):
            pipeline.run("toy_events", {"closures": 3, "bad_line": True}, tmp_path / "run", store=store,
                         report=False, map=False)
        (run,) = store.runs()
        assert run.status == "failed" and store.run_event_counts(run.id) == {}


def test_the_console_imports_the_events_of_runs_finished_before_it_stored_them(tmp_path, toy_kind):
    from viz.console.runs import RunManager, run_dir_name

    with Store.open(tmp_path / "store") as store:
        rid = store.start_run("toy_events", {"closures": 2})
        pipeline.run("toy_events", {"closures": 2}, tmp_path / "runs" / run_dir_name(rid), report=False, map=False)
        store.end_run(rid, "done")
        assert store.run_event_counts(rid) == {}
        manager = RunManager(store, tmp_path / "runs", city=None)
        assert store.run_event_counts(rid) == {"road_closed": 2, "unit_arrived": 1}
        assert manager.events(rid, "road_closed")["events"][1]["message"] == "road 1 closed"
        RunManager(store, tmp_path / "runs", city=None)  # a restart adds nothing
        assert sum(store.run_event_counts(rid).values()) == 3


def test_a_real_building_runs_events_go_to_the_store(tmp_path):
    with Store.open(tmp_path / "store") as store:
        res = pipeline.run("evacuate_building", {"building": str(TOWER), "seed": 1}, tmp_path / "run",
                           store=store, report=False, map=False)
        counts = store.run_event_counts(res.run_id)
        assert counts == res.summary["events"]  # every event the run counted, no more
        assert counts["floor_cleared"] >= 20 and counts["building_evacuated"] == 1
        lines = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
        assert res.events_stored == len(lines) == sum(counts.values())
        last = store.run_event_rows(res.run_id, "building_evacuated")[0]
        assert last.time_s == pytest.approx(res.summary["rset_s"]) and last.run_kind == "evacuate_building"


# ------------------------------------------------------------------ the console
@pytest.fixture(scope="module")
def served(tmp_path_factory, city):
    """A console (real server, store and city) with a finished dispatch run, then two building evacuations."""
    root = tmp_path_factory.mktemp("agents-console")
    app = create_app(root / "store", token=TOKEN, runs_dir=root / "runs", city=city, base_resolution=500)
    with ConsoleServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/runs", headers=AUTH, json=DISPATCH)
        assert r.status_code == 202, r.text
        app.state.console.runs.join(timeout=300)
        server.dispatch = c.get(f"/api/runs/{r.json()['id']}").json()
        assert server.dispatch["status"] == "done", server.dispatch
        ids = []
        for seed in (2, 3):
            r = c.post("/api/runs", headers=AUTH, json={**SMALL_TOWER, "seed": seed})
            assert r.status_code == 202, r.text
            app.state.console.runs.join(timeout=180)
            run = c.get(f"/api/runs/{r.json()['id']}").json()
            assert run["status"] == "done", run
            ids.append(run["id"])
        server.done = ids
        server.client = c
        server.store = app.state.store
        server.runs_dir = app.state.console.runs.runs_dir
        server.runs = app.state.console.runs
        yield server


def test_agent_kinds_are_offered_by_the_form_without_file_paths(served):
    kinds = {k["name"]: k for k in served.client.get("/api/info").json()["kinds"]}
    assert {"evacuate_building", "dispatch", "evacuate_district"} <= set(kinds)
    for name in ("evacuate_building", "dispatch"):
        props = kinds[name]["schema"]["properties"]
        assert props and not set(props) & {"building", "osm", "aset", "flood", "roads", "stations", "shelters"}, \
            (name, sorted(props))
    assert set(kinds["evacuate_building"]["schema"]["properties"]) == {"levels", "floor_area_m2", "use", "seed"}


@pytest.mark.parametrize("body, field", [
    ({"kind": "evacuate_building", "levels": 0, "floor_area_m2": 400.0}, "levels"),
    ({"kind": "evacuate_building", "levels": 10, "building": "/etc/passwd"}, "building"),  # not in the form
    ({"kind": "dispatch", "calls_per_hour": -1}, "calls_per_hour"),
])
def test_agent_forms_refuse_bad_values_naming_the_field(served, body, field):
    r = served.client.post("/api/runs", headers=AUTH, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_the_run_list_describes_a_building_run_with_its_summary(served):
    runs = {r["id"]: r for r in served.client.get("/api/runs").json()["runs"]}
    r = runs[served.done[0]]
    assert r["kind"] == "evacuate_building" and r["has_outputs"]
    assert r["description"] == "10 storeys x 400.0 m² residential"
    assert set(r["summary"]) == {"rset_s", "people", "people_not_safe", "rset_floor_max_s"}
    assert r["summary"]["people"] == 9 * int(400.0 // 18.6) and r["summary"]["people_not_safe"] == 0


def test_a_building_runs_map_has_its_floors_on_a_timeline(served):
    rid = served.done[0]
    sc = served.client.get(f"/api/scene/forecast?run={rid}").json()
    assert sc["run"] == rid and sc["gridded"] is False
    ids = [lyr["id"] for lyr in sc["layers"]]
    assert "building_evac" in ids and "flood_depth" not in ids
    assert sc["timeline"] and len(sc["timeline"]["times_s"]) > 10
    assert "building_evac" in sc["timeline"]["frames"]
    w, s, e, n = sc["bounds"]
    assert w < sc["view"]["longitude"] < e and s < sc["view"]["latitude"] < n
    assert sc["view"]["pitch"] == 50.0  # the kind's map_view: floors seen pitched
    assert sc["title"].startswith(f"Building evacuation #{rid}")


def test_a_building_runs_events_are_listed_and_filtered_by_kind(served):
    rid = served.done[0]
    summary = json.loads((served.runs_dir / f"run-{rid:05d}" / "summary.json").read_text())
    body = served.client.get(f"/api/runs/{rid}/events").json()
    assert body["run"] == rid and body["kind"] == "evacuate_building"
    assert body["counts"] == summary["events"] and body["total"] == len(body["events"])
    assert body["counts"]["floor_cleared"] == 9
    first = body["events"][0]
    assert set(first) == {"id", "time_s", "kind", "source", "severity", "message", "data"}
    times = [e["time_s"] for e in body["events"]]
    assert times == sorted(times)
    only = served.client.get(f"/api/runs/{rid}/events?kind=floor_cleared").json()
    assert only["filter"] == "floor_cleared" and len(only["events"]) == 9
    assert {e["kind"] for e in only["events"]} == {"floor_cleared"}
    assert only["counts"] == body["counts"]  # the filter's choices stay whole
    assert {e["data"]["floor"] for e in only["events"]} == set(range(1, 10))
    few = served.client.get(f"/api/runs/{rid}/events?limit=2").json()
    assert len(few["events"]) == 2 and few["total"] == body["total"]
    other = served.client.get(f"/api/runs/{served.done[1]}/events").json()
    assert not {e["id"] for e in other["events"]} & {e["id"] for e in body["events"]}


@pytest.mark.parametrize("url, status, field", [
    ("/api/runs/999999/events", 404, None),
    ("/api/runs/x/events", 422, "id"),
    ("/api/runs/1/events?kind=floor%20cleared;", 422, "kind"),
    ("/api/runs/1/events?limit=0", 422, "limit"),
])
def test_bad_event_queries_are_refused(served, url, status, field):
    r = served.client.get(url)
    assert r.status_code == status, r.text
    if field:
        assert r.json()["field"] == field


def test_simulated_events_are_not_live_alerts(served):
    """A model run's alarm (a simulated person stranded) is listed with its run, never as a live alert."""
    rid = served.store.start_run("toy_simulation", {})
    assert served.store.put_run_events(rid, [Event(time_s=1.0, kind="person_stranded", source="toy",
                                                   severity=Severity.ALARM, message="simulated")]) == 1
    served.store.end_run(rid, "done")
    alerts = served.client.get("/api/alerts").json()["alerts"]
    assert not [a for a in alerts if a["kind"] in {"floor_cleared", "person_stranded", "queue_formed"}]
    ev = served.store.run_event_rows(rid)[0]
    assert ev.severity == "alarm" and ev.run_kind == "toy_simulation"
    r = served.client.post(f"/api/alerts/{ev.id}/ack", headers=AUTH, json={})
    assert r.status_code == 404, r.text


def test_a_dispatch_run_from_the_form_has_its_units_on_the_map_and_its_events(served):
    rid = served.dispatch["id"]
    assert set(served.dispatch["summary"]) == {"incidents", "within_5min_share", "reroutes", "unreachable_incidents"}
    body = served.client.get(f"/api/runs/{rid}/events").json()
    assert body["kind"] == "dispatch" and body["counts"]["unit_dispatched"] >= served.dispatch["summary"]["incidents"] > 0
    arrived = served.client.get(f"/api/runs/{rid}/events?kind=unit_arrived").json()["events"]
    assert len(arrived) == body["counts"]["unit_arrived"] > 0
    assert all(e["kind"] == "unit_arrived" and e["source"] for e in arrived)
    sc = served.client.get(f"/api/scene/forecast?run={rid}").json()
    assert "units" in [lyr["id"] for lyr in sc["layers"]]
    assert sc["timeline"] and "units" in sc["timeline"]["frames"]


def test_two_building_runs_cannot_be_compared_as_a_difference_map(served):
    a, b = served.done
    r = served.client.get(f"/api/scene/compare?a={a}&b={b}")
    assert r.status_code == 422
    assert "no map grid" in r.json()["reason"] and "summaries" in r.json()["reason"]


def test_the_console_shows_a_building_runs_map_and_events(served, chromium):
    from viz.browser import BrowserSession

    older, newer = served.done
    with BrowserSession(width=1280, height=820) as b:
        b.goto(served.url + "/", ready_js=READY, timeout=120)
        assert b.evaluate("consoleState.forecastRun") == newer  # the newest finished run, on the map
        b.wait_for(f"consoleState.detail && consoleState.detail.run === {newer}", timeout=30)
        assert b.evaluate("consoleMap.viewState.pitch") == 50  # opened on the building, not on the whole city
        b.evaluate(f"document.querySelector('#run-{older} button.show').click(), 1")
        b.wait_for(f"consoleState.forecastRun === {older} && consoleState.detail && "
                   f"consoleState.detail.run === {older}", timeout=60)
        b.wait_for("consoleMap._order.includes('building_evac')", timeout=30)
        b.wait_for("consoleMap.viewState.pitch === 50", timeout=30)  # the kind's map_view: floors pitched
        assert b.evaluate("consoleMap.frameCount") > 10
        lon, lat = json.loads(b.evaluate("JSON.stringify([consoleMap.viewState.longitude, consoleMap.viewState.latitude])"))
        w, s, e, n = served.client.get(f"/api/scene/forecast?run={older}").json()["bounds"]
        assert w < lon < e and s < lat < n  # opened on the building, not the city
        assert b.evaluate("document.getElementById('run-detail').hidden") is False
        rows = json.loads(b.evaluate(
            "JSON.stringify([...document.querySelectorAll('#run-events tbody tr')].map(r => r.dataset.kind))"))
        assert rows.count("floor_cleared") == 9 and "building_evacuated" in rows
        b.evaluate("var s = document.getElementById('event-kind'); s.value = 'floor_cleared';"
                   "s.dispatchEvent(new Event('change')), 1")
        b.wait_for("consoleState.detail.kind === 'floor_cleared'", timeout=30)
        rows = json.loads(b.evaluate(
            "JSON.stringify([...document.querySelectorAll('#run-events tbody tr')].map(r => r.dataset.kind))"))
        assert rows == ["floor_cleared"] * 9
        cells = json.loads(b.evaluate(
            "JSON.stringify([...document.querySelectorAll('#run-events tbody tr')[0].cells].map(c => c.textContent))"))
        assert cells[1] == "floor cleared" and cells[2] == "info" and cells[3].startswith("floor ")
        # a click on an event moves the time slider to it
        t = float(b.evaluate("document.querySelectorAll('#run-events tbody tr')[0].dataset.time"))
        b.evaluate("consoleMap.setFrame(0).then(() => 1)")
        b.evaluate("document.querySelectorAll('#run-events tbody tr')[0].click(), 1")
        b.wait_for("consoleMap.frame > 0", timeout=30)
        times = served.client.get(f"/api/scene/forecast?run={older}").json()["timeline"]["times_s"]
        k = b.evaluate("consoleMap.frame")
        assert times[k] <= t and (k == len(times) - 1 or times[k + 1] > t)
        # the form of each agent kind renders from its console request
        for kind, fields in (("dispatch", ["hours", "calls_per_hour", "seed"]),
                             ("evacuate_building", ["levels", "floor_area_m2", "use", "seed"])):
            b.evaluate(f"var k = document.getElementById('run-kind'); k.value = '{kind}';"
                       "k.dispatchEvent(new Event('change')), 1")
            shown = json.loads(b.evaluate("JSON.stringify([...document.querySelectorAll('#run-fields [data-field]')]"
                                          ".map(i => i.dataset.field))"))
            assert shown == fields, kind
        # ... and starts a run: a 6-storey tower, its map and events shown when it is done
        b.evaluate(f"sessionStorage.setItem('twinConsoleToken', '{TOKEN}'), 1")
        b.evaluate("document.getElementById('run-levels').value = '6';"
                   "document.getElementById('run-floor_area_m2').value = '300';"
                   "document.getElementById('run-start').click(), 1")
        b.wait_for("Object.values(consoleState.runs).some(r => r.params && r.params.levels === 6)", timeout=30)
        new = b.evaluate("Object.values(consoleState.runs).filter(r => r.params.levels === 6)[0].id")
        b.wait_for(f"consoleState.forecastRun === {new} && consoleState.detail && consoleState.detail.run === {new}",
                   timeout=180)
        run = served.client.get(f"/api/runs/{new}").json()
        assert run["params"] == {"levels": 6, "floor_area_m2": 300.0, "use": "residential", "seed": 0}
        assert b.evaluate("consoleState.detail.counts.floor_cleared") == 5
        assert b.console_errors == []
        assert not [u for u in b.network_requests if not u.startswith(served.url)]


# ------------------------------------------------------------------ a console request naming a run
class RefForm(BaseModel):
    """The form names the run in a field of its own; the model's request takes the path in another."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    building_run: int | None = Field(default=None, ge=1, description="Building run", json_schema_extra={
        "twin_run": {"kind": "evacuate_building", "field": "evacuation"}})


class RefRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    evacuation: str | None = None


class SameFieldRequest(BaseModel):
    """The model's own path field, marked: the form sends a run id in it (the district's ``flood``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    evacuation: str = Field(description="evacuation.nc of a building run", json_schema_extra={
        "twin_run": {"kind": "evacuate_building", "field": "evacuation"}})


def _ref_run(req, ctx):
    import xarray as xr

    with xr.open_dataset(req.evacuation) as ds:  # the path the console resolved from the run id
        return xr.Dataset(attrs={"people": int(ds.attrs["people"]), "source": Path(req.evacuation).parent.name})


def _ref_write(ds, out_dir, req, ctx):
    path = Path(out_dir) / "ref.nc"
    ds.to_netcdf(path)
    return RunOutputs(paths={"ref": path}, summary={"people": ds.attrs["people"], "source": ds.attrs["source"]})


@pytest.fixture(params=["own field", "same field"])
def ref_kind(request):
    form, req = (RefForm, RefRequest) if request.param == "own field" else (SameFieldRequest, SameFieldRequest)
    kind = register_kind(RunKind(name="toy_ref", title="Toy reference", request=req, console_request=form,
                                 run=_ref_run, write=_ref_write, layers=lambda ds, **kw: [], output="ref.nc",
                                 summary_keys=("people", "source")))
    yield kind, next(iter(form.model_fields))
    unregister_kind("toy_ref")


def test_a_form_field_naming_a_run_hands_the_model_that_runs_output(served, ref_kind):
    """A console request never carries a path: a field marked ``twin_run`` carries a finished run's id."""
    c = served.client
    _, field = ref_kind
    schema = next(k for k in c.get("/api/info").json()["kinds"] if k["name"] == "toy_ref")["schema"]
    assert schema["properties"][field]["twin_run"] == {"kind": "evacuate_building", "field": "evacuation"}
    bid = served.done[0]
    for body, bad, reason in (({field: served.dispatch["id"]}, field, "is a dispatch run"),
                              ({field: 99999}, field, "no run with id 99999"),
                              ({field: str(TOWER)}, field, "give the id of a finished evacuate_building run"),
                              ({"evacuation": "/etc/passwd", **({field: bid} if field != "evacuation" else {})},
                               "evacuation", "")):
        r = c.post("/api/runs", headers=AUTH, json={"kind": "toy_ref", **body})
        assert r.status_code == 422 and r.json()["field"] == bad and reason in r.json()["reason"], r.text
    r = c.post("/api/runs", headers=AUTH, json={"kind": "toy_ref", field: bid})
    assert r.status_code == 202, r.text
    served.runs.join(timeout=60)
    run = c.get(f"/api/runs/{r.json()['id']}").json()
    assert run["status"] == "done", run
    assert run["params"] == {field: bid}  # the run list shows what the form sent, no path
    people = c.get(f"/api/runs/{bid}").json()["summary"]["people"]
    assert run["summary"] == {"people": people, "source": f"run-{bid:05d}"}


def test_a_district_evacuation_from_a_flood_run_of_the_console(served):
    """Flood forecast, then district evacuations on it, from the form: map, events, no alerts, A/B compare."""
    c = served.client
    r = c.post("/api/runs", headers=AUTH, json={"kind": "flood_forecast", "storm": "2023-09-07", "hours": 1,
                                               "resolution": 150, "districts": ["Futian"]})
    assert r.status_code == 202, r.text
    served.runs.join(timeout=300)
    fid = r.json()["id"]
    assert c.get(f"/api/runs/{fid}").json()["status"] == "done"
    schema = next(k for k in c.get("/api/info").json()["kinds"] if k["name"] == "evacuate_district")["schema"]
    # the form names the flood run (twin_run) once the kind marks its field; until then it takes the path
    flood = fid if "twin_run" in schema["properties"]["flood"] else \
        str(served.runs_dir / f"run-{fid:05d}" / "flood.nc")
    r = c.post("/api/runs", headers=AUTH, json={"kind": "evacuate_district", "flood": flood})
    assert r.status_code == 202, r.text
    served.runs.join(timeout=600)
    did = r.json()["id"]
    run = c.get(f"/api/runs/{did}").json()
    assert run["status"] == "done", run
    summary = json.loads((served.runs_dir / f"run-{did:05d}" / "summary.json").read_text())
    body = c.get(f"/api/runs/{did}/events?limit=1000").json()
    assert body["counts"] == summary["events"] and body["counts"]["road_closed"] == summary["edges_closed"] > 0
    closed = c.get(f"/api/runs/{did}/events?kind=road_closed").json()["events"]
    assert len(closed) == min(500, body["counts"]["road_closed"]) and {e["kind"] for e in closed} == {"road_closed"}
    assert [e["time_s"] for e in closed] == sorted(e["time_s"] for e in closed)
    serious = {e["kind"] for e in body["events"] if e["severity"] in ("advisory", "warning", "alarm")}
    assert serious  # the run has warnings (strandings, closures) that would be alerts if they were live
    alerts = c.get("/api/alerts").json()["alerts"]
    assert not {a["kind"] for a in alerts} & serious  # simulated strandings and closures are not live alerts
    sc = c.get(f"/api/scene/forecast?run={did}").json()
    assert sc["run"] == did and sc["layers"] and sc["timeline"] and len(sc["timeline"]["times_s"]) > 10
    # a second evacuation of the same flood (streets closed to walkers from hazard class H2): on the flood's
    # grid, two district runs compare like floods, on the variable the kind names
    r = c.post("/api/runs", headers=AUTH, json={"kind": "evacuate_district", "flood": flood, "hazard_class": 2})
    assert r.status_code == 202, r.text
    served.runs.join(timeout=600)
    d2 = r.json()["id"]
    assert c.get(f"/api/runs/{d2}").json()["status"] == "done"
    cmp = c.get(f"/api/scene/compare?a={did}&b={d2}")
    assert cmp.status_code == 200, cmp.text
    assert cmp.json()["variable"] == "evacuees_origin" and cmp.json()["runs"] == [did, d2]
