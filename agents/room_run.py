"""The pedestrian evacuation of one place as a run kind (``evacuate_room``): request, runner, outputs, map.

Registered with :func:`twin.runkinds.register_kind` on import, so the run
pipeline, ``twin evacuate room`` and the console find it. A run evacuates
one walkable area read from GeoJSON (:meth:`agents.geometry.Geometry.from_geojson`:
features with ``role`` ``walkable``, ``exit`` (with ``id``) and ``wall``;
lon/lat unless the file names a CRS) with the crowd model of
:mod:`agents.crowd` (collision-free speed model, Tordeux et al. 2016):

* people: ``people`` placed uniformly at random in the walkable area (no
  two closer than 0.4 m, none inside a wall), or ``density`` P/m² of it, or
  an ``agents`` CSV (:func:`read_agents_csv`);
* exits closing at given times (``close_exits``, :meth:`CrowdModel.close_exit`:
  the exit becomes a wall and the floor field routes to the others);
* ``runs`` > 1 repeats with seeds ``seed .. seed + runs - 1`` and reports the
  evacuation time's mean and 95th percentile (IMO MSC.1/Circ.1533 judges
  by the 95th percentile of >= 50 runs).

Outputs (:func:`write_room`): ``trajectories.nc``, ``exits.csv``,
``events.jsonl``, three plots; the summary. The numbers (exit flows,
local densities, congestion, quantile times, the summary) are
:mod:`agents.room_analysis`; the plots and report sections are
:mod:`agents.room_report`. Their public names are re-exported here.

This module is imported for ``twin --help``: numpy, xarray, shapely and
the model are imported inside its functions (the two modules above keep
theirs inside theirs too).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.room_analysis import (
    CONGESTED_P_M2,
    DENSITY_CELL_M,
    EASED_P_M2,
    NEAR_EXIT_M,
    PEAK_WINDOW_S,
    analyse,
    closure_events,
    congestion_events,
    density_grid,
    evac_time,
    exits_table,
    free_area,
    free_walk_times,
    mean_walking_speed,
    near_exit_density,
    peak_flow,
    quantile_time,
    run_events,
    summarise,
)
from agents.room_report import curve_figure, density_figure, flow_figure, report_sections
from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "evacuate_room"
#: Metric CRS of the outputs (the twin's working CRS, CGCS2000 / 3-degree GK CM 114E).
METRIC_CRS = "EPSG:4547"
#: At most this many frames on the map's time slider.
MAX_FRAMES = 120
#: Specific flow through a door used for the progress estimate only, P/(s m) (SFPE maximum, 1.32).
DOOR_FLOW_P_SM = 1.32


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ExitClosure(_Strict):
    """An exit that closes at a time of the run."""

    exit: str = Field(min_length=1, max_length=80)
    at_s: float = Field(ge=0.0, le=7 * 86_400.0, allow_inf_nan=False)


#: Places shipped with the twin, by name (the console offers these: no file path travels in its requests).
EXAMPLES = {"futian_station_hall": Path(__file__).resolve().parent / "data" / "room_futian_station_hall.geojson"}


class RoomConsoleRequest(_Strict):
    """What the console's form may send: an example place, who is inside, exits closing, seed."""

    example: Literal["futian_station_hall"] | None = Field(
        default="futian_station_hall", description="Example place (ASSUMED simplified geometry)")
    people: int | None = Field(default=None, ge=1, le=200_000, description="People placed at random")
    density: float | None = Field(default=None, gt=0.0, le=3.0, allow_inf_nan=False,
                                  description="People per m² of walkable area, placed at random")
    close_exit: str | None = Field(default=None, min_length=1, max_length=80,
                                   description="Exit that closes (example: N, S, E1-E3, W1-W3; empty: none)")
    close_at_s: float = Field(default=20.0, ge=0.0, le=86_400.0, allow_inf_nan=False,
                              description="Time it closes (s)")
    premovement_median_s: float = Field(default=0.0, ge=0.0, le=3600.0, allow_inf_nan=False,
                                        description="Median pre-movement time (s), 0: all start at once")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed")
    runs: int = Field(default=1, ge=1, le=100, description="Runs over seeds (evacuation time percentiles)")


