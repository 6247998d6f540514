"""People per grid cell from the 2020 census, people in a hazard zone, and evacuee groups at road nodes.

The census gives district totals only (``population/census2020_districts.csv``,
7th national census, yearbook table; join key the 6-digit district code).
Spreading them over cells is a **modelling assumption**, never a measurement:
each district's people on the grid are spread uniformly over its land cells
(``land`` and ``district`` of a flood run)::

    people per cell = total_d × f_d / n_d

with ``n_d`` the district's land cells on the grid and ``f_d`` the share of
the district's boundary polygon (EPSG:4547) that lies inside the grid's
domain (its land and sea cells). A district the grid holds whole (a flood
run's own districts) gets exactly its census total; one the grid cuts (the
run's margin into a neighbour) gets the share of its people that its
covered area holds at its mean density. No building or land-use data weights
the cells (none is in the data set for whole districts): dense blocks and
parks hold the same people per cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.errors import DataError, DataMissingError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

CENSUS_RELPATH = "shenzhen/population/census2020_districts.csv"
#: Columns of the census table (Chinese headers) read here.
CODE_COL, NAME_COL, TOTAL_COL = "区划代码", "区县", "人口数_合计"


def census_path(city: Any = None) -> Path:
    """Path of the census table: the city's ``population`` layer, else ``$TWIN_DATA/<CENSUS_RELPATH>``.

    Raises
    ------
    DataMissingError
        Naming the file and ``twin data fetch`` when it is not there.
    """
    from twin.config import data_dir
    from twin.errors import ConfigError

    if city is not None:
        try:
            return city.files("population")[0]
        except ConfigError:  # a manifest without the layer: the data set's own place
            pass
    path = data_dir() / CENSUS_RELPATH
    if not path.is_file():
        raise DataMissingError(f"census table not found: {path} (needed by: twin evacuate district). "
                               "Run `twin data fetch shenzhen --mirror URL` with a mirror of the data set, "
                               f"or copy the file there (TWIN_DATA={data_dir()}).")
    return path


def read_census(path: str | Path | None = None, city: Any = None) -> pd.DataFrame:
    """District totals of the 2020 census: columns ``adcode`` (str), ``name_zh``, ``population`` (int).

    Raises
    ------
    DataMissingError
        The file is missing.
    DataError
        A required column is missing or a total is not a positive integer.
    """
    import pandas as pd

    p = Path(path) if path is not None else census_path(city)
    if not p.is_file():
        raise DataMissingError(f"census table not found: {p}; run `twin data fetch shenzhen` or give the file")
    df = pd.read_csv(p, dtype={CODE_COL: str}, encoding="utf-8")
    missing = [c for c in (CODE_COL, NAME_COL, TOTAL_COL) if c not in df.columns]
    if missing:
        raise DataError(f"{p}: no column(s) {missing} (columns: {list(df.columns)[:8]})")
    total = pd.to_numeric(df[TOTAL_COL], errors="coerce")
    if total.isna().any() or (total <= 0).any():
        i = int(np.flatnonzero((total.isna() | (total <= 0)).to_numpy())[0])
        raise DataError(f"{p}: row {i} ({df[CODE_COL].iloc[i]}) has total {df[TOTAL_COL].iloc[i]!r}")
    return pd.DataFrame({"adcode": df[CODE_COL].str.strip(), "name_zh": df[NAME_COL],
                         "population": total.astype(np.int64)})


def grid_district_codes(grid: xr.Dataset, city: Any = None) -> dict[int, str]:
    """District id of a grid -> 6-digit code, from ``attrs['district_adcodes']`` or names matched to ``city``."""
    codes = grid.attrs.get("district_adcodes")
    if codes is not None:
        codes = json.loads(codes) if isinstance(codes, str) else list(codes)
        return {i: str(c) for i, c in enumerate(codes)}
    names = grid.attrs.get("district_names")
    if names is None:
        raise DataError("the grid has neither district_adcodes nor district_names in its attributes: "
                        "give a flood run of `twin flood run` (or City.static())")
    names = json.loads(names) if isinstance(names, str) else list(names)
    if city is None:
        from twin.city import City

        city = City("shenzhen")
    table = city.districts()
    by_name = {str(n).casefold(): str(c) for n, c in zip(table["name"], table["adcode"], strict=True)}
    out = {}
    for i, n in enumerate(names):
        if str(n).casefold() not in by_name:
            raise DataError(f"district {n!r} of the grid is not a district of {city.name}")
        out[i] = by_name[str(n).casefold()]
    return out


def district_coverage(grid: xr.Dataset, codes: dict[int, str], city: Any = None) -> dict[str, float]:
    """Share (0-1) of each district's boundary polygon inside the grid's domain (its land and sea cells)."""
    import rasterio.features
    import shapely
    from affine import Affine

    if city is None:
        from twin.city import City

        city = City("shenzhen")
    x = grid["x"].to_numpy().astype(float)
    y = grid["y"].to_numpy().astype(float)
    dx, dy = x[1] - x[0], y[1] - y[0]
    transform = Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)
    domain = grid["land"].to_numpy().astype(bool)
    if "sea" in grid:
        domain |= grid["sea"].to_numpy().astype(bool)
    shapes = [shapely.geometry.shape(g) for g, v in
              rasterio.features.shapes(domain.astype(np.uint8), mask=domain, transform=transform) if v]
    inside = shapely.union_all(shapes) if shapes else shapely.Polygon()
    t = city.districts().to_crs(grid.attrs.get("crs", "EPSG:4547"))
    polys = dict(zip(t["adcode"].astype(str), t.geometry, strict=True))
    out = {}
    for code in set(codes.values()):
        poly = polys.get(code)
        out[code] = 0.0 if poly is None or poly.area == 0 else min(1.0, poly.intersection(inside).area / poly.area)
    return out


def population_grid(grid: xr.Dataset, census: pd.DataFrame | None = None, *,
                    coverage: dict[str, float] | None = None, codes: dict[int, str] | None = None,
                    city: Any = None) -> xr.DataArray:
    """People per cell (module doc): census totals spread uniformly over each district's land cells.

    Parameters
    ----------
    grid : Dataset
        ``district`` (y, x; id, -1 none) and ``land`` (1 land) on a regular
        grid with ``x``/``y`` in metres (a flood run).
    census : DataFrame, optional
        :func:`read_census` (default: read it).
    coverage : dict, optional
        Share of each district (by code) inside the grid's domain (default:
        :func:`district_coverage` of the city's district polygons).
    codes : dict, optional
        District id -> code (default: :func:`grid_district_codes`).

    Returns
    -------
    DataArray (y, x), float64 people, attrs ``crs``/``transform`` of the grid.
    """
    import xarray as xr

    for v in ("district", "land"):
        if v not in grid:
            raise DataError(f"the grid has no {v!r} variable: give a flood run of `twin flood run`")
    census = census if census is not None else read_census(city=city)
    codes = codes if codes is not None else grid_district_codes(grid, city)
    share = coverage if coverage is not None else district_coverage(grid, codes, city)
    district = grid["district"].to_numpy()
    land = grid["land"].to_numpy().astype(bool)
    total = dict(zip(census["adcode"], census["population"], strict=True))
    people = np.zeros(district.shape)
    for i, code in codes.items():
        cells = land & (district == i)
        n = int(cells.sum())
        if n == 0:
            continue
        if code not in total:
            raise DataError(f"district {code} of the grid has no census row")
        people[cells] = total[code] * share.get(code, 0.0) / n
    return xr.DataArray(people, dims=("y", "x"), coords={"y": grid["y"], "x": grid["x"]}, name="population",
                        attrs={"units": "people", "crs": grid.attrs.get("crs", "EPSG:4547"),
                               "transform": grid.attrs.get("transform"),
                               "long_name": "residents per cell (2020 census district totals spread "
                                            "uniformly over land cells: an assumption)"})


def hazard_zone(source: Any, *, depth_threshold_m: float | None = None, hazard_class: int | None = None,
                probability_threshold: float = 0.5) -> xr.DataArray:
    """Where people must leave, as a boolean (y, x) DataArray.

    Parameters
    ----------
    source : Dataset or DataArray
        A flood run (``depth`` (time, y, x), ``speed``, ``max_depth``): the
        cells whose depth ever reaches ``depth_threshold_m`` or whose ARR hazard
        class ever reaches ``hazard_class`` (default: class 3); or any
        boolean raster (True = leave) or probability raster (>= ``probability_threshold``).

    Raises
    ------
    ValidationError
        When both thresholds are given, or the raster is neither boolean nor in [0, 1].
    """
    import xarray as xr

    from agents.people_hazard import hazard_class as arr_class

    if depth_threshold_m is not None and hazard_class is not None:
        raise ValidationError("give depth_threshold_m or hazard_class, not both")
    if isinstance(source, xr.Dataset):
        if "depth" not in source:
            raise DataError(f"the dataset has no 'depth' variable (has {sorted(source.data_vars)[:8]})")
        depth = source["depth"]
        if depth_threshold_m is not None:
            mask = (depth.fillna(0) >= depth_threshold_m).any("time") if "time" in depth.dims \
                else depth.fillna(0) >= depth_threshold_m
        else:
            k = 3 if hazard_class is None else int(hazard_class)
            speed = source["speed"] if "speed" in source else xr.zeros_like(depth)
            cls = xr.apply_ufunc(arr_class, depth, speed)
            mask = (cls >= k).any("time") if "time" in cls.dims else cls >= k
        return mask.rename("hazard_zone")
    da = source if isinstance(source, xr.DataArray) else xr.DataArray(np.asarray(source), dims=("y", "x"))
    if da.dtype == bool:
        return da.rename("hazard_zone")
    v = da.to_numpy().astype(float)
    finite = v[np.isfinite(v)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValidationError(f"hazard raster values {finite.min():g}..{finite.max():g}: give a boolean "
                              "or a probability raster (0-1)")
    return (da.fillna(0) >= probability_threshold).rename("hazard_zone")


def evacuee_groups(people: xr.DataArray, zone: xr.DataArray, router: Any, *, group_size: float = 20.0
                   ) -> pd.DataFrame:
    """Evacuee groups: people of the zone's cells gathered at the road node nearest each cell.

    Each node's people (rounded to whole people) are split into groups of
    ``group_size`` (the last smaller): one agent per group; ``group_size=1``
    gives one agent per person.

    Parameters
    ----------
    people : DataArray (y, x)
        People per cell (:func:`population_grid`), x/y in EPSG:4547 metres.
    zone : DataArray (y, x) of bool
        :func:`hazard_zone`.
    router : agents.routing.Router
        Of the network people walk on (its nearest node).
    group_size : float
        People per group (> 0).

    Returns
    -------
    DataFrame
        ``node`` (router index), ``lon``, ``lat`` (of the node), ``people``.
    """
    import pandas as pd

    if not (np.isfinite(group_size) and group_size >= 1):
        raise ValidationError(f"group_size={group_size!r}: give a number of people >= 1")
    p = people.to_numpy()
    z = zone.to_numpy().astype(bool)
    if p.shape != z.shape:
        raise ValidationError(f"population grid {p.shape} and hazard zone {z.shape} differ in shape")
    iy, ix = np.nonzero(z & (p > 0))
    cols = {"node": np.zeros(0, np.int64), "lon": np.zeros(0), "lat": np.zeros(0), "people": np.zeros(0)}
    if len(iy) == 0:
        return pd.DataFrame(cols)
    east = people["x"].to_numpy()[ix]
    north = people["y"].to_numpy()[iy]
    node = router.nearest(east, north)
    per_node = pd.Series(p[iy, ix]).groupby(node).sum()
    whole = _round_preserving_total(per_node.to_numpy())
    ll = router.node_lonlat
    rows_node, rows_people = [], []
    for n, k in zip(per_node.index.to_numpy(), whole, strict=True):
        full, rest = divmod(int(k), int(group_size)) if group_size >= 1 else (0, 0)
        sizes = [float(group_size)] * full + ([float(rest)] if rest else [])
        rows_node.extend([int(n)] * len(sizes))
        rows_people.extend(sizes)
    node_arr = np.asarray(rows_node, dtype=np.int64)
    return pd.DataFrame({"node": node_arr, "lon": ll[node_arr, 0], "lat": ll[node_arr, 1],
                         "people": np.asarray(rows_people, dtype=float)})


def _round_preserving_total(x: np.ndarray) -> np.ndarray:
    """Whole numbers summing to round(sum(x)) (largest remainders)."""
    floor = np.floor(x).astype(np.int64)
    short = int(round(float(x.sum()))) - int(floor.sum())
    if short > 0:
        floor[np.argsort(-(x - floor), kind="stable")[:short]] += 1
    return floor


__all__ = ["census_path", "district_coverage", "evacuee_groups", "grid_district_codes", "hazard_zone",
           "population_grid", "read_census"]
