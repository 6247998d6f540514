"""The segment sweep (physics.flood_live, physics._kernels.flood_live) against the default span sweep.

Every face next to a blocked cell carries exactly 0 in the span sweep (its flow depth is BIG - BIG = 0) and a
blocked cell never changes, so skipping the blocked cells inside a row is the same arithmetic on every open
cell. It is not bit for bit: the compiled loops start at a segment's first cell instead of the span's, so
other faces fall in the vectorised bodies and the scalar remainders (fastmath: contraction and
reassociation may round differently there), an ulp here and there. The scheme damps such differences (the
q-centred average and the implicit friction are contractions), so they must stay at a few ulp of the
largest depth and never grow: bound 8 ulp of max h on depths and maxima; on discharges 8 ulp of max |q| plus
the depth bound times the pressure term's gain, 2 g dt h_max / dx (a depth error moves q by g dt h_f d(eta)/dx). The first step, from
the same state, is identical. The balance's row volumes are summed per segment: 1e-12 relative, the global
step's own closure tolerance.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from physics import flood_live
from physics._kernels import flood_live as L
from physics.flood import FloodModel
from physics.forcing import UniformRain, WaterLevel
from twin.errors import ValidationError

DX = 10.0


def holey_case(ny=70, nx=90, seed=3):
    """A bumpy plane draining to a tidal sea in the south-east, cut by blocked holes, walls and a river gap.

    Rows have up to five open segments; blocked cells touch the west edge, the east edge and the sea; a
    band of porosity 0.6 makes some rows read phi; a pit holds 3 m of water.
    """
    rng = np.random.default_rng(seed)
    x = np.arange(nx)[None, :] * DX
    y = np.arange(ny)[:, None] * DX
    z = 0.02 * (nx * DX - x) + 0.01 * (ny * DX - y) + rng.normal(0.0, 0.15, (ny, nx))
    z[20:26, 30:36] -= 3.0
    h0 = np.where(z < z[20:26, 30:36].max() + 0.1, 0.0, 0.0)
    h0[20:26, 30:36] = 3.0
    block = np.zeros((ny, nx), dtype=bool)
    block[5:15, 10:13] = True  # a wall
    block[:, 50] = True  # a one-cell river gap (with a crossing)
    block[40:42, 50] = False
    block[30:60, 0:4] = True  # blocked at the west edge
    block[0:10, 80:] = True  # and at the east edge
    block[rng.random((ny, nx)) < 0.04] = True  # scattered buildings
    sea = np.zeros((ny, nx), dtype=bool)
    sea[55:, 60:] = True
    z[sea] = -2.0
    block[sea] = False
    block[58:62, 70:73] = True  # an island in the sea
    z = np.where(block, np.nan, z)
    phi = np.ones((ny, nx))
    phi[44:48, :] = 0.6
    tide = WaterLevel(sea & ~block, np.array([0.0, 600.0, 1200.0]), np.array([0.0, 0.6, 0.2]))
    return z, h0, phi, tide


def model_of(z, h0, phi, tide, dtype=np.float64):
    return FloodModel(z, dx=DX, rain=UniformRain.constant(80.0, 3600.0), boundaries="free", h0=h0, porosity=phi,
                      water_level=tide, drainage_mm_h=5.0, dtype=dtype)


def test_segments_are_the_maximal_runs_of_open_cells():
    o = np.array([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 1]], dtype=bool)
    ptr, seg = L.segments(o)
    assert ptr.tolist() == [0, 2, 2, 3, 6]
    assert seg.tolist() == [[1, 3], [4, 5], [0, 5], [0, 1], [2, 3], [4, 5]]
    ch = L.segment_chunks(ptr, seg, 2)
    assert ch[0] == 0 and ch[-1] == 4 and np.all(np.diff(ch) > 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2])
def test_segment_sweep_is_the_span_sweep_to_a_few_ulp(dtype, threads):
    z, h0, phi, tide = holey_case()
    ptr, _ = L.segments(np.isfinite(z))
    assert np.diff(ptr).max() >= 4  # the case has rows of several segments
    a = model_of(z, h0, phi, tide, dtype)
    b = model_of(z, h0, phi, tide, dtype)
    flood_live.enable(b)
    n = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for _ in range(4):
            a.step(150.0)
            b.step(150.0)
    finally:
        numba.set_num_threads(n)
    assert b.n_steps == a.n_steps > 100
    hm = float(a.hmax.max())
    assert hm > 0.5 and float(np.abs(a.qx).max()) > 0.01
    tol_h = 8 * np.finfo(dtype).eps * hm
    dt_mean = 600.0 / a.n_steps
    tol_q = 2 * 9.80665 * dt_mean * hm / DX * tol_h
    for name, tol in (("h", tol_h), ("hmax", tol_h), ("qx", tol_q), ("qy", tol_q)):
        if name[0] == "q":  # plus the discharge's own rounding, 8 ulp of the largest
            tol = tol + 8 * np.finfo(dtype).eps * float(np.abs(getattr(a, name)).max())
        d = np.abs(getattr(b, name).astype(np.float64) - getattr(a, name))
        assert d.max() <= tol, (name, d.max(), tol)
    np.testing.assert_array_equal(b.tmax > 0, a.tmax > 0)
    ba, bb = a.balance(), b.balance()
    # float32: each cell's volume is a float32 product (relative rounding 6e-8), summed in another order
    rel = 1e-12 if dtype == np.float64 else 1e-6
    for k in ("rain", "drainage", "outflow", "level_exchange"):
        assert bb[k] == pytest.approx(ba[k], rel=rel, abs=1e-9), k
    assert bb["relative_error"] < (1e-12 if dtype == np.float64 else 1e-5)


def test_first_step_is_identical():
    z, h0, phi, tide = holey_case()
    a = model_of(z, h0, phi, tide)
    b = model_of(z, h0, phi, tide)
    flood_live.enable(b)
    a._advance(1e9, max_steps=1)
    b._advance(1e9, max_steps=1)
    for name in ("h", "qx", "qy", "hmax"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)


def test_enable_refuses_lts_and_disable_restores_the_span_sweep():
    z, h0, phi, tide = holey_case()
    m = FloodModel(z, dx=DX, time_stepping="lts", h0=h0)
    with pytest.raises(ValidationError, match="time_stepping"):
        flood_live.enable(m)
    g = model_of(z, h0, phi, tide)
    flood_live.enable(g)
    flood_live.disable(g)
    assert "_time_loop" not in g.__dict__
    assert flood_live.stepped_cells(g) == int(np.sum(g._grid.cols[:, 1] - g._grid.cols[:, 0]))
    flood_live.enable(g)
    assert flood_live.stepped_cells(g) == int(np.isfinite(z).sum())


def test_dead_sea_skip_closes_the_balance_and_stays_within_the_schemes_own_sensitivity():
    # An approximation (flood_live.enable(skip_dead_sea=True)): the faces between the coast's fixed-level
    # cells and the dead sea carry 0, so the coast's q-centred average no longer reads the discharges the
    # scheme diffuses into the sea. Bound: 1.2 cm on the maximum depth of land cells, the scheme's own
    # sensitivity to where its steps end (physics/flood_city.py, run_city_flood: 60 s chunks against none
    # over Futian and Luohu, max depths up to 1.2 cm apart). Mass stays exact: every face's volume leaves one
    # cell and enters the other (1e-12, the global step's closure).
    z, h0, phi, tide = holey_case()
    a = model_of(z, h0, phi, tide)
    b = model_of(z, h0, phi, tide)
    flood_live.enable(b, skip_dead_sea=True)
    dead = flood_live.dead_sea(b)
    assert dead.sum() > 300 and flood_live.stepped_cells(b) == int(np.isfinite(z).sum() - dead.sum())
    for _ in range(4):
        a.step(150.0)
        b.step(150.0)
    land = np.isfinite(z) & (np.asarray(a._forcing.level_mask) == 0)
    assert float(np.abs(b.hmax - a.hmax)[land].max()) < 0.012
    assert float(b.h.min()) >= 0.0
    assert b.balance()["relative_error"] < 1e-12
