"""The computational domain every model of the twin runs on.

A :class:`Domain` is built once, from a city (:meth:`Domain.from_city`: its
districts or the whole city), from an area of interest of a city
(:meth:`Domain.from_area`: a lon/lat bounding box or a polygon file) or
from any DEM file (:meth:`Domain.from_dem`), and then handed to the flood,
slope, fire, tunnel and evacuation models alike. It holds the working grid
(shape, cell centres, affine transform, CRS, cell size), the static layers
on it (raw elevation, slope, the GSHHG land mask, district ids) and the
masks that say which cells take part:

* **sea**: water of the GSHHG land mask 4-connected to the edge of the
  city's full grid (not to the clip window's edge, so a bay cut by the
  window stays sea), minus the sea on the clip window's border;
* **blocked**: cells outside the buffered clip polygon (``shape="polygon"``,
  and a polygon area),
  land cells without elevation (outside the DEM) and sea on the border.
  Sea on the border is blocked because, with free grid edges, it would
  drain out through them and be refilled by its fixed level, an endless
  spurious through-flow;
* **land**: every other cell (active land);
* **outflow candidates**: blocked land cells with a finite elevation just
  outside the clip outline, 4-adjacent to active land. A model decides what
  to do with them; the flood keeps those above the run's highest sea level
  as an outflow edge (:mod:`physics.flood_city`).

The Domain holds no model parameter: Manning's n, drainage, sea levels and
the like belong to each model's set-up. Its arrays are read-only, so the
models sharing it cannot change it under each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from gis.raster import coords_from_transform, make_grid, world_to_pixel
from twin.errors import GridError, ValidationError

SHAPES = ("polygon", "bbox")
#: Keys of an area of interest (:meth:`Domain.from_area`): exactly one is given.
AREA_KEYS = ("bbox", "polygon")
#: Step (degrees) at which a lon/lat box's edges are sampled before projecting it.
_BOX_STEP_DEG = 0.001


# -- argument checks --------------------------------------------------------------------------
def _positive(value, name: str, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} must be a number of {unit}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValidationError(f"{name}={value!r} must be a finite number of {unit} > 0")
    return v


def _non_negative(value, name: str, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} must be a number of {unit}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValidationError(f"{name}={value!r} must be a finite number of {unit} >= 0")
    return v


# -- districts ----------------------------------------------------------------------------------
def parse_districts(spec: str | Sequence[str] | None) -> list[str] | None:
    """Split a district list: ``"Futian,Luohu"`` or ``["Futian", "Luohu"]`` -> ``["Futian", "Luohu"]``.

    ``None`` stays ``None`` (the whole city).

    Raises
    ------
    ValidationError
        When the list names no district.
    """
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [s.strip() for s in items if str(s).strip()]
    if not names:
        raise ValidationError(f"districts={spec!r} names no district")
    return names


def request_districts(names: Sequence[str] | None, known: dict[str, str] | None) -> list[str] | None:
    """A run request's district list, checked: names stripped, 1-64 characters, each in
    ``known`` ({casefolded name: name}, from the validation context) when it is given and then
    spelled as there, duplicates dropped. Raises ``ValueError`` (pydantic reports it on the field).
    """
    if names is None:
        return None
    out = []
    for name in names:
        n = name.strip()
        if not n or len(n) > 64:
            raise ValueError(f"district name {name!r} must be 1-64 characters")
        if known is not None and n.casefold() not in known:
            raise ValueError(f"unknown district {name!r}; choose from {sorted(set(known.values()))}")
        out.append(known[n.casefold()] if known is not None else n)
    return list(dict.fromkeys(out))


def pick_districts(districts, names: Sequence[str]):
    """Rows of a districts GeoDataFrame matching English or Chinese names or adcodes.

    Matching ignores case and apostrophes ("Bao'an" = "Baoan"); a district
    named twice is returned once, in the order first named.

    Raises
    ------
    ValidationError
        Naming the unknown district and listing the known ones.
    """
    keys = {}
    for k, r in enumerate(districts.itertuples()):
        for key in (r.name, r.name_zh, r.adcode, str(r.name).replace("'", "")):
            keys[str(key).casefold()] = k
    rows = []
    for n in names:
        k = keys.get(n.casefold())
        if k is None:
            raise ValidationError(
                f"district {n!r} is unknown; choose from {', '.join(districts['name'])} "
                "(or adcodes/Chinese names)"
            )
        if k not in rows:
            rows.append(k)
    return districts.iloc[rows]


def select_districts(city, names: Sequence[str]):
    """Rows of ``city.districts()`` matching names or adcodes (see :func:`pick_districts`)."""
    return pick_districts(city.districts(), names)


# -- masks ----------------------------------------------------------------------------------------
def sea_mask(land: np.ndarray) -> np.ndarray:
    """Water cells (``land == 0``) 4-connected to the grid edge: the sea, not inland lakes."""
    from scipy import ndimage

    water = np.asarray(land) == 0
    lab, n = ndimage.label(water)
    if n == 0:
        return np.zeros(water.shape, dtype=bool)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(lab, edge)


def grid_border(shape: tuple[int, int]) -> np.ndarray:
    """True on the outermost row and column of a grid."""
    border = np.zeros(shape, dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    return border


def outflow_candidates(land: np.ndarray, blocked: np.ndarray, sea: np.ndarray,
                       elevation: np.ndarray) -> np.ndarray:
    """Blocked, finite-elevation non-sea cells 4-adjacent to active land.

    Parameters
    ----------
    land, blocked : numpy.ndarray of bool
        Active land and blocked cells.
    sea : numpy.ndarray of bool
        The sea of the land mask (before blocking), so that blocked sea on the
        border is never a candidate.
    elevation : numpy.ndarray
        Raw elevation (m), NaN without data.
    """
    near = np.zeros(land.shape, dtype=bool)
    near[1:, :] |= land[:-1, :]
    near[:-1, :] |= land[1:, :]
    near[:, 1:] |= land[:, :-1]
    near[:, :-1] |= land[:, 1:]
    return near & blocked & ~sea & np.isfinite(elevation)


# -- the city clip --------------------------------------------------------------------------------
def _clip_outline(city, names: list[str] | None):
    """(outline in the working CRS, label) of the named districts, or of the whole city."""
    if names is not None:
        chosen = select_districts(city, names)
        return chosen.to_crs(city.crs).union_all(), ", ".join(chosen["name"])
    return city.vector("city").to_crs(city.crs).union_all(), f"{city.name} (whole city)"


def _clip_window(x: np.ndarray, y: np.ndarray, resolution: float, bounds, label: str):
    """Row and column slices of the cells whose footprint overlaps ``bounds``."""
    minx, miny, maxx, maxy = bounds
    ix = np.nonzero((x + resolution / 2 > minx) & (x - resolution / 2 < maxx))[0]
    iy = np.nonzero((y + resolution / 2 > miny) & (y - resolution / 2 < maxy))[0]
    if ix.size < 2 or iy.size < 2:
        raise GridError(
            f"the region of {label} covers fewer than 2 x 2 cells at {resolution} m; "
            "use a finer resolution or a larger buffer_m"
        )
    return slice(iy[0], iy[-1] + 1), slice(ix[0], ix[-1] + 1)


def _inside(region, shape: tuple[int, int], transform: Affine, kind: str) -> np.ndarray:
    """Cells whose centre lies in ``region`` (every cell for ``kind="bbox"``)."""
    if kind != "polygon":
        return np.ones(shape, dtype=bool)
    from rasterio.features import geometry_mask

    return geometry_mask([region], out_shape=shape, transform=transform, invert=True)


def _activity_masks(elevation: np.ndarray, sea: np.ndarray, inside: np.ndarray):
    """(blocked, active sea, active land) from the raw elevation, the sea and the clip."""
    blocked = (~inside) | (np.isnan(elevation) & ~sea) | (sea & grid_border(sea.shape))
    return blocked, sea & ~blocked, ~blocked & ~sea


def _utm_of(da: xr.DataArray, path) -> str:
    """The WGS 84 UTM zone (``"EPSG:326xx"``) of a geographic grid's centre."""
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    lon, lat = float(da["x"].mean()), float(da["y"].mean())
    info = query_utm_crs_info(datum_name="WGS 84",
                              area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not info:
        raise ValidationError(
            f"no UTM zone found for the centre ({lon}, {lat}) of DEM {path}; "
            "warp it to a metric CRS first"
        )
    return f"EPSG:{info[0].code}"


def _metric_dem(path, resolution: float | None) -> xr.DataArray:
    """The DEM at ``path`` on a metric grid: geographic DEMs warped to their UTM zone.

    A geographic DEM gets ``resolution`` m cells (default: its own cell size
    in degrees times 111,320 m, the length of a degree of latitude); a metric
    DEM is resampled only when ``resolution`` is given.
    """
    import pyproj

    from gis.raster import cell_size, open_raster, reproject

    da = open_raster(path, name="elevation", units="m").astype(np.float64)
    crs = pyproj.CRS.from_user_input(da.attrs["crs"])
    if crs.is_geographic:
        res = resolution or round(cell_size(da)[1] * 111320.0, 3)
        return reproject(da, _utm_of(da, path), res)
    if resolution is not None:
        return reproject(da, da.attrs["crs"], resolution)
    if crs.axis_info and crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise ValidationError(
            f"DEM {path}: its CRS units are {crs.axis_info[0].unit_name}, need metres; "
            "give resolution=... (m) to warp it, or reproject it to a metric CRS"
        )
    return da


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.array(a)  # a copy, so that freezing never touches the caller's (or a cache's) array
    a.flags.writeable = False
    return a


# -- an area of interest ---------------------------------------------------------------------
def area_problems(area: Any) -> list[str]:
    """What is wrong with an area of interest ``{"bbox": [lon_min, lat_min, lon_max, lat_max]}`` or
    ``{"polygon": "path"}`` (empty when nothing); each problem names the key and the value."""
    if not isinstance(area, dict) or len(area) != 1 or next(iter(area)) not in AREA_KEYS:
        return [f"area={area!r}: give one of {{'bbox': [lon_min, lat_min, lon_max, lat_max]}} "
                "or {'polygon': 'a GeoJSON/GeoPackage file'}"]
    if "polygon" in area:
        p = area["polygon"]
        return [] if isinstance(p, str | Path) and str(p).strip() else [
            f"area.polygon={p!r}: give the path of a GeoJSON/GeoPackage polygon file"]
    b = area["bbox"]
    ok = (isinstance(b, list | tuple) and len(b) == 4
          and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in b))
    if not ok or not (-180 <= b[0] < b[2] <= 180 and -90 <= b[1] < b[3] <= 90):
        return [f"area.bbox={b!r}: give [lon_min, lat_min, lon_max, lat_max] in WGS 84 degrees, "
                "min < max"]
    return []


