"""Set-up and run of the flood model over a city (or a user DEM).

:func:`city_flood_setup` turns a :class:`twin.city.City` into the inputs of
:class:`physics.flood.FloodModel` on the working grid:

* **DEM**: the city's elevation at ``resolution`` metres, optionally clipped
  to named districts plus a buffer (cells outside become blocked);
* **sea**: water cells of the GSHHG land mask (``land == 0``) connected to
  the edge of the city grid, including water outside the DEM's coverage.
  They are fixed-level cells (a :class:`~physics.forcing.WaterLevel`, tide
  0 m by default, optionally with a surge peak). Their bed is set to
  ``-sea_depth_m`` (1 m): only the level matters to the land, and a shallow
  fringe keeps the CFL step from being set by SRTM's noisy sea values
  (down to -16 m). Levels are in the DEM's datum (EGM96 geoid heights for
  SRTM; local mean sea level differs from it by decimetres, ignored here).
  Inland water (lakes and reservoirs not connected to the sea) keeps its
  DEM surface and is ordinary terrain;
* **coastal low land**: land cells below 0 m (SRTM artefacts and
  sea-wall-protected polders) are raised to 0 m (``min_land_elevation_m``);
* **single-cell pits**: a land cell lower than all its 8 neighbours is
  raised to the lowest of them (``fill_pits``). SRTM's vertical noise
  (metres, more over buildings and trees) makes thousands of such pits in
  the city; left in, each collects its neighbours' runoff into a speckle of
  deep one-cell ponds. Real depressions larger than one cell are kept;
* **blocked cells**: NaN elevation on land (outside the DEM) and cells
  outside the clip polygon, except its **outflow edge**: the ring of land
  cells just outside the outline is kept dry at the sea level (fixed-level
  cells above it), so rivers and overland flow leave the domain where the
  terrain falls outward instead of ponding against a wall;
* **Manning's n**: no land-use map is available, so n = 0.03 s/m^(1/3)
  (urban surfaces: roads, paved areas) everywhere except slopes of 10° or
  more, taken as vegetated hillsides, n = 0.035. Both are assumptions in
  the range of Chow (1959) Table 5-6 for short grass to light brush; tune
  nothing to the validation points;
* **drainage**: a capacity sink per district (mm/h), default
  :data:`DEFAULT_DRAINAGE_MM_H` = 36 mm/h. This is an *assumption*: China's
  code GB 50014-2021 sets 3-5-year return periods for pipe design in the
  central districts of megacities, and 36 mm/h is taken as the effective,
  cell-averaged capacity of such a network during a long storm (inlets
  and pipes surcharge; the design intensity for short concentration times
  is higher). It is not a calibrated value;
* **rain**: a design storm of the 2023-09-07 records
  (:func:`physics.rain.storm_2023_09_07`), any :class:`~physics.forcing.Rain`,
  or a constant rate (mm/h);
* **grid edges**: free outflow for land cells (rivers leaving the city, e.g.
  the Guanlan north into Dongguan); sea cells on the border are blocked, so
  the sea does not drain through the edge and refill at its fixed level.

:func:`run_city_flood` builds the model from that set-up, runs it and
returns the output Dataset with the elevation, the masks and the storm
description added, sea and blocked cells set to NaN in the depth outputs
and the flooded area recounted over land cells only.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from physics.forcing import Rain, UniformRain, WaterLevel
from twin.errors import GridError, ValidationError

DEFAULT_DRAINAGE_MM_H = 36.0
MANNING_URBAN = 0.03
MANNING_STEEP = 0.035
STEEP_DEG = 10.0
STORMS = ("2023-09-07",)
DEPTH_CLASSES_M = (0.15, 0.3, 0.5, 1.0)


# -- small helpers ---------------------------------------------------------------------
def _finite(value, name: str, *, lo: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} must be a number") from None
    if not math.isfinite(v) or (lo is not None and v < lo):
        raise ValidationError(f"{name}={value!r} must be finite" + (f" and >= {lo}" if lo is not None else ""))
    return v


def parse_districts(spec: str | Sequence[str] | None) -> list[str] | None:
    """"Futian,Luohu" or ["Futian", "Luohu"] -> ["Futian", "Luohu"] (None stays None)."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [s.strip() for s in items if str(s).strip()]
    if not names:
        raise ValidationError(f"districts={spec!r} names no district")
    return names


