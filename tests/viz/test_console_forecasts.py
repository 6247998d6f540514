"""Forecast cycles and incidents in the console as command staff read them (issue 13), on a real server,
store and city, with real ``twin forecast`` cycles (:func:`scenarios.forecast.issue_forecast`) and a
what-if run from the form, in headless Chromium:

* ``GET /api/scene/forecast`` without ``?run=`` is the newest forecast cycle, not the newest run, and
  says so when none was issued;
* the run list tells a cycle ("Forecast issued 09-07 14:30 CST, +1 h") from a what-if run, and the
  navigator steps back through earlier cycles;
* cycles issued by another process while the console runs reach the pages through the live feed;
* incident (and alert) times are Shenzhen time whatever the browser's zone; the live layers have a
  legend whose colours are those drawn.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from twin.events import Event
from twin.store import Store
from viz.console import ConsoleServer, create_app
from viz.console.scenes import NO_FORECAST

TOKEN = "forecast-console-token-5"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READY = "window.consoleReady === true"
WHAT_IF = {"storm": "2023-09-07", "resolution": 500, "districts": ["Futian"], "hours": 1}
# Cycles issued at 14:20 and 14:30 Shenzhen time (06:20Z, 06:30Z) over Futian, 1 h ahead, 500 m.
ISSUES = (datetime(2023, 9, 7, 6, 20, tzinfo=UTC), datetime(2023, 9, 7, 6, 30, tzinfo=UTC))
# An incident reported at 14:05:07 Shenzhen time (06:05:07Z) at the Futian civic centre, one in Nanshan.
INCIDENT_AT = datetime(2023, 9, 7, 6, 5, 7, tzinfo=UTC)
FUTIAN = (114.0600, 22.5430)
NANSHAN = (114.0300, 22.5300)


def settings(root):
    from scenarios.forecast import ForecastSettings

    return ForecastSettings(store=root / "store", runs_dir=root / "runs", districts=("Futian",),
                            resolution=500.0, horizon_s=3600.0)


def wait_until(what, timeout: float = 60.0, interval: float = 0.2):
    """Wait for ``what()`` to be truthy (a change the feed delivers on its own time); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(interval)


@pytest.fixture(scope="module")
def served(tmp_path_factory, city):
    """A console with a what-if run (#1), then two forecast cycles issued beside it (#2, #3), then a
    second what-if run (#4, the newest run); two incidents, one with a unit dispatched."""
    from scenarios.forecast import issue_forecast

    root = tmp_path_factory.mktemp("forecasts")
    with Store.open(root / "store") as s:
        incidents = [s.put_event(Event(time_s=0.0, wall_time=INCIDENT_AT, kind="incident", source="drill",
                                       severity="warning", message=msg,
                                       data={"lon": lon, "lat": lat, "incident": kind, "id": ref}))
                     for (lon, lat), kind, ref, msg in ((FUTIAN, "flood_rescue", "a", "people trapped"),
                                                        (NANSHAN, "collapse", "b", "wall collapsed"))]
    app = create_app(root / "store", token=TOKEN, runs_dir=root / "runs", city=city, base_resolution=500)
    with ConsoleServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as c:
        runs = app.state.console.runs

        def what_if() -> int:
            r = c.post("/api/runs", headers=AUTH, json=WHAT_IF)
            assert r.status_code == 202, r.text
            runs.join(timeout=300)
            assert c.get(f"/api/runs/{r.json()['id']}").json()["status"] == "done"
            return r.json()["id"]

        server.first = what_if()
        server.before = c.get("/api/scene/forecast").json()
        server.cycles = [issue_forecast(settings(root), t, city=city).run_id for t in ISSUES]
        server.last = what_if()
        r = c.post("/api/actions", headers=AUTH, json={"action": "dispatch", "incident_id": incidents[1],
                                                       "unit_type": "rescue", "units": 1, "by": "trainee"})
        assert r.status_code == 201, r.text
        server.root, server.client, server.incidents = root, c, incidents
        yield server


@pytest.fixture(scope="module")
def browser(chromium):
    from viz.browser import BrowserSession

    with BrowserSession(width=1280, height=820) as b:
        yield b


def test_without_a_cycle_the_forecast_scene_says_none_was_issued(served):
    before = served.before  # only a what-if run had finished then
    assert before["run"] is None and before["forecast"] is None and before["layers"] == []
    assert before["title"] == NO_FORECAST and "twin forecast" in before["title"]


