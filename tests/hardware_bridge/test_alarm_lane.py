"""The alarm lane (hardware_bridge.sources.alarm_lane): alarms overtake a backlog of readings."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.ingest import Ingestor
from hardware_bridge.schema import ALARM_KINDS
from hardware_bridge.sources import IngestorSink, Message
from hardware_bridge.sources.alarm_lane import (
    ALARM_TOPICS,
    PrioritySink,
    alarm_lane_config,
    start_alarm_lane,
)
from hardware_bridge.sources.mqtt import MqttConfig, MqttPublisher, MqttSource
from twin.errors import ConfigError
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)
ALARM_TOPIC = "sz/v1/gas_h2s/CS-1/obs"
ALARM_PAYLOAD = json.dumps({"datastream": "CS-1/gas_h2s", "phenomenonTime": T0.isoformat(),
                            "result": 25.0, "unit": "ppm", "seq": 0}).encode()


def reading(i: int, n_streams: int = 20) -> tuple[str, bytes]:
    st = f"WL-{i % n_streams:02d}"
    k = i // n_streams
    t = (T0 + timedelta(seconds=60 * k)).isoformat()
    return (f"sz/v1/water_level/{st}/obs",
            json.dumps({"datastream": f"{st}/water_level", "phenomenonTime": t,
                        "result": round(1 + 1e-3 * k, 3), "unit": "m", "seq": k}).encode())


def wait_for(cond, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_lane_config_subscribes_only_the_alarm_kinds():
    base = MqttConfig(port=1884, client_id="bridge-1", receive_maximum=1000, batch_max=500,
                      batch_wait_s=0.02)
    lane = alarm_lane_config(base)
    assert {t.split("/")[2] for t in lane.topics} == set(ALARM_KINDS)
    assert all(t.endswith("/+/obs") for t in lane.topics) and len(ALARM_TOPICS) == 8
    assert lane.client_id == "bridge-1-alarm" and lane.port == 1884
    assert lane.receive_maximum < base.receive_maximum and lane.batch_wait_s == 0.0
    assert lane.shared_group is None and lane.filters() == list(ALARM_TOPICS)
    shared = alarm_lane_config(MqttConfig(client_id="b", shared_group="twin"))
    assert shared.filters()[0] == "$share/twin-alarm/sz/v1/das_event/+/obs"
    with pytest.raises(ConfigError, match="receive_maximum"):
        alarm_lane_config(base, receive_maximum=0)


def test_priority_sink_admits_a_waiting_alarm_before_waiting_readings():
    gate = threading.Event()
    order: list[str] = []

    def sink(messages):
        if messages[0].topic == "first":
            gate.wait(30)
        order.append(messages[0].topic)
        return [None] * len(messages)

    ps = PrioritySink(sink)
    m = lambda topic: [Message(topic, b"")]  # noqa: E731
    threads = [threading.Thread(target=ps.normal.handle_many, args=(m("first"),))]
    threads[0].start()
    wait_for(lambda: ps._busy, 10, "first batch in the sink")
    # a normal batch starts waiting first, then an alarm batch (auto-detected by its topic)
    threads.append(threading.Thread(target=ps.normal.handle_many, args=(m("normal"),)))
    threads[-1].start()
    wait_for(lambda: ps.waiting()["normal"] == 1, 10, "normal batch waiting")
    threads.append(threading.Thread(target=ps.handle_many, args=(m(ALARM_TOPIC),)))
    threads[-1].start()
    wait_for(lambda: ps.waiting()["alarm"] == 1, 10, "alarm batch waiting")
    gate.set()
    for t in threads:
        t.join(10)
    assert order == ["first", ALARM_TOPIC, "normal"]
    assert ps.batches == {"alarm": 1, "normal": 2} and ps.waiting() == {"alarm": 0, "normal": 0}


def _backlog_run(broker, store_dir, n_backlog: int, lane: bool, client_id: str):
    """Register the bridge's sessions, let a backlog of ``n_backlog`` readings and then one
    H2S alarm queue up at the broker while the bridge is away, then bring it back.

    Returns (store, ingestor, normal source, lane source or None, commit log)."""
    store = Store.open(store_dir)
    commits: list[tuple[float, int, bool]] = []  # (monotonic time, n stored, holds the alarm)

    def on_stored(obs):
        commits.append((time.monotonic(), len(obs), any(o.kind == "gas_h2s" for o in obs)))

    ing = Ingestor(store, on_stored=on_stored)
    sink = PrioritySink(IngestorSink(ing))
    cfg = MqttConfig(port=broker.port, client_id=client_id, receive_maximum=1000, batch_max=500)

    def start():
        normal = MqttSource(cfg, sink.normal).start()
        normal.wait_subscribed()
        alarm = start_alarm_lane(cfg, sink) if lane else None
        if alarm is not None:
            alarm.wait_subscribed()
        return normal, alarm

    normal, alarm = start()  # first connection: the broker keeps both sessions from now on
    normal.stop()
    if alarm is not None:
        alarm.stop()
    with MqttPublisher(broker.host, broker.port) as pub:
        for i in range(n_backlog):
            pub.publish(*reading(i))
        pub.publish(ALARM_TOPIC, ALARM_PAYLOAD)
    normal, alarm = start()  # the normal lane starts draining before the alarm lane connects
    wait_for(lambda: normal.stats.acked == n_backlog + 1
             and (alarm is None or alarm.stats.acked == 1), what="backlog and alarm acknowledged")
    normal.stop()
    if alarm is not None:
        alarm.stop()
    return store, ing, normal, alarm, commits


def _rows_after_alarm(store) -> tuple[int, int]:
    con = sqlite3.connect(f"file:{store.db_path}?mode=ro", uri=True)
    try:
        (aid,) = con.execute("SELECT id FROM observations WHERE datastream_id = 'CS-1/gas_h2s'"
                             ).fetchone()
        after = con.execute("SELECT COUNT(*) FROM observations WHERE id > ?", (aid,)).fetchone()[0]
        before = con.execute("SELECT COUNT(*) FROM observations WHERE id < ?", (aid,)).fetchone()[0]
    finally:
        con.close()
    return before, after


@pytest.mark.slow
def test_alarm_overtakes_a_20000_message_backlog(mosquitto, tmp_path):
    n = 20_000
    store, ing, normal, alarm, commits = _backlog_run(mosquitto, tmp_path / "s", n, True, "lane")
    try:
        # nothing lost, nothing stored twice
        assert store.count_observations() == n + 1
        assert store.count_observations("CS-1/gas_h2s") == 1
        assert ing.totals["stored"] == n + 1 and ing.totals["rejected"] == 0
        # the alarm came twice: stored by the lane, a duplicate on the normal subscription
        assert alarm.stats.results == {"stored": 1}
        assert normal.stats.results == {"stored": n, "duplicate": 1}
        assert ing.totals["duplicates"] == 1
        # committed while the backlog was still draining (in broker order it is message n + 1)
        before, after = _rows_after_alarm(store)
        assert before + after == n
        assert after >= n // 2, (before, after)
        t_alarm = next(t for t, k, has in commits if has and k)
        t_drained = commits[-1][0]
        assert t_alarm < t_drained
        # figures for the report (visible with -s)
        print(f"\nalarm committed after {before} of {n} backlog readings; {after} stored after it; "
              f"{t_drained - t_alarm:.2f} s before the backlog drained")
    finally:
        store.close()


def test_without_the_lane_the_alarm_waits_for_the_backlog(mosquitto, tmp_path):
    """The control: one subscription in broker order stores the alarm after every reading."""
    n = 2_000
    store, ing, normal, alarm, _ = _backlog_run(mosquitto, tmp_path / "s", n, False, "nolane")
    try:
        assert alarm is None and store.count_observations() == n + 1
        assert _rows_after_alarm(store) == (n, 0)
        assert normal.stats.results == {"stored": n + 1}
    finally:
        store.close()


def test_runner_starts_the_lane_and_the_twin_link(mosquitto, tmp_path):
    from hardware_bridge.runner import BridgeOptions, run_bridge

    stop = threading.Event()
    lines: list[dict] = []
    opts = BridgeOptions(broker=mosquitto.address, store=tmp_path / "s", client_id="runner-lane",
                         stale_check_s=0.0, stats_every_s=0.1)
    th = threading.Thread(target=lambda: run_bridge(opts, stop, emit=lines.append), daemon=True)
    th.start()
    try:
        wait_for(lambda: lines and lines[0]["event"] == "ready", 30, "ready line")
        assert lines[0]["alarm_filters"] == list(ALARM_TOPICS) and lines[0]["twin_link"] is True
        assert lines[0]["filters"] == ["sz/v1/+/+/obs", "sz/v1/+/+/status"]
        with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
            for i in range(100):
                pub.publish(*reading(i))
            pub.publish(ALARM_TOPIC, ALARM_PAYLOAD)  # 25 ppm H2S at a station that is no confined space
        with Store.open(tmp_path / "s") as st:
            wait_for(lambda: st.count_observations() == 101 and st.events(kind="threshold_crossed"),
                     30, "readings, alarm and its alert stored")
            (ev,) = st.events(kind="threshold_crossed")
        assert ev.source == "CS-1/gas_h2s" and ev.severity == "alarm"
        # the normal subscription's copy of the alarm arrives too: whichever lane handles it second finds it
        # stored (a duplicate). Which lane comes first is not fixed: under load the normal lane's copy can be
        # handled before the alarm lane's (CI run of 2026-12-05), so the duplicate is counted in either lane
        def _dups(rec):
            return (rec["stats"]["results"].get("duplicate", 0)
                    + rec.get("alarm_lane", rec["stats"].get("alarm_lane", {})).get("results", {}).get("duplicate", 0))

        wait_for(lambda: lines[-1]["event"] == "stats" and _dups(lines[-1]) == 1, 30, "the second copy")
    finally:
        stop.set()
        th.join(30)
    final = lines[-1]["stats"]
    assert lines[-1]["event"] == "stopped"
    lane_r, main_r = final["alarm_lane"]["results"], final["results"]
    assert sum(lane_r.values()) == 1 and sum(main_r.values()) == 101 and final["acked"] == 101
    assert lane_r.get("stored", 0) + main_r.get("stored", 0) == 101
    assert lane_r.get("duplicate", 0) + main_r.get("duplicate", 0) == 1
    assert final["twin_link"]["readings"] == 101 and final["twin_link"]["events.alarm"] == 1

    lines.clear()
    off = BridgeOptions(broker=mosquitto.address, store=tmp_path / "s2", client_id="runner-off",
                        alarm_lane=False, twin_link=False, stale_check_s=0.0)
    stop.clear()
    th = threading.Thread(target=lambda: run_bridge(off, stop, emit=lines.append), daemon=True)
    th.start()
    wait_for(lambda: lines, 30, "ready line")
    stop.set()
    th.join(30)
    assert lines[0]["alarm_filters"] == [] and lines[0]["twin_link"] is False
    assert "alarm_lane" not in lines[-1]["stats"] and "twin_link" not in lines[-1]["stats"]
