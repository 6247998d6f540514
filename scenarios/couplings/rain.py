"""The rain coupling: one rain for the whole coupled run, shared and written as ``rain_rate``.

Builds ONE :class:`physics.forcing.Rain` for the run (phase ``forcing``) and
shares it as ``ctx.shared["rain"]``: the flood (:mod:`scenarios.couplings.flood`)
takes it as its model's rain and the slope (:mod:`scenarios.couplings.slope`)
its infiltration history, so both models see the same storm. The rain is,
as ``twin flood run`` and ``twin slope run`` build theirs:

* ``storm`` — a design storm of :data:`physics.flood_city.STORMS` (default
  ``"2023-09-07"``), or ``rain_mm_h`` — a uniform rate, both built by
  :func:`physics.flood_city.make_storm` over ``storm_hours`` (h; default the
  run's duration) with ``method`` and ``peak_fraction``;
* ``rain_file`` — a CSV hyetograph ``time_h, mm_h``
  (:func:`physics.slope_city.read_rain_csv`) or a gridded NetCDF ``rain``
  (time, y, x) in mm/h warped onto the run's grid
  (:func:`physics.slope_city.read_rain_netcdf`);

then every rate times ``rain_scale`` (default 1) and every block moved by
``shift_s`` (s, default 0; a negative shift drops what would fall before
t = 0). Every ``period_s`` (default 300 s) — and at t = 0 — the field
``rain_rate`` (mm/h, every cell) is the mean rate over the coming period
``[t, t + period_s)``: the blocks' depth over the period divided by its
length, so the field integrated over the run's periods equals the rain's
depth over the run (blocks that straddle a step are averaged, not lost).

Summary: ``storm`` (the description of :func:`physics.flood_city.storm_info`),
``storm_total_mm`` (the whole rain's mean depth), ``total_mm`` (the depth
falling within the run), ``peak_mm_h``, ``rain_scale``, ``shift_s``.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import DataMissingError, ValidationError

PARAMS = ("storm", "rain_mm_h", "rain_file", "storm_hours", "method", "peak_fraction", "rain_scale",
          "shift_s")
#: What a model section passes down besides the rain (the scenario's other shared values): dropped.
SOURCES = ("storm", "rain_mm_h", "rain_file")


def rain_from_scenario(section: dict[str, Any], scenario: Any = None) -> dict[str, Any]:
    """The rain's parameters from a scenario: its shared rain keys (``hazards.rain``) and ``rain_scale``/``shift_s``.

    Keys of :data:`PARAMS` whose value is not None are kept; the scenario's
    other shared values (``hours``, ``city``, ``tide_m``...) are not the rain's.
    """
    return {k: v for k, v in section.items() if k in PARAMS and v is not None}


def _number(params: dict, key: str, default: float, *, lo: float, allow_equal: bool = True) -> float:
    v = params.get(key, default)
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) \
        and (v >= lo if allow_equal else v > lo)
    if not ok:
        bound = f">= {lo:g}" if allow_equal else f"> {lo:g}"
        raise ValidationError(f"couplings.rain.{key}={v!r}: give a finite number {bound}")
    return float(v)


def check_params(params: dict[str, Any]) -> None:
    """Refuse unknown keys and more than one rain source, listing every problem."""
    problems = []
    bad = sorted(k for k in params if k not in PARAMS)
    if bad:
        problems.append(f"unknown parameter(s) {bad}; allowed: {list(PARAMS)}")
    given = [k for k in SOURCES if params.get(k) is not None]
    if len(given) > 1:
        problems.append(f"give one rain source, not {' and '.join(given)}")
    if problems:
        raise ValidationError("couplings.rain: " + "; ".join(problems))


def build_rain(params: dict[str, Any], domain, duration_s: float):
    """The run's Rain (unscaled, unshifted) and its description, from the coupling's parameters."""
    from physics.flood_city import STORMS, make_storm, storm_info
    from physics.forcing import GriddedRain, UniformRain
    from physics.slope_city import read_rain_csv, read_rain_netcdf

    if params.get("rain_file") is not None:
        p = Path(params["rain_file"]).expanduser()
        if not p.is_file():
            raise DataMissingError(f"couplings.rain.rain_file={str(p)!r}: no such file")
        if p.suffix.lower() == ".nc":
            t_edges, rates = read_rain_netcdf(p, domain)
            rain = GriddedRain(t_edges, rates)
        else:
            t_edges, rates = read_rain_csv(p)
            rain = UniformRain(t_edges, rates)
        hours = float(t_edges[-1] - t_edges[0]) / 3600.0
        info = {"name": f"rain from {p.name}", "method": "file", "source": str(p), "duration_h": hours,
                "total_mm": rain.depth_mm(float(t_edges[0]), float(t_edges[-1])),
                "peak_mm_h": float(np.max(rates))}
        return rain, info
    hours = _number(params, "storm_hours", duration_s / 3600.0, lo=0.0, allow_equal=False)
    storm = params["rain_mm_h"] if params.get("rain_mm_h") is not None else params.get("storm") or STORMS[0]
    peak = _number(params, "peak_fraction", 0.5, lo=0.0)
    rain = make_storm(storm, hours=hours, method=params.get("method", "alternating_block"),
                      city=None if domain is None else domain.city, peak_fraction=peak)
    return rain, storm_info(rain, hours)


def transformed(rain, scale: float = 1.0, shift_s: float = 0.0):
    """``rain`` with every rate times ``scale`` (:func:`physics.forcing.scale_rain`) and every block
    moved by ``shift_s`` (a copy; the same object when neither changes). Blocks moved before t = 0
    are cut there (what falls before the run's start is dropped)."""
    from physics.forcing import scale_rain

    rain = scale_rain(rain, scale)
    if shift_s == 0.0:
        return rain
    times, rates = np.asarray(rain.times, float) + shift_s, rain.rates
    if times[-1] <= 0.0:
        raise ValidationError(f"couplings.rain.shift_s={shift_s!r}: moves the whole rain before the "
                              "run's start; give a shift > -(end of the rain)")
    if times[0] < 0.0:
        k = int(np.searchsorted(times, 0.0, side="right")) - 1  # the block holding t = 0
        times, rates = np.concatenate([[0.0], times[k + 1:]]), rates[k:]
    out = copy.copy(rain)
    out.times, out.rates = times, rates
    return out


def mean_rate_mm_h(rain, t0: float, t1: float) -> np.ndarray | float:
    """Mean rain rate (mm/h) over ``[t0, t1)``: a number (uniform rain) or a grid (gridded rain)."""
    from physics.forcing import MM_PER_H, GriddedRain

    if isinstance(rain, GriddedRain):
        w = np.diff(np.clip(rain.times, t0, t1))
        return np.tensordot(w, rain.rates, axes=(0, 0)) / (t1 - t0) / MM_PER_H
    return rain.depth_mm(t0, t1) * 3600.0 / (t1 - t0)


def setup_rain(ctx: CouplingContext) -> None:
    """Build the run's rain, share it and write ``rain_rate`` for the first period."""
    params = dict(ctx.params)
    check_params(params)
    duration = float(ctx.duration_s or 0.0) or 3600.0
    scale = _number(params, "rain_scale", 1.0, lo=0.0)
    shift = _number(params, "shift_s", 0.0, lo=-math.inf)
    base, info = build_rain(params, ctx.domain, duration)
    rain = transformed(base, scale, shift)
    if params.get("rain_file") is not None:
        ctx.add_input("rain_file", Path(params["rain_file"]).expanduser())
    ctx.shared["rain"] = rain
    storm_total = rain.depth_mm(float(rain.times[0]), float(rain.times[-1]))
    ctx.summary.update(storm=info, rain_scale=scale, shift_s=shift, storm_total_mm=storm_total,
                       total_mm=rain.depth_mm(0.0, duration),
                       peak_mm_h=float(np.max(rain.rates)) * (3.6e6 if _gridded(rain) else 1.0))
    ctx.own["period_s"] = None
    _publish(ctx, ctx.state.clock.now_s)


def _gridded(rain) -> bool:
    from physics.forcing import GriddedRain

    return isinstance(rain, GriddedRain)


def _period(ctx: CouplingContext) -> float:
    """The coupling's period (s): the ``dt`` of its steps; before the first step the context's
    ``period_s`` when the runner gives one, else the coupling's default (300 s)."""
    return float(ctx.own.get("period_s") or getattr(ctx, "period_s", None) or RAIN.period_s)


def _publish(ctx: CouplingContext, t: float) -> None:
    """``rain_rate`` over ``[t, t + period)``: the rate now, its grid made when read (the output
    frames: :meth:`twin.state.TwinState.defer_field`)."""
    rate = mean_rate_mm_h(ctx.shared["rain"], t, t + _period(ctx))
    shape = ctx.state.shape
    ctx.state.defer_field("rain_rate", lambda: np.broadcast_to(np.asarray(rate, np.float64), shape).copy(),
                          "mm h-1", "mean rain rate over the coming period")


def step_rain(ctx: CouplingContext, t: float, dt: float) -> None:
    """Write ``rain_rate``: the mean rate over ``[t, t + dt)``."""
    ctx.own["period_s"] = dt
    _publish(ctx, t)


def save_rain(ctx: CouplingContext) -> dict:
    """The period in force (the rain is rebuilt from the parameters; ``rain_rate`` is in the state)."""
    return {"period_s": ctx.own.get("period_s")}


def restore_rain(ctx: CouplingContext, saved: dict) -> None:
    """Put the period back (the restored state holds ``rain_rate``)."""
    ctx.own["period_s"] = saved.get("period_s")


def report_rain(ctx: CouplingContext) -> list[str]:
    """One HTML section: the storm, its depth within the run, its peak."""
    from html import escape

    s = ctx.summary
    name = escape(str((s.get("storm") or {}).get("name", "rain")))
    extra = []
    if s.get("rain_scale", 1.0) != 1.0:
        extra.append(f"rates &times; {s['rain_scale']:g}")
    if s.get("shift_s", 0.0):
        extra.append(f"shifted by {s['shift_s']:g} s")
    more = f" ({', '.join(extra)})" if extra else ""
    return [f"<section><h2>Rain</h2><p>{name}{more}: {s.get('total_mm', 0.0):.1f} mm within the run "
            f"(the whole rain {s.get('storm_total_mm', 0.0):.1f} mm), peak "
            f"{s.get('peak_mm_h', 0.0):.1f} mm/h.</p></section>"]


RAIN = register_coupling(Coupling(
    name="rain", phase="forcing", period_s=300.0,
    reads=(), writes=("rain", "rain_rate"),
    setup=setup_rain, step=step_rain, save=save_rain, restore=restore_rain,
    from_scenario=rain_from_scenario, report=report_rain,
    doc="one rain for the run (design storm, rate or rain file; scaled, shifted), shared; rain_rate field"))
