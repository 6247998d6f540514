"""The live forecast loop for command staff: ``twin forecast``.

At each issue time the loop runs the flood model forward from the live twin
(what the sensor bridge stored), writes the run as a normal store run the
console lists and shows, raises the alerts the forecast implies and keeps the
predicted gauge levels for :mod:`scenarios.verification`.

One cycle (:func:`issue_forecast`)
----------------------------------
1. **Rain** (:func:`forecast_rain`). Each rain gauge's depth over the last
   ``rain_window_s`` before the issue time (default 30 min) is its recent rate;
   the rates are gridded on the run grid by inverse-distance weighting
   (:func:`hardware_bridge.fusion.rain_grid.grid_rain`, one block). Over the
   horizon the field is *held* (``rain_mode="persist"``: the recent rate in
   every block) or *decays* (``"decay"``: the recent rate times
   ``exp(-t / decay_tau_s)`` at the middle of each ``rain_block_s`` block).
   A gauge counts what it reported in the window (silent minutes count as dry);
   no gauge reporting in the window: no rain.
2. **Initial state.** A *warm start* takes the land depths of the previous
   forecast (the newest finished one issued before, with the same grid) at
   its frame nearest the new issue time (at most half a frame interval off);
   otherwise the land starts dry (the sea at its level, as every flood run).
3. **Nudging** (:class:`hardware_bridge.fusion.levels.Nudger`). The latest
   reading of each water-level gauge (no older than ``max_level_age_s``)
   pulls the depth of the gauge's own cell (or, with ``nudge_radius_m``, of
   the open cells within that distance) toward the observed water surface: ``h <- max(h + k (eta - (z + h)), 0)``,
   ``k = nudge_gain`` (default 1: direct insertion). The observed surface is
   ``eta = reading + datum_m`` with ``datum_m`` the gauge's zero on the DEM's
   datum (sensor property ``datum_m``); without it the reading is a water
   depth above the ground of the gauge's cell (a street waterlogging gauge):
   ``eta = z(gauge cell) + reading``. The volume added is recorded. A street
   gauge stands in a local low spot (an underpass) that a coarse cell
   averages away: its depth inserted over a whole cell adds water the cell
   did not hold, so only the gauge's own cell is nudged by default.
4. **Run** the flood kind's model over the horizon through
   :func:`twin.pipeline.run` (the run kind :func:`live_kind`, stored as the
   flood kind ``flood_forecast`` so the console lists it, shows its depth
   layers and lets the user pick earlier ones). The run's params carry
   ``forecast``: issue time, lead times, warm start.
5. **Gauge predictions**: the predicted reading of each gauge at each frame
   (lead time), ``depth`` of its cell (plus ``z - datum_m`` with a datum), go
   into ``forecast_gauges.csv`` and one ``forecast_issued`` event of the run
   (stored in the store, tied to the run).
6. **Alerts** (:func:`forecast_alerts`): a gauge whose predicted reading
   reaches one of its thresholds (the sensor's ``thresholds`` and the bridge's
   ``level_m`` rules for it) at a lead time > 0 while its latest reading is
   below gives a live event of kind ``forecast_threshold`` (severity of the
   threshold; ``data.forecast = true``, ``lead_s``, ``valid_time``, the run).
   The same gauge and severity is not raised again within ``realert_s``.

The loop (:class:`ForecastLoop`) issues a forecast every ``every_s`` on the
wall clock, or at given instants on a simulated clock (tests, replays).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from twin.errors import ValidationError
from twin.instants import parse_instant  # the twin's one instant parser, used and re-exported here
from twin.runkinds import RunContext, RunKind, RunOutputs

KIND_NAME = "flood_forecast"  # stored as the flood's kind: the console lists and shows it
FORECAST_EVENT = "forecast_issued"
ALERT_KIND = "forecast_threshold"
GAUGES_CSV = "forecast_gauges.csv"
SEVERITY_NAMES = ("advisory", "warning", "alarm")


# ----------------------------------------------------------------------------- durations and times
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|hr|hours?|min|mins|minutes?|m|s|sec|seconds?)", re.I)


def _unit_s(unit: str) -> float:
    u = unit.lower()
    return 3600.0 if u.startswith("h") else 60.0 if u == "m" or u.startswith("min") else 1.0


def parse_duration(text: str | float, what: str = "duration") -> float:
    """Seconds of ``"10min"``, ``"3h"``, ``"1h30min"``, ``"90s"`` or a number of seconds.

    Raises
    ------
    ValidationError
        Naming ``what`` and the text, for anything else or a duration <= 0.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().replace(" ", "")
        parts = _DURATION.findall(s)
        if not parts or "".join(a + b for a, b in parts).lower() != s.lower():
            raise ValidationError(f"{what}={text!r} is not a duration: write e.g. 10min, 3h, 1h30min or 90s")
        seconds = sum(float(n) * _unit_s(u) for n, u in parts)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValidationError(f"{what}={text!r} must be a duration > 0")
    return seconds


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- the request
class LiveForecastRequest(BaseModel):
    """One forecast issued from the live store (module docstring for the method).

    Attributes
    ----------
    store : str
        The store the bridge writes: its directory, or its ``postgresql://`` URL without a password
        (:func:`request_store`).
    issue_time : str
        ISO-8601 instant the forecast starts from (observations after it are not used).
    hours : float
        Horizon (h).
    resolution, districts, city, buffer_m
        The run grid (as the flood kind's).
    rain_window_s, rain_mode, decay_tau_s, rain_block_s
        Rain from the gauges (module docstring, step 1).
    nudge_gain, nudge_radius_m, max_level_age_s
        Nudging to the water-level gauges (step 3); radius None: the gauge's own cell only.
    alert_config : str or None
        The bridge's alert rules file (``twin bridge run --alert-config``): its ``level_m`` rules
        are gauge thresholds too (None: the packaged ``alerts.toml``).
    warm_start, warm_start_s, warm_start_run
        The previous forecast's ``flood.nc``, the time (s) of its frame to start from, its run id.
    output_every_s : float
        Frame interval (the lead times).
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    store: str
    issue_time: str
    hours: float = Field(gt=0.0, le=24.0, allow_inf_nan=False)
    resolution: float = Field(default=250.0, ge=30.0, le=2000.0, allow_inf_nan=False)
    districts: list[str] | None = Field(default=None, min_length=1)
    city: str | None = None
    buffer_m: float = Field(default=500.0, ge=0.0, allow_inf_nan=False)
    rain_window_s: float = Field(default=1800.0, gt=0.0, allow_inf_nan=False)
    rain_mode: Literal["persist", "decay"] = "persist"
    decay_tau_s: float = Field(default=3600.0, gt=0.0, allow_inf_nan=False)
    rain_block_s: float = Field(default=600.0, gt=0.0, allow_inf_nan=False)
    nudge_gain: float = Field(default=1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    nudge_radius_m: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    max_level_age_s: float = Field(default=1800.0, gt=0.0, allow_inf_nan=False)
    alert_config: str | None = None
    warm_start: str | None = None
    warm_start_s: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    warm_start_run: int | None = None
    output_every_s: float = Field(default=600.0, gt=0.0, allow_inf_nan=False)

    @field_validator("issue_time")
    @classmethod
    def _issue(cls, v: str) -> str:
        return iso(parse_instant(v, "issue_time"))

    @property
    def issue(self) -> datetime:
        return parse_instant(self.issue_time)

    def lead_times_s(self) -> list[float]:
        """The frames' lead times (s): 0, every, 2 every, ..., the horizon."""
        dur = self.hours * 3600.0
        every = min(self.output_every_s, dur)
        n = int(math.floor(dur / every + 1e-9))
        leads = [k * every for k in range(n + 1)]
        return leads if math.isclose(leads[-1], dur) else [*leads, dur]


