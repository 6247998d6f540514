"""The flood model's run kind: request schema, runner, outputs, map layers and report sections.

Registered with :func:`twin.runkinds.register_kind` on import, so the run
pipeline (:func:`twin.pipeline.run`), ``twin flood run``, the console's run
form and the offline map find it without naming it anywhere else.

The request has two levels: :class:`FloodConsoleRequest` is what the
console's form may send (storm, hours, resolution, districts); the full
:class:`FloodRequest` adds the command line's options (a DEM file, tide and
surge, drainage, precision, the wave-depth cap...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

# This module is imported whenever the run-kind registry is first used (``twin --help`` too), so it
# imports the model itself (numpy, xarray, numba) only inside the functions that run it.

KIND = "flood_forecast"
MAX_HOURS = 24.0
MIN_RESOLUTION_M = 30.0
MAX_RESOLUTION_M = 2000.0
MAX_FRAMES = 36
PROGRESS_EVERY_S = 60.0  # simulated seconds between progress reports (run_city_flood's default)


def default_output_every_s(hours: float) -> float:
    """Frame interval: 10 min, or longer so that a run has at most :data:`MAX_FRAMES` frames."""
    return max(600.0, hours * 3600.0 / MAX_FRAMES)


def _storms() -> tuple[str, ...]:
    from physics.flood_city import STORMS

    return STORMS


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FloodConsoleRequest(_Strict):
    """A flood forecast over the city or some of its districts (what the console's form sends).

    Attributes
    ----------
    storm : str or None
        A design storm of :data:`physics.flood_city.STORMS` (None: the first, ``"2023-09-07"``).
    hours : float
        Storm length and simulated time, 0 < hours <= 24.
    resolution : float
        Grid cell size (m), 30 <= resolution <= 2000.
    districts : list of str or None
        District names/adcodes of the city (None: the whole city); with a
        validation context ``{"districts": {casefolded name: name}}`` they are
        checked and normalised.
    """

    storm: str | None = Field(default=None, description="Storm",
                              json_schema_extra=lambda schema: schema.update(enum=list(_storms())))
    hours: float = Field(gt=0.0, le=MAX_HOURS, allow_inf_nan=False, description="Hours",
                         json_schema_extra={"examples": [3.0]})
    resolution: float = Field(default=90.0, ge=MIN_RESOLUTION_M, le=MAX_RESOLUTION_M,
                              allow_inf_nan=False, description="Resolution (m)")
    districts: list[str] | None = Field(default=None, min_length=1, max_length=20,
                                        description="Districts (none: whole city)")

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


class FloodRequest(FloodConsoleRequest):
    """Every parameter of a flood run (the command line's options; see ``twin flood run --help``).

    ``storm`` and ``rain_mm_h`` exclude each other (neither: the 2023-09-07
    storm); ``dem`` (a DEM file) excludes ``districts`` and per-district
    drainage; ``resolution`` None means 30 m for a city, the DEM's own cell
    size for a DEM.
    """

    resolution: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    city: str | None = None
    dem: str | None = None
    rain_mm_h: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    rain_scale: float = Field(default=1.0, ge=0.0, le=10.0, allow_inf_nan=False,
                              description="Factor on every rain rate (1 = as given; ensembles perturb it)")
    method: str = Field(default="alternating_block", pattern="^(alternating_block|chicago)$")
    peak_fraction: float = Field(default=0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    buffer_m: float = Field(default=500.0, ge=0.0, allow_inf_nan=False)
    tide_m: float = Field(default=0.0, allow_inf_nan=False)
    surge_m: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    drainage_mm_h: float | dict[str, float] | None = None
    output_every_s: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    float32: bool = False
    wave_depth_cap_m: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    hours: float = Field(default=6.0, gt=0.0, allow_inf_nan=False)
    boundaries: str | None = Field(default=None, description="Boundary file (TOML/JSON, physics.flood_boundaries): "
                                   "edge and line boundaries replacing the default free edges")
    scheme: str = Field(default="local_inertial", pattern="^(local_inertial|fv)$")
    time_stepping: str = Field(default="global", pattern="^(global|lts)$")

    @field_validator("drainage_mm_h")
    @classmethod
    def _drainage(cls, v: float | dict[str, float] | None) -> float | dict[str, float] | None:
        import math

        values = v.values() if isinstance(v, dict) else [] if v is None else [v]
        for x in values:
            if not (math.isfinite(x) and x >= 0):
                raise ValueError("drainage capacity must be a finite number >= 0 mm/h")
        return v

    @model_validator(mode="after")
    def _exclusive(self) -> FloodRequest:
        if self.storm is not None and self.rain_mm_h is not None:
            raise ValueError("give either storm or rain_mm_h, not both")
        if self.dem is not None and self.city is not None:
            raise ValueError("give either city or dem, not both")
        if self.dem is not None and self.districts is not None:
            raise ValueError("districts need a city: they cannot be used with dem")
        if self.dem is not None and isinstance(self.drainage_mm_h, dict):
            raise ValueError("per-district drainage_mm_h needs a city: give one number with dem")
        return self


# ----------------------------------------------------------------------------- pre-check
def _blame(message: str, default: str, candidates: tuple[str, ...]) -> str:
    """The request field a set-up error names (the first of ``candidates`` in the message), else ``default``."""
    return next((c for c in candidates if c in message), default)


def check_flood(req: FloodRequest, city: Any = None) -> None:
    """Every check the flood set-up makes on a request, run before anything starts (no grid is built).

    Calls the set-up's own code on the request: the storm is built
    (:func:`physics.flood_city.make_storm`: a design storm's length must be a
    whole number of its blocks and within its records; method and peak
    fraction), the districts and the per-district drainage names are looked
    up in the city (:func:`twin.domain.pick_districts`), the DEM file must exist.

    Raises
    ------
    twin.errors.RequestError
        Naming the field (``hours``, ``peak_fraction``, ``districts``...) and its value.
    """
    from physics.flood_city import make_storm
    from twin.domain import parse_districts, pick_districts
    from twin.errors import ConfigError, DataMissingError, RequestError, ValidationError

    the_city = None
    if req.dem is None:
        name = req.city or city or "shenzhen"
        if isinstance(name, str):
            from twin.city import City

            try:
                the_city = City(name)
            except (ConfigError, DataMissingError) as exc:
                raise RequestError(f"city={name!r}: {exc}", field="city", value=name) from exc
        else:
            the_city = name
    elif not Path(req.dem).expanduser().is_file():
        raise RequestError(f"dem={req.dem!r}: no such file", field="dem", value=req.dem)
    if req.boundaries is not None:
        from physics.flood_boundaries import load_boundaries

        try:
            load_boundaries(Path(req.boundaries).expanduser())
        except ValidationError as exc:
            raise RequestError(f"boundaries={req.boundaries!r}: {exc}", field="boundaries",
                               value=req.boundaries) from exc
    storm = req.rain_mm_h if req.rain_mm_h is not None else (req.storm or _storms()[0])
    try:
        make_storm(storm, hours=req.hours, method=req.method, city=the_city, peak_fraction=req.peak_fraction,
                   rain_scale=req.rain_scale)
    except ValidationError as exc:
        field = _blame(str(exc), "hours", ("peak_fraction", "method"))
        raise RequestError(f"{field}={getattr(req, field)!r}: {exc}", field=field,
                           value=getattr(req, field)) from exc
    if the_city is None:
        return
    named = {"districts": parse_districts(req.districts) if req.districts is not None else []}
    if isinstance(req.drainage_mm_h, dict):
        named["drainage_mm_h"] = list(req.drainage_mm_h)
    for field, names in named.items():
        if not names:
            continue
        try:
            pick_districts(the_city.districts(), names)
        except ValidationError as exc:
            raise RequestError(f"{field}={getattr(req, field)!r}: {exc}", field=field,
                               value=getattr(req, field)) from exc


# ----------------------------------------------------------------------------- run
def setup_for(req: FloodRequest, city: Any = None) -> dict:
    """The model inputs of a request (:func:`physics.flood_city.city_flood_setup` or ``dem_flood_setup``)."""
    from physics.flood_city import city_flood_setup, dem_flood_setup, make_storm

    storm = req.rain_mm_h if req.rain_mm_h is not None else (req.storm or _storms()[0])
    if req.rain_scale != 1.0:  # the scaled Rain, built here and passed on as is
        from twin.city import City

        the_city = None if req.dem is not None else City(req.city or city or "shenzhen") \
            if isinstance(req.city or city or "shenzhen", str) else (req.city or city)
        storm = make_storm(storm, hours=req.hours, method=req.method, city=the_city,
                           peak_fraction=req.peak_fraction, rain_scale=req.rain_scale)
    drain = {} if req.drainage_mm_h is None else {"drainage_mm_h": req.drainage_mm_h}
    if req.dem is not None:
        setup = dem_flood_setup(req.dem, resolution=req.resolution, storm=storm, hours=req.hours,
                                method=req.method, **drain)
    else:
        setup = city_flood_setup(req.city or city or "shenzhen", resolution=req.resolution or 30.0,
                                 districts=req.districts, buffer_m=req.buffer_m, storm=storm, hours=req.hours,
                                 method=req.method, peak_fraction=req.peak_fraction, tide=req.tide_m,
                                 surge_m=req.surge_m, drainage_mm_h=req.drainage_mm_h)
    return {**setup, **_model_choices(req)}


def _model_choices(req: FloodRequest) -> dict:
    """The FloodModel keywords a request sets beyond the set-up: boundaries (a file), scheme, time stepping.

    A boundary file replaces the set-up's edges (``free`` for a city or a DEM); the sea's fixed levels
    stay (they are applied first, the file's level specs over them).
    """
    out: dict = {}
    if req.boundaries is not None:
        from physics.flood_boundaries import load_boundaries

        out["boundaries"] = load_boundaries(Path(req.boundaries).expanduser())
    if req.scheme != "local_inertial":
        out["scheme"] = req.scheme
    if req.time_stepping != "global":
        out["time_stepping"] = req.time_stepping
    return out


def run_flood(req: FloodRequest, ctx: RunContext):
    """Set up and run the model; the set-up's context goes to ``ctx.extras['flood_context']``."""
    import numpy as np

    from physics.flood_city import run_city_flood

    setup = setup_for(req, ctx.city)
    fc = setup["context"]
    ctx.extras["flood_context"] = fc
    ctx.extras["grid_shape"] = tuple(setup["dem"].shape)
    duration = req.hours * 3600.0
    ny, nx = setup["dem"].shape
    ctx.report(0.0, duration, message=(
        f"{fc['label']}: grid {ny} x {nx} at {fc['resolution_m']:g} m ({int(fc['land'].sum())} land cells), "
        f"{fc['storm'].get('name')}, {fc['storm'].get('total_mm', float('nan')):.1f} mm in {req.hours:g} h"))

    def progress(p: dict[str, Any]) -> None:
        ctx.report(p["t"], duration, steps=p["steps"], dt=p["dt"], wall=p["wall"])

    every = req.output_every_s if req.output_every_s is not None else default_output_every_s(req.hours)
    return run_city_flood(setup, output_every_s=every, dtype=np.float32 if req.float32 else np.float64,
                          progress=progress, progress_every_s=PROGRESS_EVERY_S,
                          wave_depth_cap_m=req.wave_depth_cap_m)


def hit_rate(ds, fc: dict) -> dict | None:
    """The waterlogging hit rate of a city run (None for a DEM run or without the spots file)."""
    from twin.errors import DataMissingError

    city = fc.get("city")
    if city is None:
        return None
    try:
        points = city.vector("waterlogging")
    except DataMissingError:
        return None
    from physics.hitrate import waterlogging_hit_rate

    return waterlogging_hit_rate(ds["max_depth"].assign_attrs(crs=ds.attrs["crs"],
                                                              transform=ds.attrs["transform"]),
                                 points, within=fc["outline"])


def write_flood(ds, out_dir, req: FloodRequest, ctx: RunContext) -> RunOutputs:
    """flood.nc, the GeoTIFFs, max_depth.png and summary.json (with the hit rate of a city run)."""
    from physics.flood_io import write_flood_outputs

    fc = ctx.extras.get("flood_context", {})
    res = write_flood_outputs(ds, out_dir, districts=fc.get("districts_gdf"), hitrate=hit_rate(ds, fc))
    ctx.extras["districts"] = fc.get("districts_gdf")
    return RunOutputs(paths=res["paths"], summary=res["summary"])


def flood_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """Depth frames (time slider), maximum depth and arrival time of a run."""
    from viz.layers import build
    from viz.layers._raster import MAX_PX, MercatorWarp

    max_px = max_px or MAX_PX
    warp = warp or MercatorWarp.for_grid(ds, max_px=max_px)
    sets = []
    if "depth" in ds:
        sets.append(build("flood_depth", ds, warp=warp, max_px=max_px))
    sets.append(build("flood_max_depth", ds, warp=warp, max_px=max_px, legend="depth" not in ds))
    sets.append(build("flood_arrival", ds, warp=warp, max_px=max_px))
    return sets


def flood_report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The flood report's sections (:func:`viz.report.flood_report_sections`)."""
    from viz.report import flood_report_sections as sections

    districts = (ctx.extras.get("districts") if ctx is not None else None)
    return sections(ds, summary=summary, districts=districts)


def describe(params: dict[str, Any]) -> str:
    where = ", ".join(params.get("districts") or []) or "whole city"
    rain = f"{params['rain_mm_h']:g} mm/h" if params.get("rain_mm_h") is not None else \
        (params.get("storm") or _storms()[0])
    res = params.get("resolution")
    return f"{rain}, {params.get('hours'):g} h" + (f", {res:g} m" if res else "") + f" — {where}"


def _command():
    from twin.cli.flood import flood

    return flood


FLOOD = register_kind(RunKind(
    name=KIND, title="Flood forecast", request=FloodRequest, console_request=FloodConsoleRequest,
    run=run_flood, write=write_flood, layers=flood_layers, report_sections=flood_report_sections,
    output="flood.nc", cli_name="flood", command=_command, describe=describe, rank=0,
    summary_keys=("max_depth_m", "flooded_area_max_km2", "steps", "run_time_s"),
    duration_s=lambda req: req.hours * 3600.0, check=check_flood, compare="max_depth",
))

__all__ = ["FLOOD", "FloodConsoleRequest", "FloodRequest", "check_flood", "default_output_every_s", "flood_layers",
           "run_flood", "setup_for", "write_flood"]
