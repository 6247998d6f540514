"""``twin slope``: rainfall-induced slope failure (TRIGRS-class) over a city, districts or a DEM."""

from __future__ import annotations

import click

from twin.cli._util import (
    ExistingFile,
    InputPath,
    PhaseBar,
    echo_json,
    run_output_options,
    run_store,
    user_errors,
)

FILES = ("slope.nc, fs_min.tif, time_of_failure.tif, probability_of_failure.tif (probabilistic), "
         "runout_depth.tif and assets_hit.geojson (runout), summary.json, report.html, map.html")


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _describe(p: dict) -> str | None:
    """The slope run's progress: the model's stage and cells or members done."""
    if "n_cells" in p:
        return f"{p.get('stage')}: {p['cells']:,}/{p['n_cells']:,} cells"
    if "n_members" in p:
        return f"{p.get('stage')}: {p['members']:,}/{p['n_members']:,} members"
    return p.get("stage") or None


@click.group("slope")
def slope() -> None:
    """Rainfall-induced slope failure: factor of safety (Iverson 2000, as TRIGRS), probability, runout."""


@slope.command("run")
@click.option("--city", "city_name", default=None, metavar="NAME",
              help="City whose terrain and districts to use (default: shenzhen, unless --dem).")
@click.option("--dem", type=InputPath("dem"), default=None,
              help="Run on this DEM file instead (a lon/lat DEM is warped to UTM). No districts or assets.")
@click.option("--districts", default=None, metavar="A,B",
              help="Only these districts (names or adcodes, e.g. Guangming,Nanshan). Default: the whole city.")
@click.option("--buffer-m", type=click.FloatRange(0, 20000), default=0.0, show_default=True,
              help="Margin kept around the districts (m).")
@click.option("--resolution", type=click.FloatRange(10, 2000), default=None,
              help="Cell size (m); default 30 for a city, the DEM's own for --dem.")
@click.option("--storm", default=None, metavar="NAME",
              help="Design storm from recorded maxima: 2023-09-07 (the default when no other rain is given).")
@click.option("--rain-mm-h", type=click.FloatRange(0, 1000), default=None,
              help="Uniform rain rate (mm/h) for --storm-hours instead of a design storm.")
@click.option("--rain-scale", type=click.FloatRange(0, 10), default=1.0, show_default=True,
              help="Factor on every rain rate, whatever the source (e.g. 1.2: 20 % wetter).")
@click.option("--rain-file", type=ExistingFile("a rain file (CSV time_h, mm_h or NetCDF rain(time, y, x) mm/h)"),
              default=None, help="Rain from a file: CSV 'time_h, mm_h' (each rate until the next row's time) or "
              "NetCDF with 'rain' (time, y, x) in mm/h, time in s from the start, warped onto the grid.")
@click.option("--flood", "flood", default=None, metavar="RUN",
              help="Take the rain (rebuilt storm) and the area of this flood run: its folder, its flood.nc, or "
                   "its run id in --store.")
@click.option("--gauges", type=InputPath("store"), default=None, metavar="STORE",
              help="Rain from the rain gauges of this twin store (IDW on the grid, hourly blocks) over "
                   "--storm-hours from --rain-start.")
@click.option("--rain-start", default=None, metavar="TIME",
              help="Start of the gauges' window, ISO 8601 with its zone (e.g. 2023-09-07T09:00+08:00).")
@click.option("--hours", type=click.FloatRange(0, 72, min_open=True), default=24.0, show_default=True,
              help="Simulated time (h); pressure heads keep evolving after the rain stops.")
@click.option("--storm-hours", type=click.FloatRange(0, 72, min_open=True), default=None,
              help="Length of the storm or uniform rain (h) [default: min(hours, 24)].")
@click.option("--method", type=click.Choice(["alternating_block", "chicago"]), default="alternating_block",
              show_default=True, help="Hyetograph of the design storm.")