def select_districts(city, names: Sequence[str]):
    """Rows of ``city.districts()`` matching English or Chinese names or adcodes (case-insensitive)."""
    dist = city.districts()
    keys = {}
    for k, r in enumerate(dist.itertuples()):
        for key in (r.name, r.name_zh, r.adcode, str(r.name).replace("'", "")):
            keys[str(key).casefold()] = k
    rows = []
    for n in names:
        k = keys.get(n.casefold())
        if k is None:
            raise ValidationError(
                f"district {n!r} is unknown; choose from {', '.join(dist['name'])} (or adcodes/Chinese names)"
            )
        if k not in rows:
            rows.append(k)
    return dist.iloc[rows]


def sea_mask(land: np.ndarray) -> np.ndarray:
    """Water cells (land == 0) 4-connected to the grid edge: the sea, not inland lakes."""
    from scipy import ndimage

    water = np.asarray(land) == 0
    lab, n = ndimage.label(water)
    if n == 0:
        return np.zeros(water.shape, dtype=bool)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(lab, edge)


def fill_single_pits(z: np.ndarray) -> tuple[np.ndarray, int]:
    """Raise cells lower than all 8 neighbours to their lowest neighbour (NaN = no neighbour).

    Returns the new array and the number of cells raised. One pass: pits
    of more than one cell are untouched.
    """
    from scipy import ndimage

    z = np.asarray(z, dtype=np.float64)
    fp = np.ones((3, 3), bool)
    fp[1, 1] = False
    nb = ndimage.minimum_filter(np.where(np.isnan(z), np.inf, z), footprint=fp, mode="constant", cval=np.inf)
    pit = np.isfinite(z) & np.isfinite(nb) & (z < nb)
    return np.where(pit, nb, z), int(pit.sum())


