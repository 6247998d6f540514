"""A drill end to end: a real mosquitto, `twin bridge run` on it, `twin drill run` at 60x, the console in
headless Chromium where the trainee acknowledges the alarm and dispatches a unit, and `twin drill debrief`.
The drill gives its river gauge alert levels, so the bridge raises the water-level warning too."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from twin.cli import main
from viz.console import ConsoleServer, create_app

TOKEN = "drill-e2e-token-5"
TRAINEE = "trainee Li"
DRILL = """
title = "e2e drill"
scenario = "futian_typhoon_night"
scenario_injects = false

[[injects]]
after = "30 s"
kind = "sensor_value"
payload = { station = "FT-RG01", sensor = "rain_gauge", value = 120.0, unit = "mm" }

[[injects]]
after = "1 min"
kind = "incident"
note = "people trapped in a flooded underpass"
payload = { lon = 114.0600, lat = 22.5330, incident = "flood_rescue" }

[[injects]]
after = "90 s"
kind = "sensor_value"
note = "the river past its warning level"
payload = { station = "FT-WL01", sensor = "water_level", value = 4.2, unit = "m" }

[[sensors]]
station = "FT-WL01"
kind = "water_level"
thresholds = { advisory = 3.5, warning = 4.0, alarm = 4.5 }

[[targets]]
name = "ack_alarm"
inject = 1
action = "acknowledge"
within = "1 h"

[[targets]]
name = "dispatch_now"
inject = 2
action = "dispatch"
within = "1 s"

[[targets]]
name = "evacuate"
inject = 2
action = "evacuate"
within = "1 h"
"""


def test_drill_in_the_console_and_its_debrief(mosquitto, bridge, chromium, city, tmp_path, twin_argv):
    from viz.browser import BrowserSession

    store_dir: Path = bridge
    drill = tmp_path / "e2e_drill.toml"
    drill.write_text(DRILL, encoding="utf-8")
    app = create_app(store_dir, token=TOKEN, runs_dir=tmp_path / "runs", city=city, base_resolution=500)
    with ConsoleServer(app) as server, BrowserSession(width=1200, height=800) as b:
        b.goto(server.url + "/", ready_js="window.consoleReady === true", timeout=120)
        b.evaluate(f"sessionStorage.setItem('twinConsoleToken', '{TOKEN}');"
                   f"document.getElementById('operator').value = '{TRAINEE}', 1")
        played = subprocess.run(twin_argv("drill", "run", str(drill), "--broker", mosquitto.address, "--store",
                                          str(store_dir), "--speed", "60", "--json"),
                                capture_output=True, text=True, timeout=60)
        assert played.returncode == 0, played.stderr
        summary = json.loads(played.stdout)
        assert summary["played"] == 3
        # the bridge ingested the reading and raised an alert; the trainee acknowledges it
        first_alert = ("Object.values(consoleState.alerts).filter(a => a.source === 'FT-RG01/rain_gauge')"
                       ".map(a => a.id).sort((x, y) => x - y)[0]")
        b.wait_for(f"!!{first_alert}", timeout=30)
        alert_id = b.evaluate(first_alert)
        b.evaluate(f"document.querySelector('#alert-{alert_id} button.ack').click(), 1")
        b.wait_for(f"!!document.querySelector('#alert-{alert_id} .ackline')", timeout=15)
        # the incident is in the panel; the trainee dispatches a unit
        b.wait_for("Object.keys(consoleState.incidents).length === 1", timeout=30)
        inc_id = int(b.evaluate("Object.keys(consoleState.incidents)[0]"))
        # ... and on the map's live layer, at its place
        b.wait_for("consoleLive.props.layers.some(l => l.id === 'live-incidents' && l.props.data.length === 1)",
                   timeout=10)
        assert b.evaluate("JSON.stringify(consoleLive.props.layers.find(l => l.id === 'live-incidents')"
                          ".props.data.map(i => [i.lon, i.lat]))") == "[[114.06,22.533]]"
        assert b.evaluate(f"document.querySelector('#incident-{inc_id} select.unit').value") == "rescue"
        assert "Futian" in b.evaluate(f"document.querySelector('#incident-{inc_id} .where').textContent")
        b.evaluate(f"document.querySelector('#incident-{inc_id} button.dispatch').click(), 1")
        b.wait_for(f"!!document.querySelector('#incident-{inc_id} .doneline')", timeout=15)
        # the river gauge's reading past the drill's warning level is an alert in the console too
        level_alert = ("Object.values(consoleState.alerts).filter(a => a.source === 'FT-WL01/water_level'"
                       " && a.kind === 'threshold_crossed').map(a => [a.id, a.severity, a.data.threshold])")
        b.wait_for(f"{level_alert}.length === 1", timeout=30)
        [[level_id, level_severity, level_threshold]] = b.evaluate(level_alert)
        assert (level_severity, level_threshold) == ("warning", 4.0)
        assert TRAINEE in b.evaluate(f"document.querySelector('#incident-{inc_id} .doneline').textContent")
        # and orders the evacuation of the incident's district
        b.evaluate(f"document.querySelector('#incident-{inc_id} button.evacuate').click(), 1")
        b.wait_for(f"document.querySelectorAll('#incident-{inc_id} .doneline').length === 2", timeout=15)
        assert b.console_errors == []
        assert [u for u in b.requests if not u.startswith((server.url, "data:", "blob:", "about:"))] == []

    out = tmp_path / "debrief"
    res = CliRunner().invoke(main, ["drill", "debrief", "--store", str(store_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    debrief = json.loads((out / "debrief.json").read_text(encoding="utf-8"))
    assert debrief["drill"]["drill"] == summary["drill"] and debrief["drill"]["speed"] == 60
    sensor, call, level = debrief["injects"]
    assert level["alert"]["event_id"] == level_id
    assert sensor["alert"]["event_id"] == alert_id and sensor["alert"]["latency_s"] >= 0
    ack = sensor["reactions"]["acknowledge"]
    disp = call["reactions"]["dispatch"]
    evac = call["reactions"]["evacuate"]
    assert ack["by"] == TRAINEE and disp["by"] == TRAINEE and evac["by"] == TRAINEE
    assert evac["wall_s"] > disp["wall_s"]
    assert call["event_id"] == inc_id
    for r in (ack, disp):
        assert r["wall_s"] > 0 and r["drill_s"] == pytest.approx(r["wall_s"] * 60, abs=0.01)
    # verdicts follow from the measured times and the limits (drill clock)
    by_name = {t["name"]: t for t in debrief["targets"]}
    for name, measured in (("ack_alarm", ack["drill_s"]), ("dispatch_now", disp["drill_s"]),
                           ("evacuate", evac["drill_s"])):
        t = by_name[name]
        assert t["measured_s"] == measured
        assert t["verdict"] == ("met" if measured <= t["within_s"] else "missed")
    page = (out / "debrief.html").read_text(encoding="utf-8")
    assert f"acknowledge alert {alert_id}" in page and f"to incident {inc_id}" in page
    assert "evacuate Futian" in page
    assert page.count(TRAINEE) >= 6  # three timeline rows, three inject reactions
