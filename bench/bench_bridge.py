"""Benchmark of the hardware bridge against a real mosquitto broker.

Measured in one run, each against a fresh ``mosquitto`` the benchmark starts on
127.0.0.1 at a free port (configuration as in ``tests/hardware_bridge/conftest.py``:
persistence off, ``max_inflight_messages 1000``, ``max_queued_messages 500000``):

1. **Raw ceiling.** A plain paho publisher (own process, bounded window of
   ``--window`` messages awaiting PUBACK / socket write) -> mosquitto -> a plain
   paho subscriber (own process) that only counts the messages. One observation
   per message, ``--payload-bytes`` (200) of JSON, QoS 1 and QoS 0, ``--messages``
   each. Rate = messages delivered / (last delivery - first publish). Then the
   same pair at a fixed offered rate (the one used for 2b) with the subscriber
   parsing ``phenomenonTime`` for a reference latency of the broker path alone.
2. **End to end through the bridge** (``python -m hardware_bridge.runner``, its
   default batching: ``--batch-max 500 --batch-wait-s 0.02 --receive-maximum 1000``):
   publish (QoS 1) -> validated -> committed to the store (SQLite WAL,
   synchronous=FULL) -> acknowledged. *Visible in the twin* is observed by a
   reader polling the store's ``observations`` table from the benchmark process.

   a. saturation: ``--messages`` published as fast as the window allows;
      throughput = observations stored / (moment the last became visible - first publish);
   b. latency below saturation: a fixed offered rate for ``--latency-seconds``:
      ``--latency-rate-frac`` (default 50 %) of the bridge's own saturated throughput
      from 2a (or of the QoS 1 ceiling, whichever is lower: 50 % of the ceiling can lie
      above what the bridge sustains, and that is not "below saturation");
      the payload's ``phenomenonTime`` is stamped at publish, the latency of an
      observation is (time the reader first saw its row) - phenomenonTime. The
      reader polls every 5 ms, so latencies are overestimated by 2.5 ms on average
      (at most 5 ms + one query). The first second is a warm-up and is left out.
   c. ingest alone, no MQTT: the same payloads handed to the bridge's
      ``Ingestor.handle_many`` in-process in batches of 500 (what the runner's worker
      does per batch): validation + durable commit, CPU-bound on one core. It shows
      how much of the end-to-end cost is the ingest itself.
3. **Batched devices:** ``--batch-messages`` messages of ``--rows-per-batch``
   observations each (SensorThings dataArray) at saturation: observations/s stored.
4. **Shared subscription:** one, then two bridge processes on the MQTT 5 shared
   subscription ``$share/twin/sz/v1/+/+/obs`` writing to one store (the twin has
   one store; SQLite admits one writer at a time), ``--shared-messages`` each:
   throughput ratio two/one; then the same with batched messages (``--batch-messages``
   of ``--rows-per-batch`` observations), where the bridges' per-observation work,
   not the broker's per-message work, bounds the rate.

For every measurement the CPU time of each process (broker, bridge(s), publisher,
subscriber, this benchmark's reader) is reported as % of one core over the
measured interval, with the share of that interval during which some task waited
for a CPU (Linux PSI, ``cpu_contention_pct``): on a 2-core machine the broker, the
publisher and the bridge compete for the same cores, which caps what the bridge
can reach and what a second bridge process can add.

Targets (issue 4): end to end >= 70 % of the QoS 1 ceiling; p99 < 100 ms below
saturation; >= 20,000 observations/s batched; two bridges >= 1.6x one.

Run ``python bench/bench_bridge.py --help``; ``--quick`` (~1 min) checks it runs.
Results: a table on stdout and JSON in ``bench/results/bridge-<UTC time>.json``
(or ``--out DIR``). Never collected by pytest (not under ``tests/``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import queue
import selectors
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from hardware_bridge.broker import MOSQUITTO, LocalBroker  # noqa: E402

OBS_FILTER = "sz/v1/+/+/obs"
KIND = "water_level"
SHARED_GROUP = "twin"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

TARGET_E2E_FRACTION = 0.70
TARGET_P99_MS = 100.0
TARGET_BATCHED_OBS_S = 20_000.0
TARGET_SHARED_RATIO = 1.6


# --------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------
Broker = LocalBroker


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------
# Payloads (the same generator for the raw ceiling and the bridge)
# --------------------------------------------------------------------------
def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def obs_message(i: int, streams: int, size: int) -> tuple[str, bytes]:
    """One SensorThings Observation, ``phenomenonTime`` = now, padded to ``size`` bytes."""
    st = f"BM-{i % streams:03d}"
    head = (
        f'{{"datastream":"{st}/{KIND}","phenomenonTime":"{_now_text()}",'
        f'"result":{1.0 + (i % 1000) * 0.001:.3f},"unit":"m","seq":{i},"parameters":{{"pad":"'
    )
    tail = '"}}'
    pad = max(0, size - len(head) - len(tail))
    return f"sz/v1/{KIND}/{st}/obs", (head + "x" * pad + tail).encode()


def batch_message(i: int, streams: int, rows: int) -> tuple[str, bytes]:
    """``rows`` observations of one datastream in dataArray form; the last row is stamped now,
    earlier rows 1 ms apart before it (unique keys: seq runs over all messages)."""
    st = f"BM-{i % streams:03d}"
    now = datetime.now(UTC)
    data = [
        [
            (now - timedelta(milliseconds=rows - 1 - k)).isoformat(timespec="microseconds"),
            round(1.0 + ((i * rows + k) % 1000) * 0.001, 3),
            i * rows + k,
        ]
        for k in range(rows)
    ]
    body = {
        "datastream": f"{st}/{KIND}",
        "unit": "m",
        "components": ["phenomenonTime", "result", "seq"],
        "dataArray": data,
    }
    return f"sz/v1/{KIND}/{st}/obs", json.dumps(body, separators=(",", ":")).encode()


# --------------------------------------------------------------------------
# Child processes: publisher and raw subscriber (spawned; module-level functions)
# --------------------------------------------------------------------------
def _client(client_id: str):  # noqa: ANN202
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=mqtt.MQTTv5)


def _publisher(cfg: dict[str, Any], started: Any, out: Any) -> None:
    """Publish ``cfg['n']`` messages with at most ``cfg['window']`` not yet acknowledged
    (QoS 1: PUBACK; QoS 0: written to the socket), optionally paced at ``cfg['rate']``/s."""
    try:
        window, qos, n, rate = cfg["window"], cfg["qos"], cfg["n"], cfg["rate"]
        slots = threading.Semaphore(window)
        connected = threading.Event()
        c = _client(cfg["client_id"])
        c.max_inflight_messages_set(window)
        c.max_queued_messages_set(0)
        c.on_connect = lambda *a: connected.set()
        c.on_publish = lambda *a: slots.release()
        c.connect(cfg["host"], cfg["port"], keepalive=60)
        c.loop_start()
        if not connected.wait(15):
            raise RuntimeError(f"publisher: no connection to {cfg['host']}:{cfg['port']}")
        rows = cfg.get("rows", 1)
        streams, size = cfg["streams"], cfg["size"]
        if rows > 1:
            def make(i: int) -> tuple[str, bytes]:
                return batch_message(i, streams, rows)
        else:
            def make(i: int) -> tuple[str, bytes]:
                return obs_message(i, streams, size)
        nbytes = 0
        cpu0 = self_cpu_s()
        t0 = time.time()
        started.set()
        for i in range(n):
            if rate:
                wait = t0 + i / rate - time.time()
                if wait > 0:
                    time.sleep(wait)
            slots.acquire()
            topic, payload = make(i)
            nbytes += len(payload)
            info = c.publish(topic, payload, qos=qos)
            if info.rc != 0:
                raise RuntimeError(f"publish {i} failed: paho rc {info.rc}")
        t_pub = time.time()
        for _ in range(window):  # every message acknowledged / written
            if not slots.acquire(timeout=300):
                raise RuntimeError("publisher: messages not acknowledged within 300 s")
        t_acked = time.time()
        cpu = self_cpu_s() - cpu0
        c.disconnect()
        c.loop_stop()
        out.put({"ok": True, "n": n, "t_start": t0, "t_published": t_pub, "t_acked": t_acked,
                 "bytes": nbytes, "cpu_s": cpu})
    except BaseException as exc:  # report to the parent instead of dying silently
        started.set()
        out.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _subscriber(cfg: dict[str, Any], ready: Any, done: Any, out: Any) -> None:
    """Subscribe and count (optionally parse phenomenonTime for latency); report when
    ``cfg['n']`` arrived, or ``idle_s`` after ``done`` without a new message."""
    try:
        st = {"n": 0, "first": None, "last": None}
        lat: list[float] = []
        parse = cfg["parse"]

        def on_connect(client, userdata, flags, rc, props) -> None:  # noqa: ANN001
            client.subscribe(cfg["filter"], qos=cfg["qos"])

        def on_subscribe(*a) -> None:  # noqa: ANN002
            ready.set()

        def on_message(client, userdata, msg) -> None:  # noqa: ANN001
            now = time.time()
            st["n"] += 1
            if st["first"] is None:
                st["first"] = now
                st["cpu0"] = self_cpu_s()
            st["last"] = now
            if parse:
                t = datetime.fromisoformat(json.loads(msg.payload)["phenomenonTime"])
                lat.append(now - t.timestamp())

        c = _client(cfg["client_id"])
        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect(cfg["host"], cfg["port"], keepalive=60)
        c.loop_start()
        deadline = time.monotonic() + cfg["timeout"]
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if st["n"] >= cfg["n"]:
                break
            if done.is_set() and time.time() - (st["last"] or time.time()) > cfg["idle_s"]:
                break
        cpu = self_cpu_s() - st.get("cpu0", self_cpu_s())
        c.disconnect()
        c.loop_stop()
        out.put({"ok": True, "n": st["n"], "t_first": st["first"], "t_last": st["last"],
                 "latency_s": lat, "cpu_s": cpu})
    except BaseException as exc:
        ready.set()
        out.put({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _get(q: Any, proc: Any, what: str, timeout: float) -> dict[str, Any]:
    """A child's result from its queue; an error naming the child if it died or failed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            res = q.get(timeout=0.5)
            break
        except queue.Empty:
            if not proc.is_alive():
                try:
                    res = q.get(timeout=1.0)
                    break
                except queue.Empty:
                    raise RuntimeError(f"{what} exited ({proc.exitcode}) without a result") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: no result within {timeout:.0f} s") from None
    if not res.get("ok"):
        raise RuntimeError(f"{what} failed: {res.get('error')}")
    return res