def test_the_forecast_scene_is_the_newest_cycle_not_the_newest_run(served):
    c = served.client
    older, newer = served.cycles
    runs = {r["id"]: r for r in c.get("/api/runs").json()["runs"]}
    assert max(runs) == served.last  # a what-if run is the newest run ...
    sc = c.get("/api/scene/forecast").json()
    assert sc["run"] == newer  # ... yet the scene is the newest cycle
    assert sc["forecast"]["issue_time"] == "2023-09-07T06:30:00Z" and sc["forecast"]["horizon_h"] == 1.0
    assert [layer["id"] for layer in sc["layers"]][:1] == ["flood_depth"]
    assert sc["timeline"]["times_s"][-1] == 3600.0
    # the run list tells cycles from what-if runs: issue time, horizon, lead times, warm start
    assert runs[served.first]["forecast"] is None and runs[served.last]["forecast"] is None
    assert runs[older]["forecast"] == {"issue_time": "2023-09-07T06:20:00Z", "horizon_h": 1.0,
                                       "lead_times_s": [600.0 * k for k in range(7)], "warm_start_run": None}
    assert runs[newer]["forecast"]["warm_start_run"] == older
    # an earlier cycle and a what-if run are still shown when asked for by id
    assert c.get(f"/api/scene/forecast?run={older}").json()["forecast"]["issue_time"] == "2023-09-07T06:20:00Z"
    assert c.get(f"/api/scene/forecast?run={served.last}").json()["forecast"] is None


def test_the_info_names_the_zone_times_are_shown_in(served):
    assert served.client.get("/api/info").json()["time_zone"] == {"name": "Asia/Shanghai", "label": "CST",
                                                                  "offset_min": 480}


def test_a_cycle_issued_by_another_process_reaches_the_feed(served):
    """The cycles were issued beside the console (as ``twin forecast`` does): the feed announced them."""
    c = served.client

    def announced():
        msgs = c.get("/api/changes", params={"since": "0"}).json()["messages"]
        return {m["run"]["id"] for m in msgs if m["type"] == "run" and m["run"]["status"] == "done"}

    got = wait_until(lambda: set(served.cycles) <= announced())
    assert got, f"the feed announced {sorted(announced())}, not the cycles {served.cycles}"


def nav(browser) -> dict:
    return json.loads(browser.evaluate(
        "JSON.stringify({label: document.getElementById('fc-label').textContent,"
        " index: document.getElementById('forecast-nav').dataset.index,"
        " old: document.getElementById('forecast-nav').classList.contains('old'),"
        " prev: document.getElementById('fc-prev').disabled, next: document.getElementById('fc-next').disabled,"
        " run: consoleState.forecastRun,"
        " title: (document.querySelector('#map .tm-title') || {}).textContent || ''})"))


def test_the_page_opens_on_the_latest_cycle_and_steps_back_through_earlier_ones(browser, served):
    older, newer = served.cycles
    browser.goto(served.url + "/", ready_js=READY, timeout=120)
    now = nav(browser)
    assert now["run"] == newer and now["index"] == "0" and not now["old"]
    assert now["label"] == "Forecast issued 09-07 14:30 CST, +1 h (1 of 2, latest)"
    assert now["title"].startswith("Forecast issued 09-07 14:30 CST, +1 h") and f"#{newer}" in now["title"]
    assert now["next"] and not now["prev"]
    # the slider reads the valid time and the lead: issued 14:30, the last frame 1 h ahead
    browser.evaluate("consoleMap.setFrame(consoleMap.frameCount - 1).then(() => 1)")
    assert browser.evaluate("document.querySelector('#map .tm-label').textContent").startswith("15:30 CST (+1 h)")
    browser.evaluate("consoleMap.setFrame(0).then(() => 1)")
    assert browser.evaluate("document.querySelector('#map .tm-label').textContent").startswith("14:30 CST (issue)")
    # the run list: cycles and what-if runs told apart
    rows = json.loads(browser.evaluate(
        "JSON.stringify([...document.querySelectorAll('#runs li.run')].map(li => "
        "[Number(li.id.slice(4)), li.className, li.querySelector('.rkind').textContent,"
        " li.querySelector('.rtext').textContent]))"))
    by_id = {r[0]: r for r in rows}
    assert "cycle" in by_id[newer][1] and by_id[newer][2] == "Forecast"
    assert by_id[newer][3].startswith("Forecast issued 09-07 14:30 CST, +1 h · #") and f"warm start from #{older}" in by_id[newer][3]
    assert "whatif" in by_id[served.last][1] and by_id[served.last][2] == "What-if"
    # step back to the earlier cycle, then to the latest
    browser.evaluate("document.getElementById('fc-prev').click(), 1")
    browser.wait_for(f"consoleState.forecastRun === {older}", timeout=60)
    back = nav(browser)
    assert back["label"] == "Forecast issued 09-07 14:20 CST, +1 h (2 of 2, not the latest)" and back["old"]
    assert back["prev"] and not back["next"]
    browser.wait_for("(document.querySelector('#map .tm-title') || {}).textContent.indexOf('14:20 CST') >= 0",
                     timeout=60)
    browser.evaluate("document.getElementById('fc-latest').click(), 1")
    browser.wait_for(f"consoleState.forecastRun === {newer}", timeout=60)
    assert nav(browser)["index"] == "0"


