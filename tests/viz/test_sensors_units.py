"""The console's sensor rows read in operators' units, after a real round trip through the bridge.

Readings are posted to the bridge's HTTP ingest in the units devices send (ppm, °C, mm, %LEL);
the bridge stores SI (8 ppm -> 8e-6 mol/mol); ``GET /api/sensors`` and the live stream must show
them back as ``"8 ppm"``, with the alert thresholds of each sensor in the same unit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from hardware_bridge.display import display_unit
from hardware_bridge.runner import BridgeOptions, make_ingestor
from hardware_bridge.sources.http import HttpServer
from twin.sensors import Sensor
from twin.store import Store
from viz.console import ConsoleServer, create_app
from viz.console.live import LiveState

# kind, station, what the device sends (value, unit), what the console must show
READINGS = [
    pytest.param("gas_co", "CO-1", 8.0, "ppm", "8 ppm", "ppm", id="co-ppm"),
    pytest.param("heat", "HT-1", 25.0, "degC", "25.0 °C", "°C", id="heat-degC"),
    pytest.param("rain_gauge", "RG-1", 0.1, "mm", "0.1 mm", "mm", id="rain-mm"),
    pytest.param("gas_lel", "LE-1", 12.0, "%LEL", "12 %LEL", "%LEL", id="lel"),
    pytest.param("gas_o2", "O2-1", 20.9, "%vol", "20.9 % vol", "% vol", id="o2"),
]


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """(console client, ingest client, store dir): the bridge's HTTP ingest and the console on one store."""
    store_dir = tmp_path_factory.mktemp("units") / "store"
    store = Store.open(store_dir)
    # one sensor registered with a position; the others report without being registered
    store.put_sensors([Sensor(id="CO-1", kind="gas_co", lon=114.055, lat=22.537, unit="1")])
    ingest = HttpServer(make_ingestor(store, BridgeOptions(store=store_dir), source="http")).start()
    app = create_app(store_dir, token=None, city="shenzhen", poll_s=0.05)
    try:
        with ConsoleServer(app) as server, \
                httpx.Client(base_url=server.url, timeout=20) as c, \
                httpx.Client(base_url=ingest.url, timeout=20) as i:
            now = datetime.now(UTC).replace(microsecond=0).isoformat()
            for p in READINGS:
                kind, station, value, unit, *_ = p.values
                body = {"datastream": f"{station}/{kind}", "phenomenonTime": now, "result": value,
                        "unit": unit}
                r = i.post(f"/v1/obs/{kind}/{station}", content=json.dumps(body))
                assert r.status_code == 201, r.text
            yield c, i, store_dir
    finally:
        ingest.stop()
        store.close()


def rows(client) -> dict[str, dict]:
    return {s["id"]: s for s in client.get("/api/sensors").json()["sensors"]}


@pytest.mark.parametrize(("kind", "station", "value", "unit", "text", "shown_unit"), READINGS)
def test_api_sensors_show_the_reading_in_its_display_unit(console, kind, station, value, unit, text,
                                                           shown_unit):
    row = rows(console[0])[f"{station}/{kind}"]
    # stored in SI, unchanged in the row's value/unit
    assert row["unit"] == display_unit(kind).si_unit
    assert row["shown"]["value"] == text
    assert row["shown"]["unit"] == shown_unit
    assert row["shown"]["number"] == pytest.approx(value)
    assert row["shown"]["decimals"] == display_unit(kind).decimals


def test_rows_carry_the_thresholds_in_the_shown_unit(console):
    by = rows(console[0])
    co = by["CO-1/gas_co"]
    assert [(t["severity"], t["op"], t["threshold"], t["unit"]) for t in co["thresholds"]] == [
        ("warning", ">=", 17.2, "ppm"), ("alarm", ">=", 34.4, "ppm")]
    assert all(set(t) >= {"severity", "label", "op", "threshold", "unit", "window_h"} for t in co["thresholds"])
    assert all(t["unit"] == "°C" for t in by["HT-1/heat"]["thresholds"])
    o2 = by["O2-1/gas_o2"]["thresholds"]
    assert {(t["op"], t["threshold"], t["unit"]) for t in o2} == {("<", 19.5, "% vol"), (">", 23.5, "% vol")}
    rain = by["RG-1/rain_gauge"]["thresholds"]
    assert ("alarm", 100.0, "mm", 3.0) in {(t["severity"], t["threshold"], t["unit"], t["window_h"]) for t in rain}


