"""Store figures at city scale, SQLite and PostgreSQL in the same run: bulk ingest and the live map's queries.

For each backend (a SQLite directory in a temp dir; a PostgreSQL started from Debian's binaries on a free
port by ``tests/pg_server.py``, or ``--pg-url``):

1. **Bulk ingest**: ``--sensors`` datastreams x ``--readings`` readings each, then one datastream at one
   reading a minute for ``--days`` days, through :meth:`Store.write_prepared` in batches of ``--batch``
   (what the bridge does): observations per second.
2. **Latest value per datastream**: :meth:`Store.latest_observations` (rows with unit and raw message; the
   ``latest`` table the write path keeps, joined to the observations), also with ``up_to_id`` = the newest id
   (the console's form), and :meth:`Store.latest_values` (columns: ids, times, a float array; the ``latest``
   table alone): all ``--sensors`` + 1 streams.
4. **Change wake-up**: ``--writes`` single writes, each timed from its start to a reader (another connection,
   another thread) returning from :meth:`Store.wait_for_change` (LISTEN/NOTIFY on PostgreSQL, 50 ms polling of
   ``data_version`` on SQLite); the write's own commit is included.
3. **Per-interval aggregates of one datastream over the whole period** (:meth:`Store.aggregate`: count,
   mean, max, min, sum per UTC hour and per day), a range scan of the ``(datastream_id, phenomenon_time,
   seq)`` index.

Times are medians of ``--repeat`` calls after one warm-up, through the public API (rows built as Python
objects), on a warm cache. Target of issue 16: each query under 100 ms.

Usage: ``python bench/bench_store.py [--sensors 100000] [--readings 3] [--days 365] [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, on_both_backends, print_table, time_call, write_results  # noqa: E402

from twin.store import Observation, Store, open_store  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_MS = 100.0


def ingest(store: Store, sensors: int, readings: int, days: int, batch: int) -> dict[str, float]:
    """Write the city's readings then one stream's year; observations per second of each part."""
    out = {}
    t = time.perf_counter()
    n = 0
    pending: list[Observation] = []
    for k in range(readings):
        when = T0 + timedelta(days=days) - timedelta(minutes=10 * (readings - k))
        for i in range(sensors):
            pending.append(Observation(f"S{i:06d}/level", when, float(i % 97) + k, "m", when))
            if len(pending) >= batch:
                store.write_prepared(store.prepare_ingested(pending))
                n += len(pending)
                pending = []
    if pending:
        store.write_prepared(store.prepare_ingested(pending))
        n += len(pending)
    out["city_obs"] = n
    out["city_obs_per_s"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    minutes = days * 24 * 60
    for start in range(0, minutes, batch):
        rows = [Observation("YEAR/rain", T0 + timedelta(minutes=m), float(m % 60) / 10.0, "mm",
                            T0 + timedelta(minutes=m)) for m in range(start, min(start + batch, minutes))]
        store.write_prepared(store.prepare_ingested(rows))
    out["year_obs"] = minutes
    out["year_obs_per_s"] = minutes / (time.perf_counter() - t)
    return out


def queries(store: Store, sensors: int, days: int, repeat: int) -> list[dict]:
    t1 = T0 + timedelta(days=days)
    last = store.last_observation_id()
    cases = [
        ("latest per datastream", lambda: store.latest_observations(), sensors + 1),
        ("latest up_to_id", lambda: store.latest_observations(up_to_id=last), sensors + 1),
        ("latest values (columns)", lambda: store.latest_values().values, sensors + 1),
        ("hourly aggregate, 1 stream", lambda: store.aggregate("YEAR/rain", T0, t1, "hour"), days * 24),
        ("daily aggregate, 1 stream", lambda: store.aggregate("YEAR/rain", T0, t1, "day"), days),
    ]
    out = []
    for name, fn, want in cases:
        got = len(fn())
        if got != want:
            raise SystemExit(f"{name}: {got} rows, expected {want}")
        timing = time_call(fn, repeat=repeat, warmup=1)
        out.append({"query": name, "rows": got, "median_ms": timing.median * 1e3, "min_ms": timing.min * 1e3})
    return out


def wake_latency(target: str | Path, writes: int) -> dict[str, float]:
    """Time from a write's start to a reader's :meth:`Store.wait_for_change` returning (another connection)."""
    woke: list[float] = []
    stop = threading.Event()
    with open_store(target) as rw, open_store(target, readonly=True) as ro:
        ro.wait_for_change(0.0)  # start watching

        def follow() -> None:
            while not stop.is_set():
                if ro.wait_for_change(0.5):
                    woke.append(time.perf_counter())

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        lat = []
        rng = random.Random(16)
        for k in range(writes):
            n = len(woke)
            t = time.perf_counter()
            rw.put_observation("WAKE/x", T0 + timedelta(seconds=k), float(k))
            while len(woke) == n and time.perf_counter() - t < 5.0:
                time.sleep(0.0005)
            if len(woke) > n:
                lat.append((woke[n] - t) * 1e3)
            time.sleep(rng.uniform(0.02, 0.12))  # writes at random phases of SQLite's polling
        stop.set()
        thread.join()
    return {"writes": writes, "woken": len(lat), "p50_ms": statistics.median(lat) if lat else math.nan,
            "max_ms": max(lat) if lat else math.nan}


def run_backend(name: str, target: str | Path, args: argparse.Namespace) -> dict:
    with open_store(target) as store:
        t = time.perf_counter()
        ing = ingest(store, args.sensors, args.readings, args.days, args.batch)
        ing["ingest_s"] = time.perf_counter() - t
        if name == "postgresql":  # statistics for the planner after a bulk load, as an operator would
            store._conn.execute("ANALYZE")
        else:
            store._query("ANALYZE")
        result = {"backend": name, "ingest": ing, "queries": queries(store, args.sensors, args.days, args.repeat)}
    result["wake"] = wake_latency(target, args.writes)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=100_000)
    ap.add_argument("--readings", type=int, default=3, help="readings per city datastream")
    ap.add_argument("--days", type=int, default=365, help="days of one-minute readings of one datastream")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--writes", type=int, default=20, help="writes timed to a waiting reader's wake-up")
    ap.add_argument("--pg-url", help="an existing empty PostgreSQL database (default: start one)")
    ap.add_argument("--quick", action="store_true", help="10 k sensors, 30 days")
    ap.add_argument("--out", help="results directory (default bench/results)")
    args = ap.parse_args()
    if args.quick:
        args.sensors, args.days = 10_000, 30
    results = on_both_backends(run_backend, args)
    rows = []
    for r in results:
        ing = r["ingest"]
        rows.append([r["backend"], "bulk ingest (city)", ing["city_obs"], f"{ing['city_obs_per_s']:,.0f} obs/s", ""])
        rows.append([r["backend"], "bulk ingest (1 stream)", ing["year_obs"], f"{ing['year_obs_per_s']:,.0f} obs/s", ""])
        for q in r["queries"]:
            ok = "yes" if q["median_ms"] < TARGET_MS else "NO"
            rows.append([r["backend"], q["query"], q["rows"], f"{q['median_ms']:.1f} ms", ok])
        w = r["wake"]
        rows.append([r["backend"], "write -> wait_for_change wakes", f"{w['woken']}/{w['writes']}",
                     f"p50 {w['p50_ms']:.1f} ms, max {w['max_ms']:.1f} ms", ""])
    notes = [f"{args.sensors} datastreams x {args.readings} readings; one datastream at 1/min for {args.days} days; "
             f"batches of {args.batch}; median of {args.repeat} calls, warm cache; target < {TARGET_MS:.0f} ms"]
    print_table("Store at city scale", ["backend", "what", "rows", "time / rate", f"< {TARGET_MS:.0f} ms"], rows, notes)
    payload = {"machine": machine_info(), "args": vars(args), "results": results}
    print(write_results("store", payload, args.out))


if __name__ == "__main__":
    main()
