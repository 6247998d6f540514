"""The tunnel coupling: a construction plan's vibration at the metro tunnels, on the run's one clock.

Set-up: the tunnels of the metro lines (:func:`physics.tunnel_geometry.build_tunnels`, ``lines`` of them,
every line by default, cut every ``segment_m`` m) and the plan's sources
(:func:`physics.tunnel_vibration.read_sources`: a bad plan is refused before the run, naming the feature,
field and value). Every ``period_s`` (default 3600 s) — and at t = 0 — the PPV at every segment's lining
from the sources working at the run's instant ``clock.at(t)`` (each source's ``start``/``end``; one
without them works all the time) is :func:`physics.tunnel_vibration.forecast_vibration` with ``at``, so
the coupled run and ``twin tunnel forecast --at`` give the same figures for the same instant.

Each step keeps per segment the largest PPV/limit so far (``ratio_max``, with its time) and emits one
``tunnel_vibration`` event (warning) when segments cross their limit that were not over it at the last
step: ``n`` segments, the worst one's ``line``, ``chainage_m``, ``ratio``, ``ppv_cm_s``, ``source`` and
``lon``/``lat`` (the segment's middle, so the console's alert layer draws it there), ``t_s``. The tunnels
are shared as ``tunnels`` (for a fibre's chainage → map point).

Parameters (those of ``twin tunnel forecast``): ``sources`` (a GeoJSON path, required), ``lines``,
``limits`` (``operating`` | ``construction``), ``segment_m``, ``limits_file``, ``depth_m``, ``diameter_m``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("sources", "lines", "limits", "segment_m", "limits_file", "depth_m", "diameter_m")
#: Per-segment arrays a checkpoint keeps.
STATE = ("ratio_max", "t_max", "over_now", "ever_over")


def tunnel_from_scenario(section: dict[str, Any], scenario: Any = None) -> dict[str, Any]:
    """The coupling's parameters from a ``[models.tunnel_forecast]`` section; its sources are read and
    checked here, so a bad plan stops the scenario before any run starts."""
    params = {k: v for k, v in section.items() if k in PARAMS and v is not None}
    _check(params)
    return params


def _check(params: dict[str, Any]) -> None:
    from physics.tunnel_vibration import read_sources

    bad = sorted(k for k in params if k not in PARAMS)
    if bad:
        raise ValidationError(f"couplings.tunnel: unknown parameter(s) {bad}; allowed: {list(PARAMS)}")
    if not params.get("sources"):
        raise ValidationError("couplings.tunnel: sources is missing; give the construction plan's GeoJSON "
                              "(e.g. physics/data/tunnel_examples/line1_construction_plan.geojson)")
    if params.get("limits", "operating") not in ("operating", "construction"):
        raise ValidationError(f"couplings.tunnel: limits={params['limits']!r}; use 'operating' or 'construction'")
    read_sources(params["sources"])  # raises with the feature, field and value


def setup_tunnel(ctx: CouplingContext) -> None:
    """Build the tunnels, read the plan, evaluate t = 0 and share the tunnels."""
    from physics.tunnel_geometry import build_tunnels, metro_lines
    from physics.tunnel_vibration import read_sources

    p = dict(ctx.params)
    _check(p)
    kw = {k: float(p[k]) for k in ("depth_m", "diameter_m") if k in p}
    tunnels = build_tunnels(metro_lines(ctx.city), select=p.get("lines"), segment_m=float(p.get("segment_m", 50.0)),
                            **kw)
    n_src = len(read_sources(p["sources"])["id"])
    ctx.add_input("tunnel_sources", p["sources"])
    n = tunnels.n_segments
    ctx.own.update(tunnels=tunnels, ratio_max=np.zeros(n), t_max=np.full(n, np.nan),
                   over_now=np.zeros(n, bool), ever_over=np.zeros(n, bool), series=[], last=None)
    ctx.shared["tunnels"] = tunnels
    ctx.summary.update(segments=int(n), sources=int(n_src), limits=p.get("limits", "operating"),
                       lines=list(tunnels.lines))
    _evaluate(ctx, ctx.state.clock.now_s)


def step_tunnel(ctx: CouplingContext, t: float, dt: float) -> None:
    """The PPV at every lining from the sources working at ``t``; new exceedances as an event."""
    _evaluate(ctx, t)


def _forecast(ctx: CouplingContext, t: float):
    from physics.tunnel_vibration import forecast_vibration

    p = ctx.params
    return forecast_vibration(p["sources"], tunnels=ctx.own["tunnels"], limits=p.get("limits", "operating"),
                              at=ctx.state.clock.at(t), limits_file=p.get("limits_file"))


def _evaluate(ctx: CouplingContext, t: float) -> None:
    o = ctx.own
    ds = _forecast(ctx, t)
    ratio = ds["ratio"].values.astype(np.float64)
    over = ratio > 1.0
    higher = ratio > o["ratio_max"]
    o["ratio_max"] = np.where(higher, ratio, o["ratio_max"])
    o["t_max"] = np.where(higher, float(t), o["t_max"])
    new = over & ~o["over_now"]
    o["over_now"] = over
    o["ever_over"] = o["ever_over"] | over
    o["last"] = ds
    o["series"].append([float(t), int(ds.attrs["n_active"]), int(over.sum()), float(ratio.max(initial=0.0))])
    if new.any():
        _emit(ctx, ds, new, t)


def _emit(ctx: CouplingContext, ds, new: np.ndarray, t: float) -> None:
    idx = np.flatnonzero(new)
    k = int(idx[np.argmax(ds["ratio"].values[idx])])
    seg = ds.isel(segment=k)
    src = int(seg["source_index"])
    name = str(ds["source_id"].values[src]) if src >= 0 else None
    lon = 0.5 * (float(seg["lon0"]) + float(seg["lon1"]))
    lat = 0.5 * (float(seg["lat0"]) + float(seg["lat1"]))
    chain = 0.5 * (float(seg["chainage_start_m"]) + float(seg["chainage_end_m"]))
    ratio, ppv = float(seg["ratio"]), float(seg["ppv_cm_s"])
    ctx.emit("tunnel_vibration",
             f"{idx.size} tunnel segment(s) over the vibration limit; worst {seg['line'].item()} chainage "
             f"{chain:.0f} m: {ppv:.2f} cm/s = {ratio:.2f}× the limit (source {name})", severity="warning",
             data={"n": int(idx.size), "line": str(seg["line"].item()), "chainage_m": chain, "ratio": ratio,
                   "ppv_cm_s": ppv, "limit_cm_s": float(seg["limit_cm_s"]), "source": name,
                   "lon": lon, "lat": lat, "t_s": float(t)})


def finish_tunnel(ctx: CouplingContext) -> None:
    o = ctx.own
    ever = o["ever_over"]
    worst = int(np.argmax(o["ratio_max"])) if o["ratio_max"].size else -1
    ctx.summary.update(segments_ever_over=int(ever.sum()), max_ratio=float(o["ratio_max"].max(initial=0.0)),
                       max_ratio_t_s=None if worst < 0 or not np.isfinite(o["t_max"][worst])
                       else float(o["t_max"][worst]), by_step=o["series"])


def save_tunnel(ctx: CouplingContext) -> dict:
    """Per segment the largest ratio so far, its time and the over-limit flags; the step series."""
    o = ctx.own
    return {**{k: np.array(o[k], copy=True) for k in STATE}, "series": [list(r) for r in o["series"]]}


def restore_tunnel(ctx: CouplingContext, saved: dict) -> None:
    """Put a :func:`save_tunnel` state back (the tunnels and plan are rebuilt by ``setup``)."""
    o = ctx.own
    for k in STATE:
        o[k] = np.asarray(saved[k]).astype(bool if k in ("over_now", "ever_over") else np.float64)
    o["series"] = [list(r) for r in saved["series"]]


def envelope(ctx: CouplingContext):
    """The forecast of every source of the plan (``at`` None) with ``ratio``/``over_limit`` replaced by the
    run's largest ratio per segment over its steps: what the run's map and table show."""
    import xarray as xr

    from physics.tunnel_vibration import forecast_vibration

    p, o = ctx.params, ctx.own
    ds = forecast_vibration(p["sources"], tunnels=o["tunnels"], limits=p.get("limits", "operating"),
                            limits_file=p.get("limits_file"))
    ds["ratio"] = xr.DataArray(o["ratio_max"], dims="segment",
                               attrs={"units": "1", "long_name": "largest PPV/limit over the run's steps"})
    ds["over_limit"] = ds["ratio"] > 1.0
    ds.attrs.update(n_over_limit=int(o["ever_over"].sum()), max_ratio=float(o["ratio_max"].max(initial=0.0)))
    return ds


def tunnel_layers(ctx: CouplingContext, times_s) -> list:
    """The tunnels by their largest PPV/limit over the run, the zone and the sources
    (:func:`viz.layers.tunnel.tunnel_layers`)."""
    from viz.layers.tunnel import tunnel_layers as layers

    return layers(envelope(ctx))


def tunnel_tables(ctx: CouplingContext) -> dict:
    """``tunnel_segments``: every segment that went over its limit in the run (GeoParquet)."""
    from physics.tunnel_vibration import segments_frame

    frame = segments_frame(envelope(ctx))
    return {"tunnel_segments": frame[frame["over_limit"]].reset_index(drop=True)}


def tunnel_report(ctx: CouplingContext) -> list[str]:
    """One HTML section: segments checked and over the limit, the largest ratio, the step table."""
    s = ctx.summary
    rows = "".join(f"<tr><td>{t / 3600.0:g}</td><td>{a}</td><td>{n:,}</td><td>{r:.2f}</td></tr>"
                   for t, a, n, r in s.get("by_step", []))
    return [f"<section><h2>Metro tunnel vibration</h2><p>{s.get('segments', 0):,} segments of "
            f"{', '.join(s.get('lines', []))} checked against the {s.get('limits')} limits; "
            f"{s.get('segments_ever_over', 0):,} went over at some step; largest PPV/limit "
            f"{s.get('max_ratio', 0.0):.2f}.</p><table><tr><th>t (h)</th><th>sources working</th>"
            f"<th>segments over</th><th>largest ratio</th></tr>{rows}</table></section>"]


register_coupling(Coupling(
    name="tunnel", phase="physics", period_s=3600.0,
    reads=(),
    writes=("tunnels", "event:tunnel_vibration"),
    setup=setup_tunnel, step=step_tunnel, finish=finish_tunnel, save=save_tunnel, restore=restore_tunnel,
    kinds=("tunnel_forecast",), from_scenario=tunnel_from_scenario, layers=tunnel_layers, tables=tunnel_tables,
    report=tunnel_report,
    doc="construction vibration at the metro tunnels (GB 6722, Bornitz) from the plan's working sources"))
