"""Ensembles on a real dask LocalCluster (scenarios.ensemble, scenarios.ensemble_products, twin ensemble).

Members are tiny flood runs (Futian at 500 m for 0.5 h, ~1-2 s each) and a
test kind loaded as a plug-in file (in this process and, through
``$TWIN_PLUGINS``, in the cluster's worker processes) whose member fails on purpose.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from scenarios.ensemble import member_params, parse_dist, perturbation, run_ensemble
from scenarios.ensemble_products import ensemble_products, exceedance
from twin.errors import ValidationError

BASE = {"districts": ["Futian"], "resolution": 500.0, "hours": 0.5, "rain_mm_h": 80.0}
PERTURB = {"seed": 7, "rain_scale": {"dist": "lognormal", "cv": 0.3},
           "rain_timing": {"dist": "normal", "sd": 0.1},
           "params": {"tide_m": {"dist": "uniform", "low": 0.0, "high": 1.0}}}
N = 4

PLUGIN = '''
from pydantic import BaseModel, ConfigDict
from twin.runkinds import RunKind, RunOutputs, register_kind


class Req(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    value: float = 1.0
    fail_above: float = 1.5


def run(req, ctx):
    import numpy as np
    import xarray as xr

    if req.value > req.fail_above:
        raise RuntimeError(f"value {req.value} above {req.fail_above}")
    return xr.Dataset({"field": (("y", "x"), np.full((3, 4), req.value))},
                      coords={"y": [2.5e6, 2.4999e6, 2.4998e6], "x": [5e5, 5.001e5, 5.002e5, 5.003e5]},
                      attrs={"crs": "EPSG:4547", "transform": [100.0, 0, 499950.0, 0, -100.0, 2500050.0]})


def write(ds, out, req, ctx):
    return RunOutputs(paths={}, summary={"value": req.value, "nested": {"twice": 2 * req.value}})


KIND = register_kind(RunKind(name="ens_test_member", title="Ensemble test member", request=Req, run=run,
                             write=write, layers=lambda ds, **kw: [], output="field.nc", compare="field",
                             summary_keys=("value", "nested")))
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real LocalCluster (2 worker processes, one thread each, 127.0.0.1) that knows the test kind."""
    import logging

    from distributed import LocalCluster

    from twin.runkinds import load_file, unregister_kind

    plugin = tmp_path_factory.mktemp("plugin") / "ens_test_kind.py"
    plugin.write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    load_file(plugin)
    old = os.environ.get("TWIN_PLUGINS")
    os.environ["TWIN_PLUGINS"] = str(plugin)  # the workers' discovery loads it too
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=":0", silence_logs=logging.ERROR) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("TWIN_PLUGINS", None)
        else:
            os.environ["TWIN_PLUGINS"] = old
        unregister_kind("ens_test_member")


@pytest.fixture(scope="module")
def flood_runs(cluster, twin_data, tmp_path_factory):
    """The same flood ensemble on the 2-worker cluster and on a new 1-worker LocalCluster."""
    two = tmp_path_factory.mktemp("ens2")
    one = tmp_path_factory.mktemp("ens1")
    seen = []
    r2 = run_ensemble("flood_forecast", BASE, PERTURB, N, two, scheduler=cluster.scheduler_address,
                      progress=seen.append)
    r1 = run_ensemble("flood_forecast", BASE, PERTURB, N, one, workers=1)
    return r1, r2, seen


def test_same_seed_same_members_whatever_the_worker_count(flood_runs):
    r1, r2, seen = flood_runs
    assert (r1.workers, r2.workers) == (1, 2)
    assert not r1.failed and not r2.failed
    a, b = xr.open_zarr(r1.zarr), xr.open_zarr(r2.zarr)
    assert a["max_depth"].shape[0] == N and bool(a["member_ok"].all())
    np.testing.assert_array_equal(a["max_depth"].values, b["max_depth"].values)
    # members differ from each other (the perturbation acts)
    assert not np.array_equal(a["max_depth"].values[0], a["max_depth"].values[1], equal_nan=True)
    assert a.attrs["crs"] == "EPSG:4547"
    assert [p["done"] for p in seen if p["phase"] == "members"] == list(range(1, N + 1))


