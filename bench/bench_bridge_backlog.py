"""Draining a backlog: the bridge's resident memory and rate with its own bound on unacknowledged messages.

Issue 16: after an outage the broker holds a backlog for the bridge's persistent session; Debian's
mosquitto 2.0 does not hold the MQTT 5 Receive Maximum while flushing it, so a bridge relying on it can
pull the whole backlog into memory. This benchmark, against a real ``mosquitto`` started on 127.0.0.1 at
a free port (the shipped configuration, :data:`hardware_bridge.broker.CONFIG`):

1. registers the bridge's persistent session (``--client-id``) and disconnects it;
2. publishes ``--messages`` (200,000) QoS-1 observations (one per message, 50 streams) into the backlog;
3. starts the bridge (``python -m hardware_bridge.runner``, defaults: twin link, alarm lane, batch 500)
   and times it until every observation is in the store (a reader polls ``observations`` every 50 ms).

Reported per run: drain rate (observations / (last stored - bridge ready)), the bridge's peak resident
memory (``VmHWM`` of /proc/<pid>/status, read just before it is stopped), its RSS sampled every 50 ms
(max), the peak of messages held unacknowledged (``unacked_peak`` of the bridge's final stats; absent
in code before the bound) and the broker's RSS with the backlog queued.

``--max-unacked N`` passes the bound to the bridge; ``--max-unacked 0`` passes nothing (the bridge's
default, or code that has no such option: run it with ``PYTHONPATH`` at an older checkout to measure
"before"). ``--label`` names the run in the table/JSON.

Results: a table on stdout and JSON in ``bench/results/bridge-backlog-<UTC time>.json`` (or ``--out``).
Never collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hardware_bridge.broker import LocalBroker

BENCH_DIR = Path(__file__).resolve().parent
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def message(i: int, streams: int = 50) -> tuple[str, bytes]:
    """Observation ``i``: stream ``i % streams``, one minute apart per stream (~190 bytes)."""
    st = f"WL-{i % streams:03d}"
    k = i // streams
    t = (T0 + timedelta(seconds=60 * k)).isoformat()
    return (f"sz/v1/water_level/{st}/obs",
            json.dumps({"datastream": f"{st}/water_level", "phenomenonTime": t,
                        "result": round(1 + 0.001 * (k % 1000), 3), "unit": "m", "seq": k}).encode())


def proc_kb(pid: int, field: str) -> int | None:
    """``field`` (VmRSS, VmHWM) of /proc/<pid>/status in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def register_session(host: str, port: int, client_id: str) -> None:
    """Connect once with the bridge's client id (persistent session, its subscriptions), then leave."""
    from hardware_bridge.sources import OBS_FILTER, STATUS_FILTER
    from hardware_bridge.sources.mqtt import MqttConfig, MqttSource

    src = MqttSource(MqttConfig(host=host, port=port, client_id=client_id,
                                topics=(OBS_FILTER, STATUS_FILTER)), lambda msgs: [None] * len(msgs)).start()
    src.wait_subscribed()
    src.stop(drain_s=0.0)


def publish_backlog(host: str, port: int, n: int) -> float:
    from hardware_bridge.sources.mqtt import MqttPublisher

    t = time.perf_counter()
    with MqttPublisher(host, port, window=1000) as pub:
        for i in range(n):
            pub.publish(*message(i))
    return time.perf_counter() - t


def count(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def run_once(n: int, max_unacked: int, workdir: Path, label: str, timeout_s: float) -> dict[str, Any]:
    broker = LocalBroker(workdir / "broker").start()
    client_id = "bench-backlog"
    store = workdir / "store"
    try:
        register_session(broker.host, broker.port, client_id)
        pub_s = publish_backlog(broker.host, broker.port, n)
        broker_kb = proc_kb(broker.pid, "VmRSS")
        args = [sys.executable, "-m", "hardware_bridge.runner", "--broker", broker.address,
                "--store", str(store), "--client-id", client_id]
        if max_unacked:
            args += ["--max-unacked", str(max_unacked)]
        log = open(workdir / "bridge.log", "wb")  # noqa: SIM115
        # cwd: not the checkout, so `-m` imports the hardware_bridge on PYTHONPATH / installed
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, cwd=workdir)
        ready = json.loads(proc.stdout.readline())
        t_ready = time.perf_counter()
        rss_max = 0
        db = store / "twin.sqlite"
        done = 0
        deadline = t_ready + timeout_s
        while time.perf_counter() < deadline:
            rss_max = max(rss_max, proc_kb(proc.pid, "VmRSS") or 0)
            done = count(db)
            if done >= n:
                break
            time.sleep(0.05)
        t_done = time.perf_counter()
        hwm = proc_kb(proc.pid, "VmHWM")
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        log.close()
        stopped = next((json.loads(x) for x in reversed(out.splitlines()) if '"stopped"' in x), {})
        stats = stopped.get("stats", {})
        return {"label": label, "messages": n, "stored": done, "max_unacked": max_unacked or None,
                "publish_s": round(pub_s, 1), "drain_s": round(t_done - t_ready, 2),
                "msg_per_s": round(done / (t_done - t_ready)), "peak_rss_mb": round((hwm or 0) / 1024, 1),
                "sampled_rss_max_mb": round(rss_max / 1024, 1),
                "unacked_peak": stats.get("unacked_peak"), "pauses": stats.get("pauses"),
                "broker_rss_mb_with_backlog": round((broker_kb or 0) / 1024, 1),
                "bridge_pythonpath": os.environ.get("PYTHONPATH", ""), "ready": ready.get("event")}
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--max-unacked", type=int, default=1000, help="0: pass no --max-unacked to the bridge")
    p.add_argument("--label", default="")
    p.add_argument("--timeout-s", type=float, default=600.0)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmp:
        res = run_once(a.messages, a.max_unacked, Path(tmp), a.label or f"max_unacked={a.max_unacked}",
                       a.timeout_s)
    cols = ("label", "messages", "stored", "drain_s", "msg_per_s", "peak_rss_mb", "sampled_rss_max_mb",
            "unacked_peak", "pauses", "broker_rss_mb_with_backlog")
    print(" | ".join(cols))
    print(" | ".join(str(res[c]) for c in cols))
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"bridge-backlog-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    res["utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
