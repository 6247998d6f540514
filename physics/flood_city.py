"""Set-up and run of the flood model over a city (or a user DEM).

:func:`flood_setup` turns a :class:`twin.domain.Domain` (the grid, masks and
static layers every model shares) into the inputs of
:class:`physics.flood.FloodModel`; :func:`city_flood_setup` is
``flood_setup(Domain.from_city(...))`` and :func:`dem_flood_setup` its
counterpart on ``Domain.from_dem(...)``. Domain and flood parameters together:

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
* **terrain conditioning** (``conditioning=``, :mod:`physics.flood_terrain`):
  after the pits, optionally remove deep small pits and one-cell spikes
  (``"artefacts"``), burn OSM roads with their bridges, tunnels and
  underpasses (``"roads"``), and turn building footprints into porosity and
  blocked cells (``"buildings"``); the steps applied and what each changed
  are in the context's ``conditioning`` and the run's
  ``terrain_conditioning`` attribute;
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
from dataclasses import dataclass

import numpy as np
import xarray as xr

from physics.flood_terrain import DEFAULT_CONDITIONING, condition_domain
from physics.forcing import Rain, UniformRain, WaterLevel

# parse_districts, select_districts and sea_mask moved to twin.domain; re-exported for callers.
from twin.domain import SHAPES, Domain, pick_districts
from twin.domain import parse_districts as parse_districts
from twin.domain import sea_mask as sea_mask
from twin.domain import select_districts as select_districts
from twin.errors import ValidationError

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
               peak_fraction: float = 0.5, rain_scale: float = 1.0) -> Rain:
    """A Rain from: a storm name ("2023-09-07"), a constant rate (mm/h), or a Rain (as is);
    every rate times ``rain_scale`` (:func:`physics.forcing.scale_rain`)."""
    from physics.forcing import scale_rain
    from physics.rain import storm_2023_09_07

    if isinstance(storm, Rain):
        return scale_rain(storm, rain_scale)
    if isinstance(storm, bool):
        raise ValidationError(f"storm={storm!r}: give a storm name {STORMS}, a rate in mm/h or a Rain")
    if isinstance(storm, int | float):
        rate = _finite(storm, "rain rate (mm/h)", lo=0.0)
        return scale_rain(UniformRain.constant(rate, hours * 3600.0), rain_scale)
    if storm in STORMS:
        return scale_rain(storm_2023_09_07(hours, method, city=city, peak_fraction=peak_fraction), rain_scale)
    raise ValidationError(f"storm={storm!r}: known storms are {STORMS}; or give a rate in mm/h")


def storm_info(rain: Rain, hours: float) -> dict:
    """A JSON-able description of the rain for outputs."""
    if hasattr(rain, "describe"):
        return rain.describe()
    if isinstance(rain, UniformRain):
        scale = getattr(rain, "rain_scale", 1.0)
        return {"name": "uniform rain", "method": "given", "duration_h": hours,
                "total_mm": rain.total_mm, "peak_mm_h": float(rain.rates.max()),
                **({"rain_scale": scale} if scale != 1.0 else {})}
    return {"name": type(rain).__name__, "duration_h": hours, "total_mm": rain.depth_mm(0, hours * 3600.0)}


# -- set-up: flood parameters on a Domain ------------------------------------------------------
def _check_flood_scalars(*, hours, manning_urban, manning_steep, sea_depth_m,
                         default_drainage_mm_h) -> tuple[float, float, float]:
    """Validated (hours, sea_depth_m, default_drainage_mm_h); Manning's n checked > 0."""
    hours = _finite(hours, "hours", lo=0.0)
    if hours <= 0:
        raise ValidationError(f"hours={hours} must be > 0")
    for nm, v in (("manning_urban", manning_urban), ("manning_steep", manning_steep)):
        if _finite(v, nm, lo=0.0) <= 0:
            raise ValidationError(f"{nm}={v} must be > 0 s/m^(1/3)")
    return (hours, _finite(sea_depth_m, "sea_depth_m", lo=0.0),
            _finite(default_drainage_mm_h, "default_drainage_mm_h", lo=0.0))


