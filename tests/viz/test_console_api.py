"""The console's API and its security, through Starlette's TestClient on a real store and city."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from twin.cli import main
from twin.errors import ConfigError
from twin.events import Event
from twin.sensors import Sensor
from twin.store import Store
from viz.console import create_app
from viz.console.auth import check_bind, check_token, is_loopback
from viz.console.files import StaticFiles
from viz.offline import assert_offline

TOKEN = "console-test-token-42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def seed(store: Store) -> dict[str, int]:
    """Sensors in every status and three alerts; returns the alert event ids."""
    now = datetime.now(UTC)
    store.put_sensors([
        Sensor(id="RG1", kind="rain_gauge", lon=114.05, lat=22.54, unit="mm"),
        Sensor(id="RG2", kind="rain_gauge", lon=114.10, lat=22.55, unit="mm"),
        Sensor(id="WL1", kind="water_level", lon=114.02, lat=22.52, unit="m",
               thresholds={"warning": 2.5, "alarm": 3.0}),
        Sensor(id="WL2", kind="water_level", lon=114.12, lat=22.60, unit="m"),
        Sensor(id="NEVER", kind="water_level", lon=114.20, lat=22.62, unit="m"),
    ])
    store.put_observation("RG1/rain_gauge", now, 3.2, "mm")
    store.put_observation("RG2/rain_gauge", now - timedelta(hours=2), 0.4, "mm")  # stale
    store.put_observation("WL1/water_level", now, 3.1, "m")                         # >= alarm threshold
    store.put_observation("WL2/water_level", now, 0.8, "m")
    store.put_observation("GHOST/water_level", now, 1.0, "m")                       # not registered
    ids = {}
    ids["warning"] = store.put_event(Event(time_s=1.0, kind="threshold_crossed", source="RG1/rain_gauge",
                                           severity="warning", message="rain 1 h >= 50 mm",
                                           data={"datastream": "RG1/rain_gauge"}))
    ids["offline"] = store.put_event(Event(time_s=2.0, kind="sensor_offline", source="WL2/water_level",
                                           severity="warning", message="device WL2 offline"))
    ids["info"] = store.put_event(Event(time_s=3.0, kind="note", source="ops", severity="info",
                                        message="shift change"))
    ids["advisory"] = store.put_event(Event(time_s=4.0, kind="threshold_crossed", source="RG2/rain_gauge",
                                            severity="advisory", message="rain 3 h >= 30 mm",
                                            data={"datastream": "RG2/rain_gauge"}))
    store.put_event(Event(time_s=5.0, kind="alert_cleared", source="RG2/rain_gauge", severity="info",
                          message="cleared", data={"from": "advisory", "to": None}))
    return ids


@pytest.fixture
def console(tmp_path, city):
    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        ids = seed(s)
    app = create_app(store_dir, token=TOKEN, runs_dir=tmp_path / "runs", city=city, base_resolution=500)
    with TestClient(app) as client:
        client.ids = ids
        client.store_dir = store_dir
        yield client


def acks(store_dir) -> list[Event]:
    with Store.open(store_dir) as s:
        return s.events(kind="alert_ack")


# ------------------------------------------------------------------ reads
def test_sensors_have_location_value_and_status(console):
    body = console.get("/api/sensors").json()
    by = {s["id"]: s for s in body["sensors"]}
    assert by["RG1/rain_gauge"]["status"] == "warning"      # active warning alert
    assert by["RG2/rain_gauge"]["status"] == "stale"        # 2 h old, its advisory cleared
    assert by["WL1/water_level"]["status"] == "alarm"       # 3.1 m >= thresholds["alarm"]
    assert by["WL2/water_level"]["status"] == "offline"     # device said offline
    assert by["NEVER/water_level"]["status"] == "offline"   # never reported
    assert by["GHOST/water_level"]["lon"] is None and not by["GHOST/water_level"]["registered"]
    rg1 = by["RG1/rain_gauge"]
    assert (rg1["lon"], rg1["lat"], rg1["kind"], rg1["value"], rg1["unit"]) == \
        (114.05, 22.54, "rain_gauge", 3.2, "mm")
    assert rg1["time"].endswith("Z")
    assert body["counts"]["status"] == {"ok": 1, "warning": 1, "stale": 1, "offline": 2, "alarm": 1}


def test_new_observation_and_clearing_change_the_status(console):
    with Store.open(console.store_dir) as s:
        s.put_observation("WL2/water_level", datetime.now(UTC), 0.9, "m")
        s.put_event(Event(time_s=9.0, kind="sensor_online", source="WL2/water_level", severity="info"))
        s.put_event(Event(time_s=9.0, kind="alert_cleared", source="RG1/rain_gauge", severity="info",
                          data={"from": "warning", "to": None}))
    by = {s["id"]: s for s in console.get("/api/sensors").json()["sensors"]}
    assert by["WL2/water_level"]["status"] == "ok" and by["WL2/water_level"]["value"] == 0.9
    assert by["RG1/rain_gauge"]["status"] == "ok"
    cleared = {a["id"]: a["cleared"] for a in console.get("/api/alerts").json()["alerts"]}
    assert cleared[console.ids["offline"]] is not None and cleared[console.ids["warning"]] is not None


def test_alerts_newest_first_advisory_and_above(console):
    alerts = console.get("/api/alerts").json()["alerts"]
    assert [a["id"] for a in alerts] == [console.ids["advisory"], console.ids["offline"], console.ids["warning"]]
    assert all(a["status"] == "open" and a["ack"] is None for a in alerts)
    cleared = {a["id"]: a["cleared"] for a in alerts}
    assert cleared[console.ids["advisory"]] is not None  # alert_cleared of RG2 followed it
    assert cleared[console.ids["warning"]] is None and cleared[console.ids["offline"]] is None
    assert console.get("/api/alerts?limit=1").json()["alerts"][0]["id"] == console.ids["advisory"]
    r = console.get("/api/alerts?limit=-3")
    assert r.status_code == 422 and r.json()["field"] == "limit" and r.json()["value"] == "-3"


def test_info_serves_the_one_status_palette(console):
    from twin.sensor_status import palette_json

    info = console.get("/api/info").json()
    assert info["statuses"] == palette_json()
    colours = {p["status"]: p["c"] for p in console.get("/api/scene/sensors").json()["layers"][0]["data"]}
    assert all(c == info["statuses"]["colors"][st] for st, c in colours.items())


def test_info_runs_and_scenes(console):
    info = console.get("/api/info").json()
    flood = {k["name"]: k for k in info["kinds"]}["flood_forecast"]
    assert info["actions"] is True and "Futian" in info["districts"]
    assert flood["schema"]["properties"]["storm"]["enum"] == ["2023-09-07"]
    assert console.get("/api/runs").json() == {"runs": [], "busy": False}
    assert console.get("/api/runs/7").status_code == 404
    assert console.get("/api/runs/x7").json()["field"] == "id"
    fc = console.get("/api/scene/forecast").json()
    assert fc["run"] is None and fc["layers"] == [] and fc["timeline"] is None
    base = console.get("/api/scene/base").json()
    ids = [layer["id"] for layer in base["layers"]]
    assert ids[0] == "hillshade" and "districts" in ids and base["layers"][0]["@@type"] == "BitmapLayer"
    assert set(base["view"]) >= {"longitude", "latitude", "zoom"}
    sensors = console.get("/api/scene/sensors").json()["layers"][0]
    assert sensors["@@type"] == "ScatterplotLayer"
    assert {d["id"] for d in sensors["data"]} == {"RG1/rain_gauge", "RG2/rain_gauge", "WL1/water_level",
                                                  "WL2/water_level", "NEVER/water_level"}


def test_changes_feed_numbers_messages(console):
    seq = console.get("/api/changes?since=0").json()["seq"]
    with Store.open(console.store_dir) as s:
        s.put_observation("RG1/rain_gauge", datetime.now(UTC) + timedelta(seconds=1), 7.5, "mm")
    body = console.get(f"/api/changes?since={seq}").json()
    msgs = [m for m in body["messages"] if m["type"] == "sensor"]
    assert [m["sensor"]["value"] for m in msgs if m["sensor"]["id"] == "RG1/rain_gauge"] == [7.5]
    assert body["seq"] > seq and body["resync"] is False
    assert console.get(f"/api/changes?since={body['seq'] + 100}").json()["resync"] is True


# ------------------------------------------------------------------ acknowledge
def test_ack_needs_the_token(console):
    url = f"/api/alerts/{console.ids['warning']}/ack"
    r = console.post(url)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert console.post(url, headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401
    r = console.post(url, headers={"Authorization": "Bearer wrong-token-xx"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert console.post(url, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 403
    assert acks(console.store_dir) == []
    assert console.get("/api/alerts").json()["alerts"][-1]["status"] == "open"


def test_ack_is_stored_durably_and_idempotent(console, tmp_path, city):
    aid = console.ids["warning"]
    r = console.post(f"/api/alerts/{aid}/ack", headers=AUTH, json={"by": "duty officer", "note": "crew sent"})
    assert r.status_code == 200 and r.json()["already"] is False
    assert r.json()["ack"]["by"] == "duty officer"
    r2 = console.post(f"/api/alerts/{aid}/ack", headers=AUTH, json={"by": "someone else"})
    assert r2.status_code == 200 and r2.json()["already"] is True and r2.json()["ack"]["by"] == "duty officer"
    stored = acks(console.store_dir)
    assert len(stored) == 1
    assert stored[0].data["alert_id"] == aid and stored[0].data["by"] == "duty officer"
    assert stored[0].data["note"] == "crew sent" and stored[0].severity.value == "info"
    alert = next(a for a in console.get("/api/alerts").json()["alerts"] if a["id"] == aid)
    assert alert["status"] == "acknowledged" and alert["ack"]["by"] == "duty officer"
    # a new console on the same store sees it (durable, in the generic events table)
    app2 = create_app(console.store_dir, token=TOKEN, runs_dir=tmp_path / "runs2", city=city)
    with TestClient(app2) as c2:
        alert = next(a for a in c2.get("/api/alerts").json()["alerts"] if a["id"] == aid)
        assert alert["status"] == "acknowledged"
        assert c2.post(f"/api/alerts/{aid}/ack", headers=AUTH).json()["already"] is True
    assert len(acks(console.store_dir)) == 1


@pytest.mark.parametrize("path, body, field", [
    ("/api/alerts/abc/ack", None, "id"),
    ("/api/alerts/{warning}/ack", {"by": ""}, "by"),
    ("/api/alerts/{warning}/ack", {"by": "x" * 65}, "by"),
    ("/api/alerts/{warning}/ack", {"by": 5}, "by"),
    ("/api/alerts/{warning}/ack", {"who": "me"}, "who"),
    ("/api/alerts/{warning}/ack", "not json", "body"),
    ("/api/alerts/{warning}/ack", [1, 2], "body"),
])
def test_ack_validation_names_field_and_value(console, path, body, field):
    url = path.format(**console.ids)
    kw = {"content": body.encode()} if isinstance(body, str) else {"json": body}
    r = console.post(url, headers=AUTH, **kw)
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["error"] == "validation" and doc["field"] == field and "value" in doc and doc["reason"]
    assert acks(console.store_dir) == []


def test_ack_of_unknown_or_non_alert_event_is_404(console):
    assert console.post("/api/alerts/999/ack", headers=AUTH).status_code == 404
    assert console.post(f"/api/alerts/{console.ids['info']}/ack", headers=AUTH).status_code == 404
    assert acks(console.store_dir) == []


def test_read_only_console_refuses_actions(tmp_path, city):
    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        ids = seed(s)
    with TestClient(create_app(store_dir, token=None, city=city)) as c:
        assert c.get("/api/info").json()["actions"] is False
        assert c.get("/api/sensors").status_code == 200
        r = c.post(f"/api/alerts/{ids['warning']}/ack", headers=AUTH)
        assert r.status_code == 403 and r.json()["error"] == "read_only"
        assert c.post("/api/runs", headers=AUTH, json={"hours": 1}).status_code == 403
    assert acks(store_dir) == []


# ------------------------------------------------------------------ runs
@pytest.mark.parametrize("body, field, value", [
    ({"hours": 0}, "hours", 0),
    ({"hours": 24.5}, "hours", 24.5),
    ({"hours": "3"}, "hours", "3"),
    ({"hours": True}, "hours", True),
    ({}, "hours", None),
    ({"hours": 1, "resolution": 29}, "resolution", 29),
    ({"hours": 1, "storm": "1999-01-01"}, "storm", "1999-01-01"),
    ({"hours": 1, "districts": ["Atlantis"]}, "districts", ["Atlantis"]),
    ({"hours": 1, "districts": []}, "districts", []),
    ({"hours": 1, "districts": "Futian"}, "districts", "Futian"),
    ({"hours": 1, "dem": "/etc/passwd"}, "dem", "/etc/passwd"),
])
def test_run_request_validation(console, body, field, value):
    r = console.post("/api/runs", headers=AUTH, json=body)
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["field"] == field and doc["value"] == value, doc
    assert console.get("/api/runs").json()["runs"] == []


def test_run_request_rejects_nan_and_needs_token(console):
    r = console.post("/api/runs", headers={**AUTH, "Content-Type": "application/json"},
                     content=b'{"hours": NaN}')
    assert r.status_code == 422 and r.json()["field"] == "hours"
    assert console.post("/api/runs", json={"hours": 1}).status_code == 401
    assert console.post("/api/runs", json={"hours": 1},
                        headers={"Authorization": "Bearer nope-nope-nope"}).status_code == 403
    assert console.post("/api/runs", headers=AUTH, content=b"x" * 70_000).status_code == 413


def test_forecast_run_one_at_a_time_then_scene(console):
    body = {"storm": "2023-09-07", "hours": 1, "resolution": 500, "districts": ["futian"]}
    r = console.post("/api/runs", headers=AUTH, json=body)
    assert r.status_code == 202, r.text
    run = r.json()
    assert r.headers["location"] == f"/api/runs/{run['id']}"
    assert run["params"]["districts"] == ["Futian"] and run["status"] == "running"
    busy = console.post("/api/runs", headers=AUTH, json=body)
    assert busy.status_code == 409 and busy.json()["error"] == "busy"
    app_runs = console.app.state.console.runs
    app_runs.join(timeout=600)  # a bound, not a timing: a first run compiles the flood kernels (minutes on a loaded machine)
    done = console.get(f"/api/runs/{run['id']}").json()
    assert done["status"] == "done", done
    assert done["fraction"] == 1.0 and done["has_outputs"] and done["summary"]["max_depth_m"] > 0
    run_dir = app_runs.runs_dir / f"run-{run['id']:05d}"
    assert (run_dir / "flood.nc").is_file() and (run_dir / "console.json").is_file()
    # a run from the form is a what-if, not a forecast cycle: shown when asked for by id only
    assert console.get("/api/scene/forecast").json()["run"] is None
    fc = console.get(f"/api/scene/forecast?run={run['id']}").json()
    assert fc["run"] == run["id"] and fc["forecast"] is None
    assert [layer["id"] for layer in fc["layers"]][:1] == ["flood_depth"]
    assert len(fc["timeline"]["times_s"]) >= 2 and fc["timeline"]["times_s"][-1] == 3600.0
    with Store.open(console.store_dir) as s:
        stored = [x for x in s.runs() if x.id == run["id"]][0]
    assert stored.kind == "flood_forecast" and stored.status == "done"
    msgs = console.get("/api/changes?since=0").json()["messages"]
    assert any(m["type"] == "run" and m["run"]["status"] == "done" for m in msgs)


def test_run_left_running_by_a_dead_console_is_closed(tmp_path, city):
    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        rid = s.start_run("flood_forecast", {"hours": 1.0, "console_pid": 2**22 + 12345})
    with TestClient(create_app(store_dir, token=TOKEN, city=city)) as c:
        run = c.get(f"/api/runs/{rid}").json()
    assert run["status"] == "failed" and "stopped" in run["error"]


# ------------------------------------------------------------------ page and files
def test_page_and_static_files(console):
    r = console.get("/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert_offline(r.text)
    for name, ctype in (("console.js", "text/javascript; charset=utf-8"),
                        ("console.css", "text/css; charset=utf-8"),
                        ("deck.js", "text/javascript; charset=utf-8"),
                        ("twinmap.js", "text/javascript; charset=utf-8")):
        f = console.get(f"/static/{name}")
        assert f.status_code == 200 and f.headers["content-type"] == ctype, name
        assert f.headers["x-content-type-options"] == "nosniff"
        assert console.get(f"/static/{name}", headers={"If-None-Match": f.headers["etag"]}).status_code == 304
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert console.get("/api/sensors").headers["cache-control"] == "no-store"
    from viz.page import bundle_path

    assert console.get("/static/deck.js").content == bundle_path().read_bytes()


@pytest.mark.parametrize("path", [
    "/static/../twin.sqlite", "/static/%2e%2e/%2e%2e/twin/store.py", "/static/..%2f..%2fapi.py",
    "/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/static/console.html/../../app.py",
    "/static/..\\app.py", "/static/.%2e/app.py", "/static/../console/app.py", "/static/app.py",
    "/static/static/console.js", "/static/", "/static/%00console.js",
])
def test_no_path_traversal(console, path):
    r = console.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "import" not in r.text and "SQLite" not in r.text


def test_static_files_skip_symlinks_and_outside_files(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "ok.js").write_text("1")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (root / "link.txt").symlink_to(secret)
    (root / "sub").mkdir()
    (root / "sub" / "inner.js").write_text("2")
    (root / ".hidden.js").write_text("3")
    files = StaticFiles([root], extra={"extra.js": root / "link.txt"})
    assert sorted(files.files) == ["ok.js"]
    assert files.response("../secret.txt").status_code == 404
    assert files.response(str(secret)).status_code == 404
    assert files.response("sub/inner.js").status_code == 404


# ------------------------------------------------------------------ binding and tokens
def test_bind_rules():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(ConfigError, match="no token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    with pytest.raises(ConfigError, match="at least 8"):
        check_token("short")
    with pytest.raises(ConfigError):
        check_token(" padded-token ")
    assert check_token("") is None and check_token(None) is None


def test_cli_refuses_public_host_without_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TWIN_CONSOLE_TOKEN"}
    r = CliRunner(env=env).invoke(main, ["serve", "--store", str(tmp_path / "s"), "--host", "0.0.0.0"])
    assert r.exit_code != 0 and "no token is set" in r.output
    r = CliRunner(env={**env, "TWIN_CONSOLE_TOKEN": "tiny"}).invoke(
        main, ["serve", "--store", str(tmp_path / "s"), "--host", "0.0.0.0"])
    assert r.exit_code != 0 and "at least 8" in r.output
    assert CliRunner().invoke(main, ["serve", "--help"]).exit_code == 0


def test_host_header_guard(tmp_path, city):
    from viz.console.app import loopback_hosts

    app = create_app(tmp_path / "s", token=TOKEN, city=city, allowed_hosts=loopback_hosts("127.0.0.1"))
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        assert c.get("/api/alerts").status_code == 200
        assert c.get("/api/alerts", headers={"Host": "evil.example:8765"}).status_code == 400


def test_feed_message_json_is_plain(console):
    """Every feed message is JSON with a type and a sequence number (what the page parses)."""
    with Store.open(console.store_dir) as s:
        s.put_observation("RG2/rain_gauge", datetime.now(UTC), 0.0, "mm")
    for m in console.get("/api/changes?since=0").json()["messages"]:
        assert m["type"] in {"sensor", "alert", "run", "sensors"} and m["seq"] >= 1
        json.dumps(m)


def gate_request(token: str, client: str = "10.0.0.9"):
    from starlette.requests import Request

    return Request({"type": "http", "method": "POST", "path": "/", "client": (client, 5000),
                    "headers": [(b"authorization", f"Bearer {token}".encode())]})


def test_wrong_tokens_are_slowed_but_the_right_one_is_accepted_at_once(console):
    """12 wrong tokens from the operator's own address: each later one waits longer; the right one never."""
    import time

    from viz.console.auth import FREE_FAILURES, MAX_DELAY_S, TokenGate

    waited: list[float] = []

    async def record(s: float) -> None:
        waited.append(s)

    console.app.state.console.gate = TokenGate(TOKEN, sleep=record)
    url = f"/api/alerts/{console.ids['warning']}/ack"
    for _ in range(12):
        r = console.post(url, headers={"Authorization": "Bearer guess-guess-guess"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert len(waited) == 12 - FREE_FAILURES
    assert waited == sorted(waited) and waited[0] > 0 and waited[-1] == MAX_DELAY_S
    assert acks(console.store_dir) == []
    t0 = time.perf_counter()
    r = console.post(url, headers=AUTH)  # same client address (TestClient's), right token
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert time.perf_counter() - t0 < 2.0 and len(waited) == 12 - FREE_FAILURES  # it did not wait
    assert console.get("/api/alerts").status_code == 200  # reading is never slowed


def test_wrong_tokens_wait_in_real_time_one_at_a_time(monkeypatch):
    """Real sleeps: a slowed wrong token takes its delay; parallel guesses queue, the right token does not."""
    import asyncio
    import time

    from viz.console import auth

    monkeypatch.setattr(auth, "BASE_DELAY_S", 0.1)
    gate = auth.TokenGate(TOKEN)

    async def scenario() -> tuple[float, float, float]:
        for _ in range(auth.FREE_FAILURES):
            assert (await gate.deny(gate_request("wrong-wrong-wrong"))).status_code == 403
        t0 = time.perf_counter()
        await gate.deny(gate_request("wrong-wrong-wrong"))  # the first slowed one: 0.1 s
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        wrong = [asyncio.ensure_future(gate.deny(gate_request("wrong-wrong-wrong"))) for _ in range(3)]
        await asyncio.sleep(0.05)
        right = await gate.deny(gate_request(TOKEN))  # accepted while three guesses wait
        ok_after = time.perf_counter() - t0
        assert right is None and not any(w.done() for w in wrong)
        await asyncio.gather(*wrong)
        return one, ok_after, time.perf_counter() - t0

    one, ok_after, three = asyncio.run(scenario())
    assert one >= 0.1 and ok_after < 0.15
    # 0.2 + 0.4 + 0.8 s one after another (sent together, they would have taken 0.8 s)
    assert three >= 1.35


def test_throttle_window_passes():
    import asyncio

    from viz.console.auth import FAILURE_WINDOW_S, FREE_FAILURES, TokenGate

    now = [1000.0]
    waited: list[float] = []

    async def record(s: float) -> None:
        waited.append(s)

    gate = TokenGate(TOKEN, clock=lambda: now[0], sleep=record)
    for _ in range(FREE_FAILURES + 3):
        assert asyncio.run(gate.deny(gate_request("wrong-wrong-wrong"))).status_code == 403
    assert gate.recent_failures("10.0.0.9") == FREE_FAILURES + 3 and len(waited) == 3
    now[0] += FAILURE_WINDOW_S + 1
    assert gate.recent_failures("10.0.0.9") == 0
    assert asyncio.run(gate.deny(gate_request("wrong-wrong-wrong"))).status_code == 403
    assert len(waited) == 3  # the window passed: a typo is not slowed again


def test_guesses_from_many_addresses_are_slowed_too():
    """One wrong token each from many addresses: past GLOBAL_FREE_FAILURES in the window, all wait."""
    import asyncio

    from viz.console.auth import GLOBAL_FREE_FAILURES, TokenGate

    waited: list[float] = []

    async def record(s: float) -> None:
        waited.append(s)

    gate = TokenGate(TOKEN, sleep=record)
    for i in range(GLOBAL_FREE_FAILURES + 5):
        r = asyncio.run(gate.deny(gate_request("wrong-wrong-wrong", client=f"10.1.{i // 250}.{i % 250}")))
        assert r.status_code == 403
    assert len(waited) == 5 and waited == sorted(waited) and waited[0] > 0
    assert asyncio.run(gate.deny(gate_request(TOKEN, client="10.9.9.9"))) is None
    assert len(waited) == 5  # the right token still waits for nothing
