"""``twin evacuate district``: people in a flood's hazard zone walk (or drive) to shelters over the road graph."""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import InputPath, echo_json, run_output_options, run_store, user_errors


def _minutes(s: float | None) -> str:
    return "never" if s is None or s != s else f"{s / 60:.1f} min"


@click.command("district")
@click.option("--flood", "flood", type=InputPath("flood_run"), required=True,
              help="The flood run: flood.nc of `twin flood run` (or its folder). Its depth and speed close and "
                   "slow streets over time, and its hazard zone says who leaves.")
@click.option("--shelters", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Shelters: CSV (name, lon, lat, capacity; '#' comment lines) or GeoJSON points. Default: the "
                   "ASSUMED demo shelters of Futian/Nanshan (agents/data/futian_shelters_demo.csv).")
@click.option("--hazard-class", type=click.IntRange(2, 6), default=None,
              help="ARR 2019 hazard class (H2-H6) from which a street is closed to walkers and a cell must leave "
                   "[default: 3, unsafe for children and the elderly].")
@click.option("--depth-threshold", type=float, default=None, metavar="M",
              help="Use a depth (m) instead of a hazard class.")
@click.option("--zone", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="RASTER",
              help="Who leaves, from a raster instead of the flood's hazard class: boolean, or a probability 0-1 "
                   "(GeoTIFF etc., any CRS; e.g. a landslide runout footprint). The flood still closes streets.")
@click.option("--zone-threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.5, show_default=True,
              help="Probability from which a --zone cell leaves.")
@click.option("--districts", default=None, metavar="A,B",
              help="Only these districts (names or codes): their roads (plus 500 m) and their people.")
@click.option("--roads", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Road network file (GeoJSON edges, .osm, Overpass .json); default: the city's drive_roads layer.")
@click.option("--mode", type=click.Choice(["walk", "car"]), default="walk", show_default=True,
              help="On foot (walkable streets, SFPE flows) or by car (Pregnolato 2017 closures).")
@click.option("--group-size", type=click.IntRange(1, 1000), default=None,
              help="People per agent (1: one agent per person) [default: 20 on foot, 3 by car].")
@click.option("--seed", type=click.IntRange(0, None), default=0, show_default=True,
              help="Seed of departure times and service order.")
@click.option("--max-hours", type=float, default=4.0, show_default=True, help="Longest simulated time (h).")
@click.option("--departure-window", "departure_min", type=float, default=10.0, show_default=True,
              help="Departures spread uniformly over this many minutes.")
@click.option("--city", "city_name", default="shenzhen", show_default=True, metavar="NAME",
              help="City whose roads, census and districts to use.")
@run_output_options("evacuation.nc, edges.parquet, shelters.csv, events.jsonl, evacuation_curve.png, "
                    "summary.json, report.html, map.html")
def district(flood, shelters, hazard_class, depth_threshold, zone, zone_threshold, districts, roads, mode, group_size, seed, max_hours,
             departure_min, out_dir, city_name, with_map, with_report, as_json, store_dir) -> None:
    """Evacuate the people of a flood's hazard zone to shelters over the road network.

    People where the flood's ARR hazard class reaches --hazard-class (2020 census spread over land
    cells: an assumption) walk in groups from the nearest road node to the nearest shelter with
    room; streets close and slow as the water rises; groups caught or cut off are stranded.

    Example: twin evacuate district --flood runs/futian/flood.nc --out runs/futian_evac
    """
    from twin import pipeline
    from twin.cli.kinds import _Bar
    from twin.errors import RequestError

    if hazard_class is not None and depth_threshold is not None:
        raise click.UsageError("give --hazard-class or --depth-threshold, not both")
    for name, v in (("--depth-threshold", depth_threshold), ("--max-hours", max_hours)):
        if v is not None and not (v == v and 0 < v < float("inf")):
            raise click.BadParameter(f"{v!r}: give a finite number > 0", param_hint=name)
    if not (departure_min == departure_min and departure_min >= 0):
        raise click.BadParameter(f"{departure_min!r}: give minutes >= 0", param_hint="--departure-window")
    params = {"flood": str(flood), "shelters": None if shelters is None else str(shelters),
              "hazard_class": hazard_class, "depth_threshold": depth_threshold,
              "zone": None if zone is None else str(zone), "zone_threshold": zone_threshold,
              "districts": None if districts is None else [d.strip() for d in districts.split(",") if d.strip()],
              "roads": None if roads is None else str(roads), "mode": mode, "group_size": group_size,
              "seed": seed, "max_hours": max_hours, "departure_window_min": departure_min}
    with user_errors():
        from twin.city import City

        city = City(city_name)
        try:  # refused before anything runs, pinned on its option
            pipeline.check("evacuate_district", params, city=city)
        except RequestError as exc:
            raise click.BadParameter(str(exc), param_hint="--" + exc.field.replace("_", "-")) from None
        with _Bar("evacuate district") as bar, run_store(store_dir) as store:
            res = pipeline.run("evacuate_district", params, out_dir, store=store, city=city, progress=bar.update,
                               report=with_report, map=with_map)
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    click.echo(f"{s['evacuees']:,.0f} people in {s['groups']} groups: {s['arrived']:,.0f} at a shelter, "
               f"{s['stranded']:,.0f} stranded, {s['still_moving']:,.0f} still on their way; "
               f"50 % in {_minutes(s['time_to_50pct_s'])}, 95 % in {_minutes(s['time_to_clear_95pct_s'])}; "
               f"{s['edges_closed']} street edges closed; longest queue {s['max_queue_people']:,.0f} people")
    click.echo(f"done in {res.wall_s:.1f} s; wrote {out_dir}/ ({', '.join(p.name for p in res.paths.values())})")
