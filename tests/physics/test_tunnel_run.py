"""Run kind ``tunnel_forecast`` and ``twin tunnel forecast`` (physics/tunnel_run.py) on the example plan near Line 1.

The example plan (physics/data/tunnel_examples/line1_construction_plan.geojson) is invented for the demo. Expected
numbers come from the forecast itself (tests/physics/test_tunnel_vibration.py checks the laws against closed
forms); here the files must agree with the dataset and with each other exactly.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from twin import pipeline
from twin.cli import main
from twin.errors import RequestError, ValidationError

EXAMPLE = "physics/data/tunnel_examples/line1_construction_plan.geojson"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tunnel") / "run"
    r = CliRunner().invoke(main, ["tunnel", "forecast", EXAMPLE, "--line", "1", "--out", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output, out


def test_command_writes_every_file_and_they_agree(cli_run):
    output, out = cli_run
    names = {p.name for p in out.iterdir()}
    assert {"tunnel_forecast.nc", "segments.geojson", "segments.parquet", "ppv_table.csv", "sources.csv",
            "summary.json", "report.html", "map.html"} <= names
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["kind"] == "tunnel_forecast" and s["lines"] == ["1"] and s["limits"] == "operating"
    assert "not the real track" in s["alignment"]
    with xr.open_dataset(out / "tunnel_forecast.nc") as ds:
        assert s["segments"] == ds.sizes["segment"] and s["segments_over_limit"] == int(ds["over_limit"].sum())
        n_over = int(ds["over_limit"].sum())
    assert n_over >= 1
    seg = gpd.read_file(out / "segments.geojson")
    assert len(seg) == s["segments"] and int(seg["over_limit"].sum()) == n_over
    pq = gpd.read_parquet(out / "segments.parquet")
    assert len(pq) == len(seg) and pq.crs.to_epsg() == 4326
    table = pd.read_csv(out / "ppv_table.csv", comment="#")
    assert table["ratio"].is_monotonic_decreasing and int(table["over_limit"].sum()) == n_over
    src = pd.read_csv(out / "sources.csv")
    assert list(src["source_id"]) == [p["id"] for p in s["per_source"]]
    assert f"{n_over} segments over the limit" in output and "safe distance" in output
    assert "P1-blast-pit" in (out / "report.html").read_text(encoding="utf-8")


def test_bad_sources_are_refused_before_the_run(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"type": "blasting"}, "geometry": {"type": "Point",
                                                                            "coordinates": [114.05, 22.54]}}]}))
    out = tmp_path / "never"
    with pytest.raises(RequestError) as e:
        pipeline.run("tunnel_forecast", {"sources": str(bad)}, out)
    assert e.value.field == "sources" and "feature 0: field 'charge_kg' = None" in str(e.value)
    assert not out.exists()
    r = CliRunner().invoke(main, ["tunnel", "forecast", str(bad), "--out", str(out)])
    assert r.exit_code != 0 and "charge_kg" in r.output and not out.exists()


def test_python_api_through_the_pipeline(tmp_path):
    res = pipeline.run("tunnel_forecast", {"sources": EXAMPLE, "lines": ["1"], "limits": "construction"},
                       tmp_path / "c", report=False, map=False)
    assert res.summary["segments_over_limit"] == 0
    assert res.dataset.attrs["limits"] == "construction"


def test_depth_overrides_from_the_command_line(tmp_path):
    out = tmp_path / "deep"
    r = CliRunner().invoke(main, ["tunnel", "forecast", EXAMPLE, "--line", "1", "--depth-m", "18", "--override",
                                  "Line 1:8000-9500:depth=30,diameter=6.4", "--no-map", "--no-report",
                                  "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with xr.open_dataset(out / "tunnel_forecast.nc") as ds:
        mid = (ds["chainage_start_m"] + ds["chainage_end_m"]).values / 2
        inside = (mid >= 8000) & (mid < 9500)
        assert set(ds["depth_m"].values[inside]) == {30.0} and set(ds["diameter_m"].values[inside]) == {6.4}
        assert set(ds["depth_m"].values[~inside]) == {18.0}
    bad = CliRunner().invoke(main, ["tunnel", "forecast", EXAMPLE, "--override", "1:depth", "--out", str(out)])
    assert bad.exit_code != 0 and "LINE[:FROM-TO]:depth=D" in bad.output
    other = CliRunner().invoke(main, ["tunnel", "forecast", EXAMPLE, "--line", "1", "--override", "2-8:depth=20",
                                      "--out", str(tmp_path / "x")])
    assert other.exit_code != 0 and "'2-8'" in other.output


def test_console_form_defaults_to_the_example_plan_and_keeps_expert_fields_out():
    from twin.runkinds import get_kind

    k = get_kind("tunnel_forecast")
    req = k.validate({"lines": ["1"]}, console=True)
    assert req.sources.endswith("line1_construction_plan.geojson") and req.overrides is None
    with pytest.raises(ValidationError, match="limits_file"):
        k.validate({"limits_file": "x.toml"}, console=True)
