"""``twin scenario``: scenario files (TOML or YAML) — their JSON Schema, the built-ins, show, check and run.

``schema`` writes the JSON Schema of a scenario file (with every registered
model's parameters) for editors; ``list`` the built-in scenarios; ``show`` a
scenario validated (TOML or ``--json``); ``check`` a file, every problem listed;
``run`` runs a scenario coupled on one clock (:mod:`scenarios.run_scenario`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from twin.cli._util import echo_json


@click.group("scenario")
def scenario() -> None:
    """Scenario files: JSON Schema, built-in Shenzhen scenarios, show, check."""


@scenario.command("schema")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the schema to this file (default: print it).")
def schema_cmd(out: Path | None) -> None:
    """JSON Schema (2020-12) of a scenario file, with every registered model's parameters.

    Point an editor at it (e.g. the "$schema" of a YAML language server) to
    check scenario files while writing them.
    """
    import json

    from scenarios.schema import scenario_json_schema

    text = json.dumps(scenario_json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)


@scenario.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """The built-in scenarios: name, title, models, area."""
    from scenarios.files import builtin_names, load_scenario

    rows = []
    for name in builtin_names():
        sc = load_scenario(name).scenario
        area = sc.area
        where = ("whole city" if area.whole_city else ", ".join(area.districts) if area.districts
                 else f"bbox {list(area.bbox)}" if area.bbox else f"polygon {area.polygon}")
        rows.append({"name": name, "title": sc.title, "models": list(sc.models), "area": where,
                     "start": sc.time.start.isoformat(), "duration_h": sc.time.hours})
    if as_json:
        echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "title", "models", "area")
    for r in rows:
        t.add_row(r["name"], r["title"], ", ".join(r["models"]), r["area"])
    Console(width=200).print(t)


@scenario.command("show")
@click.argument("scenario_ref", metavar="NAME|FILE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
def show_cmd(scenario_ref: str, as_json: bool) -> None:
    """A scenario, validated: a built-in NAME or a FILE, as TOML (defaults written out) or JSON.

    The scenario's hash (sha256 of its canonical JSON) comes first, as a
    comment in TOML and as "hash" in JSON.
    """
    from scenarios.files import ScenarioError, load_scenario, scenario_toml

    try:
        loaded = load_scenario(scenario_ref)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo_json({"hash": loaded.hash, "file": str(loaded.path),
                   "scenario": loaded.scenario.model_dump(mode="json")})
        return
    sys.stdout.write(f"# {loaded.path}\n# scenario hash {loaded.hash}\n\n" + scenario_toml(loaded.scenario))


@scenario.command("check")
@click.argument("scenario_ref", metavar="FILE|NAME")
@click.option("--no-precheck", is_flag=True,
              help="Skip the models' own pre-checks (they read the city's data: TWIN_DATA).")
def check_cmd(scenario_ref: str, no_precheck: bool) -> None:
    """Check a scenario file: exit 0 when it can run, 1 with every problem listed (path, value, what is allowed)."""
    from scenarios.files import ScenarioError, load_scenario

    try:
        loaded = load_scenario(scenario_ref, precheck=not no_precheck)
    except ScenarioError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    sc = loaded.scenario
    click.echo(f"{loaded.path}: OK — {sc.name}: {len(sc.models)} model(s) ({', '.join(sc.models)}), "
               f"{len(sc.injects)} inject(s), hash {loaded.hash}")


def _seconds(value: str | None, option: str) -> float | None:
    from scenarios.schema import DURATION_HELP, parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give {DURATION_HELP}", param_hint=option) from None


RUN_EXAMPLES = """
\b
Examples:
  twin scenario run futian_typhoon_night
  twin scenario run shenzhen_2023_09_07_city --duration 1h --resolution 250 --out runs/city
  twin scenario run my_scenario.toml --checkpoint-every 30min --out runs/mine
  twin scenario run --resume runs/mine          # finish a run that stopped
