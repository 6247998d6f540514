"""Console (``twin serve``) figures: store-write-to-page latency, bytes a page load costs.

What it measures, on a real store, a real uvicorn server on 127.0.0.1 and headless Chromium:

1. **Store write -> SSE message** (a Python client on ``/api/stream``): ``--writes``
   observations written one by one with :meth:`twin.store.Store.put_observation`
   from another connection, each timed from just before the write to the
   arrival of its ``sensor`` message.
2. **Store write -> page**: the same through the page: to the message being
   handled (``consoleState.received[].at``) and to the live layer redrawn
   (``consoleState.lastDrawAt``). Browser and benchmark share one clock.
3. **Bytes of a page load**: the page, its script and style, the deck.gl
   bundle, ``twinmap.js``, the basemap scene (``--base-resolution``) and a
   forecast scene (a Futian run), raw and gzip-compressed as served, plus the
   time to ``consoleReady`` (basemap scene already built, so it is the
   browser's load, parse and first draw).

The feed wakes on the store's commit (:meth:`viz.console.live.LiveState.wait`: LISTEN/NOTIFY on
PostgreSQL, 50 ms ``data_version`` polls on SQLite) and polls at least every ``--poll-ms`` (default 100 ms).

``--backends`` measures only (1), on SQLite and on PostgreSQL in the same run (a throw-away server from
Debian's binaries, ``tests/pg_server.py``, or ``--pg-url``), each with the feed waking on the commit and
with the feed sleeping ``--poll-ms`` between polls (the console before issue 16); writes come at random
phases (20-120 ms apart). No browser.

Usage: ``TWIN_DATA=... python bench/bench_console.py [--writes 50] [--quick] [--backends]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, print_table, start_pg_server, write_results  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def sse_latency(url: str, store_dir: Path | str, n: int, *, base_s: float = 0.0,
                gap_s: tuple[float, float] = (0.05, 0.05), seed: int = 16) -> list[float]:
    """Seconds from just before each of ``n`` writes (readings at ``base_s`` + k s after now, ``gap_s`` apart,
    uniform) to its ``sensor`` message on ``/api/stream``."""
    import httpx

    from twin.store import Store

    out = []
    rng = random.Random(seed)
    t0 = datetime.now(UTC) + timedelta(seconds=base_s)
    with Store.open(store_dir) as s, httpx.Client(base_url=url, timeout=30) as c:
        with c.stream("GET", "/api/stream") as r:
            lines = r.iter_lines()
            next(lines)
            time.sleep(0.3)
            for i in range(n):
                value = 1000.0 + base_s + i
                t = time.time()
                s.put_observation("B1/water_level", t0 + timedelta(seconds=i), value, "m")
                for line in lines:
                    if line.startswith("data:"):
                        m = json.loads(line[5:])
                        if m.get("type") == "sensor" and m["sensor"]["value"] == value:
                            out.append(time.time() - t)
                            break
                time.sleep(rng.uniform(*gap_s))
    return out


def backends(args: argparse.Namespace) -> None:
    """Store write -> SSE message on SQLite and PostgreSQL, the feed waking on the commit or sleeping."""
    from twin.city import City
    from twin.sensors import Sensor
    from twin.store import Store
    from viz.console import ConsoleServer, create_app

    city = City("shenzhen")
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-backends-"))
    targets: dict[str, Path | str] = {"sqlite": tmp / "store"}
    server = None
    if args.pg_url is None:
        server = start_pg_server()
    try:
        url = args.pg_url or server.new_database()
        targets["postgresql"] = f"{url}?files={tmp / 'pgfiles'}"
        results: dict[str, dict[str, list[float]]] = {}
        for name, target in targets.items():
            with Store.open(target) as s:
                s.put_sensors([Sensor(id="B1", kind="water_level", lon=114.05, lat=22.54, unit="m")])
            results[name] = {}
            for k, mode in enumerate(("wake on commit", f"sleep {args.poll_ms:g} ms")):
                app = create_app(target, token=None, runs_dir=tmp / "runs", city=city, base_resolution=500.0,
                                 poll_s=args.poll_ms / 1000, wake_on_commit=k == 0)
                with ConsoleServer(app) as srv:
                    # the first write of a process pays lazy imports (display units, alert rules): not timed
                    results[name][mode] = sse_latency(srv.url, target, args.writes + 1,
                                                      base_s=k * 10 * args.writes, gap_s=(0.02, 0.12))[1:]
    finally:
        if server is not None:
            server.stop()
    rows = [[name, mode, len(v), 1e3 * statistics.median(v), 1e3 * pct(v, 0.9), 1e3 * max(v)]
            for name, modes in results.items() for mode, v in modes.items()]
    print_table("store write -> SSE message", ["backend", "feed", "n", "p50 ms", "p90 ms", "max ms"], rows,
                notes=[f"one write at a time (after one untimed), 20-120 ms apart (random phases); feed polls at least every "
                       f"{args.poll_ms:g} ms", "SQLite wakes through 50 ms data_version polls, PostgreSQL on NOTIFY"])
    path = write_results("console-backends", {"machine": machine_info(), "args": vars(args),
                                              "latency_s": results}, args.out)
    print(f"results: {path}")


def page_latency(browser, store_dir: Path, n: int) -> tuple[list[float], list[float]]:
    from twin.store import Store

    handled, drawn = [], []
    t0 = datetime.now(UTC) + timedelta(hours=1)
    with Store.open(store_dir) as s:
        for i in range(n):
            value = 2000.0 + i
            t = time.time()
            s.put_observation("B1/water_level", t0 + timedelta(seconds=i), value, "m")
            browser.wait_for(f"consoleState.received.some(r => r.value === {value}) && "
                             f"consoleState.lastDrawAt >= consoleState.received.find(r => r.value === {value}).at",
                             timeout=20, interval=0.01)
            at, draw = browser.evaluate(f"[consoleState.received.find(r => r.value === {value}).at, "
                                        "consoleState.lastDrawAt]")
            handled.append(at - t)
            drawn.append(draw - t)
            time.sleep(0.05)
    return handled, drawn


def sizes(url: str) -> dict[str, dict[str, int]]:
    import httpx

    out = {}
    with httpx.Client(base_url=url, timeout=120) as c:
        for name, path in (("page", "/"), ("console.js", "/static/console.js"),
                           ("console.css", "/static/console.css"), ("deck.js", "/static/deck.js"),
                           ("twinmap.js", "/static/twinmap.js"), ("scene/base", "/api/scene/base"),
                           ("scene/forecast", "/api/scene/forecast")):
            raw = len(c.get(path, headers={"Accept-Encoding": "identity"}).content)
            with c.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as r:
                wire = sum(len(b) for b in r.iter_raw())
            out[name] = {"bytes": raw, "gzip_bytes": wire}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=50, help="observations timed per path")
    ap.add_argument("--base-resolution", type=float, default=90.0, help="basemap grid (m)")
    ap.add_argument("--run-resolution", type=float, default=90.0, help="forecast run grid (m), Futian")
    ap.add_argument("--poll-ms", type=float, default=100.0, help="feed poll interval (ms)")
    ap.add_argument("--quick", action="store_true", help="10 writes, 500 m basemap and run")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    ap.add_argument("--backends", action="store_true",
                    help="only store write -> SSE message, SQLite and PostgreSQL, waking vs sleeping (no browser)")
    ap.add_argument("--pg-url", default=None, help="an empty PostgreSQL database for --backends (default: start one)")
    args = ap.parse_args()
    if args.quick:
        args.writes, args.base_resolution, args.run_resolution = 10, 500.0, 500.0
    if args.backends:
        backends(args)
        return

    from twin.runkinds import get_kind
    from twin.sensors import Sensor
    from twin.store import Store
    from viz.browser import BrowserSession
    from viz.console import ConsoleServer, create_app

    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    store_dir = tmp / "store"
    with Store.open(store_dir) as s:
        s.put_sensors([Sensor(id="B1", kind="water_level", lon=114.05, lat=22.54, unit="m")])
    app = create_app(store_dir, token="bench-token-123", runs_dir=tmp / "runs",
                     base_resolution=args.base_resolution, poll_s=args.poll_ms / 1000)
    api = app.state.console
    flood = get_kind("flood_forecast")
    req = flood.validate({"hours": 3.0, "resolution": args.run_resolution, "districts": ["Futian"]}, console=True)
    run = api.runs.start(flood, req)
    api.runs.join()
    api.scenes.base()  # built once per process; the page load below measures the browser
    with ConsoleServer(app) as server:
        sse = sse_latency(server.url, store_dir, args.writes)
        with BrowserSession(1200, 800) as b:
            t = time.perf_counter()
            b.goto(server.url + "/", ready_js="window.consoleReady === true", timeout=300)
            ready_s = time.perf_counter() - t
            handled, drawn = page_latency(b, store_dir, args.writes)
            errors = list(b.console_errors)
        size = sizes(server.url)
    total = {k: sum(v[k] for v in size.values()) for k in ("bytes", "gzip_bytes")}
    rows = [[name, "ms", len(v), 1e3 * statistics.median(v), 1e3 * pct(v, 0.95), 1e3 * max(v)]
            for name, v in (("store write -> SSE message", sse), ("store write -> page handled", handled),
                            ("store write -> live layer redrawn", drawn))]
    print_table("console latency", ["path", "unit", "n", "median", "p95", "max"], rows,
                notes=[f"feed wakes on the commit, polls at least every {args.poll_ms:g} ms; one write at a time, "
                       "50 ms apart",
                       f"page ready (load, parse, first draw) in {ready_s:.1f} s; console errors: {errors}"])
    print_table("bytes of a page load", ["file", "bytes", "gzip bytes"],
                [[k, v["bytes"], v["gzip_bytes"]] for k, v in size.items()] + [["total", total["bytes"],
                                                                               total["gzip_bytes"]]],
                notes=[f"basemap at {args.base_resolution:g} m; forecast: run {run['id']} (Futian, 3 h, "
                       f"{args.run_resolution:g} m)"])
    path = write_results("console-quick" if args.quick else "console", {
        "machine": machine_info(), "args": vars(args),
        "latency_s": {"sse": sse, "page_handled": handled, "page_drawn": drawn},
        "page_ready_s": ready_s, "sizes": size, "total": total, "console_errors": errors,
    }, args.out)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
