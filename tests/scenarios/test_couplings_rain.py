"""The rain coupling and the flood on its rain (Futian, 250 m, real data).

Conservation: ``rain_rate`` is the mean rate over the coming period (the
blocks' depth over ``[t, t + period)`` divided by the period), so the field
summed over the run's periods equals the rain's depth over the run whatever
the period, block edges aligned or not; the frames of ``fields.nc`` are
float32 (relative round-off 6e-8 a value), hence the 1e-6 relative tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from scenarios.coupling import get_coupling
from scenarios.runner import run_coupled
from twin.errors import ValidationError

BASE = {"districts": ["Futian"], "resolution_m": 250.0, "seed": 1}


def rain_run(tmp_path, name, rain: dict, *, duration_s=7200.0, period_s=300.0):
    cfg = BASE | {"duration_s": duration_s, "output_every_s": period_s,
                  "couplings": {"rain": rain | {"period_s": period_s}}}
    return run_coupled(cfg, tmp_path / name)


def field_depth_mm(run) -> float:
    """The ``rain_rate`` frames times their period, summed over the run (mm, one cell)."""
    with xr.open_dataset(run.paths["fields"]) as ds:
        t = ds["time"].values
        rate = ds["rain_rate"].values[:, 0, 0].astype(np.float64)
    return float(np.sum(rate[:-1] * np.diff(t)) / 3600.0)


def storm(hours: float):
    from physics.flood_city import make_storm
    from twin.city import City

    return make_storm("2023-09-07", hours=hours, city=City("shenzhen"))


def test_rain_rate_integrated_over_the_run_is_the_storms_depth(twin_data, tmp_path):
    run = rain_run(tmp_path, "p300", {"storm": "2023-09-07"})
    expected = storm(2.0).depth_mm(0.0, 7200.0)
    assert expected > 50.0  # a real storm, not an empty one
    assert field_depth_mm(run) == pytest.approx(expected, rel=1e-6)
    assert run.summary["couplings"]["rain"]["total_mm"] == pytest.approx(expected, rel=1e-12)
    with xr.open_dataset(run.paths["fields"]) as ds:
        frame = ds["rain_rate"].values[3]
        assert np.all(frame == frame.flat[0])  # a uniform storm: the same rate on every cell


def test_steps_that_straddle_the_blocks_keep_the_depth(twin_data, tmp_path):
    """900 s steps over 10-min blocks: each step's value is the mean over its 900 s. The value at
    t = 0 is written at set-up, before the coupling knows a period set in the config: it covers the
    context's ``period_s`` when the runner gives one, else the default 300 s (a request is filed)."""
    run = rain_run(tmp_path, "p900", {"storm": "2023-09-07"}, period_s=900.0)
    rain = storm(2.0)
    first = getattr(run.contexts["rain"], "period_s", None) or 300.0
    with xr.open_dataset(run.paths["fields"]) as ds:
        rate = ds["rain_rate"].values[:, 0, 0].astype(np.float64)
    assert rate[0] == pytest.approx(rain.depth_mm(0.0, first) * 3600.0 / first, rel=1e-6)
    assert np.sum(rate[1:-1]) * 900.0 / 3600.0 == pytest.approx(rain.depth_mm(900.0, 7200.0), rel=1e-6)
    in_force = np.array([rain.rate(t)[0, 0] * 3.6e6 for t in np.arange(900.0, 7200.0, 900.0)])
    assert not np.allclose(rate[1:-1], in_force)  # the mean over a period, not the rate at its start


def test_rain_scale_and_shift(twin_data, tmp_path):
    full = storm(2.0).depth_mm(0.0, 7200.0)
    scaled = rain_run(tmp_path, "scaled", {"storm": "2023-09-07", "rain_scale": 1.5})
    assert field_depth_mm(scaled) == pytest.approx(1.5 * full, rel=1e-6)
    shifted = rain_run(tmp_path, "shifted", {"storm": "2023-09-07", "shift_s": 3600.0})
    with xr.open_dataset(shifted.paths["fields"]) as ds:
        first_hour = ds["rain_rate"].values[:12, 0, 0]
    assert np.all(first_hour == 0.0)  # nothing falls before the shifted start
    assert field_depth_mm(shifted) == pytest.approx(storm(2.0).depth_mm(0.0, 3600.0), rel=1e-6)