def sea_levels(tide, duration_s: float, *, surge_m: float = 0.0,
               surge_peak_h: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(times s, levels m) of the sea: a given ``(times_s, levels_m)`` or :func:`tide_series`."""
    if isinstance(tide, tuple):
        return tide
    return tide_series(duration_s, float(tide), surge_m=surge_m,
                       surge_peak_s=None if surge_peak_h is None else surge_peak_h * 3600.0)


def outflow_edge_cells(domain: Domain, levels_m) -> np.ndarray:
    """The domain's outflow candidates whose bed stands above the highest sea level of the run.

    Lower candidates stay blocked: kept at the sea level they would pour water into the domain.
    """
    with np.errstate(invalid="ignore"):
        return domain.outflow_candidates & (domain.elevation > float(np.max(levels_m)))


def land_bed(domain: Domain, *, min_land_elevation_m: float | None = 0.0,
             fill_pits: bool = True) -> tuple[np.ndarray, int]:
    """Raw elevation with active land raised to ``min_land_elevation_m`` and single pits filled.

    Returns the bed (m) and the number of pits filled. Only active land
    changes: the outflow edge keeps its own bed.
    """
    z, land = domain.elevation, domain.land
    if min_land_elevation_m is not None:
        z = np.where(land, np.maximum(z, _finite(min_land_elevation_m, "min_land_elevation_m")), z)
    if not fill_pits:
        return z, 0
    zf, n_pits = fill_single_pits(np.where(land, z, np.nan))
    return np.where(land, zf, z), n_pits


def model_bed(z: np.ndarray, sea: np.ndarray, blocked: np.ndarray, sea_depth_m: float) -> np.ndarray:
    """The bed the model sees: sea lowered to ``-sea_depth_m``, blocked cells NaN."""
    return np.where(blocked, np.nan, np.where(sea, -sea_depth_m, z))


def manning_by_slope(slope_deg: np.ndarray, *, urban: float = MANNING_URBAN,
                     steep: float = MANNING_STEEP, steep_deg: float = STEEP_DEG) -> np.ndarray:
    """Manning's n: ``steep`` on slopes of ``steep_deg`` or more, ``urban`` elsewhere."""
    return np.where(np.nan_to_num(slope_deg, nan=0.0) >= steep_deg, steep, urban)


def drainage_by_district(domain: Domain, drainage_mm_h: Mapping[str, float] | float | None,
                         default_mm_h: float) -> tuple[np.ndarray, dict[int, float], float]:
    """Drainage capacity (mm/h) per cell, the per-district table and the default in force.

    Districts not named (and cells outside every district) get the default;
    one number replaces the default and every district. Only active land drains.
    """
    n = len(domain.district_names)
    dmap = dict.fromkeys(range(n), default_mm_h)
    if isinstance(drainage_mm_h, Mapping):
        for nm, v in drainage_mm_h.items():
            rows = pick_districts(domain.districts, [nm])
            dmap[int(rows["district_id"].iloc[0])] = _finite(v, f"drainage_mm_h[{nm!r}]", lo=0.0)
    elif drainage_mm_h is not None:
        default_mm_h = _finite(drainage_mm_h, "drainage_mm_h", lo=0.0)
        dmap = dict.fromkeys(dmap, default_mm_h)
    lut = np.array([dmap[k] for k in range(n)] + [default_mm_h])
    did = domain.district
    drain = lut[np.where(did >= 0, did, n)]
    return np.where(domain.land, drain, 0.0), dmap, default_mm_h


def initial_depth(sea: np.ndarray, water_level: WaterLevel, bed: np.ndarray) -> np.ndarray:
    """Sea cells start at their level, so the balance's level exchange is the sea's net take
    from the land (not the filling of the sea fringe at the first step); land starts dry."""
    return np.where(sea, np.maximum(water_level.at(0.0) - np.nan_to_num(bed), 0.0), 0.0)


def domain_context(domain: Domain) -> dict:
    """The ``context`` entries every set-up takes from its Domain (masks, grid, districts)."""
    return {
        "label": domain.label,
        "districts": None if domain.selection is None else list(domain.selection),
        "resolution_m": domain.resolution_m, "buffer_m": domain.buffer_m, "domain": domain,
        "sea": domain.sea, "land": domain.land, "blocked": domain.blocked,
        "land_mask_gshhg": domain.land_mask_gshhg,
        "district": domain.district.astype(np.int64), "district_names": list(domain.district_names),
        "outline": domain.outline, "crs": domain.crs, "districts_gdf": domain.districts,
        "city": domain.city,
    }


def flood_setup(
    domain: Domain,
    *,
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
    conditioning: Sequence[str] | str | None = DEFAULT_CONDITIONING,
    conditioning_params: Mapping[str, Mapping] | None = None,
) -> dict:
    """Inputs of :class:`FloodModel` on a :class:`~twin.domain.Domain` (choices: module docstring).

    Parameters
    ----------
    domain : twin.domain.Domain
        The grid, masks and static layers (:meth:`Domain.from_city`).
    storm, hours, method, peak_fraction
        The rain (:func:`make_storm`); ``hours`` is the storm length (h).
    tide : float (constant sea level, m) or (times_s, levels_m)
    surge_m, surge_peak_h
        A surge bump (m, h) added to a constant ``tide`` (see :func:`tide_series`).
    drainage_mm_h : {district name: mm/h}, one value for all, or None
        Drainage capacity; districts not named get ``default_drainage_mm_h``
        (also cells outside every district). Sea cells drain nothing.
    manning_urban, manning_steep, steep_deg
        n (s/m^(1/3)) on gentle and on steep (>= ``steep_deg`` degrees) terrain.
    sea_depth_m : float
        Depth (m) of the fixed-level sea fringe below 0 m (its bed is set to -sea_depth_m).
    min_land_elevation_m : float or None
        Land cells are raised to at least this height (m; None: keep the DEM).
        SRTM reads <= 0 m on ~40 km² of land inside the city at 90 m (Bao'an's
        coastal plain, the Futian and Nanshan shore), sea-wall-protected land
        that the smoothed radar surface shows below the sea; left as is, the
        fixed-level sea would pour into it. Raising it to the mean sea level
        treats it as defended; a surge above it still floods it.
    fill_pits : bool
        Raise single-cell pits (land cells lower than all 8 neighbours) to
        their lowest neighbour (:func:`fill_single_pits`).
    conditioning : sequence of {"artefacts", "roads", "buildings"}, a "+"/"," separated string, or None
        Terrain conditioning of the land bed (:mod:`physics.flood_terrain`), applied in that order
        after the pits are filled; the default is :data:`physics.flood_terrain.DEFAULT_CONDITIONING`.
        "buildings" adds a ``porosity`` array to the set-up and blocks the cells it covers.
    conditioning_params : {step: {keyword: value}} or None
        Keyword arguments of the steps' functions (e.g. ``{"roads": {"underpass_m": 2.0}}``).
    outflow_edge : bool
        The domain's outflow candidates on land standing above the highest sea
        level of the run become fixed-level cells like the sea. Kept at
        ``max(level - z, 0)`` = dry, they take what runs out of the domain over
        them (a free overfall, booked with the sea in the balance's level
        exchange) and give nothing back; where the terrain rises outward
        nothing runs out. Without them (False) the outline is a wall that dams
        every valley crossing it (rivers into Dongguan and Huizhou, or into a
        neighbouring district of a district run).

    Returns
    -------
    dict
        ``dem`` (DataArray, m, NaN = blocked), ``manning``, ``rain``,
        ``drainage_mm_h`` (arrays/objects on the domain's grid), ``water_level``,
        ``boundaries``, ``h0`` (sea cells at their level) (FloodModel keyword
        arguments) and ``context`` (not a model argument: the Domain, masks,
        district ids and names, the storm description, the outline to report
        within). Use :func:`model_kwargs` to drop it.
    """
    hours, sea_depth_m, default_drainage_mm_h = _check_flood_scalars(
        hours=hours, manning_urban=manning_urban, manning_steep=manning_steep,
        sea_depth_m=sea_depth_m, default_drainage_mm_h=default_drainage_mm_h)
    rain = make_storm(storm, hours=hours, method=method, city=domain.city, peak_fraction=peak_fraction)
    tt, lv = sea_levels(tide, hours * 3600.0, surge_m=surge_m, surge_peak_h=surge_peak_h)
    edge = outflow_edge_cells(domain, lv) if outflow_edge else np.zeros(domain.shape, dtype=bool)
    blocked = domain.blocked & ~edge
    z, n_pits = land_bed(domain, min_land_elevation_m=min_land_elevation_m, fill_pits=fill_pits)
    cond = condition_domain(domain, z, conditioning, params=conditioning_params)
    z, blocked = cond.z, blocked | cond.building_blocked
    bed = model_bed(z, domain.sea, blocked, sea_depth_m)
    dem = domain.grid_dataarray(bed, "elevation", "m",
                                "bed elevation used by the flood model (sea lowered, NaN blocked)")
    dem.attrs["vertical_datum"] = domain.vertical_datum
    manning = manning_by_slope(domain.slope, urban=manning_urban, steep=manning_steep,
                               steep_deg=steep_deg)
    drain, dmap, default_drainage_mm_h = drainage_by_district(domain, drainage_mm_h,
                                                              default_drainage_mm_h)
    level_cells = domain.sea | edge
    water_level = WaterLevel(level_cells, np.asarray(tt, float), np.asarray(lv, float),
                             name="sea level" if not edge.any() else "sea level (sea and outflow edge)")
    names = domain.district_names
    context = domain_context(domain) | {
        "hours": hours, "storm": storm_info(rain, hours), "blocked": blocked, "outflow_edge": edge,
        "drainage_mm_h": {names[k]: float(v) for k, v in dmap.items()},
        "drainage_default_mm_h": default_drainage_mm_h,
        "manning": {"urban": manning_urban, "steep": manning_steep, "steep_deg": steep_deg},
        "tide": {"times_s": list(map(float, tt)), "level_m": list(map(float, lv))},
        "pits_filled": n_pits, "conditioning": cond.summary(),
    }
    if cond.building_blocked.any():  # buildings blocked some land cells: they are no longer active land
        context["land"] = domain.land & ~cond.building_blocked
    out = {"dem": dem, "manning": manning, "rain": rain, "drainage_mm_h": drain,
           "water_level": water_level if level_cells.any() else None,
           "boundaries": "free", "h0": initial_depth(domain.sea, water_level, bed),
           "context": context}
    if cond.porosity is not None:
        out["porosity"] = cond.porosity
    return out


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
    conditioning: Sequence[str] | str | None = DEFAULT_CONDITIONING,
    conditioning_params: Mapping[str, Mapping] | None = None,
) -> dict:
    """:func:`flood_setup` on ``Domain.from_city(city, resolution, districts, buffer_m, shape=domain)``.

    ``domain`` is ``"polygon"`` (cells outside the buffered outline blocked,
    except the outflow edge) or ``"bbox"`` (the whole bounding rectangle,
    its edges free outflow); the other parameters are those of
    :func:`flood_setup` and :meth:`twin.domain.Domain.from_city`. The storm and
    the flood's numbers are checked before the (costly) grid is built.
    """
    from twin.city import City

    city = City(city) if isinstance(city, str) else city
    if domain not in SHAPES:
        raise ValidationError(f"domain={domain!r}: use 'polygon' or 'bbox'")
    hours, _, _ = _check_flood_scalars(
        hours=hours, manning_urban=manning_urban, manning_steep=manning_steep,
        sea_depth_m=sea_depth_m, default_drainage_mm_h=default_drainage_mm_h)
    rain = make_storm(storm, hours=hours, method=method, city=city, peak_fraction=peak_fraction)
    grid = Domain.from_city(city, resolution=resolution, districts=districts, buffer_m=buffer_m,
                            shape=domain)
    return flood_setup(
        grid, storm=rain, hours=hours, tide=tide, surge_m=surge_m, surge_peak_h=surge_peak_h,
        drainage_mm_h=drainage_mm_h, default_drainage_mm_h=default_drainage_mm_h,
        manning_urban=manning_urban, manning_steep=manning_steep, steep_deg=steep_deg,
        sea_depth_m=sea_depth_m, min_land_elevation_m=min_land_elevation_m, fill_pits=fill_pits,
        outflow_edge=outflow_edge, conditioning=conditioning, conditioning_params=conditioning_params)