def area_outline(city, area: dict) -> tuple[Any, str, str]:
    """(outline in the city's CRS, label, kind) of an area of interest (:func:`area_problems`).

    A bounding box's edges are sampled every 0.001 deg before projecting, so the
    outline's bounds are those of the curved box in the working CRS; its kind is
    ``"bbox"``. A polygon file (read in WGS 84 unless it declares a CRS) is the
    union of its polygons; its kind is ``"polygon"``.

    Raises
    ------
    ValidationError
        For a bad area, a polygon file that cannot be read or holds no polygon.
    """
    import geopandas as gpd
    import shapely

    problems = area_problems(area)
    if problems:
        raise ValidationError("; ".join(problems))
    if "bbox" in area:
        b = [float(v) for v in area["bbox"]]
        box = shapely.segmentize(shapely.box(*b), _BOX_STEP_DEG)
        outline = gpd.GeoSeries([box], crs="EPSG:4326").to_crs(city.crs).iloc[0]
        return outline, "bbox " + ",".join(f"{v:g}" for v in b), "bbox"
    from gis.vector import read_vector
    from twin.errors import TwinError

    path = Path(area["polygon"]).expanduser()
    try:
        shapes = read_vector(path).to_crs(city.crs)
    except TwinError as exc:
        raise ValidationError(f"area.polygon={str(path)!r}: {exc}; give an existing polygon file") from exc
    except Exception as exc:  # noqa: BLE001 - an unreadable file: one message naming it
        raise ValidationError(f"area.polygon={str(path)!r} cannot be read ({type(exc).__name__}: {exc}); "
                              "give a GeoJSON/GeoPackage polygon file") from exc
    polys = shapes[shapes.geom_type.isin(["Polygon", "MultiPolygon"])]
    outline = polys.union_all() if len(polys) else None
    if outline is None or outline.is_empty or outline.area <= 0:
        raise ValidationError(f"area.polygon={str(path)!r} holds no polygon (geometry types: "
                              f"{sorted(set(shapes.geom_type))}); give a file of polygons")
    return outline, f"polygon {path.name}", "polygon"


