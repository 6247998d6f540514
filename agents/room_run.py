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
``events.jsonl``, three plots; the summary (:func:`summarise`). Local
density is counted on square cells of :data:`DENSITY_CELL_M` (people per
cell area inside the walkable area, cells less than half walkable left
out); an exit is *congested* while the density within :data:`NEAR_EXIT_M`
of it exceeds :data:`CONGESTED_P_M2`.

This module is imported for ``twin --help``: numpy, xarray, shapely and
the model are imported inside its functions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "evacuate_room"
#: Metric CRS of the outputs (the twin's working CRS, CGCS2000 / 3-degree GK CM 114E).
METRIC_CRS = "EPSG:4547"
#: Side of the cells of the local-density count, m (4 m²: one person reads 0.25 P/m²).
DENSITY_CELL_M = 2.0
#: "Near an exit": within this distance of the exit segment, inside the walkable area, m.
NEAR_EXIT_M = 2.0
#: Density near an exit above which it counts as congested, P/m² (the brief's queueing threshold;
#: SFPE's standstill is 3.8 P/m²).
CONGESTED_P_M2 = 4.0
#: Density near a congested exit below which the congestion counts as eased, P/m² (hysteresis: a queue
#: fluctuating about the threshold is one congestion, not dozens).
EASED_P_M2 = 3.0
#: Window of the peak flow through an exit, s.
PEAK_WINDOW_S = 10.0
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


def free_area(g):
    """The walkable area less the solid walls (pillars), metric shapely geometry."""
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    solid = [w for w in g.walls if isinstance(w, Polygon)]
    return g.walkable.difference(unary_union(solid)) if solid else g.walkable


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

    from agents.geometry import Geometry
    from twin.errors import RequestError, ValidationError

    g = load_place(req)
    ids = [c.exit for c in req.close_exits]
    for cid in ids:
        if cid not in g.exit_ids:
            raise RequestError(f"close_exits: exit {cid!r} is not in {place_path(req)} (its exits: "
                               f"{', '.join(g.exit_ids)})", field="close_exits", value=cid)
    from agents.crowd import DEFAULT_PARAMS

    body = DEFAULT_PARAMS["length"]
    widths = np.hypot(*(g.exit_segments[:, 2:] - g.exit_segments[:, :2]).T)
    if (widths < body).any():
        k = int(np.argmin(widths))
        raise _place_error(req, ValueError(f"exit {g.exit_ids[k]!r}: {widths[k]:.2f} m wide, narrower than a "
                                           f"person ({body:g} m, the speed model's body diameter)"))
    if set(ids) >= set(g.exit_ids):
        raise RequestError(f"close_exits: every exit of {place_path(req)} would close ({', '.join(sorted(set(ids)))}); "
                           "at least one must stay open", field="close_exits", value=ids)
    if req.agents is not None:
        spec, _ = agents_spec(req, g)
        xy = spec.positions
        x, y = g.project(xy[:, 0], xy[:, 1])
        try:
            Geometry.check_positions(g, np.column_stack([x, y]), clearance=0.1)
        except ValidationError as exc:
            raise RequestError(f"agents={req.agents!r}: {exc} (in the place's frame, metres)",
                               field="agents", value=req.agents) from exc
        import shapely

        cut_off = ~shapely.contains_xy(reachable_area(g), x, y)
        if cut_off.any():
            k = int(np.flatnonzero(cut_off)[0])
            raise RequestError(f"agents={req.agents!r}: agent {k} (row {k + 1}) stands in a part of the place "
                               "that touches no exit", field="agents", value=req.agents)


# ----------------------------------------------------------------------------- run
def free_walk_times(ds, g) -> Any:
    """Each person's time out with nobody else there: pre-movement + straight distance to the
    nearest exit open at the start / free speed, s (a lower bound of the exit time)."""
    import numpy as np
    import shapely

    exits = shapely.linestrings(g.exit_segments.reshape(-1, 2, 2))
    x0, y0 = ds["x"].values[0], ds["y"].values[0]
    pts = shapely.points(x0, y0)
    d = np.min(np.stack([shapely.distance(pts, e) for e in exits]), axis=0)
    return ds["premovement"].values + d / ds["free_speed"].values


