"""The flood coupling: the city flood model stepped on the run's clock, depth and speed in the state.

Builds :class:`physics.flood.FloodModel` on the run's grid with
:func:`physics.flood_city.flood_setup` (the set-up of ``twin flood run``:
sea, outflow edge, pits, Manning's n, drainage, storm) and, every
``period_s`` (default 60 s), steps it and writes to the state:

* ``water_depth`` (m), ``water_speed`` (m/s): NaN on sea and blocked cells,
  as in ``flood.nc``;
* ``max_water_depth`` (m): the maximum so far, NaN likewise.

Parameters (the config's ``couplings.flood``): every keyword of
:func:`physics.flood_city.flood_setup` (``storm``, ``hours`` — default the
run's duration —, ``method``, ``tide``, ``surge_m``, ``drainage_mm_h``...)
and ``wave_depth_cap_m``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ClockError, ValidationError

MODEL_KEYS = ("wave_depth_cap_m",)


def _setup_keys() -> list[str]:
    from physics.flood_city import flood_setup

    return [p for p in inspect.signature(flood_setup).parameters if p != "domain"]


def setup_flood(ctx: CouplingContext) -> None:
    """Build the model on ``ctx.domain`` and publish its starting fields."""
    from physics.flood import FloodModel
    from physics.flood_city import flood_setup, model_kwargs

    params = dict(ctx.params)
    allowed = _setup_keys() + list(MODEL_KEYS)
    bad = sorted(k for k in params if k not in allowed)
    if bad:
        raise ValidationError(f"couplings.flood: unknown parameter(s) {bad}; allowed: {sorted(allowed)}")
    if ctx.domain is None:
        raise ValidationError("couplings.flood: the run has no grid (domain); give the run an area")
    model_opts = {k: params.pop(k) for k in MODEL_KEYS if k in params}
    if ctx.duration_s is not None:
        params.setdefault("hours", ctx.duration_s / 3600.0)
    setup = flood_setup(ctx.domain, **params)
    model = FloodModel(**model_kwargs(setup), **model_opts)
    model.warm_up()
    ctx.own.update(model=model, land=np.asarray(setup["context"]["land"], bool), setup=setup)
    ctx.summary.update(storm=setup["context"]["storm"], hours=setup["context"]["hours"])
    _publish(ctx)


def step_flood(ctx: CouplingContext, t: float, dt: float) -> None:
    """Advance the model by ``dt`` to ``t`` and publish depth, speed and maximum depth."""
    model = ctx.own["model"]
    model.step(dt)
    if not math.isclose(model.t, t, rel_tol=0.0, abs_tol=1e-6):
        raise ClockError(f"flood model at t={model.t!r} s after stepping to the clock's t={t!r} s")
    _publish(ctx)


def _publish(ctx: CouplingContext) -> None:
    model, land = ctx.own["model"], ctx.own["land"]
    st = ctx.state
    depth = np.where(land, model.h.astype(np.float64), np.nan)
    st.set_field("water_depth", depth, "m", "water depth", copy=False)
    st.set_field("water_speed", np.where(land, model.speed(), np.nan), "m s-1", "flow speed", copy=False)
    st.set_field("max_water_depth", np.where(land, model.hmax.astype(np.float64), np.nan), "m",
                 "maximum water depth so far", copy=False)


def finish_flood(ctx: CouplingContext) -> None:
    model, land = ctx.own["model"], ctx.own["land"]
    h = np.where(land, model.h, 0.0)
    bal = model.balance()
    ctx.summary.update(
        steps=int(model.n_steps), max_depth_m=float(np.max(np.where(land, model.hmax, 0.0))),
        flooded_area_m2=float(np.count_nonzero(h >= 0.15) * model.cell_area),
        volume_relative_error=float(bal.get("relative_error", float("nan"))))


#: The model's arrays a checkpoint keeps (updated in place by the kernels, so restored in place).
STATE_ARRAYS = ("h", "qx", "qy", "hmax", "tmax", "tarr", "infil_cum", "_inflow")
STATE_SCALARS = ("t", "n_steps", "cell_updates", "_h_max_now", "correction_m3", "storage0")


def save_flood(ctx: CouplingContext) -> dict:
    """The model's state: depths, discharges, maxima, arrival times, cumulative volumes, counters.

    These are attributes of :class:`physics.flood.FloodModel` read here; a
    ``FloodModel.checkpoint()/restore()`` pair in ``physics/flood.py`` would
    own this list (requested).
    """
    m = ctx.own["model"]
    out = {name: np.array(getattr(m, name), copy=True) for name in STATE_ARRAYS}
    out["acc"] = np.array(m._outputs.acc, copy=True)
    out |= {name: getattr(m, name) for name in STATE_SCALARS}
    return out


def restore_flood(ctx: CouplingContext, saved: dict) -> None:
    """Put a :func:`save_flood` state back into the freshly built model and publish it."""
    m = ctx.own["model"]
    for name in STATE_ARRAYS:
        getattr(m, name)[...] = saved[name]
    m._outputs.acc[...] = saved["acc"]
    m.t, m.n_steps, m.cell_updates = float(saved["t"]), int(saved["n_steps"]), int(saved["cell_updates"])
    m._h_max_now, m.correction_m3 = float(saved["_h_max_now"]), float(saved["correction_m3"])
    m.storage0 = float(saved["storage0"])
    _publish(ctx)


register_coupling(Coupling(
    name="flood", phase="physics", period_s=60.0,
    reads=(), writes=("water_depth", "water_speed", "max_water_depth"),
    setup=setup_flood, step=step_flood, finish=finish_flood, save=save_flood, restore=restore_flood,
    doc="2-D flood model (physics.flood) on the run's grid: depth and speed every period"))