class Publisher:
    """A spawned publisher process (see :func:`_publisher`)."""

    def __init__(self, ctx: Any, broker: Broker, *, n: int, qos: int, window: int,
                 streams: int, size: int, rows: int = 1, rate: float | None = None,
                 client_id: str = "bench-pub") -> None:
        self.started = ctx.Event()
        self.q = ctx.Queue()
        cfg = {"host": broker.host, "port": broker.port, "n": n, "qos": qos, "window": window,
               "streams": streams, "size": size, "rows": rows, "rate": rate,
               "client_id": client_id}
        self.proc = ctx.Process(target=_publisher, args=(cfg, self.started, self.q), daemon=True)
        self.proc.start()

    def wait_started(self, timeout: float = 60.0) -> None:
        if not self.started.wait(timeout):
            raise RuntimeError("publisher did not start")

    def result(self, timeout: float) -> dict[str, Any]:
        res = _get(self.q, self.proc, "publisher", timeout)
        self.proc.join(10)
        return res

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


# --------------------------------------------------------------------------
# Bridge processes and the store reader
# --------------------------------------------------------------------------
class BridgeProc:
    """``python -m hardware_bridge.runner`` as a child process."""

    def __init__(self, broker: Broker, store: Path, client_id: str, log: Path,
                 extra: list[str]) -> None:
        args = [sys.executable, "-m", "hardware_bridge.runner", "--broker", broker.address,
                "--store", str(store), "--client-id", client_id, "--stale-check-s", "0",
                "--session-expiry-s", "0", *extra]
        self.args = args
        self._log = open(log, "ab")  # noqa: SIM115 - kept for the process's lifetime
        self.logpath = log
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     env=env, cwd=REPO)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"bridge exited ({self.proc.returncode}): {self._tail()}")
                if sel.select(timeout=0.2):
                    line = self.proc.stdout.readline()
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("event") == "ready":
                        return rec
        finally:
            sel.close()
        raise RuntimeError(f"bridge not ready within {timeout} s: {self._tail()}")

    def _tail(self) -> str:
        self._log.flush()
        return self.logpath.read_text(errors="replace")[-2000:]

    def terminate(self, timeout: float = 60.0) -> dict[str, Any]:
        """SIGTERM; the final stats line of the runner (``{}`` if none)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self._log.close()
        for line in reversed((out or "").splitlines()):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "stopped":
                return rec.get("stats", {})
        return {}


def _connect_db(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bridge did not create its store {path}")
        time.sleep(0.05)
    return sqlite3.connect(path, timeout=60)


def watch_store(db: Path, target: int, *, poll_s: float, collect: bool, stall_s: float,
                timeout: float) -> dict[str, Any]:
    """Poll the SQLite store ``db`` until ``target`` observations are visible (or no progress for ``stall_s``).

    With ``collect`` every new row's ``phenomenon_time`` is read with the time it was
    first seen (for latencies); otherwise only ``MAX(id)`` (rows are never deleted and
    the bench sends no duplicates, so it equals the count; checked at the end).
    """
    return watch_connection(_connect_db(db), target, poll_s=poll_s, collect=collect, stall_s=stall_s,
                            timeout=timeout)


def watch_connection(con: Any, target: int, *, poll_s: float, collect: bool, stall_s: float, timeout: float,
                     mark: str = "?", count_sql: str = "SELECT MAX(id) FROM observations") -> dict[str, Any]:
    """:func:`watch_store` on an open DB-API connection of either backend (closed at the end): ``mark`` its
    parameter placeholder, ``count_sql`` how rows are counted while polling (``MAX(id)`` where ids have no
    gaps; PostgreSQL's sequence skips the ids of conflicting inserts, so ``COUNT(*)`` there)."""
    seen: list[tuple[float, str]] = []
    trace: list[tuple[float, int]] = []
    count = last_id = 0
    t_change = time.time()
    deadline = t_change + timeout
    try:
        while True:
            now = time.time()
            if collect:
                rows = con.execute(
                    f"SELECT id, phenomenon_time FROM observations WHERE id > {mark} ORDER BY id",
                    (last_id,),
                ).fetchall()
                if rows:
                    last_id = rows[-1][0]
                    seen.extend((now, r[1]) for r in rows)
                new = count + len(rows)
            else:
                new = con.execute(count_sql).fetchone()[0] or 0
            if new != count:
                count, t_change = new, now
                trace.append((now, count))
            if count >= target or now - t_change > stall_s or now > deadline:
                break
            time.sleep(poll_s)
        total = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        try:
            dead = con.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        except sqlite3.Error:
            dead = None
    finally:
        con.close()
    return {"count": count, "rows": total, "dead_letters": dead, "t_reached": t_change,
            "complete": count >= target, "trace": trace, "seen": seen}


def steady_rate(trace: list[tuple[float, int]], target: int) -> float | None:
    """Rows/s between 10 % and 90 % of ``target`` visible (start-up and tail left out)."""
    lo = next((p for p in trace if p[1] >= 0.1 * target), None)
    hi = next((p for p in trace if p[1] >= 0.9 * target), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return None
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    f = math.floor(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def latency_summary(lat_s: list[float]) -> dict[str, Any]:
    ms = [1000.0 * v for v in lat_s]
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90), "p99_ms": pct(ms, 99),
            "max_ms": max(ms) if ms else math.nan,
            "mean_ms": statistics.fmean(ms) if ms else math.nan}


def latency_timeline(seen: list[tuple[float, str]], t0: float) -> list[list[float]]:
    """Per second of publish time: ``[second, n, p50 ms, p99 ms, max ms]`` (shows whether a
    tail comes from a few stalls or is spread over the run)."""
    by: dict[int, list[float]] = {}
    for seen_at, text in seen:
        t = datetime.fromisoformat(text).timestamp()
        by.setdefault(int(t - t0), []).append(1000.0 * (seen_at - t))
    return [[k, len(v), pct(v, 50), pct(v, 99), max(v)] for k, v in sorted(by.items())]


class Interval:
    """CPU seconds of named processes and PSI stall over a measured interval."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        from _common import cpu_stall_us

        self.pids = pids
        self.cpu0 = {k: proc_cpu_s(p) for k, p in pids.items()}
        self.self0 = self_cpu_s()
        self.stall0 = cpu_stall_us()
        self.t0 = time.time()

    def close(self) -> dict[str, Any]:
        from _common import contention_pct

        wall = time.time() - self.t0
        cpu = {}
        for k, p in self.pids.items():
            now = proc_cpu_s(p)
            cpu[k] = None if now is None or self.cpu0[k] is None else now - self.cpu0[k]
        cpu["bench (reader)"] = self_cpu_s() - self.self0
        return {"wall_s": wall, "cpu_s": cpu, "contention_pct": contention_pct(self.stall0, wall)}


def _cpu_pct(cpu_s: dict[str, float | None], wall: float) -> dict[str, float | None]:
    return {k: (None if v is None or wall <= 0 else 100.0 * v / wall) for k, v in cpu_s.items()}


# --------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------
def measure_raw(ctx: Any, workdir: Path, *, qos: int, n: int, window: int, streams: int,
                size: int, rate: float | None = None, parse: bool = False) -> dict[str, Any]:
    """Plain paho publisher -> mosquitto -> paho subscriber that counts (and optionally parses)."""
    with Broker(workdir) as broker:
        ready, done, sq = ctx.Event(), ctx.Event(), ctx.Queue()
        timeout = 120.0 + (n / rate if rate else n / 200.0)
        cfg = {"host": broker.host, "port": broker.port, "filter": OBS_FILTER, "qos": qos,
               "n": n, "parse": parse, "idle_s": 3.0, "timeout": timeout,
               "client_id": "bench-raw-sub"}
        sub = ctx.Process(target=_subscriber, args=(cfg, ready, done, sq), daemon=True)
        sub.start()
        if not ready.wait(60):
            sub.kill()
            raise RuntimeError("raw subscriber did not subscribe")
        pub = Publisher(ctx, broker, n=n, qos=qos, window=window, streams=streams, size=size,
                        rate=rate, client_id="bench-raw-pub")
        try:
            pub.wait_started()
            iv = Interval({"mosquitto": broker.pid})
            p = pub.result(timeout)
            done.set()
            s = _get(sq, sub, "raw subscriber", timeout)
            usage = iv.close()
        finally:
            pub.kill()
            sub.join(10)
            if sub.is_alive():
                sub.kill()
    usage["cpu_s"]["publisher"] = p["cpu_s"]
    usage["cpu_s"]["subscriber"] = s["cpu_s"]
    span = (s["t_last"] or p["t_start"]) - p["t_start"]
    out = {
        "qos": qos, "offered_rate": rate, "published": p["n"], "delivered": s["n"],
        "lost": p["n"] - s["n"], "payload_bytes_mean": p["bytes"] / max(1, p["n"]),
        "msg_per_s": s["n"] / span if span > 0 else math.nan,
        "publisher_msg_per_s": p["n"] / (p["t_acked"] - p["t_start"]),
        "seconds": span, **usage, "cpu_pct": _cpu_pct(usage["cpu_s"], usage["wall_s"]),
    }
    if parse:
        lat = s["latency_s"][int(rate or 0):]  # the first second (rate messages) is warm-up
        out["latency"] = latency_summary(lat)
    return out


def measure_bridge(ctx: Any, workdir: Path, *, n_msgs: int, rows: int, window: int,
                   streams: int, size: int, n_bridges: int = 1, shared: bool = False,
                   rate: float | None = None, collect: bool = False, warmup_s: float = 1.0,
                   bridge_args: list[str] | None = None) -> dict[str, Any]:
    """Publisher -> mosquitto -> bridge process(es) -> store; the reader watches the store."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "store"
    target = n_msgs * rows
    with Broker(workdir) as broker:
        extra = list(bridge_args or [])
        if shared:
            extra += ["--shared-group", SHARED_GROUP]
        bridges = [
            BridgeProc(broker, store, f"bench-bridge-{k}", workdir / f"bridge-{k}.log", extra)
            for k in range(n_bridges)
        ]
        pub = None
        try:
            # One at a time: both would otherwise create the store's schema at once.
            for b in bridges:
                b.wait_ready()
            pub = Publisher(ctx, broker, n=n_msgs, qos=1, window=window, streams=streams,
                            size=size, rows=rows, rate=rate, client_id="bench-bridge-pub")
            pub.wait_started()
            pids = {"mosquitto": broker.pid}
            pids.update({f"bridge {k}": b.pid for k, b in enumerate(bridges)})
            iv = Interval(pids)
            expect_s = n_msgs / rate if rate else target / 1000.0
            w = watch_store(store / "twin.sqlite", target, poll_s=0.005 if collect else 0.05,
                            collect=collect, stall_s=30.0, timeout=300.0 + 3 * expect_s)
            usage = iv.close()
            p = pub.result(120.0)
        finally:
            if pub is not None:
                pub.kill()
            stats = [b.terminate() for b in bridges]
    usage["cpu_s"]["publisher"] = p["cpu_s"]
    span = w["t_reached"] - p["t_start"]
    stored = [s.get("ingest", {}).get("stored") for s in stats]
    out: dict[str, Any] = {
        "n_bridges": n_bridges, "shared": shared, "rows_per_msg": rows,
        "offered_rate": rate, "published": p["n"], "target_obs": target,
        "visible_obs": w["count"], "rows_in_store": w["rows"], "dead_letters": w["dead_letters"],
        "complete": w["complete"] and w["rows"] == target,
        "bridge_stored": stored, "bridge_stats": stats,
        "payload_bytes_mean": p["bytes"] / max(1, p["n"]),
        "seconds": span,
        "obs_per_s": w["count"] / span if span > 0 else math.nan,
        "msg_per_s": w["count"] / rows / span if span > 0 else math.nan,
        "steady_obs_per_s": steady_rate(w["trace"], target),
        "publisher_msg_per_s": p["n"] / (p["t_acked"] - p["t_start"]),
        **usage, "cpu_pct": _cpu_pct(usage["cpu_s"], usage["wall_s"]),
    }
    out["cpu_pct_sum"] = sum(v for v in out["cpu_pct"].values() if v is not None)
    if collect:
        t_warm = p["t_start"] + warmup_s
        lat = []
        for seen_at, text in w["seen"]:
            t = datetime.fromisoformat(text).timestamp()
            if t >= t_warm:
                lat.append(seen_at - t)
        out["latency"] = latency_summary(lat)
        out["latency_timeline"] = latency_timeline(w["seen"], p["t_start"])
        window_s = w["t_reached"] - t_warm
        out["stored_rate_after_warmup"] = len(lat) / window_s if window_s > 0 else math.nan
    return out


def measure_ingest(workdir: Path, *, n_msgs: int, rows: int, streams: int, size: int,
                   batch: int = 500) -> dict[str, Any]:
    """The bridge's Ingestor alone (no broker): ``handle_many`` on batches of ``batch``
    messages, each batch validated and committed (WAL, synchronous=FULL) before the next."""
    from _common import contention_pct, cpu_stall_us

    from hardware_bridge.runner import BridgeOptions, make_ingestor
    from twin.store import Store

    if rows > 1:
        msgs = [batch_message(i, streams, rows) for i in range(n_msgs)]
    else:
        msgs = [obs_message(i, streams, size) for i in range(n_msgs)]
    store = Store.open(workdir / "store")
    try:
        ing = make_ingestor(store, BridgeOptions(store=workdir / "store"), on_alert=lambda e: None)
        received = datetime.now(UTC) + timedelta(seconds=1)
        ing.handle_many([(t, p, received) for t, p in msgs[:10]])  # warm-up (imports, caches)
        todo = msgs[10:]
        stall0, cpu0, t0 = cpu_stall_us(), self_cpu_s(), time.perf_counter()
        for k in range(0, len(todo), batch):
            ing.handle_many([(t, p, received) for t, p in todo[k:k + batch]])
        wall = time.perf_counter() - t0
        cpu = self_cpu_s() - cpu0
        stored = store.count_observations()
    finally:
        store.close()
    n = len(todo)
    return {"rows_per_msg": rows, "messages": n, "batch": batch, "seconds": wall,
            "msg_per_s": n / wall, "obs_per_s": n * rows / wall, "us_per_msg": 1e6 * wall / n,
            "cpu_pct_one_core": 100.0 * cpu / wall, "cpu_us_per_msg": 1e6 * cpu / n,
            "rows_in_store": stored,
            "complete": stored == n_msgs * rows, "target_obs": n_msgs * rows,
            "contention_pct": contention_pct(stall0, wall), "cpu_pct": {"bridge (in-process)":
                                                                        100.0 * cpu / wall}}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------
PHASES = ("raw", "e2e", "latency", "ingest", "batched", "shared")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_bridge.py",
        description="Hardware-bridge benchmark against mosquitto: raw MQTT ceiling, end-to-end "
        "throughput and latency, batched devices, two bridges on a shared subscription.",
    )
    p.add_argument("--quick", action="store_true",
                   help="small counts (about a minute): checks that the benchmark runs")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write the JSON here (default: bench/results/)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    p.add_argument("--repeat", type=int, default=1,
                   help="repeats of each measurement; the table shows the median (default 1)")
    p.add_argument("--messages", type=int, default=50_000,
                   help="messages of the raw ceilings and of the saturated end-to-end run")
    p.add_argument("--shared-messages", type=int, default=50_000,
                   help="messages of each shared-subscription run (one bridge, two bridges)")
    p.add_argument("--batch-messages", type=int, default=2_000,
                   help="messages of the batched run (default 2,000)")
    p.add_argument("--rows-per-batch", type=int, default=100,
                   help="observations per batched message (dataArray rows, default 100)")
    p.add_argument("--latency-seconds", type=float, default=20.0,
                   help="duration of each fixed-rate latency run (s, default 20)")
    p.add_argument("--latency-rate-frac", type=float, default=0.5,
                   help="offered rate of the latency runs as a fraction of the bridge's "
                   "saturated throughput (or the QoS 1 ceiling if lower) measured in this "
                   "run (default 0.5)")
    p.add_argument("--latency-rate", type=float, default=None,
                   help="offered rate of the latency runs in msg/s (overrides the fraction; "
                   "default when neither was measured: 1,450)")
    p.add_argument("--window", type=int, default=200,
                   help="publisher's bound on messages awaiting PUBACK / socket write (200)")
    p.add_argument("--streams", type=int, default=50, help="datastreams (stations) used (50)")
    p.add_argument("--payload-bytes", type=int, default=200,
                   help="size of a one-observation JSON message (200)")
    p.add_argument("--bridge-args", default="",
                   help="extra options for every bridge process, e.g. "
                   "\"--batch-max 1000 --batch-wait-s 0.01\" (default: the runner's defaults)")
    a = p.parse_args(argv)
    if a.quick:
        a.messages = min(a.messages, 3_000)
        a.shared_messages = min(a.shared_messages, 3_000)
        a.batch_messages = min(a.batch_messages, 60)
        a.latency_seconds = min(a.latency_seconds, 3.0)
    a.phases = [x.strip() for x in a.phases.split(",") if x.strip()]
    bad = [x for x in a.phases if x not in PHASES]
    if bad:
        p.error(f"--phases: unknown {bad}; choose from {','.join(PHASES)}")
    if a.repeat < 1:
        p.error("--repeat must be >= 1")
    return a


