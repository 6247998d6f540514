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
