"""The slope coupling: the transient factor of safety on the run's grid, under the run's one rain.

Set-up: :func:`physics.slope_city.slope_setup` on the run's grid (soil
table, zones, fills: the set-up of ``twin slope run``), and the rain of the
``rain`` coupling (``ctx.shared["rain"]``) as the kernel's piecewise-constant
series (m/s; a gridded rain per modelled cell). Every ``period_s`` (default
3600 s) — and at t = 0 — the factor of safety at ``t`` over a profile of
``n_depths`` depths is evaluated from the rain history up to ``t``
(:func:`physics.slope_run.evaluate_fs` with the single time ``t``: the
Iverson (2000) kernel of :mod:`physics._kernels.slope`, whose step
superposition sees only the rain before ``t``), and written to the state:

* ``factor_of_safety``: the minimum FS over depths at ``t`` (NaN where not modelled);
* ``min_factor_of_safety``: its minimum over the steps so far (at hourly
  steps, ``twin slope run``'s ``fs_min`` at that hour);
* ``slope_failed``: 1.0 where FS < 1 at some step so far, else 0;
* ``slip_depth``: the depth (m) of the minimum FS of the failed cells (the
  slip surface: what the ``debris`` coupling releases), 0 elsewhere;

and each step with new failures emits one ``slope_failure`` event
(warning): ``n``, ``area_m2``, ``lon``/``lat`` of the new cells' centroid,
``cells`` (up to :data:`MAX_EVENT_CELLS` ``[lon, lat]``) and ``t_s``.
The set-up is shared as ``slope_setup`` (the ``debris`` coupling routes on
its elevation, fills included).

Parameters: ``soils`` (a soil table TOML), ``zones``, ``fills`` (GeoJSON
with ``thickness_m``), ``dhat``, ``min_slope_deg``, ``i_lt_mm_h`` (those of
:func:`~physics.slope_city.slope_setup`) and ``n_depths`` (default 10).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("soils", "zones", "fills", "dhat", "min_slope_deg", "i_lt_mm_h", "n_depths")
N_DEPTHS = 10
MAX_EVENT_CELLS = 200
#: Per-cell arrays a checkpoint keeps (modelled cells, in the set-up's order).
STATE = ("fs", "fs_min", "z_min", "t_fail", "failed")


def slope_from_scenario(section: dict[str, Any], scenario: Any = None) -> dict[str, Any]:
    """The slope's parameters from a ``[models.slope_forecast]`` section and the scenario's
    ``hazards.slope`` (``zones``, ``fills``, passed down as shared values); the rest dropped."""
    return {k: v for k, v in section.items() if k in PARAMS and v is not None}


def _check(params: dict[str, Any]) -> int:
    bad = sorted(k for k in params if k not in PARAMS)
    n = params.get("n_depths", N_DEPTHS)
    problems = [f"unknown parameter(s) {bad}; allowed: {list(PARAMS)}"] if bad else []
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:
        problems.append(f"n_depths={n!r}: give an integer from 1 to 100")
    if problems:
        raise ValidationError("couplings.slope: " + "; ".join(problems))
    return int(n)


def kernel_rain(rain, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's ``(rain (n_int, 1 or n_cells) m/s, t_edges s)`` of a uniform or gridded Rain."""
    from physics.forcing import MM_PER_H, GriddedRain, UniformRain

    t_edges = np.asarray(rain.times, np.float64)
    if isinstance(rain, GriddedRain):  # rates in m/s, (n_int, ny, nx)
        flat = rain.rates.reshape(rain.rates.shape[0], -1)[:, cells]
        return np.ascontiguousarray(flat, np.float64), t_edges
    if isinstance(rain, UniformRain):  # rates in mm/h
        return np.ascontiguousarray(np.asarray(rain.rates, np.float64)[:, None] * MM_PER_H), t_edges
    raise ValidationError(f"couplings.slope: the run's rain is a {type(rain).__name__}; the slope takes a "
                          "uniform or gridded rain (a design storm, a rate or a rain file)")