@click.option("--peak-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Position of the storm peak as a fraction of its length.")
@click.option("--mode", type=click.Choice(["deterministic", "probabilistic"]), default="deterministic",
              show_default=True, help="Table defaults only, or Monte Carlo over the table's distributions.")
@click.option("--members", type=click.IntRange(1, 5000), default=200, show_default=True,
              help="Monte Carlo members (probabilistic).")
@click.option("--seed", type=click.IntRange(0, None), default=0, show_default=True, help="Monte Carlo seed.")
@click.option("--per", type=click.Choice(["cell", "zone"]), default="cell", show_default=True,
              help="Monte Carlo draws independent per cell, or shared by all cells of a zone.")
@click.option("--sample-depth/--no-sample-depth", default=False, show_default=True,
              help="Monte Carlo draws the soil depth from the table too (default: each cell keeps the "
                   "slope-depth rule's or the fill's depth).")
@click.option("--fail-probability", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Probability from which a cell is a runout source (probabilistic).")
@click.option("--zones", type=ExistingFile("a zone raster of table codes or polygons with a 'zone' property"),
              default=None, help="Soil zones: a raster of the table's codes (.tif) or polygons with 'zone' "
                                 "(GeoJSON...). Default: the table's default zone everywhere.")
@click.option("--fills", type=ExistingFile("fill polygons (GeoJSON with thickness_m)"), default=None,
              help="Fill zones: GeoJSON polygons with thickness_m (raises the surface), optional taper_m, zone "
                   "(default fill_spoil) and c_kpa, phi_deg, gamma_kn_m3, ks_m_s, d0_m2_s, water_table_m.")
@click.option("--soils", type=ExistingFile("a soil table TOML like physics/slope_soils.toml"), default=None,
              help="Soil table (TOML) [default: physics/slope_soils.toml, literature values].")
@click.option("--n-depths", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Depths of the profile (Z_j = soil depth (j+1)/n).")
@click.option("--dhat", type=click.Choice(["iverson", "trigrs"]), default="iverson", show_default=True,
              help="D_hat = 4 D0 cos^2(slope) (Iverson 2000) or 4 D0 / cos^2(slope) (TRIGRS 2.0).")
@click.option("--min-slope-deg", type=click.FloatRange(0, 60, min_open=True, max_open=True), default=1.0,
              show_default=True, help="Cells flatter than this are not modelled (NaN).")
@click.option("--every-min", type=click.FloatRange(1, 1440), default=60.0, show_default=True,
              help="Evaluation interval (min).")
@click.option("--runout/--no-runout", default=True, show_default=True,
              help="Route the failed soil downhill and list the buildings, roads and metro it reaches.")
@click.option("--travel-angle", "travel_angle_deg", type=click.FloatRange(0, 60, min_open=True, max_open=True),
              default=None, help="Runout travel angle (Fahrböschung, deg) [default: the runout model's].")
@run_output_options(FILES)
def run(city_name, dem, districts, buffer_m, resolution, storm, rain_mm_h, rain_scale, rain_file, flood, gauges,
        rain_start,
        hours, storm_hours,
        method, peak_fraction, mode, members, seed, per, sample_depth, fail_probability, zones, fills, soils,
        n_depths, dhat, min_slope_deg, every_min, runout, travel_angle_deg, out_dir, with_report, with_map, as_json,
        store_dir) -> None:
    """Forecast which slopes fail during a storm, when, where the debris goes and what it hits.

    Examples:

    \b
      twin slope run --districts Guangming --storm 2023-09-07 --hours 24 --out runs/gm
      twin slope run --districts Guangming --fills dump.geojson --mode probabilistic --members 500 --out runs/gm_fill
      twin slope run --flood runs/futian --out runs/futian_slope
    """
    from twin import pipeline
    from twin.errors import RequestError

    if dem is not None and city_name is not None:
        raise click.UsageError("give either --city or --dem, not both")
    rains = [n for n, v in (("--storm", storm), ("--rain-mm-h", rain_mm_h), ("--rain-file", rain_file),
                            ("--flood", flood), ("--gauges", gauges)) if v is not None]
    if len(rains) > 1:
        raise click.UsageError(f"give one rain source, not {' and '.join(rains)}")
    if flood is not None:
        from physics.slope_city import resolve_flood_run

        with user_errors():
            flood = resolve_flood_run(flood, store_dir)
    params = {"city": None if dem is not None or (flood is not None and city_name is None) else
              (city_name or "shenzhen"),
              "dem": None if dem is None else str(dem),
              "districts": None if districts is None else [d.strip() for d in districts.split(",") if d.strip()],
              "buffer_m": buffer_m, "resolution": resolution, "storm": storm, "rain_mm_h": rain_mm_h,
              "rain_scale": rain_scale,
              "rain_file": None if rain_file is None else str(rain_file),
              "flood": None if flood is None else str(flood), "gauges": None if gauges is None else str(gauges),
              "rain_start": rain_start, "hours": hours, "storm_hours": storm_hours,
              "method": method, "peak_fraction": peak_fraction, "mode": mode, "members": members, "seed": seed,
              "per": per, "sample_depth": sample_depth, "fail_probability": fail_probability,
              "zones": None if zones is None else str(zones),
              "fills": None if fills is None else str(fills), "soils": None if soils is None else str(soils),
              "n_depths": n_depths, "dhat": dhat, "min_slope_deg": min_slope_deg, "every_min": every_min,
              "runout": runout, "travel_angle_deg": travel_angle_deg}
    with user_errors():
        try:  # refused before anything runs, pinned on its option
            req = pipeline.check("slope_forecast", params)
        except RequestError as exc:
            raise click.BadParameter(str(exc), param_hint="--" + exc.field.replace("_", "-")) from None
        city = None  # the city whose districts, coast and metro the map draws
        name = req.city
        if req.dem is None and name is None and req.flood is not None:
            from physics.slope_city import flood_run_info

            info = flood_run_info(req.flood)  # a city flood run: its city (default shenzhen)
            name = None if info.get("dem") is not None else (info.get("city") or "shenzhen")
        if req.dem is None and name is not None:
            from twin.city import City

            city = City(name)
        with PhaseBar("slope", _describe) as bar, run_store(store_dir) as store:
            res = pipeline.run("slope_forecast", req, out_dir, city=city, store=store, progress=bar.update,
                               report=with_report, map=with_map)
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    first = s.get("earliest_failure_s")
    click.echo(f"{s['cells_modelled']:,} cells modelled ({s['area_modelled_km2']:.1f} km²); FS < 1 on "
               f"{s['cells_failing']:,} cells ({s['area_failing_km2']:.2f} km²), first at "
               f"{'never' if first is None else _hms(first)}; lowest FS {s['fs_min']:.2f}"
               if s.get("fs_min") is not None else "no cell modelled")
    if "probability_max" in s:
        click.echo(f"probabilistic, {s['members']} members (seed {s['seed']}): p >= {s['fail_probability']:g} on "
                   f"{s['cells_probable']:,} cells ({s['area_probable_km2']:.2f} km²)")
    if "runout_volume_m3" in s:
        hit = ", ".join(f"{v} {k}" for k, v in s.get("assets_hit", {}).items()) or "no asset"
        click.echo(f"runout: {s['runout_volume_m3']:,.0f} m³ deposited, {s['runout_area_ge_0_1m_km2']:.2f} km² "
                   f"at >= 0.1 m ({s['runout_area_any_deposit_km2']:.2f} km² with any deposit); hits {hit}")
    t = s.get("timings_s", {})
    click.echo(f"done in {res.wall_s:.1f} s (model {t.get('run_time_s', float('nan')):.1f} s, kernel compiled or "
               f"loaded {t.get('compile_s', float('nan')):.1f} s); wrote {out_dir}/ "
               f"({', '.join(p.name for p in res.paths.values())})")


__all__ = ["slope"]