class RoomRequest(RoomConsoleRequest):
    """Every parameter of a room evacuation (``twin evacuate room --help``).

    Exactly one of ``place`` (a GeoJSON file) or ``example`` (a name of :data:`EXAMPLES`) says where;
    exactly one of ``people``, ``density`` or ``agents`` says who is inside.
    """

    example: Literal["futian_station_hall"] | None = None
    close_exits: list[ExitClosure] = Field(default_factory=list)
    place: str | None = Field(default=None, min_length=1, description="GeoJSON of the walkable area, exits, walls")
    agents: str | None = Field(default=None, description="CSV of people (lon,lat or x,y; speed_mps...)")
    dt: float = Field(default=0.05, ge=0.01, le=0.2, allow_inf_nan=False)
    record_every_s: float = Field(default=0.5, gt=0.0, le=60.0, allow_inf_nan=False)
    until_s: float = Field(default=1800.0, gt=0.0, le=86_400.0, allow_inf_nan=False)
    speed_profile: Literal["weidmann_adult", "rimea_age"] = "weidmann_adult"
    premovement_sigma: float = Field(default=0.5, gt=0.0, le=3.0, allow_inf_nan=False)
    runs: int = Field(default=1, ge=1, le=1000)
    stall_s: float = Field(default=120.0, ge=0.0, le=86_400.0, allow_inf_nan=False,
                           description="Stop when nobody has left for this long (0: never)")

    @model_validator(mode="before")
    @classmethod
    def _console_closure(cls, data: Any) -> Any:
        """The console's one ``close_exit`` at ``close_at_s`` joins ``close_exits``."""
        if isinstance(data, dict) and data.get("close_exit") is not None:
            data = dict(data)
            one = {"exit": data.pop("close_exit"), "at_s": data.pop("close_at_s", 20.0)}
            data["close_exits"] = [*data.get("close_exits", []), one]
        return data

    @model_validator(mode="after")
    def _one_source(self) -> RoomRequest:
        if (self.place is None) == (self.example is None):
            raise ValueError("give exactly one of place (a GeoJSON file) or example "
                             f"({', '.join(EXAMPLES)}); got {'both' if self.place else 'neither'}")
        given = [n for n in ("people", "density", "agents") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of people, density or agents (a CSV); got {given or 'none'}")
        steps = self.record_every_s / self.dt
        if abs(steps - round(steps)) > 1e-6 * steps:
            raise ValueError(f"record_every_s={self.record_every_s!r} must be a whole number of "
                             f"dt={self.dt!r} s steps")
        return self


# ----------------------------------------------------------------------------- inputs
def place_path(req: RoomRequest) -> Path:
    """The GeoJSON file of the request's place (its ``place`` or the ``example``'s file)."""
    return Path(req.place).expanduser() if req.place is not None else EXAMPLES[req.example]


def _place_error(req: RoomRequest, exc: Exception):
    from twin.errors import RequestError

    if req.place is None:
        return RequestError(f"example={req.example!r}: {exc}", field="example", value=req.example)
    return RequestError(f"place={req.place!r}: {exc}", field="place", value=req.place)


def load_place(req: RoomRequest):
    """The :class:`agents.geometry.Geometry` of ``req.place`` (a fresh one: closing exits changes it).

    Raises
    ------
    twin.errors.RequestError
        Naming ``place``, the file and the element at fault (feature number, exit id, polygon).
    """
    import json

    from agents.geometry import Geometry
    from twin.errors import DataError, ValidationError

    path = place_path(req)
    if not path.is_file():
        raise _place_error(req, FileNotFoundError("no such file"))
    try:
        g = Geometry.from_geojson(path, metric_crs=METRIC_CRS)
    except (DataError, ValidationError, json.JSONDecodeError) as exc:
        raise _place_error(req, exc) from exc
    except Exception as exc:  # noqa: BLE001 - shapely/pyproj on a malformed feature
        raise _place_error(req, ValueError(f"not a readable walkable-area GeoJSON ({exc})")) from exc
    area = g.walkable.area
    if not (1.0 <= area <= 25e6):
        raise _place_error(req, ValueError(
            f"the walkable area is {area:.3g} m² after projection (expected 1 m² to 25 km²): are the "
            "coordinates lon/lat, or does the file name its CRS (a 'crs' member)?"))
    return g


def exit_widths(g):
    """The width of each exit of ``g`` (the length of its segment), m."""
    import numpy as np

    return np.hypot(*(g.exit_segments[:, 2:] - g.exit_segments[:, :2]).T)


def reachable_area(g):
    """The parts of the free area that touch an exit (people elsewhere could never leave), metric."""
    import shapely
    from shapely.ops import unary_union

    exits = shapely.linestrings(g.exit_segments.reshape(-1, 2, 2))
    parts = [p for p in getattr(free_area(g), "geoms", [free_area(g)])
             if float(shapely.distance(p, exits).min()) <= 0.01]
    return unary_union(parts)


def _input_region(g):
    """The reachable free area in the place's input CRS (where random placement draws)."""
    import numpy as np
    import shapely

    area = reachable_area(g)
    if not g.has_crs:
        return area
    from pyproj import Transformer

    back = Transformer.from_crs(g.metric_crs, g.crs, always_xy=True)
    return shapely.transform(area, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))