def _estimate_s(model) -> float:
    """A rough evacuation time for the progress bar: the free-walk bound or the exits' capacity."""
    import numpy as np

    d = model.field.distance_at(model.position)
    d = np.where(np.isfinite(d), d, 0.0)
    walk = float(np.max(model.premovement + d / model.v0)) if model.n else 0.0
    width = float(np.hypot(*(model.geometry.exit_segments[:, 2:] - model.geometry.exit_segments[:, :2]).T).sum())
    return max(walk, float(np.median(model.premovement)) + model.n / (DOOR_FLOW_P_SM * width)) + 5.0


def simulate_room(req: RoomRequest, seed: int, ctx: RunContext | None = None):
    """One evacuation of the place with ``seed``: the trajectories Dataset (:func:`agents.crowd.CrowdModel`)
    with the run's events in ``attrs["events"]`` (JSON) and the free-walk bound per person."""
    import json

    import numpy as np

    from agents.crowd import CrowdModel
    from twin.events import Event

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
        events.append(Event(time_s=stalled_at, kind="evacuation_stalled", source="crowd", severity="alarm",
                            message=f"nobody left for {req.stall_s:g} s; {model.n_inside} people still inside "
                                    "(run stopped)", data={"inside": model.n_inside}).to_record())
    ds = model.trajectories()
    ds = ds.assign(free_walk_time=("agent", free_walk_times(ds, g),
                                   {"units": "s", "long_name": "pre-movement + straight distance to the nearest "
                                                               "exit / free speed (nobody else there)"}))
    ds.attrs.update(stalled_at_s=math.nan if stalled_at is None else float(stalled_at), place=str(place_path(req)),
                    place_name=_place_name(place_path(req)), metric_crs=g.metric_crs, seed=int(seed), until_s=float(req.until_s), record_every_s=float(req.record_every_s),
                    closures=json.dumps([c.model_dump() for c in sorted(req.close_exits, key=lambda c: c.at_s)]),
                    exit_width_m=json.dumps(np.hypot(*(g.exit_segments[:, 2:] - g.exit_segments[:, :2]).T)
                                            .round(3).tolist()),
                    walkable_area_m2=float(free_area(g).area), events=json.dumps(events))
    return ds


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
        times.append(_evac_time(t_out))
        t95.append(_quantile_time(t_out, 0.95))
    seeds = np.arange(req.seed, req.seed + req.runs)
    return ds.assign(
        evac_time_run=("run", np.array(times), {"units": "s", "long_name": "evacuation time of each run "
                                                                          "(inf: people left inside)"}),
        t95_run=("run", np.array(t95), {"units": "s", "long_name": "time 95 % were out, each run"}),
    ).assign_coords(run_seed=("run", seeds))


# ----------------------------------------------------------------------------- analysis
def _evac_time(exit_time) -> float:
    """Time the last person left (inf when someone is still inside)."""
    import numpy as np

    t = np.asarray(exit_time, dtype=float)
    return float(t.max()) if t.size and np.all(np.isfinite(t)) else (0.0 if not t.size else math.inf)


def _quantile_time(exit_time, q: float) -> float:
    """Time by which a share ``q`` of everyone had left (inf when fewer ever did)."""
    import numpy as np

    t = np.sort(np.asarray(exit_time, dtype=float))
    if not t.size:
        return 0.0
    k = int(math.ceil(q * t.size)) - 1
    return float(t[k]) if np.isfinite(t[k]) else math.inf


def peak_flow(times, window_s: float = PEAK_WINDOW_S) -> float:
    """Largest number of passages in any window of ``window_s`` starting at a passage, / ``window_s`` (P/s)."""
    import numpy as np

    t = np.sort(np.asarray(times, dtype=float))
    if not t.size:
        return 0.0
    counts = np.searchsorted(t, t + window_s - 1e-9, side="right") - np.arange(t.size)
    return float(counts.max()) / window_s