def setup_slope(ctx: CouplingContext) -> None:
    """Build the per-cell parameters, take the run's rain, evaluate t = 0 and publish."""
    from physics.slope_city import slope_setup

    params = dict(ctx.params)
    n_depths = _check(params)
    if ctx.domain is None:
        raise ValidationError("couplings.slope: the run has no grid (domain); give the run an area")
    if "rain" not in ctx.shared:
        raise ValidationError("couplings.slope: no shared rain; enable the rain coupling (couplings.rain)")
    kw = {k: params[k] for k in ("zones", "fills", "dhat", "min_slope_deg", "i_lt_mm_h") if k in params}
    setup = slope_setup(ctx.domain, table=params.get("soils"), **kw)
    for role in ("soils", "zones", "fills"):
        if isinstance(params.get(role), str):
            ctx.add_input(f"slope_{role}", params[role])
    rain, t_edges = kernel_rain(ctx.shared["rain"], setup["cells"])
    n = setup["cells"].size
    ctx.own.update(setup=setup, rain=rain, t_edges=t_edges, n_depths=n_depths, fs=np.full(n, np.nan),
                   fs_min=np.full(n, np.inf), z_min=np.full(n, np.nan), t_fail=np.full(n, np.nan),
                   failed=np.zeros(n, bool), series=[])
    ctx.shared["slope_setup"] = setup
    ctx.summary.update(cells_modelled=int(n), n_depths=n_depths, dhat=setup["dhat"], fills=setup["fills"])
    _evaluate(ctx, ctx.state.clock.now_s)


def step_slope(ctx: CouplingContext, t: float, dt: float) -> None:
    """The factor of safety at ``t`` from the rain up to ``t``; new failures as an event."""
    _evaluate(ctx, t)


def _evaluate(ctx: CouplingContext, t: float) -> None:
    from physics.slope_run import evaluate_fs

    o = ctx.own
    res = evaluate_fs(o["setup"]["params"], o["rain"], o["t_edges"], np.array([float(t)]),
                      n_depths=o["n_depths"])
    fs, z = res["fs_min"], res["z_min"]
    lower = fs < o["fs_min"]
    o["fs_min"] = np.where(lower, fs, o["fs_min"])
    o["z_min"] = np.where(lower, z, o["z_min"])
    new = (fs < 1.0) & ~o["failed"]
    o["t_fail"] = np.where(new, float(t), o["t_fail"])
    o["failed"] = o["failed"] | new
    o["fs"] = fs
    o["series"].append([float(t), int(o["failed"].sum()), float(np.nanmin(fs, initial=np.inf))])
    _publish(ctx)
    if new.any():
        _emit_failure(ctx, new, t)


def _grid(ctx: CouplingContext, values: np.ndarray, fill: float) -> np.ndarray:
    g = np.full(ctx.state.shape, fill, np.float64)
    g.ravel()[ctx.own["setup"]["cells"]] = values
    return g


def _publish(ctx: CouplingContext) -> None:
    o, st = ctx.own, ctx.state
    fs_min = np.where(np.isfinite(o["fs_min"]), o["fs_min"], np.nan)
    st.set_field("factor_of_safety", _grid(ctx, o["fs"], np.nan), "1",
                 "minimum factor of safety over depths, now", copy=False)
    st.set_field("min_factor_of_safety", _grid(ctx, fs_min, np.nan), "1",
                 "minimum factor of safety over depths and the steps so far", copy=False)
    st.set_field("slope_failed", _grid(ctx, o["failed"].astype(np.float64), 0.0), "1",
                 "1 where FS < 1 at some step so far, else 0", copy=False)
    st.set_field("slip_depth", _grid(ctx, np.where(o["failed"], o["z_min"], 0.0), 0.0), "m",
                 "depth of the minimum FS of the failed cells (slip surface), 0 elsewhere", copy=False)


def cells_lonlat(domain, flat: np.ndarray) -> np.ndarray:
    """``[lon, lat]`` (n, 2) of the centres of grid cells given by flat (C-order) indices."""
    from gis.crs import WGS84, transformer

    rows, cols = np.unravel_index(flat, domain.shape)
    x, y = domain.x[cols], domain.y[rows]
    lon, lat = transformer(domain.crs, WGS84).transform(x, y)
    return np.column_stack([lon, lat])


def _emit_failure(ctx: CouplingContext, new: np.ndarray, t: float) -> None:
    from gis.crs import WGS84, transformer

    dom = ctx.domain
    flat = ctx.own["setup"]["cells"][new]
    rows, cols = np.unravel_index(flat, dom.shape)
    lon, lat = transformer(dom.crs, WGS84).transform(float(dom.x[cols].mean()), float(dom.y[rows].mean()))
    cells = cells_lonlat(dom, flat[:MAX_EVENT_CELLS])
    n = int(flat.size)
    area = n * dom.resolution_m ** 2
    ctx.emit("slope_failure", f"{n} cells failed (FS < 1), {area / 1e4:.1f} ha", severity="warning",
             data={"n": n, "area_m2": float(area), "lon": float(lon), "lat": float(lat),
                   "cells": [[round(float(a), 6), round(float(b), 6)] for a, b in cells], "t_s": float(t)})