def test_placed_only_with_a_position(console):
    by = rows(console[0])
    assert by["CO-1/gas_co"]["placed"] is True
    assert by["HT-1/heat"]["placed"] is False and by["HT-1/heat"]["lon"] is None
    counts = console[0].get("/api/sensors").json()["counts"]
    assert counts["unplaced"] == len(READINGS) - 1


def test_stream_rows_and_alert_text_read_alike(console):
    client, ingest, _ = console
    with client.stream("GET", "/api/stream") as r:
        lines = r.iter_lines()
        next(lines)
        body = {"datastream": "CO-1/gas_co", "phenomenonTime": datetime.now(UTC).isoformat(),
                "result": 35.0, "unit": "ppm"}
        assert ingest.post("/v1/obs/gas_co/CO-1", content=json.dumps(body)).status_code == 201
        got = []
        for line in lines:
            if line.startswith("data:"):
                got.append(json.loads(line[5:]))
                if got[-1].get("type") == "alert":
                    break
    sensor = [m["sensor"] for m in got if m.get("type") == "sensor" and m["sensor"]["id"] == "CO-1/gas_co"][-1]
    assert sensor["shown"]["value"] == "35 ppm" and sensor["value"] == pytest.approx(35e-6)
    alert = got[-1]["alert"]
    assert alert["severity"] == "alarm"
    assert alert["message"].startswith("gas_co CO-1: 35 ppm ≥ 34.4 ppm (")


def test_station_rules_replace_the_kinds(tmp_path):
    """A station with its own rules (alerts.toml [<kind>.stations]) gets those thresholds."""
    from hardware_bridge.fusion.alerts import load_config

    cfg = load_config()
    cfg["water_level"]["stations"] = {"WL-7": {"rules": [
        {"metric": "level_m", "threshold": 2.5, "severity": "warning", "label": "警戒水位",
         "source": "test", "verified": True}]}}
    with Store.open(tmp_path / "s") as s:
        s.put_observation("WL-7/water_level", datetime.now(UTC), 1.234, "m")
        s.put_observation("WL-8/water_level", datetime.now(UTC), 1.0, "m")
    live = LiveState(tmp_path / "s", alert_config=cfg)
    try:
        by = {e["id"]: e for e in live.sensors()}
    finally:
        live.close()
    assert by["WL-7/water_level"]["shown"]["value"] == "1.23 m"
    assert [(t["threshold"], t["unit"], t["label"]) for t in by["WL-7/water_level"]["thresholds"]] == [
        (2.5, "m", "警戒水位")]
    assert by["WL-8/water_level"]["thresholds"] == []


def test_simulated_devices_through_mosquitto_reach_the_console_placed(mosquitto, tmp_path, twin_data):
    """`twin bridge simulate --broker ... --register STORE` into a running `twin bridge run`: the
    console lists every device at its site, its reading in the display unit."""
    import signal
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from twin.cli import main

    store_dir = tmp_path / "store"
    Store.open(store_dir).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from twin.cli import main; main()", "bridge", "run",
         "--broker", mosquitto.address, "--store", str(store_dir), "--client-id", "units-test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", proc.stderr.read()
        r = CliRunner().invoke(main, ["bridge", "simulate", "--devices", "12", "--minutes", "5", "--seed", "2",
                                      "--speed", "1000", "--broker", mosquitto.address,
                                      "--register", str(store_dir)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["placement"]["registered"] == 12
        live = LiveState(store_dir)
        try:
            deadline = time.monotonic() + 30
            while True:
                live.refresh()
                by = {e["kind"]: e for e in live.sensors()}
                if by.get("gas_co", {}).get("value") is not None and by.get("heat", {}).get("value") is not None:
                    break
                assert time.monotonic() < deadline, by
                time.sleep(0.2)
            rows = live.sensors()
        finally:
            live.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert len({e["sensor"] for e in rows}) == 12 and all(e["placed"] for e in rows)
    co, heat = by["gas_co"], by["heat"]
    assert co["shown"]["unit"] == "ppm" and co["shown"]["value"] == f"{co['value'] * 1e6:.0f} ppm"
    assert heat["shown"]["value"] == f"{heat['value'] - 273.15:.1f} °C"
    assert 20.0 < heat["shown"]["number"] < 40.0  # the simulated detector reads about 28 °C
