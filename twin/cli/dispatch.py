"""``twin dispatch``: fire engines, ambulances and rescue teams on the (flooding) road network."""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import InputPath, echo_json, run_output_options, run_store, user_errors

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("dispatch")
def dispatch() -> None:
    """Emergency dispatch: nearest available unit by travel time under flood closures."""


@dispatch.command("run")
@click.option("--flood", type=InputPath("flood_run"), default=None,
              help="A flood run (RUN/flood.nc or its folder): roads slow and close with its depth and "
                   "speed per frame (Pregnolato et al. 2017; D·V > 0.6 m²/s), rescue calls where the "
                   "water is dangerous to people, and the roads are clipped to its grid.")
@click.option("--stations", type=_FILE, default=None,
              help="Stations CSV: id,name,kind,lon,lat,engines,ambulances,rescue "
                   "(default: the ASSUMED demo stations of Futian/Nanshan/Luohu).")
@click.option("--incidents", type=_FILE, default=None,
              help="Incidents CSV: time_s (or time_min),lon,lat,kind[,id,needs,on_scene_min]; kind is "
                   "fire, medical, flood_rescue or collapse; needs like engine:2;ambulance:1.")
@click.option("--events", type=_FILE, default=None,
              help="Events JSON lines (a store's or run's events.jsonl): fire_origin/fire_alarm -> fire, "
                   "threshold_crossed -> flood rescue, slope_failure -> collapse, medical_call -> medical; "
                   "each needs data lon/lat (or location [lon, lat]).")
@click.option("--flood-rescues", type=click.IntRange(0, 5000), default=None,
              help="Rescue calls drawn from the flood's dangerous cells (default 12 with --flood).")
@click.option("--calls-per-hour", type=click.FloatRange(0, 1000), default=0.0, show_default=True,
              help="Random ordinary calls (fires, medical) per hour at random road nodes.")
@click.option("--hours", type=click.FloatRange(0, 24, min_open=True), default=None,
              help="Hours of calls (default: the flood's length, else 1 h); missions under way finish.")
@click.option("--roads", type=_FILE, default=None,
              help="Road network file (GeoJSON edges, .osm, Overpass .json) instead of the city's.")
@click.option("--city", "city_name", default=None, metavar="NAME",
              help="City whose roads and basemap to use (default: shenzhen).")
@click.option("--turnout", "turnout_s", type=click.FloatRange(0, 3600), default=60.0, show_default=True,
              help="Turnout time, s (建标152-2017: 1 of the 5 minutes; NFPA 1710: 60 s EMS).")
@click.option("--frame-s", type=click.FloatRange(0, min_open=True), default=None,
              help="Seconds between map frames (default: the run / 72, at least 60 s).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seeds calls, rescue sampling and on-scene times.")
@run_output_options("dispatch.nc, incidents.csv, requests.csv, units.csv, events.jsonl, response_times.png, "
                    "summary.json, report.html, map.html",
                    map_help="Also write map.html (offline; units moving on the time slider).")
def run(flood, stations, incidents, events, flood_rescues, calls_per_hour, hours, roads, city_name, turnout_s, frame_s,
        seed, out_dir, with_map, with_report, as_json, store_dir) -> None:
    """Dispatch units to incidents; KPIs: response times, share within 5 min, utilisation.

    Example: twin dispatch run --flood runs/futian/flood.nc --flood-rescues 20 --calls-per-hour 10
    --out runs/dispatch
    """
    from twin import pipeline
    from twin.cli.kinds import ProgressBar

    params = {"flood": None if flood is None else str(flood),
              "stations": None if stations is None else str(stations),
              "incidents": None if incidents is None else str(incidents),
              "events": None if events is None else str(events),
              "flood_rescues": flood_rescues, "calls_per_hour": float(calls_per_hour),
              "hours": hours, "roads": None if roads is None else str(roads), "city": city_name,
              "turnout_s": float(turnout_s), "frame_s": frame_s, "seed": seed}
    city = None
    with user_errors():
        if city_name is not None:
            from twin.city import City

            city = City(city_name)
        with ProgressBar("dispatch") as bar, run_store(store_dir) as store:
            res = pipeline.run("dispatch", params, out_dir, store=store, city=city or "shenzhen", progress=bar.update,
                               report=with_report, map=with_map)
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    r = s["response_s"]
    share = s["within_5min_share"]
    click.echo(f"{s['incidents']} incidents, {s['reached']} reached; response (dispatch -> on scene) "
               + (f"median {r['p50'] / 60:.1f} min, p90 {r['p90'] / 60:.1f} min" if r["p50"] is not None
                  else "none")
               + (f"; within 5 min: {share:.0%}" if share is not None else ""))
    click.echo(f"reroutes {s['reroutes']}, unreachable at call {s['unreachable_incidents']}, never reached "
               f"{s['never_reached']}, mean utilisation {s['utilisation_mean'] or 0:.0%}")
    click.echo(f"done in {res.wall_s:.1f} s; wrote {out_dir}/ ({', '.join(p.name for p in res.paths.values())})")