def density_grid(ds, g, cell_m: float = DENSITY_CELL_M):
    """Maximum over the samples of people per m² on square cells (NaN where under half walkable).

    Returns
    -------
    (max_density (ny, nx), x_edges (nx + 1,), y_edges (ny + 1,), cell_area (ny, nx) m²)
    """
    import numpy as np
    import shapely

    xmin, ymin, xmax, ymax = g.bounds
    xe = xmin + cell_m * np.arange(int(math.ceil((xmax - xmin) / cell_m)) + 1)
    ye = ymin + cell_m * np.arange(int(math.ceil((ymax - ymin) / cell_m)) + 1)
    gx0, gy0 = np.meshgrid(xe[:-1], ye[:-1])
    cells = shapely.box(gx0, gy0, gx0 + cell_m, gy0 + cell_m)
    area = shapely.area(shapely.intersection(cells, free_area(g)))
    x, y = ds["x"].values, ds["y"].values
    best = np.zeros(area.shape)
    for k in range(x.shape[0]):
        ok = np.isfinite(x[k])
        if ok.any():
            h, _, _ = np.histogram2d(y[k, ok], x[k, ok], bins=(ye, xe))
            np.maximum(best, h, out=best)
    usable = area >= 0.5 * cell_m * cell_m
    dens = np.where(usable, best / np.where(usable, area, 1.0), np.nan)
    return dens, xe, ye, area


def near_exit_density(ds, g, radius_m: float = NEAR_EXIT_M):
    """People per m² within ``radius_m`` of each exit, inside the walkable area, at every sample: (time, exit)."""
    import numpy as np
    import shapely

    area_free = free_area(g)
    zones = [shapely.intersection(shapely.linestrings(s.reshape(2, 2)).buffer(radius_m), area_free)
             for s in g.exit_segments]
    x, y = ds["x"].values, ds["y"].values
    out = np.zeros((x.shape[0], len(zones)))
    for j, z in enumerate(zones):
        shapely.prepare(z)
        inside = shapely.contains_xy(z, np.nan_to_num(x, nan=-1e12), np.nan_to_num(y, nan=-1e12))
        out[:, j] = inside.sum(axis=1) / max(z.area, 1e-9)
    return out


def congestion_events(t, dens, exit_ids, threshold: float = CONGESTED_P_M2, eased: float = EASED_P_M2
                      ) -> list[dict]:
    """``exit_congested`` when the density near an exit rises above ``threshold``, ``exit_congestion_eased``
    when it falls below ``eased`` again (event records)."""
    from twin.events import Event

    out = []
    for j, eid in enumerate(exit_ids):
        above = False
        for k in range(len(t)):
            now = dens[k, j] > threshold if not above else dens[k, j] >= eased
            if now and not above:
                out.append(Event(time_s=float(t[k]), kind="exit_congested", source="crowd", severity="warning",
                                 message=f"exit {eid}: {dens[k, j]:.1f} P/m² within {NEAR_EXIT_M:g} m "
                                         f"(> {threshold:g})",
                                 data={"exit": str(eid), "density_p_m2": round(float(dens[k, j]), 2)}).to_record())
            elif above and not now:
                out.append(Event(time_s=float(t[k]), kind="exit_congestion_eased", source="crowd",
                                 message=f"exit {eid}: {dens[k, j]:.1f} P/m² near it",
                                 data={"exit": str(eid), "density_p_m2": round(float(dens[k, j]), 2)}).to_record())
            above = now
    return out


