"""Confined-space permits and occupancy survive a bridge restart (PermitBook.restore).

1. Unit: a PermitBook rebuilt from an event sequence has the same permits (ids,
   expiry), occupancy and active alarms; an expired permit stays expired; an
   alarm stored after everyone left is not active.
2. In-process: a TwinLink created on a store that holds permit events and a bad
   gas reading whose alarm never reached the log (the bridge died in between)
   raises that alarm on warm-up, once.
3. Real process: ``python -m hardware_bridge.runner`` with a real mosquitto and an
   HTTP port; grant + enter over HTTP, ``kill -9``, restart, publish a bad H2S
   reading: the "inside while unsafe" alarm fires and ``GET /v1/spaces/{space}``
   still lists the worker inside.
"""

from __future__ import annotations

import copy
import json
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import CONFIG_PATH, load_config
from hardware_bridge.fusion.confined import PermitBook
from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources.mqtt import MqttPublisher
from hardware_bridge.twin_link import TwinLink
from twin.errors import ValidationError
from twin.events import Event, Severity
from twin.store import Store

SPACE = "WS-07"
GOOD = {"gas_o2": 0.209, "gas_h2s": 1e-6, "gas_co": 3e-6, "gas_lel": 0.0}


def readings(t, space=SPACE, **over):
    return [Reading(f"{space}/{g}", g, t, v, station=space) for g, v in {**GOOD, **over}.items()]


def ev(kind, **data):
    """An event shaped like the bridge's HTTP permit routes store them."""
    sev = Severity.ALARM if kind == "confined_space_alarm" else Severity.INFO
    return Event(time_s=0.0, kind=kind, source=f"confined/{data.get('space', SPACE)}", severity=sev,
                 data={"space": SPACE, **data})


def granted(worker, pid, t, valid=8 * 3600.0):
    return ev("permit_granted", worker=worker, permit_id=pid, requested_at=t, expires_at=t + valid,
              readings=dict(GOOD))


def test_restore_rebuilds_permits_occupancy_and_alarms():
    events = [
        granted("li.wei", 1, 10.0), granted("zhang.min", 2, 12.0),
        ev("space_entered", worker="li.wei", permit_id=1, inside=["li.wei"]),
        ev("space_entered", worker="zhang.min", permit_id=2, inside=["li.wei", "zhang.min"]),
        ev("confined_space_alarm", gas="gas_h2s", value=12e-6, inside=["li.wei", "zhang.min"]),
        ev("space_exited", worker="zhang.min", permit_id=2, inside=["li.wei"]),
        ev("permit_refused", worker="wang.wu", permit_id=None, reasons=["x"]),  # no state
        ev("threshold_crossed", worker="x", permit_id=9),  # other kinds are skipped
    ]
    book = PermitBook()
    assert book.restore(events) == 6
    assert book.inside(SPACE) == ["li.wei"]
    p = book.permit(1)
    assert (p.worker, p.space, p.requested_at, p.expires_at) == ("li.wei", SPACE, 10.0, 10.0 + 28800)
    assert book.permit(2).worker == "zhang.min"
    book.update(readings(100.0, gas_h2s=12e-6))
    # the H2S alarm is still active (stored before the crash): not raised twice
    assert book.update(Reading(f"{SPACE}/gas_h2s", "gas_h2s", 101.0, 15e-6, station=SPACE)) == []
    cleared = book.update(Reading(f"{SPACE}/gas_h2s", "gas_h2s", 102.0, 1e-6, station=SPACE))
    assert [e.kind for e in cleared] == ["confined_space_cleared"]
    (alarm,) = book.update(Reading(f"{SPACE}/gas_o2", "gas_o2", 103.0, 0.18, station=SPACE))
    assert alarm.kind == "confined_space_alarm" and alarm.data["inside"] == ["li.wei"]
    # ids continue after the restored ones; the re-entering worker's permit is honoured
    book.update(readings(110.0))
    assert book.request(SPACE, "wang.wu", 111.0).permit_id == 3
    book.enter(SPACE, "zhang.min", 112.0)
    assert book.inside(SPACE) == ["li.wei", "zhang.min"]


def test_restored_state_equals_the_state_before_the_restart():
    """The same actions on a live book and, via their events, on a restored one."""
    live, log = PermitBook(), []
    live.update(readings(0.0))
    for w in ("a", "b", "c"):
        p = live.request(SPACE, w, 1.0)
        log.append(granted(w, p.permit_id, p.requested_at))
    for w, action in (("a", "enter"), ("b", "enter"), ("a", "exit"), ("c", "enter"), ("a", "enter")):
        getattr(live, action)(SPACE, w, 2.0)
        kind = "space_entered" if action == "enter" else "space_exited"
        log.append(ev(kind, worker=w, inside=live.inside(SPACE)))
    # old-style exit event without the "inside" list: the worker alone is removed
    live.exit(SPACE, "b", 3.0)
    log.append(ev("space_exited", worker="b"))
    again = PermitBook()
    again.restore(log)
    assert again.inside(SPACE) == live.inside(SPACE) == ["a", "c"]
    assert [again.permit(i).worker for i in (1, 2, 3)] == ["a", "b", "c"]


