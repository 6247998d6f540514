"""The slope-failure model's run kind ``slope_forecast``: request, checks, runner, outputs, layers, report.

Registered with :func:`twin.runkinds.register_kind` on import, so the run
pipeline (:func:`twin.pipeline.run`), ``twin slope run``, the console's run
form and the offline map find it. The model (numpy, numba, xarray) is
imported only inside the functions.

A run builds the domain (a city, some of its districts, or a DEM), the
per-cell parameters and fills (:func:`physics.slope_city.slope_setup`) and the
rain (:func:`physics.slope_city.rain_series`), then

* **deterministic**: the factor of safety of every modelled cell over a
  profile of ``n_depths`` depths at every evaluation time (hourly by default,
  up to ``hours``; the rain may stop earlier, pressure heads keep diffusing),
  the kernel called on chunks of :data:`CHUNK_CELLS` cells with a progress
  report after each;
* **probabilistic**: the same deterministic pass (for the depth and time of
  the minimum) plus :func:`physics.slope_montecarlo.monte_carlo` over
  ``members`` parameter sets drawn from the zone table's distributions: the
  probability of FS < 1 and its binomial SE. Every member keeps the cell's
  slope and soil depth (the slope-depth rule's, or a fill's thickness) unless
  ``sample_depth``; a fill polygon's own parameter values are not sampled
  around (members draw from its zone's distributions);
* **runout** (on by default): the failing cells (FS < 1, or p >= ``fail_probability``)
  release their soil down to the depth of the minimum FS (the slip surface);
  :func:`physics.slope_runout.runout` routes it down the DEM and
  :func:`physics.slope_runout.assets_hit` lists the buildings, roads and
  metro lines and stations under the deposit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "slope_forecast"
MAX_HOURS = 72.0
MAX_MEMBERS = 5000
CHUNK_CELLS = 200_000
MIN_RESOLUTION_M = 10.0
MAX_RESOLUTION_M = 2000.0


def _storms() -> tuple[str, ...]:
    from physics.flood_city import STORMS

    return STORMS


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class SlopeConsoleRequest(_Strict):
    """A slope-failure forecast (what the console's form sends).

    Attributes
    ----------
    storm : str or None
        A design storm of :data:`physics.flood_city.STORMS` (None: ``"2023-09-07"``).
    hours : float
        Simulated time (h), 0 < hours <= 72; the storm lasts ``min(hours, 24)`` h unless told.
    districts : list of str or None
        District names/adcodes (None: the whole city).
    mode : {"deterministic", "probabilistic"}
    members : int
        Monte Carlo members of a probabilistic run (1-5000).
    """

    storm: str | None = Field(default=None, description="Storm",
                              json_schema_extra=lambda schema: schema.update(enum=list(_storms())))
    hours: float = Field(default=24.0, gt=0.0, le=MAX_HOURS, allow_inf_nan=False, description="Hours")
    districts: list[str] | None = Field(default=None, min_length=1, max_length=20,
                                        description="Districts (none: whole city)")
    mode: str = Field(default="deterministic", pattern="^(deterministic|probabilistic)$", description="Mode")
    members: int = Field(default=200, ge=1, le=MAX_MEMBERS, description="Monte Carlo members (probabilistic)")

    @field_validator("storm")
    @classmethod
    def _storm(cls, v: str | None) -> str | None:
        if v is not None and v not in _storms():
            raise ValueError(f"unknown storm; choose one of {list(_storms())}")
        return v

    @field_validator("districts")
    @classmethod
    def _districts(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        from twin.domain import request_districts

        return request_districts(v, (info.context or {}).get("districts"))


class SlopeRequest(SlopeConsoleRequest):
    """Every parameter of a slope run (the command line's options; ``twin slope run --help``).

    The rain is one of ``storm``, ``rain_mm_h``, ``rain_file``, ``flood`` and
    ``gauges`` (with ``rain_start``) (none: the 2023-09-07 storm). ``dem`` excludes ``city`` and ``districts``;
    ``resolution`` None means 30 m for a city, the DEM's own cell size for a DEM.
    """

    city: str | None = Field(default=None, description="City (default shenzhen, unless dem)")
    dem: str | None = Field(default=None, description="DEM file instead of a city")
    resolution: float | None = Field(default=None, ge=MIN_RESOLUTION_M, le=MAX_RESOLUTION_M, allow_inf_nan=False,
                                     description="Cell size (m); default 30 for a city, the DEM's own")
    buffer_m: float = Field(default=0.0, ge=0.0, le=20000.0, allow_inf_nan=False,
                            description="Margin kept around the districts (m)")
    storm_hours: float | None = Field(default=None, gt=0.0, le=MAX_HOURS, allow_inf_nan=False,
                                      description="Length of the storm or uniform rain (h; default min(hours, 24))")
    rain_mm_h: float | None = Field(default=None, ge=0.0, le=1000.0, allow_inf_nan=False,
                                    description="Uniform rain rate (mm/h) instead of a storm")
    rain_scale: float = Field(default=1.0, ge=0.0, le=10.0, allow_inf_nan=False,
                              description="Factor on every rain rate (1 = as given; ensembles perturb it)")
    rain_file: str | None = Field(default=None, description="Rain file: CSV 'time_h, mm_h' or NetCDF 'rain' "
                                  "(time, y, x) in mm/h")
    flood: str | None = Field(default=None, description="Take the rain (and area) of this flood run "
                              "(folder or flood.nc)")
    gauges: str | None = Field(default=None, description="Rain from the rain gauges of this twin store (folder), "
                               "from rain_start for storm_hours")
    rain_start: str | None = Field(default=None, description="Start of the gauges' window (ISO 8601 with zone)")
    method: str = Field(default="alternating_block", pattern="^(alternating_block|chicago)$",
                        description="Hyetograph of the design storm")
    peak_fraction: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False,
                                 description="Storm peak position (0-1)")
    seed: int = Field(default=0, ge=0, description="Monte Carlo seed")
    per: str = Field(default="cell", pattern="^(cell|zone)$",
                     description="Monte Carlo draws per cell (independent) or per zone (shared)")
    sample_depth: bool = Field(default=False, description="Monte Carlo draws the soil depth from the table too "
                               "(default: every member keeps the slope-depth rule's or the fill's depth)")
    zones: str | None = Field(default=None, description="Soil zones: raster of codes or polygons with 'zone'")
    fills: str | None = Field(default=None, description="Fill polygons (GeoJSON with thickness_m)")
    soils: str | None = Field(default=None, description="Soil table TOML (default physics/slope_soils.toml)")
    n_depths: int = Field(default=10, ge=1, le=100, description="Depths of the profile")
    dhat: str = Field(default="iverson", pattern="^(iverson|trigrs)$", description="D_hat form")
    min_slope_deg: float = Field(default=1.0, gt=0.0, lt=60.0, allow_inf_nan=False,
                                 description="Flatter cells are not modelled (deg)")
    every_min: float = Field(default=60.0, ge=1.0, le=1440.0, allow_inf_nan=False,
                             description="Evaluation interval (min)")
    runout: bool = Field(default=True, description="Route the failed soil downhill; list assets hit")
    travel_angle_deg: float | None = Field(default=None, gt=0.0, lt=60.0, allow_inf_nan=False,
                                           description="Runout travel angle (deg; default: the runout's own)")
    fail_probability: float = Field(default=0.5, gt=0.0, le=1.0, allow_inf_nan=False,
                                    description="Probability from which a cell is a runout source (probabilistic)")

    @model_validator(mode="after")
    def _exclusive(self) -> SlopeRequest:
        problems = []
        rains = [k for k in ("storm", "rain_mm_h", "rain_file", "flood", "gauges") if getattr(self, k) is not None]
        if (self.gauges is None) != (self.rain_start is None):
            problems.append("gauges and rain_start go together (the store and the start of its window)")
        if len(rains) > 1:
            problems.append(f"give one rain source, not {' and '.join(rains)}")
        if self.dem is not None and self.city is not None:
            problems.append("give either city or dem, not both")
        if self.dem is not None and self.districts is not None:
            problems.append("districts need a city: they cannot be used with dem")
        if self.storm_hours is not None and self.storm_hours > self.hours:
            problems.append(f"storm_hours={self.storm_hours} exceeds hours={self.hours}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def storm_hours(req: SlopeRequest) -> float:
    """Length (h) of the storm or uniform rain: ``storm_hours``, else ``min(hours, 24)``."""
    return req.storm_hours if req.storm_hours is not None else min(req.hours, 24.0)


def rain_source(req: SlopeRequest) -> dict[str, Any]:
    """The rain part of a request as :func:`physics.slope_city.rain_series` takes it."""
    return {"storm": req.storm, "rain_mm_h": req.rain_mm_h, "rain_file": req.rain_file, "flood": req.flood,
            "gauges": req.gauges, "rain_start": req.rain_start,
            "storm_hours": storm_hours(req), "method": req.method, "peak_fraction": req.peak_fraction,
            "rain_scale": req.rain_scale}


# ----------------------------------------------------------------------------- pre-check
def check_slope(req: SlopeRequest, city: Any = None) -> None:
    """Every check the set-up makes on a request, before anything runs (no grid is built).

    The city loads and knows the districts; the DEM, zone, fill, soil-table and
    rain files exist and parse (fill polygons and the soil table validated in
    full); the design storm builds over its length; a flood run has a storm
    to rebuild. All problems are listed in one error.

    Raises
    ------
    twin.errors.RequestError
        Naming the first field at fault (``field``, ``value``); the message lists every problem.
    """
    from physics.flood_city import make_storm
    from physics.slope_city import flood_run_info, read_fills, read_rain_csv
    from physics.slope_params import load_table
    from twin.domain import parse_districts, pick_districts
    from twin.errors import ConfigError, DataMissingError, RequestError, TwinError

    problems: list[tuple[str, Any, str]] = []

    def bad(field: str, exc: Any) -> None:
        problems.append((field, getattr(req, field), f"{field}={getattr(req, field)!r}: {exc}"))

    the_city = None
    flood_info = None
    if req.flood is not None:
        try:
            flood_info = flood_run_info(req.flood)
        except TwinError as exc:
            bad("flood", exc)
    if req.dem is not None:
        if not Path(req.dem).expanduser().is_file():
            bad("dem", "no such file")
    elif flood_info is None or flood_info.get("dem") is None:
        name = req.city or (flood_info or {}).get("city") or city or "shenzhen"
        if isinstance(name, str):
            from twin.city import City

            try:
                the_city = City(name)
            except (ConfigError, DataMissingError) as exc:
                bad("city", exc)
        else:
            the_city = name
    if the_city is not None and req.districts is not None:
        try:
            pick_districts(the_city.districts(), parse_districts(req.districts))
        except TwinError as exc:
            bad("districts", exc)
    if req.gauges is not None:
        from physics.slope_city import parse_start
        from twin.store import DB_NAME

        if not (Path(req.gauges).expanduser() / DB_NAME).is_file():
            bad("gauges", f"not a twin store (no {DB_NAME} in it)")
        try:
            parse_start(req.rain_start)
        except TwinError as exc:
            bad("rain_start", exc)
    if req.flood is None and req.rain_file is None and req.gauges is None:
        storm = req.rain_mm_h if req.rain_mm_h is not None else (req.storm or _storms()[0])
        try:
            make_storm(storm, hours=storm_hours(req), method=req.method, city=the_city,
                       peak_fraction=req.peak_fraction)
        except TwinError as exc:
            bad("storm_hours" if req.storm_hours is not None else "hours", exc)
    if req.rain_file is not None:
        p = Path(req.rain_file).expanduser()
        if not p.is_file():
            bad("rain_file", "no such file")
        elif p.suffix.lower() != ".nc":
            try:
                read_rain_csv(p)
            except TwinError as exc:
                bad("rain_file", exc)
        else:
            why = _netcdf_rain_problem(p)
            if why:
                bad("rain_file", why)
    table = None
    try:
        table = load_table(req.soils)
    except TwinError as exc:
        bad("soils", exc)
    if req.fills is not None:
        try:
            read_fills(req.fills, table)
        except TwinError as exc:
            bad("fills", exc)
    if req.zones is not None and not Path(req.zones).expanduser().is_file():
        bad("zones", "no such file")
    if problems:
        field, value, _ = problems[0]
        raise RequestError(f"{len(problems)} problem(s): " + "; ".join(m for _, _, m in problems),
                           field=field, value=value)


def _netcdf_rain_problem(path: Path) -> str | None:
    """Why a NetCDF cannot be a rain file (no ``rain`` (time, y, x), no CRS), else None; reads no data."""
    import xarray as xr

    try:
        with xr.open_dataset(path) as ds:
            if "rain" not in ds or ds["rain"].dims != ("time", "y", "x"):
                return f"needs a variable 'rain' with dims (time, y, x) in mm/h (variables: {sorted(map(str, ds))})"
            if not (ds["rain"].attrs.get("crs") or ds.attrs.get("crs") or "spatial_ref" in ds):
                return "no CRS (set attrs['crs'] on 'rain' or the file)"
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not this input"
        return f"not a NetCDF file xarray can read ({exc})"
    return None


# ----------------------------------------------------------------------------- model
def domain_for(req: SlopeRequest, city: Any = None):
    """The Domain of a request: a DEM, the flood run's area, or the city/districts."""
    from physics.slope_city import flood_run_info
    from twin.domain import Domain

    districts, name = req.districts, req.city
    if req.flood is not None and req.dem is None:
        info = flood_run_info(req.flood)
        if info.get("dem") is not None and req.city is None and req.districts is None:
            return Domain.from_dem(info["dem"], resolution=req.resolution)
        districts = districts if districts is not None else info.get("districts")
        name = name or info.get("city")
    if req.dem is not None:
        return Domain.from_dem(req.dem, resolution=req.resolution)
    return Domain.from_city(name or city or "shenzhen", resolution=req.resolution or 30.0,
                            districts=districts, buffer_m=req.buffer_m, shape="polygon")


def evaluate_fs(params, rain, t_edges, t_eval, *, n_depths: int, progress=None,
                chunk: int = CHUNK_CELLS) -> dict[str, Any]:
    """Minimum FS, its depth and the first time FS < 1 of every cell, in chunks of ``chunk`` cells.

    ``progress(done_cells, n_cells)`` after each chunk. Returns ``fs_min``,
    ``z_min``, ``t_fail`` (n,) and ``compile_s`` (the kernel compiled or
    loaded from numba's cache on one cell, apart from the evaluation).
    """
    import time

    import numpy as np

    from physics._kernels import slope as K

    n = params.shape[1]
    fs, z, tf = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    t0 = time.perf_counter()
    if n:
        one = np.empty(1)
        K.factor_of_safety(np.ascontiguousarray(params[:, :1]), np.ascontiguousarray(rain[:, :1]), t_edges,
                           t_eval, n_depths, K.GAMMA_W, one, one.copy(), one.copy(), np.empty((0, 1)))
    compile_s = time.perf_counter() - t0
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        r = rain if rain.shape[1] == 1 else np.ascontiguousarray(rain[:, a:b])
        out = np.empty((3, b - a))
        K.factor_of_safety(np.ascontiguousarray(params[:, a:b]), r, t_edges, t_eval, n_depths, K.GAMMA_W,
                           out[0], out[1], out[2], np.empty((0, b - a)))
        fs[a:b], z[a:b], tf[a:b] = out
        if progress is not None:
            progress(b, n)
    return {"fs_min": fs, "z_min": z, "t_fail": tf, "compile_s": compile_s,
            "eval_s": time.perf_counter() - t0 - compile_s}


def _grid(values, cells, shape, dtype="float32"):
    import numpy as np

    g = np.full(shape, np.nan, dtype=dtype)
    g.ravel()[cells] = values
    return g


def run_slope(req: SlopeRequest, ctx: RunContext):
    """Set up and run the model (module docstring); returns the slope.nc Dataset."""
    import time

    from physics.slope_city import eval_times, rain_series, slope_setup

    t_start = time.perf_counter()
    duration = req.hours * 3600.0
    domain = domain_for(req, ctx.city)
    setup = slope_setup(domain, table=req.soils, zones=req.zones, fills=req.fills, dhat=req.dhat,
                        min_slope_deg=req.min_slope_deg)
    rain, t_edges, storm = rain_series(rain_source(req), setup, city=domain.city)
    t_eval = eval_times(req.hours, req.every_min * 60.0)
    params, cells = setup["params"], setup["cells"]
    n = cells.size
    ctx.extras["slope_setup"] = setup
    ctx.extras["districts"] = domain.districts
    setup_s = time.perf_counter() - t_start
    ctx.report(0.0, duration, message=(
        f"{domain.label}: grid {domain.shape[0]} x {domain.shape[1]} at {domain.resolution_m:g} m, {n:,} cells "
        f"modelled (slope >= {req.min_slope_deg:g} deg), {storm.get('name')}, "
        f"{storm.get('total_mm', float('nan')):.1f} mm; {t_eval.size} times x {req.n_depths} depths"))
    prob = req.mode == "probabilistic"
    det_share = 0.2 if prob else (0.9 if req.runout else 1.0)

    def det_progress(done: int, total: int) -> None:
        ctx.report(duration * det_share * done / max(total, 1), duration, stage="factor of safety",
                   cells=done, n_cells=total)

    det = evaluate_fs(params, rain, t_edges, t_eval, n_depths=req.n_depths, progress=det_progress)
    res: dict[str, Any] = {"det": det, "mc": None, "runout": None, "assets": None}
    timings = {"setup_s": setup_s, "compile_s": det["compile_s"], "deterministic_s": det["eval_s"]}
    if prob:
        from physics.slope_montecarlo import monte_carlo

        t0 = time.perf_counter()
        mc_share = 0.9 if req.runout else 1.0

        def mc_progress(done: int, total: int) -> None:
            f = det_share + (mc_share - det_share) * done / max(total, 1)
            ctx.report(duration * f, duration, stage="Monte Carlo", members=done, n_members=total)

        res["mc"] = monte_carlo(params, setup["zones"], req.members, req.seed, rain=rain, t_edges=t_edges,
                                t_eval=t_eval, n_depths=req.n_depths, table=setup["table"], per=req.per,
                                dhat=req.dhat, progress=mc_progress,
                                fixed=() if req.sample_depth else ("depth_m",))
        timings["monte_carlo_s"] = time.perf_counter() - t0
    if req.runout:
        ctx.report(duration * 0.9, duration, stage="runout and assets hit")
        t0 = time.perf_counter()
        res["runout"], res["assets"], source = _runout(req, setup, det, res["mc"], ctx)
        res["source"] = source
        res["asset_notes"] = ctx.extras.get("asset_notes", [])
        timings["runout_s"] = time.perf_counter() - t0
    timings["run_time_s"] = time.perf_counter() - t_start
    return build_dataset(req, setup, storm, t_eval, res, timings)


def _runout(req: SlopeRequest, setup: dict, det: dict, mc: dict | None, ctx: RunContext):
    """(RunoutResult or None, assets GeoDataFrame or None, source depth grid) of the failing cells."""
    import numpy as np

    from physics.slope_runout import assets_hit, city_assets, runout

    domain = setup["domain"]
    fail = det["fs_min"] < 1.0 if mc is None else np.asarray(mc["p"]) >= req.fail_probability
    source = np.zeros(domain.shape)
    source.ravel()[setup["cells"][fail]] = det["z_min"][fail]
    if not fail.any():
        return None, None, source
    kw = {} if req.travel_angle_deg is None else {"travel_angle_deg": req.travel_angle_deg}
    result = runout(setup["elevation"], domain.resolution_m, source, **kw)
    assets = None
    dep = np.asarray(result.deposit, float)
    if domain.city is not None and np.nanmax(dep, initial=0.0) > 0:
        bounds = _lonlat_bounds(domain, np.nan_to_num(dep) > 0)
        deposit = domain.grid_dataarray(dep, "runout_depth", "m")
        sources = city_assets(domain.city, bounds)
        ctx.extras["asset_notes"] = list(getattr(sources, "notes", []))
        assets = assets_hit(deposit, **sources)
    return result, assets, source


def _lonlat_bounds(domain, mask) -> tuple[float, float, float, float]:
    """(west, south, east, north) in WGS 84 of the cells of ``mask`` plus one cell."""
    import numpy as np
    from pyproj import Transformer

    rows, cols = np.nonzero(mask)
    x, y = domain.cell_centres()
    r = domain.resolution_m
    xs = [x[cols.min()] - r, x[cols.max()] + r]
    ys = [y[rows.max()] - r, y[rows.min()] + r]
    tr = Transformer.from_crs(domain.crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform([xs[0], xs[1], xs[0], xs[1]], [ys[0], ys[0], ys[1], ys[1]])
    return float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))


def build_dataset(req: SlopeRequest, setup: dict, storm: dict, t_eval, res: dict, timings: dict):
    """The slope.nc Dataset (contract: dims (y, x), float32 NaN outside the model; assets along ``asset``)."""
    import json

    import numpy as np
    import xarray as xr

    domain = setup["domain"]
    shape, cells = domain.shape, setup["cells"]
    det = res["det"]
    x, y = domain.cell_centres()
    ds = xr.Dataset(coords={"y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate", "axis": "Y"}),
                            "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate", "axis": "X"})})

    def put(name, values, units, long_name, full=False):
        data = np.asarray(values, np.float32) if full else _grid(values, cells, shape)
        ds[name] = (("y", "x"), data.astype(np.float32), {"units": units, "long_name": long_name})

    put("fs_min", det["fs_min"], "1", "minimum factor of safety over depths and times")
    put("depth_of_minimum", det["z_min"], "m", "depth of the minimum factor of safety (slip surface)")
    put("time_of_failure", det["t_fail"], "s", "first evaluation time with FS < 1 (s from the start, 0: unstable "
        "before any rain; NaN never)")
    put("slope", setup["slope_deg"].ravel()[cells], "degree", "terrain slope (Horn 1981), with fills")
    put("soil_depth", setup["soil_depth"], "m", "soil depth (slope-depth rule, or fill thickness)", full=True)
    put("elevation", setup["elevation"], "m", "elevation with any fill added (NaN blocked)", full=True)
    ds["zone"] = (("y", "x"), setup["zone"].astype(np.int16),
                  {"units": "1", "long_name": "soil zone code (-1 not modelled); names in attrs zone_names"})
    ds["district"] = (("y", "x"), np.asarray(domain.district, np.int16),
                      {"units": "1", "long_name": "district id (-1 none); names in attrs district_names"})
    if setup["fill_thickness"] is not None:
        put("fill_thickness", np.where(setup["fill_thickness"] > 0, setup["fill_thickness"], np.nan), "m",
            "thickness of the user's fill added to the surface", full=True)
    mc = res.get("mc")
    if mc is not None:
        put("probability_of_failure", mc["p"], "1", "probability of FS < 1 at any depth and time (Monte Carlo)")
        put("probability_se", mc["se"], "1", "binomial standard error of probability_of_failure")
    ro = res.get("runout")
    if req.runout:
        src = np.asarray(res.get("source", np.zeros(shape)), float)
        dep = np.zeros(shape) if ro is None else np.nan_to_num(np.asarray(ro.deposit, float))
        keep = np.isfinite(setup["elevation"])
        put("runout_depth", np.where(keep, dep, np.nan), "m", "runout deposit thickness", full=True)
        put("runout_source", np.where(keep, src, np.nan), "m", "failed soil thickness (runout source)", full=True)
    assets = res.get("assets")
    if assets is not None and len(assets):
        a = assets.to_crs("EPSG:4326")
        ds["asset_kind"] = ("asset", np.asarray(a["kind"].astype(str), dtype=object))
        ds["asset_id"] = ("asset", np.asarray(a["id"].astype(str), dtype=object))
        ds["asset_name"] = ("asset", np.asarray(a["name"].fillna("").astype(str), dtype=object))
        ds["asset_depth_m"] = ("asset", np.asarray(a["deposit_depth_m"], np.float64), {"units": "m"})
        ds["asset_wkt"] = ("asset", np.asarray([g.wkt for g in a.geometry], dtype=object),
                           {"crs": "EPSG:4326"})
    storm = {**storm}
    ds.attrs.update({
        "title": f"Slope failure forecast: {storm.get('name', 'rain')} over {domain.label}",
        "region": domain.label, "crs": domain.crs, "transform": tuple(float(v) for v in tuple(domain.transform)[:6]),
        "resolution_m": float(domain.resolution_m), "duration_h": float(req.hours), "mode": req.mode,
        "storm": json.dumps(storm, ensure_ascii=False),
        "zone_names": json.dumps({str(k): v for k, v in sorted(setup["zone_names"].items())}),
        "district_names": json.dumps(list(domain.district_names), ensure_ascii=False),
        "eval_times_s": json.dumps([float(t) for t in t_eval]), "n_depths": int(req.n_depths),
        "dhat": setup["dhat"], "min_slope_deg": setup["min_slope_deg"], "i_lt_mm_h": setup["i_lt_mm_h"],
        "soil_table": str(req.soils or "physics/slope_soils.toml"),
        "fills": json.dumps(setup["fills"], ensure_ascii=False), "cells_modelled": int(cells.size),
        "timings": json.dumps(timings),
        "model": "Iverson (2000) transient pressure head, infinite-slope FS (physics._kernels.slope)",
    })
    if req.flood is not None:
        from physics.slope_city import flood_nc_path

        ds.attrs["flood_run"] = str(flood_nc_path(req.flood).resolve())
    if mc is not None:
        ds.attrs.update(members=int(req.members), n_members=int(req.members), seed=int(req.seed), per=req.per,
                        fail_probability=float(req.fail_probability))
    if req.runout:
        ds.attrs["runout"] = json.dumps(_runout_info(ro, req))
        ds.attrs["asset_notes"] = json.dumps(res.get("asset_notes") or [], ensure_ascii=False)
    return ds


