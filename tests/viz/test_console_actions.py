"""Trainee actions in the console: GET /api/incidents, POST /api/actions (dispatch, evacuate), token-gated,
validated (422 naming field and value), recorded as ``trainee_action`` events; on a real store and city."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from twin.events import Event
from twin.store import Store
from viz.console import create_app

TOKEN = "console-actions-token-3"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# a point in Futian (the civic centre) and one in Nanshan (Shenzhen Bay Park)
FUTIAN = (114.0600, 22.5430)
NANSHAN = (113.9500, 22.5050)


def incident(store: Store, where: tuple[float, float], kind: str = "flood_rescue", ref: str = "drill-x-1") -> int:
    return store.put_event(Event(time_s=0.0, kind="incident", source="drill", severity="info",
                                 message="people trapped", data={"lon": where[0], "lat": where[1],
                                                                 "incident": kind, "id": ref}))


@pytest.fixture
def console(tmp_path, city):
    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        ids = [incident(s, FUTIAN, ref="a"), incident(s, NANSHAN, kind="collapse", ref="b")]
    app = create_app(store_dir, token=TOKEN, runs_dir=tmp_path / "runs", city=city, base_resolution=500)
    with TestClient(app) as client:
        client.ids = ids
        client.store_dir = store_dir
        yield client


def actions(store_dir) -> list[Event]:
    with Store.open(store_dir) as s:
        return s.events(kind="trainee_action")


def test_incidents_are_listed_newest_first_with_their_district(console):
    body = console.get("/api/incidents").json()
    got = [(i["id"], i["incident"], i["district"], i["status"]) for i in body["incidents"]]
    a, b = console.ids
    assert got == [(b, "collapse", "Nanshan", "open"), (a, "flood_rescue", "Futian", "open")]
    # a model run's simulated incident is not the city's
    with Store.open(console.store_dir) as s:
        run = s.start_run("dispatch")
        s.put_run_events(run, [Event(time_s=0.0, kind="incident", data={"lon": 114.0, "lat": 22.5})])
    assert len(console.get("/api/incidents").json()["incidents"]) == 2


@pytest.mark.parametrize("headers,status", [({}, 401), ({"Authorization": "Bearer wrong-token-1"}, 403)])
def test_actions_need_the_token(console, headers, status):
    r = console.post("/api/actions", json={"action": "dispatch", "incident_id": console.ids[0]}, headers=headers)
    assert r.status_code == status
    assert actions(console.store_dir) == []


@pytest.mark.parametrize("body,field,value", [
    ({"action": "fly"}, "action", "fly"),
    ({"action": "dispatch", "incident_id": 1, "unit_type": "tank"}, "unit_type", "tank"),
    ({"action": "dispatch", "incident_id": 1, "units": 0}, "units", 0),
    ({"action": "dispatch"}, "incident_id", None),
    ({"action": "evacuate", "districts": ["Futian", "Atlantis"]}, "districts.1", "Atlantis"),
    ({"action": "evacuate", "districts": []}, "districts", []),
    ({"action": "evacuate", "districts": ["Futian"], "color": "red"}, "color", "red"),
])
def test_a_bad_action_is_refused_naming_field_and_value(console, body, field, value):
    r = console.post("/api/actions", json=body, headers=AUTH)
    assert r.status_code == 422
    err = r.json()
    assert (err["field"], err["value"]) == (field, value)
    assert actions(console.store_dir) == []


def test_dispatch_to_an_unknown_incident_is_404(console):
    r = console.post("/api/actions", json={"action": "dispatch", "incident_id": 999_999}, headers=AUTH)
    assert r.status_code == 404 and r.json()["field"] == "incident_id"
    assert actions(console.store_dir) == []


def test_dispatch_is_recorded_and_marks_the_incident(console):
    a = console.ids[0]
    r = console.post("/api/actions", json={"action": "dispatch", "incident_id": a, "unit_type": "rescue",
                                           "units": 2, "station": "F1", "by": "trainee 1"}, headers=AUTH)
    assert r.status_code == 201
    body = r.json()
    assert body["incident"]["status"] == "dispatched"
    assert [(d["unit_type"], d["units"], d["by"]) for d in body["incident"]["dispatches"]] == [("rescue", 2, "trainee 1")]
    (ev,) = actions(console.store_dir)
    assert ev.source == "console" and ev.data["action"] == "dispatch" and ev.data["incident_id"] == a
    assert ev.data["by"] == "trainee 1" and ev.data["incident"] == "flood_rescue" and ev.data["incident_ref"] == "a"
    listed = {i["id"]: i for i in console.get("/api/incidents").json()["incidents"]}
    assert listed[a]["status"] == "dispatched" and listed[console.ids[1]]["status"] == "open"


def test_evacuation_of_a_district_by_any_of_its_names(console):
    r = console.post("/api/actions", json={"action": "evacuate", "districts": ["福田区"], "by": "trainee 2",
                                           "incident_id": console.ids[0]}, headers=AUTH)
    assert r.status_code == 201
    (ev,) = actions(console.store_dir)
    assert ev.data["districts"] == ["Futian"] and ev.data["by"] == "trainee 2"
    assert [e["districts"] for e in r.json()["incident"]["evacuations"]] == [["Futian"]]
    # an evacuation without an incident is an order for a zone
    r = console.post("/api/actions", json={"action": "evacuate", "districts": ["Nanshan"]}, headers=AUTH)
    assert r.status_code == 201 and r.json()["incident"] is None
    assert len(actions(console.store_dir)) == 2


def test_a_closed_incident_leaves_the_list_and_takes_no_dispatch(console):
    a, b = console.ids
    with Store.open(console.store_dir) as s:
        s.put_event(Event(time_s=0.0, kind="incident_closed", source="ops", data={"incident_id": a}))
    assert [i["id"] for i in console.get("/api/incidents").json()["incidents"]] == [b]
    assert [i["id"] for i in console.get("/api/incidents?closed=1").json()["incidents"]] == [b, a]
    r = console.post("/api/actions", json={"action": "dispatch", "incident_id": a}, headers=AUTH)
    assert r.status_code == 404
    assert console.get("/api/incidents?closed=yes").status_code == 422


def test_a_forecast_started_from_the_console_is_a_trainee_action(console):
    from urllib.parse import quote

    body = {"storm": "2023-09-07", "hours": 1, "resolution": 500, "districts": ["futian"]}
    r = console.post("/api/runs", headers={**AUTH, "X-Twin-Operator": quote("值班员 王")}, json=body)
    assert r.status_code == 202, r.text
    run = r.json()
    console.app.state.console.runs.join(timeout=600)  # a bound: the first run compiles the kernels
    (ev,) = actions(console.store_dir)
    assert ev.data["action"] == "forecast" and ev.data["by"] == "值班员 王"
    assert (ev.data["run_id"], ev.data["kind"]) == (run["id"], run["kind"])
    # refused runs are not actions
    assert console.post("/api/runs", headers=AUTH, json={**body, "hours": -1}).status_code == 422
    assert len(actions(console.store_dir)) == 1
