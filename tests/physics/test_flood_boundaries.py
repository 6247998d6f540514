"""Edge, line and level boundaries of the local-inertial flood model (physics/flood_boundaries.py).

Sources of the expected numbers:
* mass: the scheme's flux form conserves volume to round-off (LeVeque 2002, Finite Volume Methods for
  Hyperbolic Problems, ch. 4); every boundary volume is booked in the balance, so the closure error of
  :meth:`FloodModel.balance` must stay at float64 round-off (relative 1e-12);
* normal depth: Manning's uniform flow, q = n⁻¹ h^(5/3) S^(1/2) (Chow 1959, Open-Channel Hydraulics, §5-6);
  the scheme's steady face relation n² q² = h_f^(10/3) |d eta/dx| (Bates et al. 2010, J. Hydrol. 387:33,
  eq. 7 at steady state) with the normal-depth ghost (same depth, bed S dx lower) gives exactly Manning's
  depth in every cell of a uniform channel, whatever the cell size;
* the legacy free edge drains into a dry ghost cell boundary_slope·dx lower, so at its face
  h_f = h and the surface slope is (h + S dx)/dx: the outlet depth solves n² q² = h^(10/3) (h/dx + S),
  a figure that depends on dx (here about a third of the normal depth).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from physics import flood_boundaries as FB
from physics.flood import FloodModel
from physics.forcing import UniformRain, WaterLevel
from twin.errors import ValidationError

S0, N, Q = 1e-3, 0.03, 1.0
H_NORMAL = (N * Q / math.sqrt(S0)) ** 0.6  # Manning, 0.9689 m


def _channel(dx: float, outlet, *, along: str = "x", length: float = 1000.0, h0: float = H_NORMAL, **kw):
    """A uniform 3-cell-wide channel falling S0, q = Q entering upstream, ``outlet`` downstream."""
    n = int(round(length / dx))
    s = -S0 * (np.arange(n) + 0.5) * dx
    if along == "x":
        z, up, down = np.tile(s, (3, 1)), "west", "east"
    else:  # north to south (rows grow southwards)
        z, up, down = np.tile(s[:, None], (1, 3)), "north", "south"
    b = [FB.EdgeDischarge(up, q_m2s=Q), outlet(down)]
    return FloodModel(z, dx=dx, manning=N, boundaries=b, h0=np.full(z.shape, h0), boundary_slope=S0, **kw)


def _free_outlet_depth(dx: float) -> float:
    from scipy.optimize import brentq

    return brentq(lambda h: h ** (10 / 3) * (h / dx + S0) - (N * Q) ** 2, 1e-6, 10.0)


@pytest.mark.parametrize("dx", [10.0, 25.0])
@pytest.mark.parametrize("along", ["x", "y"])
def test_normal_depth_outlet_holds_manning_depth_free_draws_it_down(dx, along, one_thread):
    m = _channel(dx, lambda e: FB.EdgeNormalDepth(e, slope=S0), along=along)
    m.step(12000.0)  # from rest at the normal depth: the transient decays below 1e-14 by then
    h = m.h if along == "x" else m.h.T
    q = m.qx if along == "x" else m.qy.T
    np.testing.assert_allclose(h, H_NORMAL, rtol=1e-9)
    np.testing.assert_allclose(q[1], Q, rtol=1e-9)
    assert m.balance()["relative_error"] <= 1e-12
    f = _channel(dx, FB.EdgeFree, along=along)
    f.step(8000.0)
    hf = (f.h if along == "x" else f.h.T)[1]
    print(f"dx {dx} m: normal-depth outlet {h[1, -1]:.4f} m (Manning {H_NORMAL:.4f}); free outlet {hf[-1]:.4f} m "
          f"(its face relation: {_free_outlet_depth(dx):.4f} m)")
    assert hf[-1] == pytest.approx(_free_outlet_depth(dx), rel=1e-6)
    assert hf[-1] < 0.5 * H_NORMAL


def test_bed_slope_normal_depth_reads_the_bed():
    z = np.tile(-S0 * np.arange(20) * 10.0, (3, 1))
    cb = FB.compile_boundaries([FB.EdgeNormalDepth("east"), FB.EdgeNormalDepth("west")],
                               FB.Geometry(z.shape, (10.0, 0, 0, 0, -10.0, 30.0), z))
    np.testing.assert_allclose(cb.edge_param[1, :3], S0)  # falls towards the east edge
    np.testing.assert_allclose(cb.edge_param[0, :3], FB.BED_SLOPE_MIN)  # adverse: the floor


def test_zero_gradient_passes_a_steady_flow(one_thread):
    """The zero-gradient face copies the inner face's flux: at steady state the channel carries Q at every face.

    (It fixes the discharge, not the depth: the outlet depth settles where the transient leaves it.)
    """
    m = _channel(10.0, FB.EdgeZeroGradient, length=500.0)
    m.step(6000.0)
    np.testing.assert_allclose(m.qx, Q, rtol=1e-6)
    assert m.balance()["relative_error"] <= 1e-12


def _basin(boundaries, *, rain=None, water_level=None, shape=(12, 10), dx=10.0, h0=0.05, **kw):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    z = 0.002 * xx * dx + 0.001 * yy * dx + 0.05 * np.sin(xx) * np.cos(yy)
    return FloodModel(z, dx=dx, manning=0.03, rain=rain, boundaries=boundaries, water_level=water_level,
                      h0=np.full(shape, h0), **kw)


HYDRO = dict(times_s=[0.0, 200.0, 500.0], q_m2s=[0.0, 0.4, 0.1])
KINDS = {
    "discharge": lambda e: FB.EdgeDischarge(e, **HYDRO),
    "stage": lambda e: FB.EdgeStage(e, times_s=[0.0, 300.0, 600.0], level_m=[0.3, 0.9, 0.1]),
    "normal_depth": lambda e: FB.EdgeNormalDepth(e, slope=0.01),
    "normal_depth_bed": lambda e: FB.EdgeNormalDepth(e),
    "zero_gradient": FB.EdgeZeroGradient,
    "free": FB.EdgeFree,
}


@pytest.mark.parametrize("dtype", [np.float64])
@pytest.mark.parametrize("edge", FB.EDGES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_on_every_edge_is_mass_exact(kind, edge, dtype, one_thread):
    rain = UniformRain.constant(60.0, 600.0)
    # the kind on half of the edge, a discharge on the other half (mixed faces), walls elsewhere
    n = 12 if edge in ("west", "east") else 10
    b = [FB.EdgeDischarge(edge, q_m2s=0.05, cells=(n // 2, n)), KINDS[kind](edge)]
    b[1] = _with_cells(b[1], (0, n // 2))
    m = _basin(b, rain=rain, dtype=dtype)
    m.step(600.0)
    bal = m.balance()
    print(f"{kind} on {edge}: inflow {bal['inflow']:.3f} m³, outflow {bal['outflow']:.3f} m³, "
          f"relative error {bal['relative_error']:.1e}")
    assert bal["relative_error"] <= 1e-12
    assert np.all(m.h >= 0)
    assert bal["inflow"] > 0


def _with_cells(spec, cells):
    kw = {k: v for k, v in spec.__dict__.items() if not k.startswith("_")}
    kw["cells"] = cells
    return type(spec)(**kw)


def test_discharge_edge_volume_is_the_hydrograph_integral(one_thread):
    """Inflow volume = width x integral of q(t) (piecewise linear: exact, steps end on knots)."""
    m = _basin([FB.EdgeDischarge("west", cells=(2, 7), **HYDRO)], h0=0.0)
    m.step(800.0)
    t, q = np.array(HYDRO["times_s"]), np.array(HYDRO["q_m2s"])
    expected = 5 * 10.0 * (np.trapezoid(q, t) + q[-1] * (800.0 - t[-1]))  # held after the last knot
    assert m.balance()["inflow"] == pytest.approx(expected, rel=1e-12)
    assert m.balance()["relative_error"] <= 1e-12
    # the range: rows 2..6 of the west edge only
    assert np.all(m.qx[[0, 1, 7, 8, 9, 10, 11], 0] == 0)


def test_span_selects_the_same_faces_as_cells():
    z = np.zeros((12, 10))
    geom = FB.Geometry(z.shape, (10.0, 0, 500.0, 0, -10.0, 1000.0), z)
    # rows 2..6 have centres y = 975 .. 935 (either order)
    a = FB.compile_boundaries([FB.EdgeStage("east", level_m=1.0, cells=(2, 7))], geom)
    b = FB.compile_boundaries([FB.EdgeStage("east", level_m=1.0, span_m=(976.0, 934.0))], geom)
    np.testing.assert_array_equal(a.edge_kind, b.edge_kind)
    assert list(np.nonzero(a.edge_kind[1])[0]) == [2, 3, 4, 5, 6]
    assert list(a.edge_code) == [0, 2, 0, 0]


def test_stage_edge_fills_a_basin_following_its_series(one_thread):
    """A flat basin 100 m across behind a stage edge rising 0.5 -> 1.0 m over an hour follows it.

    The lag is the time a gravity wave takes to cross the basin times the rate of rise,
    (100 m / sqrt(g 0.5 m)) x 0.5 m / 3600 s = 6 mm; friction head to carry the filling discharge
    is far smaller (n² q² L / h^(10/3) ~ 1e-6 m). After the rise, the level stays within that lag of
    1.0 m (the seiche the rise leaves behind has no source of energy but decays under friction).
    """
    nx = ny = 10
    wl = FB.EdgeStage("west", times_s=[0.0, 600.0, 4200.0], level_m=[0.5, 0.5, 1.0])
    m = FloodModel(np.zeros((ny, nx)), dx=10.0, manning=0.01, boundaries=[wl], h0=np.full((ny, nx), 0.5))
    lag = 100.0 / math.sqrt(9.81 * 0.5) * 0.5 / 3600.0
    for t in (1200.0, 2400.0, 3600.0):
        m.step(t - m.t)
        stage = float(np.interp(t, [600.0, 4200.0], [0.5, 1.0]))
        assert abs(float(m.h.mean()) - stage) <= lag
    m.step(9000.0 - m.t)
    # the seiche left by the end of the rise is at most the lag, and friction only damps it
    np.testing.assert_allclose(m.h, 1.0, atol=lag)
    assert m.balance()["relative_error"] <= 1e-12


def test_level_cells_each_with_its_own_series_and_the_legacy_water_level(one_thread):
    a = np.zeros((12, 10), dtype=bool)
    a[:, 0] = True
    b = np.zeros((12, 10), dtype=bool)
    b[:, -1] = True
    specs = [FB.LevelCells(a, level_m=[0.2, 0.6], times_s=[0.0, 300.0], name="a"),
             FB.LevelCells(b, level_m=0.4, name="b")]
    m = _basin(specs, h0=0.0)
    m.step(300.0)
    z = m.z
    np.testing.assert_allclose(m.h[:, 0], np.maximum(0.6 - z[:, 0], 0.0), atol=1e-12)
    np.testing.assert_allclose(m.h[:, -1], np.maximum(0.4 - z[:, -1], 0.0), atol=1e-12)
    assert m.balance()["relative_error"] <= 1e-12
    # forcing.WaterLevel: the same cells and series through the old keyword
    w = _basin("closed", h0=0.0, water_level=WaterLevel(a.astype(np.uint8), [0.0, 300.0], [0.2, 0.6]))
    v = _basin([specs[0]], h0=0.0)
    w.step(300.0)
    v.step(300.0)
    np.testing.assert_array_equal(w.h, v.h)


def test_line_discharge_spreads_q_by_length_and_books_it(one_thread):
    z = np.zeros((12, 10))
    geom = FB.Geometry(z.shape, (10.0, 0, 0.0, 0, -10.0, 120.0), z)
    xy = [[5.0, 115.0], [73.0, 31.0], [95.0, 31.0]]
    cells, length = FB.line_cells(np.array(xy), geom)
    total = math.hypot(68.0, 84.0) + 22.0
    assert length.sum() == pytest.approx(total, rel=1e-12)
    m = _basin([FB.LineDischarge(xy, q_m2s=0.01)], h0=0.0)
    m.step(300.0)
    assert m.balance()["inflow"] == pytest.approx(0.01 * total * 300.0, rel=1e-12)
    assert m.balance()["relative_error"] <= 1e-12
    # a line stage holds the crossed cells at its level
    s = _basin([FB.LineStage(xy, level_m=0.5)], h0=0.0)
    s.step(60.0)
    j, i = cells.T
    np.testing.assert_allclose(s.h[j, i], np.maximum(0.5 - s.z[j, i], 0.0), atol=1e-12)


def test_boundary_file_round_trip(tmp_path):
    toml = tmp_path / "b.toml"
    toml.write_text("""