def analyse(ds, g):
    """``ds`` with the analysis the outputs need: people out over time, near-exit density, the max-density
    grid, per-exit passages, the events (closures, congestion, room cleared) and key times in attrs."""
    import json

    import numpy as np

    from twin.events import Event

    t = ds["time"].values
    t_out = ds["exit_time"].values
    out_by_t = np.array([(t_out <= tk + 1e-9).sum() for tk in t])
    near = near_exit_density(ds, g)
    dens, xe, ye, area = density_grid(ds, g)
    events = json.loads(ds.attrs["events"]) + congestion_events(t, near, list(ds["exit"].values))
    n, t_evac = int(ds.sizes["agent"]), _evac_time(t_out)
    if n and math.isfinite(t_evac):
        events.append(Event(time_s=t_evac, kind="room_cleared", source="crowd",
                            message=f"everyone out ({n} people) after {t_evac:.1f} s").to_record())
    events.sort(key=lambda e: e["time_s"])
    k_max = np.unravel_index(np.nanargmax(dens), dens.shape) if np.isfinite(dens).any() else None
    ds = ds.assign(
        evacuated_count=("time", out_by_t, {"long_name": "people out by this time"}),
        near_exit_density=(("time", "exit"), near, {"units": "P/m2", "long_name":
                                                    f"people per m² within {NEAR_EXIT_M:g} m of the exit"}),
        max_density=(("cell_y", "cell_x"), dens, {"units": "P/m2", "long_name": "largest people per m² of "
                                                  f"{DENSITY_CELL_M:g} m cells over the run (NaN: not walkable)"}),
        cell_area=(("cell_y", "cell_x"), area, {"units": "m2", "long_name": "free walkable area of the cell"}),
    ).assign_coords(cell_xc=("cell_x", 0.5 * (xe[:-1] + xe[1:]), {"units": "m"}),
                    cell_yc=("cell_y", 0.5 * (ye[:-1] + ye[1:]), {"units": "m"}))
    ds.attrs.update(events=json.dumps(events), evacuation_time_s=t_evac, t95_s=_quantile_time(t_out, 0.95),
                    density_cell_m=DENSITY_CELL_M,
                    max_density_p_m2=float(dens[k_max]) if k_max is not None else 0.0,
                    max_density_x=float(0.5 * (xe[k_max[1]] + xe[k_max[1] + 1])) if k_max is not None else math.nan,
                    max_density_y=float(0.5 * (ye[k_max[0]] + ye[k_max[0] + 1])) if k_max is not None else math.nan)
    return ds


def exits_table(ds):
    """Per exit: width, people, first/last passage, mean and peak (10 s) flow, closing time, near density."""
    import json

    import numpy as np
    import pandas as pd

    closed = {c["exit"]: c["at_s"] for c in json.loads(ds.attrs["closures"])}
    ev_closed = {e["data"]["exit"]: e["time_s"] for e in json.loads(ds.attrs["events"]) if e["kind"] == "exit_closed"}
    widths = json.loads(ds.attrs["exit_width_m"])
    t_out, idx = ds["exit_time"].values, ds["exit_index"].values
    rows = []
    for j, eid in enumerate(ds["exit"].values):
        tj = np.sort(t_out[idx == j])
        span = float(tj[-1] - tj[0]) if tj.size > 1 else math.nan
        rows.append({
            "exit": str(eid), "width_m": widths[j], "people": int(tj.size),
            "first_passage_s": float(tj[0]) if tj.size else math.nan,
            "last_passage_s": float(tj[-1]) if tj.size else math.nan,
            "mean_flow_p_s": (tj.size - 1) / span if span and span > 0 else math.nan,
            "peak_flow_10s_p_s": peak_flow(tj),
            "closed_at_s": ev_closed.get(str(eid), math.nan) if str(eid) in closed else math.nan,
            "max_density_near_p_m2": float(ds["near_exit_density"].values[:, j].max()),
        })
    return pd.DataFrame(rows)


def mean_walking_speed(ds) -> float:
    """Mean speed over every sample of people inside who had started moving, m/s."""
    import numpy as np

    v = ds["speed"].values
    started = ds["time"].values[:, None] >= ds["premovement"].values[None, :]
    ok = np.isfinite(v) & started
    ok[0] = False  # the first sample is before any step
    return float(v[ok].mean()) if ok.any() else math.nan


def summarise(ds) -> dict[str, Any]:
    """The run's summary: people, evacuation and 95 % times, per exit, max local density, mean speed."""
    import json

    import numpy as np

    n = int(ds.sizes["agent"])
    inside = int(np.count_nonzero(~np.isfinite(ds["exit_time"].values)))
    table = exits_table(ds)
    per_exit = {r["exit"]: {k: v for k, v in r.items() if k != "exit"} for r in table.to_dict("records")}
    lonlat = None
    if math.isfinite(ds.attrs["max_density_x"]) and "lon" in ds:
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(ds.attrs["metric_crs"], "EPSG:4326", always_xy=True).transform(
            ds.attrs["max_density_x"], ds.attrs["max_density_y"])
        lonlat = {"lon": round(lon, 6), "lat": round(lat, 6)}
    fw = ds["free_walk_time"].values
    counts: dict[str, int] = {}
    for e in json.loads(ds.attrs["events"]):
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    return {
        "place": ds.attrs["place_name"], "people": n, "people_out": n - inside, "people_inside_at_end": inside,
        "evacuation_time_s": ds.attrs["evacuation_time_s"], "t95_s": ds.attrs["t95_s"],
        "stalled_at_s": ds.attrs["stalled_at_s"],
        "free_walk_time_max_s": float(fw.max()) if n else 0.0,
        "walkable_area_m2": round(float(ds.attrs["walkable_area_m2"]), 1),
        "initial_density_p_m2": round(n / float(ds.attrs["walkable_area_m2"]), 4),
        "mean_speed_mps": mean_walking_speed(ds),
        "max_local_density_p_m2": float(ds.attrs["max_density_p_m2"]),
        "max_local_density_cell_m": float(ds.attrs["density_cell_m"]), "max_local_density_at": lonlat,
        "exits": per_exit,
        "exits_congested": sorted({e["data"]["exit"] for e in json.loads(ds.attrs["events"])
                                   if e["kind"] == "exit_congested"}),
        "events": counts, "evacuation_runs": _repeat_stats(ds),
        "seed": int(ds.attrs["seed"]), "dt_s": float(ds.attrs["dt_s"]), "crs": ds.attrs["metric_crs"],
    }


