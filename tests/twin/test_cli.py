"""Every `twin` command runs (CliRunner on the real data) and has --help."""

import json

import pytest
import xarray as xr
from click.testing import CliRunner

from twin.cli import main


@pytest.fixture
def runner(twin_data, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(twin_data))
    return CliRunner()


def _commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_commands(main)], ids=lambda p: " ".join(p) or "twin")
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.data
def test_info(runner):
    result = runner.invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["data_dir_chosen_by"] == "$TWIN_DATA"
    rows = {r["layer"]: r for r in report["layers"]}
    assert rows["elevation"]["found"] == 1 and rows["districts"]["found"] == 9
    assert runner.invoke(main, ["info"]).exit_code == 0


@pytest.mark.data
def test_city_show_json(runner):
    result = runner.invoke(main, ["city", "show", "shenzhen", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)
    assert s["district_count"] == 9
    assert abs(s["district_area_total_km2"] - 2138) <= 10
    assert s["elevation_raw_min_m"] == -107 and s["elevation_raw_max_m"] == 924
    assert s["resolution_m"] == 30 and len(s["grid_shape"]) == 2
    text = runner.invoke(main, ["city", "show"])
    assert text.exit_code == 0 and "Futian" in text.output


@pytest.mark.data
def test_city_build_writes_netcdf_and_geotiff(runner, tmp_path):
    out = tmp_path / "static.nc"
    result = runner.invoke(main, ["city", "build", "shenzhen", "-r", "300", "--out", str(out),
                                  "--geotiff-dir", str(tmp_path / "tif")])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out)
    assert {"elevation", "land", "district", "slope"} <= set(ds.data_vars)
    assert ds["elevation"].attrs["units"] == "m"
    import rasterio

    with rasterio.open(tmp_path / "tif" / "elevation.tif") as src:
        assert src.crs.to_epsg() == 4547 and src.res == (300.0, 300.0)


def test_unknown_city_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(tmp_path))
    result = CliRunner().invoke(main, ["city", "show", "atlantis"])
    assert result.exit_code == 1
    assert "unknown city 'atlantis'" in result.output


def test_missing_data_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(tmp_path))
    result = CliRunner().invoke(main, ["city", "show", "shenzhen"])
    assert result.exit_code == 1
    assert "twin data fetch shenzhen" in result.output and "Traceback" not in result.output


@pytest.mark.data
@pytest.mark.browser
def test_city_map_is_offline_and_draws(runner, tmp_path, chromium):
    """Done-when: `twin city map shenzhen --out m.html` needs no http(s) resource and chromium draws it."""
    from viz.browser import count_non_background, screenshot
    from viz.offline import assert_offline

    out = tmp_path / "m.html"
    result = runner.invoke(main, ["city", "map", "shenzhen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert_offline(html)
    for name in ("Futian", "Longgang", "Line 1"):
        assert name in html
    shot = screenshot(out, tmp_path / "m.png", width=1000, height=700, timeout=120)
    assert shot.ready and shot.network_requests == [] and shot.console_errors == []
    drawn = count_non_background(tmp_path / "m.png")
    # The whole-city view fills about a third of the window (34 % measured at 1200x800).
    assert drawn > 0.10 * 1000 * 700
