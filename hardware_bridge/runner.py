"""The bridge process: MQTT (and optionally HTTP) -> Ingestor -> store, ack after commit.

Two MQTT subscriptions share the ingestor: the normal one (every kind) and the
alarm lane (alarm kinds only, :mod:`hardware_bridge.sources.alarm_lane`), so an
alarm is stored ahead of a backlog of readings (``--no-alarm-lane`` turns it
off). After each commit the new observations go through the
:class:`~hardware_bridge.twin_link.TwinLink` (threshold alerts, confined-space
alarms, gridded rain, levels); its events land in the store's event log
(``--no-twin-link`` turns it off; ``--alert-config`` replaces the packaged
``alerts.toml``).

Run it as ``python -m hardware_bridge.runner --broker HOST:PORT --store DIR`` or
``twin bridge run`` (same options). It prints one JSON line
``{"event": "ready", ...}`` on stdout once subscribed, a ``{"event": "stats", ...}``
line every ``--stats-every`` seconds, and ``{"event": "stopped", "stats": ...}``
on SIGTERM / SIGINT, after storing and acknowledging what it had received.

Killing it (even ``kill -9``) loses nothing: a message is acknowledged to the
broker only after its batch is committed, and the persistent MQTT session
(stable ``--client-id``) makes the broker redeliver the rest on restart.
Confined-space permits and who is inside are rebuilt from the stored permit
events on start-up, so the "someone inside while the gas is bad" alarm
survives a restart.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hardware_bridge.validate import MAX_PAYLOAD_BYTES
from twin.cli.store_target import StoreTarget

DEFAULT_CLIENT_ID = "twin-bridge"


@dataclass
class BridgeOptions:
    """Options of :func:`run_bridge` (see ``twin bridge run --help``)."""

    broker: str = "127.0.0.1:1883"
    store: Path | str = Path("twin-store")  # a directory (SQLite) or a postgresql:// URL (kept a str)
    client_id: str = DEFAULT_CLIENT_ID
    topics: Sequence[str] = ()
    shared_group: str | None = None
    session_expiry_s: int = 86_400
    receive_maximum: int = 1000
    max_unacked: int = 1000
    batch_max: int = 500
    batch_wait_s: float = 0.005
    watermark_s: float = 300.0
    stale_after_s: float = 900.0
    skew_tolerance_s: float = 5.0
    max_future_skew_s: float = 86_400.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    stale_check_s: float = 30.0
    http: str | None = None
    token: str | None = None
    stats_every_s: float = 0.0
    alarm_lane: bool = True
    twin_link: bool = True
    alert_config: Path | None = None
    write_lock: bool = True
    ingestor_kw: dict[str, Any] = field(default_factory=dict)


def make_twin_link(store: Any, opts: BridgeOptions):
    """The :class:`~hardware_bridge.twin_link.TwinLink` of the options (alert config, confined
    spaces from its ``[confined] spaces``), with its confined-space permits and occupancy
    rebuilt from the stored events (:meth:`~hardware_bridge.twin_link.TwinLink.restore_permits`)
    and warmed up with the recent stored data (each kind back by its longest alert window,
    the latest gas reading of every confined space;
    :meth:`~hardware_bridge.twin_link.TwinLink.warm_up`)."""
    from hardware_bridge.fusion.alerts import AlertEngine, load_config
    from hardware_bridge.fusion.confined import PermitBook
    from hardware_bridge.twin_link import TwinLink, confined_spaces_from_config

    cfg = load_config(opts.alert_config)
    link = TwinLink(store, alerts=AlertEngine(cfg), permits=PermitBook(cfg),
                    confined_spaces=confined_spaces_from_config(cfg))
    link.warm_up()
    return link


def make_ingestor(
    store: Any, opts: BridgeOptions, on_alert: Callable[..., Any] | None = None,
    source: str = "mqtt", on_stored: Callable[..., Any] | None = None,
):
    """The :class:`~hardware_bridge.ingest.Ingestor` the options describe.

    Alerts (stale streams, clock skew, devices offline) go to ``on_alert``;
    by default they are kept in the store's live event log. New observations
    go to ``on_stored``; by default (``opts.twin_link``) to a new
    :func:`make_twin_link`.
    """
    from hardware_bridge.ingest import Ingestor

    if on_alert is None:
        def on_alert(event: Any) -> None:
            store.put_event(event)

    if on_stored is None and opts.twin_link:
        on_stored = make_twin_link(store, opts).on_stored
    kw = {"source": source, "on_stored": on_stored, **opts.ingestor_kw}
    return Ingestor(
        store,
        watermark_s=opts.watermark_s,
        stale_after_s=opts.stale_after_s,
        skew_tolerance_s=opts.skew_tolerance_s,
        max_future_skew_s=opts.max_future_skew_s,
        max_payload_bytes=opts.max_payload_bytes,
        on_alert=on_alert,
        **kw,
    )


def _emit(rec: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(rec, default=str) + "\n")
    sys.stdout.flush()


def run_bridge(
    opts: BridgeOptions,
    stop: threading.Event | None = None,
    emit: Callable[[dict[str, Any]], None] = _emit,
) -> dict[str, Any]:
    """Run until ``stop`` is set (or SIGTERM/SIGINT in the main thread); return final stats."""
    from hardware_bridge.sources import OBS_FILTER, STATUS_FILTER, IngestorSink
    from hardware_bridge.sources.alarm_lane import PrioritySink, start_alarm_lane
    from hardware_bridge.sources.mqtt import MqttConfig, MqttSource, parse_broker
    from hardware_bridge.write_lock import LockedWrites
    from twin.store import Store

    host, port = parse_broker(opts.broker)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    store = Store.open(opts.store)
    # bridges sharing a SQLite store take turns through a flock instead of SQLite's sleeping
    # busy handler (hardware_bridge.write_lock); on PostgreSQL every write transaction takes the
    # server's advisory lock (twin.store_pg.WRITE_LOCK_KEY), which also serves bridges on other hosts
    writes = LockedWrites(store) if opts.write_lock and store.backend == "sqlite" else store
    http = alarm = None
    try:
        link = make_twin_link(writes, opts) if opts.twin_link else None
        ingestor = make_ingestor(writes, opts, on_stored=link.on_stored if link else None)
        sink = PrioritySink(IngestorSink(ingestor))  # the alarm lane goes first
        cfg = MqttConfig(
            host=host,
            port=port,
            client_id=opts.client_id,
            topics=tuple(opts.topics) or (OBS_FILTER, STATUS_FILTER),
            shared_group=opts.shared_group,
            session_expiry_s=opts.session_expiry_s,
            receive_maximum=opts.receive_maximum,
            max_unacked=opts.max_unacked,
            batch_max=opts.batch_max,
            batch_wait_s=opts.batch_wait_s,
        )
        source = MqttSource(cfg, sink.normal).start()
        alarm = start_alarm_lane(cfg, sink) if opts.alarm_lane else None
        if opts.http:
            from hardware_bridge.sources.http import HttpServer
            from hardware_bridge.sources.mqtt import parse_broker as _hp

            hh, hp = _hp(opts.http, default_port=8080)
            http = HttpServer(sink, hh, hp, link=link, token=opts.token).start()
        for src in (source, alarm):
            while src is not None and not src.subscribed.wait(0.2):
                if stop.is_set():
                    break
        emit({"event": "ready", "pid": os.getpid(), "client_id": cfg.client_id,
              "filters": cfg.filters(), "store": str(getattr(store, "url", store.root)),
              "alarm_filters": alarm.config.filters() if alarm else [],
              "twin_link": link is not None, "http": http.url if http else None,
              "permit_events_restored": link.stats["permit_events_restored"] if link else 0})
        last = last_stale = time.monotonic()
        while not stop.wait(0.2):
            now = time.monotonic()
            if opts.stale_check_s and now - last_stale >= opts.stale_check_s:
                last_stale = now
                ingestor.check_stale()
                if link is not None:
                    link.check(datetime.now(UTC))
            if opts.stats_every_s and now - last >= opts.stats_every_s:
                last = now
                emit({"event": "stats", "stats": source.stats.as_dict(),
                      "ingest": dict(ingestor.totals), "connected": source.connected.is_set(),
                      **_extra_stats(alarm, link)})
        if http is not None:
            http.stop()
            http = None
        source.stop()
        lane, alarm = alarm, None
        if lane is not None:
            lane.stop()
        final = {**source.stats.as_dict(), "ingest": dict(ingestor.totals),
                 **_extra_stats(lane, link)}
        emit({"event": "stopped", "stats": final})
        return final
    finally:
        if http is not None:
            http.stop()
        if alarm is not None:
            alarm.stop(drain_s=0.0)
        store.close()
        if writes is not store:
            writes.lock.close()


def _extra_stats(alarm: Any, link: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if alarm is not None:
        out["alarm_lane"] = alarm.stats.as_dict()
    if link is not None:
        out["twin_link"] = dict(link.stats)
    return out


def bridge_options(f):
    """The click options of ``twin bridge run`` (shared with ``python -m hardware_bridge.runner``)."""
    opts = [
        click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT",
                     help="MQTT broker to subscribe to."),
        click.option("--store", "store", type=StoreTarget(), required=True,
                     help="Store directory (created if missing) or postgresql://user@host/db[?files=DIR] URL "
                          "(several bridges, on several hosts, may share one database)."),
        click.option("--client-id", default=DEFAULT_CLIENT_ID, show_default=True,
                     help="MQTT client id; keep it stable so the broker keeps this bridge's "
                          "session and redelivers unacknowledged messages after a restart."),
        click.option("--topic", "topics", multiple=True, metavar="FILTER",
                     help="Topic filter (repeatable). Default: sz/v1/+/+/obs and sz/v1/+/+/status."),
        click.option("--shared-group", default=None, metavar="NAME",
                     help="Join an MQTT 5 shared subscription ($share/NAME/...) so several "
                          "bridges split the stream."),
        click.option("--session-expiry-s", type=int, default=86_400, show_default=True,
                     help="How long the broker keeps the session while the bridge is away (s)."),
        click.option("--receive-maximum", type=click.IntRange(1, 65535), default=1000,
                     show_default=True, help="Unacknowledged messages in flight from the broker."),
        click.option("--max-unacked", type=click.IntRange(1), default=1000, show_default=True,
                     help="Messages received and not yet acknowledged held at most: when full the "
                          "bridge stops reading from the broker until half are stored (its own "
                          "bound; mosquitto 2.0 does not always honour --receive-maximum)."),
        click.option("--batch-max", type=click.IntRange(1), default=500, show_default=True,
                     help="Messages stored per transaction at most."),
        click.option("--batch-wait-s", type=click.FloatRange(0), default=0.005, show_default=True,
                     help="Longest wait for a batch to fill (s)."),
        click.option("--watermark-s", type=click.FloatRange(0), default=300.0, show_default=True,
                     help="Event-time watermark: later out-of-order data is flagged 'late'."),
        click.option("--stale-after-s", type=click.FloatRange(0), default=900.0,
                     show_default=True, help="A datastream silent this long is stale."),
        click.option("--skew-tolerance-s", type=click.FloatRange(0), default=5.0,
                     show_default=True,
                     help="phenomenonTime ahead of receipt by more than this is flagged."),
        click.option("--max-future-skew-s", type=click.FloatRange(0), default=86_400.0,
                     show_default=True,
                     help="phenomenonTime ahead of receipt by more than this is dead-lettered "
                          "(not stored); must be >= --skew-tolerance-s."),
        click.option("--max-payload-bytes", type=click.IntRange(1), default=MAX_PAYLOAD_BYTES,
                     show_default=True,
                     help="Larger payloads are dead-lettered before parsing, keeping their size, "
                          "SHA-256 and first 1 KiB only."),
        click.option("--http", default=None, metavar="HOST:PORT",
                     help="Also serve HTTP ingest (POST /v1/obs/{kind}/{station}) here."),
        click.option("--token", default=None, envvar="TWIN_BRIDGE_TOKEN", show_envvar=True,
                     metavar="SECRET",
                     help="Bearer token of the HTTP confined-space permit actions "
                          "(POST /v1/permits ...); without it they answer 503."),
        click.option("--stats-every-s", type=click.FloatRange(0), default=0.0,
                     help="Print a JSON stats line this often (0: never)."),
        click.option("--stale-check-s", type=click.FloatRange(0), default=30.0,
                     show_default=True,
                     help="Check for stale datastreams (alerts) this often (0: never)."),
        click.option("--alarm-lane/--no-alarm-lane", default=True, show_default=True,
                     help="A second subscription for the alarm kinds (gas, smoke, heat, DAS, "
                          "video) so alarms are stored ahead of a backlog of readings."),
        click.option("--twin-link/--no-twin-link", default=True, show_default=True,
                     help="Feed stored observations to the twin: threshold alerts, "
                          "confined-space alarms, rain and level fusion (events in the store)."),
        click.option("--write-lock/--no-write-lock", default=True, show_default=True,
                     help="Take turns with other bridges on the same store through a file lock "
                          "(bridge-write.lock) rather than SQLite's sleeping busy wait (SQLite stores; "
                          "on PostgreSQL writers take turns on the server's advisory lock)."),
        click.option("--alert-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help="Alert thresholds TOML (default: the packaged alerts.toml); "
                                        "its [confined] spaces lists the confined spaces."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.command("run")
@bridge_options
def cli(**kw: Any) -> None:
    """Subscribe to the broker and store every valid message exactly once.

    Invalid messages go to the store's dead-letter table with the reason. A
    message is acknowledged to the broker only after it is committed.
    Stops on SIGTERM / Ctrl-C (after storing what it received).
    """
    from twin.cli._util import user_errors

    with user_errors():
        run_bridge(_options(kw))


def _options(kw: dict[str, Any]) -> BridgeOptions:
    return BridgeOptions(
        broker=kw["broker"], store=kw["store"], client_id=kw["client_id"],
        topics=tuple(kw["topics"]), shared_group=kw["shared_group"],
        session_expiry_s=kw["session_expiry_s"], receive_maximum=kw["receive_maximum"],
        max_unacked=kw.get("max_unacked", 1000),
        max_future_skew_s=kw.get("max_future_skew_s", 86_400.0),
        max_payload_bytes=kw.get("max_payload_bytes", MAX_PAYLOAD_BYTES),
        batch_max=kw["batch_max"], batch_wait_s=kw["batch_wait_s"],
        watermark_s=kw["watermark_s"], stale_after_s=kw["stale_after_s"],
        skew_tolerance_s=kw["skew_tolerance_s"], http=kw["http"], token=kw.get("token"),
        stats_every_s=kw["stats_every_s"], stale_check_s=kw["stale_check_s"],
        alarm_lane=kw["alarm_lane"], twin_link=kw["twin_link"], alert_config=kw["alert_config"],
        write_lock=kw.get("write_lock", True),
    )


if __name__ == "__main__":  # pragma: no cover - exercised by the reliability tests
    cli(prog_name="python -m hardware_bridge.runner")
