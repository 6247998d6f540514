"""The one-sweep step (``K.fused_pass``) against the two-pass reference (flood_two_pass.py).

Both must give the same depths, discharges and volumes to round-off: the
fused sweep only reorders the work (rolling row buffers, halo rows at block
boundaries), not the arithmetic. Grids are small and the thread counts give
blocks of one to a few rows, so the halo logic is exercised at every block.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from physics._kernels import flood as K
from physics.flood import FloodModel, Infiltration
from physics.forcing import Hydrograph, UniformRain, WaterLevel

# tests run with --import-mode=importlib: load the sibling reference module by path, registered in
# sys.modules so that numba finds it again when it loads the module's cached kernels
if "flood_two_pass" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("flood_two_pass", Path(__file__).with_name("flood_two_pass.py"))
    sys.modules["flood_two_pass"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["flood_two_pass"])
flood_two_pass = sys.modules["flood_two_pass"]

class TwoPassFloodModel(FloodModel):
    """The model stepping with the two-pass reference instead of the one-sweep step."""

    _time_loop = staticmethod(flood_two_pass.advance)


def _dem(ny: int, nx: int) -> np.ndarray:
    yy, xx = np.mgrid[:ny, :nx]
    return 5.0 + 0.02 * xx + 0.5 * np.sin(yy / 2.0) * np.cos(xx / 3.0) + 0.3 * ((yy * 7 + xx * 3) % 5 == 0)


def _setups(ny: int, nx: int) -> dict[str, dict]:
    z = _dem(ny, nx)
    yy, xx = np.mgrid[:ny, :nx]
    zb = z.copy()
    r = np.hypot((yy - ny / 2) / ny, (xx - nx / 2) / nx)
    zb[r > 0.45] = np.nan  # open span varies from row to row
    zb[(yy % 5 == 2) & (xx % 4 == 1)] = np.nan  # blocked cells inside
    rain = UniformRain.constant(90.0, 1e7)
    lvl = np.zeros((ny, nx), np.uint8)
    lvl[ny // 2 - 1:ny // 2 + 2, 3] = 1
    return {
        "closed": dict(dem=z, dx=20.0, rain=rain),
        "free": dict(dem=z, dx=20.0, rain=rain, boundaries="free"),
        "blocked, porosity, level, inflow, Green-Ampt, Manning grid": dict(
            dem=zb, dx=20.0, rain=rain, boundaries="free",
            porosity=np.where((yy + xx) % 6 == 0, 0.5, 1.0),
            manning=np.where((yy * 3 + xx) % 4 == 0, 0.05, 0.02),
            infiltration=Infiltration.green_ampt(5.0, 100.0, 0.3),
            water_level=WaterLevel(lvl, np.array([0.0, 1800.0]), np.array([6.0, 8.0])),
            inflows=[Hydrograph(20.0 * (nx // 2 + 0.5), 20.0 * (ny // 2 + 0.5), np.array([0.0, 1800.0]),
                                np.array([2.0, 8.0]))]),
    }


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(_setups(13, 17)))
def test_fused_matches_two_pass(name, dtype, threads):
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        kw = _setups(13, 17)[name]
        runs = {}
        for fused, model in ((False, TwoPassFloodModel), (True, FloodModel)):
            m = model(**kw, dtype=dtype)
            m.step(1800.0)
            runs[fused] = m
    finally:
        numba.set_num_threads(old)
    a, b = runs[False], runs[True]
    assert b.n_steps == a.n_steps
    # water moved: the comparison is not between two untouched fields
    assert np.abs(a.qx).max() > 1e-4 and np.abs(a.qy).max() > 1e-4
    # the same arithmetic in the same order (physics/_kernels/flood.py: "must match bit for bit"), in
    # float64 and float32, at 1 and 2 threads (row accumulators: no cross-thread summation)
    for f in ("h", "hmax", "qx", "qy", "infil_cum"):
        d = np.abs(getattr(a, f) - getattr(b, f))
        assert np.array_equal(getattr(a, f), getattr(b, f)), f"{f}: fused differs from two-pass by {np.nanmax(d):.3g}"
    np.testing.assert_array_equal(b._outputs.acc, a._outputs.acc)
    if dtype == np.float64:
        assert abs(b.balance()["relative_error"]) <= b.n_steps * np.finfo(np.float64).eps


def test_fused_traffic_count():
    # one sweep: h, zb, qx, qy, hmax read; qx, qy, h, hmax written (all-open grid, uniform inputs)
    assert K.bytes_per_cell_update(8, phi_read=0.0)["total"] == 72
    assert K.bytes_per_cell_update(4, phi_read=0.0)["total"] == 36
    assert K.bytes_per_cell_update(8, phi_read=0.0, fused=False)["total"] == 128


def _step_by_step(g, blocks, f, o, p, w, F):
    # K.advance's loop in Python: K.coefficients and K.fused_pass called once per step, not inlined
    u = K.uniform_rows(g, f)
    t, h_max, n = w.t, w.h_max, 0
    while t < w.t_end - 1e-9 and (n == 0 or t < w.t_next) and n < w.max_steps:
        step = K.begin_step(t, h_max, w, f, p)
        K.fused_pass(g, blocks, f, o, K.coefficients(step, p, F), u)
        h_max = o.acc[:, K.ACC_ROW_MAX].max()
        t = step.t_new
        n += 1
    return t, n, h_max


class StepByStepFloodModel(FloodModel):
    _time_loop = staticmethod(_step_by_step)


def test_time_loop_keeps_the_step_arithmetic():
    # advance() must give the step the coefficients K.coefficients computes on its own: with fastmath,
    # inlined into advance's loop, g dt / dx became g dt * (1 / dx) with 1 / dx hoisted, one ulp off for
    # some dt (this dt_max and dx: the first steps are such). Compared bit for bit.
    kw = dict(dem=_dem(13, 17), dx=90.0, rain=UniformRain.constant(90.0, 1e7), h0=0.05,
              dt_max=9.504754688536195)
    a, b = FloodModel(**kw), StepByStepFloodModel(**kw)
    for m in (a, b):
        m.step(300.0)
    assert a.n_steps == b.n_steps
    assert np.abs(a.qx).max() > 1e-4
    for f in ("h", "qx", "qy", "hmax"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_array_equal(a._outputs.acc, b._outputs.acc)