# ----------------------------------------------------------------------------- gauges from the store
@dataclass(frozen=True)
class Gauge:
    """A water-level gauge of the sensor registry (thresholds in m, by severity name)."""

    station: str
    datastream: str
    lon: float
    lat: float
    thresholds: dict[str, float] = field(default_factory=dict)
    datum_m: float | None = None


@dataclass
class LiveInputs:
    """What a forecast takes from the store at its issue time."""

    rain: list[Any]  # hardware_bridge.fusion.Reading of the rain gauges in the window
    gauges: list[Gauge]
    levels: dict[str, tuple[datetime, float]]  # station -> (time, reading) latest before issue


def _severity(name: str) -> str:
    return name if name in SEVERITY_NAMES else "warning"


def gauge_thresholds(record: Mapping[str, Any], rules: tuple = ()) -> dict[str, float]:
    """Severity name -> level (m) of a gauge: its sensor ``thresholds`` and the bridge's ``level_m`` rules.

    A threshold named other than advisory/warning/alarm counts as a warning; the
    lowest level of each severity is kept.
    """
    out: dict[str, float] = {}
    pairs = [(_severity(str(k)), float(v)) for k, v in (record.get("thresholds") or {}).items()]
    pairs += [(r.severity.value, float(r.threshold)) for r in rules
              if r.metric == "level_m" and r.op in (">=", ">")]
    for sev, level in pairs:
        if math.isfinite(level):
            out[sev] = min(level, out.get(sev, level))
    return out