"""


@scenario.command("run", epilog=RUN_EXAMPLES)
@click.argument("scenario_ref", metavar="NAME|FILE", required=False)
@click.option("--out", "-o", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: runs/<scenario>_<UTC time>).")
@click.option("--duration", default=None, metavar="DURATION",
              help="Run only the start of the scenario, e.g. 1h, 30min (its storm keeps its length).")
@click.option("--resolution", type=click.FloatRange(min=1.0, max=5000.0), default=None, metavar="M",
              help="Grid cell size in metres instead of the model sections' finest.")
@click.option("--checkpoint-every", "checkpoint_every", default=None, metavar="DURATION",
              help="Checkpoint every so much simulated time, e.g. 30min (for --resume).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Finish the run in this directory from its last checkpoint.")
@click.option("--no-map", is_flag=True, help="Do not write map.html.")
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
def run_cmd(scenario_ref: str | None, out: Path | None, duration: str | None, resolution: float | None,
            checkpoint_every: str | None, resume_dir: Path | None, no_map: bool, no_report: bool) -> None:
    """Run a scenario coupled on one clock: fields.nc, tables (GeoParquet), report.html, map.html.

    The file is checked first: a bad file gets every problem listed and exit
    code 2, and nothing runs; so does a model that no coupling runs, and
    --checkpoint-every with a coupling that cannot be checkpointed. Prints the
    couplings and why each runs, a progress bar, then the run directory and
    the headline KPIs.
    """
    from scenarios.files import ScenarioError, load_scenario
    from scenarios.outputs import kpi_lines
    from scenarios.run_scenario import default_out_dir, resume_scenario, run_scenario
    from scenarios.translate import translate
    from twin.cli.kinds import ProgressBar
    from twin.errors import TwinError, ValidationError

    if resume_dir is not None:
        if scenario_ref is not None or duration or resolution or checkpoint_every:
            raise click.UsageError("--resume takes the run directory only: the scenario and options "
                                   "are those of the run")
        try:
            with ProgressBar("resume") as bar:
                run, tr = resume_scenario(resume_dir, progress=bar.update)
        except TwinError as exc:
            raise click.ClickException(str(exc)) from exc
        _report(run, resume_dir, kpi_lines)
        return
    if scenario_ref is None:
        raise click.UsageError("give a scenario NAME or FILE (twin scenario list), or --resume DIR")
    seconds = _seconds(duration, "--duration")
    every = _seconds(checkpoint_every, "--checkpoint-every")
    try:
        loaded = load_scenario(scenario_ref)
        tr = translate(loaded, duration_s=seconds, resolution_m=resolution)
    except (ScenarioError, ValidationError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if every is not None:
        from scenarios.coupling import couplings

        stuck = [n for n in tr.config.couplings if not couplings()[n].resumable]
        if stuck:
            click.echo(f"--checkpoint-every {checkpoint_every}: couplings {stuck} define no save/restore, so "
                       "the run could not be resumed; run without --checkpoint-every", err=True)
            sys.exit(2)
    out = out or default_out_dir(loaded.scenario.name)
    click.echo(f"{loaded.scenario.name}: {len(tr.config.couplings)} coupling(s), "
               f"{tr.config.duration_s / 3600:g} h at {tr.config.resolution_m:g} m", err=True)
    for name, why in tr.reasons.items():
        click.echo(f"  {name}: {why}", err=True)
    try:
        with ProgressBar(loaded.scenario.name) as bar:
            run, _ = run_scenario(loaded, out, duration_s=seconds, resolution_m=resolution,
                                  checkpoint_every_s=every, map=False if no_map else None,
                                  report=False if no_report else None, progress=bar.update)
    except TwinError as exc:
        raise click.ClickException(str(exc)) from exc
    _report(run, out, kpi_lines)


def _report(run, out: Path, kpi_lines) -> None:
    click.echo(str(out))
    for line in kpi_lines(run.summary.get("kpis", {})):
        click.echo(f"  {line}")
    for p in run.summary.get("output_problems", []):
        click.echo(f"  output problem: {p}", err=True)


COMMAND = scenario
