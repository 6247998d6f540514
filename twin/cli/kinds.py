"""``twin <kind> run``: the command family of a run kind, made from its request schema.

A model that registers a :class:`twin.runkinds.RunKind` without a command of
its own gets this one: one option per request field (``--name`` for
``name``; booleans as ``--name/--no-name``; lists as comma-separated text;
other structures as JSON), ``--out``, ``--city``, ``--report/--no-report``,
``--map/--no-map`` and ``--json``; the run goes through
:func:`twin.pipeline.run` with a progress bar, after :func:`twin.pipeline.check`
(a value the model refuses is a usage error naming its option).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import click

from twin.cli._util import echo_json, user_errors

_SCALARS = {float: click.FLOAT, int: click.INT, str: click.STRING}


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the non-None type of an annotation, whether None is allowed)."""
    args = typing.get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _option(name: str, field: Any) -> tuple[click.Option, Any]:
    """A click option for one request field and the converter of its value."""
    typ, _ = _base_type(field.annotation)
    flag = "--" + name.replace("_", "-")
    doc = field.description or ""
    required = field.is_required()
    default = None if required else field.default
    if typ is bool:
        return click.Option([f"{flag}/--no-{flag[2:]}", name], default=bool(default), show_default=True,
                            help=doc), bool
    if typ in _SCALARS:
        return click.Option([flag, name], type=_SCALARS[typ], required=required, default=default,
                            show_default=default is not None, help=doc), None
    if typing.get_origin(typ) is list:
        return (click.Option([flag, name], required=required, default=None, metavar="A,B",
                             help=(doc + " " if doc else "") + "(comma-separated)"),
                lambda v: [s.strip() for s in v.split(",") if s.strip()])
    return (click.Option([flag, name], required=required, default=None, metavar="JSON",
                         help=(doc + " " if doc else "") + "(JSON)"), json.loads)


def check_request(kind: Any, params: dict[str, Any], *, hints: dict[str, str] | None = None, **kw: Any) -> Any:
    """``twin.pipeline.check(kind, params, **kw)``: what the model would refuse mid-run, refused before it starts,
    as a click error pinned on the option of the field (``--field-name``, or ``hints[field]``: an argument's
    name such as ``SOURCES``)."""
    from twin import pipeline
    from twin.errors import RequestError

    try:
        return pipeline.check(kind, params, **kw)
    except RequestError as exc:
        hint = (hints or {}).get(exc.field, "--" + str(exc.field).replace("_", "-"))
        raise click.BadParameter(str(exc), param_hint=hint) from None


def kind_command(kind: Any) -> click.Group:
    """The ``twin <kind.command_name>`` group with its ``run`` command."""
    fields = kind.request.model_fields
    options, convert = [], {}
    for name, f in fields.items():
        opt, conv = _option(name, f)
        options.append(opt)
        if conv is not None:
            convert[name] = conv

    def run_cb(out_dir: Path, city_name: str | None, with_report: bool, with_map: bool, as_json: bool,
               **values: Any) -> None:
        from twin import pipeline

        params = {}
        for name, v in values.items():
            if v is None:
                continue
            try:
                params[name] = convert[name](v) if name in convert else v
            except ValueError as exc:
                raise click.BadParameter(f"{v!r}: {exc}", param_hint="--" + name.replace("_", "-")) from None

        with user_errors():
            city = None
            if city_name:
                from twin.city import City

                city = City(city_name)
            params = check_request(kind, params, city=city)  # refused now, pinned on its option
            with ProgressBar(kind.title) as bar:
                res = pipeline.run(kind, params, out_dir, city=city, progress=bar.update,
                                   report=with_report, map=with_map)
        if as_json:
            echo_json(pipeline.clean_json(res.summary))
            return
        click.echo(f"{kind.title}: done in {res.wall_s:.1f} s; wrote {out_dir}/ "
                   f"({', '.join(p.name for p in res.paths.values())})")

    params = [
        click.Option(["--out", "out_dir"], type=click.Path(file_okay=False, path_type=Path), required=True,
                     help=f"Output folder: {kind.output}, summary.json, report.html, map.html."),
        click.Option(["--city", "city_name"], default=None, metavar="NAME",
                     help="City the run works on (its basemap on the map)."),
        click.Option(["--report/--no-report", "with_report"], default=True, show_default=True,
                     help="Also write report.html (offline)."),
        click.Option(["--map/--no-map", "with_map"], default=True, show_default=True,
                     help="Also write map.html (offline map)."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print summary.json to stdout."),
        *options,
    ]
    run = click.Command("run", callback=run_cb, params=params,
                        help=f"Run a {kind.title.lower()} and write its outputs, report and map.")
    group = click.Group(kind.command_name, help=f"{kind.title} ({kind.name} runs).")
    group.add_command(run)
    return group


class ProgressBar:
    """A rich progress bar on stderr fed by the pipeline's progress dicts.

    ``with ProgressBar("Building evacuation") as bar: run(..., progress=bar.update)``;
    ``bar.update({"fraction": 0.4, "phase": "floor 3"})``.
    """

    def __init__(self, title: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn(f"[bold]{title}[/bold]"), BarColumn(), TextColumn("{task.fields[phase]}"),
                           TimeElapsedColumn(), console=Console(stderr=True))
        self._task = None

    def __enter__(self) -> ProgressBar:
        self._p.start()
        self._task = self._p.add_task("run", total=1.0, phase="")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._p.stop()

    def update(self, p: dict[str, Any]) -> None:
        self._p.update(self._task, completed=p.get("fraction", 0.0), phase=p.get("phase", ""))


#: The old private name (kept: other modules import it).
_Bar = ProgressBar
