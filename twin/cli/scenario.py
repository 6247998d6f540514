"""``twin scenario``: scenario files (TOML or YAML) — their JSON Schema, the built-ins, show and check.

``schema`` writes the JSON Schema of a scenario file (with every registered
model's parameters) for editors; ``list`` the built-in scenarios; ``show`` a
scenario validated (TOML or ``--json``); ``check`` a file, every problem listed.
The coupled runner adds ``run`` to this group.
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


# ``twin scenario run`` is added here by the coupled runner (scenarios/runner.py).

COMMAND = scenario