def test_expired_permits_stay_expired():
    cfg = copy.deepcopy(load_config())
    cfg["confined"]["permit_valid_s"] = 10 * 86400.0  # a longer validity after the restart
    book = PermitBook(cfg)
    book.restore([granted("li.wei", 4, 0.0, valid=100.0)])
    book.update(readings(190.0))
    with pytest.raises(ValidationError, match="permit 4 .* expired 100 s ago"):
        book.enter(SPACE, "li.wei", 200.0)
    # an event without stored times falls back to its wall time + permit_valid_s
    old = Event(time_s=0.0, kind="permit_granted", source=f"confined/{SPACE}",
                wall_time=datetime.now(UTC) - timedelta(days=11),
                data={"space": SPACE, "worker": "zhang.min", "permit_id": 5})
    book.restore([old])
    now = datetime.now(UTC)
    book.update(readings(now.timestamp() - 1))
    with pytest.raises(ValidationError, match="permit 5 .* expired"):
        book.enter(SPACE, "zhang.min", now)
    assert book.request(SPACE, "li.wei", now).permit_id == 6


def test_an_alarm_stored_after_everyone_left_is_not_active():
    """The alarm of a reading judged just before the last exit may be stored after it."""
    book = PermitBook()
    book.restore([granted("li.wei", 1, 0.0),
                  ev("space_entered", worker="li.wei", inside=["li.wei"]),
                  ev("space_exited", worker="li.wei", inside=[]),
                  ev("confined_space_alarm", gas="gas_lel", inside=["li.wei"])])
    book.update(readings(10.0))
    book.enter(SPACE, "li.wei", 11.0)
    (alarm,) = book.update(Reading(f"{SPACE}/gas_lel", "gas_lel", 12.0, 0.2, station=SPACE))
    assert alarm.kind == "confined_space_alarm"


def test_snapshot_and_rollback():
    book = PermitBook()
    book.update(readings(0.0))
    assert book.request(SPACE, "a", 1.0).granted
    book.enter(SPACE, "a", 1.0)
    snap = book.snapshot()
    book.request(SPACE, "b", 2.0)
    book.exit(SPACE, "a", 2.0)
    book.rollback(snap)
    assert book.inside(SPACE) == ["a"] and book.permit(2) is None
    assert book.request(SPACE, "b", 3.0).permit_id == 2


# ------------------------------------------------------------------ in-process restart
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def gas_msg(kind, value, unit, t, seq, space=SPACE):
    body = {"datastream": f"{space}/{kind}", "phenomenonTime": t.isoformat(), "result": value,
            "unit": unit, "seq": seq}
    return f"sz/v1/{kind}/{space}/obs", json.dumps(body).encode(), t + timedelta(seconds=1)


SAFE_MSGS = [("gas_o2", 20.9, "%vol"), ("gas_h2s", 1.0, "ppm"), ("gas_co", 2.0, "ppm"),
             ("gas_lel", 0.0, "%LEL")]


def test_alarm_missing_from_the_log_is_raised_on_warm_up(tmp_path):
    with Store.open(tmp_path / "s") as store:
        link = TwinLink(store, alerts=None, fire=None, permits=PermitBook(), confined_spaces=[SPACE])
        ing = Ingestor(store, on_stored=link.on_stored)
        ing.handle_many([gas_msg(k, v, u, T0, i) for i, (k, v, u) in enumerate(SAFE_MSGS)])
        now = T0 + timedelta(seconds=5)
        with link.lock:
            p = link.permits.request(SPACE, "li.wei", now)
            link.emit(ev("permit_granted", worker="li.wei", permit_id=p.permit_id,
                         requested_at=p.requested_at, expires_at=p.expires_at), required=True)
            link.permits.enter(SPACE, "li.wei", now)
            link.emit(ev("space_entered", worker="li.wei", inside=["li.wei"]), required=True)
        # the bridge "dies" after committing a bad reading, before its alarm is stored:
        # the reading is stored by an ingestor without the link
        Ingestor(store).handle_many([gas_msg("gas_h2s", 30.0, "ppm", T0 + timedelta(seconds=10), 9)])
        assert store.events(kind="confined_space_alarm") == []

        def restart():
            new = TwinLink(store, alerts=None, fire=None, permits=PermitBook(), confined_spaces=[SPACE])
            new.warm_up(now=T0 + timedelta(minutes=1))
            return new

        new = restart()
        assert new.permits.inside(SPACE) == ["li.wei"] and new.stats["permit_events_restored"] == 2
        (alarm,) = store.events(kind="confined_space_alarm")
        assert alarm.data["gas"] == "gas_h2s" and alarm.data["inside"] == ["li.wei"]
        assert new.stats["confined_on_replay"] == 1
        restart()  # the alarm is in the log now: not raised again
        assert len(store.events(kind="confined_space_alarm")) == 1


