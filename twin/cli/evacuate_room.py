"""``twin evacuate room``: evacuate one walkable place (pedestrian crowd model) and write its outputs.

The click command of the ``evacuate_room`` run kind (:mod:`agents.room_run`);
the command family ``twin evacuate`` lists it.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from twin.cli._util import ExistingFile, echo_json, run_output_options, run_store, user_errors

_CLOSE = re.compile(r"^\s*(?P<exit>[^@\s]+)\s*@\s*(?P<t>[0-9]*\.?[0-9]+)\s*s?\s*$")


def parse_closures(values) -> list[dict]:
    """``["E1@30", "N@0"]`` -> ``[{"exit": "E1", "at_s": 30.0}, ...]``; a bad one is a one-line usage error."""
    out = []
    for v in values:
        m = _CLOSE.match(v)
        if m is None:
            raise click.BadParameter(f"{v!r}: give EXIT_ID@SECONDS, e.g. E1@30", param_hint="--close-exit")
        out.append({"exit": m["exit"], "at_s": float(m["t"])})
    return out


@click.command("room")
@click.argument("place", type=ExistingFile("a GeoJSON FeatureCollection of the place (role walkable / exit / wall)"),
                metavar="PLACE.geojson")
@click.option("--people", type=click.IntRange(1, 200_000), default=None,
              help="People placed uniformly at random in the walkable area (seeded).")
@click.option("--density", type=click.FloatRange(0.0, 3.0, min_open=True), default=None, metavar="P/M2",
              help="Instead: this many people per m² of walkable area, placed at random.")
@click.option("--agents", "agents_csv", type=ExistingFile("a CSV with columns lon,lat (or x,y)"), default=None,
              metavar="FILE.csv",
              help="Instead: people from a CSV: lon,lat (or x,y in the place's CRS); optional speed_mps, "
                   "premovement_s, age (with --speed-profile rimea_age); '#' lines are comments.")
@click.option("--close-exit", "close", multiple=True, metavar="ID@T",
              help="Close exit ID at T seconds (repeatable): it becomes a wall and people re-route.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of placement, speeds and pre-movement (same seed, same run).")
@click.option("--dt", type=click.FloatRange(0.01, 0.2), default=0.05, show_default=True, help="Time step (s).")
@click.option("--record-every", "record_every_s", type=click.FloatRange(0.0, 60.0, min_open=True), default=0.5,
              show_default=True, help="Interval of the trajectory samples (s), a whole number of steps.")
@click.option("--until", "until_s", type=click.FloatRange(0.0, 86_400.0, min_open=True), default=1800.0,
              show_default=True, help="Stop after this much simulated time (s); people left inside are reported.")
@click.option("--speed-profile", type=click.Choice(["weidmann_adult", "rimea_age"]), default="weidmann_adult",
              show_default=True, help="Free walking speeds: Weidmann 1993 adults, or RiMEA 3.0 speeds by age.")
@click.option("--premovement", "premovement_median_s", type=click.FloatRange(0.0, 3600.0), default=0.0,
              show_default=True, metavar="MEDIAN_S",
              help="Median pre-movement time (s), lognormal with --premovement-sigma; 0: all start at once.")
@click.option("--premovement-sigma", type=click.FloatRange(0.0, 3.0, min_open=True), default=0.5, show_default=True,
              help="Sigma of the lognormal pre-movement time.")
@click.option("--stall-after", "stall_s", type=click.FloatRange(0.0, 86_400.0), default=120.0, show_default=True,
              metavar="S", help="Stop early when nobody has left for S seconds (a clogged door); 0: never.")
@click.option("--runs", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Repeat with seeds SEED..SEED+RUNS-1 and report the evacuation time's mean and 95th percentile "
                   "(IMO MSC.1/Circ.1533 asks >= 50 runs); files and map are the first run's.")
@click.option("--city", "city_name", default="shenzhen", show_default=True, metavar="NAME",
              help="City whose districts and metro the map draws around the place ('' for none).")
@run_output_options("trajectories.nc, exits.csv, events.jsonl, evacuation_curve.png, exit_flow.png, "
                    "max_density.png, summary.json, report.html, map.html",
                    map_help="Also write map.html (offline; people moving on the time slider, exits, max density).")
def room(place, people, density, agents_csv, close, seed, dt, record_every_s, until_s, speed_profile,
         premovement_median_s, premovement_sigma, stall_s, runs, out_dir, city_name, with_report, with_map,
         as_json, store_dir) -> None:
    """Evacuate a walkable place: evacuation time, flows per exit, densities, a map of people moving.

    PLACE.geojson is a FeatureCollection in lon/lat (or with a legacy "crs"
    member naming its CRS) whose features carry a "role" property:
    "walkable" (Polygon/MultiPolygon; several are merged; holes are
    obstacles), "exit" (a two-point LineString on the walkable boundary,
    with an "id"), "wall" (LineString or Polygon inside: walls, pillars).
    People walk by the collision-free speed model (Tordeux et al. 2016)
    down the geodesic distance to the open exits.

    Give exactly one of --people, --density or --agents.

    Example: twin evacuate room agents/data/room_futian_station_hall.geojson --people 1500
    --close-exit S@20 --out runs/hall
    """
    from twin import pipeline
    from twin.cli.kinds import ProgressBar
    from twin.errors import RequestError

    sources = [n for n, v in (("--people", people), ("--density", density), ("--agents", agents_csv))
               if v is not None]
    if len(sources) != 1:
        raise click.UsageError(f"give exactly one of --people, --density or --agents "
                               f"(got {', '.join(sources) or 'none'})")
    steps = record_every_s / dt
    if abs(steps - round(steps)) > 1e-6 * steps:
        raise click.BadParameter(f"{record_every_s!r} s is not a whole number of --dt {dt!r} s steps",
                                 param_hint="--record-every")
    params = {"place": str(place), "people": people, "density": density,
              "agents": None if agents_csv is None else str(agents_csv), "close_exits": parse_closures(close),
              "seed": seed, "dt": dt, "record_every_s": record_every_s, "until_s": until_s,
              "speed_profile": speed_profile, "premovement_median_s": premovement_median_s,
              "premovement_sigma": premovement_sigma, "stall_s": stall_s, "runs": runs}
    with user_errors():
        try:  # the place, the exits to close and the agents file are read and checked here, before the run
            req = pipeline.check("evacuate_room", params)
        except RequestError as exc:
            hint = {"place": "FILE", "close_exits": "--close-exit", "agents": "--agents"}.get(
                exc.field, "--" + str(exc.field).replace("_", "-"))
            raise click.ClickException(f"{hint}: {' '.join(str(exc).split())}") from None
        city = None
        if with_map and city_name:
            from twin.city import City

            city = City(city_name)
        with ProgressBar("Room evacuation") as bar, run_store(store_dir) as store:
            res = pipeline.run("evacuate_room", req, out_dir, store=store, city=city, progress=bar.update, report=with_report,
                               map=with_map)
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    t = s["evacuation_time_s"]
    click.echo(f"{s['place']}: {s['people']} people, {s['walkable_area_m2']:,.0f} m² walkable")
    if t is not None and t == t and t != float("inf"):
        click.echo(f"everyone out after {t:.1f} s (95 % after {s['t95_s']:.1f} s); mean speed "
                   f"{s['mean_speed_mps']:.2f} m/s; largest local density {s['max_local_density_p_m2']:.2f} P/m²")
    elif s["stalled_at_s"] is not None:
        click.echo(f"stalled: nobody left for {stall_s:g} s; {s['people_inside_at_end']} people still inside at "
                   f"{s['stalled_at_s']:.0f} s (run stopped)")
    else:
        click.echo(f"{s['people_inside_at_end']} people still inside after {until_s:.0f} s")
    click.echo("exits: " + ", ".join(f"{k} {v['people']}" for k, v in s["exits"].items()))
    if s["exits_congested"]:
        click.echo(f"congested (> 4 P/m² near the exit): {', '.join(s['exits_congested'])}")
    if s.get("evacuation_runs"):
        r = s["evacuation_runs"]
        click.echo(f"over {r['runs']} runs: evacuation time mean {r['mean_s']:.1f} s, 95th percentile "
                   f"{r['p95_s']:.1f} s, max {r['max_s']:.1f} s")
    click.echo(f"wrote {out_dir}/ ({', '.join(Path(p).name for p in res.paths.values())})")
