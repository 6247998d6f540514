"""``twin slope run``: the family is listed, --help covers every request field, a small run, refusals."""

from __future__ import annotations

import json

import xarray as xr
from click.testing import CliRunner

from twin.cli import main


def _run(*args):
    return CliRunner().invoke(main, ["slope", "run", *args], catch_exceptions=False)


def test_twin_help_lists_the_slope_family():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    assert any(line.split()[:1] == ["slope"] for line in res.output.splitlines())


def test_help_names_an_option_for_every_request_field():
    from physics.slope_run import SlopeRequest

    res = CliRunner().invoke(main, ["slope", "run", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = res.output
    flags = {"travel_angle_deg": "--travel-angle"}
    for name in SlopeRequest.model_fields:
        flag = flags.get(name, "--" + name.replace("_", "-"))
        assert flag in text, f"{name}: no {flag} in twin slope run --help"
    for opt in ("--out", "--store", "--report", "--map", "--json"):
        assert opt in text


def test_small_run_writes_its_outputs(twin_data, tmp_path):
    out = tmp_path / "gm"
    res = _run("--districts", "Guangming", "--resolution", "250", "--hours", "3", "--rain-mm-h", "40",
               "--no-runout", "--no-map", "--no-report", "--json", "--out", str(out))
    assert res.exit_code == 0, res.output
    s = json.loads(res.output[res.output.index("{"):])
    assert s["storm"]["total_mm"] == 120.0 and s["mode"] == "deterministic"
    with xr.open_dataset(out / "slope.nc") as ds:
        assert int(ds["fs_min"].notnull().sum()) == s["cells_modelled"] > 0
        assert ds.attrs["resolution_m"] == 250.0
    assert {"slope.nc", "fs_min.tif", "time_of_failure.tif", "summary.json"} <= {p.name for p in out.iterdir()}


def test_refusals_name_the_option(twin_data, tmp_path):
    res = _run("--districts", "Atlantis", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "--districts" in res.output and "Atlantis" in res.output
    assert not (tmp_path / "x").exists()
    res = _run("--storm", "2023-09-07", "--rain-mm-h", "5", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "one rain source" in res.output
    res = _run("--flood", "7", "--out", str(tmp_path / "x"))
    assert res.exit_code == 1 and "--store" in res.output
    res = _run("--members", "0", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "--members" in res.output


def test_dem_run(tmp_path):
    """A synthetic DEM: a 30-degree plane over a flat strip (flat cells are not modelled)."""
    import numpy as np
    from affine import Affine

    from gis.raster import make_grid, write_geotiff

    x = np.arange(40) * 20.0
    z = np.where(x < 200.0, 0.0, (x - 200.0) * np.tan(np.radians(30.0)))
    dem = write_geotiff(make_grid(np.tile(z, (30, 1)).astype(np.float32), Affine(20, 0, 300000, 0, -20, 2500000),
                                  "EPSG:32650", units="m"), tmp_path / "dem.tif")
    out = tmp_path / "o"
    res = _run("--dem", str(dem), "--rain-mm-h", "30", "--storm-hours", "6", "--hours", "12", "--no-map",
               "--no-report", "--out", str(out))
    assert res.exit_code == 0, res.output
    with xr.open_dataset(out / "slope.nc") as ds:
        fs = ds["fs_min"].values
        slope = ds["slope"].values
        assert ds.attrs["crs"] == "EPSG:32650" and ds.attrs["resolution_m"] == 20.0
    assert np.isnan(fs[:, :9]).all()  # the flat strip (Horn's window reaches the plane from column 9)
    inner = fs[2:-2, 12:-2]
    np.testing.assert_allclose(slope[2:-2, 12:-2], 30.0, atol=1e-3)
    assert np.isfinite(inner).all() and np.ptp(inner) < 1e-5  # one slope, one soil: one FS
