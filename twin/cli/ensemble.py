"""``twin ensemble``: ensembles of any run kind on Dask, and their products.

``twin ensemble run KIND --members N --workers W --out DIR`` perturbs the
base request (``--set key=value``, ``--params FILE.json``) with
``--rain-cv`` / ``--rain-range``, ``--peak-shift`` and ``--param
name=DIST`` (``normal:SD``, ``uniform:LOW,HIGH``, ``lognormal:CV``), runs the
members on a LocalCluster (or ``--scheduler tcp://host:8786``) and writes
the members' store, table and products (:mod:`scenarios.ensemble`,
:mod:`scenarios.ensemble_products`). ``twin ensemble products DIR`` rewrites
the products (another threshold). The model packages are imported only
inside the commands.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

import click

from twin.cli._util import echo_json, user_errors


def _value(kind: Any, key: str, text: str) -> Any:
    """The value of ``--set key=text``: JSON when it parses, a comma list for a list field, else text."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    f = kind.request.model_fields.get(key)
    ann = f.annotation if f is not None else None
    if any(typing.get_origin(a) is list for a in (typing.get_args(ann) or (ann,))):
        return [s.strip() for s in text.split(",") if s.strip()]
    return text


def _pairs(items: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: use NAME=VALUE", param_hint=option)
        out.append((key.strip(), val.strip()))
    return out


def _progress(p: dict) -> None:
    if p["phase"] == "members":
        state = "ok" if p.get("ok") else f"FAILED: {p.get('error')}"
        click.echo(f"member {p['member']:4d} {state}  [{p['done']}/{p['total']}, {p['failed']} failed, "
                   f"{p['wall_s']:.1f} s]", err=True)
    else:
        click.echo(f"{p['phase']}...", err=True)


@click.group("ensemble")
def ensemble() -> None:
    """Ensembles of a run kind on Dask: perturbed members, exceedance maps, percentiles, KPI spreads."""


@ensemble.command("run")
@click.argument("kind")
@click.option("--members", "n_members", type=click.IntRange(1, 10_000), required=True, help="Number of members.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True,
              help="LocalCluster worker processes (one thread each).")
@click.option("--scheduler", default=None, metavar="URL",
              help="An existing Dask scheduler (tcp://host:8786) instead of a LocalCluster; its workers must "
                   "see --out and the data.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the perturbations.")
@click.option("--rain-cv", type=click.FloatRange(0, min_open=True), default=None,
              help="Rain scale factor: lognormal with mean 1 and this coefficient of variation.")
@click.option("--rain-range", default=None, metavar="LOW,HIGH", help="Rain scale factor: uniform in [LOW, HIGH].")
@click.option("--peak-shift", type=click.FloatRange(0, min_open=True), default=None, metavar="SD",
              help="Rain timing: normal shift of peak_fraction with this SD (clipped to 0-1).")
@click.option("--param", "params", multiple=True, metavar="NAME=DIST",
              help="Perturb a numeric request field: normal:SD (added), uniform:LOW,HIGH, lognormal:CV "
                   "(factor). Repeatable.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A field of the base request (JSON value, or text; lists comma-separated). Repeatable.")
@click.option("--params-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The base request as a JSON object (--set entries override it).")
@click.option("--warmup/--no-warmup", default=True, show_default=True,
              help="Run the base request once per worker before the members (loads the kernels).")
@click.option("--threshold", type=float, default=None,
              help="Exceedance threshold (default: 0.3 m for max_depth, FS 1 for fs_min).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_cmd(kind: str, n_members: int, workers: int, scheduler: str | None, seed: int, rain_cv: float | None,
            rain_range: str | None, peak_shift: float | None, params: tuple[str, ...], sets: tuple[str, ...],
            params_file: Path | None, warmup: bool, threshold: float | None, out_dir: Path,
            as_json: bool) -> None:
    """Run N perturbed members of run kind KIND (flood, flood_forecast, slope...) on Dask."""
    import logging

    import distributed  # noqa: F401 - its loggers exist once imported

    from scenarios.ensemble import parse_dist, run_ensemble
    from scenarios.ensemble_products import ensemble_products
    from twin.runkinds import get_kind

    for name in list(logging.root.manager.loggerDict):  # the cluster's own INFO lines
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.ERROR)
    with user_errors():
        k = get_kind(kind)
        base: dict[str, Any] = {}
        if params_file is not None:
            try:
                base = json.loads(params_file.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise click.BadParameter(f"{params_file}: not JSON ({exc})", param_hint="--params-file") from None
            if not isinstance(base, dict):
                raise click.BadParameter(f"{params_file}: give a JSON object", param_hint="--params-file")
        base.update({key: _value(k, key, val) for key, val in _pairs(sets, "--set")})
        if rain_cv is not None and rain_range is not None:
            raise click.UsageError("give --rain-cv or --rain-range, not both")
        perturb: dict[str, Any] = {"seed": seed,
                                   "params": {n: parse_dist(d) for n, d in _pairs(params, "--param")}}
        if rain_cv is not None:
            perturb["rain_scale"] = parse_dist(f"lognormal:{rain_cv}")
        if rain_range is not None:
            perturb["rain_scale"] = parse_dist(f"uniform:{rain_range}")
        if peak_shift is not None:
            perturb["rain_timing"] = parse_dist(f"normal:{peak_shift}")
        res = run_ensemble(k, base, perturb, n_members, out_dir, scheduler=scheduler, workers=workers,
                           warmup_params=base if warmup else None, progress=_progress)
        paths = ensemble_products(out_dir, threshold=threshold) if len(res.failed) < n_members else {}
    summary = {"out": str(out_dir), "members": n_members, "failed": [
        {k_: f[k_] for k_ in ("member", "error")} for f in res.failed], "workers": res.workers,
        "wall_s": round(res.wall_s, 3), "members_per_hour": round(res.members_per_hour, 1),
        "files": {n: Path(p).name for n, p in {"zarr": res.zarr, "table": res.table, **paths}.items()}}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{n_members - len(res.failed)}/{n_members} members in {res.wall_s:.1f} s on {res.workers} "
                   f"worker(s) ({res.members_per_hour:.0f} members/h) -> {out_dir}")
        for f in res.failed:
            click.echo(f"  member {f['member']} failed: {f['error']}; parameters in {res.manifest.name}")
    if res.failed:
        sys.exit(1)


@ensemble.command("products")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--threshold", type=float, default=None, help="Exceedance threshold (default per variable).")
@click.option("--below", is_flag=True, default=None, help="P(field < threshold) instead of > (default per variable).")
def products_cmd(out_dir: Path, threshold: float | None, below: bool | None) -> None:
    """Write the exceedance, percentile and spread maps and the KPI distribution of an ensemble folder."""
    from scenarios.ensemble_products import ensemble_products

    with user_errors():
        paths = ensemble_products(out_dir, threshold=threshold, direction="below" if below else None)
    for name, p in paths.items():
        click.echo(f"{name}: {p}")


COMMAND = ensemble
