"""The console on a real uvicorn server (127.0.0.1, free port): SSE, raw-path traversal, the bridge
feeding it over a real mosquitto, and the page in headless Chromium (draws, live readings, acknowledge
with and without the token, a forecast run whose overlay appears)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from twin.events import Event
from twin.sensors import Sensor
from twin.store import Store
from viz.console import ConsoleServer, create_app

TOKEN = "live-console-token-7"


def seed(store: Store) -> int:
    now = datetime.now(UTC)
    store.put_sensors([
        Sensor(id="RG1", kind="rain_gauge", lon=114.05, lat=22.54, unit="mm"),
        Sensor(id="WL1", kind="water_level", lon=114.10, lat=22.56, unit="m"),
        Sensor(id="WL2", kind="water_level", lon=113.95, lat=22.58, unit="m"),
    ])
    store.put_observation("RG1/rain_gauge", now - timedelta(minutes=5), 3.2, "mm")
    store.put_observation("WL2/water_level", now - timedelta(minutes=1), 0.4, "m")
    return store.put_event(Event(time_s=0.0, kind="threshold_crossed", source="RG1/rain_gauge",
                                 severity="warning", message="rain 3 h >= 50 mm",
                                 data={"datastream": "RG1/rain_gauge"}))


@pytest.fixture(scope="module")
def served(tmp_path_factory, city):
    """A console with a token on a seeded store; the server runs for the whole module."""
    root = tmp_path_factory.mktemp("console")
    store_dir = root / "store"
    with Store.open(store_dir) as s:
        alert_id = seed(s)
    app = create_app(store_dir, token=TOKEN, runs_dir=root / "runs", city=city, base_resolution=500)
    with ConsoleServer(app) as server:
        server.store_dir = store_dir
        server.alert_id = alert_id
        yield server


def sse_messages(lines, want, timeout: float = 20.0) -> list[dict]:
    """Data messages from the line iterator of an open SSE response until ``want(msg)`` is true."""
    out = []
    t_end = time.monotonic() + timeout
    data = []
    for line in lines:
        if time.monotonic() > t_end:
            break
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            msg = json.loads("\n".join(data))
            data = []
            out.append(msg)
            if want(msg):
                return out
    raise AssertionError(f"no wanted message within {timeout} s; got {out[-5:]}")


def is_value(ds: str, value: float):
    return lambda m: m.get("type") == "sensor" and m["sensor"]["id"] == ds and m["sensor"]["value"] == value


# ------------------------------------------------------------------ SSE and polling
def test_sse_pushes_store_writes_and_resumes_from_last_event_id(served):
    with httpx.Client(base_url=served.url, timeout=httpx.Timeout(20.0)) as client:
        with client.stream("GET", "/api/stream") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(lines).startswith("retry:")
            with Store.open(served.store_dir) as s:
                s.put_observation("WL1/water_level", datetime.now(UTC), 1.25, "m")
            got = sse_messages(lines, is_value("WL1/water_level", 1.25))
            last = got[-1]
            assert last["sensor"]["lon"] == 114.10 and last["sensor"]["status"] == "ok"
        # two more writes while disconnected: a reconnect with Last-Event-ID gets both
        with Store.open(served.store_dir) as s:
            s.put_observation("WL1/water_level", datetime.now(UTC) + timedelta(seconds=1), 1.5, "m")
            s.put_event(Event(time_s=1.0, kind="threshold_crossed", source="WL1/water_level",
                              severity="alarm", message="level above 1.4 m",
                              data={"datastream": "WL1/water_level"}))
        client.get("/api/alerts")  # the server catches up on a read even between polls
        with client.stream("GET", "/api/stream", headers={"Last-Event-ID": str(last["seq"])}) as r:
            got = sse_messages(r.iter_lines(),
                               lambda m: m.get("type") == "alert" and m["alert"]["severity"] == "alarm")
            values = [m["sensor"]["value"] for m in got if m.get("type") == "sensor"
                      and m["sensor"]["id"] == "WL1/water_level"]
            assert 1.5 in values
            assert all(m["seq"] > last["seq"] for m in got)


def test_cursor_of_another_server_start_gets_a_resync(served):
    with httpx.Client(base_url=served.url, timeout=httpx.Timeout(20.0)) as client:
        cursor = client.get("/api/changes").json()["cursor"]
        epoch, seq = cursor.rsplit(".", 1)
        assert client.get(f"/api/changes?since={cursor}").json()["resync"] is False
        assert client.get(f"/api/changes?since=0123abcd.{seq}").json()["resync"] is True
        with client.stream("GET", "/api/stream", headers={"Last-Event-ID": f"0123abcd.{seq}"}) as r:
            got = sse_messages(r.iter_lines(), lambda m: m.get("type") == "resync")
            assert got[-1]["epoch"] == epoch


def test_polling_fallback_sees_the_same_changes(served):
    with httpx.Client(base_url=served.url, timeout=10) as client:
        seq = client.get("/api/changes").json()["seq"]
        with Store.open(served.store_dir) as s:
            s.put_observation("WL2/water_level", datetime.now(UTC), 0.55, "m")
        deadline = time.monotonic() + 10
        while True:
            body = client.get(f"/api/changes?since={seq}").json()
            if any(is_value("WL2/water_level", 0.55)(m) for m in body["messages"]):
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.05)


# ------------------------------------------------------------------ raw paths on the wire
def raw_get(server, path: str) -> tuple[int, bytes]:
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


@pytest.mark.parametrize("path", [
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/%2fetc%2fpasswd", "/static//etc/passwd",
    "/static/..%5c..%5capp.py", "/static/../twin.sqlite", "/static/%2e%2e%2ftwin.sqlite",
    "/static/console.js%00.html", "/../../etc/passwd", "/static/./console.js/..",
])
def test_no_traversal_on_the_wire(served, path):
    status, data = raw_get(served, path)
    assert status in (400, 404), (path, status)
    assert b"root:" not in data and b"SQLite format" not in data and b"def create_app" not in data


def test_served_page_is_offline_and_static_types(served):
    from viz.offline import assert_offline

    status, data = raw_get(served, "/")
    assert status == 200
    assert_offline(data.split(b"\r\n\r\n", 1)[1].decode())
    assert raw_get(served, "/static/console.js")[1].lower().count(b"content-type: text/javascript") == 1


# ------------------------------------------------------------------ bridge -> console
def test_bridge_readings_and_alerts_reach_the_console(mosquitto, tmp_path, city):
    import paho.mqtt.client as mqtt

    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        s.put_sensors([Sensor(id="RG-9", kind="rain_gauge", lon=114.06, lat=22.55, unit="mm")])
    proc = subprocess.Popen(
        [sys.executable, "-c", "from twin.cli import main; main()", "bridge", "run",
         "--broker", mosquitto.address, "--store", str(store_dir), "--client-id", "console-test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", proc.stderr.read()
        app = create_app(store_dir, token=TOKEN, runs_dir=tmp_path / "runs", city=city)
        with ConsoleServer(app) as server, httpx.Client(base_url=server.url, timeout=20) as client:
            with client.stream("GET", "/api/stream") as r:
                lines = r.iter_lines()
                next(lines)
                pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="console-test-pub")
                pub.connect(mosquitto.host, mosquitto.port)
                pub.loop_start()
                body = {"datastream": "RG-9/rain_gauge", "phenomenonTime": datetime.now(UTC).isoformat(),
                        "result": 120.0, "unit": "mm"}
                pub.publish("sz/v1/rain_gauge/RG-9/obs", json.dumps(body), qos=1).wait_for_publish(10)
                got = sse_messages(lines, lambda m: m.get("type") == "alert"
                                   and m["alert"]["severity"] == "alarm", timeout=30)
                pub.loop_stop()
                pub.disconnect()
            sensor = [m["sensor"] for m in got if m.get("type") == "sensor"][-1]
            # the bridge stores SI units: 120 mm -> 0.12 m
            assert sensor["id"] == "RG-9/rain_gauge" and sensor["value"] == pytest.approx(0.12)
            assert sensor["unit"] == "m" and sensor["lon"] == 114.06
            alert = got[-1]["alert"]
            assert alert["source"] == "RG-9/rain_gauge" and alert["kind"] == "threshold_crossed"
            # the alarm raised by the bridge is acknowledged from the console
            r = client.post(f"/api/alerts/{alert['id']}/ack", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            by = {s["id"]: s for s in client.get("/api/sensors").json()["sensors"]}
            assert by["RG-9/rain_gauge"]["status"] == "alarm"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    with Store.open(store_dir) as s:
        assert [e.data["alert_id"] for e in s.events(kind="alert_ack")] == [alert["id"]]


# ------------------------------------------------------------------ the page in Chromium
READY = "window.consoleReady === true"


@pytest.fixture(scope="module")
def browser(chromium):
    from viz.browser import BrowserSession

    with BrowserSession(width=1200, height=800) as b:
        yield b


def open_console(browser, served, query: str = ""):
    browser.goto(served.url + "/" + query, ready_js=READY, timeout=120)
    browser.evaluate("sessionStorage.clear(), window.__noReload = 1, 1")


def crop(png: Path, box: tuple[int, int, int, int]) -> Path:
    from PIL import Image

    out = png.with_name(png.stem + "-map.png")
    with Image.open(png) as im:
        im.crop(box).save(out)
    return out


def test_console_draws_the_map(browser, served, tmp_path):
    from viz.browser import count_non_background

    open_console(browser, served)
    shot = browser.screenshot(tmp_path / "console.png")
    box = (0, 100, 830, 790)  # the map, below the title bar and banner, left of the side panel
    drawn = count_non_background(crop(shot, box), background=(255, 255, 255))
    # control: the same page with every map layer hidden
    browser.evaluate("consoleState.liveOn = false; consoleLive.setProps({layers: []}); Promise.all("
                     "consoleMap._order.map(id => consoleMap.setLayerVisible(id, false))).then(() => 1)")
    blank = count_non_background(crop(browser.screenshot(tmp_path / "blank.png"), box),
                                 background=(255, 255, 255))
    assert drawn > 20 * max(blank, 1000), (drawn, blank)
    assert browser.evaluate(f"!!document.querySelector('#alert-{served.alert_id} button.ack')") is True
    assert browser.evaluate("consoleState.transport") == "sse"
    assert browser.evaluate("document.getElementById('banner').hidden") is False  # no token typed yet
    assert browser.console_errors == []
    foreign = [u for u in browser.requests if not u.startswith((served.url, "data:", "blob:", "about:"))]
    assert foreign == []


@pytest.mark.parametrize("query", ["", "?poll=1"])
def test_a_reading_appears_without_reload(browser, served, query):
    open_console(browser, served, query)
    assert browser.evaluate("consoleState.transport") == ("poll" if query else "sse")
    value = 2.5 + len(query) / 100
    draws = browser.evaluate("consoleState.liveDraws || 0")
    with Store.open(served.store_dir) as s:
        s.put_observation("WL2/water_level", datetime.now(UTC), value, "m")
    # the list shows the row's display form (water level: metres to 2 decimals, "2.50 m")
    browser.wait_for(f"(document.getElementById('sensor-WL2/water_level') || {{}}).textContent"
                     f" && document.getElementById('sensor-WL2/water_level').textContent.includes('{value:.2f} m')",
                     timeout=20, interval=0.05)
    browser.wait_for(f"(consoleState.liveDraws || 0) > {draws}", timeout=10)
    layer = browser.evaluate("JSON.stringify(consoleLive.props.layers.filter(l => l.id === 'live-sensors')"
                             ".map(l => l.props.data.map(d => [d.id, d.value])))")
    assert ["WL2/water_level", value] in json.loads(layer)[0]
    assert browser.evaluate("window.__noReload") == 1


def test_live_layer_follows_the_map_view(browser, served):
    open_console(browser, served)
    project = ("JSON.stringify([consoleMap.deck, consoleLive].map(d => d.getViewports()[0]"
               ".project([114.10, 22.56]).map(v => Math.round(v))))")
    a, b = json.loads(browser.evaluate(project))
    assert a == b
    # a user pan/zoom (what deck.gl's controller reports) moves both canvases
    browser.evaluate("consoleMap.deck.props.onViewStateChange({viewState: Object.assign({}, consoleMap.viewState,"
                     " {longitude: 114.0, latitude: 22.5, zoom: 11})}), 1")
    browser.wait_for("consoleLive.getViewports()[0].zoom === 11", timeout=10)
    a2, b2 = json.loads(browser.evaluate(project))
    assert a2 == b2 and a2 != a


def test_acknowledge_refused_without_token_then_works_with_it(browser, served):
    aid = served.alert_id
    open_console(browser, served)
    btn = f"document.querySelector('#alert-{aid} button.ack')"
    browser.evaluate(f"{btn}.click(), 1")
    browser.wait_for(f"!!document.querySelector('#alert-{aid} .refused')", timeout=15)
    text = browser.evaluate(f"document.querySelector('#alert-{aid} .refused').textContent")
    assert "401" in text and "token" in text
    # a wrong token is refused too
    browser.evaluate("document.getElementById('token').value = 'not-the-token';"
                     "document.getElementById('token-use').click(), 1")
    browser.evaluate(f"{btn}.click(), 1")
    browser.wait_for(f"document.querySelector('#alert-{aid} .refused').textContent.includes('403')", timeout=15)
    with Store.open(served.store_dir) as s:
        assert s.events(kind="alert_ack") == []
    # the right token, typed once into the field
    browser.evaluate(f"document.getElementById('token').value = '{TOKEN}';"
                     "document.getElementById('token-use').click(), 1")
    assert browser.evaluate("document.getElementById('banner').hidden") is True
    assert browser.evaluate("document.getElementById('token').value") == ""
    browser.evaluate(f"{btn}.click(), 1")
    browser.wait_for(f"!!document.querySelector('#alert-{aid} .ackline')", timeout=15)
    assert "console operator" in browser.evaluate(f"document.querySelector('#alert-{aid} .ackline').textContent")
    with Store.open(served.store_dir) as s:
        (ack,) = s.events(kind="alert_ack")
    assert ack.data["alert_id"] == aid


def test_forecast_run_from_the_page_shows_its_overlay(browser, served):
    open_console(browser, served)
    browser.evaluate(f"sessionStorage.setItem('twinConsoleToken', '{TOKEN}'), 1")
    layers_before = browser.evaluate("consoleMap._order.length")
    browser.evaluate(
        "document.getElementById('run-hours').value = '1';"
        "document.getElementById('run-resolution').value = '500';"
        "document.querySelector('#run-districts input[value=Futian]').checked = true;"
        "document.getElementById('run-start').click(), 1")
    browser.wait_for("Object.values(consoleState.runs).some(r => r.status === 'running')", timeout=20)
    assert browser.evaluate("document.getElementById('run-start').disabled") is True
    browser.wait_for("consoleState.forecastRun !== null && consoleMap._order.includes('flood_depth')",
                     timeout=180, interval=0.5)
    run_id = browser.evaluate("consoleState.forecastRun")
    assert browser.evaluate(f"consoleState.runs[{run_id}].status") == "done"
    assert browser.evaluate("consoleMap._order.length") == layers_before + 3
    n = browser.evaluate("consoleMap.frameCount")
    assert n >= 2
    # the time slider moves the overlay
    browser.evaluate(f"consoleMap.setFrame({n - 1}).then(() => 1)")
    assert browser.evaluate("document.querySelector('.tm-slider').value") == str(n - 1)
    assert "Futian" in browser.evaluate(f"document.getElementById('run-{run_id}').textContent")
    assert browser.evaluate("document.getElementById('run-start').disabled") is False
    assert browser.console_errors == []


def test_twin_serve_cli_serves_on_loopback(tmp_path, twin_data, twin_serve):
    store_dir = tmp_path / "store"
    with Store.open(store_dir) as s:
        seed(s)
    proc, url = twin_serve(store_dir, env={"TWIN_CONSOLE_TOKEN": TOKEN})
    with httpx.Client(base_url=url, timeout=20) as c:
        assert c.get("/api/info").json()["actions"] is True  # token from TWIN_CONSOLE_TOKEN
        aid = c.get("/api/alerts").json()["alerts"][0]["id"]
        assert c.post(f"/api/alerts/{aid}/ack").status_code == 401
        assert c.post(f"/api/alerts/{aid}/ack", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/api/info", headers={"Host": "attacker.example"}).status_code == 400
    twin_serve.stop(proc)
    assert proc.returncode == 0, proc.stderr_text
    assert "read-only" not in proc.stderr_text and url.removeprefix("http://") in proc.stderr_text
