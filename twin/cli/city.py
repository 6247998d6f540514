"""``twin city``: look at a city's static state, write it out, draw its map."""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import echo_json, status, user_errors

CITY = click.argument("name", default="shenzhen")
RES = click.option("--resolution", "-r", type=click.FloatRange(min=1.0), default=None,
                   help="Grid resolution in metres (default: the manifest's, 30 m).")


@click.group("city")
def city() -> None:
    """Inspect and export a city's static state (terrain, districts, coast, metro, roads)."""


@city.command("show")
@CITY
@RES
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(name: str, resolution: float | None, as_json: bool) -> None:
    """Working CRS, grid shape, elevation range, districts and their areas."""
    from twin.city import City

    with user_errors():
        s = City(name).summary(resolution)
    if as_json:
        echo_json(s)
        return
    from rich.console import Console
    from rich.table import Table

    c = Console()
    c.print(f"[bold]{s['title']}[/bold]  working CRS {s['working_crs']}, "
            f"grid {s['grid_shape'][0]} x {s['grid_shape'][1]} at {s['resolution_m']:g} m")
    c.print(f"raw DEM elevation {s['elevation_raw_min_m']:g} .. {s['elevation_raw_max_m']:g} m "
            f"({s['elevation_vertical_datum']})")
    t = Table("adcode", "district", "", "area km²")
    for d in s["districts"]:
        t.add_row(d["adcode"], d["name"], d["name_zh"], f"{d['area_km2']:.1f}")
    t.add_row("", "total", "", f"{s['district_area_total_km2']:.1f}")
    c.print(t)
    c.print(f"boundary datum: {s['boundary_datum']} (converted to WGS 84 on load); "
            + (f"{s['metro_stations']} metro stations" if s["metro_stations"] is not None
               else "no metro layer in the data set (optional; `twin data fetch shenzhen --mirror URL`)"))


@city.command("build")
@CITY
@RES
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="NetCDF file for the static state (.nc).")
@click.option("--geotiff-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write one GeoTIFF per layer into this folder.")
def build(name: str, resolution: float | None, out: Path, geotiff_dir: Path | None) -> None:
    """Build the static state on the working grid and write it to NetCDF (and GeoTIFFs)."""
    from gis.raster import make_grid, transform_of, write_geotiff, write_netcdf
    from twin.city import City

    with user_errors(), status(f"building {name} static state"):
        ds = City(name).static(resolution)
        write_netcdf(ds, out)
        if geotiff_dir is not None:
            for var in ds.data_vars:
                da = ds[var]
                g = make_grid(da.values, transform_of(ds), ds.attrs["crs"], name=var,
                              units=da.attrs.get("units"), long_name=da.attrs.get("long_name"),
                              nodata=da.attrs.get("_FillValue"))
                write_geotiff(g, geotiff_dir / f"{var}.tif")
    click.echo(f"wrote {out} ({', '.join(ds.data_vars)}; grid {ds.sizes['y']} x {ds.sizes['x']})")


@city.command("datum")
@CITY
@click.option("--step", type=click.FloatRange(min=1.0), default=20.0, show_default=True,
              help="Search step in metres.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def datum(name: str, step: float, as_json: bool) -> None:
    """Re-run the evidence that the boundary files are GCJ-02 (ridge alignment on the DEM)."""
    from gis.datum import assess_gcj02
    from gis.raster import reproject
    from twin.city import City

    with user_errors(), status("fitting boundary offset against DEM ridges"):
        c = City(name)
        dem = reproject(c.raw_elevation(), c.crs, 30.0)
        geoms = []
        for layer in ("city", "districts"):
            for path in c.files(layer):
                import geopandas as gpd

                geoms.extend(gpd.read_file(path).geometry)
        finding = assess_gcj02(geoms, dem, step_m=step).as_dict()
    if as_json:
        echo_json(finding)
        return
    for k, v in finding.items():
        click.echo(f"{k:38s} {v}")


@city.command("map")
@CITY
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="HTML file to write.")
@RES
def map_(name: str, out: Path, resolution: float | None) -> None:
    """Write the offline "one map": hillshade, districts, coast, roads, metro, place names (opens without internet).

    The page has a title, a layer panel, legends, a scale bar and labels (district
    names in Chinese and pinyin, main roads, metro lines; station names on demand).
    """
    from viz.citypage import write_city_map

    with user_errors(), status(f"drawing the {name} map"):
        info = write_city_map(name, out, resolution=resolution or 90.0)
    click.echo(f"wrote {out} ({info['bytes'] / 1e6:.1f} MB, layers: {', '.join(info['layers'])})")


COMMAND = city