def read_agents_csv(path: str | Path) -> dict[str, Any]:
    """People from a CSV: ``lon,lat`` (or ``x,y`` in the place's CRS), optional ``speed_mps``,
    ``premovement_s``, ``age``; lines starting with ``#`` are comments.

    Returns
    -------
    dict
        ``positions`` (n, 2) and, when given, ``speeds``, ``premovement``, ``ages`` arrays.

    Raises
    ------
    twin.errors.DataIntegrityError
        Naming the column and the first bad row (1-based, header = row 1... of data lines).
    """
    import numpy as np
    import pandas as pd

    from twin.errors import DataIntegrityError

    try:
        df = pd.read_csv(path, comment="#", skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataIntegrityError(f"not a readable CSV ({' '.join(str(exc).split())})") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    pos = ("lon", "lat") if {"lon", "lat"} <= set(df.columns) else ("x", "y")
    if not set(pos) <= set(df.columns):
        raise DataIntegrityError(f"needs columns lon,lat (or x,y); it has {list(df.columns)}")
    if df.empty:
        raise DataIntegrityError("has no rows of people")
    out: dict[str, Any] = {}
    for col, key, lo in ((pos[0], None, None), (pos[1], None, None), ("speed_mps", "speeds", 0.0),
                         ("premovement_s", "premovement", 0.0), ("age", "ages", 0.0)):
        if col not in df.columns:
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) if lo is None else ~(np.isfinite(v) & (v >= lo))
        if col == "speed_mps":
            bad |= v <= 0
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataIntegrityError(f"column {col}, row {k + 1}: {df[col].iloc[k]!r} is not a valid value")
        if key is not None:
            out[key] = v
    out["positions"] = df[list(pos)].to_numpy(dtype=float)
    return out


def _agents_file(req: RoomRequest) -> dict[str, Any]:
    from twin.errors import DataError, RequestError

    path = Path(req.agents).expanduser()
    try:
        if not path.is_file():
            raise DataError("no such file")
        return read_agents_csv(path)
    except DataError as exc:
        raise RequestError(f"agents={req.agents!r}: {exc}", field="agents", value=req.agents) from exc


def agents_spec(req: RoomRequest, g):
    """The :class:`agents.crowd.AgentsSpec` and per-person pre-movement (or None) of a request."""
    from agents.crowd import AgentsSpec
    from twin.errors import RequestError

    pre = None
    if req.premovement_median_s > 0:
        pre = {"dist": "lognormal", "median_s": req.premovement_median_s, "sigma": req.premovement_sigma}
    if req.agents is not None:
        people = _agents_file(req)
        if req.speed_profile != "rimea_age" and "ages" in people:
            people.pop("ages")
        spec = AgentsSpec(positions=people["positions"], speeds=people.get("speeds"), ages=people.get("ages"),
                          speed_profile=req.speed_profile, premovement=pre)
        return spec, people.get("premovement")
    n = req.people
    if n is None:
        n = int(round(req.density * reachable_area(g).area))
        if n < 1:
            raise RequestError(f"density={req.density!r}: gives no one in {reachable_area(g).area:.0f} m²",
                               field="density", value=req.density)
    return AgentsSpec(n=n, region=_input_region(g), speed_profile=req.speed_profile, premovement=pre), None