def finish_slope(ctx: CouplingContext) -> None:
    o = ctx.own
    res = ctx.domain.resolution_m
    tf = o["t_fail"][np.isfinite(o["t_fail"])]
    ctx.summary.update(cells_failed=int(o["failed"].sum()), area_failed_m2=float(o["failed"].sum() * res ** 2),
                       earliest_failure_s=float(tf.min()) if tf.size else None,
                       fs_min=float(np.min(o["fs_min"], initial=np.inf)) if o["fs_min"].size else None,
                       failed_by_step=o["series"])


def save_slope(ctx: CouplingContext) -> dict:
    """The per-cell FS now, its minimum and depth, failure times and flags, and the step series."""
    o = ctx.own
    return {**{k: np.array(o[k], copy=True) for k in STATE}, "series": [list(r) for r in o["series"]]}


def restore_slope(ctx: CouplingContext, saved: dict) -> None:
    """Put a :func:`save_slope` state back (the set-up and rain are rebuilt by ``setup``)."""
    o = ctx.own
    for k in STATE:
        o[k] = np.asarray(saved[k]).astype(bool if k == "failed" else np.float64)
    o["series"] = [list(r) for r in saved["series"]]
    _publish(ctx)


# ----------------------------------------------------------------------------- outputs
def slope_dataset(ctx: CouplingContext):
    """The run's minimum FS and failure times as a Dataset of ``slope.nc``'s names."""
    import xarray as xr

    o, dom = ctx.own, ctx.domain
    fs_min = np.where(np.isfinite(o["fs_min"]), o["fs_min"], np.nan)
    ds = xr.Dataset(coords={"y": ("y", dom.y), "x": ("x", dom.x)})
    ds["fs_min"] = (("y", "x"), _grid(ctx, fs_min, np.nan).astype(np.float32), {"units": "1"})
    ds["time_of_failure"] = (("y", "x"), _grid(ctx, o["t_fail"], np.nan).astype(np.float32), {"units": "s"})
    ds.attrs.update(crs=dom.crs, transform=tuple(float(v) for v in tuple(dom.transform)[:6]),
                    duration_h=float(ctx.duration_s or 3600.0) / 3600.0)
    return ds


def slope_layers(ctx: CouplingContext, times_s) -> list:
    """Failures by each frame time and the minimum FS (:func:`viz.layers.slope.slope_layers`)."""
    from viz.layers.slope import slope_layers as layers

    return layers(slope_dataset(ctx), times_s=None if times_s is None else list(times_s))


def slope_report(ctx: CouplingContext) -> list[str]:
    """One HTML section: cells modelled and failed, the earliest failure, the minimum FS."""
    s = ctx.summary
    first = s.get("earliest_failure_s")
    when = "no cell failed" if first is None else f"the first at {first / 3600.0:g} h"
    rows = "".join(f"<tr><td>{t / 3600.0:g}</td><td>{n:,}</td><td>{fs:.3f}</td></tr>"
                   for t, n, fs in s.get("failed_by_step", []))
    return [f"<section><h2>Slope failure</h2><p>{s.get('cells_modelled', 0):,} cells modelled "
            f"({s.get('n_depths')} depths, D_hat {s.get('dhat')}); {s.get('cells_failed', 0):,} failed "
            f"({s.get('area_failed_m2', 0.0) / 1e4:.1f} ha), {when}; minimum FS {s.get('fs_min', float('nan')):.3f}."
            f"</p><table><tr><th>t (h)</th><th>cells failed</th><th>lowest FS now</th></tr>{rows}</table>"
            "</section>"]


register_coupling(Coupling(
    name="slope", phase="physics", period_s=3600.0,
    reads=("rain",),
    writes=("factor_of_safety", "min_factor_of_safety", "slope_failed", "slip_depth", "slope_setup",
            "event:slope_failure"),
    setup=setup_slope, step=step_slope, finish=finish_slope, save=save_slope, restore=restore_slope,
    kinds=("slope_forecast",), from_scenario=slope_from_scenario, layers=slope_layers, report=slope_report,
    doc="transient infinite-slope FS (Iverson 2000) on the run's rain: FS, failures, slope_failure events"))
