"""``twin bridge``: the hardware bridge — live MQTT ingest, replays, simulated devices, inspection."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from hardware_bridge.runner import cli as _run_cmd
from twin.cli._util import InputPath, echo_json, user_errors
from twin.cli.store_target import StoreTarget, shown_target


@click.group("bridge")
def bridge() -> None:
    """Sensor feeds into the twin: MQTT / HTTP ingest, replay, simulated devices, inspection."""


bridge.add_command(_run_cmd, "run")


def _speed(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give a number (e.g. 10) or 'inf'",
                                 param_hint="--speed") from None
    if not (v >= 0):
        raise click.BadParameter(f"{value!r}: speed must be > 0, or 0/inf for as fast as possible",
                                 param_hint="--speed")
    return math.inf if v == 0 else v


def _summary_of_results(results: list[Any]) -> dict[str, int]:
    from hardware_bridge.sources.http import outcome

    out = {"stored": 0, "duplicates": 0, "rejected": 0}
    for r in results:
        o = outcome(r)
        out["stored"] += o["stored"]
        out["duplicates"] += o["duplicates"]
        out["rejected"] += o["status"] == "rejected"
    return out


@bridge.command("replay")
@click.argument("file", type=InputPath("replay"))
@click.option("--speed", default="1", show_default=True, metavar="N",
              help="Replay N times faster than recorded (inf or 0: as fast as possible).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="File format (default: from the suffix).")
@click.option("--store", type=StoreTarget("store_dir"), default=None,
              help="Feed the ingestor of this store (a directory or a postgresql:// URL) directly "
                   "(validate, store, dead-letter).")
@click.option("--broker", default=None, metavar="HOST:PORT",
              help="Publish to this MQTT broker instead (QoS 1), for a running `twin bridge run`.")
@click.option("--batch-max", type=click.IntRange(1), default=500, show_default=True,
              help="Records delivered together at most (when several are due).")
def replay_cmd(file: Path, speed: str, fmt: str | None, store: Path | str | None, broker: str | None,
               batch_max: int) -> None:
    """Replay a recorded feed FILE (CSV or JSON lines) at --speed N.

    Exactly one of --store (ingest directly) or --broker (publish) is needed.
    Prints a JSON summary (records, wall time, achieved speed, stored/rejected).
    """
    spd = _speed(speed)
    if (store is None) == (broker is None):
        raise click.UsageError("give exactly one of --store DIR or --broker HOST:PORT")
    from hardware_bridge.sources.replay import read_records, replay

    with user_errors():
        records = read_records(file, fmt)
        summary: dict[str, Any] = {"file": str(file), "speed": spd}
        if store is not None:
            from hardware_bridge.runner import BridgeOptions, make_ingestor
            from twin.store import Store

            with Store.open(store) as st:
                stats = replay(records, make_ingestor(st, BridgeOptions(store=store), source="replay"), speed=spd,
                               batch_max=batch_max, keep_results=True)
                summary.update(_summary_of_results(stats.results))
        else:
            from hardware_bridge.sources.mqtt import MqttPublisher, parse_broker

            host, port = parse_broker(broker)
            with MqttPublisher(host, port) as pub:
                def send(batch):
                    for r in batch:
                        pub.publish(r.topic, r.payload)

                stats = replay(records, send, speed=spd, batch_max=batch_max)
            summary["published"] = stats.records
        summary.update(records=stats.records, batches=stats.batches,
                       wall_s=round(stats.wall_s, 3), span_s=stats.span_s,
                       achieved_speed=None if math.isinf(stats.achieved_speed)
                       else round(stats.achieved_speed, 2))
    echo_json(summary)


@bridge.command("simulate")
@click.option("--devices", type=click.IntRange(1), default=12, show_default=True,
              help="Number of simulated devices (kinds taken in turn).")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), default=10.0,
              show_default=True, help="Simulated duration (minutes).")
@click.option("--kinds", default=None, metavar="A,B",
              help="Comma-separated kinds (rain_gauge,water_level,...). Default: all kinds.")
@click.option("--interval-s", type=click.FloatRange(0, min_open=True), default=60.0,
              show_default=True, help="Reporting interval of every device (s).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--speed", default="inf", show_default=True, metavar="N",
              help="Publish N times faster than real time (inf: as fast as possible). With "
                   "N > 1 the readings are timed in the last --minutes before now.")
@click.option("--broker", default=None, metavar="HOST:PORT",
              help="Publish to this MQTT broker (QoS 1; statuses retained).")
@click.option("--store", type=StoreTarget(), default=None,
              help="Feed the ingestor of this store (a directory or a postgresql:// URL) directly instead.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the messages to a JSON-lines file (replayable) instead.")
@click.option("--register", type=StoreTarget(), default=None,
              metavar="STORE",
              help="Put the devices with their positions into this store's sensor registry (the "
                   "store of the `twin bridge run` that --broker feeds). Default: --store.")
@click.option("--place/--no-place", default=True, show_default=True,
              help="Give devices real sites from the city's data (rain gauges at Futian's "
                   "waterlogging spots, gas detectors at metro stations, heat/smoke in buildings).")
def simulate_cmd(devices: int, minutes: float, kinds: str | None, interval_s: float, seed: int,
                 speed: str, broker: str | None, store: Path | str | None, out: Path | None,
                 register: Path | str | None, place: bool) -> None:
    """Simulated devices (noise, drift, battery, dropouts) publishing readings.

    Exactly one of --broker, --store or --out. Prints a JSON summary. With --place (the
    default) each device gets a real site, chosen with --seed from the data set
    (hardware_bridge.sources.placement), registered in --register or --store so the console
    draws it; devices whose kind has no site, or whose data is missing, stay unplaced (the
    summary says which and why).
    """
    spd = _speed(speed)
    if sum(x is not None for x in (broker, store, out)) != 1:
        raise click.UsageError("give exactly one of --broker HOST:PORT, --store DIR or --out FILE")
    from hardware_bridge.sources.replay import ReplayRecord, replay
    from hardware_bridge.sources.simulated import make_devices, simulate

    with user_errors():
        kind_list = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
        devs = make_devices(devices, kind_list, interval_s=interval_s)
        now = datetime.now(UTC).replace(microsecond=0)
        duration = minutes * 60.0
        # Faster than real time, readings are timed in the last --minutes before now, so
        # no reading is ever ahead of the wall clock (it would be flagged as clock skew).
        start = now - timedelta(seconds=duration) if spd > 1 else now
        msgs = simulate(devs, start, duration, seed=seed)
        summary: dict[str, Any] = {"devices": devices, "minutes": minutes, "seed": seed,
                                   "start": start.isoformat()}
        reg_dir = register if register is not None else store
        if place:
            from hardware_bridge.sources.placement import place_devices

            placement = place_devices(devs, seed=seed)
            summary["placement"] = placement.summary()
            if reg_dir is not None and placement.sensors:
                from twin.store import Store

                with Store.open(reg_dir) as st:
                    summary["placement"]["registered"] = st.put_sensors(placement.sensors)
                summary["placement"]["store"] = shown_target(reg_dir)
        if out is not None:
            n = 0
            with open(out, "w", encoding="utf-8") as fh:
                for m in msgs:
                    fh.write(json.dumps({"topic": m.topic, "payload": json.loads(m.payload),
                                         "received_at": m.time.isoformat()}) + "\n")
                    n += 1
            summary.update(written=n, out=str(out))
            echo_json(summary)
            return
        records = (ReplayRecord(m.topic, m.payload, m.time, i, None) for i, m in enumerate(msgs))
        if store is not None:
            from hardware_bridge.runner import BridgeOptions, make_ingestor
            from twin.store import Store

            with Store.open(store) as st:
                stats = replay(records, make_ingestor(st, BridgeOptions(store=store), source="simulated"),
                               speed=spd, keep_results=True)
                summary.update(_summary_of_results(stats.results))
        else:
            from hardware_bridge.sources.mqtt import MqttPublisher, parse_broker

            host, port = parse_broker(broker)
            with MqttPublisher(host, port) as pub:
                def send(batch):
                    for r in batch:
                        pub.publish(r.topic, r.payload, retain=r.topic.endswith("/status"))

                stats = replay(records, send, speed=spd)
        summary.update(messages=stats.records, wall_s=round(stats.wall_s, 3))
    echo_json(summary)


_SEVERITIES = ("info", "advisory", "warning", "alarm")


@bridge.command("inspect")
@click.option("--store", type=StoreTarget("store"), required=True, help="Store to inspect: a directory or a postgresql:// URL.")
@click.option("--stale-after-s", type=click.FloatRange(0), default=900.0, show_default=True,
              help="A datastream whose latest phenomenonTime is older than this is stale.")
@click.option("--now", default=None, metavar="ISO8601",
              help="Judge staleness at this instant (default: now), e.g. for a replayed feed.")
@click.option("--limit", type=click.IntRange(0), default=20, show_default=True,
              help="Dead letters listed at most (newest first).")
@click.option("--alerts", "n_alerts", type=click.IntRange(0), default=10, show_default=True,
              help="Latest alerts (events of the store's live log) listed at most, newest first.")
@click.option("--min-severity", type=click.Choice(_SEVERITIES), default="advisory",
              show_default=True, help="Least severity of the alerts listed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def inspect_cmd(store: Path | str, stale_after_s: float, now: str | None, limit: int, n_alerts: int,
                min_severity: str, as_json: bool) -> None:
    """Latest alerts, dead letters, stale sensors and per-stream statistics of a store.

    A datastream is stale when its latest phenomenonTime is more than
    --stale-after-s before --now (device status streams are never stale).
    Readings the bridge flagged ``clock_skew`` (stamped ahead of their arrival) are
    left out of a stream's latest time, age and latest value: a device clock in the
    future cannot make a silent stream look fresh.
    """
    from twin.store import Store, parse_utc, utc_text

    with user_errors():
        when = datetime.now(UTC) if now is None else parse_utc(utc_text(now, "--now"))
        with Store.open(store) as st:
            n_dead = st.count_dead_letters()
            hits = st.count_dead_letters(hits=True)
            dead = st.dead_letters()[-limit:][::-1] if limit else []
            rows = st.stream_stats()
            # the latest table leaves out readings flagged clock_skew: each stream's newest unflagged reading
            latest = {o.datastream_id: o for o in st.latest_observations()}
            alert_counts = st.event_severity_counts()
            alert_rows = [(e.time_s, e.wall_time, e.severity, e.kind, e.source, e.message)
                          for e in st.recent_events(min_severity, n_alerts)]
    from hardware_bridge.display import format_reading

    streams = []
    for ds, n, first, last, last_rt, n_skewed in rows:
        # every reading stamped in the future: no trustworthy time, so stale
        age = math.inf if last is None else (when - parse_utc(last)).total_seconds()
        is_status = ds.endswith("/status")  # device status rows: not a measurement stream
        o = latest.get(ds)
        kind = ds.split("/")[1] if "/" in ds else ""
        # the latest reading as operators read it (display units); SI value/unit kept for scripts
        shown = "" if o is None or is_status or o.value is None else format_reading(kind, o.value, o.unit)
        streams.append({"datastream": ds, "count": n, "first": first, "last": last,
                        "last_result_time": last_rt, "age_s": round(age, 1) if math.isfinite(age) else None,
                        "clock_skew": int(n_skewed or 0),
                        "stale": (not is_status) and age > stale_after_s,
                        "latest": shown, "latest_si": None if o is None else o.value,
                        "unit_si": None if o is None else o.unit})
    report = {
        "store": shown_target(store),
        "observations": sum(s["count"] for s in streams),
        "datastreams": len(streams),
        "stale": [s["datastream"] for s in streams if s["stale"]],
        "dead_letters": {"count": n_dead, "deliveries": hits,
                         "recent": [{"received_at": d.received_at.isoformat(), "topic": d.topic,
                                     "reason": d.reason, "hits": d.hits,
                                     "payload": d.payload[:200].decode("utf-8", "replace")}
                                    for d in dead]},
        "alerts": {"counts": alert_counts, "min_severity": min_severity,
                   # the bridge's events carry POSIX seconds (no simulation clock)
                   "recent": [{"time": datetime.fromtimestamp(t, UTC).isoformat()
                               if 1e8 < t < 1e10 else None, "time_s": t,
                               "wall_time": w, "severity": sev, "kind": k, "source": src,
                               "message": m} for t, w, sev, k, src, m in alert_rows]},
        "streams": streams,
    }
    if as_json:
        echo_json(report)
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]{shown_target(store)}[/bold]: {report['observations']} observations in "
              f"{len(streams)} datastreams, {len(report['stale'])} stale "
              f"(> {stale_after_s:g} s), {n_dead} dead letters ({hits} deliveries)")
    t = Table("datastream", "count", "latest", "first", "last", "age s", "stale")
    for s in streams:
        t.add_row(s["datastream"], str(s["count"]), s["latest"], s["first"], s["last"] or "–",
                  "–" if s["age_s"] is None else f"{s['age_s']:.0f}",
                  "STALE" if s["stale"] else "")
    con.print(t)
    con.print("alerts: " + ", ".join(f"{alert_counts[s]} {s}" for s in reversed(_SEVERITIES)))
    if alert_rows:
        t = Table("time", "severity", "kind", "source", "message")
        for a in report["alerts"]["recent"]:
            t.add_row(a["time"] or f"{a['time_s']:g} s", a["severity"].upper(), a["kind"], a["source"], a["message"][:100])
        con.print(t)
    if dead:
        t = Table("received", "topic", "reason", "hits", "payload")
        for d in report["dead_letters"]["recent"]:
            t.add_row(d["received_at"], d["topic"], d["reason"], str(d["hits"]),
                      d["payload"][:60])
        con.print(t)


@bridge.command("plot")
@click.option("--store", type=StoreTarget("store"), required=True,
              help="Store (directory or postgresql:// URL) holding the observations and alerts.")
@click.option("--datastream", "datastream_id", required=True, metavar="STATION/KIND[/NAME]",
              help="Datastream to plot, e.g. RG-0001/rain_gauge (list them with `twin bridge inspect`).")
@click.option("--out", "out_png", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write.")
@click.option("--since", default=None, metavar="ISO8601", help="First phenomenonTime plotted (default: all).")
@click.option("--until", default=None, metavar="ISO8601", help="Plot readings before this time (default: all).")
@click.option("--alert-config", type=InputPath("alerts"), default=None,
              help="Alert thresholds TOML (default: the packaged hardware_bridge/fusion/alerts.toml).")
def plot_cmd(store: Path | str, datastream_id: str, out_png: Path, since: str | None, until: str | None,
             alert_config: Path | None) -> None:
    """Plot one datastream with its alert levels as coloured bands and its alerts marked (PNG)."""
    from twin.store import Store, utc_text
    from viz.plots import save_png, sensor_figure

    with user_errors():
        t0 = utc_text(since, "--since") if since else None
        t1 = utc_text(until, "--until") if until else None
        with Store.open(store) as st:
            fig = sensor_figure(st, datastream_id, t0=t0, t1=t1, alerts=alert_config)
        path = save_png(fig, out_png)
    click.echo(f"wrote {path}")



# ------------------------------------------------------- failure-time forecasts (inverse velocity)
_SLOPE_KINDS = ("gnss_displacement", "inclinometer")


def _alpha(value: str | None) -> float | str | None:
    if value is None or value == "fit":
        return value
    try:
        a = float(value)
    except ValueError:
        a = math.nan
    if not (math.isfinite(a) and a > 1):
        raise click.BadParameter(f"{value!r}: give a number > 1 (2 = Fukuzono) or 'fit'", param_hint="--alpha")
    return a


def _forecast_params(engine, kind: str, station: str) -> tuple[dict[str, Any], float]:
    """The alert config's inverse-velocity parameters and fit window (h) of a stream."""
    kc = engine.kinds.get(kind)
    from hardware_bridge.fusion.alerts import FORECAST_DEFAULTS

    params = dict(FORECAST_DEFAULTS) if kc is None else dict(kc.station_forecast.get(station, kc.forecast))
    wins = [r.window_h for r in engine.rules_for(kind, station) if r.metric == "time_to_failure_h"]
    return params, (max(wins) if wins else 72.0)


