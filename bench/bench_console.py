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

Latency depends on the feed's poll interval (``--poll-ms``, the console's
default 100 ms): a write waits on average half of it before the feed sees it.

Usage: ``TWIN_DATA=... python bench/bench_console.py [--writes 50] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, print_table, write_results  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def sse_latency(url: str, store_dir: Path, n: int) -> list[float]:
    import httpx

    from twin.store import Store

    out = []
    t0 = datetime.now(UTC)
    with Store.open(store_dir) as s, httpx.Client(base_url=url, timeout=30) as c:
        with c.stream("GET", "/api/stream") as r:
            lines = r.iter_lines()
            next(lines)
            for i in range(n):
                value = 1000.0 + i
                t = time.time()
                s.put_observation("B1/water_level", t0 + timedelta(seconds=i), value, "m")
                for line in lines:
                    if line.startswith("data:"):
                        m = json.loads(line[5:])
                        if m.get("type") == "sensor" and m["sensor"]["value"] == value:
                            out.append(time.time() - t)
                            break
                time.sleep(0.05)
    return out


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
    args = ap.parse_args()
    if args.quick:
        args.writes, args.base_resolution, args.run_resolution = 10, 500.0, 500.0

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
                notes=[f"feed poll interval {args.poll_ms:g} ms; one write at a time, 50 ms apart",
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
