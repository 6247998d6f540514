"""``twin flood``: run the 2-D flood model over a city (or a DEM) and write its outputs."""

from __future__ import annotations

import math
from pathlib import Path

import click

from twin.cli._util import ExistingFile, InputPath, echo_json, status, user_errors


def _drainage(value: str | None):
    """"36" -> 36.0; "Futian=40,Luohu=30" -> {"Futian": 40.0, "Luohu": 30.0}; None -> None."""
    if value is None:
        return None
    try:
        v = float(value)
    except ValueError:
        pass
    else:
        if not (math.isfinite(v) and v >= 0):
            raise click.BadParameter(f"{value!r}: drainage capacity must be a finite number >= 0 mm/h",
                                     param_hint="--drainage-mm-h")
        return v
    out = {}
    for part in value.split(","):
        name, sep, num = part.partition("=")
        try:
            x = float(num)
        except ValueError:
            x = float("nan")
        if not sep or not name.strip() or not (math.isfinite(x) and x >= 0):
            raise click.BadParameter(
                f"{part!r}: use a number (mm/h for all districts) or NAME=MM_H pairs, e.g. Futian=40,Luohu=30",
                param_hint="--drainage-mm-h")
        out[name.strip()] = x
    return out


def _progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]flood[/bold]"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TextColumn("steps {task.fields[steps]}"),
        TextColumn("dt {task.fields[dt]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@click.group("flood")
def flood() -> None:
    """Urban flood forecasts with the local-inertial 2-D model."""


@flood.command("run")
@click.option("--city", "city_name", default=None, metavar="NAME",
              help="City whose terrain, sea, districts and data to use (default: shenzhen, unless --dem).")
@click.option("--dem", type=InputPath("dem"), default=None,
              help="Run on this DEM file instead (GeoTIFF etc., elevation in m; a lon/lat DEM is "
                   "warped to UTM). No sea, districts or hit rate.")
@click.option("--districts", default=None, metavar="A,B",
              help="Only these districts (comma-separated English/Chinese names or adcodes, e.g. Futian,Luohu), "
                   "plus --buffer-m around them. Default: the whole city.")
@click.option("--buffer-m", type=float, default=500.0, show_default=True,
              help="Margin kept around the districts or the city outline (m).")
@click.option("--storm", default=None, metavar="NAME",
              help="Design storm from recorded maxima: 2023-09-07 (the default when no --rain-mm-h).")
@click.option("--rain-mm-h", type=float, default=None,
              help="Constant, uniform rain rate for the whole run (mm/h) instead of a design storm.")
@click.option("--rain-scale", type=click.FloatRange(0, 10), default=1.0, show_default=True,
              help="Factor on every rain rate (e.g. 1.2: the storm 20 % wetter).")
@click.option("--method", type=click.Choice(["alternating_block", "chicago"]), default="alternating_block",
              show_default=True, help="Hyetograph of the design storm.")
@click.option("--peak-fraction", type=float, default=0.5, show_default=True,
              help="Position of the storm peak as a fraction of its length (0-1).")
@click.option("--hours", type=float, default=6.0, show_default=True,
              help="Storm length and simulated time (h).")
@click.option("--resolution", type=float, default=None,
              help="Grid cell size (m); default 30 for a city, the DEM's own for --dem.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: flood.nc, max_depth.tif, arrival_time.tif, time_of_max_depth.tif, "
                   "max_depth.png, summary.json, report.html.")
@click.option("--output-every", type=float, default=600.0, show_default=True,
              help="Interval of the depth/speed frames in flood.nc (s of simulated time).")
@click.option("--float32", "use_float32", is_flag=True,
              help="Compute in single precision (faster, less memory; relative balance error ~1e-6 instead of ~1e-15).")
@click.option("--wave-depth-cap", "wave_cap_m", type=float, default=None, metavar="M",
              help="Cap the depth in the pressure term at M metres: a longer stable step when deep pools "
                   "set it (whole city at 30 m: 2 m gave 157 s instead of 434 s, max depths 0.07 m RMS apart), "
                   "at the price of slower waves in deep water. Volumes stay exact. Off by default.")
@click.option("--tide-m", type=float, default=0.0, show_default=True,
              help="Sea level on sea cells (m, DEM datum: EGM96 for Shenzhen's SRTM).")
@click.option("--surge-m", type=float, default=0.0, show_default=True,
              help="Storm-surge peak added to --tide-m at mid-run (m, cos² bump 6 h wide).")
@click.option("--drainage-mm-h", default=None, metavar="MM_H|NAME=MM_H,...",
              help="Drainage capacity (mm/h): one number for all, or per district (Futian=40,Luohu=30); "
                   "others keep the default 36 mm/h (an assumption, see physics/flood_city.py).")
@click.option("--boundaries", "boundaries", type=ExistingFile("a boundary file (.toml or .json)"), default=None,
              metavar="FILE",
              help="Edge and line boundaries (TOML/JSON: discharge hydrographs, stage, normal-depth and zero-gradient "
                   "outflow; see physics/flood_boundaries.py and physics/data/flood_examples/). Replaces the "
                   "default free edges; checked before the run.")
@click.option("--scheme", type=click.Choice(["local_inertial", "fv"]), default="local_inertial", show_default=True,
              help="Numerical scheme: local-inertial, or the finite-volume shallow-water solver.")
@click.option("--time-stepping", "time_stepping", type=click.Choice(["global", "lts"]), default="global",
              show_default=True, help="One global step, or local time stepping (deep pools step on their own).")
@click.option("--report/--no-report", "with_report", default=True, show_default=True,
              help="Also write report.html (self-contained, offline: tables, plots, deepest places).")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
def run(city_name, dem, districts, buffer_m, storm, rain_mm_h, rain_scale, method, peak_fraction, hours, resolution,
        out_dir, output_every, use_float32, wave_cap_m, tide_m, surge_m, drainage_mm_h, boundaries, scheme,
        time_stepping, with_report, as_json) -> None:
    """Forecast a storm's flooding: depths, maxima and arrival times, maps, summary.

    Example: twin flood run --districts Futian,Luohu --storm 2023-09-07 --hours 6 --out runs/futian

    A river reach: twin flood run --dem physics/data/flood_examples/river_reach_synthetic.tif
    --boundaries physics/data/flood_examples/river_reach.toml --rain-mm-h 0 --drainage-mm-h 0 --hours 2
    --out runs/reach
    """
    from twin import pipeline

    if dem is not None and city_name is not None:
        raise click.UsageError("give either --city or --dem, not both")
    if dem is not None and districts is not None:
        raise click.UsageError("--districts needs a city: it cannot be used with --dem")
    if storm is not None and rain_mm_h is not None:
        raise click.UsageError("give either --storm or --rain-mm-h, not both")
    for name, v, lo, strict in (("--hours", hours, 0.0, True), ("--resolution", resolution, 0.0, True),
                                ("--output-every", output_every, 0.0, True), ("--buffer-m", buffer_m, 0.0, False),
                                ("--surge-m", surge_m, 0.0, False), ("--rain-mm-h", rain_mm_h, 0.0, False),
                                ("--wave-depth-cap", wave_cap_m, 0.0, True)):
        if v is None:
            continue
        if not math.isfinite(v) or v < lo or (strict and v <= lo):
            raise click.BadParameter(f"{v!r} must be a finite number {'>' if strict else '>='} {lo:g}",
                                     param_hint=name)
    if not math.isfinite(tide_m):
        raise click.BadParameter(f"{tide_m!r} must be finite", param_hint="--tide-m")
    if not 0.0 <= peak_fraction <= 1.0:
        raise click.BadParameter(f"{peak_fraction!r} must lie in [0, 1]", param_hint="--peak-fraction")
    drain = _drainage(drainage_mm_h)
    if dem is not None and isinstance(drain, dict):
        raise click.BadParameter("per-district drainage needs a city", param_hint="--drainage-mm-h")
    params = {"city": None if dem is not None else (city_name or "shenzhen"),
              "dem": None if dem is None else str(dem),
              "districts": None if districts is None else [d for d in districts.split(",") if d.strip()],
              "storm": None if rain_mm_h is not None else (storm or "2023-09-07"), "rain_mm_h": rain_mm_h,
              "rain_scale": rain_scale, "method": method, "peak_fraction": peak_fraction, "hours": hours,
              "resolution": resolution,
              "buffer_m": buffer_m, "tide_m": tide_m, "surge_m": surge_m, "drainage_mm_h": drain,
              "output_every_s": output_every, "float32": use_float32, "wave_depth_cap_m": wave_cap_m,
              "boundaries": None if boundaries is None else str(boundaries), "scheme": scheme,
              "time_stepping": time_stepping}
    duration = hours * 3600.0
    bar = _progress_bar()
    task = None

    def progress(p):
        nonlocal task
        if p.get("message"):
            click.echo(p["message"], err=True)
        if p["phase"] != "running" or "sim_s" not in p:
            return
        if task is None:
            bar.start()
            task = bar.add_task("flood", total=duration, sim=f"0:00:00/{_hms(duration)}", steps=0, dt="-")
        bar.update(task, completed=p["sim_s"], sim=f"{_hms(p['sim_s'])}/{_hms(duration)}",
                   steps=p.get("steps", 0), dt=f"{p.get('dt', 0.0):.2f} s")

    with user_errors():
        try:
            res = pipeline.run("flood_forecast", params, out_dir, progress=progress, report=with_report,
                               map=False)
        finally:
            if task is not None:
                bar.stop()
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    fa = s["flooded_area_max_km2"]
    click.echo(f"done in {s['run_time_s']:.1f} s (kernels compiled or loaded {s['compile_s']:.1f} s, model "
               f"{s['model_wall_s']:.1f} s): {s['steps']} steps, "
               f"{s['cell_updates_per_s'] / 1e6:.1f} M cell-updates/s, balance error "
               f"{s['volume_balance_relative_error']:.1e}")
    click.echo(f"max depth {s['max_depth_m']:.2f} m; area ever >= 0.15 m: {fa['>=0.15m']:.1f} km², "
               f">= 0.5 m: {fa['>=0.5m']:.1f} km²")
    hit = s.get("waterlogging_hit_rate")
    if hit is not None:
        click.echo(f"waterlogging spots within {hit['radius_m']:g} m of a cell >= {hit['depth_m']:g} m: "
                   f"{hit['hits']}/{hit['n_in_domain']} ({hit['hit_rate']:.0%}) vs random "
                   f"{hit['random_hit_rate']:.0%} (ratio {hit['ratio']:.2f}, p = {hit['p_value']:.2g}) "
                   "[reporting only]")
    click.echo(f"wrote {out_dir}/ ({', '.join(p.name for p in res.paths.values())})")


@flood.command("report")
@click.argument("run_path", metavar="RUN_DIR_OR_NC", type=InputPath("flood_run"))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html (default: the run's folder).")
@click.option("--top", type=click.IntRange(0, 100), default=10, show_default=True,
              help="Number of deepest locations listed and numbered on the map.")
@click.option("--point", nargs=2, type=float, default=None, metavar="LON LAT",
              help="Plot the depth over time at this WGS84 point (default: the deepest cell).")
def report(run_path, out_dir, top, point) -> None:
    """Write the HTML report (one offline file with tables and plots) of a finished flood run.

    RUN_DIR_OR_NC is the --out folder of `twin flood run` or its flood.nc;
    summary.json next to it adds the waterlogging hit rate.

    Example: twin flood report runs/futian --out reports/futian
    """
    from viz.report import write_flood_report

    folder = run_path if run_path.is_dir() else run_path.parent
    with user_errors():
        with status("writing report.html"):
            path = write_flood_report(run_path, out_dir or folder, top_n=top,
                                      points=None if point is None else [tuple(point)],
                                      crs=None if point is None else "EPSG:4326")
    click.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


@flood.command("map")
@click.argument("run_path", metavar="RUN.nc", type=InputPath("flood_run"))
@click.option("--out", "out_html", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The HTML page to write (one offline file).")
@click.option("--compare", "other", type=InputPath("flood_run"), default=None,
              metavar="OTHER.nc", help="Second run: split view A | B and the B − A maximum-depth difference.")
@click.option("--city", "city_name", default=None, metavar="NAME",
              help="City whose districts, coast and metro to draw (default: shenzhen for a city run, "
                   "none for a --dem run).")
@click.option("--max-frames", type=click.IntRange(2, 500), default=37, show_default=True,
              help="Most depth frames kept for the time slider (evenly thinned, first and last kept).")
def map_cmd(run_path, out_html, other, city_name, max_frames) -> None:
    """Write the offline map page of a flood run: depth with a time slider, maxima, arrival times.

    RUN.nc is the flood.nc of `twin flood run` (or its folder).

    Example: twin flood map runs/futian/flood.nc --out futian.html --compare runs/futian_drain60/flood.nc
    """
    import xarray as xr

    from viz.flood_map import open_run, write_flood_map

    with user_errors():
        if city_name is None:
            ds = open_run(run_path)
            city_name = "shenzhen" if isinstance(ds, xr.Dataset) and "district" in ds else None
        with status("writing the map page"):
            res = write_flood_map(run_path, out_html, compare_with=other, city=city_name,
                                  max_frames=max_frames)
    click.echo(f"wrote {res['path']} ({res['bytes'] / 1e6:.1f} MB, {res['frames']} frames"
               f"{', A | B compare' if res['compare'] else ''})")


from twin.cli.flood_skill import skill as _skill  # noqa: E402  (terrain slice: the skill study)

flood.add_command(_skill)

from twin.cli.flood_reach import reach as _reach  # noqa: E402  (a real river reach)

flood.add_command(_reach)
