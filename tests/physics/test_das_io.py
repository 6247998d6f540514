"""The DAS file and its truth CSV: round trip, chunked reading, clear errors (issue 15's DAS file contract)."""

from __future__ import annotations

import datetime as dt

import netCDF4
import numpy as np
import pandas as pd
import pytest

from physics.das_io import (
    TRUTH_COLUMNS,
    iter_das,
    read_das_info,
    read_das_layout,
    read_truth,
    truth_path,
    write_das,
    write_truth,
)
from physics.das_layout import FibreLayout
from physics.das_simulate import simulate
from twin.errors import DataIntegrityError, DataMissingError, ValidationError

START = dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    lay = FibreLayout(n_channel=200, dx_m=2.0, fs_hz=500.0, line="1号线", chainage0_m=3000.0, direction=-1)
    chunks, truth = simulate(lay, 3.0, seed=3, chunk_s=0.8)
    data = [c.copy() for c in chunks]
    path = tmp_path_factory.mktemp("das") / "das.nc"
    n = write_das(path, lay, iter(data), START, "Shenzhen Twin DAS simulator, seed 3")
    return lay, np.concatenate(data), truth, path, n


def test_round_trip_arrays_and_layout(record) -> None:
    lay, data, _, path, n = record
    assert n == data.shape[0] == 1500
    assert read_das_layout(path) == lay
    got = list(iter_das(path, chunk_s=0.7))
    assert [t0 for t0, _ in got] == pytest.approx(np.arange(0, 1500, 350) / 500.0)
    assert all(c.dtype == np.float32 and c.flags.c_contiguous for _, c in got)
    np.testing.assert_array_equal(np.concatenate([c for _, c in got]), data)


def test_file_follows_the_contract(record) -> None:
    lay, _, _, path, _ = record
    with netCDF4.Dataset(path) as nc:
        assert nc.dimensions["time"].isunlimited()
        var = nc.variables["strain_rate"]
        assert var.dimensions == ("time", "channel") and var.dtype == np.float32 and var.units == "1/s"
        assert nc.variables["channel"].dtype == np.int32
        np.testing.assert_allclose(nc.variables["chainage_m"][:], 3000.0 - 2.0 * np.arange(200))
        np.testing.assert_allclose(nc.variables["time"][:3], [0.0, 0.002, 0.004])
        assert nc.getncattr("start_time") == "2026-12-04T22:00:00+08:00"
        assert nc.getncattr("source").endswith("seed 3")
        assert not hasattr(nc, "crs")
    info = read_das_info(path)
    assert info.start_time == START and info.duration_s == 3.0


def test_truth_round_trip(record, tmp_path) -> None:
    _, _, truth, path, _ = record
    p = write_truth(truth_path(path), truth)
    assert p.name == "das.truth.csv"
    back = read_truth(p)
    assert list(back.columns[: len(TRUTH_COLUMNS)]) == list(TRUTH_COLUMNS)
    pd.testing.assert_frame_equal(back, truth.astype(back.dtypes.to_dict()), rtol=1e-5)


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataMissingError, match="nope.nc"):
        read_das_layout(tmp_path / "nope.nc")
    with pytest.raises(DataMissingError, match="truth"):
        read_truth(tmp_path / "nope.truth.csv")


def test_odd_files_are_clear_errors(tmp_path) -> None:
    text = tmp_path / "text.nc"
    text.write_text("not a netcdf file")
    with pytest.raises(DataIntegrityError, match="not a readable NetCDF4"):
        next(iter_das(text))
    other = tmp_path / "other.nc"
    with netCDF4.Dataset(other, "w") as nc:
        nc.createDimension("x", 3)
        nc.createVariable("temperature", "f4", ("x",))
    with pytest.raises(DataIntegrityError, match="strain_rate"):
        read_das_layout(other)
    bad = tmp_path / "bad.truth.csv"
    pd.DataFrame({"event_id": [1], "class": ["piling"]}).to_csv(bad, index=False)
    with pytest.raises(DataIntegrityError, match="t_start_s"):
        read_truth(bad)


def test_bad_writes_are_refused(tmp_path) -> None:
    lay = FibreLayout(n_channel=4)
    with pytest.raises(ValidationError, match="start_time"):
        write_das(tmp_path / "a.nc", lay, [np.zeros((2, 4))], dt.datetime(2026, 1, 1), "x")
    with pytest.raises(ValidationError, match="chunk shape"):
        write_das(tmp_path / "b.nc", lay, [np.zeros((2, 5))], START, "x")
    with pytest.raises(ValidationError, match="chunk_s"):
        next(iter_das(tmp_path / "b.nc", chunk_s=0.0))


def test_twin_tunnel_simulate_writes_the_record(tmp_path) -> None:
    from click.testing import CliRunner

    from twin.cli import main

    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["tunnel", "simulate", "--out", str(out), "--km", "0.3", "--minutes", "0.25",
                                  "--events", "2", "--seed", "3", "--chainage0", "1200", "--direction", "-1",
                                  "--chunk-s", "0.7"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} >= {"das.nc", "das.truth.csv", "summary.json"}
    info = read_das_info(out / "das.nc")
    assert info.layout == FibreLayout(n_channel=300, line="1", chainage0_m=1200.0, direction=-1)
    assert info.n_time == 15_000 and info.source == "Shenzhen Twin DAS simulator, seed 3"
    truth = read_truth(out / "das.truth.csv")
    assert (truth["class"].isin(["drilling", "piling", "excavation", "intrusion"])).sum() == 2
    bad = CliRunner().invoke(main, ["tunnel", "simulate", "--out", str(tmp_path / "b"), "--start", "2026-01-01"])
    assert bad.exit_code != 0 and "start" in bad.output


def test_stations_from_the_line_make_trains_stop(tmp_path) -> None:
    """Line 1's second station lies at about 1011 m along the approximate alignment: a fibre over 800-1300 m has it."""
    from physics.das_sim_run import DasSimRequest, _stops_on_fibre, line_stations_m

    chain = line_stations_m("1")
    assert len(chain) == 30 and chain[0] == 0.0
    req = DasSimRequest(km=0.5, chainage0_m=800.0, stations_from_line=True, stations=[850.0])
    lay = FibreLayout(n_channel=500, chainage0_m=800.0, line="1")
    stops = _stops_on_fibre(req, lay)
    assert stops[0] == 50.0 and stops[1] == pytest.approx(chain[1] - 800.0) and len(stops) == 2


def test_xarray_opens_the_file_with_chainage_as_a_coordinate(record) -> None:
    import xarray as xr

    _, data, _, path, _ = record
    with xr.open_dataset(path, decode_times=False) as ds:
        assert "chainage_m" in ds.coords and ds["strain_rate"].dims == ("time", "channel")
        np.testing.assert_array_equal(ds["strain_rate"].values[:10], data[:10])


def test_console_form_keeps_records_small() -> None:
    """The console may ask for at most 2 km x 5 min (about 2.4 GB at 1 kHz); its default is 0.5 km x 1 min."""
    from twin.runkinds import get_kind

    kind = get_kind("tunnel_simulate")
    req = kind.validate({}, console=True)
    assert (req.km, req.minutes, req.fs_hz) == (0.5, 1.0, 1000.0)
    with pytest.raises(ValidationError, match="km"):
        kind.validate({"km": 5.0}, console=True)