def _runout_info(ro, req: SlopeRequest) -> dict:
    if ro is None:
        return {"failing_cells": 0, "source_volume_m3": 0.0, "deposit_volume_m3": 0.0,
                "travel_angle_deg": req.travel_angle_deg}
    import numpy as np

    angles = np.atleast_1d(np.asarray(ro.travel_angle_deg, float))
    return {"source_volume_m3": float(ro.source_volume_m3), "deposit_volume_m3": float(ro.deposit_volume_m3),
            "left_volume_m3": float(getattr(ro, "left_volume_m3", 0.0)), "slides": int(angles.size),
            "settle_left_m3": float(ro.settle_left_m3), "settle_topples": int(ro.settle_topples),
            "settle_excess_m": float(ro.settle_excess_m),
            "deposit_angle_deg": "travel angle of each slide" if ro.deposit_angle_deg is None
            else float(ro.deposit_angle_deg),
            "travel_angle_deg": req.travel_angle_deg if req.travel_angle_deg is not None else
            {"min": float(angles.min()), "median": float(np.median(angles)), "max": float(angles.max())}
            if angles.size else None}


# ----------------------------------------------------------------------------- outputs
def write_slope(ds, out_dir, req: SlopeRequest, ctx: RunContext) -> RunOutputs:
    """slope.nc, the GeoTIFFs, assets_hit.geojson and summary.json (:func:`physics.slope_io.write_slope_outputs`)."""
    from physics.slope_io import write_slope_outputs

    res = write_slope_outputs(ds, out_dir)
    return RunOutputs(paths=res["paths"], summary=res["summary"])


