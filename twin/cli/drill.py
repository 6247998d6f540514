"""``twin drill``: drills for trainers — check a drill file, play it live, write its debrief.

A drill is a file or a built-in drill's name (``list``). ``check`` validates a drill file and its scenario (every problem listed); ``run`` plays
the inject timeline into a store and a broker at real time or ``--speed`` times faster
(:mod:`scenarios.drill`); ``debrief`` writes the debrief of a drill played into a store
(:mod:`scenarios.debrief`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from twin.cli._util import echo_json, user_errors
from twin.cli.store_target import StoreTarget, shown_target


@click.group("drill")
def drill() -> None:
    """Drills: an inject timeline played live (MQTT + store), trainee actions in the console, a debrief."""


def _load(path: str):
    from scenarios.drill import load_drill
    from scenarios.files import ScenarioError

    try:
        return load_drill(path)
    except ScenarioError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@drill.command("list")
def list_cmd() -> None:
    """The built-in drills: name, scenario, injects, targets."""
    from scenarios.drill import builtin_drills

    for name in builtin_drills():
        d = _load(name)
        click.echo(f"{name}: {d.drill.title} (scenario {d.scenario.scenario.name}; {len(d.timeline)} inject(s), "
                   f"{len(d.drill.targets)} target(s))")


@drill.command("check")
@click.argument("drill_file", metavar="DRILL.toml|NAME")
def check_cmd(drill_file: str) -> None:
    """Check a drill file and its scenario: exit 0 with the timeline, 1 with every problem listed."""
    from scenarios.schema import format_duration

    d = _load(drill_file)
    click.echo(f"{d.path}: OK — {d.drill.name} on scenario {d.scenario.scenario.name}, "
               f"{len(d.timeline)} inject(s), {len(d.drill.targets)} target(s)")
    for p in d.timeline:
        click.echo(f"  #{p.position:<3} {format_duration(p.offset_s):>8}  {p.kind:<13} {p.describe()}")


@drill.command("run")
@click.argument("drill_file", metavar="DRILL.toml|NAME")
@click.option("--store", "store_dir", required=True, type=StoreTarget(),
              help="The twin's store, a directory or a postgresql:// URL (the one `twin bridge run` and `twin serve` use).")
@click.option("--broker", default=None, metavar="HOST:PORT",
              help="MQTT broker the bridge subscribes to (needed for sensor_value injects).")
@click.option("--speed", type=float, default=None,
              help="Times faster than real time (default: the drill file's speed, else 1).")
@click.option("--start-at", "start_at", default="0 s", show_default=True, metavar="DURATION|INSTANT",
              help="Start this far into the scenario ('30 min') or at an instant of it (ISO 8601 with a "
                   "zone); earlier injects are logged as skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON at the end.")
def run_cmd(drill_file: str, store_dir: Path | str, broker: str | None, speed: float | None, start_at: str,
            as_json: bool) -> None:
    """Play a drill: sensor values through MQTT, incidents and lost roads/stations into the store.

    Run `twin bridge run --broker HOST:PORT --store DIR` beside it (the bridge ingests the
    sensor values and raises alerts) and `twin serve --store DIR --token ...` for the trainees.
    """
    from scenarios.drill import DrillPlayer

    d = _load(drill_file)
    offset = _offset(start_at, d.scenario.scenario.time.start)
    with user_errors():
        player = DrillPlayer(d, store_dir, broker=broker, speed=speed, start_at=offset,
                             progress=lambda line: click.echo(line, err=True))
        try:
            summary = player.play()
        except KeyboardInterrupt:
            click.echo(f"drill {player.drill_id} interrupted", err=True)
            sys.exit(130)
    if as_json:
        echo_json(summary | {"injects": player.played})
    else:
        click.echo(f"drill {summary['drill']}: {summary['played']} inject(s) played; debrief with "
                   f"`twin drill debrief --store {shown_target(store_dir)} --drill {summary['drill']} --out DIR`")


def _offset(text: str, start) -> float:
    """Seconds from the scenario's start of ``--start-at``: a duration, or an instant with a zone."""
    from datetime import datetime

    from scenarios.schema import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        reason = str(exc)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: {reason}, or an instant such as {start.isoformat()}",
                                 param_hint="--start-at") from None
    if when.tzinfo is None:
        raise click.BadParameter(f"{text!r}: give the instant's zone (e.g. +08:00)", param_hint="--start-at")
    return (when - start).total_seconds()


@drill.command("debrief")
@click.option("--store", "store_dir", required=True, type=StoreTarget("store"),
              help="The store the drill was played into (a directory or a postgresql:// URL).")
@click.option("--drill", "drill_id", default=None, help="Drill id (default: the newest drill in the store).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for debrief.html, debrief.json and timeline.csv.")
def debrief_cmd(store_dir: Path | str, drill_id: str | None, out_dir: Path) -> None:
    """Debrief of a drill: timeline of injects, alerts and actions; reaction times; targets met or missed."""
    from scenarios.debrief import collect, write_debrief
    from twin.store import Store

    with user_errors(), Store.open(store_dir) as store:
        debrief = collect(store, drill_id)
        paths = write_debrief(debrief, out_dir)
    k = debrief.kpis
    click.echo(f"drill {debrief.drill['drill']}: {k['injects_played']} inject(s), {k['alerts']} alert(s), "
               f"{k['acknowledgements'] + k['actions']} action(s); targets met {k['targets_met']}/{k['targets']}")
    for t in debrief.targets:
        click.echo(f"  {t['verdict']:<10} {t['title'] or t['name']}")
    click.echo(f"wrote {paths['html']}")


COMMAND = drill