def dem_flood_setup(path, *, resolution: float | None = None, storm=50.0, hours: float = 1.0,
                    method: str = "alternating_block", manning: float = MANNING_URBAN,
                    drainage_mm_h: float = DEFAULT_DRAINAGE_MM_H, city=None) -> dict:
    """Set-up from a user DEM file (GeoTIFF...): no sea, no districts, uniform n and drainage, free edges.

    The grid is :meth:`twin.domain.Domain.from_dem` (a geographic DEM warped
    to the UTM zone of its centre at ``resolution`` m; nodata cells blocked).
    """
    hours = _finite(hours, "hours", lo=0.0)
    rain = make_storm(storm, hours=hours, method=method, city=city)
    grid = Domain.from_dem(path, resolution=resolution)
    dem = grid.grid_dataarray(grid.elevation, "elevation", "m", "bed elevation (NaN blocked)")
    context = domain_context(grid) | {
        "hours": hours, "storm": storm_info(rain, hours), "outflow_edge": grid.outflow_candidates,
        "drainage_default_mm_h": float(drainage_mm_h), "drainage_mm_h": {},
        "manning": {"uniform": float(manning)}, "tide": None, "pits_filled": 0,
    }
    return {"dem": dem, "manning": float(manning), "rain": rain, "drainage_mm_h": float(drainage_mm_h),
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
    "steps": n, "dt": mean step of the chunk s, "wall": s}`` every
    ``progress_every_s`` simulated seconds (:meth:`FloodModel.run` advances
    in chunks of that length, with or without ``progress``: a chunk's end is
    a sub-step's end, so results depend on ``progress_every_s``: over Futian
    and Luohu at 90 m for 1 h, 390 steps with 60 s chunks against 364 with
    none, maximum depths differing by up to 1.2 cm). The Dataset is that of :meth:`FloodModel.run` plus
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
    start = time.perf_counter()
    model = FloodModel(**model_kwargs(setup), dtype=dtype, wave_depth_cap_m=wave_depth_cap_m)
    # numba compiles the time loop on its first call (56 s cold at 90 m over the city, against
    # 15 s of stepping): compiled (or loaded from the cache) here, it is kept out of the model time.
    compile_s = model.warm_up()
    wall0 = time.perf_counter()
    chunk = min(_finite(progress_every_s, "progress_every_s", lo=1e-3), every)
    # Chunk even without a callback: chunk ends are sub-step ends, so results must not depend
    # on whether anyone listens.
    ds = model.run(duration, every, progress_every_s=chunk,
                   progress=None if progress is None else _progress_dicts(model, progress, wall0))
    end = time.perf_counter()
    return _finish(ds, setup, model, Timing(total_s=end - start, compile_s=compile_s, model_s=end - wall0))


