"""Soil parameters, zones and the slope-depth rule for the slope-failure model.

The packaged table ``physics/slope_soils.toml`` holds, per zone, c' (kPa), phi'
(deg), unit weight (kN/m^3), Ks (m/s), D0 (m^2/s), soil depth (m) and initial
water-table depth (m): each a default, a distribution and the literature range
it comes from, cited per row. They are literature ranges to be replaced by site
data, not measurements in Shenzhen.

:func:`load_table` validates a table (the packaged one or a user's) with a strict
pydantic v2 schema plus unit checks and lists every problem with its path in the
file, the value and what is allowed. :func:`zones_from_raster` and
:func:`zones_from_polygons` put zone codes on a target grid; :func:`depth_from_slope`
is the linear slope-depth rule (Saulnier et al. 1997, WRR 33:2097; used with TRIGRS
by Baum et al. 2010, JGR 115 F03013).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from twin.errors import ValidationError

DEFAULT_TABLE = Path(__file__).with_name("slope_soils.toml")

#: Parameter name -> (units, lower, upper, lower_open, upper_open): the physically allowed
#: interval every default, range and distribution bound must lie in.
PARAMS: dict[str, tuple[str, float, float, bool, bool]] = {
    "c_kpa": ("kPa", 0.0, 500.0, False, False),
    "phi_deg": ("deg", 0.0, 60.0, True, True),
    "gamma_kn_m3": ("kN/m3", 10.0, 30.0, False, False),
    "ks_m_s": ("m/s", 0.0, 1e-1, True, False),
    "d0_m2_s": ("m2/s", 0.0, 1.0, True, False),
    "depth_m": ("m", 0.0, 200.0, True, False),
    "water_table_m": ("m", 0.0, 200.0, False, False),
}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ParamSpec(_Strict):
    """One parameter: default, distribution and cited literature range."""

    default: float
    dist: Literal["normal", "lognormal", "uniform", "truncnorm"]
    sd: float | None = None
    cv: float | None = None
    low: float | None = None
    high: float | None = None
    range: Annotated[list[float], Field(min_length=2, max_length=2)]
    source: str


class DepthRule(_Strict):
    """Linear slope-depth rule: h_max at slope_min_deg, h_min at slope_max_deg."""

    h_min_m: float
    h_max_m: float
    slope_min_deg: float
    slope_max_deg: float
    source: str


class ZoneSpec(_Strict):
    code: int
    description: str
    c_kpa: ParamSpec
    phi_deg: ParamSpec
    gamma_kn_m3: ParamSpec
    ks_m_s: ParamSpec
    d0_m2_s: ParamSpec
    depth_m: ParamSpec
    water_table_m: ParamSpec
    depth_rule: DepthRule | None = None


class Correlation(_Strict):
    c_phi: float = 0.0


class SoilTable(_Strict):
    default_zone: str
    correlation: Correlation = Correlation()
    zones: dict[str, ZoneSpec]

    def zone(self, name: str) -> ZoneSpec:
        try:
            return self.zones[name]
        except KeyError:
            raise ValidationError(f"zone = {name!r}: not in the table (zones: {sorted(self.zones)})") from None

    def codes(self) -> dict[int, str]:
        """Zone code -> zone name."""
        return {z.code: name for name, z in self.zones.items()}


def _interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _inside(v: float, lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    if not math.isfinite(v):
        return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def _semantic_problems(t: SoilTable) -> list[str]:
    out: list[str] = []
    if t.default_zone not in t.zones:
        out.append(f"default_zone = {t.default_zone!r}: must be one of {sorted(t.zones)}")
    if not -1.0 < t.correlation.c_phi < 1.0:
        out.append(f"correlation.c_phi = {t.correlation.c_phi}: must lie in (-1, 1)")
    seen: dict[int, str] = {}
    for zname, z in t.zones.items():
        if z.code in seen:
            out.append(f"zones.{zname}.code = {z.code}: already used by zone {seen[z.code]!r}; codes must be unique")
        seen.setdefault(z.code, zname)
        for pname, (units, lo, hi, lo_open, hi_open) in PARAMS.items():
            p: ParamSpec = getattr(z, pname)
            path = f"zones.{zname}.{pname}"
            allowed = f"{_interval(lo, hi, lo_open, hi_open)} {units}"
            for key in ("default", "low", "high"):
                v = getattr(p, key)
                if v is not None and not _inside(v, lo, hi, lo_open, hi_open):
                    out.append(f"{path}.{key} = {v}: must lie in {allowed}")
            r0, r1 = p.range
            for i, v in enumerate(p.range):
                if not _inside(v, lo, hi, lo_open, hi_open):
                    out.append(f"{path}.range[{i}] = {v}: must lie in {allowed}")
            if r0 > r1:
                out.append(f"{path}.range = [{r0}, {r1}]: low must not exceed high")
            elif not r0 <= p.default <= r1:
                out.append(f"{path}.default = {p.default}: outside its cited range [{r0:g}, {r1:g}] {units}")
            need = {"normal": ("sd",), "lognormal": ("cv",), "uniform": ("low", "high"),
                    "truncnorm": ("sd", "low", "high")}[p.dist]
            for key in ("sd", "cv", "low", "high"):
                v = getattr(p, key)
                if key in need and v is None:
                    out.append(f"{path}.{key}: missing, dist = {p.dist!r} needs {', '.join(need)}")
                elif key not in need and v is not None:
                    out.append(f"{path}.{key} = {v}: not used by dist = {p.dist!r} (it takes {', '.join(need)})")
            if p.sd is not None and not (math.isfinite(p.sd) and p.sd > 0):
                out.append(f"{path}.sd = {p.sd}: must be > 0 {units}")
            if p.cv is not None and not (math.isfinite(p.cv) and p.cv > 0):
                out.append(f"{path}.cv = {p.cv}: must be > 0")
            if p.dist == "lognormal" and not p.default > 0:
                out.append(f"{path}.default = {p.default}: a lognormal needs a mean > 0 {units}")
            if p.low is not None and p.high is not None:
                if not p.low < p.high:
                    out.append(f"{path}.low = {p.low}: must be below high = {p.high}")
                elif p.dist == "uniform" and not p.low <= p.default <= p.high:
                    out.append(f"{path}.default = {p.default}: must lie in [low, high] = [{p.low:g}, {p.high:g}]")
                elif p.dist == "truncnorm" and not p.low <= p.default <= p.high:
                    out.append(f"{path}.default = {p.default}: must lie in [low, high] = [{p.low:g}, {p.high:g}]")
        r = z.depth_rule
        if r is not None:
            path = f"zones.{zname}.depth_rule"
            if not 0 < r.h_min_m <= r.h_max_m:
                out.append(f"{path}.h_min_m = {r.h_min_m}: must satisfy 0 < h_min_m <= h_max_m = {r.h_max_m} m")
            if not 0 <= r.slope_min_deg < r.slope_max_deg < 90:
                out.append(f"{path}.slope_max_deg = {r.slope_max_deg}: must satisfy "
                           f"0 <= slope_min_deg ({r.slope_min_deg}) < slope_max_deg < 90 deg")
    return out


def validate_table(data: dict[str, Any], *, origin: str = "table") -> SoilTable:
    """Validate a parsed table; raise :class:`ValidationError` listing every problem."""
    try:
        table = SoilTable.model_validate(data)
    except PydanticValidationError as e:
        lines = []
        for err in e.errors():
            path = ".".join(str(p) for p in err["loc"])
            value = err.get("input")
            shown = "(missing)" if err["type"] == "missing" else repr(value) if not isinstance(value, dict) else "{...}"
            lines.append(f"{path} = {shown}: {err['msg']}")
        raise ValidationError(f"{origin}: {len(lines)} problem(s):\n  " + "\n  ".join(lines)) from None
    problems = _semantic_problems(table)
    if problems:
        raise ValidationError(f"{origin}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return table


def load_table(path: str | Path | None = None) -> SoilTable:
    """Load and validate a soil table (TOML); the packaged literature table by default."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        from twin.errors import DataMissingError
        raise DataMissingError(f"soil table {p}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ValidationError(f"soil table {p}: not valid TOML ({e})") from None
    return validate_table(data, origin=str(p))


# -- target grid -----------------------------------------------------------------------------
def grid_geometry(grid) -> tuple[Any, Any, tuple[int, int]]:
    """(affine transform, CRS, (rows, cols)) of a target grid DataArray.

    The transform comes from ``attrs['transform']`` (affine.Affine or its 6 GDAL/affine
    coefficients) or else from regular 1-D ``x``/``y`` cell-centre coordinates; the CRS
    from ``attrs['crs']`` (anything ``rasterio.crs.CRS.from_user_input`` accepts).
    """
    from affine import Affine
    from rasterio.crs import CRS

    from twin.errors import CRSError, GridError

    shape = (int(grid.sizes["y"]), int(grid.sizes["x"])) if "y" in grid.dims else tuple(grid.shape[-2:])
    crs_in = grid.attrs.get("crs")
    if crs_in is None:
        raise CRSError("grid.attrs['crs'] is missing: give the target grid its CRS (e.g. 'EPSG:4547')")
    crs = CRS.from_user_input(crs_in)
    tr = grid.attrs.get("transform")
    if tr is not None:
        transform = tr if isinstance(tr, Affine) else Affine(*list(tr)[:6])
    elif "x" in grid.coords and "y" in grid.coords:
        x = np.asarray(grid["x"], float)
        y = np.asarray(grid["y"], float)
        if x.size < 2 or y.size < 2:
            raise GridError(f"grid x/y coords have sizes {x.size}, {y.size}: need at least 2 each for a transform")
        dx, dy = np.diff(x), np.diff(y)
        if not (np.allclose(dx, dx[0], rtol=1e-9) and np.allclose(dy, dy[0], rtol=1e-9)):
            raise GridError("grid x/y coords are not regularly spaced: give attrs['transform']")
        transform = Affine(dx[0], 0.0, x[0] - dx[0] / 2, 0.0, dy[0], y[0] - dy[0] / 2)
    else:
        raise GridError("grid has neither attrs['transform'] nor x/y coords")
    return transform, crs, shape


def _zone_array(codes: np.ndarray, grid, table_codes: dict[int, str] | None, source: str):
    import xarray as xr

    coords = {k: grid.coords[k] for k in ("y", "x") if k in grid.coords}
    attrs = {"units": "1", "long_name": "slope soil zone code", "source": source,
             "crs": str(grid.attrs.get("crs"))}
    if table_codes is not None:
        attrs["zone_names"] = json.dumps({str(k): v for k, v in sorted(table_codes.items())})
    return xr.DataArray(codes.astype(np.int16), dims=("y", "x"), coords=coords, attrs=attrs)


def zones_from_raster(src, grid, *, table: SoilTable | None = None, src_transform=None, src_crs=None,
                      code_map: dict[int, str] | None = None):
    """Zone codes on ``grid`` from an integer raster in any CRS (nearest-neighbour resampling).

    ``src`` is a DataArray (transform/crs from its attrs or x/y coords, as for the grid)
    or a 2-D array with ``src_transform`` and ``src_crs``. ``code_map`` maps the raster's
    own codes to zone names (default: the raster already holds the table's codes). Cells
    with no data, outside the raster or with an unmapped code get the table's default zone.
    """
    from rasterio.warp import Resampling, reproject

    table = table or load_table()
    names = table.codes()
    default_code = table.zone(table.default_zone).code
    if src_transform is None or src_crs is None:
        s_tr, s_crs, _ = grid_geometry(src)
        src_transform = src_transform or s_tr
        src_crs = src_crs or s_crs
    arr = np.asarray(src)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"zone raster dtype = {arr.dtype}: must hold integer codes")
    lut_keys = code_map if code_map is not None else {c: n for c, n in names.items()}
    for name in lut_keys.values():
        table.zone(name)  # unknown zone names are refused
    nodata = -32768
    mapped = np.full(arr.shape, nodata, dtype=np.int32)
    for code, name in lut_keys.items():
        mapped[arr == code] = table.zone(name).code
    transform, crs, shape = grid_geometry(grid)
    out = np.full(shape, nodata, dtype=np.int32)
    reproject(mapped, out, src_transform=src_transform, src_crs=src_crs, src_nodata=nodata,
              dst_transform=transform, dst_crs=crs, dst_nodata=nodata, resampling=Resampling.nearest)
    out[out == nodata] = default_code
    return _zone_array(out, grid, names, "raster (nearest)")