def check_room(req: RoomRequest, city: Any = None) -> None:
    """Read and check the place, the exits to close and the agents file before anything runs."""
    import numpy as np

    from agents.crowd import DEFAULT_PARAMS
    from twin.errors import RequestError

    g = load_place(req)
    ids = [c.exit for c in req.close_exits]
    for cid in ids:
        if cid not in g.exit_ids:
            raise RequestError(f"close_exits: exit {cid!r} is not in {place_path(req)} (its exits: "
                               f"{', '.join(g.exit_ids)})", field="close_exits", value=cid)
    body = DEFAULT_PARAMS["length"]
    widths = exit_widths(g)
    if (widths < body).any():
        k = int(np.argmin(widths))
        raise _place_error(req, ValueError(f"exit {g.exit_ids[k]!r}: {widths[k]:.2f} m wide, narrower than a "
                                           f"person ({body:g} m, the speed model's body diameter)"))
    if set(ids) >= set(g.exit_ids):
        raise RequestError(f"close_exits: every exit of {place_path(req)} would close ({', '.join(sorted(set(ids)))}); "
                           "at least one must stay open", field="close_exits", value=ids)
    if req.agents is not None:
        _check_agents_file(req, g)


def _check_agents_file(req: RoomRequest, g) -> None:
    """Everyone of ``req.agents`` stands clear of the walls, in a part of the place that touches an exit."""
    import numpy as np
    import shapely

    from agents.geometry import Geometry
    from twin.errors import RequestError, ValidationError

    spec, _ = agents_spec(req, g)
    xy = spec.positions
    x, y = g.project(xy[:, 0], xy[:, 1])
    try:
        Geometry.check_positions(g, np.column_stack([x, y]), clearance=0.1)
    except ValidationError as exc:
        raise RequestError(f"agents={req.agents!r}: {exc} (in the place's frame, metres)",
                           field="agents", value=req.agents) from exc
    cut_off = ~shapely.contains_xy(reachable_area(g), x, y)
    if cut_off.any():
        k = int(np.flatnonzero(cut_off)[0])
        raise RequestError(f"agents={req.agents!r}: agent {k} (row {k + 1}) stands in a part of the place "
                           "that touches no exit", field="agents", value=req.agents)


# ----------------------------------------------------------------------------- run
def _estimate_s(model) -> float:
    """A rough evacuation time for the progress bar: the free-walk bound or the exits' capacity."""
    import numpy as np

    d = model.field.distance_at(model.position)
    d = np.where(np.isfinite(d), d, 0.0)
    walk = float(np.max(model.premovement + d / model.v0)) if model.n else 0.0
    width = float(exit_widths(model.geometry).sum())
    return max(walk, float(np.median(model.premovement)) + model.n / (DOOR_FLOW_P_SM * width)) + 5.0


def simulate_room(req: RoomRequest, seed: int, ctx: RunContext | None = None):
    """One evacuation of the place with ``seed``: the trajectories Dataset (:func:`agents.crowd.CrowdModel`)
    with the run's events in ``attrs["events"]`` (JSON) and the free-walk bound per person."""
    import json

    from agents.crowd import CrowdModel

    g = load_place(req)
    spec, pre = agents_spec(req, g)
    every = int(round(req.record_every_s / req.dt))
    model = CrowdModel(g, spec, seed=seed, dt=req.dt, record_every=every)
    if pre is not None:  # the CSV's own pre-movement times, person by person
        model.premovement[:] = pre
    estimate = _estimate_s(model)
    if ctx is not None:
        ctx.report(0.0, estimate, message=f"{model.n} people, {len(g.exit_ids)} exits, "
                                          f"{free_area(g).area:,.0f} m² walkable")

    stalled_at = advance(model, req, ctx, estimate)
    events = [e.to_record() for e in model.events]
    if stalled_at is not None:
        events.append(_stall_event(model, req, stalled_at))
    ds = model.trajectories()
    ds = ds.assign(free_walk_time=("agent", free_walk_times(ds, g),
                                   {"units": "s", "long_name": "pre-movement + straight distance to the nearest "
                                                               "exit / free speed (nobody else there)"}))
    ds.attrs.update(stalled_at_s=math.nan if stalled_at is None else float(stalled_at), place=str(place_path(req)),
                    place_name=_place_name(place_path(req)), metric_crs=g.metric_crs, seed=int(seed),
                    until_s=float(req.until_s), record_every_s=float(req.record_every_s),
                    closures=json.dumps([c.model_dump() for c in sorted(req.close_exits, key=lambda c: c.at_s)]),
                    exit_width_m=json.dumps(exit_widths(g).round(3).tolist()),
                    walkable_area_m2=float(free_area(g).area), events=json.dumps(events))
    return ds


