"""``twin flood reach``: a real river reach of the city (OSM centreline, burned channel), prepared and run."""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import user_errors


@click.command("reach")
@click.option("--river", default="大沙河", show_default=True,
              help="Name of a river (OSM waterway=river) in the city's OSM layer: name, name:zh or name:en.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for reach_dem.tif, reach.toml and the run's outputs (created).")
@click.option("--start-km", type=float, default=0.0, show_default=True,
              help="Upstream end of the reach: chainage along the river from its first OSM vertex (km).")
@click.option("--end-km", type=float, default=6.5, show_default=True,
              help="Downstream end (km); the default stops the Dasha River short of its estuary.")
@click.option("--peak-m3s", type=float, default=200.0, show_default=True,
              help="Peak of the inflow hydrograph (m³/s). An example unless you give the river's design flood.")
@click.option("--base-m3s", type=float, default=5.0, show_default=True, help="Base flow before and after (m³/s).")
@click.option("--rise-h", type=float, default=1.0, show_default=True, help="Time to the peak (h).")
@click.option("--fall-h", type=float, default=3.0, show_default=True, help="Time from the peak back to base (h).")
@click.option("--hours", type=float, default=8.0, show_default=True, help="Simulated time (h).")
@click.option("--resolution", type=click.FloatRange(min=5.0), default=30.0, show_default=True,
              help="Cell size (m).")
@click.option("--channel-width-m", type=float, default=60.0, show_default=True,
              help="Width of the burned channel (m; an assumption for the Dasha River).")
@click.option("--channel-depth-m", type=float, default=2.0, show_default=True,
              help="Depth of the burned channel below the smoothed SRTM profile (m; an assumption).")
@click.option("--scheme", type=click.Choice(["local_inertial", "fv"]), default="local_inertial", show_default=True,
              help="Numerical scheme (fv: the finite-volume shallow-water solver, for steep or supercritical flow).")
@click.option("--run/--no-run", "do_run", default=True, show_default=True,
              help="Run the flood model on the reach (else only write reach_dem.tif and reach.toml).")
def reach(river, out_dir, start_km, end_km, peak_m3s, base_m3s, rise_h, fall_h, hours, resolution,
          channel_width_m, channel_depth_m, scheme, do_run) -> None:
    """Route a flood hydrograph down a real river reach of the city.

    Cuts the city's SRTM to the reach of an OSM river, removes DEM artefacts, burns a channel along the
    centreline (a smoothed profile that never rises downstream), fills the holes left towards the outlet, and
    writes reach_dem.tif and reach.toml (upstream discharge hydrograph over the channel's cells, normal-depth
    outlet on the bed's slope, walls elsewhere). Then runs `twin flood run --dem reach_dem.tif --boundaries
    reach.toml --rain-mm-h 0 --drainage-mm-h 0` into the same folder (flood.nc, maps, summary, report).

    Example: twin flood reach --river 大沙河 --peak-m3s 200 --hours 8 --out runs/dasha
    """
    from physics.flood_reach import river_reach, write_reach

    with user_errors():
        r = river_reach(river=river, start_km=start_km, end_km=end_km, resolution=resolution,
                        channel_width_m=channel_width_m, channel_depth_m=channel_depth_m, peak_m3s=peak_m3s,
                        base_m3s=base_m3s, rise_h=rise_h, fall_h=fall_h)
        dem_path, toml_path = write_reach(r, out_dir)
    c = r.conditioning
    click.echo(f"{river}: {r.chainage_m[-1] / 1000 - r.chainage_m[0] / 1000:.2f} km, grid {r.dem.shape[0]} x "
               f"{r.dem.shape[1]} at {resolution:g} m; enters by the {r.inflow_edge}, leaves by the {r.outlet_edge}; "
               f"bed {r.thalweg_m[0]:.2f} -> {r.thalweg_m[-1]:.2f} m; {c['channel_cells']} channel cells, "
               f"{c['filled_cells']} filled, {c['artefacts']['cells_changed']} artefact cells")
    click.echo(f"wrote {dem_path} and {toml_path}")
    if not do_run:
        return
    from twin.cli.flood import run as run_cmd

    ctx = click.get_current_context()
    ctx.invoke(run_cmd, city_name=None, dem=str(dem_path), districts=None, buffer_m=500.0, storm=None,
               rain_mm_h=0.0, rain_scale=1.0, method="alternating_block", peak_fraction=0.5, hours=hours,
               resolution=None, out_dir=Path(out_dir), output_every=600.0, use_float32=False, wave_cap_m=None,
               tide_m=0.0, surge_m=0.0, drainage_mm_h="0", boundaries=str(toml_path), scheme=scheme,
               time_stepping="global", with_report=True, as_json=False)
