"""Console history and control through the API (Starlette's TestClient, a real store and city):
a chosen run's forecast, two runs compared, a running forecast cancelled, and the faults found
(deep JSON bodies, security headers on every error, checks a model makes refused before 202)."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from twin.store import Store
from viz.console import create_app
from viz.console.app import SECURITY_HEADERS

TOKEN = "control-test-token-9"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SMALL = {"storm": "2023-09-07", "resolution": 500, "districts": ["Futian"]}
#: Long enough to be cancelled while it runs (~40 s uncancelled), with a progress report every
#: 60 simulated seconds (~0.5 s of wall time here).
LONG = {"storm": "2023-09-07", "hours": 24, "resolution": 30, "districts": ["Futian"]}


@pytest.fixture(scope="module")
def console(tmp_path_factory, city):
    root = tmp_path_factory.mktemp("control")
    app = create_app(root / "store", token=TOKEN, runs_dir=root / "runs", city=city, base_resolution=500)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.runs = app.state.console.runs
        yield client


def finish(console, body: dict) -> int:
    r = console.post("/api/runs", headers=AUTH, json=body)
    assert r.status_code == 202, r.text
    console.runs.join(timeout=180)
    run = console.get(f"/api/runs/{r.json()['id']}").json()
    assert run["status"] == "done", run
    return run["id"]


@pytest.fixture(scope="module")
def two_runs(console) -> tuple[int, int]:
    """Two finished runs of the flood kind: 1 h and 2 h of the same storm over Futian."""
    return finish(console, {**SMALL, "hours": 1}), finish(console, {**SMALL, "hours": 2})


def assert_security_headers(r) -> None:
    for k, v in SECURITY_HEADERS.items():
        assert r.headers.get(k) == v, (r.status_code, k)


# ------------------------------------------------------------------ faults
@pytest.mark.parametrize("depth", [1000, 100])
def test_deeply_nested_body_is_422_with_security_headers(console, depth):
    body = b'{"by": ' + b"[" * depth + b"]" * depth + b"}"
    for url in ("/api/runs", "/api/alerts/1/ack"):
        r = console.post(url, headers={**AUTH, "Content-Type": "application/json"}, content=body)
        assert r.status_code == 422, (url, r.status_code, r.text[:200])
        doc = r.json()
        assert doc["field"] == "body" and f"{depth + 1} deep" in doc["reason"], doc
        assert_security_headers(r)


def test_an_unexpected_500_still_carries_the_security_headers(console, monkeypatch):
    def broken() -> None:
        raise RuntimeError("boom inside a handler")

    monkeypatch.setattr(console.app.state.console.live, "sensors", broken)
    r = console.get("/api/sensors")
    assert r.status_code == 500 and r.json()["error"] == "internal"
    assert "boom" not in r.text  # the traceback stays in the server's log
    assert_security_headers(r)
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("url, method", [("/api/nothing", "get"), ("/api/runs/1/cancel", "get"),
                                         ("/api/runs/x/cancel", "post"), ("/api/scene/compare?a=1", "get")])
def test_other_errors_carry_the_security_headers(console, url, method):
    r = getattr(console, method)(url, headers=AUTH)
    assert r.status_code in (404, 405, 422), (url, r.status_code)
    assert_security_headers(r)


def test_storm_shorter_than_its_block_is_refused_before_202(console):
    """0.25 h is not a whole number of the design storm's 10-min blocks: the run would fail; 422 now."""
    before = len(console.get("/api/runs").json()["runs"])
    r = console.post("/api/runs", headers=AUTH, json={**SMALL, "hours": 0.25})
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["field"] == "hours" and doc["value"] == 0.25
    assert "whole number" in doc["reason"] and "10" in doc["reason"]
    assert len(console.get("/api/runs").json()["runs"]) == before  # nothing recorded, nothing started
    # a whole number of blocks passes the same check
    from twin import pipeline

    assert pipeline.check("flood_forecast", {**SMALL, "hours": 0.5}, city=console.app.state.console.city).hours == 0.5


def test_unknown_district_is_refused_before_202(console):
    r = console.post("/api/runs", headers=AUTH, json={**SMALL, "hours": 1, "districts": ["Futian", "Gotham"]})
    assert r.status_code == 422 and r.json()["field"] == "districts"
    assert "Gotham" in r.json()["reason"]


def test_sensor_scene_tooltips_read_in_display_units(console):
    from datetime import UTC, datetime

    from twin.sensors import Sensor

    with Store.open(console.app.state.store.root) as s:
        s.put_sensors([Sensor(id="CO-9", kind="gas_co", lon=114.05, lat=22.54, unit="1")])
        s.put_observation("CO-9/gas_co", datetime.now(UTC), 8e-6, "1")
    layer = console.get("/api/scene/sensors").json()["layers"][0]
    (tip,) = [d["tooltip"] for d in layer["data"] if d["id"] == "CO-9/gas_co"]
    assert "8 ppm" in tip and "8e-06" not in tip


# ------------------------------------------------------------------ history and compare
def test_base_scene_names_places(console):
    # the console draws the same label layers as the offline pages: districts (Chinese and
    # pinyin), metro line numbers, main roads, station names (a toggle)
    scene = console.get("/api/scene/base").json()
    layers = {lay["id"]: lay for lay in scene["layers"]}
    assert {"labels_districts", "labels_metro", "station_labels"} <= set(layers)
    texts = " ".join(d["t"] for d in layers["labels_districts"]["data"])
    assert "福田" in texts and "Futian" in texts


