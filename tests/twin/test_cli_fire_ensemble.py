"""``twin fire ensemble``: the files it writes agree with the ensemble Dataset; bad origins are refused
before any member runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from twin.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, ["fire", "ensemble", *args], catch_exceptions=False, terminal_width=200,
                              prog_name="twin")


def test_help():
    res = _invoke("--help")
    assert res.exit_code == 0 and "Usage: twin fire ensemble" in res.output and "--origins" in res.output


def test_ensemble_writes_netcdf_csv_and_summary(tmp_path):
    out = tmp_path / "ens"
    res = _invoke("tower_30_residential", "--origins", "5,12:flat B", "--growths", "fast,ultrafast",
                  "--duration", "240", "--workers", "1", "--sprinklers", "off", "--out", str(out))
    assert res.exit_code == 0, res.output
    ds = xr.open_dataset(out / "ensemble.nc")
    assert ds.sizes["member"] == 4 and bool(ds["member_ok"].all())
    pairs = zip(ds["member_floor"].values.tolist(), ds["member_growth"].values.tolist(), strict=True)
    assert sorted(set(pairs)) == [(5, "fast"), (5, "ultrafast"), (12, "fast"), (12, "ultrafast")]
    assert set(ds["member_compartment"].values[ds["member_floor"].values == 12]) == {"12/flat B"}
    table = pd.read_csv(out / "storeys.csv")
    assert len(table) == ds.sizes["storey"]
    # the CSV's P50 is the Dataset's (written to 0.1 s)
    p50 = ds["aset_percentile_s"].sel(percentile=50.0).values
    np.testing.assert_allclose(table["aset_p50_s"].values, p50, atol=0.05, equal_nan=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["members"] == 4 and summary["members_ok"] == 4 and summary["dt_s"] == 2.0
    untenable = np.flatnonzero(ds["aset_s"].notnull().any("member").values).tolist()
    assert summary["storeys_untenable_in_any_member"] == untenable
    # a fast fire with sprinklers off makes its origin storey untenable within 240 s (ASET < 240 s on the
    # origin in both growths), so both origins appear
    assert {5, 12} <= set(untenable)


@pytest.mark.parametrize(("origins", "says"), [("200", "origins[0]=(200, None)"),
                                                ("5:no such room", "'5/no such room' is not in building"),
                                                ("x", "'x': give a storey index")])
def test_bad_origins_are_refused_before_any_member_runs(tmp_path, origins, says):
    out = tmp_path / "ens"
    res = CliRunner().invoke(main, ["fire", "ensemble", "tower_30_residential", "--origins", origins,
                                    "--workers", "1", "--out", str(out)], terminal_width=200)
    assert res.exit_code != 0
    assert says in res.output
    assert not (out / "ensemble.nc").exists()


def test_window_option(tmp_path):
    out = tmp_path / "ens"
    res = _invoke("tower_30_residential", "--origins", "14", "--growths", "fast", "--duration", "60",
                  "--workers", "1", "--window", "2,3", "--json", "--out", str(out))
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["window"] == "2,3" and summary["members_windowed"] + summary["window_fallbacks"] == 1
    ds = xr.open_dataset(out / "ensemble.nc")
    assert ds.attrs["window"] == "2,3"


@pytest.mark.parametrize("window", ["wide", "0,3", "2"])
def test_bad_window_is_refused(tmp_path, window):
    res = CliRunner().invoke(main, ["fire", "ensemble", "tower_30_residential", "--origins", "3", "--window", window,
                                    "--workers", "1", "--out", str(tmp_path / "ens")], terminal_width=200)
    assert res.exit_code != 0 and "window" in res.output
