"""Every command answers a wrong input file with one line: the file, what was expected, exit != 0.

No traceback, no library hint (xarray's "IO backends", GDAL's format list), no click usage text.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from click.testing import CliRunner

from gis.raster import make_grid, write_geotiff
from twin.cli import main
from twin.cli._util import check_input
from twin.errors import DataIntegrityError, DataMissingError


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A folder of wrong (and a few right) inputs; the CWD, so names in messages are short."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notadem.tif").write_text("hello, I am text\n")
    (tmp_path / "text.nc").write_text("hello, I am text\n")
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02\xff binary")
    (tmp_path / "broken.toml").write_text("a = [\n")
    (tmp_path / "empty_dir").mkdir()
    xr.Dataset({"elevation": (("y", "x"), np.zeros((2, 2)))}).to_netcdf(tmp_path / "static.nc")
    xr.Dataset({"max_depth": (("y", "x"), np.zeros((2, 2))),
                "arrival_time": (("y", "x"), np.zeros((2, 2)))}).to_netcdf(tmp_path / "run.nc")
    plain = make_grid(np.zeros((4, 4), np.float32), Affine(30, 0, 0, 0, -30, 120), "EPSG:4547")
    write_geotiff(plain, tmp_path / "dem.tif")
    import rasterio

    with rasterio.open(tmp_path / "nocrs.tif", "w", driver="GTiff", width=4, height=4, count=1,
                       dtype="float32", transform=Affine(30, 0, 0, 0, -30, 120)) as dst:
        dst.write(np.zeros((1, 4, 4), np.float32))
    return tmp_path


def _fl(*a):
    return ["flood", *a]


CASES = [
    # (argv, the file named, phrase of what was expected)
    pytest.param(_fl("map", "notadem.tif", "--out", "m.html"), "notadem.tif", "flood run's NetCDF", id="map-text-tif"),
    pytest.param(_fl("map", "text.nc", "--out", "m.html"), "text.nc", "not a NetCDF file", id="map-text-nc"),
    pytest.param(_fl("map", "missing.nc", "--out", "m.html"), "missing.nc", "does not exist", id="map-missing"),
    pytest.param(_fl("map", "empty_dir", "--out", "m.html"), "empty_dir", "holds no flood.nc", id="map-dir"),
    pytest.param(_fl("map", "static.nc", "--out", "m.html"), "static.nc", "'max_depth'", id="map-other-netcdf"),
    pytest.param(_fl("map", "run.nc", "--out", "m.html", "--compare", "text.nc"), "text.nc", "flood run's NetCDF",
                 id="map-compare-text"),
    pytest.param(_fl("map", "run.nc", "--out", "m.html", "--compare", "missing.nc"), "missing.nc", "does not exist",
                 id="map-compare-missing"),
    pytest.param(_fl("report", "text.nc"), "text.nc", "not a NetCDF file", id="report-text-nc"),
    pytest.param(_fl("report", "missing.nc"), "missing.nc", "does not exist", id="report-missing"),
    pytest.param(_fl("report", "empty_dir"), "empty_dir", "holds no flood.nc", id="report-dir"),
    pytest.param(_fl("run", "--dem", "notadem.tif", "--out", "o"), "notadem.tif", "not a raster GDAL can read",
                 id="run-dem-text"),
    pytest.param(_fl("run", "--dem", "nocrs.tif", "--out", "o"), "nocrs.tif", "no CRS", id="run-dem-no-crs"),
    pytest.param(_fl("run", "--dem", "empty_dir", "--out", "o"), "empty_dir", "is a folder", id="run-dem-dir"),
    pytest.param(_fl("run", "--dem", "missing.tif", "--out", "o"), "missing.tif", "does not exist",
                 id="run-dem-missing"),
    pytest.param(["bridge", "replay", "binary.csv", "--store", "st"], "binary.csv", "binary", id="replay-binary"),
    pytest.param(["bridge", "replay", "missing.csv", "--store", "st"], "missing.csv", "does not exist",
                 id="replay-missing"),
    pytest.param(["bridge", "replay", "empty_dir", "--store", "st"], "empty_dir", "is a folder", id="replay-dir"),
    pytest.param(["bridge", "replay", "run.nc", "--store", "notadem.tif"], "notadem.tif", "not a folder",
                 id="replay-store-is-file"),
    pytest.param(["bridge", "plot", "--store", "notadem.tif", "--datastream", "A/co", "--out", "x.png"],
                 "notadem.tif", "twin store", id="plot-store-is-file"),
    pytest.param(["bridge", "plot", "--store", "missing", "--datastream", "A/co", "--out", "x.png"],
                 "missing", "does not exist", id="plot-store-missing"),
    pytest.param(["bridge", "plot", "--store", "empty_dir", "--datastream", "A/co", "--out", "x.png"],
                 "empty_dir", "holds no twin.sqlite", id="plot-store-not-a-store"),
    pytest.param(["bridge", "inspect", "--store", "empty_dir"], "empty_dir", "holds no twin.sqlite",
                 id="inspect-store-not-a-store"),
    pytest.param(["serve", "--store", "notadem.tif"], "notadem.tif", "not a folder", id="serve-store-file"),
]


@pytest.mark.parametrize(("argv", "name", "phrase"), CASES)
def test_wrong_input_file_is_one_line(files, argv, name, phrase):
    res = CliRunner().invoke(main, argv)
    assert res.exit_code not in (0, None), res.output
    assert isinstance(res.exception, SystemExit), res.exception  # not an unhandled error
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert name in err and phrase in err, err
    assert "Traceback" not in res.output and "Usage:" not in err and "backends" not in err, err


def test_plot_on_a_plain_folder_creates_no_store(files):
    res = CliRunner().invoke(main, ["bridge", "plot", "--store", "empty_dir", "--datastream", "A/co",
                                    "--out", "x.png"])
    assert res.exit_code == 1
    assert list((files / "empty_dir").iterdir()) == []  # a reader must not create twin.sqlite


def test_alert_config_that_is_not_toml(files):
    from twin.store import Store

    with Store.open(files / "store"):
        pass
    res = CliRunner().invoke(main, ["bridge", "plot", "--store", "store", "--datastream", "A/co", "--out", "x.png",
                                    "--alert-config", "broken.toml"])
    err = res.stderr.strip()
    assert res.exit_code == 1 and len(err.splitlines()) == 1, err
    assert "broken.toml is not an alert thresholds TOML" in err, err


def test_right_inputs_pass_and_folders_resolve(files):
    assert check_input(files / "run.nc", "flood_run") == files / "run.nc"
    (files / "a_run").mkdir()
    (files / "run.nc").rename(files / "a_run" / "flood.nc")
    assert check_input(files / "a_run", "flood_run") == files / "a_run" / "flood.nc"
    assert check_input(files / "dem.tif", "dem") == files / "dem.tif"
    assert check_input(files / "new_store", "store_dir") == files / "new_store"  # created later


@pytest.mark.parametrize(("name", "kind", "cls"), [
    pytest.param("missing.nc", "flood_run", DataMissingError, id="missing"),
    pytest.param("text.nc", "flood_run", DataIntegrityError, id="wrong-content"),
    pytest.param("empty_dir", "store", DataMissingError, id="folder-lacks-its-file"),
])
def test_check_input_raises_twin_errors(files, name, kind, cls):
    with pytest.raises(cls, match=name):
        check_input(files / name, kind)