def zones_from_polygons(polygons, grid, *, table: SoilTable | None = None, crs=None, prop: str = "zone"):
    """Zone codes on ``grid`` from polygons with a ``zone`` property naming a table zone.

    ``polygons``: a GeoDataFrame, a GeoJSON dict (FeatureCollection) or a path to a GeoJSON
    file. Polygons are reprojected to the grid's CRS and burnt with
    ``rasterio.features.rasterize`` (cell centres inside; later features win); elsewhere the
    table's default zone.
    """
    import geopandas as gpd
    from rasterio.features import rasterize

    table = table or load_table()
    if isinstance(polygons, (str, Path)):
        gdf = gpd.read_file(polygons)
    elif isinstance(polygons, dict):
        gdf = gpd.GeoDataFrame.from_features(polygons["features"], crs=crs or "EPSG:4326")
    else:
        gdf = polygons
    if gdf.crs is None:
        if crs is None:
            from twin.errors import CRSError
            raise CRSError("polygons have no CRS: pass crs=")
        gdf = gdf.set_crs(crs)
    if prop not in gdf.columns:
        raise ValidationError(f"polygons: no {prop!r} property (columns: {list(gdf.columns)})")
    transform, gcrs, shape = grid_geometry(grid)
    gdf = gdf.to_crs(gcrs)
    shapes = [(geom, table.zone(str(z)).code) for geom, z in zip(gdf.geometry, gdf[prop], strict=True)
              if geom is not None and not geom.is_empty]
    default_code = table.zone(table.default_zone).code
    if shapes:
        out = rasterize(shapes, out_shape=shape, transform=transform, fill=default_code, dtype="int32")
    else:
        out = np.full(shape, default_code, dtype=np.int32)
    return _zone_array(out, grid, table.codes(), "polygons (rasterio.features.rasterize)")


