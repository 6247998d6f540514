"""The console's feed wakes on the store's commit (``LiveState.wait``), on SQLite and on a real PostgreSQL.

The feed polls at most every ``poll_s``; here ``poll_s`` is 8 s, so a reading reaching the SSE stream in well
under that came through the wait (LISTEN/NOTIFY on PostgreSQL, 50 ms ``data_version`` polls on SQLite), not
through the fixed interval the feed slept before.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from twin.sensors import Sensor
from twin.store import Store
from viz.console import ConsoleServer, create_app
from viz.console.feed import Feed

POLL_S = 8.0
# a reading must arrive in less than half the polling interval: the wait wakes within ~50 ms (SQLite) or on
# the NOTIFY (PostgreSQL); 4 s leaves room for a loaded 2-core machine
ARRIVE_S = POLL_S / 2


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """The store target of the backend: a directory, or a URL with a password (the test server trusts local
    connections, so the password is not checked; ``create_app`` must not pass the masked ``***`` on)."""
    if request.param == "sqlite":
        return tmp_path / "store"
    url = request.getfixturevalue("pg_server").new_database()
    return url.replace("postgresql://postgres@", "postgresql://postgres:secret@") + f"?files={tmp_path / 'files'}"


def sse_until(lines, want, timeout: float) -> dict:
    data: list[str] = []
    t_end = time.monotonic() + timeout
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            msg = json.loads("\n".join(data))
            data = []
            if want(msg):
                return msg
        if time.monotonic() > t_end:
            break
    raise AssertionError(f"no wanted message within {timeout} s")


def test_a_reading_written_after_start_reaches_the_stream_on_the_commit(target, tmp_path, city):
    with Store.open(target) as s:
        s.put_sensors([Sensor(id="WL1", kind="water_level", lon=114.10, lat=22.56, unit="m")])
    app = create_app(target, token=None, runs_dir=tmp_path / "runs", city=city, base_resolution=500,
                     poll_s=POLL_S)
    with ConsoleServer(app) as server, httpx.Client(base_url=server.url, timeout=20) as client:
        with client.stream("GET", "/api/stream") as r:
            lines = r.iter_lines()
            assert next(lines).startswith("retry:")
            time.sleep(0.3)  # the feed's first poll is done; it is now waiting
            t0 = time.monotonic()
            with Store.open(target) as s:
                s.put_observation("WL1/water_level", datetime.now(UTC), 1.25, "m")
            msg = sse_until(lines, lambda m: m.get("type") == "sensor" and m["sensor"]["value"] == 1.25, 20.0)
            took = time.monotonic() - t0
        assert msg["sensor"]["id"] == "WL1/water_level"
        assert took < ARRIVE_S, f"{took:.2f} s: the feed slept its {POLL_S} s interval instead of waking"
        assert "secret" not in client.get("/api/info").text


def test_a_failing_wait_falls_back_to_sleeping():
    """A wait that raises (a dropped PostgreSQL listener) must not end the feed: it sleeps and polls on."""
    polls: list[float] = []

    def poll() -> list[dict]:
        polls.append(time.monotonic())
        return []

    def broken_wait(timeout: float) -> bool:
        raise OSError("listener lost")

    async def main() -> None:
        feed = Feed(poll, wait=broken_wait, interval_s=0.05)
        await feed.start()
        await asyncio.sleep(0.5)
        await feed.stop()

    asyncio.run(main())
    assert len(polls) >= 3


def test_stopping_does_not_wait_out_a_long_interval():
    """The wait runs in slices of at most 1 s, so a feed with a long interval stops promptly."""
    def wait(timeout: float) -> bool:
        time.sleep(timeout)
        return False

    async def main() -> float:
        feed = Feed(list, wait=wait, interval_s=60.0)
        await feed.start()
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await feed.stop()
        return time.monotonic() - t0

    t0 = time.monotonic()
    took = asyncio.run(main())  # asyncio.run also joins the worker thread of the wait
    assert took < 1.5 and time.monotonic() - t0 < 2.5
