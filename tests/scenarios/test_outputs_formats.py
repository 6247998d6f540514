"""``[outputs] formats``: zarr (fields.zarr) and geotiff (each field's worst value over the run) are written
and match fields.nc; a short coarse run of the 2023-09-07 storm on a box over central Futian."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from scenarios.files import load_scenario
from scenarios.outputs import ZARR_NAME, worst_over_time
from scenarios.run_scenario import run_scenario

SCENARIO = """
title = "Formats on a box over Futian"
description = "Fields also as Zarr and as GeoTIFFs of their maxima."
seed = 2
[time]
start = 2023-09-07T22:00:00+08:00
duration = "3 h"
[area]
bbox = [114.03, 22.52, 114.08, 22.56]
[hazards.rain]
storm = "2023-09-07"
[models.flood_forecast]
resolution = 250.0
[outputs]
frame_every = "10 min"
formats = [{formats}]
"""


def _run(tmp_path, formats: str):
    (tmp_path / "s.toml").write_text(SCENARIO.format(formats=formats))
    run, _tr = run_scenario(load_scenario(tmp_path / "s.toml"), tmp_path / "run", duration_s=1800.0,
                            map=False, report=False)
    return run, tmp_path / "run"


@pytest.fixture(scope="module")
def formats_run(twin_data, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("formats"), '"netcdf", "zarr", "geotiff"')


def test_fields_zarr_opens_with_xarray_and_equals_fields_nc(formats_run):
    run, out = formats_run
    assert run.summary["files"]["fields_zarr"] == ZARR_NAME
    assert run.summary["output_problems"] == []
    with xr.open_dataset(out / "fields.nc") as nc, xr.open_zarr(out / ZARR_NAME) as zr:
        assert set(zr.data_vars) == set(nc.data_vars) and "water_depth" in zr
        for name in nc.variables:
            np.testing.assert_array_equal(zr[name].values, nc[name].values, err_msg=name)
            assert zr[name].attrs.get("units") == nc[name].attrs.get("units")
        assert zr.attrs["crs"] == nc.attrs["crs"] == "EPSG:4547"
        assert list(zr.attrs["transform"]) == list(nc.attrs["transform"])
        assert zr.attrs["start"] == nc.attrs["start"]


def test_each_field_has_a_geotiff_of_its_maximum_with_the_run_crs(formats_run):
    run, out = formats_run
    with xr.open_dataset(out / "fields.nc") as nc:
        fields = [n for n, v in nc.data_vars.items() if v.dims == ("time", "y", "x")]
        assert "water_depth" in fields
        for name in fields:
            key = f"geotiff:{name}_max"
            assert run.summary["files"][key] == f"{name}_max.tif"
            with rasterio.open(out / f"{name}_max.tif") as src:
                assert src.crs.to_epsg() == 4547
                assert src.transform.almost_equals(Affine(*nc.attrs["transform"][:6]))
                assert (src.height, src.width) == (nc.sizes["y"], nc.sizes["x"])
                tif = src.read(1)
            want = np.fmax.reduce(nc[name].values, axis=0)
            np.testing.assert_allclose(tif, want, rtol=0, atol=0, equal_nan=True, err_msg=name)
        depth = nc["water_depth"].values
    with rasterio.open(out / "water_depth_max.tif") as src:
        assert src.units[0] == "m"
        top = src.read(1)
    # the maximum is reached at some frame, and is above the last frame where the water drained
    assert np.nanmax(top) == np.nanmax(depth) > 0
    assert np.nansum(top) >= np.nansum(depth[-1])


def test_worst_over_time_is_the_minimum_for_factor_of_safety_and_skips_nan():
    v = np.array([[[1.5, np.nan]], [[0.8, np.nan]], [[np.nan, np.nan]]])  # (time, y, x)
    fs = xr.DataArray(v, dims=("time", "y", "x"), name="factor_of_safety")
    depth = xr.DataArray(v, dims=("time", "y", "x"), name="water_depth")
    np.testing.assert_array_equal(worst_over_time(fs), [[0.8, np.nan]])
    np.testing.assert_array_equal(worst_over_time(depth), [[1.5, np.nan]])


def test_netcdf_only_writes_neither(twin_data, tmp_path):
    run, out = _run(tmp_path, '"netcdf"')
    assert not (out / ZARR_NAME).exists() and not list(out.glob("*.tif"))
    assert run.summary["output_problems"] == []