def live_inputs(store: Any, issue: datetime, *, rain_window_s: float, max_level_age_s: float,
                alert_config: Any = None) -> LiveInputs:
    """The rain readings of the window and the water-level gauges' latest readings before ``issue``.

    Positions come from the sensor registry (station id = sensor id); streams of
    stations without a registered position are left out.
    """
    from hardware_bridge.fusion import Reading
    from hardware_bridge.fusion.alerts import AlertEngine

    engine = AlertEngine(alert_config)
    records = store.sensor_records()
    t0 = issue - timedelta(seconds=rain_window_s)
    stop = issue + timedelta(microseconds=1)  # observations at the issue instant count
    rain, gauges, levels = [], [], {}
    for ds in store.datastreams():
        station, _, kind = ds.partition("/")
        rec = records.get(station)
        if rec is None or kind not in ("rain_gauge", "water_level"):
            continue
        if kind == "rain_gauge":
            for o in store.observations(ds, t0, stop):
                if o.value is not None:
                    rain.append(Reading(ds, kind, o.phenomenon_time, float(o.value), lon=rec["lon"],
                                        lat=rec["lat"], station=station, unit=o.unit))
            continue
        datum = (rec.get("properties") or {}).get("datum_m")
        gauges.append(Gauge(station, ds, float(rec["lon"]), float(rec["lat"]),
                            gauge_thresholds(rec, engine.rules_for("water_level", station)),
                            None if datum is None else float(datum)))
        recent = [o for o in store.observations(ds, issue - timedelta(seconds=max_level_age_s), stop)
                  if o.value is not None]
        if recent:
            levels[station] = (recent[-1].phenomenon_time, float(recent[-1].value))
    return LiveInputs(rain, gauges, levels)


# ----------------------------------------------------------------------------- rain
def forecast_rain(readings: list[Any], like: Any, issue: datetime, req: LiveForecastRequest
                  ) -> tuple[Any, dict[str, Any]]:
    """Gridded rain over the horizon from the gauges' recent rates (module docstring, step 1).

    Returns
    -------
    (physics.forcing.GriddedRain, dict)
        The rain on ``like``'s grid and its description (``recent_mm_h`` domain mean, gauges, mode).
    """
    import numpy as np

    from hardware_bridge.fusion.rain_grid import grid_rain
    from physics.forcing import GriddedRain

    shape = (like.sizes["y"], like.sizes["x"])
    recent = np.zeros(shape)
    n_gauges = 0
    if readings:
        da = grid_rain(readings, like, start=issue - timedelta(seconds=req.rain_window_s), end=issue,
                       block_s=req.rain_window_s)
        field_ = np.asarray(da.values[0], dtype=np.float64)
        n_gauges = int(da["n_gauges"].values[0])
        if n_gauges:
            recent = np.nan_to_num(field_, nan=0.0)
    dur = req.hours * 3600.0
    edges = np.arange(0.0, dur, req.rain_block_s)
    edges = np.append(edges, dur)
    mids = 0.5 * (edges[:-1] + edges[1:])
    factors = np.ones(mids.size) if req.rain_mode == "persist" else np.exp(-mids / req.decay_tau_s)
    rates = factors[:, None, None] * recent[None]
    info = {"name": f"gauges ({req.rain_mode})", "method": req.rain_mode, "gauges": n_gauges,
            "window_s": req.rain_window_s, "recent_mm_h": float(recent.mean()),
            "recent_max_mm_h": float(recent.max()), "duration_h": req.hours,
            "total_mm": float(np.sum(factors * np.diff(edges)) * recent.mean() / 3600.0)}
    return GriddedRain(edges, rates), info


# ----------------------------------------------------------------------------- initial state
def warm_depth(path: str | Path, at_s: float, shape: tuple[int, int], max_off_s: float) -> Any | None:
    """Depths of a previous forecast's frame nearest ``at_s`` (None: other grid, or no frame that near)."""
    import numpy as np
    import xarray as xr

    with xr.open_dataset(path) as ds:
        if "depth" not in ds or tuple(ds["depth"].shape[1:]) != tuple(shape):
            return None
        times = np.asarray(ds["time"].values, dtype=np.float64)
        k = int(np.argmin(np.abs(times - at_s)))
        if abs(times[k] - at_s) > max_off_s:
            return None
        return np.asarray(ds["depth"].isel(time=k).values, dtype=np.float64)


class _DepthState:
    """The fields a :class:`~hardware_bridge.fusion.levels.Nudger` reads and writes, on arrays."""

    def __init__(self, dem: Any, h0: Any) -> None:
        import numpy as np

        self.dem = dem
        self.h = np.asarray(h0, dtype=np.float64).copy()
        self.phi = np.isfinite(np.asarray(dem.values)).astype(np.float64)

    def get(self, name: str) -> Any:
        if name == "topographic__elevation":
            return self.dem
        values = self.h if name == "surface_water__depth" else self.phi
        return self.dem.copy(data=values.copy())

    def set(self, name: str, values: Any) -> None:
        import numpy as np

        self.h = np.asarray(values, dtype=np.float64)