def _stall_event(model, req: RoomRequest, stalled_at: float) -> dict:
    """The ``evacuation_stalled`` event record of a run stopped at ``stalled_at`` (:func:`advance`)."""
    from twin.events import Event

    return Event(time_s=stalled_at, kind="evacuation_stalled", source="crowd", severity="alarm",
                 message=f"nobody left for {req.stall_s:g} s; {model.n_inside} people still inside "
                         "(run stopped)", data={"inside": model.n_inside}).to_record()


def advance(model, req: RoomRequest, ctx: RunContext | None, estimate: float) -> float | None:
    """Step ``model`` until everyone is out, ``req.until_s``, or a stall; close exits on time.

    An exit closes before the step that starts at its closing time. The run stops early (a *stall*)
    when nobody has left for ``req.stall_s`` after the last person started moving: the speed model can
    clog a narrow door for good, and simulating the rest of ``until_s`` would show nothing new.

    Returns
    -------
    float or None
        The time the stall was declared, s (None: no stall).
    """
    import numpy as np

    pending = sorted(req.close_exits, key=lambda c: c.at_s)
    every = max(1, int(round(1.0 / model.dt)))
    started = float(model.premovement.max()) if model.n else 0.0
    while model.running and model.time_s < req.until_s - 1e-9:
        while pending and pending[0].at_s <= model.time_s + 1e-9:
            model.close_exit(pending.pop(0).exit)
        model.step()
        if model.steps % every:
            continue
        if ctx is not None:
            ctx.report(model.time_s, max(estimate, model.time_s * 1.05), out=model.n_evacuated, people=model.n)
        out = model.exit_time[np.isfinite(model.exit_time)]
        last = max(float(out.max()) if out.size else 0.0, started)
        if req.stall_s > 0 and model.running and model.time_s - last >= req.stall_s:
            return float(model.time_s)
    return None