def _median(runs: list[dict[str, Any]], *keys: str) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, int | float) and math.isfinite(v):
            vals.append(float(v))
    return statistics.median(vals) if vals else math.nan


def _cpu_us_per_msg(runs: list[dict[str, Any]], who: str, n_key: str) -> float:
    """Median CPU microseconds per message of the processes whose name starts with ``who``."""
    vals = []
    for r in runs:
        cpu = [v for k, v in r["cpu_s"].items() if k.startswith(who) and v is not None]
        n = r.get(n_key) or 0
        if cpu and n:
            vals.append(1e6 * sum(cpu) / n / r.get("rows_per_msg", 1))
    return statistics.median(vals) if vals else math.nan


def explanations(res: dict[str, list[dict[str, Any]]], summary: dict[str, Any],
                 args: argparse.Namespace, machine: dict[str, Any]) -> list[str]:
    """One note per missed target, with the figures that explain it."""
    out = []
    cores = machine.get("affinity_cpus") or machine.get("cpu_count") or 1
    if summary.get("e2e_target_met") is False:
        r = res["bridge_saturated"]
        bridge_us = _cpu_us_per_msg(r, "bridge", "visible_obs")
        sub_us = (_cpu_us_per_msg(res["raw_qos1"], "subscriber", "delivered")
                  if "raw_qos1" in res else math.nan)
        ing_us = (_median(res["ingest_only"], "cpu_us_per_msg") if "ingest_only" in res
                  else math.nan)
        out.append(
            f"end to end missed: {summary['e2e_fraction_of_ceiling']:.0%} of the QoS 1 ceiling "
            f"(target 70 %). The bridge process spent {bridge_us:.0f} us CPU per message and ran "
            f"at {_median(r, 'cpu_pct', 'bridge 0'):.0f} % of one core. The ingest alone "
            f"(validation + commit, no MQTT) costs {ing_us:.0f} us, leaving "
            f"{bridge_us - ing_us:.0f} us for the MQTT side (paho receive, hand-off to the "
            f"worker thread, manual PUBACK; a bare paho subscriber spends {sub_us:.0f} us). "
            f"Below 100 % of a core, the rest is waiting for a CPU (contention "
            f"{_median(r, 'contention_pct'):.0f} %) and for the GIL between its threads")
    if summary.get("latency_target_met") is False:
        r = res["bridge_paced"]
        raw = res.get("raw_qos1_paced")
        raw_txt = (f"; the broker path alone at the same rate: p99 "
                   f"{_median(raw, 'latency', 'p99_ms'):.1f} ms" if raw else "")
        out.append(
            f"latency missed: p99 {summary['latency_p99_ms']:.0f} ms (target < 100 ms) at "
            f"{summary['latency_rate_msg_s']:,.0f} msg/s with the bridge at "
            f"{_median(r, 'cpu_pct', 'bridge 0'):.0f} % of a core and contention "
            f"{_median(r, 'contention_pct'):.0f} %{raw_txt}. The p50 is mostly the runner's "
            "batch wait (--batch-wait-s, default 5 ms); the tail follows the CPU contention "
            "(per-second p99 in latency_timeline of the JSON)")
    if summary.get("shared_target_met") is False:
        r2, r1 = res["shared_2"], res["shared_1"]
        b = [_median(r2, "cpu_pct", f"bridge {k}") for k in (0, 1)]
        tot = _median(r2, "cpu_pct_sum")
        out.append(
            f"shared subscription missed: {summary['shared_ratio']:.2f} x (target 1.6 x). One "
            f"bridge ran at {_median(r1, 'cpu_pct', 'bridge 0'):.0f} % of a core, each of two at "
            f"{b[0]:.0f} % / {b[1]:.0f} %; broker + publisher + bridges + reader used "
            f"{tot:.0f} % of the {100 * cores} % the {cores} cores offer while some task waited "
            f"for a CPU {_median(r2, 'contention_pct'):.0f} % of the time: the second bridge "
            "found no idle core (the broker, the publisher and other work on the machine "
            "share them), so the two mostly split the CPU one had")
    return out


