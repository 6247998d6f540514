"""The flood coupling: the city flood model stepped on the run's clock, depth and speed in the state.

Builds :class:`physics.flood.FloodModel` on the run's grid with
:func:`physics.flood_city.flood_setup` (the set-up of ``twin flood run``:
sea, outflow edge, pits, Manning's n, drainage) and the run's one rain,
``ctx.shared["rain"]`` of the ``rain`` coupling (:mod:`scenarios.couplings.rain`:
the storm, rate or rain file, scaled and shifted there), and, every
``period_s`` (default 60 s), steps it and writes to the state:

* ``water_depth`` (m), ``water_speed`` (m/s): NaN on sea and blocked cells,
  as in ``flood.nc``;
* ``max_water_depth`` (m): the maximum so far, NaN likewise;

each computed from the model only when something reads it (the roads, the
output frames: :meth:`twin.state.TwinState.defer_field`).

Parameters (the config's ``couplings.flood``): every keyword of
:func:`physics.flood_city.flood_setup` but the rain's (``hours`` — the
length of the tide series, default the run's duration —, ``tide``,
``surge_m``, ``surge_peak_h``, ``drainage_mm_h``, Manning's n...),
``wave_depth_cap_m`` and ``frame_every_s`` (s, default 600: the depth
frames the coupling keeps for its map layer). Rain parameters (``storm``,
``method``, ``peak_fraction``, ``rain_mm_h``...) are refused with a pointer to
the ``rain`` coupling.

Map layers (:func:`flood_layers`): the depth frames (one slider), the
maximum depth and the arrival time (:func:`physics.flood_run.flood_layers`).
Report: one section, maximum depth, flooded area and the volume balance.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ClockError, ValidationError

MODEL_KEYS = ("wave_depth_cap_m",)
#: flood_setup's rain keywords and the other rain parameters: the rain coupling's, refused here.
RAIN_KEYS = ("storm", "method", "peak_fraction", "rain_mm_h", "rain_file", "storm_hours", "rain_scale",
             "shift_s")
#: The scenario's grid keys: the translation puts them on the run's grid, not on the model.
GRID_KEYS = ("resolution", "buffer_m")
FRAME_EVERY_S = 600.0
#: Depth (m) from which a land cell counts as flooded in the summary and the report.
FLOODED_M = 0.15


def _setup_keys() -> list[str]:
    """flood_setup's keywords but the domain and the rain's."""
    from physics.flood_city import flood_setup

    return [p for p in inspect.signature(flood_setup).parameters if p != "domain" and p not in RAIN_KEYS]


def flood_from_scenario(section: dict[str, Any], scenario: Any = None) -> dict[str, Any]:
    """The flood's parameters from a scenario's ``[models.flood_forecast]`` section (with its shared values).

    Keeps what :func:`physics.flood_city.flood_setup` takes besides the rain
    (the rain is the ``rain`` coupling's), ``wave_depth_cap_m`` and
    ``drainage_mm_h``; maps the scenario's ``tide_m`` to ``tide``; drops the
    grid keys (``resolution``, ``buffer_m``: the run's grid) and the rest.
    """
    keys = set(_setup_keys()) | set(MODEL_KEYS) | {"frame_every_s"}
    out = {k: v for k, v in section.items() if k in keys and v is not None}
    every = getattr(getattr(scenario, "outputs", None), "frame_every", None)
    if every and "frame_every_s" not in out:  # the run's frames: the map's slider
        out["frame_every_s"] = float(every)
    if section.get("tide_m") is not None and "tide" not in out:
        out["tide"] = float(section["tide_m"])
    return out


def _check_params(params: dict[str, Any]) -> None:
    rain = sorted(k for k in params if k in RAIN_KEYS)
    allowed = _setup_keys() + list(MODEL_KEYS) + ["frame_every_s"]
    bad = sorted(k for k in params if k not in allowed and k not in RAIN_KEYS)
    problems = []
    if rain:
        problems.append(f"rain parameter(s) {rain} belong to the rain coupling: give them as "
                        "couplings.rain (e.g. {\"rain\": {\"storm\": \"2023-09-07\"}, \"flood\": {...}}); "
                        "the flood takes the run's one rain from it")
    if bad:
        problems.append(f"unknown parameter(s) {bad}; allowed: {sorted(allowed)}")
    if problems:
        raise ValidationError("couplings.flood: " + "; ".join(problems))


def setup_flood(ctx: CouplingContext) -> None:
    """Build the model on ``ctx.domain`` and publish its starting fields."""
    from physics.flood import FloodModel
    from physics.flood_city import flood_setup, model_kwargs

    params = dict(ctx.params)
    _check_params(params)
    if ctx.domain is None:
        raise ValidationError("couplings.flood: the run has no grid (domain); give the run an area")
    if "rain" not in ctx.shared:
        raise ValidationError("couplings.flood: no shared rain; enable the rain coupling "
                              "(couplings.rain) before the flood")
    model_opts = {k: params.pop(k) for k in MODEL_KEYS if k in params}
    every = params.pop("frame_every_s", FRAME_EVERY_S)
    if isinstance(every, bool) or not isinstance(every, int | float) or not (math.isfinite(every) and every > 0):
        raise ValidationError(f"couplings.flood.frame_every_s={every!r}: give a finite number of seconds > 0")
    if ctx.duration_s is not None:
        params.setdefault("hours", ctx.duration_s / 3600.0)
    setup = flood_setup(ctx.domain, storm=ctx.shared["rain"], **params)
    model = FloodModel(**model_kwargs(setup), **model_opts)
    model.warm_up()
    ctx.own.update(model=model, land=np.asarray(setup["context"]["land"], bool), setup=setup,
                   frame_every_s=float(every), frame_times=[], frames=[])
    ctx.summary.update(storm=setup["context"]["storm"], hours=setup["context"]["hours"])
    _publish(ctx)
    _keep_frame(ctx)


def step_flood(ctx: CouplingContext, t: float, dt: float) -> None:
    """Advance the model by ``dt`` to ``t`` and publish depth, speed and maximum depth."""
    model = ctx.own["model"]
    model.step(dt)
    if not math.isclose(model.t, t, rel_tol=0.0, abs_tol=1e-6):
        raise ClockError(f"flood model at t={model.t!r} s after stepping to the clock's t={t!r} s")
    _publish(ctx)
    _keep_frame(ctx)


def _keep_frame(ctx: CouplingContext) -> None:
    """Keep the depth (float32, NaN off land) when the model's time is a multiple of ``frame_every_s``."""
    model, every = ctx.own["model"], ctx.own["frame_every_s"]
    k = model.t / every
    if abs(k - round(k)) > 1e-9 or (ctx.own["frame_times"] and ctx.own["frame_times"][-1] >= model.t):
        return
    ctx.own["frame_times"].append(float(model.t))
    # the published depth (NaN off land), computed once for this frame and the run's frame of the instant
    ctx.own["frames"].append(np.asarray(ctx.state.field("water_depth").values).astype(np.float32))


def _publish(ctx: CouplingContext) -> None:
    """Depth, speed and maximum depth of the model as it is now, computed when read.

    Deferred (:meth:`twin.state.TwinState.defer_field`): the fields are set
    after every step but read every few (the roads' period, the output
    frames), and the speed costs about as much as a dry step. The values are
    those of the model when published: only :func:`step_flood` and
    :func:`restore_flood` change it, and both publish again.
    """
    model, land = ctx.own["model"], ctx.own["land"]
    st = ctx.state
    # astype(copy=False): no copy of a float64 model's arrays before np.where makes its own
    st.defer_field("water_depth", lambda: np.where(land, model.h.astype(np.float64, copy=False), np.nan),
                   "m", "water depth")
    st.defer_field("water_speed", lambda: np.where(land, model.speed(), np.nan), "m s-1", "flow speed")
    st.defer_field("max_water_depth",
                   lambda: np.where(land, model.hmax.astype(np.float64, copy=False), np.nan), "m",
                   "maximum water depth so far")


def finish_flood(ctx: CouplingContext) -> None:
    model, land = ctx.own["model"], ctx.own["land"]
    h = np.where(land, model.h, 0.0)
    bal = model.balance()
    ctx.summary.update(
        steps=int(model.n_steps), max_depth_m=float(np.max(np.where(land, model.hmax, 0.0))),
        flooded_area_m2=float(np.count_nonzero(h >= FLOODED_M) * model.cell_area),
        ever_flooded_area_m2=float(np.count_nonzero(np.where(land, model.hmax, 0.0) >= FLOODED_M)
                                   * model.cell_area),
        volume_relative_error=float(bal.get("relative_error", float("nan"))),
        volumes_m3={k: float(v) for k, v in bal.items() if k not in ("relative_error",)})


def save_flood(ctx: CouplingContext) -> dict:
    """The model's state (:meth:`physics.flood.FloodModel.checkpoint`: depths, discharges, maxima,
    arrival times, cumulative volumes, counters) and the depth frames kept so far."""
    m = ctx.own["model"]
    out = m.checkpoint()
    frames = ctx.own["frames"]
    out["frame_times"] = list(ctx.own["frame_times"])
    out["frames"] = np.stack(frames) if frames else np.zeros((0, *m.h.shape), np.float32)
    return out


def restore_flood(ctx: CouplingContext, saved: dict) -> None:
    """Put a :func:`save_flood` state back into the freshly built model and publish it."""
    ctx.own["model"].restore(saved)
    ctx.own["frame_times"] = [float(t) for t in saved.get("frame_times", [])]
    ctx.own["frames"] = [np.asarray(f, np.float32) for f in saved.get("frames", [])]
    _publish(ctx)


# ----------------------------------------------------------------------------- outputs
def frames_dataset(ctx: CouplingContext, times_s=None):
    """The kept depth frames, maximum depth and arrival time as a Dataset of the flood run's names
    (``depth``, ``max_depth``, ``arrival_time``).

    With ``times_s``, one frame per time: the kept frame at that time, or the nearest kept one
    when the run's frames are not on the flood's ``frame_every_s`` (its ``time`` is then ``times_s``).
    """
    import xarray as xr

    model, land, dom = ctx.own["model"], ctx.own["land"], ctx.domain
    kept = np.asarray(ctx.own["frame_times"], float)
    times, idx = kept, list(range(kept.size))
    if times_s is not None and kept.size:
        times = np.asarray(list(times_s), float)
        idx = [int(np.argmin(np.abs(kept - t))) for t in times]
    ds = xr.Dataset(coords={"time": ("time", times, {"units": "s"}), "y": ("y", dom.y), "x": ("x", dom.x)})
    if idx:
        ds["depth"] = (("time", "y", "x"), np.stack([ctx.own["frames"][i] for i in idx]),
                       {"units": "m", "long_name": "water depth"})
    ds["max_depth"] = (("y", "x"), np.where(land, model.hmax, np.nan).astype(np.float32),
                       {"units": "m", "long_name": "maximum depth"})
    ds["arrival_time"] = (("y", "x"), np.where(land, model.tarr, np.nan).astype(np.float32),
                          {"units": "s", "long_name": f"first time depth >= {model.h_arrive} m (NaN: never)"})
    ds.attrs.update(crs=dom.crs, transform=tuple(float(v) for v in tuple(dom.transform)[:6]))
    return ds


def flood_layers(ctx: CouplingContext, times_s) -> list:
    """Depth frames on the run's frame times (every one: one slider), maximum depth and arrival
    time: the layers of ``twin flood run``'s map (:func:`physics.flood_run.flood_layers`)."""
    from viz.layers import build
    from viz.layers._raster import MAX_PX, MercatorWarp

    ds = frames_dataset(ctx, times_s)
    warp = MercatorWarp.for_grid(ds, max_px=MAX_PX)
    sets = []
    if "depth" in ds:
        sets.append(build("flood_depth", ds, warp=warp, max_frames=max(2, ds.sizes["time"])))
    sets.append(build("flood_max_depth", ds, warp=warp, legend="depth" not in ds))
    sets.append(build("flood_arrival", ds, warp=warp))
    return sets


def flood_report(ctx: CouplingContext) -> list[str]:
    """One HTML section: maximum depth, flooded area (now and ever) and the volume balance."""
    from html import escape

    s = ctx.summary
    vols = s.get("volumes_m3", {})
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{v:,.0f}</td></tr>" for k, v in vols.items()
                   if k not in ("error",))
    return [f"<section><h2>Flood</h2><p>Maximum depth {s.get('max_depth_m', 0.0):.2f} m; land at least "
            f"{FLOODED_M:g} m deep: {s.get('flooded_area_m2', 0.0) / 1e6:.3f} km² at the end, "
            f"{s.get('ever_flooded_area_m2', 0.0) / 1e6:.3f} km² at some time. Volume balance: relative "
            f"error {s.get('volume_relative_error', float('nan')):.1e}.</p>"
            f"<table><tr><th>term</th><th>volume (m³)</th></tr>{rows}</table></section>"]


register_coupling(Coupling(
    name="flood", phase="physics", period_s=60.0,
    reads=("rain",), writes=("water_depth", "water_speed", "max_water_depth"),
    setup=setup_flood, step=step_flood, finish=finish_flood, save=save_flood, restore=restore_flood,
    kinds=("flood_forecast",), from_scenario=flood_from_scenario, layers=flood_layers, report=flood_report,
    doc="2-D flood model (physics.flood) on the run's grid, on the run's rain: depth and speed every period"))