def _progress_dicts(model, progress: Callable[[dict], None], wall0: float
                    ) -> Callable[[float, float], None]:
    """FloodModel.run's ``progress(t, duration)`` as run_city_flood's dict reports.

    ``dt`` is the mean step of the chunk just run (0 when it took no step).
    """
    last = {"t": model.t, "steps": model.n_steps}

    def report(t: float, duration: float) -> None:
        dn = model.n_steps - last["steps"]
        progress({"t": model.t, "duration": duration, "steps": model.n_steps,
                  "dt": (model.t - last["t"]) / dn if dn else 0.0,
                  "wall": time.perf_counter() - wall0})
        last.update(t=model.t, steps=model.n_steps)

    return report


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of a run: all of it, compiling (or loading) the kernels, the time loop."""

    total_s: float
    compile_s: float
    model_s: float


def _finish(ds: xr.Dataset, setup: Mapping, model, timing: Timing) -> xr.Dataset:
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
        "manning": json.dumps(ctx["manning"]), "domain": ctx["domain"].kind, "buffer_m": float(ctx["buffer_m"]),
        # wall_time_s: set-up of the model, compile_s and model_wall_s; the rate is the time loop's alone
        "wall_time_s": timing.total_s, "compile_s": timing.compile_s, "model_wall_s": timing.model_s,
        "cell_updates_per_s": model.cell_updates / timing.model_s if timing.model_s > 0 else float("nan"),
        "land_cells": int(land.sum()), "sea_cells": int(sea.sum()), "grid_cells": int(land.size),
        "outflow_edge_cells": int(edge.sum()),
        "flooded_depth_m": thr,
        "terrain_conditioning": json.dumps(ctx.get("conditioning", {"steps": []})),
    })
    return ds