def test_incident_times_are_shenzhen_time_whatever_the_browsers_zone(browser, served):
    browser.goto(served.url + "/", ready_js=READY, timeout=120)
    zone = browser.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    shown = json.loads(browser.evaluate(
        "JSON.stringify([...document.querySelectorAll('#incidents li .when')].map(e => e.textContent))"))
    assert shown == ["09-07 14:05:07 CST"] * 2, (zone, shown)
    # the dispatch line and the formatter every list uses
    line = browser.evaluate("document.querySelector('#incidents li.dispatched .doneline').textContent")
    assert line.startswith("dispatched 1 rescue by trainee at ") and line.endswith(" CST")
    assert browser.evaluate("consoleFmtTime('2023-09-07T16:00:00Z')") == "09-08 00:00:00 CST"


def test_the_live_legend_shows_the_incident_colours_as_drawn(browser, served, tmp_path):
    from PIL import Image

    browser.goto(served.url + "/", ready_js=READY, timeout=120)
    browser.wait_for("document.querySelectorAll('#legend-incidents .lg-row').length === 2", timeout=30)
    legend = json.loads(browser.evaluate(
        "JSON.stringify([...document.querySelectorAll('#legend-incidents .lg-row')].map(r => "
        "[r.dataset.key, r.querySelector('.tm-swatch').dataset.color, r.textContent]))"))
    assert [(k, t) for k, _, t in legend] == [("open", "open: no unit dispatched yet (1)"),
                                               ("dispatched", "a unit dispatched (1)")]
    colours = {k: [int(v) for v in c.split(",")] for k, c, _ in legend}
    assert colours["open"] != colours["dispatched"]
    for section in ("legend-alerts", "legend-sensors"):
        assert browser.evaluate(f"document.querySelectorAll('#{section} .lg-row').length") >= 3
    # the dots on the map are those colours: open at the civic centre, dispatched in Nanshan
    browser.evaluate("consoleMap.setView({longitude: 114.045, latitude: 22.537, zoom: 13}),"
                     " consoleLive.setProps({viewState: Object.assign({}, consoleMap.viewState)}), 1")
    browser.wait_for("consoleLive.isInitialized && consoleLive.getViewports().length > 0", timeout=30)
    browser.pump(1.0)
    shot = Image.open(browser.screenshot(tmp_path / "legend.png")).convert("RGB")
    for key, (lon, lat) in (("open", FUTIAN), ("dispatched", NANSHAN)):
        x, y = json.loads(browser.evaluate(
            f"(function () {{ var r = document.getElementById('map-wrap').getBoundingClientRect();"
            f" var p = consoleLive.getViewports()[0].project([{lon}, {lat}]);"
            f" return JSON.stringify([r.left + p[0], r.top + p[1]]); }})()"))
        px = shot.getpixel((round(x), round(y)))
        assert all(abs(a - b) <= 6 for a, b in zip(px, colours[key][:3], strict=True)), (key, px, colours[key])
    assert browser.evaluate("document.getElementById('live-legend').hidden") is False


def test_runs_another_process_starts_or_ends_are_announced_once(tmp_path, monkeypatch):
    """The run manager's look in the store: a run started and ended beside it is announced at each
    change of its status, and not again while nothing changes."""
    from viz.console import runs as runs_mod

    monkeypatch.setattr(runs_mod, "STORE_CHECK_S", 0.0)
    with Store.open(tmp_path / "store") as s:
        mgr = runs_mod.RunManager(s, tmp_path / "runs", "shenzhen")
        assert mgr.poll() == []
        rid = s.start_run("flood_forecast", {"hours": 1.0, "forecast": {
            "issue_time": "2023-09-07T06:20:00Z", "horizon_h": 1.0, "lead_times_s": [0.0, 3600.0],
            "warm_start_run": None}, "console_pid": 1})
        s.start_run("not_a_console_kind", {})  # a kind the console does not list: never announced
        started = mgr.poll()
        assert [(m["run"]["id"], m["run"]["status"]) for m in started] == [(rid, "running")]
        assert started[0]["run"]["forecast"]["issue_time"] == "2023-09-07T06:20:00Z"
        assert mgr.poll() == []
        s.end_run(rid, "failed")
        assert [(m["run"]["id"], m["run"]["status"]) for m in mgr.poll()] == [(rid, "failed")]
        assert mgr.poll() == []