def test_members_table_lists_parameters_and_kpis(flood_runs):
    import csv

    r1, _, _ = flood_runs
    rows = list(csv.DictReader(r1.table.open(encoding="utf-8")))
    assert [int(r["member"]) for r in rows] == list(range(N))
    expected = member_params("flood_forecast", BASE, PERTURB, N)
    for r, e in zip(rows, expected, strict=True):
        assert r["status"] == "ok"
        assert float(r["param.rain_scale"]) == pytest.approx(e["rain_scale"]) and e["rain_mm_h"] == 80.0
        assert float(r["param.tide_m"]) == pytest.approx(e["tide_m"])
        assert float(r["kpi.max_depth_m"]) > 0 and float(r["cpu_s"]) > 0


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning", "ignore:Degrees of freedom:RuntimeWarning")
def test_exceedance_equals_fraction_of_members(flood_runs):
    r1, _, _ = flood_runs
    stack = np.stack([xr.open_dataset(r1.out_dir / "members" / f"m{m:04d}" / "flood.nc")["max_depth"].values
                      for m in range(N)]).astype(np.float64)
    finite = np.isfinite(stack)
    for threshold in (None, 0.1):  # None: the default P(depth > 0.3 m)
        paths = ensemble_products(r1.out_dir, threshold=threshold)
        with xr.open_dataset(paths["netcdf"]) as f:
            prod = f.load()
        thr = 0.3 if threshold is None else threshold
        direct = np.where(finite.any(axis=0), (stack > thr).sum(axis=0) / finite.sum(axis=0).clip(1), np.nan)
        np.testing.assert_allclose(prod["exceedance"].values, direct, atol=1e-6)
        assert prod["exceedance"].attrs["threshold"] == thr
    p = prod["exceedance"].values
    assert np.any((p > 0) & (p < 1))  # the members disagree somewhere at 0.1 m
    np.testing.assert_allclose(prod["p50"].values, np.nanpercentile(stack, 50, axis=0), rtol=1e-5)
    np.testing.assert_allclose(prod["spread"].values, np.nanstd(stack, axis=0), rtol=1e-5, atol=1e-7)
    assert prod.attrs["crs"] == "EPSG:4547" and paths["exceedance"].is_file()
    kpis = paths["kpis"].read_text(encoding="utf-8").splitlines()
    assert kpis[0].startswith("kpi,n,mean") and any(line.startswith("max_depth_m,4,") for line in kpis)


def test_failing_member_is_reported_with_its_parameters(cluster, tmp_path):
    spec = {"seed": 1, "params": {"value": {"dist": "uniform", "low": 0.0, "high": 3.0}}}
    res = run_ensemble("ens_test_member", {}, spec, 6, tmp_path, scheduler=cluster.scheduler_address)
    values = [p["value"] for p in member_params("ens_test_member", {}, spec, 6)]
    bad = sorted(m for m, v in enumerate(values) if v > 1.5)
    assert bad and len(bad) < 6  # the seed gives both outcomes
    assert sorted(f["member"] for f in res.failed) == bad
    for f in res.failed:
        assert f["params"]["value"] == values[f["member"]] and "above" in f["error"]
    ds = xr.open_zarr(res.zarr)
    ok = ds["member_ok"].values
    assert [m for m in range(6) if not ok[m]] == bad
    assert np.isnan(ds["field"].values[bad]).all()
    good = [m for m in range(6) if ok[m]]
    np.testing.assert_allclose(ds["field"].values[good, 0, 0], [values[m] for m in good])
    manifest = res.manifest.read_text(encoding="utf-8")
    assert '"failed"' in manifest and str(values[bad[0]])[:6] in manifest
    # products use the members that finished; KPIs flattened (nested.twice)
    paths = ensemble_products(tmp_path, threshold=1.0)
    p = xr.open_dataset(paths["netcdf"])["exceedance"].values
    assert np.allclose(p, np.mean([values[m] > 1.0 for m in good]))
    assert "nested.twice" in paths["kpis"].read_text(encoding="utf-8")