def _ok(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def main(argv: list[str] | None = None) -> int:
    import _common as C

    args = parse_args(argv)
    if not Path(MOSQUITTO).is_file():
        print(f"mosquitto not found at {MOSQUITTO} (apt-get install mosquitto, or set "
              "TWIN_MOSQUITTO)", file=sys.stderr)
        return 2
    try:
        import paho.mqtt  # noqa: F401
    except ImportError:
        print("paho-mqtt is not installed (pip install 'paho-mqtt>=2')", file=sys.stderr)
        return 2
    ctx = mp.get_context("spawn")
    notes: list[str] = []
    busy = C.busy_warning()
    if busy:
        notes.append(busy)
    machine = C.machine_info()
    bridge_extra = shlex.split(args.bridge_args)
    common = {"window": args.window, "streams": args.streams, "size": args.payload_bytes}
    slim_common = {"streams": args.streams, "size": args.payload_bytes}
    res: dict[str, list[dict[str, Any]]] = {}
    stall0 = C.cpu_stall_us()
    t_run = time.time()

    def rep(name: str, fn) -> list[dict[str, Any]]:  # noqa: ANN001
        runs = []
        for k in range(args.repeat):
            print(f"[bench_bridge] {name} ({k + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
            t = time.time()
            runs.append(fn(k))
            print(f"[bench_bridge]   done in {time.time() - t:.1f} s", file=sys.stderr, flush=True)
        res[name] = runs
        return runs

    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        work = Path(tmp)
        ceiling_q1 = math.nan
        if "raw" in args.phases:
            rep("raw_qos1", lambda k: measure_raw(ctx, work / f"raw1-{k}", qos=1,
                                                  n=args.messages, **common))
            rep("raw_qos0", lambda k: measure_raw(ctx, work / f"raw0-{k}", qos=0,
                                                  n=args.messages, **common))
            ceiling_q1 = _median(res["raw_qos1"], "msg_per_s")
        saturated = math.nan
        if "e2e" in args.phases:
            rep("bridge_saturated", lambda k: measure_bridge(
                ctx, work / f"e2e-{k}", n_msgs=args.messages, rows=1, bridge_args=bridge_extra,
                **common))
            saturated = _median(res["bridge_saturated"], "msg_per_s")
        # "Below saturation" = below the bridge's own saturation when it was measured.
        if args.latency_rate:
            rate, basis = args.latency_rate, "--latency-rate"
        elif math.isfinite(saturated):
            rate = args.latency_rate_frac * min(saturated, ceiling_q1 if math.isfinite(
                ceiling_q1) else saturated)
            basis = f"{args.latency_rate_frac:g} x the bridge's saturated throughput"
        elif math.isfinite(ceiling_q1):
            rate, basis = args.latency_rate_frac * ceiling_q1, (
                f"{args.latency_rate_frac:g} x the raw QoS 1 ceiling")
        else:
            rate, basis = 1450.0, "default (no ceiling measured)"
        n_lat = max(10, int(rate * args.latency_seconds))
        if "raw" in args.phases and "latency" in args.phases:
            rep("raw_qos1_paced", lambda k: measure_raw(
                ctx, work / f"rawlat-{k}", qos=1, n=n_lat, rate=rate, parse=True, **common))
        if "latency" in args.phases:
            rep("bridge_paced", lambda k: measure_bridge(
                ctx, work / f"lat-{k}", n_msgs=n_lat, rows=1, rate=rate, collect=True,
                bridge_args=bridge_extra, **common))
        if "ingest" in args.phases:
            rep("ingest_only", lambda k: measure_ingest(
                work / f"ing-{k}", n_msgs=min(args.messages, 20_000), rows=1, **slim_common))
            rep("ingest_only_batched", lambda k: measure_ingest(
                work / f"ingb-{k}", n_msgs=min(args.batch_messages, 500),
                rows=args.rows_per_batch, batch=50, **slim_common))
        if "batched" in args.phases:
            rep("bridge_batched", lambda k: measure_bridge(
                ctx, work / f"batch-{k}", n_msgs=args.batch_messages, rows=args.rows_per_batch,
                bridge_args=bridge_extra, **common))
        if "shared" in args.phases:
            # One observation per message, then batched devices: with batches the bridges'
            # per-observation work, not the broker's per-message work, bounds the rate, which is
            # what a second bridge can share.
            variants = (("shared", args.shared_messages, 1),
                        ("shared_batched", args.batch_messages, args.rows_per_batch))
            for prefix, n_msgs, rows in variants:
                for k in range(args.repeat):  # interleaved so both see similar contention
                    for nb in (1, 2):
                        name = f"{prefix}_{nb}"
                        print(f"[bench_bridge] {name} bridge(s) ({k + 1}/{args.repeat}) ...",
                              file=sys.stderr, flush=True)
                        r = measure_bridge(ctx, work / f"{prefix}{nb}-{k}", n_msgs=n_msgs, rows=rows,
                                           n_bridges=nb, shared=True, bridge_args=bridge_extra,
                                           **common)
                        res.setdefault(name, []).append(r)
    wall = time.time() - t_run
    contention = C.contention_pct(stall0, wall)

    # ------------------------------------------------------------- table
    cols = ["measurement", "load", "target", "msg/s", "obs/s", "p50 ms", "p99 ms",
            "vs QoS1 ceiling", "contention %", "met"]
    rows: list[list[Any]] = []
    summary: dict[str, Any] = {"ceiling_qos1_msg_s": ceiling_q1, "latency_rate_msg_s": rate,
                               "latency_rate_basis": basis}

    def cont(name: str) -> float:
        return _median(res.get(name, []), "contention_pct")

    if "raw_qos1" in res:
        q0 = _median(res["raw_qos0"], "msg_per_s")
        summary["ceiling_qos0_msg_s"] = q0
        rows.append(["raw ceiling QoS 1", f"{args.messages:,} x {args.payload_bytes} B", "-",
                     ceiling_q1, ceiling_q1, None, None, 1.0, cont("raw_qos1"), "-"])
        rows.append(["raw ceiling QoS 0", f"{args.messages:,} x {args.payload_bytes} B", "-",
                     q0, q0, None, None, q0 / ceiling_q1, cont("raw_qos0"), "-"])
    if "raw_qos1_paced" in res:
        r = res["raw_qos1_paced"]
        rows.append(["raw QoS 1 latency", f"{rate:,.0f} msg/s offered", "(reference)",
                     _median(r, "msg_per_s"), _median(r, "msg_per_s"),
                     _median(r, "latency", "p50_ms"), _median(r, "latency", "p99_ms"), None,
                     cont("raw_qos1_paced"), "-"])
    if "bridge_saturated" in res:
        r = res["bridge_saturated"]
        m = _median(r, "msg_per_s")
        frac = m / ceiling_q1 if math.isfinite(ceiling_q1) else math.nan
        met = None if math.isnan(frac) else frac >= TARGET_E2E_FRACTION
        summary["e2e_msg_s"] = m
        summary["e2e_fraction_of_ceiling"] = frac
        summary["e2e_target_met"] = met
        rows.append(["bridge, 1 obs/msg, saturated", f"{args.messages:,} msgs QoS 1",
                     ">= 70 % of ceiling", m, m, None, None, frac, cont("bridge_saturated"),
                     _ok(met)])
    if "bridge_paced" in res:
        r = res["bridge_paced"]
        p99 = _median(r, "latency", "p99_ms")
        met = p99 < TARGET_P99_MS if math.isfinite(p99) else None
        got = _median(r, "stored_rate_after_warmup")
        summary["latency_p50_ms"] = _median(r, "latency", "p50_ms")
        summary["latency_p99_ms"] = p99
        summary["latency_target_met"] = met
        rows.append(["bridge, 1 obs/msg, below saturation", f"{rate:,.0f} msg/s offered",
                     "p99 < 100 ms", got, got, _median(r, "latency", "p50_ms"), p99,
                     got / ceiling_q1 if math.isfinite(ceiling_q1) else None,
                     cont("bridge_paced"), _ok(met)])
    if "ingest_only" in res:
        r = res["ingest_only"]
        m = _median(r, "msg_per_s")
        summary["ingest_only_msg_s"] = m
        summary["ingest_only_us_per_msg"] = _median(r, "us_per_msg")
        rows.append(["ingest only (no MQTT), 1 obs/msg", f"batches of {r[0]['batch']}",
                     "(decomposition)", m, m, None, None,
                     m / ceiling_q1 if math.isfinite(ceiling_q1) else None,
                     cont("ingest_only"), "-"])
        r = res["ingest_only_batched"]
        summary["ingest_only_batched_obs_s"] = _median(r, "obs_per_s")
        rows.append([f"ingest only (no MQTT), {args.rows_per_batch} obs/msg",
                     f"batches of {r[0]['batch']}", "(decomposition)", _median(r, "msg_per_s"),
                     _median(r, "obs_per_s"), None, None, None, cont("ingest_only_batched"),
                     "-"])
    if "bridge_batched" in res:
        r = res["bridge_batched"]
        obs = _median(r, "obs_per_s")
        met = obs >= TARGET_BATCHED_OBS_S
        summary["batched_obs_s"] = obs
        summary["batched_target_met"] = met
        rows.append([f"bridge, {args.rows_per_batch} obs/msg (dataArray)",
                     f"{args.batch_messages:,} msgs QoS 1", ">= 20,000 obs/s",
                     _median(r, "msg_per_s"), obs, None, None, None, cont("bridge_batched"),
                     _ok(met)])
    if "shared_1" in res:
        one, two = _median(res["shared_1"], "msg_per_s"), _median(res["shared_2"], "msg_per_s")
        ratio = two / one if one > 0 else math.nan
        met = ratio >= TARGET_SHARED_RATIO if math.isfinite(ratio) else None
        summary.update(shared_1_msg_s=one, shared_2_msg_s=two, shared_ratio=ratio,
                       shared_target_met=met)
        rows.append(["shared subscription, 1 bridge", f"{args.shared_messages:,} msgs QoS 1",
                     "-", one, one, None, None,
                     one / ceiling_q1 if math.isfinite(ceiling_q1) else None, cont("shared_1"),
                     "-"])
        rows.append(["shared subscription, 2 bridges", f"{args.shared_messages:,} msgs QoS 1",
                     f">= 1.6 x one (got {ratio:.2f} x)", two, two, None, None,
                     two / ceiling_q1 if math.isfinite(ceiling_q1) else None, cont("shared_2"),
                     _ok(met)])

    if "shared_batched_1" in res:
        one = _median(res["shared_batched_1"], "obs_per_s")
        two = _median(res["shared_batched_2"], "obs_per_s")
        ratio = two / one if one > 0 else math.nan
        met = ratio >= TARGET_SHARED_RATIO if math.isfinite(ratio) else None
        summary.update(shared_batched_1_obs_s=one, shared_batched_2_obs_s=two,
                       shared_batched_ratio=ratio, shared_batched_target_met=met)
        load = f"{args.batch_messages:,} msgs x {args.rows_per_batch} obs QoS 1"
        rows.append(["shared subscription, 1 bridge, batched", load, "-",
                     _median(res["shared_batched_1"], "msg_per_s"), one, None, None, None,
                     cont("shared_batched_1"), "-"])
        rows.append(["shared subscription, 2 bridges, batched", load,
                     f">= 1.6 x one (got {ratio:.2f} x)", _median(res["shared_batched_2"], "msg_per_s"),
                     two, None, None, None, cont("shared_batched_2"), _ok(met)])

    # CPU use per process, % of one core over each measured interval.
    cpu_cols = ["measurement", "mosquitto %", "bridge(s) %", "publisher %", "subscriber %",
                "reader %", "sum %", "contention %"]
    cpu_rows = []
    for name, runs in res.items():
        r = runs[len(runs) // 2]
        c = r["cpu_pct"]
        bridges = [v for k, v in c.items() if k.startswith("bridge ") and v is not None]
        vals = [v for v in c.values() if v is not None]
        cpu_rows.append([name, c.get("mosquitto"), " + ".join(f"{b:.0f}" for b in bridges) or "-",
                         c.get("publisher"), c.get("subscriber"), c.get("bench (reader)"),
                         sum(vals), r.get("contention_pct")])

    explain = explanations(res, summary, args, machine)
    problems = []
    for name, runs in res.items():
        for r in runs:
            if name.startswith("raw") and r["lost"]:
                problems.append(f"{name}: {r['lost']} of {r['published']} messages not delivered")
            if not name.startswith("raw") and not r["complete"]:
                problems.append(
                    f"{name}: {r['rows_in_store']} of {r['target_obs']} observations in the store "
                    f"(dead letters {r.get('dead_letters')}); bridge stats "
                    f"{r.get('bridge_stored')}")
    notes += [
        f"cores: {machine.get('affinity_cpus') or machine.get('cpu_count')}; broker, publisher, "
        "bridge(s) and reader share them. contention % = share of the interval during which "
        "some task waited for a CPU (Linux PSI); "
        f"over the whole run: {contention:.0f} %" if contention is not None else
        "CPU contention: Linux PSI unavailable",
        "msg/s = observations visible in the store (or delivered, raw) / (last visible - first "
        "publish); latency = first seen by a reader polling every 5 ms - phenomenonTime "
        "stamped at publish (overestimates by ~2.5 ms), first second left out",
        f"bridge: python -m hardware_bridge.runner {' '.join(bridge_extra) or '(defaults)'}; "
        "one store (SQLite WAL, synchronous=FULL) for all bridges",
        *explain,
        *problems,
    ]
    C.print_table("hardware bridge vs mosquitto (targets of issue 4)", cols, rows, notes)
    C.print_table("CPU use per process (% of one core over each measured interval)",
                  cpu_cols, cpu_rows)

    def slim(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("trace", "seen")}

    payload = {
        "benchmark": "bridge",
        "args": {k: v for k, v in vars(args).items()},
        "machine": machine,
        "broker": {"binary": MOSQUITTO, "config": list(Broker.CONFIG)},
        "targets": {"e2e_fraction_of_qos1_ceiling": TARGET_E2E_FRACTION,
                    "p99_ms_below_saturation": TARGET_P99_MS,
                    "batched_obs_per_s": TARGET_BATCHED_OBS_S,
                    "shared_ratio": TARGET_SHARED_RATIO},
        "summary": summary,
        "cpu_contention_pct": contention,
        "wall_s": wall,
        "notes": notes,
        "results": {k: [slim(r) for r in v] for k, v in res.items()},
    }
    path = C.write_results("bridge-quick" if args.quick else "bridge", payload, args.out)
    print(f"results: {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
