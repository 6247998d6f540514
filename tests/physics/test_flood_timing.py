"""Compile time apart from model time: FloodModel.warm_up, run_city_flood's attrs, summary.json."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from gis.raster import make_grid, write_geotiff
from physics._kernels import flood as K
from physics.flood import FloodModel
from physics.flood_city import city_flood_setup, dem_flood_setup, model_kwargs, run_city_flood
from physics.flood_io import flood_summary
from physics.forcing import UniformRain


@pytest.fixture
def plane(tmp_path):
    z = np.tile(np.linspace(3.0, 0.0, 30), (20, 1)).astype(np.float32)
    path = write_geotiff(make_grid(z, Affine(10.0, 0, 400000, 0, -10.0, 2500000), "EPSG:32650", units="m"),
                         tmp_path / "plane.tif")
    return dem_flood_setup(path, storm=100.0, hours=0.5, drainage_mm_h=0.0)


def test_rate_is_computed_from_the_model_time_alone(plane):
    a = run_city_flood(plane, output_every_s=600.0).attrs
    assert a["compile_s"] >= 0.0 and a["model_wall_s"] > 0.0
    assert a["compile_s"] + a["model_wall_s"] <= a["wall_time_s"]  # the model's set-up is in the total only
    assert a["cell_updates"] == a["steps"] * 20 * 30
    assert a["cell_updates_per_s"] == pytest.approx(a["cell_updates"] / a["model_wall_s"], rel=1e-12)
    assert a["cell_updates_per_s"] > a["cell_updates"] / a["wall_time_s"]


def test_summary_reports_compile_and_model_time(plane):
    ds = run_city_flood(plane, output_every_s=600.0)
    s = flood_summary(ds)
    assert s["compile_s"] == ds.attrs["compile_s"] and s["model_wall_s"] == ds.attrs["model_wall_s"]
    assert s["run_time_s"] == ds.attrs["wall_time_s"]
    assert s["compile_s"] + s["model_wall_s"] <= s["run_time_s"]
    assert s["cell_updates_per_s"] == pytest.approx(s["cell_updates"] / s["model_wall_s"], rel=1e-12)


def _tiny(dtype=np.float64) -> FloodModel:
    z = np.add.outer(np.linspace(1.0, 0.0, 6), np.linspace(0.5, 0.0, 8))
    return FloodModel(z, dx=5.0, rain=UniformRain.constant(60.0, 600.0), boundaries="free", dtype=dtype)


@pytest.mark.parametrize("dtype", [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")])
def test_warm_up_changes_nothing(dtype):
    warm, cold = _tiny(dtype), _tiny(dtype)
    assert warm.warm_up() >= 0.0
    assert warm.t == 0.0 and warm.n_steps == 0 and warm.cell_updates == 0
    assert not warm.h.any() and not warm.qx.any() and not warm._outputs.acc.any()
    a, b = warm.run(600.0, 300.0), cold.run(600.0, 300.0)
    assert warm.n_steps == cold.n_steps > 0
    np.testing.assert_array_equal(a["max_depth"].values, b["max_depth"].values)  # bit for bit
    np.testing.assert_array_equal(a["volume_storage"].values, b["volume_storage"].values)


def test_warm_up_compiles_what_the_city_run_steps_with(twin_data):
    # the city's arrays (some read-only, from the shared Domain) are the types the loop is compiled for:
    # after warm_up the run must find every specialisation it calls already there
    setup = city_flood_setup("shenzhen", resolution=90, districts="Futian", hours=0.5)
    model = FloodModel(**model_kwargs(setup))
    model.warm_up()
    compiled = set(K.advance.overloads)
    model.run(600.0, 600.0, progress_every_s=60.0)
    assert model.n_steps > 0
    assert set(K.advance.overloads) == compiled