def test_any_finished_run_can_be_shown(console, two_runs):
    a, b = two_runs
    # runs from the form are what-ifs: without ?run= the console shows the newest forecast cycle, none here
    assert console.get("/api/scene/forecast").json()["run"] is None
    fa = console.get(f"/api/scene/forecast?run={a}").json()
    assert fa["run"] == a and f"#{a}" in fa["title"] and "1 h" in fa["title"]
    assert fa["timeline"]["times_s"][-1] == 3600.0
    fb = console.get(f"/api/scene/forecast?run={b}").json()
    assert fb["run"] == b and fb["timeline"]["times_s"][-1] == 7200.0
    assert console.get("/api/scene/forecast?run=99999").status_code == 404
    r = console.get("/api/scene/forecast?run=x1")
    assert r.status_code == 422 and r.json()["field"] == "run"


def test_two_runs_compare_with_their_difference(console, two_runs):
    a, b = two_runs
    r = console.get(f"/api/scene/compare?a={a}&b={b}")
    assert r.status_code == 200, r.text
    cmp = r.json()
    assert cmp["a"]["run"] == a and cmp["b"]["run"] == b and cmp["variable"] == "max_depth"
    assert cmp["a"]["title"].startswith("A: ") and cmp["b"]["title"].startswith("B: ")
    diff = cmp["diff"]
    assert [layer["id"] for layer in diff["layers"]] == ["diff"]
    assert diff["layers"][0]["image"].startswith("data:image/png;base64,")
    assert diff["legends"] and diff["legends"][0]["units"] == "m"
    assert console.get(f"/api/scene/compare?a={a}&b={a}").status_code == 422
    assert console.get(f"/api/scene/compare?a={a}&b=99999").status_code == 404
    assert console.get(f"/api/scene/compare?a={a}").json()["field"] == "b"


# ------------------------------------------------------------------ cancel
def test_cancel_stops_a_running_forecast_promptly(console, two_runs):
    r = console.post("/api/runs", headers=AUTH, json=LONG)
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    deadline = time.monotonic() + 120
    while (console.get(f"/api/runs/{rid}").json().get("sim_s") or 0) < 120:  # the model is stepping
        assert time.monotonic() < deadline, console.get(f"/api/runs/{rid}").json()
        time.sleep(0.1)
    assert console.post(f"/api/runs/{rid}/cancel").status_code == 401  # the token is needed
    assert console.post(f"/api/runs/{rid}/cancel",
                        headers={"Authorization": "Bearer wrong-token-zz"}).status_code == 403
    t0 = time.monotonic()
    r = console.post(f"/api/runs/{rid}/cancel", headers=AUTH)
    assert r.status_code == 202 and r.json()["cancelling"] is True
    console.runs.join(timeout=30)
    took = time.monotonic() - t0
    run = console.get(f"/api/runs/{rid}").json()
    assert run["status"] == "cancelled" and not run["has_outputs"], run
    assert took < 5.0, took
    assert run["sim_s"] < 24 * 3600 / 2  # it stopped early
    with Store.open(console.app.state.store.root) as s:
        assert [x.status for x in s.runs() if x.id == rid] == ["cancelled"]
    # its partial outputs are not a forecast: it has no map to show
    assert console.get(f"/api/scene/forecast?run={rid}").status_code == 409
    again = console.post(f"/api/runs/{rid}/cancel", headers=AUTH)
    assert again.status_code == 409 and again.json()["status"] == "cancelled"
    assert console.post("/api/runs/99999/cancel", headers=AUTH).status_code == 404
    # the next run can start at once
    nxt = console.post("/api/runs", headers=AUTH, json={**SMALL, "hours": 1})
    assert nxt.status_code == 202, nxt.text
    console.runs.join(timeout=180)
    assert console.get(f"/api/runs/{nxt.json()['id']}").json()["status"] == "done"


# ------------------------------------------------------------------ behind a reverse proxy
@pytest.mark.parametrize("trust", [pytest.param(True, id="proxy-trusted"), pytest.param(False, id="default")])
def test_twin_serve_behind_a_reverse_proxy(tmp_path, twin_data, twin_serve, trust):
    """--forwarded-allow-ips: the proxy's X-Forwarded-For names the client (the ack records it);
    without it the header is ignored. --allowed-host: the public name passes the Host guard."""
    import httpx

    from twin.events import Event

    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        aid = s.put_event(Event(time_s=0.0, kind="threshold_crossed", source="RG1/rain_gauge",
                                severity="warning", message="rain"))
    extra = ["--forwarded-allow-ips", "127.0.0.1", "--allowed-host", "twin.example.org"] if trust else []
    proc, url = twin_serve(store_dir, *extra, env={"TWIN_CONSOLE_TOKEN": TOKEN})
    with httpx.Client(base_url=url, timeout=20) as c:
        public = c.get("/api/info", headers={"Host": "twin.example.org"})
        assert public.status_code == (200 if trust else 400)
        assert c.get("/api/info", headers={"Host": "evil.example"}).status_code == 400
        r = c.post(f"/api/alerts/{aid}/ack", headers={**AUTH, "X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 200, r.text
    twin_serve.stop(proc)
    with Store.open(store_dir) as s:
        (ack,) = s.events(kind="alert_ack")
    assert ack.data["client"] == ("203.0.113.7" if trust else "127.0.0.1")
