"""Benchmark: the bridge on PostgreSQL against the bridge on SQLite, and two bridges into one PostgreSQL.

Measured in one run, each measurement against a fresh ``mosquitto`` on 127.0.0.1 at a free port (as in
``bench/bench_bridge.py``) and a fresh store: a SQLite directory (WAL, ``synchronous=FULL``) or a fresh database
of a throw-away PostgreSQL server (``tests/pg_server.py``: Debian's binaries, ``fsync=on``, the store's
``synchronous_commit=on``), or ``--pg-url`` (a database the benchmark may create tables in; must be empty).

1. **Saturation, one observation per message** (``--messages``, QoS 1, 200-byte JSON): msg/s stored =
   observations visible / (moment the last became visible - first publish).
2. **Batched devices** (``--batch-messages`` messages of ``--rows-per-batch`` observations): obs/s.
3. **Latency below saturation**: a fixed offered rate, the same for both backends (``--latency-rate-frac`` of the
   lower saturated rate of 1.), for ``--latency-seconds``; latency of an observation = (moment the benchmark's
   reader, polling the store every 5 ms, first saw its row) - its ``phenomenonTime`` stamped at publish; p50/p99
   after a 1 s warm-up.
4. **Two bridges on one shared subscription** (``$share/twin/sz/v1/+/+/obs``) into one PostgreSQL, against one
   bridge on the same PostgreSQL, single and batched messages (``--store postgresql://...``: no file lock; every
   PostgreSQL write transaction takes the store's advisory lock, so writers take turns there).

CPU per observation per process: user+system CPU seconds (``/proc/<pid>/stat``, what ``time.process_time`` reports
inside the process) of each bridge, of the PostgreSQL server (the postmaster and all its backends: the work a
database host does for the bridges) and of mosquitto over the measured interval, divided by the observations
stored. The machine has 2 cores shared by the publisher, the broker, the bridge(s), PostgreSQL and the reader, so
a second bridge cannot show its scaling here; the summary says what a 2-host deployment would do from these
per-process figures.

Run ``python bench/bench_bridge_pg.py --help``; ``--quick`` (~1 min) checks it runs. Results: tables on stdout and
JSON in ``bench/results/bridge-pg-<UTC time>.json`` (or ``--out DIR``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import bench_bridge as bb  # noqa: E402
from _common import machine_info, print_table, start_pg_server, write_results  # noqa: E402


# --------------------------------------------------------------------------
# A store on either backend: where a bridge writes, what the reader polls
# --------------------------------------------------------------------------
class Target:
    """One fresh store: ``arg`` for ``--store``; :meth:`connect` a DB-API connection for the reader."""

    def __init__(self, backend: str, arg: str, dsn: str | None = None, server_pid: int | None = None) -> None:
        self.backend, self.arg, self.dsn, self.server_pid = backend, arg, dsn, server_pid
        self.mark = "?" if backend == "sqlite" else "%s"

    def connect(self, timeout: float = 30.0) -> Any:
        if self.backend == "sqlite":
            return bb._connect_db(Path(self.arg) / "twin.sqlite", timeout)
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)


def pg_processes(postmaster: int | None) -> list[int]:
    """The postmaster and its children (backends, walwriter, checkpointer...)."""
    if postmaster is None:
        return []
    out = [postmaster]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", encoding="ascii") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                continue
    return out


class ServerCpu:
    """CPU seconds of a PostgreSQL server (postmaster + children) over an interval; backends that appear
    during it count from zero, those that exit during it are lost (none do: the bridges' connections live on)."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster
        self.cpu0 = {p: bb.proc_cpu_s(p) or 0.0 for p in pg_processes(postmaster)}

    def close(self) -> float | None:
        if self.postmaster is None:
            return None
        return sum((bb.proc_cpu_s(p) or 0.0) - self.cpu0.get(p, 0.0) for p in pg_processes(self.postmaster))


def watch(target: Target, want: int, *, poll_s: float, collect: bool, stall_s: float, timeout: float) -> dict:
    """``bench_bridge.watch_store`` on either backend (row ids are given in commit order on both)."""
    return bb.watch_connection(target.connect(), want, poll_s=poll_s, collect=collect, stall_s=stall_s,
                               timeout=timeout, mark=target.mark, count_sql="SELECT COUNT(*) FROM observations")


def measure(ctx: Any, workdir: Path, target: Target, *, n_msgs: int, rows: int, window: int, streams: int,
            size: int, n_bridges: int = 1, rate: float | None = None, collect: bool = False,
            bridge_args: list[str] | None = None) -> dict[str, Any]:
    """Publisher -> mosquitto -> bridge process(es) -> store; the reader watches the store."""
    workdir.mkdir(parents=True, exist_ok=True)
    want = n_msgs * rows
    extra = list(bridge_args or [])
    if n_bridges > 1:
        extra += ["--shared-group", bb.SHARED_GROUP]
    with bb.Broker(workdir) as broker:
        bridges = [bb.BridgeProc(broker, target.arg, f"bench-bridge-{k}", workdir / f"bridge-{k}.log", extra)
                   for k in range(n_bridges)]
        pub = None
        try:
            for b in bridges:  # one at a time: the first creates the schema
                b.wait_ready()
            pub = bb.Publisher(ctx, broker, n=n_msgs, qos=1, window=window, streams=streams, size=size,
                               rows=rows, rate=rate, client_id="bench-bridge-pub")
            pub.wait_started()
            iv = bb.Interval({"mosquitto": broker.pid, **{f"bridge {k}": b.pid for k, b in enumerate(bridges)}})
            server = ServerCpu(target.server_pid)
            expect_s = n_msgs / rate if rate else want / 500.0
            w = watch(target, want, poll_s=0.005 if collect else 0.05, collect=collect, stall_s=30.0,
                      timeout=300.0 + 3 * expect_s)
            usage = iv.close()
            usage["cpu_s"]["postgresql"] = server.close()
            p = pub.result(120.0)
        finally:
            if pub is not None:
                pub.kill()
            stats = [b.terminate() for b in bridges]
    span = w["t_reached"] - p["t_start"]
    usage["cpu_s"]["publisher"] = p["cpu_s"]
    n = max(1, w["count"])
    out: dict[str, Any] = {
        "backend": target.backend, "n_bridges": n_bridges, "rows_per_msg": rows, "offered_rate": rate,
        "published": p["n"], "target_obs": want, "visible_obs": w["count"], "rows_in_store": w["rows"],
        "dead_letters": w["dead_letters"], "complete": w["complete"] and w["rows"] == want,
        "bridge_received": [s.get("received") for s in stats],
        "bridge_stored": [s.get("ingest", {}).get("stored") for s in stats],  # observations, not messages
        "seconds": span, "obs_per_s": w["count"] / span, "msg_per_s": w["count"] / rows / span,
        "steady_obs_per_s": bb.steady_rate(w["trace"], want), **usage,
        "cpu_pct": bb._cpu_pct(usage["cpu_s"], usage["wall_s"]),
        "cpu_us_per_obs": {k: (None if v is None else 1e6 * v / n) for k, v in usage["cpu_s"].items()},
    }
    if collect:
        from datetime import datetime

        t_warm = p["t_start"] + 1.0
        lat = [seen_at - ts for seen_at, text in w["seen"] if (ts := datetime.fromisoformat(text).timestamp()) >= t_warm]
        out["latency"] = bb.latency_summary(lat)
    return out


# --------------------------------------------------------------------------
# Run and report
# --------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts (~1 min): checks that it runs")
    p.add_argument("--out", default=None, metavar="DIR", help="JSON directory (bench/results)")
    p.add_argument("--pg-url", default=None, help="an existing empty PostgreSQL database instead of a test server")
    p.add_argument("--messages", type=int, default=50_000, help="single-observation messages per run (50,000)")
    p.add_argument("--batch-messages", type=int, default=2_000, help="batched messages per run (2,000)")
    p.add_argument("--rows-per-batch", type=int, default=100, help="observations per batched message (100)")
    p.add_argument("--latency-seconds", type=float, default=15.0, help="length of the latency run (15 s)")
    p.add_argument("--latency-rate-frac", type=float, default=0.5,
                   help="offered rate of the latency run, fraction of the lower saturated msg/s (0.5)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each throughput measurement; the table shows the median run (1)")
    p.add_argument("--window", type=int, default=200, help="publisher's messages awaiting PUBACK (200)")
    p.add_argument("--streams", type=int, default=50, help="datastreams (50)")
    p.add_argument("--payload-bytes", type=int, default=200, help="bytes of a single-observation message (200)")
    a = p.parse_args(argv)
    if a.quick:
        a.messages, a.batch_messages, a.latency_seconds, a.repeat = 3_000, 200, 4.0, 1
    return a


class Stores:
    """Fresh stores, one per measurement: SQLite directories and databases of one PostgreSQL server."""

    def __init__(self, tmp: Path, pg_url: str | None) -> None:
        self.tmp, self.k, self.server, self.pg_url = tmp, 0, None, pg_url
        if pg_url is None:
            self.server = start_pg_server()

    def new(self, backend: str) -> Target:
        self.k += 1
        files = self.tmp / f"store-{self.k}"
        if backend == "sqlite":
            return Target("sqlite", str(files))
        if self.server is None:
            return Target("postgresql", f"{self.pg_url}?files={files}", self.pg_url)
        url = self.server.new_database()
        pid = int((self.server.data / "postmaster.pid").read_text().split()[0])
        return Target("postgresql", f"{url}?files={files}", url, pid)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    kw = {"window": args.window, "streams": args.streams, "size": args.payload_bytes}
    stores = Stores(tmp, args.pg_url)
    res: dict[str, Any] = {}
    try:
        def go(name: str, backend: str, repeat: int = args.repeat, **more: Any) -> dict[str, Any]:
            runs = []
            for k in range(repeat):
                print(f"-- {name} ({backend}) {k + 1}/{repeat}", flush=True)
                runs.append(measure(ctx, tmp / f"{name}-{backend}-{k}", stores.new(backend), **kw, **more))
            runs.sort(key=lambda r: r["obs_per_s"])
            res.setdefault(name, {})[backend] = {**runs[len(runs) // 2], "runs_obs_per_s": [r["obs_per_s"] for r in runs]}
            return res[name][backend]

        sat = {b: go("saturation", b, n_msgs=args.messages, rows=1)["msg_per_s"] for b in ("sqlite", "postgresql")}
        for b in ("sqlite", "postgresql"):
            go("batched", b, n_msgs=args.batch_messages, rows=args.rows_per_batch)
        rate = round(args.latency_rate_frac * min(sat.values()))
        for b in ("sqlite", "postgresql"):
            go("latency", b, repeat=1, n_msgs=int(rate * args.latency_seconds), rows=1, rate=rate, collect=True)
        for nb in (1, 2):
            go(f"pg_{nb}_bridges_single", "postgresql", n_msgs=args.messages, rows=1, n_bridges=nb)
            go(f"pg_{nb}_bridges_batched", "postgresql", n_msgs=args.batch_messages, rows=args.rows_per_batch,
               n_bridges=nb)
    finally:
        stores.close()
    return res


def per_own_obs_us(r: dict[str, Any]) -> dict[str, float | None]:
    """CPU microseconds of each process per observation *it* handled: a bridge per observation it stored,
    the broker and PostgreSQL per observation stored in all."""
    out: dict[str, float | None] = {}
    for k, v in r["cpu_s"].items():
        if v is None:
            out[k] = None
        elif k.startswith("bridge "):
            own = r["bridge_stored"][int(k.split()[1])] or 0
            out[k] = 1e6 * v / own if own else None
        else:
            out[k] = 1e6 * v / max(1, r["visible_obs"])
    return out


def table_rows(res: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, by in res.items():
        for backend, r in by.items():
            lat = r.get("latency", {})
            us = per_own_obs_us(r)
            rows.append([name, backend, r["n_bridges"], r["visible_obs"], "yes" if r["complete"] else "NO",
                         r["msg_per_s"], r["obs_per_s"], lat.get("p50_ms"), lat.get("p99_ms"),
                         " + ".join(f"{v:.0f}" for k, v in us.items() if k.startswith("bridge ") and v is not None),
                         us.get("postgresql"), us.get("mosquitto"), r["contention_pct"]])
    return rows


def deployment_note(res: dict[str, Any]) -> list[str]:
    """What 2 bridge hosts + a database host would do, from the per-process CPU per observation of the
    two-bridge run: each bridge on its own core handles 1e6/us obs/s of its share; the database's writes take
    turns on one advisory lock, so its write work gets one core's worth at most."""
    notes = []
    for kind in ("single", "batched"):
        one = res.get(f"pg_1_bridges_{kind}", {}).get("postgresql")
        two = res.get(f"pg_2_bridges_{kind}", {}).get("postgresql")
        if not one or not two:
            continue
        us = per_own_obs_us(two)
        bridges = [v for k, v in us.items() if k.startswith("bridge ") and v]
        ceiling_bridges = sum(1e6 / v for v in bridges)
        pg, mosq = us.get("postgresql"), us.get("mosquitto")
        ceiling_pg = 1e6 / pg if pg else float("nan")
        ceiling_mosq = 1e6 / mosq if mosq else float("inf")
        notes.append(
            f"{kind} messages: one bridge {one['obs_per_s']:,.0f} obs/s, two on these 2 cores "
            f"{two['obs_per_s']:,.0f} obs/s (x{two['obs_per_s'] / one['obs_per_s']:.2f}). CPU per own observation: "
            f"bridges {' and '.join(f'{v:.0f}' for v in bridges)} us, PostgreSQL {pg or float('nan'):.0f} us, "
            f"mosquitto {mosq or float('nan'):.1f} us. On 2 hosts, a bridge on a core of each: the bridges "
            f"~{ceiling_bridges:,.0f} obs/s; PostgreSQL's write path (serialised by its advisory lock: one core) "
            f"~{ceiling_pg:,.0f} obs/s; mosquitto ~{ceiling_mosq:,.0f} obs/s per core: the lowest, "
            f"~{min(ceiling_bridges, ceiling_pg, ceiling_mosq):,.0f} obs/s, bounds the deployment")
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-bridge-pg-") as tmp:
        res = run(args, Path(tmp))
    cols = ["measurement", "backend", "bridges", "obs", "complete", "msg/s", "obs/s", "p50 ms", "p99 ms",
            "bridge us/own obs", "pg us/obs", "mosq us/obs", "cpu wait %"]
    notes = deployment_note(res)
    print_table("Bridge on SQLite vs PostgreSQL; two bridges into one PostgreSQL", cols, table_rows(res), notes)
    path = write_results("bridge-pg", {"machine": machine_info(), "args": vars(args), "results": res,
                                       "table": {"columns": cols, "rows": table_rows(res)}, "notes": notes},
                         args.out)
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
