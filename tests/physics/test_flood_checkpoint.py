"""FloodModel.checkpoint() / restore(): a restored model steps on bit for bit as the original.

The case exercises every part of the state a checkpoint must carry: water
moving on a slope (depths, discharges), rain with Green-Ampt infiltration
(cumulative infiltration), drainage, an inflow hydrograph, a tide on the
west edge (level exchange), a free east edge (outflow), maxima and arrival
times, and the volume accumulators of the balance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from physics.flood import FloodModel, Infiltration
from physics.forcing import Hydrograph, UniformRain, WaterLevel
from twin.errors import ValidationError

NY, NX, DX = 24, 30, 10.0


def make_model(dtype=np.float64) -> FloodModel:
    """The same model every call (deterministic inputs)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:NY, 0:NX]
    z = 0.05 * xx + 0.3 * np.sin(yy / 3.0) + 0.1 * rng.random((NY, NX))
    phi = np.ones((NY, NX))
    phi[10:13, 14:17] = 0.0  # a building
    mask = np.zeros((NY, NX), np.uint8)
    mask[:, 0] = 1
    return FloodModel(
        z, dx=DX, manning=0.03, porosity=phi, dtype=dtype,
        rain=UniformRain([0.0, 300.0, 900.0, 1e6], [80.0, 150.0, 20.0]),
        infiltration=Infiltration.green_ampt(8.0, 110.0, 0.3), drainage_mm_h=5.0,
        inflows=[Hydrograph(15.5 * DX, (NY - 5.5) * DX, [0.0, 600.0, 1200.0], [0.0, 2.0, 0.5], "creek")],
        water_level=WaterLevel(mask, [0.0, 1200.0], [0.2, 0.6]),
        boundaries={"east": "free"}, h_arrive=0.05)


def _same_state(a: FloodModel, b: FloodModel) -> None:
    for name in ("h", "qx", "qy", "hmax", "tmax", "infil_cum"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.tarr, b.tarr, equal_nan=True)
    assert np.array_equal(a._outputs.acc, b._outputs.acc)
    assert (a.t, a.n_steps, a.cell_updates) == (b.t, b.n_steps, b.cell_updates)
    assert a.balance() == b.balance()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_checkpoint_restore_then_step_is_bit_identical_to_stepping_on(dtype):
    original = make_model(dtype)
    for _ in range(8):
        original.step(60.0)
    saved = original.checkpoint()
    for _ in range(12):  # across the rain's and the hydrograph's changes
        original.step(60.0)

    fresh = make_model(dtype)
    fresh.restore(saved)
    assert fresh.t == 480.0 and fresh.n_steps == saved["n_steps"] > 8
    for _ in range(12):
        fresh.step(60.0)
    _same_state(fresh, original)
    # the case exercised what a checkpoint must carry
    b = original.balance()
    assert b["infiltration"] > 0 and b["drainage"] > 0 and b["inflow"] > 0 and b["outflow"] > 0
    assert b["level_exchange"] != 0 and (original.h > 0.05).any() and np.isfinite(original.tarr).any()
    # the volume balance closes to round-off: at most one rounding a step (eps) in float64; in float32 the
    # walk of n round-to-nearest storage roundings, three standard deviations: sqrt(3 n) 2^-24
    n = original.n_steps
    bound = n * np.finfo(np.float64).eps if dtype is np.float64 else math.sqrt(3 * n) * 2.0**-24
    assert b["relative_error"] <= bound, (b["relative_error"], bound)


def test_checkpoint_holds_copies_and_restore_rewinds_the_same_model():
    model = make_model()
    for _ in range(5):
        model.step(60.0)
    saved = model.checkpoint()
    h_then = saved["h"].copy()
    assert set(saved) == {"h", "qx", "qy", "hmax", "tmax", "tarr", "infil_cum", "inflow", "acc", "t",
                          "n_steps", "cell_updates", "h_max_now", "correction_m3", "storage0"}
    assert isinstance(saved["t"], float) and isinstance(saved["n_steps"], int)
    h_array = model.h
    for _ in range(5):
        model.step(60.0)
    first = model.checkpoint()
    assert np.array_equal(saved["h"], h_then) and not np.array_equal(model.h, h_then)

    model.restore(saved)  # rewind: the kernels' arrays are written in place, not replaced
    assert model.h is h_array and np.array_equal(model.h, h_then) and model.t == 300.0
    for _ in range(5):
        model.step(60.0)
    again = model.checkpoint()
    for key, value in first.items():
        assert np.array_equal(np.asarray(value), np.asarray(again[key]), equal_nan=True), key


def test_restore_refuses_a_checkpoint_it_cannot_take_and_changes_nothing():
    model = make_model()
    model.step(60.0)
    saved = model.checkpoint()
    before = model.checkpoint()
    with pytest.raises(ValidationError, match=r"lacks \['qx'\]"):
        model.restore({k: v for k, v in saved.items() if k != "qx"})
    with pytest.raises(ValidationError, match=r"'h' is float64\[10, 10\].*same grid and dtype"):
        model.restore(saved | {"h": np.zeros((10, 10))})
    with pytest.raises(ValidationError, match=r"'h' is float32"):
        model.restore(saved | {"h": saved["h"].astype(np.float32)})
    bad = saved["h"].copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValidationError, match="'h' holds non-finite or negative"):
        model.restore(saved | {"h": bad})
    with pytest.raises(ValidationError, match=r"t=nan"):
        model.restore(saved | {"t": float("nan")})
    after = model.checkpoint()
    for key, value in before.items():
        assert np.array_equal(np.asarray(value), np.asarray(after[key]), equal_nan=True), key