def test_a_rain_csv_file(twin_data, tmp_path):
    csv = tmp_path / "rain.csv"
    csv.write_text("time_h, mm_h\n0, 10\n0.5, 40\n1.0, 0\n", encoding="utf-8")
    run = rain_run(tmp_path, "csv", {"rain_file": str(csv)}, duration_s=3600.0)
    assert field_depth_mm(run) == pytest.approx(10 * 0.5 + 40 * 0.5, rel=1e-6)
    assert "rain_file" in run.inputs


def test_a_gridded_rain_file_keeps_each_cells_depth(twin_data, tmp_path):
    """A NetCDF rain on a coarse grid of its own (EPSG:4547, 2 km cells): 20 mm/h west of a line,
    60 mm/h east of it, for 30 min, then 10 mm/h everywhere for 30 min."""
    from twin.domain import Domain

    dom = Domain.from_city("shenzhen", resolution=250.0, districts=["Futian"], buffer_m=500.0)
    x = np.arange(dom.x.min() - 4000, dom.x.max() + 4000, 2000.0)
    y = np.arange(dom.y.max() + 4000, dom.y.min() - 4000, -2000.0)
    split = float(np.median(x))
    first = np.where(x[None, :] < split, 20.0, 60.0) * np.ones((y.size, 1))
    rates = np.stack([first, np.full_like(first, 10.0)])
    da = xr.DataArray(rates, dims=("time", "y", "x"), coords={"time": [0.0, 1800.0], "y": y, "x": x},
                      attrs={"crs": "EPSG:4547", "units": "mm/h"})
    path = tmp_path / "rain.nc"
    xr.Dataset({"rain": da}).to_netcdf(path)
    run = rain_run(tmp_path, "grid", {"rain_file": str(path)}, duration_s=3600.0)
    with xr.open_dataset(run.paths["fields"]) as ds:
        rate = ds["rain_rate"].values.astype(np.float64)  # (time, y, x)
    depth = np.sum(rate[:-1], axis=0) * 300.0 / 3600.0  # mm per cell
    west, east = dom.x < split - 3000, dom.x > split + 3000  # away from the bilinear blend
    assert west.sum() >= 5 and east.sum() >= 5
    assert np.allclose(depth[:, west], 20 * 0.5 + 10 * 0.5, rtol=1e-6)
    assert np.allclose(depth[:, east], 60 * 0.5 + 10 * 0.5, rtol=1e-6)
    assert run.summary["couplings"]["rain"]["peak_mm_h"] == pytest.approx(60.0, rel=1e-6)


def test_bad_rain_parameters_are_named(twin_data, tmp_path):
    with pytest.raises(ValidationError, match=r"couplings.rain: unknown parameter\(s\) \['storms'\].*"
                                              r"give one rain source, not storm and rain_mm_h"):
        rain_run(tmp_path, "bad", {"storms": "x", "storm": "2023-09-07", "rain_mm_h": 3.0})
    with pytest.raises(ValidationError, match=r"couplings.rain.rain_scale=-1"):
        rain_run(tmp_path, "neg", {"rain_mm_h": 3.0, "rain_scale": -1})


def test_from_scenario_takes_the_scenarios_rain_keys():
    c = get_coupling("rain")
    section = {"storm": "2023-09-07", "method": "chicago", "storm_hours": 6.0, "hours": 12.0,
               "city": "shenzhen", "tide_m": 1.0, "rain_mm_h": None, "rain_scale": 1.2}
    assert c.from_scenario(section, None) == {"storm": "2023-09-07", "method": "chicago",
                                               "storm_hours": 6.0, "rain_scale": 1.2}
    assert c.phase == "forcing" and c.kinds == () and {"rain", "rain_rate"} <= set(c.writes)


