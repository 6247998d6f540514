"""The console's live state on both backends: it starts from the store's ``latest`` columns, leaves readings
flagged ``clock_skew`` out, and waits for a commit instead of polling a fixed interval (issue 16)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from twin.store import Store
from viz.console.live import LiveState

SKEWED = {"flags": ["clock_skew"]}


def test_live_state_starts_from_latest_and_ignores_clock_skew(tmp_path, store_at):
    target = store_at(tmp_path / "s")
    now = datetime.now(UTC).replace(microsecond=0)
    with Store.open(target) as st:
        st.put_observation("WL-1/water_level", now - timedelta(minutes=5), 1.5, "m")
        st.put_observation("WL-1/water_level", now + timedelta(hours=3), 9.0, "m", raw=SKEWED)
        st.put_observation("CO-1/gas_co", now - timedelta(minutes=1), 8e-6, "1")
        live = LiveState(target)
        try:
            got = {e["id"]: (e["value"], e["unit"], e["shown"]["value"]) for e in live.sensors()}
            assert got == {"WL-1/water_level": (1.5, "m", "1.50 m"), "CO-1/gas_co": (8e-6, "1", "8 ppm")}
            # followed by id: a new in-time reading is shown, a skewed one is not
            st.put_observation("WL-1/water_level", now + timedelta(days=1), 7.0, "m", raw=SKEWED)
            st.put_observation("WL-1/water_level", now - timedelta(minutes=2), 1.75, "m")
            msgs = live.refresh()
            assert [(m["sensor"]["id"], m["sensor"]["value"]) for m in msgs if m["type"] == "sensor"] == [
                ("WL-1/water_level", 1.75)]
            assert live.refresh() == []
        finally:
            live.close()


def test_live_state_wait_wakes_on_another_connections_commit(tmp_path, store_at):
    target = store_at(tmp_path / "s")
    with Store.open(target) as st:
        st.put_observation("WL-1/water_level", datetime(2026, 3, 1, tzinfo=UTC), 1.0, "m")
        live = LiveState(target)
        try:
            t0 = time.monotonic()
            assert live.wait(0.2) is False and time.monotonic() - t0 >= 0.19
            writer = threading.Timer(0.3, st.put_observation,
                                     ("WL-1/water_level", datetime(2026, 3, 1, 0, 1, tzinfo=UTC), 2.0, "m"))
            writer.start()
            t0 = time.monotonic()
            assert live.wait(10.0) is True
            # woke on the commit, not at the timeout (SQLite polls every 50 ms; PostgreSQL is notified)
            assert time.monotonic() - t0 < 2.0
            writer.join()
            assert [m["sensor"]["value"] for m in live.refresh() if m["type"] == "sensor"] == [2.0]
        finally:
            live.close()
