"""The slope coupling on the run's rain (Guangming at 90 m, the assumed 2015 dump, real data).

Its factor of safety is the kernel of ``twin slope run`` evaluated at each
step's time: the minimum over the steps of a 2 h coupled run equals the
slope run's ``fs_min`` over the same hours, grid, fill and storm (same
kernel, same times: round-off); a failure becomes a ``slope_failure`` event
at the step it happens, once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from scenarios.coupling import get_coupling
from scenarios.runner import run_coupled
from twin.errors import ValidationError

DUMP = Path(__file__).resolve().parents[2] / "physics" / "data" / "guangming_2015_dump_assumed.geojson"
GRID = {"districts": ["Guangming"], "resolution_m": 90.0, "buffer_m": 500.0, "seed": 3}


def config(hours: float, **slope):
    return GRID | {"duration_s": hours * 3600.0, "output_every_s": 3600.0,
                   "couplings": {"rain": {"storm": "2023-09-07"}, "slope": {"fills": str(DUMP)} | slope}}


@pytest.fixture(scope="module")
def run(twin_data, tmp_path_factory):
    return run_coupled(config(2.0), tmp_path_factory.mktemp("slope") / "run")


def test_the_coupled_minimum_fs_equals_twin_slope_runs_fs_min(run, tmp_path):
    from twin.pipeline import run as run_kind

    alone = run_kind("slope_forecast", {"districts": ["Guangming"], "resolution": 90.0, "buffer_m": 500.0,
                                        "hours": 2.0, "storm": "2023-09-07", "fills": str(DUMP),
                                        "runout": False}, tmp_path / "alone", report=False, map=False)
    fs_alone = alone.dataset["fs_min"].values.astype(np.float64)
    with xr.open_dataset(run.paths["fields"]) as ds:
        assert ds["time"].values.tolist() == [0.0, 3600.0, 7200.0]
        fs_min = ds["min_factor_of_safety"].values[-1].astype(np.float64)
        fs_steps = ds["factor_of_safety"].values.astype(np.float64)
    modelled = np.isfinite(fs_alone)
    assert modelled.sum() == run.summary["couplings"]["slope"]["cells_modelled"] > 1000
    np.testing.assert_array_equal(np.isfinite(fs_min), modelled)
    np.testing.assert_allclose(fs_min[modelled], fs_alone[modelled], rtol=1e-6)  # float32 frames
    # the running minimum is the minimum of the FS at each step
    np.testing.assert_allclose(fs_steps[:, modelled].min(axis=0), fs_min[modelled], rtol=1e-6)


def test_failures_are_events_once_with_their_cells(run):
    events = [e for e in run.state.events if e.kind == "slope_failure"]
    with xr.open_dataset(run.paths["fields"]) as ds:
        failed = ds["slope_failed"].values
        slip = ds["slip_depth"].values
    assert events, "the assumed dump has cells with FS < 1 at 90 m"
    assert sum(e.data["n"] for e in events) == int(failed[-1].sum()) == \
        run.summary["couplings"]["slope"]["cells_failed"]
    assert np.all(np.diff(failed, axis=0) >= 0)  # a failed cell stays failed
    assert np.all(slip[-1][failed[-1] == 1] > 0) and np.all(slip[-1][failed[-1] == 0] == 0)
    for e in events:
        assert e.data["area_m2"] == e.data["n"] * 90.0 ** 2
        assert len(e.data["cells"]) == min(e.data["n"], 200)
        lon, lat = np.array(e.data["cells"]).mean(axis=0)
        assert abs(lon - e.data["lon"]) < 0.01 and abs(lat - e.data["lat"]) < 0.01
        # the failures lie on the dump (its outline, with a cell of slack)
        assert 113.924 < e.data["lon"] < 113.931 and 22.708 < e.data["lat"] < 22.714


def test_layers_and_report(run):
    ctx = run.contexts["slope"]
    sets = get_coupling("slope").layers(ctx, [0.0, 3600.0, 7200.0])
    timed = [s for s in sets if s.times_s]
    assert len(timed) == 1 and timed[0].times_s == [0.0, 3600.0, 7200.0]
    html = "".join(get_coupling("slope").report(ctx))
    assert "Slope failure" in html and f"{run.summary['couplings']['slope']['cells_modelled']:,}" in html


def test_gridded_rain_per_cell(twin_data):
    from physics.forcing import MM_PER_H, GriddedRain
    from scenarios.couplings.slope import kernel_rain

    rates = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)  # mm/h
    rain, edges = kernel_rain(GriddedRain([0.0, 600.0, 1200.0], rates), np.array([0, 5, 11]))
    assert rain.shape == (2, 3) and edges.tolist() == [0.0, 600.0, 1200.0]
    np.testing.assert_allclose(rain / MM_PER_H, rates.reshape(2, -1)[:, [0, 5, 11]])


def test_bad_parameters_and_scenario_section(twin_data, tmp_path):
    with pytest.raises(ValidationError, match=r"couplings.slope: unknown parameter\(s\) \['mode'\].*n_depths=0"):
        run_coupled(config(1.0, mode="probabilistic", n_depths=0), tmp_path / "bad")
    c = get_coupling("slope")
    section = {"mode": "probabilistic", "members": 200, "buffer_m": 1000.0, "runout": True, "fills": "f.geojson",
               "zones": None, "storm": "2023-09-07", "hours": 12.0, "n_depths": 20}
    assert c.from_scenario(section, None) == {"fills": "f.geojson", "n_depths": 20}
    assert c.kinds == ("slope_forecast",) and c.reads == ("rain",)


def test_a_failure_under_the_rain_is_an_event_at_its_step(twin_data, tmp_path):
    """The dump with a wetter spoil (d0, ks at the table's upper range, phi 34 deg): stable
    cells before the rain fail as it soaks in; each step's new failures are one event."""
    fill = json.loads(DUMP.read_text())
    fill["features"][0]["properties"].update(phi_deg=34.0, d0_m2_s=1e-2, ks_m_s=1e-4)
    path = tmp_path / "wet_dump.geojson"
    path.write_text(json.dumps(fill))
    res = run_coupled(config(2.0) | {"couplings": {"rain": {"storm": "2023-09-07"},
                                                   "slope": {"fills": str(path)}}}, tmp_path / "wet")
    series = res.summary["couplings"]["slope"]["failed_by_step"]
    later = [t for (t, n), (_, before) in zip([(s[0], s[1]) for s in series[1:]],
                                              [(s[0], s[1]) for s in series[:-1]], strict=True) if n > before]
    events = [e.time_s for e in res.state.events if e.kind == "slope_failure"]
    assert later and set(later) <= set(events)
    assert len(events) == len(set(events))  # one event per step with new failures