def test_member_draws_independent_of_member_count(twin_data):
    four = member_params("flood_forecast", BASE, PERTURB, 4)
    six = member_params("flood_forecast", BASE, PERTURB, 6)
    assert four == six[:4]
    assert four != member_params("flood_forecast", BASE, {**PERTURB, "seed": 8}, 4)
    assert all(0.0 <= m["peak_fraction"] <= 1.0 for m in six)


@pytest.mark.parametrize("spec, words", [
    ({"rain_scale": {"dist": "normal", "sd": 0.2}}, "rain_scale"),
    ({"rain_scale": {"dist": "uniform", "low": 2.0, "high": 1.0}}, "low < high"),
    ({"params": {"manning": {"dist": "normal", "sd": 0.1}}}, "no field 'manning'"),
    ({"params": {"districts": {"dist": "normal", "sd": 0.1}}}, "not a number"),
    ({"params": {"wave_depth_cap_m": {"dist": "normal", "sd": 0.1}}}, "wave_depth_cap_m=None"),
    ({"params": {"hours": {"dist": "uniform", "low": -1.0, "high": 0.1}}}, "member"),
    ({"rain_timing": {"dist": "normal", "cv": 0.1}}, "normal takes ['sd']"),
    ({"seed": -1}, "seed"),
])
def test_bad_spec_refused_before_anything_runs(spec, words, tmp_path, twin_data):
    out = tmp_path / "never"
    with pytest.raises(ValidationError) as err:
        run_ensemble("flood_forecast", BASE, spec, 3, out, workers=1)
    assert words in str(err.value)
    assert not out.exists()  # no folder, no cluster: nothing ran


def test_design_storm_is_scaled_through_the_requests_rain_scale(twin_data):
    base = {**BASE, "rain_mm_h": None, "storm": "2023-09-07"}
    members = member_params("flood_forecast", base, {"seed": 3, "rain_scale": {"dist": "lognormal", "cv": 0.2}}, 8)
    scales = np.array([m["rain_scale"] for m in members])
    assert all(m["storm"] == "2023-09-07" and m["rain_mm_h"] is None for m in members)
    assert len(set(scales.tolist())) == 8 and (scales > 0).all()  # drawn per member, storm kept


def test_parse_dist_and_exceedance_direction():
    assert parse_dist("uniform:0.5,1.5").model_dump(exclude_none=True) == {"dist": "uniform", "low": 0.5,
                                                                           "high": 1.5}
    assert parse_dist("lognormal:0.3").cv == 0.3
    for bad in ("normal", "gamma:1", "uniform:1", "normal:x"):
        with pytest.raises(ValidationError, match="normal:SD"):
            parse_dist(bad)
    with pytest.raises(ValidationError, match="rain_timing=.*allowed are normal"):
        perturbation({"rain_timing": {"dist": "lognormal", "cv": 0.2}})
    v = np.array([[0.5, np.nan], [1.5, np.nan], [0.9, np.nan]])
    np.testing.assert_allclose(exceedance(v, 1.0, "below"), [2 / 3, np.nan])
    np.testing.assert_allclose(exceedance(v, 1.0, "above"), [1 / 3, np.nan])


def test_cli_help_and_bad_param_refused(tmp_path, twin_data):
    from twin.cli.ensemble import COMMAND

    runner = CliRunner()
    res = runner.invoke(COMMAND, ["run", "--help"])
    assert res.exit_code == 0 and "--scheduler" in res.output and "--rain-cv" in res.output
    out = tmp_path / "never"
    res = runner.invoke(COMMAND, ["run", "flood", "--members", "2", "--param", "manning=normal:0.1",
                                  "--set", "districts=Futian", "--out", str(out)])
    assert res.exit_code == 1 and "no field 'manning'" in res.output and not out.exists()
    res = runner.invoke(COMMAND, ["run", "flood", "--members", "2", "--param", "tide_m=gamma:2",
                                  "--out", str(out)])
    assert res.exit_code == 1 and "normal:SD" in res.output


def test_cli_products_command(flood_runs):
    from twin.cli.ensemble import COMMAND

    r1, _, _ = flood_runs
    res = CliRunner().invoke(COMMAND, ["products", str(r1.out_dir), "--threshold", "0.1"])
    assert res.exit_code == 0, res.output
    prod = xr.open_dataset(r1.out_dir / "products.nc")
    assert prod["exceedance"].attrs["threshold"] == 0.1