def overlapped_districts(city, outline, label: str) -> tuple[str, ...]:
    """English names of the city's districts ``outline`` (city CRS) overlaps, in the city's order."""
    d = city.districts().to_crs(city.crs)
    names = tuple(str(n) for n, g in zip(d["name"], d.geometry, strict=True) if g.intersects(outline))
    if not names:
        raise ValidationError(f"area {label} overlaps no district of {city.name}; give an area inside "
                              "the city")
    return names


# -- the Domain -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Domain:
    """The grid, static layers and masks shared by every model of a run.

    Build it with :meth:`from_city` or :meth:`from_dem`. Arrays are 2-D on
    the grid (dims ``y``, ``x``; ``y`` descending) and read-only.

    Attributes
    ----------
    transform : affine.Affine
        Cell-corner transform of the north-up grid.
    crs : str
        The grid's CRS (``"EPSG:4547"`` for Shenzhen).
    elevation : numpy.ndarray
        Raw elevation (m, float64), NaN outside the DEM.
    land, sea, blocked : numpy.ndarray of bool
        Active land, active sea and blocked cells; they partition the grid.
    district : numpy.ndarray of int16
        District id (index into ``district_names``), -1 outside every district.
    district_names : tuple of str
        English names of all the city's districts, by id.
    districts : geopandas.GeoDataFrame or None
        All the city's districts (WGS 84), None for a DEM.
    outline : shapely geometry or None
        Where results are reported: the chosen districts, the whole city or
        the area of interest (working CRS); None for a DEM.
    region : shapely geometry or None
        ``outline`` buffered by ``buffer_m``: the clip polygon.
    label : str
        Human name of the area ("Futian, Luohu", "shenzhen (whole city)", "bbox 114,22.5,114.1,22.6",
        "polygon aoi.geojson", a DEM's file name).
    slope : numpy.ndarray
        Terrain slope (degrees, Horn 1981), NaN without elevation.
    land_mask_gshhg : numpy.ndarray of uint8 or None
        GSHHG land (1) or water (0) on the grid; None for a DEM.
    outflow_candidates : numpy.ndarray of bool
        See :func:`outflow_candidates` (all False unless ``kind="polygon"``).
    kind : str
        ``"polygon"``, ``"bbox"`` or ``"dem"`` (an area of interest: its own kind).
    selection : tuple of str or None
        The districts as asked for, or those an area of interest overlaps
        (None: the whole city, or a DEM).
    buffer_m : float
        Margin (m) kept around the outline.
    city : twin.city.City or None
    vertical_datum : str
        Of the elevation ("EGM96" for SRTM), "" when unknown.
    """

    transform: Affine
    crs: str
    elevation: np.ndarray
    land: np.ndarray
    sea: np.ndarray
    blocked: np.ndarray
    district: np.ndarray
    district_names: tuple[str, ...]
    slope: np.ndarray
    outflow_candidates: np.ndarray
    label: str
    kind: str
    districts: Any = None
    outline: Any = None
    region: Any = None
    land_mask_gshhg: np.ndarray | None = None
    selection: tuple[str, ...] | None = None
    buffer_m: float = 0.0
    city: Any = field(default=None, repr=False)
    vertical_datum: str = ""

    _ARRAYS = ("elevation", "land", "sea", "blocked", "district", "slope",
               "outflow_candidates", "land_mask_gshhg")

    def __post_init__(self) -> None:
        for name in self._ARRAYS:
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in self._ARRAYS:
            a = getattr(self, name)
            if a is not None and a.shape != self.shape:
                raise GridError(f"Domain.{name} has shape {a.shape}, the grid {self.shape}")

    # -- constructors -----------------------------------------------------------------------------
    @classmethod
    def from_city(cls, city="shenzhen", *, resolution: float = 30.0,
                  districts: str | Sequence[str] | None = None, buffer_m: float = 500.0,
                  shape: str = "polygon") -> Domain:
        """The domain of a city, or of some of its districts, on its working grid.

        Parameters
        ----------
        city : str or twin.city.City
            A city manifest name or a loaded City.
        resolution : float
            Cell size (m) of the working grid.
        districts : "Futian,Luohu", a list of names/adcodes, or None
            The districts to clip to (None: the whole city).
        buffer_m : float
            Margin (m) around the districts (or the city outline) kept in the domain.
        shape : {"polygon", "bbox"}
            "polygon": cells outside the buffered outline are blocked; "bbox":
            the whole bounding rectangle of the buffered outline is active.

        Returns
        -------
        Domain

        Raises
        ------
        ValidationError
            For a bad argument (named with its value) or an unknown district.
        GridError
            When the clip covers fewer than 2 x 2 cells or no land cell.
        """
        from twin.city import City

        resolution = _positive(resolution, "resolution", "m")
        buffer_m = _non_negative(buffer_m, "buffer_m", "m")
        if shape not in SHAPES:
            raise ValidationError(f"shape={shape!r}: use one of {SHAPES}")
        city = City(city) if isinstance(city, str) else city
        names = parse_districts(districts)
        outline, label = _clip_outline(city, names)
        region = outline.buffer(buffer_m) if buffer_m > 0 else outline
        return cls._on_city(city, resolution, outline, region, label, shape, buffer_m,
                            None if names is None else tuple(names))

    @classmethod
    def from_area(cls, city="shenzhen", area: dict | None = None, *, resolution: float = 30.0,
                  buffer_m: float = 0.0) -> Domain:
        """The domain of an area of interest of a city: its grid cut to the area (+ ``buffer_m``).

        * ``{"bbox": [lon_min, lat_min, lon_max, lat_max]}`` (WGS 84): the grid
          is the cells overlapping the box (projected to the city's CRS, its
          bounds) widened by ``buffer_m`` on every side; every cell of it
          takes part (``kind="bbox"``; no-data land and sea on the border are
          blocked as always).
        * ``{"polygon": path}``: the grid is the cells overlapping the bounds
          of the polygon buffered by ``buffer_m``; cells whose centre lies
          outside that buffered polygon are blocked (``kind="polygon"``): no
          water is routed there and no resident is placed there (people are
          spread over active cells only, :func:`agents.population.population_grid`).

        ``selection`` is the districts the area overlaps (English names), so a
        model that loads per-district data (the road graph) loads only those;
        ``outline`` is the area itself, ``region`` the buffered one.

        Raises
        ------
        ValidationError
            For a bad area or argument, or an area that overlaps no district.
        GridError
            When the area covers fewer than 2 x 2 cells of the city's grid or no land cell.
        """
        from twin.city import City

        resolution = _positive(resolution, "resolution", "m")
        buffer_m = _non_negative(buffer_m, "buffer_m", "m")
        city = City(city) if isinstance(city, str) else city
        outline, label, kind = area_outline(city, area)
        names = overlapped_districts(city, outline, label)
        if kind == "bbox":
            import shapely

            x0, y0, x1, y1 = outline.bounds
            region = shapely.box(x0 - buffer_m, y0 - buffer_m, x1 + buffer_m, y1 + buffer_m)
        else:
            region = outline.buffer(buffer_m) if buffer_m > 0 else outline
        return cls._on_city(city, resolution, outline, region, label, kind, buffer_m, names)

    @classmethod
    def _on_city(cls, city, resolution: float, outline, region, label: str, shape: str, buffer_m: float,
                 selection: tuple[str, ...] | None) -> Domain:
        """The domain of the city's cells in ``region``'s bounds (``shape``: polygon clips, bbox does not)."""
        st = city.static(resolution)
        # Sea is water connected to the edge of the city's full grid, found before clipping.
        full_sea = sea_mask(st["land"].values)
        rows, cols = _clip_window(st["x"].values, st["y"].values, resolution, region.bounds, label)
        sub = st.isel(y=rows, x=cols)
        transform = Affine(*st.attrs["transform"]) @ Affine.translation(cols.start, rows.start)
        elevation = sub["elevation"].values.astype(np.float64)
        sea = full_sea[rows, cols]
        inside = _inside(region, elevation.shape, transform, shape)
        blocked, active_sea, active_land = _activity_masks(elevation, sea, inside)
        if not active_land.any():
            raise GridError(f"no land cell in the domain of {label}; choose another area")
        edge = (outflow_candidates(active_land, blocked, sea, elevation) if shape == "polygon"
                else np.zeros(elevation.shape, dtype=bool))
        slope = sub["slope"].values if "slope" in sub else np.zeros(elevation.shape)
        return cls(
            transform=transform, crs=city.crs, elevation=elevation, land=active_land,
            sea=active_sea, blocked=blocked, district=sub["district"].values,
            district_names=tuple(st.attrs["district_names"]), slope=slope,
            outflow_candidates=edge, label=label, kind=shape, districts=city.districts(),
            outline=outline, region=region, land_mask_gshhg=sub["land"].values,
            selection=selection, buffer_m=buffer_m, city=city,
            vertical_datum=sub["elevation"].attrs.get("vertical_datum", ""),
        )

    @classmethod
    def from_dem(cls, path, *, resolution: float | None = None) -> Domain:
        """The domain of a DEM file (GeoTIFF, SRTM .hgt, ...): no sea, no districts.

        Parameters
        ----------
        path : str or os.PathLike
            The DEM (m). Nodata cells are blocked; every other cell is land.
        resolution : float, optional
            Cell size (m). A DEM in a geographic CRS is warped to the UTM zone
            of its centre at this size (default: about its own cell size); a
            metric DEM is resampled only when it is given.

        Raises
        ------
        ValidationError
            For a bad resolution or a DEM whose CRS is not metric.
        GridError
            When the DEM has no valid cell.
        """
        from gis import terrain

        if resolution is not None:
            resolution = _positive(resolution, "resolution", "m")
        da = _metric_dem(path, resolution)
        elevation = np.asarray(da.values, dtype=np.float64)
        blocked = ~np.isfinite(elevation)
        if blocked.all():
            raise GridError(f"DEM {path} has no valid cell (all nodata)")
        shape = elevation.shape
        none = np.zeros(shape, dtype=bool)
        return cls(
            transform=Affine(*da.attrs["transform"][:6]), crs=da.attrs["crs"],
            elevation=elevation, land=~blocked, sea=none, blocked=blocked,
            district=np.full(shape, -1, dtype=np.int16), district_names=(),
            slope=terrain.slope(da).values, outflow_candidates=none, label=Path(path).name,
            kind="dem",
        )

    # -- grid -------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(ny, nx)``."""
        return self.elevation.shape if self.elevation is not None else (0, 0)

    @property
    def resolution_m(self) -> float:
        """Cell size (m)."""
        return abs(self.transform.a)

    @property
    def x(self) -> np.ndarray:
        """Cell-centre x coordinates (m, increasing)."""
        return self.cell_centres()[0]

    @property
    def y(self) -> np.ndarray:
        """Cell-centre y coordinates (m, decreasing: north up)."""
        return self.cell_centres()[1]

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """1-D cell-centre coordinates ``(x, y)`` in the domain's CRS (:func:`gis.raster.coords_from_transform`)."""
        return coords_from_transform(self.transform, *self.shape)

    def cell_of(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """The ``(row, col)`` of the cell holding map point(s) ``(x, y)`` (the domain's CRS).

        Returns integer arrays shaped like the inputs (0-d for scalars).

        Raises
        ------
        GridError
            Naming the first point outside the grid.
        """
        col, row = world_to_pixel(self.transform, x, y)
        row, col = np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)
        outside = (row < 0) | (row >= self.shape[0]) | (col < 0) | (col >= self.shape[1])
        if np.any(outside):
            k = np.flatnonzero(outside)[0]
            px, py = np.ravel(np.asarray(x, float))[k], np.ravel(np.asarray(y, float))[k]
            raise GridError(
                f"point (x={px}, y={py}) lies outside the grid of {self.label} "
                f"({self.shape[0]} x {self.shape[1]} cells, CRS {self.crs}); give points inside it"
            )
        return row, col

    def grid_dataarray(self, values: np.ndarray, name: str, units: str,
                       long_name: str | None = None) -> xr.DataArray:
        """``values`` as a DataArray on the domain's grid with units, CRS and transform.

        Raises
        ------
        GridError
            When ``values`` is not shaped like the grid.
        """
        values = np.asarray(values)
        if values.shape != self.shape:
            raise GridError(f"{name}: values of shape {values.shape} do not fit the grid {self.shape}")
        return make_grid(values, self.transform, self.crs, name=name, units=units,
                         long_name=long_name)

    def as_dataset(self) -> xr.Dataset:
        """The static layers as a Dataset (units per variable; ``crs``, ``transform`` in attrs).

        Masks are uint8 (1 = True), so the Dataset writes to NetCDF as is; it
        validates as :class:`twin.state.TwinState`'s static state.
        """
        layers = [
            (self.elevation, "elevation", "m", "raw elevation, NaN outside the DEM"),
            (self.slope, "slope", "degree", "terrain slope (Horn 1981)"),
            (self.land, "land", "1", "active land cell"),
            (self.sea, "sea", "1", "active sea cell"),
            (self.blocked, "blocked", "1", "blocked cell (outside the domain or without data)"),
            (self.district, "district", "1", "district id (see district_names), -1 outside"),
            (self.outflow_candidates, "outflow_candidate", "1",
             "land just outside the clip outline, next to active land"),
        ]
        if self.land_mask_gshhg is not None:
            layers.append((self.land_mask_gshhg, "land_mask_gshhg", "1",
                           "land (1) or water (0), GSHHG full"))
        ds = xr.Dataset()
        for values, name, units, long_name in layers:
            if values.dtype == np.bool_:
                values = values.astype(np.uint8)
            ds[name] = self.grid_dataarray(values, name, units, long_name)
        ds["elevation"].attrs["vertical_datum"] = self.vertical_datum
        ds.attrs.update(crs=self.crs, transform=tuple(self.transform)[:6],
                        resolution_m=self.resolution_m, label=self.label, kind=self.kind,
                        buffer_m=self.buffer_m, district_names=list(self.district_names))
        return ds