def gauge_cells(gauges: list[Gauge], dem: Any) -> dict[str, tuple[int, int, float, float]]:
    """Station -> (row, col, x, y) of the open grid cell under each gauge (gauges off the grid left out)."""
    import numpy as np
    from pyproj import Transformer

    crs = dem.attrs.get("crs") or "EPSG:4547"
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xs, ys = np.asarray(dem["x"].values), np.asarray(dem["y"].values)
    half = 0.5 * abs(float(xs[1] - xs[0]))
    z = np.asarray(dem.values)
    out = {}
    for g in gauges:
        x, y = tr.transform(g.lon, g.lat)
        i, j = int(np.argmin(np.abs(xs - x))), int(np.argmin(np.abs(ys - y)))
        if abs(xs[i] - x) <= half and abs(ys[j] - y) <= half and np.isfinite(z[j, i]):
            out[g.station] = (j, i, float(x), float(y))
    return out


def nudge_depth(dem: Any, h0: Any, gauges: list[Gauge], levels: Mapping[str, tuple[datetime, float]],
                *, gain: float, radius_m: float | None = None) -> tuple[Any, dict[str, Any]]:
    """``h0`` nudged toward the gauges' latest readings (module docstring, step 3); (depths, what was done).

    ``radius_m`` None nudges each gauge's own cell only (the gauge is placed at its cell's centre
    with a radius of half a cell); a number nudges the open cells within that distance of the
    gauge's position. Of several gauges in one cell the first (by station) is used, the others
    are listed in ``skipped``.
    """
    import numpy as np

    from hardware_bridge.fusion.levels import Nudger

    cells = gauge_cells(gauges, dem)
    xs, ys = np.asarray(dem["x"].values), np.asarray(dem["y"].values)
    own_cell = radius_m is None
    radius = 0.5 * abs(float(xs[1] - xs[0])) if own_cell else float(radius_m)
    used, skipped, taken = [], [], set()
    for g in sorted((g for g in gauges if g.station in cells and g.station in levels), key=lambda g: g.station):
        (skipped if cells[g.station][:2] in taken else used).append(g)
        taken.add(cells[g.station][:2])
    info: dict[str, Any] = {"gauges": [g.station for g in used], "skipped": [g.station for g in skipped],
                            "gain": gain, "radius_m": radius, "own_cell": own_cell, "volume_m3": 0.0}
    if not used:
        return np.asarray(h0, dtype=np.float64), info
    state = _DepthState(dem, h0)
    where = {g.station: (float(xs[cells[g.station][1]]), float(ys[cells[g.station][0]])) if own_cell
             else cells[g.station][2:] for g in used}
    nudger = Nudger(state, where, radius_m=radius, gain=gain)
    z = np.asarray(dem.values, dtype=np.float64)
    eta = {}
    for g in used:
        j, i = cells[g.station][:2]
        eta[g.station] = levels[g.station][1] + (g.datum_m if g.datum_m is not None else z[j, i])
    res = nudger.nudge(eta)
    info.update(volume_m3=res.volume_m3, cells=res.cells, per_station=res.per_station)
    return state.h, info


# ----------------------------------------------------------------------------- the run kind
def _city(req: LiveForecastRequest, ctx: RunContext) -> Any:
    from twin.city import City

    city = ctx.city if ctx.city is not None else (req.city or "shenzhen")
    return City(city) if isinstance(city, str) else city


def run_live(req: LiveForecastRequest, ctx: RunContext) -> Any:
    """Build the live inputs (rain, warm start, nudging) and run the flood model over the horizon."""
    import numpy as np

    from physics.flood_city import flood_setup, run_city_flood
    from twin.domain import Domain
    from twin.store import Store

    city = _city(req, ctx)
    domain = Domain.from_city(city, resolution=req.resolution, districts=req.districts,
                              buffer_m=req.buffer_m)
    setup = flood_setup(domain, storm=0.0, hours=req.hours)
    dem = setup["dem"]
    issue = req.issue
    with Store.open_readonly(req.store) as store:
        live = live_inputs(store, issue, rain_window_s=req.rain_window_s,
                           max_level_age_s=req.max_level_age_s, alert_config=req.alert_config)
    rain, rain_info = forecast_rain(live.rain, dem, issue, req)
    setup["rain"] = rain
    fc = setup["context"]
    fc["storm"] = rain_info
    land = np.asarray(fc["land"], dtype=bool)
    h0 = np.asarray(setup["h0"], dtype=np.float64)
    warm = None
    if req.warm_start is not None and req.warm_start_s is not None:
        warm = warm_depth(req.warm_start, req.warm_start_s, dem.shape, req.output_every_s / 2)
        if warm is not None:
            h0 = np.where(land & np.isfinite(warm), np.nan_to_num(warm), h0)
    h0, nudge_info = nudge_depth(dem, h0, live.gauges, live.levels, gain=req.nudge_gain,
                                 radius_m=req.nudge_radius_m)
    setup["h0"] = h0
    ctx.extras["flood_context"] = fc
    ctx.extras["grid_shape"] = tuple(dem.shape)
    ctx.extras["forecast"] = {
        "issue_time": req.issue_time, "lead_times_s": req.lead_times_s(), "rain": rain_info,
        "warm_start_run": req.warm_start_run if warm is not None else None, "nudging": nudge_info,
        "gauges": live.gauges, "levels": live.levels, "cells": gauge_cells(live.gauges, dem),
    }
    duration = req.hours * 3600.0
    ctx.report(0.0, duration, message=f"forecast issued {req.issue_time} over {fc['label']}")

    def progress(p: dict[str, Any]) -> None:
        ctx.report(p["t"], duration, steps=p["steps"])

    ds = run_city_flood(setup, output_every_s=req.output_every_s, progress=progress)
    ds.attrs["title"] = f"Live flood forecast issued {req.issue_time} over {fc['label']}"
    ds.attrs["forecast_issue_time"] = req.issue_time
    return ds