def _stream_forecast(st, ds: str, engine, newest: datetime | None, over: dict[str, Any]) -> dict[str, Any]:
    """Forecast of one stored datastream (display units; times UTC) as a JSON-able record."""
    import numpy as np

    from hardware_bridge.display import display_unit
    from hardware_bridge.fusion.inverse_velocity import forecast_failure

    station, kind = ds.split("/")[0], ds.split("/")[1]
    params, window_h = _forecast_params(engine, kind, station)
    window_h = over.pop("window_h", None) or window_h
    params.update({k: v for k, v in over.items() if v is not None})
    rec: dict[str, Any] = {"datastream": ds, "kind": kind, "readings": 0, "status": "no_readings"}
    if newest is None:
        return rec
    obs = [o for o in st.observations(ds, newest - timedelta(hours=window_h), newest + timedelta(microseconds=1))
           if o.value is not None and o.phenomenon_time > newest - timedelta(hours=window_h)]
    if not obs:
        return rec
    d = display_unit(kind, obs[-1].unit or None) or display_unit(kind)
    unit = d.unit if d is not None else (obs[-1].unit or "")
    t = np.array([o.phenomenon_time.timestamp() for o in obs])
    y = np.array([d.value(float(o.value)) if d is not None else float(o.value) for o in obs])
    f = forecast_failure(t, y, velocity_window_s=params["velocity_window_h"] * 3600.0,
                         fit_window_s=window_h * 3600.0, alpha=params["alpha"],
                         confidence=params["confidence"], r2_min=params["r2_min"],
                         min_points=params["min_points"], min_window_points=params["min_window_points"],
                         weighted=params["weighted"])

    def utc(x: float) -> str | None:
        return datetime.fromtimestamp(x, UTC).isoformat(timespec="seconds") if math.isfinite(x) else None

    def num(x: float, nd: int) -> float | None:
        return round(x, nd) if math.isfinite(x) else None

    rec.update(readings=len(obs), last_reading=utc(t[-1]), unit=unit, window_h=window_h,
               velocity_window_h=params["velocity_window_h"], alpha=f.alpha, weighted=params["weighted"],
               last_velocity=num(abs(f.last_velocity) * 3600.0, 4), velocity_unit=f"{unit}/h",
               status=f.status, failure_time=utc(f.t_f), interval=[utc(f.t_lo), utc(f.t_hi)],
               confidence=f.confidence, lead_h=num(f.lead_s / 3600.0, 2),
               r2=num(f.r2, 4), n_fit=f.n_fit, fit_start=utc(f.fit_t0), fit_end=utc(f.fit_t1),
               dropped=f.dropped)
    rec["_forecast"] = f  # for --plot; removed before printing
    return rec


