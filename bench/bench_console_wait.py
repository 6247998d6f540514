"""The console's live state on both store backends: its start at city scale, and store write -> change message.

1. **Start** (:class:`viz.console.live.LiveState` built on a store of ``--streams`` datastreams): the whole
   constructor, and its first read alone both ways: :meth:`twin.store.Store.latest_values` (columns from the
   ``latest`` table, what it reads now) against :meth:`twin.store.Store.latest_observations` (full rows with
   their raw messages, what it read before).
2. **Write -> message**: ``--writes`` observations written one by one from another connection, each timed from
   just before the write to :meth:`LiveState.refresh` returning its ``sensor`` message, for two followers:
   ``wait`` (:meth:`LiveState.wait`, i.e. :meth:`Store.wait_for_change`: LISTEN/NOTIFY on PostgreSQL, 50 ms
   ``data_version`` polls on SQLite, then ``refresh``) and ``poll 100 ms`` (``refresh`` then a fixed 100 ms sleep:
   the console feed's loop today, ``viz/console/feed.py``). Writes come at random phases (20-120 ms apart).

The SSE hop (uvicorn, the feed's buffer) is not in this figure: ``bench/bench_console.py`` measures it.

Usage: ``python bench/bench_console_wait.py [--streams 100000] [--writes 40] [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, on_both_backends, print_table, time_call, write_results  # noqa: E402

from twin.store import Observation, open_store  # noqa: E402
from viz.console.live import LiveState  # noqa: E402

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def fill(target: str | Path, streams: int, batch: int = 5000) -> None:
    with open_store(target) as st:
        for lo in range(0, streams, batch):
            st.put_observations([Observation(f"S{k:06d}/water_level", T0, 1.0 + k * 1e-6, "m")
                                 for k in range(lo, min(lo + batch, streams))])


def start_times(target: str | Path, repeat: int) -> dict[str, float]:
    with open_store(target, readonly=True) as ro:
        cols = time_call(lambda: ro.latest_values(), repeat=repeat, warmup=1)
        rows = time_call(lambda: ro.latest_observations(up_to_id=ro.last_observation_id()), repeat=repeat, warmup=1)
    t = time.perf_counter()
    LiveState(target).close()
    return {"latest_values_ms": cols.median * 1e3, "latest_observations_ms": rows.median * 1e3,
            "live_state_s": time.perf_counter() - t}


def message_latency(target: str | Path, writes: int, mode: str, base: int) -> dict[str, float]:
    """Write -> ``sensor`` message from ``refresh`` of a follower that waits (``wait``) or sleeps 100 ms; the
    readings are at ``base`` + k seconds (each run its own, or the store keeps the first as a duplicate)."""
    got: dict[float, float] = {}
    stop = threading.Event()
    live = LiveState(target)

    def follow() -> None:
        while not stop.is_set():
            if mode == "wait":
                live.wait(0.5)
            for m in live.refresh():
                if m["type"] == "sensor" and m["sensor"]["id"] == "WAKE/water_level":
                    got[m["sensor"]["value"]] = time.perf_counter()
            if mode != "wait":
                time.sleep(0.1)

    thread = threading.Thread(target=follow, daemon=True)
    lat = []
    rng = random.Random(16)
    try:
        with open_store(target) as rw:
            thread.start()
            time.sleep(0.3)
            for k in range(writes):
                value = 1000.0 + base + k
                t = time.perf_counter()
                rw.put_observation("WAKE/water_level", T0 + timedelta(seconds=base + k), value, "m")
                while value not in got and time.perf_counter() - t < 5.0:
                    time.sleep(0.0005)
                if value in got:
                    lat.append((got[value] - t) * 1e3)
                time.sleep(rng.uniform(0.02, 0.12))
    finally:
        stop.set()
        thread.join()
        live.close()
    lat.sort()
    return {"writes": writes, "seen": len(lat), "p50_ms": statistics.median(lat) if lat else float("nan"),
            "p90_ms": lat[int(0.9 * (len(lat) - 1))] if lat else float("nan"),
            "max_ms": lat[-1] if lat else float("nan")}


def run_backend(name: str, target: str | Path, args: argparse.Namespace) -> dict:
    t = time.perf_counter()
    fill(target, args.streams)
    out = {"backend": name, "fill_s": time.perf_counter() - t, "start": start_times(target, args.repeat)}
    out["wait"] = message_latency(target, args.writes, "wait", 0)
    out["poll"] = message_latency(target, args.writes, "poll", args.writes)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=100_000)
    ap.add_argument("--writes", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pg-url", help="an existing empty PostgreSQL database (default: start one)")
    ap.add_argument("--quick", action="store_true", help="10 k streams, 20 writes")
    ap.add_argument("--out", help="results directory (default bench/results)")
    args = ap.parse_args()
    if args.quick:
        args.streams, args.writes = 10_000, 20
    results = on_both_backends(run_backend, args)
    rows = []
    for r in results:
        s = r["start"]
        rows.append([r["backend"], "first read: latest_values (now)", f"{s['latest_values_ms']:.0f} ms"])
        rows.append([r["backend"], "first read: latest_observations (before)", f"{s['latest_observations_ms']:.0f} ms"])
        rows.append([r["backend"], "LiveState start (whole)", f"{s['live_state_s']:.2f} s"])
        for mode in ("wait", "poll"):
            w = r[mode]
            what = "write -> message, wait_for_change" if mode == "wait" else "write -> message, poll 100 ms"
            rows.append([r["backend"], what, f"p50 {w['p50_ms']:.1f} / p90 {w['p90_ms']:.1f} / max {w['max_ms']:.1f} ms"
                         f" ({w['seen']}/{w['writes']})"])
    notes = [f"{args.streams} datastreams; medians of {args.repeat} calls (first reads); {args.writes} timed writes"]
    print_table("Console live state", ["backend", "what", "time"], rows, notes)
    print(write_results("console_wait", {"machine": machine_info(), "args": vars(args), "results": results}, args.out))


if __name__ == "__main__":
    main()