def gauge_predictions(ds: Any, info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Station -> its predicted readings at the run's frames (``lead_s``, ``levels``, thresholds...)."""
    import numpy as np

    leads = [float(t) for t in np.asarray(ds["time"].values, dtype=np.float64)]
    out = {}
    for g in info["gauges"]:
        if g.station not in info["cells"]:
            continue
        j, i = info["cells"][g.station][:2]
        depth = np.asarray(ds["depth"].values[:, j, i], dtype=np.float64)
        if not np.all(np.isfinite(depth)):
            continue
        offset = 0.0 if g.datum_m is None else float(ds["elevation"].values[j, i]) - g.datum_m
        obs = info["levels"].get(g.station)
        out[g.station] = {
            "datastream": g.datastream, "lon": g.lon, "lat": g.lat, "lead_s": leads,
            "levels": [round(float(v) + offset, 6) for v in depth], "thresholds": g.thresholds,
            "observed": None if obs is None else {"time": iso(obs[0]), "value": obs[1]},
        }
    return out


def write_live(ds: Any, out_dir: Path, req: LiveForecastRequest, ctx: RunContext) -> RunOutputs:
    """The flood's outputs, ``forecast_gauges.csv`` and the ``forecast_issued`` event (``events.jsonl``)."""
    import pandas as pd

    from physics.flood_run import write_flood
    from twin.events import Event
    from twin.pipeline import write_run_events

    res = write_flood(ds, out_dir, req, ctx)
    info = ctx.extras["forecast"]
    gauges = gauge_predictions(ds, info)
    issue = req.issue
    rows = [{"station": s, "datastream": g["datastream"], "issue_time": req.issue_time, "lead_s": lead,
             "valid_time": iso(issue + timedelta(seconds=lead)), "predicted": level}
            for s, g in gauges.items() for lead, level in zip(g["lead_s"], g["levels"], strict=True)]
    table = pd.DataFrame(rows, columns=["station", "datastream", "issue_time", "lead_s", "valid_time",
                                        "predicted"])
    paths = dict(res.paths)
    paths["forecast_gauges"] = Path(out_dir) / GAUGES_CSV
    table.to_csv(paths["forecast_gauges"], index=False)
    forecast = {"issue_time": req.issue_time, "lead_times_s": info["lead_times_s"], "horizon_h": req.hours,
                "rain": info["rain"], "warm_start_run": info["warm_start_run"],
                "nudging": dict(info["nudging"]), "gauges": gauges}
    event = Event(time_s=0.0, wall_time=issue, kind=FORECAST_EVENT, source="forecast",
                  message=f"flood forecast issued {req.issue_time}, {req.hours:g} h ahead, "
                          f"{len(gauges)} gauge(s) predicted", data=forecast)
    write_run_events([event], out_dir)
    ctx.extras["forecast_issued"] = forecast
    summary = {**res.summary, "forecast": {k: v for k, v in forecast.items() if k != "gauges"}}
    return RunOutputs(paths=paths, summary=summary)


def _m(v: Any) -> str:
    return "–" if v is None else f"{float(v):.2f} m"


def forecast_section(forecast: Mapping[str, Any], alerts: list[tuple[str, Any]] | None = None) -> str:
    """HTML ``<section>`` of a forecast: issue time, rain, warm start, nudging, and each gauge's
    latest reading, thresholds and predicted peak (with the threshold it is predicted to reach)."""
    import html

    rain, nudging = forecast.get("rain") or {}, forecast.get("nudging") or {}
    facts = [
        ("issued", forecast.get("issue_time")),
        ("horizon", f"{forecast.get('horizon_h', 0):g} h, frames at "
                    + ", ".join(f"{t / 60:g}" for t in forecast.get("lead_times_s", [])) + " min"),
        ("rain", f"{rain.get('method', '–')} of the last {rain.get('window_s', 0) / 60:g} min of "
                 f"{rain.get('gauges', 0)} gauge(s): mean {rain.get('recent_mm_h', 0):.1f} mm/h, "
                 f"max {rain.get('recent_max_mm_h', 0):.1f} mm/h"),
        ("initial state", "dry land" if forecast.get("warm_start_run") is None
         else f"warm start from forecast run {forecast['warm_start_run']}"),
        ("nudging", f"{len(nudging.get('gauges', []))} gauge(s), gain {nudging.get('gain', '–')}, "
                    + ("own cell" if nudging.get("own_cell") else f"radius {nudging.get('radius_m', 0):g} m")
                    + f", water added {nudging.get('volume_m3', 0):,.0f} m³"),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    head = "".join(f"<th>{h}</th>" for h in ("gauge", "latest reading", "thresholds", "predicted peak",
                                             "at lead", "predicted to reach"))
    body = ""
    for station, g in sorted((forecast.get("gauges") or {}).items()):
        k = max(range(len(g["levels"])), key=lambda i: g["levels"][i])
        hit = predicted_crossing(g)
        thr = ", ".join(f"{sev} {v:g} m" for sev, v in sorted(g.get("thresholds", {}).items()))
        cells = [station, _m((g.get("observed") or {}).get("value")), thr or "–", _m(g["levels"][k]),
                 f"{g['lead_s'][k] / 60:g} min",
                 "–" if hit is None else f"{hit[0]} {hit[1]:g} m in {hit[2] / 60:g} min"]
        body += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
    return (f"<section><h2>Forecast</h2><table><tbody>{rows}</tbody></table>"
            f"<h3>Gauges</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>")


def live_report_sections(ds: Any, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The forecast section, then the flood report's sections."""
    from physics.flood_run import flood_report_sections

    forecast = (ctx.extras.get("forecast_issued") if ctx is not None else None) or summary.get("forecast") or {}
    return [forecast_section(forecast), *flood_report_sections(ds, summary, ctx)]


def describe_live(params: Mapping[str, Any]) -> str:
    where = ", ".join(params.get("districts") or []) or "whole city"
    return f"forecast issued {params.get('issue_time')}, {params.get('hours'):g} h ahead — {where}"


@cache
def live_kind() -> RunKind:
    """The run kind of a live forecast: the flood kind (name, outputs, layers, report) with this
    module's request, runner and writer. Not registered: its runs are stored as flood runs."""
    from physics.flood_run import FLOOD

    return replace(FLOOD, request=LiveForecastRequest, console_request=None, run=run_live, write=write_live,
                   report_sections=live_report_sections,
                   check=None, describe=describe_live, command=None,
                   duration_s=lambda req: req.hours * 3600.0)


# ----------------------------------------------------------------------------- one cycle
@dataclass(frozen=True)
class ForecastSettings:
    """What the loop keeps from cycle to cycle (``twin forecast`` options)."""

    store: Path | str
    runs_dir: Path | None = None
    every_s: float = 600.0
    horizon_s: float = 3 * 3600.0
    resolution: float = 250.0
    districts: tuple[str, ...] | None = None
    city: str = "shenzhen"
    rain_mode: str = "persist"
    decay_tau_s: float = 3600.0
    rain_window_s: float = 1800.0
    nudge_gain: float = 1.0
    nudge_radius_m: float | None = None
    realert_s: float = 3600.0
    alert_config: Path | None = None

    @property
    def runs(self) -> Path:
        from twin.cli.store_target import store_files_dir

        return Path(self.runs_dir) if self.runs_dir is not None else store_files_dir(self.store) / "runs"


@dataclass
class ForecastIssue:
    """One issued forecast: its run id and folder, the gauge predictions and the alerts written.

    The run's Dataset is not kept (a loop running for days would hold every one): read
    ``out_dir / "flood.nc"``.
    """

    run_id: int
    out_dir: Path
    issue_time: str
    warm_start_run: int | None
    gauges: dict[str, dict[str, Any]]
    alerts: list[Any]


def forecast_runs(store: Any) -> list[Any]:
    """The store's forecast runs (flood runs with ``params.forecast``), oldest first."""
    return [r for r in store.runs() if r.kind == KIND_NAME and isinstance(r.params.get("forecast"), dict)]


def forecast_history(store: Any) -> list[dict[str, Any]]:
    """Every forecast of the store, newest first: run id, issue time, status, horizon, warm start,
    gauges predicted and the ``forecast_threshold`` alerts it raised."""
    alerts: dict[int, int] = {}
    for e in store.events(kind=ALERT_KIND):
        run = e.data.get("run")
        if isinstance(run, int):
            alerts[run] = alerts.get(run, 0) + 1
    out = []
    for r in reversed(forecast_runs(store)):
        issued = issued_forecast(store, r.id)
        out.append({"run": r.id, "issue_time": r.params["forecast"].get("issue_time"), "status": r.status,
                    "horizon_h": r.params["forecast"].get("horizon_h"),
                    "districts": r.params.get("districts"), "resolution": r.params.get("resolution"),
                    "warm_start_run": issued.get("warm_start_run"), "gauges": len(issued.get("gauges", {})),
                    "alerts": alerts.get(r.id, 0)})
    return out


def previous_forecast(store: Any, runs_dir: Path, issue: datetime, *, resolution: float,
                      districts: list[str] | None) -> tuple[int, Path, float] | None:
    """(run id, its flood.nc, seconds from its issue time to ``issue``) of the warm start, or None.

    The newest finished forecast issued before ``issue`` on the same grid whose horizon reaches ``issue``.
    """
    from viz.console.runs import run_dir_name

    for r in reversed(forecast_runs(store)):
        p = r.params
        if r.status != "done" or p.get("resolution") != resolution or p.get("districts") != districts:
            continue
        offset = (issue - parse_instant(p["issue_time"])).total_seconds()
        path = runs_dir / run_dir_name(r.id) / "flood.nc"
        if 0 < offset <= float(p["hours"]) * 3600.0 and path.is_file():
            return r.id, path, offset
    return None


def issue_forecast(settings: ForecastSettings, issue: datetime, *, city: Any = None,
                   progress: Callable[[dict], None] | None = None) -> ForecastIssue:
    """Run one forecast cycle at ``issue`` (module docstring); the run is recorded in the store.

    Raises
    ------
    twin.errors.TwinError
        When the run fails (it is then recorded as failed).
    """
    from twin import pipeline
    from twin.store import Store
    from viz.console.runs import run_dir_name

    issue = parse_instant(issue, "issue_time")
    districts = list(settings.districts) if settings.districts else None
    with Store.open(settings.store) as store:
        prev = previous_forecast(store, settings.runs, issue, resolution=settings.resolution,
                                 districts=districts)
        req = live_kind().validate({  # a bad setting is a twin ValidationError naming the field
            "store": request_store(settings.store), "issue_time": iso(issue),
            "hours": settings.horizon_s / 3600.0, "resolution": settings.resolution, "districts": districts,
            "city": settings.city if city is None else None, "rain_mode": settings.rain_mode,
            "decay_tau_s": settings.decay_tau_s, "rain_window_s": settings.rain_window_s,
            "nudge_gain": settings.nudge_gain, "nudge_radius_m": settings.nudge_radius_m,
            "alert_config": None if settings.alert_config is None else str(Path(settings.alert_config).resolve()),
            "warm_start": None if prev is None else str(prev[1]), "warm_start_s": None if prev is None else prev[2],
            "warm_start_run": None if prev is None else prev[0]})
        tag = {"issue_time": req.issue_time, "lead_times_s": req.lead_times_s(), "horizon_h": req.hours,
               "warm_start_run": req.warm_start_run}
        # console_pid: the process running it, so a console starting meanwhile does not fail it as an orphan
        rid = store.start_run(KIND_NAME, {**pipeline.clean_json(req.model_dump()), "forecast": tag,
                                          "console_pid": os.getpid()})
        out_dir = settings.runs / run_dir_name(rid)
        status = "failed"
        try:
            pipeline.run(live_kind(), req, out_dir, city=city, store=store, run_id=rid, progress=progress)
            status = "done"
        finally:
            store.end_run(rid, status)
        issued = issued_forecast(store, rid)
        gauges = issued.get("gauges", {})
        alerts = forecast_alerts(store, rid, req.issue, gauges, realert_s=settings.realert_s)
    # the warm start the run really took (None when the previous forecast's grid or frames did not fit)
    return ForecastIssue(rid, out_dir, req.issue_time, issued.get("warm_start_run"), gauges, alerts)


def request_store(target: Path | str) -> str:
    """The store as a forecast request (and so the run's params, ``summary.json`` and report) keeps it: a
    directory resolved, a PostgreSQL URL without its password (never written to a file or the runs table).

    The password goes to ``PGPASSWORD`` (:func:`twin.cli.store_target.password_to_env`), where libpq finds it
    when the run opens the store again from the request; a masked ``:***@`` URL could not log in.
    """
    from twin.cli.store_target import password_to_env
    from twin.store import is_store_url

    if is_store_url(target):
        return str(password_to_env(target))
    return str(Path(target).resolve())


def issued_forecast(store: Any, run_id: int) -> dict[str, Any]:
    """The ``forecast_issued`` data of forecast run ``run_id`` (issue time, rain, warm start, gauges; {} if none)."""
    rows = store.run_event_rows(run_id, FORECAST_EVENT, limit=1)
    return rows[0].data if rows else {}


# ----------------------------------------------------------------------------- alerts
def predicted_crossing(g: Mapping[str, Any]) -> tuple[str, float, float, float] | None:
    """(severity, threshold, lead_s, predicted) of the highest threshold a gauge is predicted to reach.

    Only lead times > 0 count, and only thresholds its latest reading is below
    (a level already reached is the live bridge's alert). The lead is the first
    one reaching that threshold.
    """
    observed = (g.get("observed") or {}).get("value")
    best = None
    for sev, thr in (g.get("thresholds") or {}).items():
        if observed is not None and observed >= thr:
            continue
        for lead, level in zip(g["lead_s"], g["levels"], strict=True):
            if lead > 0 and level >= thr:
                rank = SEVERITY_NAMES.index(sev)
                if best is None or rank > SEVERITY_NAMES.index(best[0]):
                    best = (sev, float(thr), float(lead), float(level))
                break
    return best


def forecast_alerts(store: Any, run_id: int, issue: datetime, gauges: Mapping[str, Mapping[str, Any]],
                    *, realert_s: float = 3600.0) -> list[Any]:
    """Write a ``forecast_threshold`` live event per gauge predicted to cross a threshold (module docstring)."""
    from twin.events import Event

    earlier = store.events(kind=ALERT_KIND)
    out = []
    for station, g in gauges.items():
        hit = predicted_crossing(g)
        if hit is None:
            continue
        sev, thr, lead, level = hit
        same = [e for e in earlier if e.source == g["datastream"] and e.severity.value == sev
                and 0 <= (issue - parse_instant(e.data.get("issue_time", iso(e.wall_time)))).total_seconds()
                < realert_s]
        if same:
            continue
        valid = issue + timedelta(seconds=lead)
        event = Event(
            time_s=issue.timestamp(), wall_time=issue, kind=ALERT_KIND, source=g["datastream"], severity=sev,
            message=(f"FORECAST: {station} predicted to reach {level:.2f} m (threshold {thr:g} m, {sev}) "
                     f"in {lead / 60:.0f} min, at {iso(valid)} (forecast run {run_id})"),
            data={"forecast": True, "run": run_id, "station": station, "issue_time": iso(issue),
                  "lead_s": lead, "valid_time": iso(valid), "predicted_m": level, "threshold_m": thr,
                  "observed_m": (g.get("observed") or {}).get("value"), "lon": g.get("lon"),
                  "lat": g.get("lat")})
        store.put_event(event)
        out.append(event)
    return out


# ----------------------------------------------------------------------------- the loop
class ForecastLoop:
    """Issue a forecast every ``settings.every_s`` (wall clock, or a simulated clock).

    Parameters
    ----------
    settings : ForecastSettings
    now : callable() -> datetime, optional
        The clock (default: the wall clock, UTC).
    sleep : callable(seconds), optional
        How to wait until the next issue time (default :func:`time.sleep`).
    skip_missed : bool
        On the wall clock, an issue time more than one interval past (a forecast took longer
        than ``every_s``) is skipped, so the loop catches up instead of queueing stale
        forecasts. False for a simulated clock (every issue time is run).
    city : twin.city.City, optional
        The city (default: ``settings.city``).
    issue : callable(settings, issue time, city=) -> ForecastIssue
        One cycle (default :func:`issue_forecast`).
    """

    def __init__(self, settings: ForecastSettings, *, now: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] | None = None, skip_missed: bool = True,
                 city: Any = None, issue: Callable[..., ForecastIssue] | None = None) -> None:
        self.settings = settings
        self.issue = issue or issue_forecast
        self.now = now or (lambda: datetime.now(UTC))
        self.sleep = sleep or time.sleep
        self.skip_missed = skip_missed
        self.city = city

    def issue_times(self, first: datetime, until: datetime | None = None) -> Iterator[datetime]:
        """``first``, ``first + every``, ... (up to ``until``, inclusive)."""
        t = parse_instant(first, "first issue time")
        while until is None or t <= until:
            yield t
            t += timedelta(seconds=self.settings.every_s)

    def run(self, first: datetime | None = None, until: datetime | None = None, *, once: bool = False,
            on_issue: Callable[[ForecastIssue], None] | None = None,
            on_error: Callable[[datetime, Exception], None] | None = None) -> list[ForecastIssue]:
        """Issue forecasts from ``first`` (default now), waiting for each issue time on the clock.

        A cycle that fails with a :class:`twin.errors.TwinError` (its run is recorded as
        failed) goes to ``on_error`` and the loop goes on; without ``on_error``, or with
        ``once``, it is raised.
        """
        from twin.errors import TwinError

        out = []
        for t in self.issue_times(first or self.now(), until):
            late = (self.now() - t).total_seconds()
            if late < 0:
                self.sleep(-late)
            elif self.skip_missed and late > self.settings.every_s and not once:
                continue
            try:
                issued = self.issue(self.settings, t, city=self.city)
            except TwinError as exc:
                if on_error is None or once:
                    raise
                on_error(t, exc)
                continue
            out.append(issued)
            if on_issue is not None:
                on_issue(issued)
            if once:
                break
        return out


__all__ = ["ALERT_KIND", "FORECAST_EVENT", "ForecastIssue", "ForecastLoop", "ForecastSettings", "Gauge",
           "LiveForecastRequest", "forecast_alerts", "forecast_history", "forecast_rain", "forecast_runs", "gauge_predictions",
           "issue_forecast", "issued_forecast", "live_inputs", "live_kind", "nudge_depth", "parse_duration",
           "forecast_section", "parse_instant", "predicted_crossing", "previous_forecast", "run_live", "warm_depth", "write_live"]