def _place_name(place: str | Path) -> str:
    import json

    try:
        doc = json.loads(Path(place).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Path(place).stem
    for f in doc.get("features", []):
        props = f.get("properties") or {}
        if props.get("role") == "walkable" and props.get("name"):
            return str(props["name"])
    return str(doc.get("name") or Path(place).stem)


def run_room(req: RoomRequest, ctx: RunContext):
    """Evacuate the place (and repeat it for ``runs`` > 1); the Dataset of the first run, with analysis."""
    ds = simulate_room(req, req.seed, ctx if req.runs == 1 else None)
    ds = analyse(ds, load_place(req))
    if req.runs > 1:
        ds = with_repeats(ds, req, ctx)
    return ds


def with_repeats(ds, req: RoomRequest, ctx: RunContext):
    """``ds`` with ``evac_time_run`` and ``t95_run`` (run): seeds ``seed .. seed + runs - 1`` (the first is ``ds``)."""
    import numpy as np

    times, t95 = [float(ds.attrs["evacuation_time_s"])], [float(ds.attrs["t95_s"])]
    for i in range(1, req.runs):
        ctx.report(float(i), float(req.runs), runs_done=i)
        other = simulate_room(req, req.seed + i)
        t_out = other["exit_time"].values
        times.append(evac_time(t_out))
        t95.append(quantile_time(t_out, 0.95))
    seeds = np.arange(req.seed, req.seed + req.runs)
    return ds.assign(
        evac_time_run=("run", np.array(times), {"units": "s", "long_name": "evacuation time of each run "
                                                                          "(inf: people left inside)"}),
        t95_run=("run", np.array(t95), {"units": "s", "long_name": "time 95 % were out, each run"}),
    ).assign_coords(run_seed=("run", seeds))


def run_place(ds):
    """The place of a run's Dataset as it was at the start (every exit open)."""
    return load_place(RoomRequest(place=ds.attrs["place"], people=1))


def end_geometry(ds):
    """The place as the run left it (the exits closed during the run closed)."""
    g = run_place(ds)
    for c in closure_events(ds):
        g.exit_open[g.exit_index(c["data"]["exit"])] = False
    return g


# ----------------------------------------------------------------------------- outputs
def trajectory_encoding(ds) -> dict:
    """Packed integers for the (time, agent) arrays of trajectories.nc (NetCDF 3 has no compression):
    x, y to 1 mm and lon, lat to 1e-7 degree (about 1 cm) as int32 from an offset, speed to 1 mm/s as int16;
    18 bytes a person and sample instead of 40."""
    import numpy as np

    def packed(name, step, dtype):
        v = ds[name].values
        lo = float(np.nanmin(v)) if np.isfinite(v).any() else 0.0
        fill = np.iinfo(dtype).min
        return {"dtype": np.dtype(dtype).name, "scale_factor": step, "add_offset": math.floor(lo / step) * step,
                "_FillValue": fill}

    enc = {"x": packed("x", 0.001, np.int32), "y": packed("y", 0.001, np.int32),
           "speed": {"dtype": "int16", "scale_factor": 0.001, "add_offset": 0.0, "_FillValue": -32768}}
    if "lon" in ds:
        enc.update(lon=packed("lon", 1e-7, np.int32), lat=packed("lat", 1e-7, np.int32))
    return enc


def write_trajectories(ds, path: Path) -> None:
    """``ds`` as NetCDF at ``path``: exit ids as text, the CRSs named, the arrays packed (:func:`trajectory_encoding`)."""
    nc = ds.copy()
    nc["exit_id"] = nc["exit_id"].astype(str)
    nc = nc.assign_coords(exit=nc["exit"].astype(str))
    nc.attrs["crs"] = ds.attrs["metric_crs"]
    nc.attrs["x_y_crs"] = ds.attrs["metric_crs"]
    nc.attrs["lon_lat_crs"] = "EPSG:4326"
    nc.to_netcdf(path, encoding=trajectory_encoding(ds))


def write_room(ds, out_dir, req: RoomRequest, ctx: RunContext) -> RunOutputs:
    """trajectories.nc, exits.csv, events.jsonl, three plots; the summary."""
    from viz.plots import save_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trajectories": out / "trajectories.nc", "exits": out / "exits.csv", "events": out / "events.jsonl"}
    write_trajectories(ds, paths["trajectories"])
    exits_table(ds).to_csv(paths["exits"], index=False, float_format="%.3f")
    from twin.pipeline import write_run_events

    write_run_events(run_events(ds), out)
    paths["evacuation_curve"] = save_png(curve_figure(ds), out / "evacuation_curve.png")
    paths["exit_flow"] = save_png(flow_figure(ds), out / "exit_flow.png")
    paths["max_density"] = save_png(density_figure(ds, end_geometry(ds)), out / "max_density.png")
    return RunOutputs(paths=paths, summary=summarise(ds))


def room_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The place (``walkable``: area, walls, exits open/closed on the slider, max-density cells) and the
    people (``movers``, at most :data:`MAX_FRAMES` frames)."""
    import json

    import numpy as np
    import shapely

    from viz.layers import build

    g = run_place(ds)

    def lonlat(geom):
        return shapely.transform(geom, lambda xy: np.column_stack(g.to_lonlat(xy[:, 0], xy[:, 1])))

    t = ds["time"].values
    idx = sorted({int(round(v)) for v in np.linspace(0, t.size - 1, min(t.size, MAX_FRAMES))})
    closed_at = {e["data"]["exit"]: e["time_s"] for e in closure_events(ds)}
    cells, dens = _dense_cells(ds)
    exits = {eid: lonlat(shapely.linestrings(s.reshape(2, 2))) for eid, s in zip(g.exit_ids, g.exit_segments,
                                                                                   strict=True)}
    widths = dict(zip(g.exit_ids, json.loads(ds.attrs["exit_width_m"]), strict=True))
    place = build("walkable", lonlat(g.walkable), exits=exits, walls=[lonlat(w) for w in g.walls],
                  exit_widths_m=widths, closed_at_s=closed_at, times_s=t[idx], density=(list(lonlat(cells)), dens),
                  density_cell_m=float(ds.attrs["density_cell_m"]), label=ds.attrs["place_name"])
    return [people_layer(ds, idx), place]


def _dense_cells(ds):
    """The density cells the map shows (largest density at least 0.5 P/m²): metric boxes and their densities."""
    import numpy as np
    import shapely

    h = float(ds.attrs["density_cell_m"])
    xc, yc = np.meshgrid(ds["cell_xc"].values, ds["cell_yc"].values)
    dens = ds["max_density"].values.ravel()
    keep = np.isfinite(dens) & (dens >= 0.5)
    boxes = shapely.box(xc.ravel()[keep] - h / 2, yc.ravel()[keep] - h / 2, xc.ravel()[keep] + h / 2,
                        yc.ravel()[keep] + h / 2)
    return boxes, dens[keep]


#: Colours of the people by exit taken: no pure green or red, which mark open and closed exits.
EXIT_GROUP_COLOURS = ((31, 119, 180), (148, 103, 189), (255, 127, 14), (23, 190, 207), (140, 86, 75),
                      (227, 119, 194), (188, 189, 34), (127, 127, 127), (57, 59, 121), (173, 73, 74))


def people_layer(ds, idx):
    """``movers`` of the samples ``idx``: one dot per person inside, coloured by the exit they take."""
    import numpy as np

    from viz.layers import build

    n_exit = ds.sizes["exit"]
    k = ds["exit_index"].values
    group = np.where(k >= 0, k, n_exit)
    labels = {j: f"out via {e}" for j, e in enumerate(ds["exit"].values)}
    labels[n_exit] = "still inside at the end"
    colours = {j: EXIT_GROUP_COLOURS[j % len(EXIT_GROUP_COLOURS)] for j in range(n_exit)}
    colours[n_exit] = (0, 0, 0)
    return build("movers", ds["time"].values[idx], ds["lon"].values[idx], ds["lat"].values[idx], layer_id="crowd",
                 label="People", radius_m=0.25, group=group, group_labels=labels, group_colors=colours)


def describe(params: dict[str, Any]) -> str:
    who = (f"{params['people']} people" if params.get("people") else
           f"{params['density']} P/m²" if params.get("density") else Path(str(params.get("agents"))).name)
    where = Path(str(params["place"])).name if params.get("place") else params.get("example")
    return f"{where}, {who}, seed {params.get('seed', 0)}"


def _command():
    from twin.cli.evacuate_room import room

    return room


EVACUATE_ROOM = register_kind(RunKind(
    name=KIND, title="Room evacuation (pedestrians)", request=RoomRequest, console_request=RoomConsoleRequest,
    run=run_room, write=write_room,
    layers=room_layers, report_sections=report_sections, output="trajectories.nc",
    cli_name="evacuate room", command=_command, describe=describe,
    summary_keys=("evacuation_time_s", "t95_s", "people", "max_local_density_p_m2"), check=check_room,
))

__all__ = [
    "EVACUATE_ROOM", "EXAMPLES", "ExitClosure", "RoomConsoleRequest", "RoomRequest", "agents_spec", "check_room",
    "end_geometry", "exit_widths", "load_place", "place_path", "reachable_area", "read_agents_csv", "room_layers",
    "run_place", "run_room", "simulate_room", "write_room",
    # re-exported from agents.room_analysis and agents.room_report (they lived here)
    "CONGESTED_P_M2", "DENSITY_CELL_M", "EASED_P_M2", "NEAR_EXIT_M", "PEAK_WINDOW_S", "analyse",
    "congestion_events", "curve_figure", "density_figure", "density_grid", "exits_table", "flow_figure",
    "free_area", "free_walk_times", "mean_walking_speed", "near_exit_density", "peak_flow", "report_sections",
    "summarise",
]
