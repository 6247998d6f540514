"""Detected DAS events → das_event messages → a real mosquitto → a real bridge → the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

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
    topic, payload = event_message(_event(lon=114.05, lat=22.54), station="DAS-L1", start_time=START, dx_m=1.0,
                                   line="1")
    assert topic == "sz/v1/das_event/DAS-L1/obs"
    rec = json.loads(payload)
    obs = Observation.model_validate(rec)  # the bridge's own wire model
    assert obs.datastream == "DAS-L1/das_event"
    assert rec["phenomenonTime"].startswith("2026-12-04T01:00:12.300")
    assert rec["result"] == {"position_m": 140.3, "energy": 3.5e-12, "class": "intrusion", "length_m": 21.0,
                             "confidence": 0.8}
    assert rec["parameters"]["chainage_m"] == 1859.7 and rec["parameters"]["lat"] == 22.54
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
            deadline = time.monotonic() + 20
            rows = []
            while time.monotonic() < deadline and len(rows) < 2:
                rows = st.observations("DAS-L1/das_event")
                time.sleep(0.2)
    finally:
        bridge.stop()
    assert len(rows) == 2
    raws = [r.raw if isinstance(r.raw, dict) else json.loads(r.raw) for r in rows]
    assert {raw["kind"] for raw in raws} == {"das_event"}
    assert {raw["parameters"]["line"] for raw in raws} == {"1"}
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
            deadline = time.monotonic() + 20
            rows = []
            while time.monotonic() < deadline and len(rows) < sent:
                rows = st.observations("DAS-T1/das_event")
                time.sleep(0.2)
    finally:
        bridge.stop()
    assert len(rows) == sent