def tide_series(duration_s: float, level_m: float = 0.0, *, surge_m: float = 0.0,
                surge_peak_s: float | None = None, surge_width_s: float = 6 * 3600.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Sea level (m) at 10-min samples: ``level_m`` plus an optional surge bump.

    The surge is ``surge_m * cos²(π (t - t_peak) / surge_width_s)`` within
    half a width of the peak (default peak: the middle of the run), 0 elsewhere.
    """
    level_m = _finite(level_m, "tide level (m)")
    surge_m = _finite(surge_m, "surge_m", lo=0.0)
    dur = _finite(duration_s, "duration_s", lo=0.0)
    width = _finite(surge_width_s, "surge_width_s", lo=1.0)
    tp = dur / 2 if surge_peak_s is None else _finite(surge_peak_s, "surge_peak_s")
    t = np.linspace(0.0, max(dur, 1.0), max(2, int(math.ceil(dur / 600.0)) + 1))
    u = (t - tp) / width
    bump = np.where(np.abs(u) <= 0.5, np.cos(np.pi * u) ** 2, 0.0)
    return t, level_m + surge_m * bump


def make_storm(storm, *, hours: float, method: str = "alternating_block", city=None,
               peak_fraction: float = 0.5) -> Rain:
    """A Rain from: a storm name ("2023-09-07"), a constant rate (mm/h), or a Rain (returned as is)."""
    from physics.rain import storm_2023_09_07

    if isinstance(storm, Rain):
        return storm
    if isinstance(storm, bool):
        raise ValidationError(f"storm={storm!r}: give a storm name {STORMS}, a rate in mm/h or a Rain")
    if isinstance(storm, int | float):
        rate = _finite(storm, "rain rate (mm/h)", lo=0.0)
        return UniformRain.constant(rate, hours * 3600.0)
    if storm in STORMS:
        return storm_2023_09_07(hours, method, city=city, peak_fraction=peak_fraction)
    raise ValidationError(f"storm={storm!r}: known storms are {STORMS}; or give a rate in mm/h")


def storm_info(rain: Rain, hours: float) -> dict:
    """A JSON-able description of the rain for outputs."""
    if hasattr(rain, "describe"):
        return rain.describe()
    if isinstance(rain, UniformRain):
        return {"name": "uniform rain", "method": "given", "duration_h": hours,
                "total_mm": rain.total_mm, "peak_mm_h": float(rain.rates.max())}
    return {"name": type(rain).__name__, "duration_h": hours, "total_mm": rain.depth_mm(0, hours * 3600.0)}


# -- set-up ------------------------------------------------------------------------------------
def city_flood_setup(
    city="shenzhen",
    *,
    resolution: float = 30.0,
    districts: str | Sequence[str] | None = None,
    buffer_m: float = 500.0,
    domain: str = "polygon",
    storm="2023-09-07",
    hours: float = 6.0,
    method: str = "alternating_block",
    peak_fraction: float = 0.5,
    tide: float | tuple = 0.0,
    surge_m: float = 0.0,
    surge_peak_h: float | None = None,
    drainage_mm_h: Mapping[str, float] | float | None = None,
    default_drainage_mm_h: float = DEFAULT_DRAINAGE_MM_H,
    manning_urban: float = MANNING_URBAN,
    manning_steep: float = MANNING_STEEP,
    steep_deg: float = STEEP_DEG,
    sea_depth_m: float = 1.0,
    min_land_elevation_m: float | None = 0.0,
    fill_pits: bool = True,
    outflow_edge: bool = True,
) -> dict:
    """Inputs of :class:`FloodModel` for a city run (see the module docstring for the choices).

    Parameters
    ----------
    city : str or twin.city.City
    resolution : float
        Cell size (m) of the working grid (EPSG:4547 for Shenzhen).
    districts : "Futian,Luohu", a list of names/adcodes, or None (whole city)
    buffer_m : float
        Margin (m) around the districts (or the city outline) kept in the domain.
    domain : "polygon" | "bbox"
        "polygon": cells outside the buffered outline are blocked, except the
        outflow edge (``outflow_edge``); "bbox": the whole bounding rectangle
        is computed, its edges free outflow.
    outflow_edge : bool
        With ``domain="polygon"``: the cells just outside the outline (4-adjacent
        to active land, on land standing above the highest sea level of the run)
        become fixed-level cells like the sea. Kept at ``max(level - z, 0)`` = dry,
        they take what runs out of the domain over them (a free overfall, booked
        with the sea in the balance's level exchange) and give nothing back;
        where the terrain rises outward nothing runs out. Without them
        (False) the outline is a wall that dams every valley crossing it
        (rivers into Dongguan and Huizhou, or into a neighbouring district of a
        district run).
    storm, hours, method, peak_fraction
        The rain (:func:`make_storm`); ``hours`` is the storm length (h).
    tide : float (constant sea level, m) or (times_s, levels_m)
    surge_m, surge_peak_h
        A surge bump added to a constant ``tide`` (see :func:`tide_series`).
    drainage_mm_h : {district name: mm/h}, one value for all, or None
        Drainage capacity; districts not named get ``default_drainage_mm_h``
        (also cells outside every district). Sea cells drain nothing.
    manning_urban, manning_steep, steep_deg
        n on gentle and on steep (>= ``steep_deg``) terrain.
    sea_depth_m : float
        Depth of the fixed-level sea fringe below 0 m (its bed is set to -sea_depth_m).
    fill_pits : bool
        Raise single-cell pits (land cells lower than all 8 neighbours) to
        their lowest neighbour (:func:`fill_single_pits`).
    min_land_elevation_m : float or None
        Land cells are raised to at least this height (m; None: keep the DEM).
        SRTM reads <= 0 m on ~40 km² of land inside the city at 90 m (Bao'an's
        coastal plain, the Futian and Nanshan shore), sea-wall-protected land
        that the smoothed radar surface shows below the sea; left as is, the
        fixed-level sea would pour into it. Raising it to the mean sea level
        treats it as defended; a surge above it still floods it.

    Returns
    -------
    dict
        ``dem`` (DataArray, m, NaN = blocked), ``manning``, ``rain``,
        ``drainage_mm_h`` (arrays/objects on the DEM's grid), ``water_level``,
        ``boundaries``, ``h0`` (sea cells at their level) (FloodModel keyword arguments) and ``context`` (not a
        model argument: masks, district ids and names, the storm description,
        the outline to report within). Use :func:`model_kwargs` to drop it.
    """
    from rasterio.features import geometry_mask

    from gis.raster import make_grid
    from twin.city import City

    city = City(city) if isinstance(city, str) else city
    resolution = _finite(resolution, "resolution (m)", lo=1e-9)
    if resolution <= 0:
        raise ValidationError(f"resolution={resolution} must be > 0 m")
    buffer_m = _finite(buffer_m, "buffer_m", lo=0.0)
    hours = _finite(hours, "hours", lo=0.0)
    if hours <= 0:
        raise ValidationError(f"hours={hours} must be > 0")
    if domain not in ("polygon", "bbox"):
        raise ValidationError(f"domain={domain!r}: use 'polygon' or 'bbox'")
    for nm, v in (("manning_urban", manning_urban), ("manning_steep", manning_steep)):
        if _finite(v, nm, lo=0.0) <= 0:
            raise ValidationError(f"{nm}={v} must be > 0 s/m^(1/3)")
    sea_depth_m = _finite(sea_depth_m, "sea_depth_m", lo=0.0)
    default_drainage_mm_h = _finite(default_drainage_mm_h, "default_drainage_mm_h", lo=0.0)

    rain = make_storm(storm, hours=hours, method=method, city=city, peak_fraction=peak_fraction)
    names = parse_districts(districts)
    dist_all = city.districts()
    if names is not None:
        chosen = select_districts(city, names)
        outline = chosen.to_crs(city.crs).union_all()
        label = ", ".join(chosen["name"])
    else:
        outline = city.vector("city").to_crs(city.crs).union_all()
        label = f"{city.name} (whole city)"
    region = outline.buffer(buffer_m) if buffer_m > 0 else outline

    st = city.static(resolution)
    full_sea = sea_mask(st["land"].values)
    x, y = st["x"].values, st["y"].values
    minx, miny, maxx, maxy = region.bounds
    ix = np.nonzero((x + resolution / 2 > minx) & (x - resolution / 2 < maxx))[0]
    iy = np.nonzero((y + resolution / 2 > miny) & (y - resolution / 2 < maxy))[0]
    if ix.size < 2 or iy.size < 2:
        raise GridError(f"the region of {label} covers fewer than 2 x 2 cells at {resolution} m")
    sl = (slice(iy[0], iy[-1] + 1), slice(ix[0], ix[-1] + 1))
    sub = st.isel(y=sl[0], x=sl[1])
    t0 = st.attrs["transform"]
    from affine import Affine

    transform = Affine(*t0) @ Affine.translation(int(ix[0]), int(iy[0]))
    shape = sub["elevation"].shape
    z = sub["elevation"].values.astype(np.float64)
    land = sub["land"].values
    sea = full_sea[sl]
    did = sub["district"].values.astype(np.int64)
    slope = sub["slope"].values if "slope" in sub else np.zeros(shape)

    inside = np.ones(shape, dtype=bool)
    if domain == "polygon":
        inside = geometry_mask([region], out_shape=shape, transform=transform, invert=True)
    border = np.zeros(shape, dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    # Sea on the grid's border is blocked: with free edges it would drain through them and be
    # refilled by the fixed level, an endless spurious throughflow. Land edges stay free.
    blocked = (~inside) | (np.isnan(z) & ~sea) | (sea & border)
    active_sea = sea & ~blocked
    active_land = ~blocked & ~sea
    if not active_land.any():
        raise GridError(f"no land cell in the domain of {label}")
    duration_s = hours * 3600.0
    if isinstance(tide, tuple):
        tt, lv = tide
    else:
        tt, lv = tide_series(duration_s, float(tide), surge_m=surge_m,
                             surge_peak_s=None if surge_peak_h is None else surge_peak_h * 3600.0)
    edge = np.zeros(shape, dtype=bool)
    if outflow_edge and domain == "polygon":
        near = np.zeros(shape, dtype=bool)
        near[1:, :] |= active_land[:-1, :]
        near[:-1, :] |= active_land[1:, :]
        near[:, 1:] |= active_land[:, :-1]
        near[:, :-1] |= active_land[:, 1:]
        with np.errstate(invalid="ignore"):
            edge = near & blocked & ~sea & np.isfinite(z) & (z > float(np.max(lv)))
        blocked = blocked & ~edge
    if min_land_elevation_m is not None:
        z = np.where(active_land, np.maximum(z, _finite(min_land_elevation_m, "min_land_elevation_m")), z)
    n_pits = 0
    if fill_pits:
        zf, n_pits = fill_single_pits(np.where(active_land, z, np.nan))
        z = np.where(active_land, zf, z)  # the outflow edge keeps its own bed
    zz = np.where(active_sea, -sea_depth_m, z)
    zz = np.where(blocked, np.nan, zz)
    dem = make_grid(zz, transform, city.crs, name="elevation", units="m",
                    long_name="bed elevation used by the flood model (sea lowered, NaN blocked)")
    dem.attrs["vertical_datum"] = sub["elevation"].attrs.get("vertical_datum", "")

    steep = np.nan_to_num(slope, nan=0.0) >= steep_deg
    manning = np.where(steep, manning_steep, manning_urban)

    # drainage per district
    adnames = list(st.attrs["district_names"])
    dmap = {k: default_drainage_mm_h for k in range(len(adnames))}
    if isinstance(drainage_mm_h, Mapping):
        for nm, v in drainage_mm_h.items():
            rows = select_districts(city, [nm])
            dmap[int(rows["district_id"].iloc[0])] = _finite(v, f"drainage_mm_h[{nm!r}]", lo=0.0)
    elif drainage_mm_h is not None:
        v = _finite(drainage_mm_h, "drainage_mm_h", lo=0.0)
        dmap = dict.fromkeys(dmap, v)
        default_drainage_mm_h = v
    lut = np.array([dmap[k] for k in range(len(adnames))] + [default_drainage_mm_h])
    drain = lut[np.where(did >= 0, did, len(adnames))]
    drain = np.where(active_land, drain, 0.0)

    level_cells = active_sea | edge
    water_level = WaterLevel(level_cells, np.asarray(tt, float), np.asarray(lv, float),
                             name="sea level" if not edge.any() else "sea level (sea and outflow edge)")
    # Start the sea at its level, so the balance's level exchange is the sea's net take from the land
    # (not the filling of the sea fringe at the first step).
    h0 = np.where(active_sea, np.maximum(water_level.at(0.0) - np.nan_to_num(zz), 0.0), 0.0)
    report_within = outline if names is not None else city.vector("city").to_crs(city.crs).union_all()
    context = {
        "label": label, "districts": names, "resolution_m": resolution, "buffer_m": buffer_m,
        "domain": domain, "hours": hours, "storm": storm_info(rain, hours),
        "sea": active_sea, "land": active_land, "blocked": blocked, "outflow_edge": edge, "land_mask_gshhg": land,
        "district": did, "district_names": adnames, "outline": report_within, "crs": city.crs,
        "drainage_mm_h": {adnames[k]: float(v) for k, v in dmap.items()},
        "drainage_default_mm_h": default_drainage_mm_h,
        "manning": {"urban": manning_urban, "steep": manning_steep, "steep_deg": steep_deg},
        "tide": {"times_s": list(map(float, tt)), "level_m": list(map(float, lv))},
        "districts_gdf": dist_all, "city": city, "pits_filled": n_pits,
    }
    return {"dem": dem, "manning": manning, "rain": rain, "drainage_mm_h": drain,
            "water_level": water_level if level_cells.any() else None,
            "boundaries": "free", "h0": h0, "context": context}


def dem_flood_setup(path, *, resolution: float | None = None, storm=50.0, hours: float = 1.0,
                    method: str = "alternating_block", manning: float = MANNING_URBAN,
                    drainage_mm_h: float = DEFAULT_DRAINAGE_MM_H, city=None) -> dict:
    """Set-up from a user DEM file (GeoTIFF...): no sea, no districts, uniform n and drainage, free edges.

    A DEM in a geographic CRS is warped to the UTM zone of its centre at
    ``resolution`` m (default: about its own cell size); a metric DEM is
    resampled only when ``resolution`` is given. Nodata cells are blocked.
    """
    from gis.raster import cell_size, open_raster, reproject

    da = open_raster(path, name="elevation", units="m").astype(np.float64)
    import pyproj

    crs = pyproj.CRS.from_user_input(da.attrs["crs"])
    if crs.is_geographic:
        from pyproj.aoi import AreaOfInterest
        from pyproj.database import query_utm_crs_info

        lon, lat = float(da["x"].mean()), float(da["y"].mean())
        info = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
        if not info:
            raise ValidationError(f"no UTM zone found for the DEM centre ({lon}, {lat})")
        dst = f"EPSG:{info[0].code}"
        res = resolution or round(cell_size(da)[1] * 111320.0, 3)
        da = reproject(da, dst, res)
    elif resolution is not None:
        da = reproject(da, da.attrs["crs"], resolution)
    elif crs.axis_info and crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise ValidationError(f"DEM {path}: its CRS units are {crs.axis_info[0].unit_name}, need metres")
    hours = _finite(hours, "hours", lo=0.0)
    rain = make_storm(storm, hours=hours, method=method, city=city)
    blocked = ~np.isfinite(da.values)
    if blocked.all():
        raise GridError(f"DEM {path} has no valid cell")
    context = {
        "label": Path(path).name, "districts": None, "resolution_m": cell_size(da)[0], "buffer_m": 0.0,
        "domain": "dem", "hours": hours, "storm": storm_info(rain, hours),
        "sea": np.zeros(da.shape, bool), "land": ~blocked, "blocked": blocked,
        "district": np.full(da.shape, -1), "district_names": [], "outline": None, "crs": da.attrs["crs"],
        "drainage_default_mm_h": float(drainage_mm_h), "drainage_mm_h": {},
        "manning": {"uniform": float(manning)}, "tide": None, "districts_gdf": None, "city": None,
    }
    return {"dem": da, "manning": float(manning), "rain": rain, "drainage_mm_h": float(drainage_mm_h),
            "water_level": None, "boundaries": "free", "context": context}


def model_kwargs(setup: Mapping) -> dict:
    """The FloodModel keyword arguments of a set-up (``context`` dropped)."""
    return {k: v for k, v in setup.items() if k != "context"}


# -- run ------------------------------------------------------------------------------------------
def run_city_flood(
    setup: Mapping | None = None,
    *,
    output_every_s: float = 600.0,
    dtype=np.float64,
    progress: Callable[[dict], None] | None = None,
    progress_every_s: float = 60.0,
    wave_depth_cap_m: float | None = None,
    **setup_kwargs,
) -> xr.Dataset:
    """Run the flood model for a set-up (or build one from ``setup_kwargs``) and return its outputs.

    ``progress`` receives a dict ``{"t": simulated s, "duration": s,
    "steps": n, "dt": last step s, "wall": s}`` every ``progress_every_s``
    simulated seconds. The Dataset is that of :meth:`FloodModel.run` plus
    ``elevation``, ``sea``, ``land``, ``district``; ``depth``, ``speed``,
    ``max_depth``, ``time_of_max_depth`` and ``arrival_time`` are NaN on sea
    and blocked cells; ``flooded_area`` counts land cells only (m², depth
    >= 0.15 m); attrs carry the storm, the run time and cell-updates/s.
    ``wave_depth_cap_m`` is passed to :class:`~physics.flood.FloodModel`
    (off by default: a faster step that slows deep water's waves).
    """
    from physics.flood import FloodModel

    setup = setup if setup is not None else city_flood_setup(**setup_kwargs)
    ctx = setup["context"]
    duration = ctx["hours"] * 3600.0
    every = _finite(output_every_s, "output_every_s", lo=0.0)
    if every <= 0:
        raise ValidationError(f"output_every_s={output_every_s} must be > 0 s")
    every = min(every, duration)
    model = FloodModel(**model_kwargs(setup), dtype=dtype, wave_depth_cap_m=wave_depth_cap_m)
    wall0 = time.perf_counter()
    chunk = min(_finite(progress_every_s, "progress_every_s", lo=1e-3), every)
    # FloodModel.run reports only at output times: wrap this instance's step so that each output
    # interval is advanced in chunks of `chunk` seconds with a report after each (run() keeps the
    # bookkeeping of frames, maxima and balance).
    base_step = model.step

    def step(dt):
        t_end = model.t + dt
        while model.t < t_end - 1e-9:
            t_before, n_before = model.t, model.n_steps
            base_step(min(chunk, t_end - model.t))
            if progress is not None:
                dn = model.n_steps - n_before
                progress({"t": model.t, "duration": duration, "steps": model.n_steps,
                          "dt": (model.t - t_before) / dn if dn else 0.0,
                          "wall": time.perf_counter() - wall0})
        return dt

    model.step = step
    ds = model.run(duration, every)
    wall = time.perf_counter() - wall0
    return _finish(ds, setup, model, wall)


def _finish(ds: xr.Dataset, setup: Mapping, model, wall: float) -> xr.Dataset:
    ctx = setup["context"]
    sea, land = ctx["sea"], ctx["land"]
    dem = setup["dem"]
    keep = xr.DataArray(land, dims=("y", "x"))
    for name in ("depth", "speed", "max_depth", "time_of_max_depth", "arrival_time"):
        if name in ds:
            ds[name] = ds[name].where(keep)
    thr = 0.15
    if "depth" in ds:
        area = (ds["depth"] >= thr).sum(("y", "x")).values * model.cell_area
        ds["flooded_area"] = ("time", area.astype(np.float64),
                              {"units": "m2", "long_name": f"land area with depth >= {thr} m"})
    ds["elevation"] = (("y", "x"), np.asarray(dem.values, np.float32),
                       {"units": "m", "long_name": "bed elevation used (sea lowered, NaN blocked)"})
    ds["sea"] = (("y", "x"), sea.astype(np.uint8), {"units": "1", "long_name": "fixed-level sea cell"})
    ds["land"] = (("y", "x"), land.astype(np.uint8), {"units": "1", "long_name": "active land cell"})
    edge = np.asarray(ctx.get("outflow_edge", np.zeros_like(land)), dtype=bool)
    ds["outflow_edge"] = (("y", "x"), edge.astype(np.uint8),
                          {"units": "1", "long_name": "outflow edge cell (kept dry at the sea level: takes what "
                                                      "runs out of the domain)"})
    ds["district"] = (("y", "x"), np.asarray(ctx["district"], np.int16),
                      {"units": "1", "long_name": "district id (-1 none); names in attrs district_names"})
    ds["x"].attrs.update(units="m", standard_name="projection_x_coordinate", axis="X")
    ds["y"].attrs.update(units="m", standard_name="projection_y_coordinate", axis="Y")
    ds.attrs.update({
        "title": f"Flood forecast: {ctx['storm'].get('name', 'rain')} over {ctx['label']}",
        "region": ctx["label"], "crs": ctx["crs"], "resolution_m": float(ctx["resolution_m"]),
        "duration_h": float(ctx["hours"]), "storm": json.dumps(ctx["storm"], ensure_ascii=False),
        "district_names": json.dumps(ctx["district_names"], ensure_ascii=False),
        "drainage_mm_h": json.dumps(ctx["drainage_mm_h"], ensure_ascii=False),
        "drainage_default_mm_h": float(ctx["drainage_default_mm_h"]),
        "manning": json.dumps(ctx["manning"]), "domain": ctx["domain"], "buffer_m": float(ctx["buffer_m"]),
        "wall_time_s": wall, "cell_updates_per_s": model.cell_updates / wall if wall > 0 else float("nan"),
        "land_cells": int(land.sum()), "sea_cells": int(sea.sum()), "grid_cells": int(land.size),
        "outflow_edge_cells": int(edge.sum()),
        "flooded_depth_m": thr,
    })
    return ds
