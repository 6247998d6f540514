"""The console page in headless Chromium on a real server and store: an older run's forecast picked
from the run list, two runs compared, a running forecast cancelled, sensor readings in their units."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from twin.sensors import Sensor
from twin.store import Store
from viz.console import ConsoleServer, create_app

TOKEN = "history-console-token-3"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READY = "window.consoleReady === true"
SMALL = {"storm": "2023-09-07", "resolution": 500, "districts": ["Futian"]}


def seed(store: Store) -> None:
    """A CO sensor (stored SI: 8 ppm = 8e-6), a heat sensor (298.15 K = 25 °C), one without a position."""
    now = datetime.now(UTC)
    store.put_sensors([
        Sensor(id="CO-1", kind="gas_co", lon=114.05, lat=22.54, unit="1"),
        Sensor(id="HT-1", kind="heat", lon=114.06, lat=22.55, unit="K"),
    ])
    store.put_observation("CO-1/gas_co", now, 8e-6, "1")
    store.put_observation("HT-1/heat", now, 298.15, "K")
    store.put_observation("LOST-1/gas_co", now, 3e-6, "1")  # reports, but is registered nowhere


@pytest.fixture(scope="module")
def served(tmp_path_factory, city):
    """A console on a seeded store with two finished flood runs (1 h and 2 h over Futian)."""
    root = tmp_path_factory.mktemp("history")
    with Store.open(root / "store") as s:
        seed(s)
    app = create_app(root / "store", token=TOKEN, runs_dir=root / "runs", city=city, base_resolution=500)
    with ConsoleServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        ids = []
        for hours in (1, 2):
            r = c.post("/api/runs", headers=AUTH, json={**SMALL, "hours": hours})
            assert r.status_code == 202, r.text
            app.state.console.runs.join(timeout=180)
            assert c.get(f"/api/runs/{r.json()['id']}").json()["status"] == "done"
            ids.append(r.json()["id"])
        server.runs = app.state.console.runs
        server.done = ids
        yield server


@pytest.fixture(scope="module")
def browser(chromium):
    from viz.browser import BrowserSession

    with BrowserSession(width=1280, height=820) as b:
        yield b


#: Holds the page's cancel request's reply (a 202 with the run as it was when the cancel was asked:
#: still running) until the feed has told the page the run was cancelled, then lets the page handle it
#: (``window.cancelReplyHandled`` once it has). That is the order a loaded machine gives when the run
#: stops within a chunk (~30 ms of wall time at the start of the test's run) while the server still
#: answers the request: the CI flake, where the stale reply brought the run back to 'running' for good.
HOLD_CANCEL_REPLY = """(function (rid) {
  var fetch0 = window.fetch;
  window.fetch = function (url) {
    var reply = fetch0.apply(this, arguments);
    if (String(url).indexOf('runs/' + rid + '/cancel') < 0) return reply;
    return reply.then(function (res) {
      var json0 = res.json.bind(res);
      res.json = function () {
        return json0().then(function (b) { setTimeout(function () { window.cancelReplyHandled = true; }, 0); return b; });
      };
      return new Promise(function (release) {
        (function wait() {
          var r = consoleState.runs[rid];
          if (r && r.status === 'cancelled') release(res); else setTimeout(wait, 20);
        })();
      });
    });
  };
})(%d), 1"""


def open_console(browser, served, token: bool = False) -> None:
    browser.goto(served.url + "/", ready_js=READY, timeout=120)
    browser.evaluate("sessionStorage.clear(), 1")
    if token:
        browser.evaluate(f"sessionStorage.setItem('twinConsoleToken', '{TOKEN}'), 1")


def map_title(browser) -> str:
    return browser.evaluate("(document.querySelector('#map .tm-title') || {}).textContent || ''")


def test_an_older_run_picked_in_the_list_is_shown_on_the_map(browser, served):
    older, newer = served.done
    open_console(browser, served)
    assert browser.evaluate("consoleState.forecastRun") == newer
    assert f"#{newer}" in map_title(browser)
    assert browser.evaluate(f"!!document.querySelector('#run-{newer}.shown')") is True
    frames_newer = browser.evaluate("consoleMap.frameCount")
    browser.evaluate(f"document.querySelector('#run-{older} button.show').click(), 1")
    browser.wait_for(f"consoleState.forecastRun === {older}", timeout=60)
    browser.wait_for(f"(document.querySelector('#map .tm-title') || {{}}).textContent.includes('#{older}')",
                     timeout=30)
    assert "1 h" in map_title(browser) and f"#{newer}" not in map_title(browser)
    assert browser.evaluate("consoleMap._order.includes('flood_depth')") is True
    assert browser.evaluate("consoleMap.frameCount") < frames_newer  # 1 h has fewer frames than 2 h
    # the list marks the run on the map and offers the other one
    assert browser.evaluate(f"!!document.querySelector('#run-{older}.shown')") is True
    assert browser.evaluate(f"!!document.querySelector('#run-{newer} button.show')") is True
    assert browser.console_errors == []


def test_two_runs_compared_side_by_side_with_their_difference(browser, served, tmp_path):
    older, newer = served.done
    open_console(browser, served)
    assert browser.evaluate("document.getElementById('compare-form').hidden") is False
    assert browser.evaluate("document.getElementById('compare-view').hidden") is True
    browser.evaluate(f"document.getElementById('compare-a').value = '{older}';"
                     f"document.getElementById('compare-b').value = '{newer}';"
                     "document.getElementById('compare-open').click(), 1")
    browser.wait_for("!!window.consoleCompare && consoleCompare.a.ready && consoleCompare.b.ready", timeout=90)
    assert browser.evaluate("document.getElementById('compare-view').hidden") is False
    titles = json.loads(browser.evaluate("JSON.stringify([consoleCompare.a.scene.title, consoleCompare.b.scene.title])"))
    assert titles[0].startswith(f"A: Flood forecast #{older}") and titles[1].startswith(f"B: Flood forecast #{newer}")
    assert json.loads(browser.evaluate("JSON.stringify(consoleState.compare)")) == {
        "a": str(older), "b": str(newer), "variable": "max_depth"}
    # both panes draw the runs over the basemap
    for pane in ("a", "b"):
        ids = json.loads(browser.evaluate(f"JSON.stringify(consoleCompare.{pane}.scene.layers.map(l => l.id))"))
        assert "hillshade" in ids and "flood_max_depth" in ids, (pane, ids)
    browser.evaluate("consoleCompare.showDiff(true).then(() => 1)")
    ids = json.loads(browser.evaluate("JSON.stringify(consoleCompare.b.scene.layers.map(l => l.id))"))
    assert "diff" in ids and "hillshade" in ids
    browser.screenshot(tmp_path / "compare.png")
    browser.evaluate("document.getElementById('compare-close').click(), 1")
    assert browser.evaluate("document.getElementById('compare-view').hidden") is True
    assert browser.evaluate("window.consoleCompare") is None
    assert browser.console_errors == []


def test_a_running_forecast_is_cancelled_from_the_page(browser, served):
    open_console(browser, served, token=True)
    browser.evaluate(
        "document.getElementById('run-hours').value = '24';"
        "document.getElementById('run-resolution').value = '30';"
        "document.querySelector('#run-districts input[value=Futian]').checked = true;"
        "document.getElementById('run-start').click(), 1")
    browser.wait_for("Object.values(consoleState.runs).some(r => r.status === 'running' && r.sim_s > 0)",
                     timeout=120, interval=0.2)
    rid = browser.evaluate("Object.values(consoleState.runs).filter(r => r.status === 'running')[0].id")
    assert browser.evaluate("document.getElementById('run-start').disabled") is True
    browser.evaluate(HOLD_CANCEL_REPLY % rid)
    t0 = time.monotonic()
    browser.evaluate(f"document.querySelector('#run-{rid} button.cancel').click(), 1")
    browser.wait_for(f"consoleState.runs[{rid}].status === 'cancelled'", timeout=15, interval=0.1)
    assert time.monotonic() - t0 < 10
    # the cancel's 202 (read while the run still ran) came after the feed's 'cancelled': the run stays cancelled
    browser.wait_for("window.cancelReplyHandled === true", timeout=10)
    assert browser.evaluate(f"consoleState.runs[{rid}].status") == "cancelled"
    assert "was cancelled" in browser.evaluate("document.getElementById('message').textContent")
    assert browser.evaluate(f"document.getElementById('run-{rid}').dataset.status") == "cancelled"
    assert browser.evaluate(f"!!document.querySelector('#run-{rid} button.show')") is False
    assert browser.evaluate("consoleState.forecastRun") == served.done[1]  # still the last finished run
    with Store.open(served.runs.store.root) as s:
        assert [x.status for x in s.runs() if x.id == rid] == ["cancelled"]
    # and the next run starts from the same form
    browser.wait_for("document.getElementById('run-start').disabled === false", timeout=10)
    browser.evaluate("document.getElementById('run-hours').value = '1';"
                     "document.getElementById('run-resolution').value = '500';"
                     "document.getElementById('run-start').click(), 1")
    browser.wait_for(f"Object.keys(consoleState.runs).map(Number).some(i => i > {rid})", timeout=30)
    served.runs.join(timeout=180)
    assert browser.console_errors == []


def test_sensor_readings_are_shown_in_their_kinds_units(browser, served):
    open_console(browser, served)
    co = browser.evaluate("document.getElementById('sensor-CO-1/gas_co').textContent")
    heat = browser.evaluate("document.getElementById('sensor-HT-1/heat').textContent")
    assert "8 ppm" in co and "8e-6" not in co and "0.000008" not in co
    assert "25.0 °C" in heat and "298" not in heat
    lost = browser.evaluate("document.getElementById('sensor-LOST-1/gas_co').textContent")
    assert "3 ppm" in lost and "no position" in lost
    assert "no position" not in co
    # thresholds, when the sensor has any, read in the same unit as the value
    rows = json.loads(browser.evaluate("JSON.stringify(Object.values(consoleState.sensors).map(s => "
                                       "[s.id, (s.shown || {}).unit, (s.thresholds || []).map(t => t.unit)]))"))
    for sid, unit, units in rows:
        if units:
            title = browser.evaluate(f"document.getElementById('sensor-{sid}').querySelector('.val').title")
            assert title.startswith("thresholds: ") and unit in title, (sid, title)