def _inverse_velocity_figure(recs: list[dict[str, Any]]):
    """One panel per stream: (1/v)^(alpha-1) against time, the fitted tail, its line to zero
    and the forecast failure time with its interval."""
    import matplotlib.dates as mdates
    import numpy as np

    from viz.plots import fit_titles, new_figure, style

    shown = [r for r in recs if r.get("_forecast") is not None and r["_forecast"].t_v.size]
    with style():
        fig = new_figure(9.0, 3.2 * max(len(shown), 1))
        axes = fig.subplots(max(len(shown), 1), 1, squeeze=False)[:, 0]
        for ax, r in zip(axes, shown, strict=False):
            f = r["_forecast"]
            a = f.alpha
            speed = f.direction * f.v * 3600.0  # unit/h, positive downslope
            ok = speed > 0
            y = np.full(speed.size, np.nan)
            y[ok] = (1.0 / speed[ok]) ** (a - 1.0)
            when = lambda s: [datetime.fromtimestamp(x, UTC) for x in np.atleast_1d(s)]  # noqa: E731
            ax.plot(when(f.t_v[ok & ~f.fit_mask]), y[ok & ~f.fit_mask], "o", color="#9ecae1", ms=4,
                    label="velocity windows (not fitted)")
            ax.plot(when(f.t_v[f.fit_mask]), y[f.fit_mask], "o", color="#08306b", ms=4, label="fitted tail")
            if math.isfinite(f.slope) and f.n_fit:
                end = f.t_f if f.ok else f.t_last
                tt = np.linspace(f.fit_t0, max(end, f.fit_t1), 50)
                ax.plot(when(tt), np.maximum((f.intercept + f.slope * tt) / 3600.0 ** (a - 1.0), 0.0),
                        "-", color="#cb181d", lw=1.4, label=f"fit, R² {f.r2:.2f}")
            if f.ok:
                ax.axvspan(*when([f.t_lo, f.t_hi]), color="#fcbba1", alpha=0.5,
                           label=f"{100 * f.confidence:g} % interval")
                ax.axvline(when(f.t_f)[0], color="#cb181d", ls="--", lw=1.0,
                           label=f"failure {r['failure_time'][:16].replace('T', ' ')} UTC")
            ax.axvline(when(f.t_last)[0], color="#555555", ls=":", lw=1.0, label="newest reading")
            lab = f"1/v (h/{r['unit']})" if a == 2.0 else f"(1/v)^{a - 1:g} ((h/{r['unit']})^{a - 1:g})"
            ax.set_ylabel(lab)
            ax.set_ylim(bottom=0)
            ax.set_title(f"{r['datastream']}: {r['status']}"
                         + (f", failure in {r['lead_h']:.1f} h" if f.ok else ""))
            ax.legend(loc="best")
            loc = mdates.AutoDateLocator(tz=UTC)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=UTC))
        axes[-1].set_xlabel("time (UTC)")
        fit_titles(fig)
    return fig


