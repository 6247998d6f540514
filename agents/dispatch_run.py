"""The dispatch model's run kind: ``twin dispatch run`` (request, runner, outputs, map layers).

A run takes the city's road graph (or a road file), stations (default: the
ASSUMED demo file ``agents/data/futian_stations_demo.csv``), incidents from a
CSV, from a flood run (rescue calls where the water is dangerous to people)
and/or random calls, and the flood's road closures over time; it simulates
the dispatch (:class:`agents.dispatch.DispatchModel`) and writes
``dispatch.nc`` (unit tracks, road state and flood depth per frame),
``incidents.csv``, ``requests.csv``, ``units.csv``, ``events.jsonl``,
``response_times.png`` and the summary.

This module is imported for ``twin --help``: numpy, xarray and the model are
imported inside the functions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "dispatch"
DEMO_STATIONS = Path(__file__).with_name("data") / "futian_stations_demo.csv"
MAX_FRAMES = 73
MIN_FRAME_S = 60.0
DEFAULT_RESCUES = 12
STATION_KINDS = ("fire_station", "hospital", "station")
UNIT_COLUMNS = {"engines": "engine", "ambulances": "ambulance", "rescue": "rescue"}
PHASE_LABELS = {0: "at station", 1: "turning out", 2: "to incident", 3: "on scene", 4: "returning",
                5: "standing by away from station"}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class DispatchConsoleRequest(_Strict):
    """What the console's form may send: random calls over the city's roads.

    Attributes
    ----------
    hours : float
        Simulated time of calls (h).
    calls_per_hour : float
        Poisson rate of ordinary calls (fires and medical) at random road nodes.
    seed : int
        Seeds calls and on-scene times.
    """

    hours: float | None = Field(default=1.0, gt=0.0, le=24.0, allow_inf_nan=False, description="Hours")
    calls_per_hour: float = Field(default=12.0, ge=0.0, le=1000.0, allow_inf_nan=False,
                                  description="Random calls per hour")
    seed: int = Field(default=0, ge=0, description="Seed")


class DispatchRequest(DispatchConsoleRequest):
    """Every parameter of a dispatch run (see ``twin dispatch run --help``).

    ``hours`` None: the flood's length (1 h without a flood). ``flood_rescues``
    None: 12 rescue calls with a flood, none without. ``roads`` None: the
    city's road graph (with a flood, clipped to the flood grid).
    """

    hours: float | None = Field(default=None, gt=0.0, le=24.0, allow_inf_nan=False)
    calls_per_hour: float = Field(default=0.0, ge=0.0, le=1000.0, allow_inf_nan=False)
    flood: str | None = Field(default=None, json_schema_extra={
        "twin_run": {"kind": "flood_forecast", "field": "flood"}})
    stations: str | None = None
    incidents: str | None = None
    events: str | None = None
    roads: str | None = None
    city: str | None = None
    flood_rescues: int | None = Field(default=None, ge=0, le=5000)
    turnout_s: float = Field(default=60.0, ge=0.0, le=3600.0, allow_inf_nan=False)
    frame_s: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)


# ----------------------------------------------------------------------------- input files
def read_stations(path: str | Path):
    """Stations from a CSV: ``id, name, kind, lon, lat, engines, ambulances, rescue`` (``#`` comments).

    Raises
    ------
    twin.errors.RequestError
        Naming the row and column of a bad value (field ``stations``).
    """
    import pandas as pd

    from agents.dispatch import Station
    from twin.errors import RequestError

    df = _read_csv(path, "stations")
    need = {"lon", "lat"} | set(UNIT_COLUMNS)
    missing = sorted(need - set(df.columns))
    if missing:
        raise RequestError(f"stations file {path}: missing column(s) {missing}; columns are "
                           "id,name,kind,lon,lat,engines,ambulances,rescue", field="stations", value=str(path))
    out = []
    for i, row in df.iterrows():
        sid = str(row["id"]) if "id" in df.columns and not pd.isna(row["id"]) else f"S{i + 1}"
        units = {}
        for col, t in UNIT_COLUMNS.items():
            v = pd.to_numeric(row[col], errors="coerce")
            if not (math.isfinite(v) and v >= 0 and float(v).is_integer()):
                raise RequestError(f"stations file {path}, row {i + 1} ({sid}): {col}={row[col]!r} is not "
                                   "a whole number >= 0", field="stations", value=str(path))
            units[t] = int(v)
        lon, lat = _lonlat(row, path, i, "stations", sid)
        kind = str(row.get("kind", "station")) if "kind" in df.columns else "station"
        out.append(Station(sid, lon, lat, units, name=str(row.get("name", sid)),
                           kind=kind if kind in STATION_KINDS else "station"))
    if not out:
        raise RequestError(f"stations file {path} has no rows", field="stations", value=str(path))
    return out


def read_incidents(path: str | Path):
    """Incidents from a CSV: ``time_s`` (or ``time_min``), ``lon``, ``lat``, ``kind``, optional
    ``id``, ``needs`` ("engine:2;ambulance:1") and ``on_scene_min``.

    Raises
    ------
    twin.errors.RequestError
        Naming the row and column of a bad value (field ``incidents``).
    """
    import pandas as pd

    from agents.dispatch import make_incident
    from twin.errors import RequestError, ValidationError

    df = _read_csv(path, "incidents")
    tcol = "time_s" if "time_s" in df.columns else "time_min" if "time_min" in df.columns else None
    missing = sorted({"lon", "lat", "kind"} - set(df.columns)) + ([] if tcol else ["time_s"])
    if missing:
        raise RequestError(f"incidents file {path}: missing column(s) {missing}; columns are "
                           "time_s (or time_min),lon,lat,kind[,id,needs,on_scene_min]",
                           field="incidents", value=str(path))
    out = []
    for i, row in df.iterrows():
        iid = str(row["id"]) if "id" in df.columns and not pd.isna(row["id"]) else f"I{i + 1}"
        try:
            t = float(row[tcol]) * (60.0 if tcol == "time_min" else 1.0)
            lon, lat = _lonlat(row, path, i, "incidents", iid)
            needs = _needs(row.get("needs")) if "needs" in df.columns else None
            scene = row.get("on_scene_min") if "on_scene_min" in df.columns else None
            scene = None if scene is None or pd.isna(scene) else float(scene) * 60.0
            out.append(make_incident(iid, t, lon, lat, str(row["kind"]), needs, scene))
        except (ValidationError, ValueError, TypeError) as exc:
            raise RequestError(f"incidents file {path}, row {i + 1} ({iid}): {exc}", field="incidents",
                               value=str(path)) from exc
    return out


def read_events(path: str | Path):
    """Incidents from a JSON-lines file of :class:`twin.events.Event` records (e.g. a store's or a
    run's ``events.jsonl``): kinds of :data:`agents.dispatch.EVENT_INCIDENTS` with a lon/lat.

    Returns the incidents and the number of mapped events without a position.

    Raises
    ------
    twin.errors.RequestError
        Naming the line of a record that is not an event (field ``events``).
    """
    import json

    from agents.dispatch import incidents_from_events
    from twin.errors import RequestError, ValidationError
    from twin.events import Event

    p = Path(path)
    if not p.is_file():
        raise RequestError(f"events={str(path)!r}: no such file", field="events", value=str(path))
    events = []
    with open(p, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                events.append(Event.parse(json.loads(line)))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise RequestError(f"events file {path}, line {i + 1}: {exc}", field="events",
                                   value=str(path)) from exc
    return incidents_from_events(events)


def _needs(value) -> dict[str, int] | None:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip():
        return None
    out = {}
    for part in str(value).split(";"):
        t, sep, n = part.partition(":")
        if not sep:
            raise ValueError(f"needs={value!r}: write type:count pairs, e.g. engine:2;ambulance:1")
        out[t.strip()] = int(n)
    return out


def _read_csv(path, field: str):
    import pandas as pd

    from twin.errors import RequestError

    p = Path(path)
    if not p.is_file():
        raise RequestError(f"{field}={str(path)!r}: no such file", field=field, value=str(path))
    try:
        return pd.read_csv(p, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise RequestError(f"{field} file {path} is not a readable CSV: {exc}", field=field,
                           value=str(path)) from exc


def _lonlat(row, path, i: int, field: str, ident: str) -> tuple[float, float]:
    import pandas as pd

    from twin.errors import RequestError

    lon, lat = pd.to_numeric(row["lon"], errors="coerce"), pd.to_numeric(row["lat"], errors="coerce")
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise RequestError(f"{field} file {path}, row {i + 1} ({ident}): lon/lat = ({row['lon']!r}, "
                           f"{row['lat']!r}) is not a WGS84 position in degrees", field=field, value=str(path))
    return float(lon), float(lat)


# ----------------------------------------------------------------------------- pre-check
def check_dispatch(req: DispatchRequest, city: Any = None) -> None:
    """Files exist and parse (stations, incidents, flood, roads) before the run starts.

    Raises
    ------
    twin.errors.RequestError
        Naming the field and the value.
    """
    from twin.errors import DataError, RequestError

    read_stations(req.stations or DEMO_STATIONS)
    if req.incidents is not None:
        read_incidents(req.incidents)
    if req.events is not None:
        read_events(req.events)
    if req.flood is not None:
        from agents.road_hazard import open_flood

        try:
            open_flood(_flood_path(req.flood)).close()
        except DataError as exc:
            raise RequestError(f"flood={req.flood!r}: {exc}", field="flood", value=req.flood) from exc
    if req.roads is not None and not Path(req.roads).is_file():
        raise RequestError(f"roads={req.roads!r}: no such file", field="roads", value=req.roads)
    if req.flood is None and req.incidents is None and req.events is None and req.calls_per_hour == 0:
        raise RequestError("nothing to dispatch: give incidents, events, a flood (rescue calls) or "
                           "calls_per_hour > 0",
                           field="calls_per_hour", value=req.calls_per_hour)


def _flood_path(value: str) -> Path:
    p = Path(value)
    return p / "flood.nc" if p.is_dir() else p


# ----------------------------------------------------------------------------- run
def load_roads(req: DispatchRequest, city: Any, flood_ds=None):
    """The road graph: ``req.roads`` or the city's; with a flood, the part on the flood grid (largest SCC)."""
    from agents.city_roads import city_road_graph
    from gis.roads import load_road_graph

    if req.roads is not None:
        roads = load_road_graph(req.roads).largest_scc()
    else:
        the_city = city
        if isinstance(city, str) or city is None and req.city:
            from twin.city import City

            the_city = City(city if isinstance(city, str) else req.city)
        roads = city_road_graph(the_city)
    if flood_ds is not None:
        roads = roads.within(_grid_outline(flood_ds)).largest_scc()
    return roads


def _grid_outline(ds):
    """The flood grid's outline as a WGS84 polygon."""
    import numpy as np
    from shapely.geometry import box

    from gis.crs import WGS84, WORKING_CRS, transformer

    x, y = ds["x"].to_numpy(), ds["y"].to_numpy()
    xs = np.array([x.min(), x.max(), x.max(), x.min()])
    ys = np.array([y.min(), y.min(), y.max(), y.max()])
    lon, lat = transformer(WORKING_CRS, WGS84).transform(xs, ys)
    return box(lon.min(), lat.min(), lon.max(), lat.max())


def run_dispatch(req: DispatchRequest, ctx: RunContext):
    """Load roads, flood, stations and incidents; run the model; return ``dispatch.nc``'s Dataset."""
    import numpy as np

    from agents.dispatch import DispatchModel, flood_rescue_incidents, random_incidents
    from agents.road_hazard import open_flood, road_hazard
    from agents.routing import Router

    flood_ds = open_flood(_flood_path(req.flood)) if req.flood is not None else None
    hours = req.hours or (float(flood_ds["time"].max()) / 3600.0 if flood_ds is not None else 1.0)
    hours = hours if hours > 0 else 1.0
    duration = hours * 3600.0
    ctx.report(0.0, duration, message="loading the road graph")
    roads = load_roads(req, ctx.city, flood_ds)
    router = Router(roads)
    hazard = road_hazard(roads, flood_ds) if flood_ds is not None else None
    stations, dropped = _stations_on_roads(read_stations(req.stations or DEMO_STATIONS), router)
    incidents = read_incidents(req.incidents) if req.incidents is not None else []
    if req.events is not None:
        from_events, no_position = read_events(req.events)
        incidents += from_events
        ctx.extras["events_without_position"] = no_position
    n_rescue = req.flood_rescues if req.flood_rescues is not None else (DEFAULT_RESCUES if flood_ds is not None
                                                                        else 0)
    if flood_ds is not None and n_rescue:
        incidents += flood_rescue_incidents(flood_ds, router, n_rescue, seed=req.seed, until_s=duration)
    incidents += random_incidents(router, req.calls_per_hour, hours, seed=req.seed)
    ctx.report(0.0, duration, message=(
        f"{roads.n_edges} road edges, {len(stations)} stations, {len(incidents)} incidents"
        + (f", flood frames {len(hazard.times_s)}" if hazard is not None else "")))
    model = DispatchModel(router, stations, incidents, hazard=hazard, seed=req.seed, turnout_s=req.turnout_s)
    model.run(duration, progress=lambda t: ctx.report(t, duration))
    ctx.extras["model"] = model
    ctx.extras["stations_dropped"] = dropped
    end = max(duration, min(model.clock.now_s, duration + 3600.0))  # missions finishing after the calls
    frame = req.frame_s or max(MIN_FRAME_S, end / (MAX_FRAMES - 1))
    times = np.arange(0.0, end + 0.5 * frame, frame)
    return build_dataset(model, times, hazard, flood_ds, hours=hours)


def _stations_on_roads(stations, router, max_m: float = 2000.0):
    """Stations within ``max_m`` of the road graph, and the ids of those left out."""
    import numpy as np

    from twin.errors import RequestError

    _, dist = router.nearest_lonlat(np.array([s.lon for s in stations]), np.array([s.lat for s in stations]),
                                    return_distance=True)
    keep = [s for s, d in zip(stations, dist, strict=True) if d <= max_m]
    if not keep:
        raise RequestError(f"no station lies within {max_m:g} m of the road network", field="stations",
                           value=None)
    return keep, [s.id for s, d in zip(stations, dist, strict=True) if d > max_m]


def build_dataset(model, times, hazard, flood_ds, *, hours: float):
    """``dispatch.nc``: unit tracks (time, unit), road state (time, road), flood depth (time, y, x)."""
    import numpy as np
    import xarray as xr

    from gis.crs import WORKING_CRS

    lon, lat, phase = model.positions(times)
    router = model.router
    inc = model.incident_table()
    data = {
        "unit_lon": (("time", "unit"), lon, {"units": "degrees_east"}),
        "unit_lat": (("time", "unit"), lat, {"units": "degrees_north"}),
        "unit_phase": (("time", "unit"), phase, {"flag_values": list(PHASE_LABELS),
                                                 "flag_meanings": " ".join(v.replace(" ", "_")
                                                                           for v in PHASE_LABELS.values())}),
        "unit_type": ("unit", [u.type for u in model.units]),
        "unit_station": ("unit", [model.stations[u.station].id for u in model.units]),
        "station_lon": ("station", [s.lon for s in model.stations]),
        "station_lat": ("station", [s.lat for s in model.stations]),
        "station_name": ("station", [s.name or s.id for s in model.stations]),
        "station_kind": ("station", [s.kind or "station" for s in model.stations]),
        "incident_lon": ("incident", inc["lon"].to_numpy(float) if len(inc) else np.empty(0)),
        "incident_lat": ("incident", inc["lat"].to_numpy(float) if len(inc) else np.empty(0)),
        "incident_kind": ("incident", inc["kind"].astype(str).to_numpy() if len(inc) else np.empty(0, str)),
        "incident_call_s": ("incident", inc["call_s"].to_numpy(float) if len(inc) else np.empty(0),
                            {"units": "s"}),
        "incident_response_s": ("incident", inc["response_s"].to_numpy(float) if len(inc) else np.empty(0),
                                {"units": "s", "long_name": "dispatch to first unit on scene"}),
    }
    if hazard is not None:
        k = np.clip(np.searchsorted(hazard.times_s, times, side="right") - 1, 0, len(hazard.times_s) - 1)
        state = hazard.state[k]
        streets, street_state, street_factor = _streets(router, state, hazard.speed_factor[k])
        geoms = model._edge_geoms()
        data["road_state"] = (("time", "road"), street_state,
                              {"flag_values": [0, 1, 2], "flag_meanings": "open slowed closed",
                               "long_name": "worse direction of each street segment"})
        data["road_speed_factor"] = (("time", "road"), street_factor)
        data["road_wkt"] = ("road", [geoms[i].wkt for i in streets])
        data["road_name"] = ("road", [str(router.roads.edge(router.edge_ids[i]).get("name") or "")
                                      for i in streets])
        data["edges_closed"] = ("time", (state == 2).sum(axis=1), {"long_name": "directed edges closed"})
        data["edges_slowed"] = ("time", (state == 1).sum(axis=1), {"long_name": "directed edges slowed"})
        coords_road = {"road": [str(router.edge_ids[i]) for i in streets]}
    else:
        coords_road = {}
    coords = {"time": ("time", np.asarray(times, float), {"units": "s"}),
              "unit": [u.id for u in model.units], "station": [s.id for s in model.stations],
              "incident": inc["id"].astype(str).to_numpy() if len(inc) else np.empty(0, str), **coords_road}
    attrs = {"title": "Dispatch" + (" on a flooding road network" if hazard is not None else ""),
             "model": "agents.dispatch.DispatchModel", "crs": WORKING_CRS, "hours": float(hours),
             "road_edges": int(router.n_edges), "road_nodes": int(router.n_nodes)}
    ds = xr.Dataset({k: v for k, v in data.items()}, coords=coords, attrs=attrs)
    return _with_grid(ds, flood_ds, router, times)


def _streets(router, state, factor):
    """Street segments ever flooded: the two directions of a segment (same end nodes) merged.

    Returns the representative edge index of each segment, its state (the
    worse direction) and speed share (the lower) per frame.
    """
    import numpy as np

    ever = np.flatnonzero((state > 0).any(axis=0))
    u, v = router.edge_u[ever], router.edge_v[ever]
    key = np.minimum(u, v) * router.n_nodes + np.maximum(u, v)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    s = np.zeros((state.shape[0], uniq.size), dtype="int8")
    f = np.ones((state.shape[0], uniq.size), dtype="float32")
    np.maximum.at(s.T, inverse, state[:, ever].T.astype("int8"))
    np.minimum.at(f.T, inverse, factor[:, ever].T.astype("float32"))
    return ever[first], s, f


def _with_grid(ds, flood_ds, router, times):
    """Add the map grid: the flood's (depth at the frame times, elevation, sea) or a bare 250 m grid."""
    import numpy as np

    from gis.raster import transform_of

    if flood_ds is not None:
        ft = flood_ds["time"].to_numpy().astype(float)
        k = np.clip(np.searchsorted(ft, times, side="right") - 1, 0, len(ft) - 1)
        depth = flood_ds["depth"].isel(time=k).assign_coords(time=ds["time"].to_numpy())
        ds = ds.assign(depth=(("time", "y", "x"), depth.to_numpy(), {"units": "m"}))
        ds = ds.assign_coords(x=flood_ds["x"].to_numpy(), y=flood_ds["y"].to_numpy())
        for name in ("elevation", "sea", "land"):
            if name in flood_ds:
                ds[name] = (("y", "x"), flood_ds[name].to_numpy())
        ds.attrs["flood_title"] = str(flood_ds.attrs.get("title", ""))
    else:
        xy = router.node_xy
        cell = 250.0
        x0, y1 = np.floor(xy.min(axis=0) / cell) * cell - cell, np.ceil(xy.max(axis=0) / cell) * cell + cell
        x = np.arange(x0[0] + cell / 2, y1[0], cell)
        y = np.arange(y1[1] - cell / 2, x0[1], -cell)
        ds = ds.assign_coords(x=x, y=y)
    ds.attrs["transform"] = tuple(float(v) for v in tuple(transform_of(ds))[:6])
    return ds


# ----------------------------------------------------------------------------- outputs
def write_dispatch(ds, out_dir, req: DispatchRequest, ctx: RunContext) -> RunOutputs:
    """dispatch.nc, incidents.csv, requests.csv, units.csv, events.jsonl, response_times.png, summary."""

    from twin.pipeline import write_run_events

    out = Path(out_dir)
    model = ctx.extras["model"]
    paths = {"dispatch": out / "dispatch.nc"}
    enc = {name: {"zlib": True, "complevel": 4} for name, var in ds.data_vars.items()
           if var.dtype.kind in "fiu" and var.size > 1000}
    ds.to_netcdf(paths["dispatch"], encoding=enc)
    for name, table in (("incidents", model.incident_table()), ("requests", model.request_table()),
                        ("units", model.unit_table())):
        paths[name] = out / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    paths["events"] = write_run_events(model.event_log().to_records(), out)
    paths["plot"] = response_plot(model, out / "response_times.png")
    summary = model.summary()
    summary["events"] = {k: sum(1 for r in model.records if r[1] == k)
                         for k in sorted({r[1] for r in model.records})}
    summary["stations_outside_roads"] = ctx.extras.get("stations_dropped", [])
    if req.events is not None:
        summary["events_without_position"] = ctx.extras.get("events_without_position", 0)
    summary["road_graph"] = {"nodes": int(model.router.n_nodes), "edges": int(model.router.n_edges)}
    summary["flood"] = req.flood
    summary["assumptions"] = ("ASSUMED demo stations and fleets unless --stations; incident needs and "
                              "on-scene times of agents.dispatch.INCIDENT_TYPES are assumptions")
    return RunOutputs(paths=paths, summary=summary)


def response_plot(model, path: Path) -> Path:
    """Histogram of response times (dispatch → first unit on scene) with the 5-minute line."""
    import numpy as np

    from agents.dispatch import RESPONSE_TARGET_S
    from viz.plots import new_figure, save_png, style

    inc = model.incident_table()
    resp = inc["response_s"].dropna().to_numpy() / 60.0 if len(inc) else np.empty(0)
    with style():
        fig = new_figure(6.0, 3.4)
        ax = fig.add_subplot()
        if resp.size:
            bins = np.arange(0.0, max(10.0, float(np.ceil(resp.max()))) + 0.5, 0.5)
            ax.hist(resp, bins=bins, color="#3b6fb6", edgecolor="white")
        ax.axvline(RESPONSE_TARGET_S / 60.0, color="#c0392b", lw=1.5, ls="--",
                   label="5 min (建标152-2017)")
        share = float((resp <= RESPONSE_TARGET_S / 60.0).sum() / len(inc)) if len(inc) else float("nan")
        ax.set_xlabel("response time, dispatch → first unit on scene (min)")
        ax.set_ylabel("incidents")
        ax.set_title(f"{len(inc)} incidents, {resp.size} reached; within 5 min: {share:.0%}")
        ax.legend(loc="upper right")
    return save_png(fig, path)


def dispatch_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """Units moving (main), flooded roads, flood depth, stations and incidents."""
    import numpy as np
    from shapely import wkt

    from viz.layers import build
    from viz.layers.facilities import facilities

    times = ds["time"].to_numpy().astype(float)
    types = [str(t) for t in ds["unit_type"].to_numpy()]
    order = ["engine", "ambulance", "rescue"]
    group = np.array([order.index(t) for t in types], dtype=int)
    sets = [build("movers", times, ds["unit_lon"].to_numpy(), ds["unit_lat"].to_numpy(), layer_id="units",
                  label="Units", color=(200, 30, 30), radius_m=25.0, group=group,
                  group_labels={0: "Fire engine", 1: "Ambulance", 2: "Rescue team"},
                  group_colors={0: (210, 30, 30), 1: (250, 250, 250), 2: (250, 170, 0)})]
    if "road_state" in ds and ds.sizes.get("road", 0):
        lines = [wkt.loads(s) for s in ds["road_wkt"].to_numpy()]
        names = [str(n) or str(r) for n, r in zip(ds["road_name"].to_numpy(), ds["road"].to_numpy(),
                                                   strict=True)]
        sets.append(build("road_status", lines, ds["road_state"].to_numpy(), times_s=times,
                          layer_id="flooded_roads", label="Flooded roads", names=names))
    kinds = ds["station_kind"].to_numpy().astype(str)
    for kind in ("fire_station", "hospital", "station"):
        m = kinds == kind
        if m.any():
            sets.append(facilities(ds["station_lon"].to_numpy()[m], ds["station_lat"].to_numpy()[m],
                                   ds["station_name"].to_numpy()[m].astype(str), kind=kind,
                                   layer_id=f"stations_{kind}"))
    if ds.sizes.get("incident", 0):
        resp = ds["incident_response_s"].to_numpy()
        labels = [str(i) for i in ds["incident"].to_numpy()]
        sets.append(facilities(ds["incident_lon"].to_numpy(), ds["incident_lat"].to_numpy(), labels,
                               kind="incident", capacity=np.round(resp / 60.0, 1),
                               capacity_label="response (min)"))
    if "depth" in ds:
        sets.append(build("flood_depth", ds, warp=warp, max_px=max_px or 1024, max_frames=len(times)))
    return sets


def dispatch_report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The report: key figures with the response-time histogram, road closures per flood frame, summary."""
    import html

    from viz.report import figure_html, summary_section

    def fmt(v, scale=1.0, unit="", digits=1):
        return "–" if v is None else f"{v / scale:.{digits}f}{unit}"

    r = summary.get("response_s", {})
    share = summary.get("within_5min_share")
    rows = [("incidents (reached)", f"{summary.get('incidents')} ({summary.get('reached')})"),
            ("response, dispatch → first unit on scene: median / p90 / max",
             f"{fmt(r.get('p50'), 60, ' min')} / {fmt(r.get('p90'), 60, ' min')} / {fmt(r.get('max'), 60, ' min')}"),
            ("within 5 min of dispatch (建标152-2017)", "–" if share is None else f"{share:.0%}"),
            ("mean wait in queue", fmt(summary.get("mean_wait_s"), 60, " min")),
            ("mean unit utilisation", "–" if summary.get("utilisation_mean") is None
             else f"{summary['utilisation_mean']:.0%}"),
            ("re-routes / unreachable at call / never reached",
             f"{summary.get('reroutes')} / {summary.get('unreachable_incidents')} / {summary.get('never_reached')}")]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    img = ""
    png = Path(ctx.out_dir) / "response_times.png" if ctx is not None and ctx.out_dir is not None else None
    if png is not None and png.is_file():
        img = figure_html(png, "response times",
                          "Response times; dashed: the 5-minute rule of 建标152-2017.")
    out = [f"<section><h2>Dispatch</h2><table><tbody>{body}</tbody></table>{img}</section>"]
    changes = summary.get("road_changes") or []
    if changes:
        trs = "".join(f"<tr><td class=\"n\">{c['time_s'] / 60:.0f}</td><td class=\"n\">{c['closed']}</td>"
                      f"<td class=\"n\">{c['reopened']}</td><td class=\"n\">{c['closed_total']}</td></tr>"
                      for c in changes)
        out.append("<section><h2>Roads closed by the flood</h2><table><thead><tr><th class=\"n\">min</th>"
                   "<th class=\"n\">newly closed</th><th class=\"n\">reopened</th><th class=\"n\">closed "
                   f"edges</th></tr></thead><tbody>{trs}</tbody></table></section>")
    out.append(summary_section({k: v for k, v in summary.items() if k != "road_changes"}))
    return out


def describe(params: dict[str, Any]) -> str:
    parts = [f"{params.get('hours') or 'flood'} h"]
    if params.get("flood"):
        parts.append(f"flood {Path(params['flood']).parent.name or params['flood']}")
    if params.get("calls_per_hour"):
        parts.append(f"{params['calls_per_hour']:g} calls/h")
    return ", ".join(parts)


def _command():
    from twin.cli.dispatch import dispatch

    return dispatch


DISPATCH = register_kind(RunKind(
    name=KIND, title="Emergency dispatch", request=DispatchRequest, console_request=DispatchConsoleRequest,
    run=run_dispatch, write=write_dispatch, layers=dispatch_layers, report_sections=dispatch_report_sections,
    output="dispatch.nc", cli_name="dispatch",
    command=_command, describe=describe,
    summary_keys=("incidents", "within_5min_share", "reroutes", "unreachable_incidents"),
    duration_s=lambda req: (req.hours or 1.0) * 3600.0, check=check_dispatch,
))

__all__ = ["DISPATCH", "DispatchConsoleRequest", "DispatchRequest", "check_dispatch", "dispatch_layers",
           "read_events", "read_incidents", "read_stations", "run_dispatch", "write_dispatch"]