def _repeat_stats(ds) -> dict[str, Any] | None:
    import numpy as np

    if "evac_time_run" not in ds:
        return None
    r = ds["evac_time_run"].values
    q = ds["t95_run"].values
    return {"runs": int(r.size), "seeds": [int(s) for s in ds["run_seed"].values],
            "mean_s": float(r.mean()), "p95_s": float(np.percentile(r, 95)), "min_s": float(r.min()),
            "max_s": float(r.max()), "t95_mean_s": float(q.mean())}


# ----------------------------------------------------------------------------- figures
def curve_figure(ds):
    """People out and inside over time, the 95 % and evacuation times and exit closures marked."""
    import json

    import numpy as np

    from viz.plots import new_figure, style

    t_out = np.sort(ds["exit_time"].values[np.isfinite(ds["exit_time"].values)])
    n = int(ds.sizes["agent"])
    with style():
        fig = new_figure(7.0, 3.8)
        ax = fig.add_subplot()
        tt = np.concatenate([[0.0], t_out])
        ax.step(tt, np.arange(tt.size), where="post", color="#1f77b4", label="out")
        end = float(ds["time"].values[-1])
        ax.step(np.concatenate([tt, [end]]), n - np.concatenate([np.arange(tt.size), [t_out.size]]), where="post",
                color="#ff7f0e", lw=1, label="still inside")
        for key, lab, col in (("t95_s", "95 % out", "#9467bd"), ("evacuation_time_s", "everyone out", "#d62728")):
            v = float(ds.attrs[key])
            if math.isfinite(v):
                ax.axvline(v, color=col, ls="--", lw=1, label=f"{lab} {v:.0f} s")
        for e in json.loads(ds.attrs["events"]):
            if e["kind"] == "exit_closed":
                ax.axvline(e["time_s"], color="k", lw=0.8, ls=":")
                ax.annotate(f"{e['data']['exit']} closed", (e["time_s"], n * 0.5), rotation=90, fontsize=8,
                            ha="right", va="center")
        ax.set_xlabel("time after the alarm (s)")
        ax.set_ylabel("people")
        ax.set_title(f"Evacuation curve — {n} people")
        ax.legend(loc="center right")
    return fig


def flow_figure(ds, window_s: float = PEAK_WINDOW_S):
    """Flow through each exit over time: passages in the trailing ``window_s`` / ``window_s`` (P/s)."""
    import json

    import numpy as np

    from viz.plots import new_figure, style

    t_out, idx = ds["exit_time"].values, ds["exit_index"].values
    end = max(float(ds["time"].values[-1]), window_s)
    grid = np.arange(0.0, end + 1.0, 1.0)
    with style():
        fig = new_figure(7.0, 3.8)
        ax = fig.add_subplot()
        for j, eid in enumerate(ds["exit"].values):
            tj = np.sort(t_out[idx == j])
            if not tj.size:
                continue
            cnt = np.searchsorted(tj, grid, side="right") - np.searchsorted(tj, grid - window_s, side="right")
            ax.plot(grid, cnt / window_s, lw=1.2, label=f"{eid} ({tj.size})")
        for e in json.loads(ds.attrs["events"]):
            if e["kind"] == "exit_closed":
                ax.axvline(e["time_s"], color="k", lw=0.8, ls=":")
                ax.annotate(f"{e['data']['exit']} closed", (e["time_s"], 0.5), xycoords=("data", "axes fraction"),
                            rotation=90, fontsize=8, ha="right", va="center")
        ax.set_xlabel("time after the alarm (s)")
        ax.set_ylabel(f"flow (P/s, over {window_s:g} s)")
        ax.set_title("Flow through each exit")
        if ax.lines:
            ax.legend(loc="upper right", ncol=2, fontsize=8)
    return fig