@bridge.command("failure-time")
@click.option("--store", type=StoreTarget("store"), required=True,
              help="Store (directory or postgresql:// URL) holding the readings.")
@click.argument("datastreams", nargs=-1, metavar="[DATASTREAM ...]")
@click.option("--window", "window_h", type=click.FloatRange(0, min_open=True), default=None,
              metavar="HOURS", help="Fit the trailing HOURS of each stream (default: the window_h of "
              "its time_to_failure_h alert rules, 72 h packaged).")
@click.option("--velocity-window", "velocity_window_h", type=click.FloatRange(0, min_open=True),
              default=None, metavar="HOURS", help="Velocity window (default: the alert config's, 6 h).")
@click.option("--alpha", default=None, metavar="A|fit", callback=lambda c, p, v: _alpha(v),
              help="Voight exponent > 1 (default: the config's, 2 = Fukuzono's linear inverse "
              "velocity), or 'fit' to estimate it per stream.")
@click.option("--weighted/--unweighted", default=None,
              help="Delta-method weighted fit instead of ordinary least squares (default: config).")
@click.option("--at", "at", default=None, metavar="ISO8601",
              help="Forecast as of this instant (readings up to it; default: all readings).")
@click.option("--alert-config", type=InputPath("alerts"), default=None,
              help="Alert thresholds TOML (default: the packaged hardware_bridge/fusion/alerts.toml).")
