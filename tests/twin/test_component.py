"""The Component contract (twin.component): fields by name with units, and attach to the twin (twin.coupling)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from gis.raster import make_grid
from physics.flood import FloodModel
from twin.clock import SimClock
from twin.component import Component, FieldSpec
from twin.coupling import attach, cell_outputs
from twin.errors import ClockError, GridError, TwinError, ValidationError
from twin.state import TwinState
from twin.units import convert, pint_expression

D = 10.0  # cell size (m)


def dem(ny=4, nx=5) -> xr.DataArray:
    """A gently tilted EPSG:4547 DEM, one cell blocked (NaN)."""
    z = 1.0 + 0.01 * np.arange(nx)[None, :] + np.zeros((ny, 1))
    z[0, 0] = np.nan
    return make_grid(z, Affine(D, 0, 500_000.0, 0, -D, 2_500_000.0), "EPSG:4547", units="m")


def state_on(grid: xr.DataArray, clock: SimClock) -> TwinState:
    static = xr.Dataset({"elevation": grid.fillna(0.0)}, attrs={"crs": grid.attrs["crs"],
                                                                "transform": grid.attrs["transform"]})
    return TwinState(static, clock=clock)


class Heater(Component):
    """A test-only component: every cell warms at a fixed rate (K/s); ``rate`` is an input."""

    name = "Heater"
    fields = {
        "heating__rate": FieldSpec("K/s", "in", "warming rate", attr="rate"),
        "air__temperature": FieldSpec("K", "out", "air temperature", attr="temp"),
    }

    def __init__(self, shape, rate=0.01):
        self.rate = np.full(shape, rate)
        self.temp = np.full(shape, 290.0)
        self.t = 0.0

    def step(self, dt):
        self.temp += self.rate * dt
        self.t += dt
        return dt


# -- get --------------------------------------------------------------------------------
def test_get_labels_a_copy_with_units_doc_and_the_grid():
    grid = dem()
    m = FloodModel(grid, h0=0.2)
    da = m.get("surface_water__depth")
    assert da.attrs["units"] == "m" and da.attrs["long_name"] == "water depth"
    assert da.attrs["crs"] == "EPSG:4547" and da.attrs["transform"] == tuple(grid.attrs["transform"])
    np.testing.assert_array_equal(da["x"].values, grid["x"].values)
    np.testing.assert_array_equal(da["y"].values, grid["y"].values)
    np.testing.assert_array_equal(da.values, m.h)
    da.values[:] = 5.0  # a copy: the model is untouched
    assert float(m.h.max()) == pytest.approx(0.2)


def test_get_face_fields_on_face_coordinates():
    m = FloodModel(dem(), h0=0.2)
    qx, qy = m.get("surface_water__discharge_x"), m.get("surface_water__discharge_y")
    assert qx.dims == ("y", "x_face") and qx.shape == (4, 6)
    assert qy.dims == ("y_face", "x") and qy.shape == (5, 5)
    np.testing.assert_allclose(qx["x_face"].values, 500_000.0 + D * np.arange(6))
    np.testing.assert_allclose(qy["y_face"].values, 2_500_000.0 - D * np.arange(5))


@pytest.mark.parametrize("name", [pytest.param("manning_n", id="held-squared"),
                                  pytest.param("rainfall__rate", id="rain-object")])
def test_fields_not_held_as_arrays_are_refused_by_name(name):
    m = FloodModel(dem())
    with pytest.raises(ValidationError, match=f"{name} is not held as an array"):
        m.get(name)


# -- set --------------------------------------------------------------------------------
def test_set_depth_converts_units_and_books_the_volume():
    m = FloodModel(dem(), h0=0.1)
    dt_before = m.cfl_dt()
    h = np.where(m.phi > 0, 30.0, 0.0)  # 30 cm on every open cell
    m.set("surface_water__depth", h, units="cm")
    np.testing.assert_allclose(m.h, h / 100.0)
    added = float(np.sum(m.phi * (m.h - np.where(m.phi > 0, 0.1, 0.0)))) * D * D
    b = m.balance()
    assert b["correction"] == pytest.approx(added) and abs(b["error"]) < 1e-9
    assert m.cfl_dt() < dt_before  # the CFL depth was refreshed
    m.step(30.0)
    assert m.balance()["relative_error"] < 1e-10


def test_set_takes_a_dataarray_with_its_units():
    m = FloodModel(dem(), h0=0.0)
    da = m.get("surface_water__depth")
    da.values[1:, :] = 250.0
    da.attrs["units"] = "mm"
    m.set("surface_water__depth", da)
    assert float(m.h[2, 2]) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("name", "values", "units", "error", "match"),
    [
        pytest.param("nope", 0.0, None, ValidationError, "has no field 'nope'", id="unknown"),
        pytest.param("max_depth", np.zeros((4, 5)), None, ValidationError, "is an output",
                     id="output"),
        pytest.param("topographic__elevation", np.zeros((4, 5)), None, ValidationError,
                     "read once at construction", id="fixed"),
        pytest.param("surface_water__depth", np.zeros((5, 4)), None, GridError, r"shape \(5, 4\)",
                     id="shape"),
        pytest.param("surface_water__depth", np.full((4, 5), np.nan), None, ValidationError,
                     "20 non-finite value", id="nan"),
        pytest.param("surface_water__depth", np.full((4, 5), -1.0), None, ValidationError,
                     "value -1.0 m at", id="negative"),
        pytest.param("surface_water__depth", np.zeros((4, 5)), "s", ValidationError,
                     "'s' cannot be converted to 'm'", id="units"),
        pytest.param("surface_water__depth", np.zeros((4, 5)), "furlongs_per_bar", ValidationError,
                     "not units pint knows", id="unknown-units"),
    ],
)
def test_set_refuses_bad_requests_naming_the_field(name, values, units, error, match):
    m = FloodModel(dem(), h0=0.1)
    before = m.h.copy()
    with pytest.raises(error, match=match):
        m.set(name, values, units=units)
    np.testing.assert_array_equal(m.h, before)
    assert issubclass(error, TwinError)


def test_water_on_a_blocked_cell_is_refused_and_the_old_depth_restored():
    m = FloodModel(dem(), h0=0.1)
    h = m.get("surface_water__depth").values
    h[0, 0] = 0.5  # the NaN cell of the DEM
    with pytest.raises(ValidationError, match=r"blocked cell \(0, 0\)"):
        m.set("surface_water__depth", h)
    assert m.h[0, 0] == 0.0 and m.balance()["correction"] == 0.0


def test_units_read_in_landlab_and_cf_forms():
    assert pint_expression("m2/s") == "m**2/s" and pint_expression("m s-1") == "m s**-1"
    assert pint_expression("1") == "dimensionless"
    np.testing.assert_allclose(convert([3600.0], "mm/h", "m s-1", what="rain"), [1e-3])
    np.testing.assert_allclose(convert([1.0], "m2/s", "cm2/s", what="q"), [1e4])


# -- attach -------------------------------------------------------------------------------
def test_flood_model_attached_to_clock_and_state():
    grid = dem()
    clock = SimClock()
    state = state_on(grid, clock)
    m = FloodModel(grid, h0=0.05, rain=None)
    m.set("surface_water__depth", np.where(np.arange(5)[None, :] < 2, 0.3, 0.05) * (m.phi > 0))
    att = attach(m, state, clock, period_s=60.0)
    assert att.outputs == ("surface_water__depth", "max_depth", "time_of_max_depth",
                           "arrival_time")  # face discharges skipped
    np.testing.assert_array_equal(state.field("surface_water__depth").values, m.h)
    clock.advance(180.0)
    assert att.steps == 3 and m.t == pytest.approx(180.0)
    depth = state.field("surface_water__depth")
    np.testing.assert_array_equal(depth.values, m.h)
    assert depth.attrs["units"] == "m" and depth.attrs["long_name"] == "water depth"
    np.testing.assert_array_equal(state.field("max_depth").values, m.hmax)
    assert not np.array_equal(depth.values[:, 0], np.full(4, 0.3))  # water has moved


def test_tiny_component_attached_steps_before_processes_of_the_same_instant():
    clock = SimClock()
    state = state_on(dem(), clock)
    heater = Heater((4, 5), rate=0.01)
    attach(heater, state, period_s=10.0)  # the state's clock
    seen = []

    def watcher():
        yield clock.timeout(20.0)
        seen.append(float(state.field("air__temperature").values[0, 0]))

    clock.process(watcher())
    clock.advance(30.0)
    assert seen == [pytest.approx(290.2)]  # stepped at t = 20 before the process ran
    assert heater.t == 30.0
    np.testing.assert_allclose(state.field("air__temperature").values, 290.3)
    assert state.field("air__temperature").attrs["units"] == "K"


def test_cancel_stops_the_stepping():
    clock = SimClock()
    heater = Heater((4, 5))
    att = attach(heater, state_on(dem(), clock), period_s=5.0)
    clock.advance(10.0)
    att.cancel()
    clock.advance(10.0)
    assert heater.t == 10.0 and att.steps == 2


@pytest.mark.parametrize(
    ("outputs", "period", "error", "match"),
    [
        pytest.param(["surface_water__discharge_x"], 60.0, ValidationError, "lives on faces",
                     id="face"),
        pytest.param(["topographic__elevation"], 60.0, ValidationError, "is an input", id="input"),
        pytest.param(["nope"], 60.0, ValidationError, "has no field", id="unknown"),
        pytest.param(None, 0.0, ClockError, "period_s=0.0", id="period"),
    ],
)
def test_attach_refuses_bad_outputs_and_periods(outputs, period, error, match):
    clock = SimClock()
    state = state_on(dem(), clock)
    with pytest.raises(error, match=match):
        attach(FloodModel(dem()), state, period_s=period, outputs=outputs)
    assert not state.dynamic.data_vars  # nothing written, nothing scheduled
    clock.advance(120.0)


def test_a_component_on_another_grid_is_refused():
    clock = SimClock()
    state = state_on(dem(), clock)
    with pytest.raises(GridError, match="differs from the static grid"):
        attach(FloodModel(np.ones((4, 5)), dx=D), state, period_s=60.0)


def test_cell_outputs_of_the_flood_model():
    assert cell_outputs(FloodModel(dem())) == ("surface_water__depth", "max_depth",
                                               "time_of_max_depth", "arrival_time")


def test_twin_core_imports_no_model():
    code = ("import sys, twin.component, twin.coupling, twin.state, twin.clock, twin.events, "
            "twin.errors, twin.units\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'physics', 'agents', 'viz', 'hardware_bridge', 'scenarios'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