def density_figure(ds, g):
    """The largest local density of the run on the plan (metres), walls, exits (green open, red closed)."""
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from viz.plots import new_figure, style

    xc, yc = ds["cell_xc"].values, ds["cell_yc"].values
    h = float(ds.attrs["density_cell_m"])
    xmin, ymin, xmax, ymax = g.bounds
    aspect = (ymax - ymin) / max(xmax - xmin, 1e-9)
    with style():
        height = float(np.clip(2.0 + 5.0 * aspect, 3.0, 9.0))
        fig = new_figure(float(np.clip(height / aspect + 3.2, 4.8, 7.0)), height)
        ax = fig.add_subplot()
        levels = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0]
        cmap = ListedColormap(["#f7f7f7", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#8c2d04"])
        mesh = ax.pcolormesh(np.append(xc - h / 2, xc[-1] + h / 2) - xmin, np.append(yc - h / 2, yc[-1] + h / 2)
                             - ymin, ds["max_density"].values, cmap=cmap, norm=BoundaryNorm(levels, cmap.N))
        fig.colorbar(mesh, ax=ax, label=f"largest density (P/m², {h:g} m cells)", fraction=0.06, shrink=0.7)
        for s in g.wall_segments():
            ax.plot([s[0] - xmin, s[2] - xmin], [s[1] - ymin, s[3] - ymin], color="#333", lw=0.8)
        for j, s in enumerate(g.exit_segments):
            col = "#2ca02c" if g.exit_open[j] else "#d62728"
            ax.plot([s[0] - xmin, s[2] - xmin], [s[1] - ymin, s[3] - ymin], color=col, lw=3)
            ax.annotate(str(g.exit_ids[j]), ((s[0] + s[2]) / 2 - xmin, (s[1] + s[3]) / 2 - ymin), fontsize=8,
                        color=col, ha="center", va="center",
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
        ax.set_aspect("equal")
        ax.set_xlabel("m east")
        ax.set_ylabel("m north")
        ax.set_title(f"Largest local density — max {float(ds.attrs['max_density_p_m2']):.2f} P/m²")
    return fig


def end_geometry(ds):
    """The place as the run left it (the exits closed during the run closed)."""
    import json

    req_place = ds.attrs["place"]
    g = load_place(RoomRequest(place=req_place, people=1))
    for c in json.loads(ds.attrs["events"]):
        if c["kind"] == "exit_closed":
            g.exit_open[g.exit_index(c["data"]["exit"])] = False
    return g


# ----------------------------------------------------------------------------- outputs
def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """Key figures, the three plots, the exits table, the events, the model and its assumptions."""
    import base64
    import html
    import json

    from viz.plots import png_bytes
    from viz.report import summary_section

    def img(fig, alt: str) -> str:
        data = base64.b64encode(png_bytes(fig, dpi=110)).decode("ascii")
        return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'

    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if not math.isfinite(v) else f"{v:.2f}"
        return html.escape(str(v))

    table = exits_table(ds)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    ev = "".join(f"<tr><td>{e['time_s']:.1f}</td><td>{html.escape(str(e['severity']))}</td>"
                 f"<td>{html.escape(e['message'])}</td></tr>" for e in json.loads(ds.attrs["events"])[:200])
    key = {k: v for k, v in summary.items() if k not in ("request", "files", "exits") and v is not None}
    at = summary.get("max_local_density_at")
    if at:
        key["max_local_density_at"] = f"{at['lon']:.6f} E, {at['lat']:.6f} N"
    return [
        summary_section(key),
        "<section><h2>Evacuation over time</h2>" + img(curve_figure(ds), "evacuation curve")
        + img(flow_figure(ds), "flow through each exit") + "</section>",
        "<section><h2>Largest local density</h2>" + img(density_figure(ds, end_geometry(ds)), "max density map")
        + "</section>",
        f"<section><h2>Exits</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>",
        "<section><h2>Events</h2><table><thead><tr><th>time (s)</th><th>severity</th><th>event</th></tr>"
        f"</thead><tbody>{ev}</tbody></table></section>",
        "<section><h2>Model and assumptions</h2><p>" + html.escape(
            f"Collision-free speed model (Tordeux, Chraibi & Seyfried 2016; agents.crowd), time step "
            f"{float(ds.attrs['dt_s']):g} s, routing down a floor field (geodesic distance to the open exits, "
            "recomputed when an exit closes). Free speeds Weidmann 1993 (N(1.34, 0.26) m/s) unless the "
            f"profile or file says otherwise. Local density: people per m² on {DENSITY_CELL_M:g} m cells, "
            f"largest over samples every {float(ds.attrs['record_every_s']):g} s; an exit is congested while "
            f"more than {CONGESTED_P_M2:g} P/m² stand within {NEAR_EXIT_M:g} m of it. Place: "
            f"{ds.attrs['place_name']}.") + "</p></section>",
    ]


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


def write_room(ds, out_dir, req: RoomRequest, ctx: RunContext) -> RunOutputs:
    """trajectories.nc, exits.csv, events.jsonl, three plots; the summary."""
    import json

    from viz.plots import save_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trajectories": out / "trajectories.nc", "exits": out / "exits.csv", "events": out / "events.jsonl"}
    nc = ds.copy()
    nc["exit_id"] = nc["exit_id"].astype(str)
    nc = nc.assign_coords(exit=nc["exit"].astype(str))
    nc.attrs["crs"] = ds.attrs["metric_crs"]
    nc.attrs["x_y_crs"] = ds.attrs["metric_crs"]
    nc.attrs["lon_lat_crs"] = "EPSG:4326"
    nc.to_netcdf(paths["trajectories"], encoding=trajectory_encoding(ds))
    exits_table(ds).to_csv(paths["exits"], index=False, float_format="%.3f")
    with paths["events"].open("w", encoding="utf-8") as fh:
        for e in json.loads(ds.attrs["events"]):
            fh.write(json.dumps(e, ensure_ascii=False) + "\n")
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

    g = load_place(RoomRequest(place=ds.attrs["place"], people=1))

    def lonlat(geom):
        return shapely.transform(geom, lambda xy: np.column_stack(g.to_lonlat(xy[:, 0], xy[:, 1])))

    t = ds["time"].values
    idx = sorted({int(round(v)) for v in np.linspace(0, t.size - 1, min(t.size, MAX_FRAMES))})
    times = t[idx]
    closed_at = {e["data"]["exit"]: e["time_s"] for e in json.loads(ds.attrs["events"]) if e["kind"] == "exit_closed"}
    h = float(ds.attrs["density_cell_m"])
    xc, yc = np.meshgrid(ds["cell_xc"].values, ds["cell_yc"].values)
    dens = ds["max_density"].values.ravel()
    keep = np.isfinite(dens) & (dens >= 0.5)
    cells = lonlat(shapely.box(xc.ravel()[keep] - h / 2, yc.ravel()[keep] - h / 2, xc.ravel()[keep] + h / 2,
                               yc.ravel()[keep] + h / 2))
    exits = {eid: lonlat(shapely.linestrings(s.reshape(2, 2))) for eid, s in zip(g.exit_ids, g.exit_segments,
                                                                                   strict=True)}
    widths = dict(zip(g.exit_ids, json.loads(ds.attrs["exit_width_m"]), strict=True))
    place = build("walkable", lonlat(g.walkable), exits=exits, walls=[lonlat(w) for w in g.walls],
                  exit_widths_m=widths, closed_at_s=closed_at, times_s=times, density=(list(cells), dens[keep]),
                  density_cell_m=h, label=ds.attrs["place_name"])
    return [people_layer(ds, idx), place]


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

__all__ = ["EVACUATE_ROOM", "EXAMPLES", "ExitClosure", "RoomConsoleRequest", "RoomRequest", "place_path", "analyse", "check_room", "exits_table",
           "free_walk_times", "load_place", "peak_flow", "read_agents_csv", "room_layers", "run_room",
           "simulate_room", "summarise", "write_room"]