@click.option("--plot", "plot_png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG of 1/v against time with the fit, one panel per stream.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def failure_time_cmd(store: Path | str, datastreams: tuple[str, ...], window_h: float | None,
                     velocity_window_h: float | None, alpha: float | str | None, weighted: bool | None,
                     at: str | None, alert_config: Path | None, plot_png: Path | None, as_json: bool) -> None:
    """Inverse-velocity (Fukuzono 1985) failure-time forecasts of slope GNSS and inclinometer streams.

    Per DATASTREAM (default: every gnss_displacement and inclinometer stream in --store):
    the newest velocity, the forecast failure time (UTC) with its interval (Fieller, 95 %),
    R² of the 1/v line and a status: forecast, not_accelerating, not_significant, poor_fit,
    unbounded or too_few_points (see hardware_bridge.fusion.inverse_velocity). Parameters
    come from the alert config's [<kind>.inverse_velocity] tables unless given here.
    """
    from hardware_bridge.fusion.alerts import AlertEngine
    from twin.errors import ValidationError
    from twin.store import Store, parse_utc, utc_text

    with user_errors():
        when = parse_utc(utc_text(at, "--at")) if at else None
        engine = AlertEngine(alert_config)
        with Store.open(store) as st:
            known = [d for d in st.datastreams() if len(d.split("/")) >= 2 and d.split("/")[1] in _SLOPE_KINDS]
            chosen = list(datastreams) or known
            for ds in chosen:
                if ds not in known:
                    raise ValidationError(
                        f"datastream {ds!r} is not a gnss_displacement or inclinometer stream of {shown_target(store)}; "
                        f"its slope streams: {known[:10] or 'none'}")
            over = {"window_h": window_h, "velocity_window_h": velocity_window_h, "alpha": alpha,
                    "weighted": weighted}
            latest = st.latest_times(not_after=when)
            recs = [_stream_forecast(st, ds, engine, latest.get(ds), dict(over)) for ds in chosen]
        if plot_png is not None:
            from viz.plots import save_png

            save_png(_inverse_velocity_figure(recs), plot_png)
    for r in recs:
        r.pop("_forecast", None)
    if as_json:
        echo_json({"store": shown_target(store), "at": at, "streams": recs,
                   **({"plot": str(plot_png)} if plot_png else {})})
        return
    def short(x: str | None) -> str:  # "2024-06-05T02:06:00+00:00" -> "06-05 02:06"
        return x[5:16].replace("T", " ") if x else "–"

    newest = max((r["last_reading"] for r in recs if r.get("last_reading")), default=None)
    click.echo(f"{shown_target(store)}: inverse-velocity forecasts"
               + (f", newest reading {newest[:16].replace('T', ' ')} UTC" if newest else ""))
    for r in recs:
        line = f"  {r['datastream']}: {r['status']}"
        if r["status"] == "forecast":
            lo, hi = r["interval"]
            line += (f", failure {r['failure_time'][:16].replace('T', ' ')} UTC (in {r['lead_h']:.1f} h), "
                     f"{100 * r['confidence']:g} % interval {short(lo)} – {short(hi)}")
        if r.get("r2") is not None:
            line += f"; R² {r['r2']:.2f}"
        if r.get("alpha") not in (None, 2.0):
            line += f", α {r['alpha']:g}"
        if r.get("n_fit"):
            line += f", {r['n_fit']} velocities from {short(r['fit_start'])}"
        if r.get("last_velocity") is not None:
            line += f"; last velocity {r['last_velocity']:.3g} {r['velocity_unit']}"
        click.echo(line)
    if plot_png is not None:
        click.echo(f"wrote {plot_png}")


COMMAND = bridge
