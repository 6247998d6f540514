"""``twin fire watch`` and ``twin fire drill``: the live side of the high-rise fire.

``watch`` follows the store the bridge writes and answers each ``fire_origin``
event of a known building with a fire run at its floor (:mod:`scenarios.fire_response`).
``drill`` turns a fire run's predicted detector activations into a sensor
registry and a drill file the bridge plays as if live (:mod:`scenarios.fire_drill`),
and with ``--store``/``--broker`` registers and plays it.

The ``fire`` group (``twin/cli/fire.py``) attaches both with ``fire.add_command``;
this module defines no ``COMMAND`` of its own.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from twin.cli._util import echo_json, user_errors
from twin.cli.store_target import StoreTarget, shown_target, store_files_dir


def _seconds(text: str, what: str) -> float:
    """Seconds of ``"1h"``, ``"90s"``, ``"10min"`` or a bare number of seconds (as ``twin fire run --duration``)."""
    from scenarios.forecast import parse_duration

    try:
        return parse_duration(float(text), what)
    except ValueError:
        return parse_duration(text, what)


@click.command("watch")
@click.option("--store", "store_dir", required=True, type=StoreTarget(),
              help="The twin's store, a directory or a postgresql:// URL (the one `twin bridge run --store` writes).")
@click.option("--building", "buildings", required=True, multiple=True, metavar="FILE|EXAMPLE",
              help="A fire building file or example name (repeat for several buildings).")
@click.option("--building-id", "building_ids", multiple=True, metavar="ID",
              help="The detectors' `building` property of each --building, in order (default: the file's "
                   "stem or the example's name).")
@click.option("--once", is_flag=True, help="Answer the origins stored so far and exit.")
@click.option("--poll", default="2s", show_default=True, metavar="DURATION", help="How often to look for new origins.")
@click.option("--growth", default="fast", show_default=True, help="t² growth of the runs: slow|medium|fast|ultrafast "
              "or alpha (kW/s²).")
@click.option("--sprinklers", type=click.Choice(["on", "off", "building"]), default="building", show_default=True,
              help="Sprinklers operate, fail, or as the building file says.")
@click.option("--season", type=click.Choice(["summer", "winter"]), default="summer", show_default=True,
              help="Outside air (summer 33 °C, winter 10 °C).")
@click.option("--duration", default="3600", show_default=True, metavar="SECONDS|DURATION",
              help="Simulated time of each run (s, or with a unit: 30min, 1h).")
@click.option("--dt", "dt_s", type=click.FloatRange(0.05, 5.0), default=1.0, show_default=True,
              help="Zone-model time step (s).")
@click.option("--record-every", "record_every_s", type=click.FloatRange(0.0, min_open=True), default=10.0,
              show_default=True, help="Interval of the recorded series (s).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the runs (default: STORE/runs, where `twin serve` looks).")
@click.option("--no-report", is_flag=True, help="Skip report.html and map.html of each run (faster).")
def watch(store_dir: Path | str, buildings: tuple[str, ...], building_ids: tuple[str, ...], once: bool, poll: str,
          growth: str, sprinklers: str, season: str, duration: str, dt_s: float, record_every_s: float,
          runs_dir: Path | None, no_report: bool) -> None:
    """Start a fire run for every fire_origin the bridge raises in a known building.

    The run starts at the origin's floor (storey index, 0 = ground), in the detector's zone when
    that names a room of the floor; it is stored like every run (the console lists it). One run
    per incident origin; a corrected origin runs again at its floor. Origins of unknown buildings
    are reported (a fire_response warning) and the watcher goes on. Prints one JSON line per origin.

    Example: twin fire watch --store state/ --building tower_30_residential
    """
    from scenarios.fire_response import FireResponder, ResponseSettings, buildings_from

    with user_errors():
        settings = ResponseSettings(
            store=store_dir, buildings=buildings_from(buildings, building_ids),
            runs_dir=runs_dir if runs_dir is not None else store_files_dir(store_dir) / "runs", growth=growth,
            sprinklers=sprinklers, season=season, duration_s=_seconds(duration, "--duration"), dt_s=dt_s,
            record_every_s=record_every_s, report=not no_report, map=not no_report)
        poll_s = _seconds(poll, "--poll")
        responder = FireResponder(settings)

        def say(r) -> None:
            click.echo(json.dumps({"event": "fire_response", **r.as_dict()}, ensure_ascii=False, default=str))
            click.echo(r.line(), err=True)

        if once:
            for r in responder.process():
                say(r)
            return
        signal.signal(signal.SIGTERM, _stop)  # a service manager's stop: a run going is recorded cancelled
        try:
            responder.watch(poll_s=poll_s, on_response=say)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@click.command("drill")
@click.argument("run_dir", type=click.Path(exists=True, path_type=Path), metavar="RUN_DIR")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for sensors.json, the drill file and its scenario.")
@click.option("--building", default=None, metavar="FILE|EXAMPLE",
              help="The run's building (default: fire.nc's `building` attribute).")
@click.option("--building-id", default=None, metavar="ID",
              help="The sensors' `building` property (default: the example's name or the file's stem).")
@click.option("--name", default=None, help="Drill name (default: <building id>_fire_drill).")
@click.option("--speed", type=click.FloatRange(0.0, 10_000.0, min_open=True), default=1.0, show_default=True,
              help="The drill file's pace (times real time).")
@click.option("--store", "store_dir", default=None, type=StoreTarget(),
              help="Register the detectors in this store (the bridge's: a directory or a postgresql:// URL).")
@click.option("--broker", default=None, metavar="HOST:PORT",
              help="Also play the drill now through this MQTT broker (needs --store; run `twin bridge run` beside).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written (and played) as JSON.")
def drill(run_dir: Path, out_dir: Path, building: str | None, building_id: str | None, name: str | None,
          speed: float, store_dir: Path | str | None, broker: str | None, as_json: bool) -> None:
    """Write a drill of a fire run's predicted detector alarms (and register or play it).

    RUN_DIR is a `twin fire run` folder (or its fire.nc). Writes OUT/sensors.json (the building's
    detectors and sprinklers as bridge sensors with building, floor and zone), OUT/<name>.toml (timed
    readings crossing the bridge's alarm thresholds at the predicted times) and its scenario. With
    --store the detectors go into the store's registry; with --broker too the drill plays now.

    Example: twin fire drill runs/fire10 --out drills/fire10 --store state/ --broker 127.0.0.1:1883 --speed 10
    """
    from scenarios.fire_drill import drill_from_run, play_drill, register_detectors

    if broker is not None and store_dir is None:
        raise click.UsageError("--broker plays the drill into a store: give --store DIR too")
    with user_errors():
        d = drill_from_run(run_dir, building=building, building_id=building_id)
        paths = d.write(out_dir, name=name, speed=speed)
        out: dict = {"building": d.building_id, "sensors": len(d.devices), "activations": len(d.activations),
                     "first": None if d.first is None else {"device": d.first.device.device,
                                                            "sensor": d.first.device.sensor_id,
                                                            "storey": d.first.device.storey,
                                                            "time_s": d.first.time_s},
                     "files": {k: str(v) for k, v in paths.items()}}
        if store_dir is not None and broker is None:
            out["registered"] = register_detectors(store_dir, paths["sensors"])
        if broker is not None:
            summary = play_drill(paths["drill"], store_dir, broker, speed=speed,
                                 progress=lambda line: click.echo(line, err=True))
            out["played"] = {k: v for k, v in summary.items() if k != "injects"} | {"injects": len(summary["injects"])}
    if as_json:
        echo_json(out)
        return
    click.echo(f"{paths['drill']}: {out['activations']} device(s) operate of {out['sensors']}; first "
               f"{out['first']['device']} on storey {out['first']['storey']} at {out['first']['time_s']:.1f} s")
    if "registered" in out:
        click.echo(f"{out['registered']} sensor(s) registered in {shown_target(store_dir)}; play with "
                   f"`twin drill run {paths['drill']} --store {shown_target(store_dir)} --broker HOST:PORT`")
    if "played" in out:
        click.echo(f"drill {out['played']['drill']}: {out['played']['played']} inject(s) played")


__all__ = ["drill", "watch"]
