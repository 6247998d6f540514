"""``twin flood run``: outputs open in rasterio/xarray, summary fields, option validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from click.testing import CliRunner

from gis.raster import make_grid, write_geotiff
from twin.cli import main


def _run(*args):
    return CliRunner().invoke(main, ["flood", "run", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def futian_run(twin_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("flood") / "futian"
    res = _run("--districts", "Futian", "--hours", "0.5", "--resolution", "90", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out, res


def test_outputs_open_and_agree(futian_run):
    out, res = futian_run
    names = {p.name for p in out.iterdir()}
    assert {"flood.nc", "max_depth.tif", "arrival_time.tif", "time_of_max_depth.tif", "max_depth.png",
            "summary.json"} <= names
    with xr.open_dataset(out / "flood.nc") as ds:
        assert {"depth", "speed", "max_depth", "arrival_time", "flooded_area", "volume_error"} <= set(ds)
        assert ds["spatial_ref"].attrs["spatial_ref"]  # CF grid mapping: QGIS reads the CRS
        assert ds["max_depth"].attrs["grid_mapping"] == "spatial_ref"
        assert ds.sizes["time"] == 4  # 0, 600, 1200, 1800 s
        md_nc = ds["max_depth"].values
    with rasterio.open(out / "max_depth.tif") as src:
        assert src.crs.to_epsg() == 4547
        md_tif = src.read(1)
        assert src.transform.a == 90.0
    np.testing.assert_array_equal(np.isnan(md_tif), np.isnan(md_nc))
    np.testing.assert_allclose(md_tif, md_nc, equal_nan=True)
    with rasterio.open(out / "arrival_time.tif") as src:
        at = src.read(1)
        assert np.nanmax(at) <= 1800.0 and np.nanmin(at) > 0
    from PIL import Image

    with Image.open(out / "max_depth.png") as im:
        assert im.size[0] > 800


def test_summary_fields(futian_run):
    out, res = futian_run
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["region"] == "Futian" and s["grid"]["resolution_m"] == 90.0
    assert s["storm"]["method"] == "alternating_block" and s["storm"]["duration_h"] == 0.5
    assert abs(s["volume_balance_relative_error"]) <= 1e-9
    for k in ("rain", "drainage", "outflow", "level_exchange", "storage", "error"):
        assert k in s["volumes_m3"]
    assert set(s["flooded_area_end_km2"]) == {">=0.15m", ">=0.3m", ">=0.5m", ">=1m"}
    a = s["flooded_area_end_km2"]
    assert a[">=0.15m"] >= a[">=0.3m"] >= a[">=0.5m"] >= a[">=1m"]
    assert s["max_depth_m"] > 0 and s["steps"] > 0 and s["cell_updates_per_s"] > 0 and s["run_time_s"] > 0
    hr = s["waterlogging_hit_rate"]
    assert hr["n_points"] == 206 and 0 < hr["n_in_domain"] < 206
    assert 0 <= hr["hit_rate"] <= 1 and 0 <= hr["random_hit_rate"] <= 1
    assert "reporting only" in res.output


def test_dem_file_run(tmp_path):
    z = np.tile(np.linspace(2.0, 0.0, 40), (30, 1)).astype(np.float32)
    dem = write_geotiff(make_grid(z, Affine(20, 0, 300000, 0, -20, 2500000), "EPSG:32650", units="m"),
                        tmp_path / "dem.tif")
    res = _run("--dem", str(dem), "--rain-mm-h", "60", "--hours", "0.5", "--out", str(tmp_path / "o"),
               "--float32", "--output-every", "900")
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["dtype"] == "float32" and "waterlogging_hit_rate" not in s
    assert s["grid"]["resolution_m"] == 20.0  # the DEM's own cell size
    assert s["volumes_m3"]["outflow"] > 0
    assert s["storm"]["total_mm"] == pytest.approx(30.0)


def test_wave_depth_cap_reaches_the_model(tmp_path):
    z = np.tile(np.linspace(2.0, 0.0, 40), (30, 1)).astype(np.float32)
    dem = write_geotiff(make_grid(z, Affine(20, 0, 300000, 0, -20, 2500000), "EPSG:32650", units="m"),
                        tmp_path / "dem.tif")
    res = _run("--dem", str(dem), "--rain-mm-h", "60", "--hours", "0.25", "--out", str(tmp_path / "o"),
               "--wave-depth-cap", "0.5", "--no-report")
    assert res.exit_code == 0, res.output
    with xr.open_dataset(tmp_path / "o" / "flood.nc") as ds:
        assert float(ds.attrs["wave_depth_cap_m"]) == 0.5
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert abs(s["volume_balance_relative_error"]) <= 1e-9  # the cap leaves volumes exact


@pytest.mark.parametrize("args, message", [
    (["--city", "shenzhen", "--dem", "{dem}"], "either --city or --dem"),
    (["--storm", "2023-09-07", "--rain-mm-h", "10"], "either --storm or --rain-mm-h"),
    (["--hours", "-1"], "--hours"),
    (["--hours", "nan"], "--hours"),
    (["--resolution", "0"], "--resolution"),
    (["--output-every", "0"], "--output-every"),
    (["--wave-depth-cap", "0"], "--wave-depth-cap"),
    (["--peak-fraction", "2"], "--peak-fraction"),
    (["--drainage-mm-h", "Futian=abc"], "NAME=MM_H"),
    (["--drainage-mm-h", "-3"], ">= 0 mm/h"),
    (["--dem", "{dem}", "--districts", "Futian"], "--districts needs a city"),
])
def test_option_errors(tmp_path, args, message):
    dem = tmp_path / "d.tif"
    write_geotiff(make_grid(np.zeros((4, 4), np.float32), Affine(10, 0, 0, 0, -10, 40), "EPSG:32650"), dem)
    args = [a.replace("{dem}", str(dem)) for a in args]
    res = CliRunner().invoke(main, ["flood", "run", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "o").exists()


def test_engine_errors_are_clean(twin_data, tmp_path):
    res = CliRunner().invoke(main, ["flood", "run", "--districts", "Atlantis", "--resolution", "90",
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "Atlantis" in res.output and "Futian" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["flood", "run", "--storm", "1999-01-01", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "2023-09-07" in res.output


def test_help_documents_units():
    res = CliRunner().invoke(main, ["flood", "run", "--help"])
    assert res.exit_code == 0
    for unit in ("(h)", "(m)", "mm/h", "(s of simulated time)"):
        assert unit in res.output