def slope_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The run's map layers (:func:`viz.layers.slope.slope_layers`).

    A run that took its rain from a flood run (``attrs["flood_run"]``, its flood.nc) also
    draws that run's layers below its own, and its failure-time frames use the flood's frame
    times: one time slider plays the water and the failures together. Failures after the
    flood run's last frame are not on that slider (the FS layer still shows them).
    """
    from viz.layers.slope import slope_layers as layers

    flood_nc = ds.attrs.get("flood_run")
    if not flood_nc or not Path(flood_nc).is_file():
        return layers(ds, warp=warp, max_px=max_px)
    import xarray as xr

    from physics.flood_run import flood_layers

    with xr.open_dataset(flood_nc) as fds:
        flood = flood_layers(fds.load(), max_px=max_px)
    times = next((s.times_s for s in flood if s.times_s), None)
    return layers(ds, warp=warp, max_px=max_px, times_s=times) + flood


def slope_report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The report's sections (:func:`physics.slope_report.slope_report_sections`)."""
    from physics.slope_report import slope_report_sections as sections

    return sections(ds, summary, ctx)


def describe(params: dict[str, Any]) -> str:
    where = ", ".join(params.get("districts") or []) or "whole city"
    if params.get("flood") is not None:
        rain = f"rain of flood run {params['flood']}"
    elif params.get("gauges") is not None:
        rain = f"rain gauges from {params.get('rain_start')}"
    elif params.get("rain_file") is not None:
        rain = Path(str(params["rain_file"])).name
    elif params.get("rain_mm_h") is not None:
        rain = f"{params['rain_mm_h']:g} mm/h"
    else:
        rain = params.get("storm") or _storms()[0]
    mode = params.get("mode") or "deterministic"
    if mode == "probabilistic":
        mode += f" ({params.get('members', 200)} members)"
    hours = params.get("hours", 24.0)
    return f"{rain}, {hours:g} h, {mode} — {where}"


def _duration(req: SlopeRequest) -> float:
    return req.hours * 3600.0


def _command():
    from twin.cli.slope import slope

    return slope


SLOPE = register_kind(RunKind(
    name=KIND, title="Slope failure forecast", request=SlopeRequest, console_request=SlopeConsoleRequest,
    run=run_slope, write=write_slope, layers=slope_layers, report_sections=slope_report_sections,
    output="slope.nc", cli_name="slope", command=_command, describe=describe,
    summary_keys=("cells_failing", "area_failing_km2", "earliest_failure_s", "run_time_s"),
    duration_s=_duration, check=check_slope, compare="fs_min",
))

__all__ = ["SLOPE", "SlopeConsoleRequest", "SlopeRequest", "build_dataset", "check_slope", "domain_for",
           "evaluate_fs", "rain_source", "run_slope", "slope_layers", "slope_report_sections", "storm_hours",
           "write_slope"]