# ----------------------------------------------------------------------------- the flood on the rain
def test_the_flood_on_the_rain_coupling_equals_the_flood_on_its_own_storm(twin_data, tmp_path):
    """The flood coupling before the rain coupling built flood_setup(domain, storm, hours) itself and
    stepped it every 60 s: that model, stepped here the same way, gives the coupled run's depths."""
    from physics.flood import FloodModel
    from physics.flood_city import flood_setup, model_kwargs
    from twin.domain import Domain

    cfg = BASE | {"duration_s": 1800.0, "output_every_s": 600.0,
                  "couplings": {"rain": {"storm": "2023-09-07"}, "flood": {}}}
    run = run_coupled(cfg, tmp_path / "coupled")
    dom = Domain.from_city("shenzhen", resolution=250.0, districts=["Futian"], buffer_m=500.0)
    setup = flood_setup(dom, storm="2023-09-07", hours=0.5)
    model = FloodModel(**model_kwargs(setup))
    land = np.asarray(setup["context"]["land"], bool)
    with xr.open_dataset(run.paths["fields"]) as ds:
        depth = ds["water_depth"].values
        for k, t in enumerate(ds["time"].values):
            while model.t < t - 1e-9:
                model.step(60.0)
            alone = np.where(land, model.h, np.nan).astype(np.float32)
            np.testing.assert_array_equal(depth[k], alone)
    assert np.nanmax(depth[-1]) > 0.1  # it rained and the water stands somewhere
    assert run.summary["couplings"]["flood"]["storm"] == run.summary["couplings"]["rain"]["storm"]
    # the map layers and the report section of the coupled flood
    ctx = run.contexts["flood"]
    sets = get_coupling("flood").layers(ctx, [0.0, 600.0, 1200.0, 1800.0])
    depth_set = sets[0]
    assert len(sets) == 3 and depth_set.times_s == [0.0, 600.0, 1200.0, 1800.0]
    # frame times off the flood's 600 s frames: still one frame per time (the nearest kept), one slider
    assert get_coupling("flood").layers(ctx, [0.0, 300.0, 1800.0])[0].times_s == [0.0, 300.0, 1800.0]
    html = "".join(get_coupling("flood").report(ctx))
    assert "Maximum depth" in html and "rain" in html


def test_the_flood_refuses_rain_parameters_and_needs_the_rain(twin_data, tmp_path):
    cfg = BASE | {"duration_s": 600.0,
                  "couplings": {"rain": {"storm": "2023-09-07"}, "flood": {"storm": "2023-09-07"}}}
    with pytest.raises(ValidationError, match=r"couplings.flood: rain parameter\(s\) \['storm'\] belong "
                                              r"to the rain coupling"):
        run_coupled(cfg, tmp_path / "storm")
    cfg = BASE | {"duration_s": 600.0, "couplings": {"flood": {}}}
    with pytest.raises(ValidationError, match=r"'flood' reads 'rain'.*enable rain"):
        run_coupled(cfg, tmp_path / "norain")


def test_flood_from_scenario_drops_grid_and_rain_keys():
    c = get_coupling("flood")
    section = {"resolution": 90.0, "buffer_m": 1000.0, "storm": "2023-09-07", "hours": 12.0, "tide_m": 0.8,
               "surge_m": 1.2, "drainage_mm_h": 30.0, "city": "shenzhen", "districts": ["Futian"]}
    assert c.from_scenario(section, None) == {"hours": 12.0, "tide": 0.8, "surge_m": 1.2,
                                              "drainage_mm_h": 30.0}
    assert c.kinds == ("flood_forecast",) and c.reads == ("rain",)

    class Outputs:
        frame_every = 1200.0

    class Scenario:
        outputs = Outputs()

    assert c.from_scenario({"hours": 1.0}, Scenario())["frame_every_s"] == 1200.0  # the run's frames
