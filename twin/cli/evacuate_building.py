"""``twin evacuate building``: evacuate a building (SFPE-based, agent by agent) and write its outputs.

The click command of the ``evacuate_building`` run kind
(:mod:`agents.building_run`); the command family ``twin evacuate`` lists it.
"""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import ExistingFile, echo_json, run_output_options, run_store, user_errors


def _path_param(kind: str) -> ExistingFile:
    return ExistingFile({"building": "a building description (.toml or .json)",
                  "osm": "a buildings GeoJSON with building:levels",
                  "aset": "a CSV with columns floor,aset_s"}[kind])


@click.command("building")
@click.argument("building_file", required=False, type=_path_param("building"), metavar="[FILE]")
@click.option("--levels", type=int, default=None,
              help="Instead of FILE: a generated tower of this many storeys (needs --floor-area).")
@click.option("--floor-area", "floor_area_m2", type=float, default=None, metavar="M2",
              help="Floor plate of the generated tower (m²).")
@click.option("--use", type=click.Choice(["residential", "business"]), default="residential", show_default=True,
              help="Use of the generated tower (load factor, stairs; see agents.building.tower_from_osm).")
@click.option("--osm", type=_path_param("osm"), default=None,
              help="Instead of FILE: a buildings GeoJSON with building:levels (e.g. OSM footprints).")
@click.option("--osm-id", default=None, metavar="ID", help="The building of --osm (default: the tallest).")
@click.option("--aset", type=_path_param("aset"), default=None,
              help="CSV floor,aset_s: available safe egress time per floor (gives RSET - ASET).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of every random draw (same seed, same run).")
@click.option("--dt", type=float, default=0.5, show_default=True, help="Time step (s), 0.05-1.")
@click.option("--record-every", "record_every_s", type=float, default=5.0, show_default=True,
              help="Interval of the time series and map frames (s), a whole number of steps.")
@click.option("--max-time", "max_time_s", type=float, default=6 * 3600.0, show_default=True,
              help="Stop after this much simulated time (s); people still inside are reported.")
@click.option("--runs", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Repeat with seeds SEED..SEED+RUNS-1 and report RSET's mean, median and 95th percentile "
                   "(IMO MSC.1/Circ.1533 asks >= 50 runs); files and map are the first run's.")
@click.option("--city", "city_name", default="shenzhen", show_default=True, metavar="NAME",
              help="City whose district outlines the map draws around the building.")
@run_output_options("evacuation.nc, floors.csv, occupants.csv, events.jsonl, evacuation_curve.png, "
                    "people_per_floor.png, summary.json, report.html, map.html",
                    map_help="Also write map.html (offline; the floors on the time slider, 3-D).")
def building(building_file, levels, floor_area_m2, use, osm, osm_id, aset, seed, dt, record_every_s, max_time_s,
             runs, out_dir, city_name, with_report, with_map, as_json, store_dir) -> None:
    """Evacuate a building: RSET per floor and overall, flows, queues, maps.

    FILE is a building description (.toml or .json; see agents/building.py,
    example agents/data/tower_30_residential.toml). Or give --levels with
    --floor-area for a generated tower, or --osm (with --osm-id) for a
    tower from OpenStreetMap footprints.

    Example: twin evacuate building agents/data/tower_30_residential.toml --out runs/tower
    """
    from twin import pipeline
    from twin.cli.kinds import ProgressBar
    from twin.errors import RequestError

    params = {"building": None if building_file is None else str(building_file), "levels": levels,
              "floor_area_m2": floor_area_m2, "use": use, "osm": None if osm is None else str(osm),
              "osm_id": osm_id, "aset": None if aset is None else str(aset), "seed": seed, "dt": dt,
              "record_every_s": record_every_s, "max_time_s": max_time_s, "runs": runs}
    sources = [n for n, v in (("FILE", building_file), ("--osm", osm), ("--levels", levels)) if v is not None]
    if len(sources) != 1:
        raise click.UsageError(f"give exactly one of FILE, --osm or --levels (got {', '.join(sources) or 'none'})")
    for name, value, ok in (("--dt", dt, 0.05 <= dt <= 1.0), ("--record-every", record_every_s, record_every_s > 0),
                            ("--max-time", max_time_s, max_time_s > 0)):
        if not ok:
            raise click.BadParameter(f"{value!r} is out of range ({'0.05-1 s' if name == '--dt' else '> 0 s'})",
                                     param_hint=name)
    with user_errors():
        try:  # the building file is read and checked here, before anything runs
            req = pipeline.check("evacuate_building", params)
        except RequestError as exc:  # a bad file: one line naming it and every problem in it
            hint = {"building": "FILE"}.get(exc.field, "--" + exc.field.replace("_", "-"))
            raise click.ClickException(f"{hint}: {' '.join(str(exc).split())}") from None
        city = None
        if with_map and city_name:
            from twin.city import City

            city = City(city_name)
        with ProgressBar("Building evacuation") as bar, run_store(store_dir) as store:
            res = pipeline.run("evacuate_building", req, out_dir, store=store, city=city, progress=bar.update,
                               report=with_report, map=with_map)
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    rset = s["rset_s"]
    click.echo(f"{s['building']}: {s['people']} people, {s['floors']} floors")
    if rset is not None and rset == rset:
        click.echo(f"RSET {rset:.0f} s ({rset / 60:.1f} min); slowest floor {s['slowest_floor']} cleared at "
                   f"{s['rset_floor_max_s']:.0f} s; {s['people_out']} out, {s['people_in_refuge']} in refuge floors")
    else:
        click.echo(f"{s['people_not_safe']} people still inside after {max_time_s:.0f} s")
    if s.get("rset_runs"):
        r = s["rset_runs"]
        click.echo(f"over {r['runs']} runs: RSET mean {r['mean_s']:.0f} s, median {r['p50_s']:.0f} s, "
                   f"95th percentile {r['p95_s']:.0f} s, max {r['max_s']:.0f} s")
    if s["floors_rset_after_aset"]:
        click.echo(f"floors still occupied after their ASET: {s['floors_rset_after_aset']}")
    click.echo(f"wrote {out_dir}/ ({', '.join(Path(p).name for p in res.paths.values())})")