[[edge]]
edge = "west"
kind = "discharge"
times_s = [0, 3600]
q_m2s = [1.0, 2.0]
cells = [2, 5]

[[edge]]
edge = "east"
kind = "normal_depth"
slope = "bed"

[[line]]
kind = "stage"
xy = [[0, 0], [10, 10]]
level_m = 1.5
""")
    b = FB.load_boundaries(toml)
    assert [type(s).__name__ for s in b.specs] == ["EdgeDischarge", "EdgeNormalDepth", "LineStage"]
    assert b.specs[0].cells == (2, 5)
    js = tmp_path / "b.json"
    js.write_text(json.dumps({"edge": [{"edge": "south", "kind": "zero_gradient"}]}))
    assert isinstance(FB.load_boundaries(js).specs[0], FB.EdgeZeroGradient)


@pytest.mark.parametrize("make, match", [
    (lambda: FB.EdgeClosed("up"), "edge='up' unknown"),
    (lambda: FB.EdgeDischarge("west", q_m2s=-1.0), "q_m2s must be >= 0"),
    (lambda: FB.EdgeDischarge("west", q_m2s=[1, 2, 3], times_s=[0, 20, 10]), "increase strictly"),
    (lambda: FB.EdgeStage("west", level_m=[1, 2], times_s=[0]), "one value per time"),
    (lambda: FB.EdgeStage("west", level_m=float("nan")), "finite"),
    (lambda: FB.EdgeNormalDepth("east", slope=0.0), "slope=0.0"),
    (lambda: FB.EdgeNormalDepth("east", slope="steep"), "slope='steep'"),
    (lambda: FB.EdgeZeroGradient("east", cells=(5, 2)), "cells=\\(5, 2\\)"),
    (lambda: FB.EdgeZeroGradient("east", cells=(0, 2), span_m=(0, 1)), "not both"),
    (lambda: FB.LineDischarge([[0, 0]], q_m2s=1.0), "at least two"),
    (lambda: FB.Boundaries.of({"up": "free"}), "unknown edge"),
    (lambda: FB.Boundaries.of({"west": "open"}), "'open'"),
    (lambda: FB.parse_boundaries({"edge": [{"edge": "west", "kind": "discharge"}]}, "f.toml"),
     "edge\\[0\\]: kind 'discharge' needs q_m2s"),
    (lambda: FB.parse_boundaries({"edge": [{"edge": "west", "kind": "stage", "level_m": 1, "slope": 1}]}, "f"),
     "\\['slope'\\] do not apply"),
    (lambda: FB.parse_boundaries({"edges": []}, "f.toml"), "unknown top-level key"),
    (lambda: FB.parse_boundaries({"line": [{"kind": "normal_depth", "xy": [[0, 0], [1, 1]]}]}, "f"),
     "line\\[0\\].kind='normal_depth'"),
])
def test_spec_errors_name_the_field(make, match):
    with pytest.raises(ValidationError, match=match):
        make()


def test_errors_on_the_grid():
    z = np.zeros((4, 5))
    geom = FB.Geometry(z.shape, (10.0, 0, 0.0, 0, -10.0, 40.0), z)
    with pytest.raises(ValidationError, match="past the edge's 4 faces"):
        FB.compile_boundaries([FB.EdgeStage("west", level_m=1.0, cells=(0, 5))], geom)
    with pytest.raises(ValidationError, match="holds no cell centre"):
        FB.compile_boundaries([FB.EdgeStage("north", level_m=1.0, span_m=(100.0, 200.0))], geom)
    with pytest.raises(ValidationError, match="crosses no open cell"):
        FB.compile_boundaries([FB.LineDischarge([[500, 500], [600, 600]], q_m2s=1.0)], geom)
    with pytest.raises(ValidationError, match="mask has shape"):
        FB.compile_boundaries([FB.LevelCells(np.ones((2, 2)), level_m=1.0)], geom)
    with pytest.raises(ValidationError, match="not a boundary spec"):
        FB.Boundaries(("west",))


def test_scheme_and_time_stepping_are_checked():
    with pytest.raises(ValidationError, match="scheme='sph' unknown"):
        FloodModel(np.zeros((3, 3)), dx=1.0, scheme="sph")
    with pytest.raises(ValidationError, match="time_stepping='adaptive' unknown"):
        FloodModel(np.zeros((3, 3)), dx=1.0, time_stepping="adaptive")
    m = FloodModel(np.zeros((3, 3)), dx=1.0)
    assert m.scheme == "local_inertial" and m.time_stepping == "global"
    from physics.flood_fv import FVFloodModel

    fv = FloodModel(np.zeros((3, 3)), dx=1.0, scheme="fv")
    assert type(fv) is FVFloodModel and isinstance(fv, FloodModel)


# ----------------------------------------------------------------------------
# The river reach from the command line and the API (physics/data/flood_examples/)
# ----------------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[2] / "physics" / "data" / "flood_examples"


def test_river_reach_runs_from_the_cli_and_the_api(tmp_path, one_thread):
    """The synthetic reach for 15 min: the hydrograph enters the channel, water leaves at normal depth.

    Mass: the CLI's balance closes to round-off (the summary's relative error). The API run with the
    same file, advanced in the same progress chunks as the CLI's (a chunk's end is a step's end), gives
    the same maximum depths (same model, same inputs; both stored as float32).
    """
    from click.testing import CliRunner

    from gis.raster import open_raster
    from physics.flood_run import PROGRESS_EVERY_S
    from twin.cli import main

    dem, toml = EXAMPLES / "river_reach_synthetic.tif", EXAMPLES / "river_reach.toml"
    out = tmp_path / "reach"
    r = CliRunner().invoke(main, ["flood", "run", "--dem", str(dem), "--boundaries", str(toml), "--rain-mm-h", "0",
                                  "--drainage-mm-h", "0", "--hours", "0.25", "--output-every", "900", "--out",
                                  str(out), "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout[r.stdout.index("{"):])
    assert s["volume_balance_relative_error"] <= 1e-12
    with xr.open_dataset(out / "flood.nc") as ds:
        hmax_cli = ds["max_depth"].values
        assert float(ds["volume_inflow"][-1]) > 0
    m = FloodModel(open_raster(dem), manning=0.03, boundaries=FB.load_boundaries(toml))
    api = m.run(900.0, 900.0, progress_every_s=PROGRESS_EVERY_S)
    np.testing.assert_allclose(api["max_depth"].values, np.nan_to_num(hmax_cli), atol=1e-6)
    # the inflow went into the channel rows (11, 12) of the west edge only
    assert float(api["max_depth"].values[11, 0]) > 0.5
    assert float(api["max_depth"].values[0, 0]) == 0.0


def test_cli_refuses_a_bad_boundary_file_before_the_run(tmp_path):
    from click.testing import CliRunner

    from twin.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[edge]]\nedge = "west"\nkind = "discharge"\nq_m2s = -2.0\n')
    r = CliRunner().invoke(main, ["flood", "run", "--dem", str(EXAMPLES / "river_reach_synthetic.tif"),
                                  "--boundaries", str(bad), "--rain-mm-h", "0", "--hours", "0.1", "--out",
                                  str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "boundaries" in r.output and "q_m2s must be >= 0" in r.output
    assert not (tmp_path / "o" / "flood.nc").exists()
