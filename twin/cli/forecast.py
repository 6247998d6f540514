"""``twin forecast``: the live flood forecast loop for command staff, and ``twin forecast verify``.

The loop (:mod:`scenarios.forecast`) issues a forecast from the store the
bridge writes every ``--every``: rain from the gauges, the state nudged to the
water-level gauges and warm-started from the previous forecast, the flood run
over ``--horizon`` stored as a run the console shows, alerts of predicted
threshold crossings. ``verify`` (:mod:`scenarios.verification`) pairs every
kept forecast with what the gauges then read.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from twin.cli._util import InputPath, echo_json, user_errors
from twin.cli.store_target import StoreTarget, store_files_dir


def _issue_line(issued) -> str:
    return json.dumps({"event": "forecast", "run": issued.run_id, "issue_time": issued.issue_time,
                       "warm_start_run": issued.warm_start_run, "gauges": len(issued.gauges),
                       "alerts": [a.message for a in issued.alerts], "dir": str(issued.out_dir)},
                      ensure_ascii=False)


def _failed(issue, exc) -> None:
    click.echo(json.dumps({"event": "forecast_failed", "issue_time": issue.isoformat(),
                           "error": f"{type(exc).__name__}: {exc}"}, ensure_ascii=False))


@click.group("forecast", invoke_without_command=True)
@click.option("--store", "store_dir", type=StoreTarget("store_dir"), default=None,
              help="The twin's store: a directory or a postgresql:// URL (the one `twin bridge run --store` "
                   "writes).")
@click.option("--every", default="10min", show_default=True, metavar="DURATION",
              help="Time between issued forecasts (10min, 1h, 90s).")
@click.option("--horizon", default="3h", show_default=True, metavar="DURATION",
              help="How far each forecast runs ahead.")
@click.option("--districts", default=None, metavar="A,B", help="Districts of the run grid (default: whole city).")
@click.option("--resolution", type=click.FloatRange(30.0, 2000.0), default=250.0, show_default=True,
              help="Grid cell size (m).")
@click.option("--city", "city_name", default="shenzhen", show_default=True, metavar="NAME")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the runs (default: STORE/runs, where `twin serve` looks).")
@click.option("--once", is_flag=True, help="Issue one forecast and stop.")
@click.option("--at", "at", default=None, metavar="ISO8601",
              help="Issue time of the first forecast (a simulated clock: no waiting; with --until, "
                   "issues every --every up to it). Default: now, on the wall clock.")
@click.option("--until", default=None, metavar="ISO8601", help="Stop after the forecast issued at or before this time.")
@click.option("--rain", "rain_mode", type=click.Choice(["persist", "decay"]), default="persist", show_default=True,
              help="Gauge rain over the horizon: held at the recent rate, or decaying.")
@click.option("--decay-tau", default="1h", show_default=True, metavar="DURATION",
              help="e-folding time of the decaying rain.")
@click.option("--rain-window", default="30min", show_default=True, metavar="DURATION",
              help="Recent rain: the gauges' depths over this window before the issue time.")
@click.option("--nudge-gain", type=click.FloatRange(0.0, 1.0, min_open=True), default=1.0, show_default=True,
              help="Fraction of the misfit to the water-level gauges removed (1: direct insertion).")
@click.option("--nudge-radius", "nudge_radius", type=click.FloatRange(0.0, min_open=True), default=None,
              metavar="M", help="Nudge the open cells within M metres of each gauge (default: its own cell only).")
@click.option("--alert-config", type=InputPath("alerts"), default=None,
              help="The bridge's alert rules (as given to `twin bridge run`): their level_m rules are gauge "
                   "thresholds too, beside each sensor's own thresholds.")
@click.pass_context
def forecast(ctx, store_dir, every, horizon, districts, resolution, city_name, runs_dir, once, at, until,
             rain_mode, decay_tau, rain_window, nudge_gain, nudge_radius, alert_config) -> None:
    """Issue flood forecasts from the live store every --every, --horizon ahead.

    Each forecast is a flood run in the store (the console's run list shows it; its forecast view
    shows the newest, and earlier ones can be picked). Gauges predicted to reach a threshold give a
    forecast_threshold alert. Prints one JSON line per forecast.

    Example: twin forecast --store state/ --every 10min --horizon 3h --districts Futian
    """
    if ctx.invoked_subcommand is not None:
        return
    if store_dir is None:
        raise click.UsageError("give --store DIR (the store `twin bridge run` writes)")
    from scenarios.forecast import ForecastLoop, ForecastSettings, parse_duration, parse_instant

    with user_errors():
        settings = ForecastSettings(
            store=store_dir, runs_dir=runs_dir if runs_dir is not None else store_files_dir(store_dir) / "runs",
            every_s=parse_duration(every, "--every"),
            horizon_s=parse_duration(horizon, "--horizon"), resolution=resolution,
            districts=tuple(d.strip() for d in districts.split(",") if d.strip()) if districts else None,
            city=city_name, rain_mode=rain_mode, decay_tau_s=parse_duration(decay_tau, "--decay-tau"),
            rain_window_s=parse_duration(rain_window, "--rain-window"), nudge_gain=nudge_gain,
            nudge_radius_m=nudge_radius, alert_config=alert_config)
        first = None if at is None else parse_instant(at, "--at")
        last = None if until is None else parse_instant(until, "--until")
        if first is not None and last is None and not once:
            raise click.UsageError("--at without --until needs --once (a simulated clock does not wait)")
        # a simulated clock (--at) does not wait: every issue time is due at once
        simulated = first is not None
        loop = ForecastLoop(settings, sleep=(lambda _s: None) if simulated else None, skip_missed=not simulated)
        try:
            loop.run(first, last, once=once, on_issue=lambda i: click.echo(_issue_line(i)),
                     on_error=_failed)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


@forecast.command("list")
@click.option("--store", "store_dir", type=StoreTarget("store"), required=True,
              help="The store: a directory or a postgresql:// URL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(store_dir, as_json) -> None:
    """The issued forecasts, newest first: run, issue time, status, warm start, gauges, alerts.

    Open one in the console (`twin serve`, its run list) or its folder STORE/runs/run-NNNNN/.
    """
    from scenarios.forecast import forecast_history
    from twin.store import Store

    with user_errors(), Store.open_readonly(store_dir) as store:
        rows = forecast_history(store)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no forecasts yet: run twin forecast --store ...")
        return
    click.echo(f"{'run':>5}  {'issued':<20}  {'status':<9} {'horizon':>7}  {'warm from':>9}  {'gauges':>6}  alerts")
    for r in rows:
        warm = "" if r["warm_start_run"] is None else str(r["warm_start_run"])
        click.echo(f"{r['run']:>5}  {r['issue_time']:<20}  {r['status']:<9} {r['horizon_h']:>6g}h  {warm:>9}  "
                   f"{r['gauges']:>6}  {r['alerts']}")


@forecast.command("verify")
@click.option("--store", "store_dir", type=StoreTarget("store_dir"), required=True,
              help="The store (directory or postgresql:// URL) holding the forecasts and the observations.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for verification.csv/.parquet/.html (default: STORE/verification).")
@click.option("--tolerance", default="5min", show_default=True, metavar="DURATION",
              help="An observation pairs with a prediction when this close to its valid time.")
def verify(store_dir, out_dir, tolerance) -> None:
    """Verification table of every kept forecast: predicted vs observed level per gauge and lead time."""
    from scenarios.forecast import parse_duration
    from scenarios.verification import write_verification

    with user_errors():
        out = write_verification(store_dir, out_dir or store_files_dir(store_dir) / "verification",
                                 tolerance_s=parse_duration(tolerance, "--tolerance"))
    echo_json({k: str(v) if isinstance(v, Path) else v for k, v in out.items()})


COMMAND = forecast
