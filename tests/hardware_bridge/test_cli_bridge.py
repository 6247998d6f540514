"""``twin bridge run|replay|simulate|inspect``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from twin.cli import main


def run(args, **kw):
    result = CliRunner().invoke(main, ["bridge", *args], catch_exceptions=False, **kw)
    return result


@pytest.mark.parametrize("sub", [[], ["run"], ["replay"], ["simulate"], ["inspect"]])
def test_help(sub):
    r = run([*sub, "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output


def test_simulate_to_file_replay_into_store_and_inspect(tmp_path, bridge_store):
    feed = tmp_path / "feed.jsonl"
    r = run(["simulate", "--devices", "6", "--minutes", "30", "--seed", "3", "--out", str(feed)])
    assert r.exit_code == 0, r.output
    written = json.loads(r.output)["written"]
    lines = feed.read_text().splitlines()
    assert len(lines) == written > 6 * 25
    # a malformed line and a re-send of the first observation
    first_obs = next(x for x in lines if "/obs" in json.loads(x)["topic"])
    feed.write_text("\n".join([*lines, "{broken", first_obs]) + "\n")
    store = bridge_store.target  # a directory, or a postgresql:// URL
    r = run(["replay", str(feed), "--speed", "inf", "--store", str(store)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    n_obs = sum("/obs" in json.loads(x)["topic"] for x in lines)
    assert s["records"] == written + 2
    assert s["rejected"] == 1 and s["duplicates"] == 1
    assert s["stored"] == written  # observations + one status row per status message

    r = run(["inspect", "--store", str(store), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["dead_letters"]["count"] == 1
    (dl,) = rep["dead_letters"]["recent"]
    # a line that is not JSON has no routable topic: kept with the topic's rejection
    assert dl["payload"] == "{broken" and dl["topic"] == "sz/v1/unknown/unknown/obs"
    assert "unknown kind" in dl["reason"]
    obs_streams = [x for x in rep["streams"] if not x["datastream"].endswith("/status")]
    assert sum(x["count"] for x in obs_streams) == n_obs
    assert rep["stale"] == []  # every stream's latest reading is at most minutes old
    later = run(["inspect", "--store", str(store), "--json", "--now", "2100-01-01T00:00:00Z"])
    assert len(json.loads(later.output)["stale"]) == len(obs_streams) == 6
    table = run(["inspect", "--store", str(store)])
    assert table.exit_code == 0 and "dead letters" in table.output


def test_replay_and_simulate_argument_errors(tmp_path):
    f = tmp_path / "f.jsonl"
    f.write_text("")
    r = CliRunner().invoke(main, ["bridge", "replay", str(f)])
    assert r.exit_code == 2 and "--store" in r.output
    r = CliRunner().invoke(main, ["bridge", "replay", str(f), "--store", str(tmp_path), "--speed",
                                  "fast"])
    assert r.exit_code == 2 and "speed" in r.output
    r = CliRunner().invoke(main, ["bridge", "simulate", "--kinds", "lava", "--out",
                                  str(tmp_path / "x.jsonl")])
    assert r.exit_code == 1 and "lava" in r.output


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_subscribes_and_stores_what_simulate_publishes(mosquitto, tmp_path, bridge_store):
    import httpx

    store = bridge_store.target  # `twin bridge run --store postgresql://...` on the PostgreSQL run
    http = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from twin.cli import main; main()", "bridge", "run",
         "--broker", mosquitto.address, "--store", str(store), "--client-id", "cli-test",
         "--http", http],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        assert ready["filters"] == ["sz/v1/+/+/obs", "sz/v1/+/+/status"]
        r = run(["simulate", "--devices", "4", "--minutes", "20", "--kinds",
                 "rain_gauge,water_level", "--broker", mosquitto.address])
        assert r.exit_code == 0, r.output
        sent = json.loads(r.output)["messages"]
        deadline = time.monotonic() + 60
        while True:
            rep = json.loads(run(["inspect", "--store", str(store), "--json"]).output)
            if rep["observations"] >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rep["observations"] == sent  # 4 x 20 readings + retained statuses
        assert rep["dead_letters"]["count"] == 0
        # the same process serves HTTP ingest into the same store
        assert ready["http"] == f"http://{http}"
        body = {"datastream": "CS-1/gas_o2", "phenomenonTime": "2024-06-01T08:00:00+08:00",
                "result": 20.9, "unit": "%", "seq": 0}
        resp = httpx.post(f"{ready['http']}/v1/obs/gas_o2/CS-1", json=body, timeout=10)
        assert resp.status_code == 201 and resp.json()["stored"] == 1
        resp = httpx.post(f"{ready['http']}/v1/obs/gas_o2/CS-1", content=b"nope", timeout=10)
        assert resp.status_code == 400
        rep = json.loads(run(["inspect", "--store", str(store), "--json"]).output)
        assert rep["observations"] == sent + 1 and rep["dead_letters"]["count"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    stopped = json.loads(out.splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["stats"]["acked"] == sent, err


SKEWED = {"flags": ["clock_skew"]}


def test_inspect_json_leaves_clock_skew_out_on_both_backends(tmp_path, bridge_store):
    """A year-3000 reading (issue 16's first weak spot) neither freshens its stream nor becomes its latest value."""
    from datetime import UTC, datetime

    from twin.events import Event
    from twin.store import Observation, Store

    t0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
    with Store.open(bridge_store.target) as st:
        st.put_observations([
            Observation("WL-1/water_level", t0, 1.25, "m", raw={"flags": []}),
            Observation("WL-1/water_level", datetime(3000, 1, 1, tzinfo=UTC), 9.0, "m", raw=SKEWED),
            Observation("RG-1/rain_gauge", datetime(2999, 1, 1, tzinfo=UTC), 5.0, "mm", raw=SKEWED)])
        for sev in ("info", "warning", "alarm"):
            st.put_event(Event(time_s=t0.timestamp(), kind="threshold_crossed", source="WL-1/water_level",
                               severity=sev, message=sev))
        st.put_dead_letter("sz/v1/x", b"nope", "not JSON", t0)
    r = run(["inspect", "--store", bridge_store.target, "--json", "--now", "2026-03-01T08:10:00Z"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    streams = {s["datastream"]: s for s in rep["streams"]}
    wl, rg = streams["WL-1/water_level"], streams["RG-1/rain_gauge"]
    assert (wl["count"], wl["clock_skew"], wl["age_s"], wl["stale"], wl["latest_si"]) == (2, 1, 600.0, False, 1.25)
    assert wl["last"] == "2026-03-01T08:00:00.000000Z"
    assert (rg["last"], rg["age_s"], rg["stale"], rg["latest_si"]) == (None, None, True, None)
    assert rep["stale"] == ["RG-1/rain_gauge"] and rep["observations"] == 3
    assert rep["alerts"]["counts"] == {"info": 1, "advisory": 0, "warning": 1, "alarm": 1}
    assert [a["message"] for a in rep["alerts"]["recent"]] == ["alarm", "warning"]  # advisory and above
    assert rep["dead_letters"]["count"] == 1 and rep["dead_letters"]["recent"][0]["payload"] == "nope"


def _sse_messages(url: str, then, until, timeout: float = 15.0) -> list[dict]:
    """Data messages of the console's SSE stream, calling ``then()`` once the stream said hello, until
    ``until(messages)`` holds."""
    import httpx

    got: list[dict] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{url}/api/stream", timeout=timeout) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "hello":
                    then()
            elif line.startswith("data:") and event is None:
                got.append(json.loads(line[5:]))
                if until(got):
                    return got
            elif not line:
                event = None
            assert time.monotonic() < deadline, f"no such message on the stream: {got}"
    return got


def test_serve_shows_the_stored_readings_and_streams_new_ones(tmp_path, bridge_store, twin_data, twin_serve):
    """`twin serve --store postgresql://...` (and a directory): the page, the sensors with their stored
    values, and a reading written after start arriving on the SSE stream."""
    from datetime import UTC, datetime, timedelta

    import httpx

    from twin.store import Store

    now = datetime.now(UTC).replace(microsecond=0)
    with Store.open(bridge_store.target) as st:
        st.put_observation("WL-1/water_level", now - timedelta(minutes=2), 1.5, "m")
    proc, url = twin_serve(bridge_store.target)
    with httpx.Client(base_url=url, timeout=20) as c:
        page = c.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        (s,) = [x for x in c.get("/api/sensors").json()["sensors"] if x["id"] == "WL-1/water_level"]
        assert (s["value"], s["unit"], s["status"]) == (1.5, "m", "ok")

    def write() -> None:  # after the stream opened: the message must come through it
        with Store.open(bridge_store.target) as st:
            st.put_observation("WL-1/water_level", now - timedelta(minutes=1), 1.75, "m")

    msgs = _sse_messages(url, write,
                         lambda ms: any(m.get("type") == "sensor" and m["sensor"]["value"] == 1.75 for m in ms))
    assert msgs[-1]["sensor"]["id"] == "WL-1/water_level"
    twin_serve.stop(proc)
    assert proc.returncode == 0, proc.stderr_text