# ------------------------------------------------------------------ real process kill -9
TOKEN = "restore-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alarms(store_dir):
    con = sqlite3.connect(store_dir / "twin.sqlite", timeout=30)
    try:
        rows = con.execute("SELECT data FROM events WHERE kind = 'confined_space_alarm' "
                           "ORDER BY id").fetchall()
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]


def publish(broker, kind, value, unit, seq, space="CS-1"):
    body = {"datastream": f"{space}/{kind}", "phenomenonTime": datetime.now(UTC).isoformat(),
            "result": value, "unit": unit, "seq": seq}
    with MqttPublisher(broker.host, broker.port) as pub:
        pub.publish(f"sz/v1/{kind}/{space}/obs", json.dumps(body).encode())


@pytest.mark.slow
def test_kill_9_keeps_the_worker_inside_and_the_alarm_fires(mosquitto, start_bridge, tmp_path):
    cfg = tmp_path / "alerts.toml"
    cfg.write_text(CONFIG_PATH.read_text().replace(
        "spaces = []", 'spaces = ["CS-1"]'))
    store_dir = tmp_path / "store"
    args = ["--broker", mosquitto.address, "--store", store_dir, "--client-id", "restore-1",
            "--http", f"127.0.0.1:{free_port()}", "--token", TOKEN, "--alert-config", cfg,
            "--stale-check-s", "0"]
    bridge = start_bridge(args)
    with httpx.Client(timeout=10) as client:
        url = bridge.ready["http"]  # the READY line carries the bound HTTP address
        for i, (kind, v, unit) in enumerate(SAFE_MSGS):
            obs = {"datastream": f"CS-1/{kind}", "phenomenonTime": datetime.now(UTC).isoformat(),
                   "result": v, "unit": unit, "seq": i}
            r = client.post(f"{url}/v1/obs/{kind}/CS-1", content=json.dumps(obs))
            assert r.status_code == 201, r.text
        r = client.post(f"{url}/v1/permits", json={"space": "CS-1", "worker": "li.wei"}, headers=AUTH)
        assert r.status_code == 201, r.text
        pid = r.json()["permit_id"]
        r = client.post(f"{url}/v1/permits/{pid}/enter", json={"worker": "li.wei"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["inside"] == ["li.wei"], r.text

        bridge.kill9()
        bridge = start_bridge(args)
        assert bridge.ready["permit_events_restored"] == 2
        url = bridge.ready["http"]
        r = client.get(f"{url}/v1/spaces/CS-1", headers=AUTH)
        assert r.status_code == 200 and r.json()["inside"] == ["li.wei"], r.text
        assert alarms(store_dir) == []

        publish(mosquitto, "gas_h2s", 30.0, "ppm", 100)  # above 7.06 ppm
        (alarm,) = wait_for(lambda: alarms(store_dir), what="the confined-space alarm")
        assert alarm["space"] == "CS-1" and alarm["gas"] == "gas_h2s"
        assert alarm["inside"] == ["li.wei"]
        r = client.get(f"{url}/v1/spaces/CS-1", headers=AUTH)
        assert r.json()["inside"] == ["li.wei"] and r.json()["safe"] is False
        # the restored permit keeps its id
        r = client.post(f"{url}/v1/permits/{pid}/exit", json={"worker": "li.wei"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["inside"] == []
    bridge.terminate()


def test_an_action_whose_event_cannot_be_stored_is_undone(tmp_path):
    from hardware_bridge.sources.http import HttpServer

    store = Store.open(tmp_path / "s")
    link = TwinLink(store, alerts=None, fire=None, permits=PermitBook(), confined_spaces=["CS-1"])
    server = HttpServer(Ingestor(store, source="http", on_stored=link.on_stored), link=link,
                        token=TOKEN).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i, (kind, v, unit) in enumerate(SAFE_MSGS):
                obs = {"datastream": f"CS-1/{kind}", "phenomenonTime": datetime.now(UTC).isoformat(),
                       "result": v, "unit": unit, "seq": i}
                assert client.post(f"/v1/obs/{kind}/CS-1", content=json.dumps(obs)).status_code == 201
            store.close()  # the event log can no longer be written
            r = client.post("/v1/permits", json={"space": "CS-1", "worker": "li.wei"}, headers=AUTH)
            assert r.status_code == 503 and "could not be stored" in r.json()["reason"]
            assert link.permits.permit(1) is None  # not granted in memory either
            assert link.stats["event_store_errors"] == 1
    finally:
        server.stop()
        store.close()
