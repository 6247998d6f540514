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
    t = Table("layer", "kind", "datum", "files", "needed by", "status", title=f"{city_name} layers")
    for r in rows:
        t.add_row(r["layer"], r["kind"], r["datum"], f"{r['found']}/{r['files']}",
                  ", ".join(r["needed_by"]) or "—", layer_state(r))
    console.print(t)
    blocked = sorted({c for r in rows if not r["present"] for c in r["needed_by"]})
    if blocked:
        console.print(
            f"Layers needed by `twin {'`, `twin '.join(blocked)}` are missing: run "
            f"`twin data fetch {city_name}` (it builds the layers that have a public upstream; "
            "--mirror URL for the others) or set TWIN_DATA to a data dir that has them."
        )


def layer_state(row: dict) -> str:
    """The status word of a ``City.layer_status`` row: a needed layer is never called optional."""
    if row["present"]:
        return f"found ({row['alternative']})" if row["alternative"] else "found"
    if row["needed_by"]:
        return "MISSING"
    return "missing (optional)"


COMMAND = info
