"""Detected DAS events → das_event messages → a real mosquitto → a real bridge → the store."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from hardware_bridge.schema import Observation
from physics.das_detect import DasEvent
from physics.das_publish import DasPublisher, event_message
from twin.errors import ValidationError
from twin.store import Store

START = datetime(2026, 12, 4, 1, 0, 0, tzinfo=UTC)


def _event(cls: str = "intrusion", track: int = 3, **kw) -> DasEvent:
    base = dict(event_class=cls, confidence=0.8, onset_s=12.3, end_s=15.1, channel=140.3, chainage_m=1859.7,
                length_m=21.0, energy=3.5e-12, peak_frequency_hz=96.0, snr_db=17.2, track_id=track)
    return DasEvent(**{**base, **kw})


def test_event_message_is_a_valid_das_event_observation():
    topic, payload = event_message(_event(lon=114.05, lat=22.54, offset_m=12.5, inside_zone=True), station="DAS-L1",
                                   start_time=START, dx_m=1.0, line="1")
    assert topic == "sz/v1/das_event/DAS-L1/obs"
    rec = json.loads(payload)
    obs = Observation.model_validate(rec)  # the bridge's own wire model
    assert obs.datastream == "DAS-L1/das_event"
    assert rec["phenomenonTime"].startswith("2026-12-04T01:00:12.300")
    assert rec["result"] == {"position_m": 140.3, "energy": 3.5e-12, "class": "intrusion", "length_m": 21.0,
                             "confidence": 0.8, "line": "1", "chainage_m": 1859.7, "lon": 114.05, "lat": 22.54,
                             "offset_m": 12.5, "inside_zone": True}
    assert rec["parameters"]["snr_db"] == 17.2 and rec["parameters"]["nuisance_site"] is False
    _, bare = event_message(_event(), station="DAS-L1", start_time=START, dx_m=1.0)  # no place known: none sent
    assert set(json.loads(bare)["result"]) == {"position_m", "energy", "class", "length_m", "confidence",
                                               "chainage_m"}
    with pytest.raises(ValidationError, match="naive"):
        event_message(_event(), station="DAS-L1", start_time=datetime(2026, 1, 1), dx_m=1.0)


class _Bridge:
    """``python -m hardware_bridge.runner`` (as tests/hardware_bridge/conftest.py starts it), stopped by SIGTERM."""

    def __init__(self, broker: str, store, log) -> None:
        self.log = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "hardware_bridge.runner", "--broker", broker, "--store",
                                      str(store), "--client-id", "das-test-bridge"], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited: {open(log).read()[-2000:]}")
            try:
                if json.loads(line).get("event") == "ready":
                    return
            except ValueError:
                continue
        raise RuntimeError("bridge not ready in 30 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.log.close()


def test_published_events_arrive_in_the_store_through_the_real_bridge(mosquitto, tmp_path):
    """Three events (one a train) published by the detector's publisher reach mosquitto, the bridge stores the
    two non-train ones as das_event readings with their class and position; the train is not sent."""
    bridge = _Bridge(mosquitto.address, tmp_path / "store", tmp_path / "bridge.log")
    try:
        evs = [_event("intrusion", 1), _event("train", 2, channel=500.0), _event("piling", 3, channel=800.5)]
        with DasPublisher(mosquitto.address, station="DAS-L1", start_time=START, dx_m=1.0, line="1") as pub:
            assert pub.publish(evs) == 2
        with Store.open(tmp_path / "store") as st:
            deadline = time.monotonic() + 60  # an upper bound: the loop ends when both arrive (a loaded CI box took > 20 s once)
            rows = []
            while time.monotonic() < deadline and len(rows) < 2:
                rows = st.observations("DAS-L1/das_event")
                time.sleep(0.2)
    finally:
        bridge.stop()
    assert len(rows) == 2
    raws = [r.raw if isinstance(r.raw, dict) else json.loads(r.raw) for r in rows]
    assert {raw["kind"] for raw in raws} == {"das_event"}
    assert {raw["event"]["line"] for raw in raws} == {"1"}
    results = sorted((raw["event"] for raw in raws), key=lambda r: r["position_m"])
    assert [r["class"] for r in results] == ["intrusion", "piling"]
    assert [r["position_m"] for r in results] == [140.3, 800.5]


def test_twin_tunnel_detect_live_publishes_to_the_bridge(mosquitto, tmp_path):
    """`twin tunnel detect --live --publish`: the simulator's stream is detected as it comes and every non-train
    event reaches the store through mosquitto and `python -m hardware_bridge.runner` as a das_event reading."""
    from click.testing import CliRunner

    from twin.cli import main

    bridge = _Bridge(mosquitto.address, tmp_path / "store", tmp_path / "bridge.log")
    try:
        out = tmp_path / "live"
        r = CliRunner().invoke(main, ["tunnel", "detect", "--live", "--km", "0.4", "--minutes", "1", "--events", "4",
                                      "--seed", "3", "--speed", "inf", "--publish", mosquitto.address, "--station",
                                      "DAS-T1", "--no-locate", "--out", str(out)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        summary = json.loads((out / "summary.json").read_text())
        sent = summary["published"]
        assert sent == sum(n for c, n in summary["by_class"].items() if c != "train") and sent >= 1
        with Store.open(tmp_path / "store") as st:
            deadline = time.monotonic() + 60  # an upper bound: the loop ends when both arrive (a loaded CI box took > 20 s once)
            rows = []
            while time.monotonic() < deadline and len(rows) < sent:
                rows = st.observations("DAS-T1/das_event")
                time.sleep(0.2)
    finally:
        bridge.stop()
    assert len(rows) == sent


def test_das_alerts_are_placed_on_line_1_and_lowered_outside_the_zone(mosquitto, twin_data, tmp_path):
    """End to end: a simulated fibre along Line 1 (chainage 1500–2500 m) with a piling 8 m off the fibre and one
    65 m off (beyond the 53 m of the protection zone: 50 m + 6 m / 2, tunnel_limits.toml) → the detector placing
    events with the tunnel geometry → DasPublisher → mosquitto → `python -m hardware_bridge.runner` → the store's
    alert events, which carry lon/lat → viz.layers.alerts.alerts places each at the point of its event's chainage
    on Line 1 (within 1 m: the published lon/lat are rounded to 1e-7°, 1 cm) with severity warning inside the
    zone and info outside (alerts.toml [das_event] piling = warning, outside_zone = info)."""
    from physics.das_detect import DasDetector
    from physics.das_layout import FibreLayout
    from physics.das_simulate import DasSimulator, EventSpec, SimConfig
    from physics.tunnel_geometry import build_tunnels
    from viz.layers.alerts import alerts

    layout = FibreLayout(n_channel=1000, line="1", chainage0_m=1500.0)
    locate = build_tunnels(select=["1"]).locator("1")
    # the SNRs (25 and 16 dB) are as recorded at the nearest channel, coupling included (the first simulator's
    # definition; the default now takes them at unit coupling, which here makes the far piling 2.9 dB weaker: gain 0.72)
    sim = DasSimulator(layout, 60.0, 21, SimConfig(snr_coupling="coupled"),
                       events=[EventSpec("piling", 200.0, 8.0, 5.0, 60.0, 25.0),
                               EventSpec("piling", 700.0, 65.0, 5.0, 60.0, 16.0)])
    det = DasDetector(layout, locate=locate)
    found = det.run((2.0 * i, c) for i, c in enumerate(sim.chunks(2.0)))
    near = [e for e in found if e.event_class == "piling" and abs(e.channel - 200) < 10]
    far = [e for e in found if e.event_class == "piling" and abs(e.channel - 700) < 40]
    assert near and far
    assert all(e.inside_zone for e in near) and not any(e.inside_zone for e in far)
    bridge = _Bridge(mosquitto.address, tmp_path / "store", tmp_path / "bridge.log")
    try:
        with DasPublisher(mosquitto.address, station="DAS-L1", start_time=START, dx_m=1.0, line="1") as pub:
            pub.publish(found)
        with Store.open(tmp_path / "store") as st:
            deadline = time.monotonic() + 60  # an upper bound: the loop ends when both arrive (a loaded CI box took > 20 s once)
            evs = []  # until both pilings' alerts are in (the near one's intrusion report may come before the far)
            while time.monotonic() < deadline and sum(e.data.get("class") == "piling" for e in evs) < 2:
                evs = st.events(kind="das_event")
                time.sleep(0.2)
    finally:
        bridge.stop()
    piling = [e for e in evs if e.data.get("class") == "piling"]
    rows = alerts(piling, min_severity="info").layers[0]["data"]
    assert len(rows) == len(piling) >= 2  # each alert placed (the bridge dedups by class, 50 m bucket, 300 s)
    seen = set()
    for ev in piling:
        x, y, lon, lat = (float(v[0]) for v in locate(np.array([ev.data["chainage_m"]])))
        row = min(rows, key=lambda r: abs(r["p"][0] - lon) + abs(r["p"][1] - lat))
        dist = math.hypot((row["p"][0] - lon) * 111320.0 * math.cos(math.radians(lat)), (row["p"][1] - lat) * 110574.0)
        assert dist < 1.0
        assert ev.data["line"] == "1" and row["severity"] == ev.severity
        site = "near" if abs(ev.data["chainage_m"] - 1700.0) < 10.0 else "far"
        assert abs(ev.data["chainage_m"] - (1700.0 if site == "near" else 2200.0)) < 40.0
        seen.add(site)
        if site == "near":
            assert ev.severity == "warning" and ev.data["inside_zone"] is True and ev.data["offset_m"] < 20.0
        else:
            assert ev.severity == "info" and ev.data["inside_zone"] is False and ev.data["offset_m"] > 53.0
    assert seen == {"near", "far"}
