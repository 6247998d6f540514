"""``twin info``: versions, data directory, which layers are found."""

from __future__ import annotations

import click

from twin.cli._util import echo_json


@click.command("info")
@click.option("--city", "city_name", default="shenzhen", show_default=True, help="City whose layers to check.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def info(city_name: str, as_json: bool) -> None:
    """Show versions, the data directory in force and which data layers are present."""
    from importlib.metadata import PackageNotFoundError, version

    from twin import __version__
    from twin.city import City
    from twin.config import data_dir, data_dir_source

    pkgs = {}
    for name in ("numpy", "numba", "xarray", "rasterio", "geopandas", "shapely", "pyproj",
                 "mesa", "simpy", "pydeck", "dask", "pydantic"):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pkgs[name] = None
    try:
        import rasterio

        pkgs["GDAL"] = rasterio.__gdal_version__
        import pyproj

        pkgs["PROJ"] = pyproj.proj_version_str
    except ImportError:
        pass
    city = City(city_name)
    rows = city.layer_status()
    report = {
        "twin": __version__,
        "data_dir": str(data_dir()),
        "data_dir_chosen_by": data_dir_source(),
        "packages": pkgs,
        "layers": rows,
    }
    if as_json:
        echo_json(report)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"Shenzhen Twin {__version__}")
    console.print(f"data dir: {report['data_dir']} (chosen by {report['data_dir_chosen_by']})")
    t = Table("package", "version")
    for k, v in pkgs.items():
        t.add_row(k, str(v))
    console.print(t)
    t = Table("layer", "kind", "datum", "files", "status", title=f"{city_name} layers")
    for r in rows:
        ok = r["found"] == r["files"]
        state = "found" if ok else ("missing (optional)" if r["optional"] else "MISSING")
        t.add_row(r["layer"], r["kind"], r["datum"], f"{r['found']}/{r['files']}", state)
    console.print(t)
    if any(r["found"] < r["files"] and not r["optional"] for r in rows):
        console.print("Some layers are missing: run `twin data fetch shenzhen` or set TWIN_DATA.")


COMMAND = info