# -- per-cell parameters -----------------------------------------------------------------------
def defaults_on_grid(zones, table: SoilTable | None = None) -> dict[str, np.ndarray]:
    """The default value of every parameter at each cell of a zone-code array (float64)."""
    table = table or load_table()
    z = np.asarray(zones)
    out = {p: np.full(z.shape, np.nan) for p in PARAMS}
    for spec in table.zones.values():
        m = z == spec.code
        for p in PARAMS:
            out[p][m] = getattr(spec, p).default
    unknown = ~np.isin(z, [s.code for s in table.zones.values()])
    if unknown.any():
        raise ValidationError(f"zones: codes {sorted(set(np.unique(z[unknown]).tolist()))} are not in the table")
    return out


def depth_from_slope(slope_deg, h_min: float, h_max: float, slope_min_deg: float, slope_max_deg: float):
    """Soil depth (m) from slope angle (deg), linear rule of Saulnier et al. (1997), as used with
    TRIGRS by Baum et al. (2010):

        h = h_max - (h_max - h_min) * (theta - theta_min) / (theta_max - theta_min),

    clipped to [h_min, h_max] outside [theta_min, theta_max]. Depth is h_max on the gentlest
    slope and h_min on the steepest; non-increasing in slope. NaN slopes give NaN.
    """
    if not 0 < h_min <= h_max:
        raise ValidationError(f"h_min = {h_min}: must satisfy 0 < h_min <= h_max = {h_max} m")
    if not slope_min_deg < slope_max_deg:
        raise ValidationError(f"slope_max_deg = {slope_max_deg}: must exceed slope_min_deg = {slope_min_deg}")
    s = np.asarray(slope_deg, dtype=float)
    frac = np.clip((s - slope_min_deg) / (slope_max_deg - slope_min_deg), 0.0, 1.0)
    return h_max - (h_max - h_min) * frac


def depth_on_grid(slope_deg, zones, table: SoilTable | None = None) -> np.ndarray:
    """Soil depth per cell from slope by each zone's ``depth_rule`` (zones without one keep
    their default depth)."""
    table = table or load_table()
    z = np.asarray(zones)
    s = np.asarray(slope_deg, float)
    out = defaults_on_grid(z, table)["depth_m"]
    for spec in table.zones.values():
        r = spec.depth_rule
        if r is None:
            continue
        m = z == spec.code
        out[m] = depth_from_slope(s[m], r.h_min_m, r.h_max_m, r.slope_min_deg, r.slope_max_deg)
    return out
