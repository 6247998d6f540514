"""The live forecast loop (scenarios.forecast, ``twin forecast``).

The end-to-end test runs a real mosquitto, ``twin bridge run`` as a subprocess fed by the bridge's
simulated water-level devices (``twin bridge simulate --broker``) and by a test rain gauge and a dry
street gauge published through MQTT; then ``twin forecast --once`` twice on Futian at 250 m with a
1 h horizon, the console on the same store, and ``twin forecast verify``. The other tests check the
pieces on small grids.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from scenarios.forecast import (
    ALERT_KIND,
    FORECAST_EVENT,
    KIND_NAME,
    Gauge,
    LiveForecastRequest,
    forecast_rain,
    nudge_depth,
    parse_duration,
    predicted_crossing,
)
from twin.cli import main
from twin.errors import ValidationError

TRANSFORM = (100.0, 0.0, 500_000.0, 0.0, -100.0, 2_500_000.0)


def _dem(z: np.ndarray) -> xr.DataArray:
    ny, nx = z.shape
    return xr.DataArray(z, dims=("y", "x"),
                        coords={"y": 2_500_000.0 - 50.0 - 100.0 * np.arange(ny),
                                "x": 500_000.0 + 50.0 + 100.0 * np.arange(nx)},
                        attrs={"crs": "EPSG:4547", "transform": TRANSFORM})


def _lonlat(x: float, y: float) -> tuple[float, float]:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(x, y)


def test_durations():
    assert parse_duration("10min") == 600.0
    assert parse_duration("1h30min") == 5400.0
    assert parse_duration("90s") == 90.0
    for bad in ("ten minutes", "10 parsecs", "0min", ""):
        with pytest.raises(ValidationError, match="duration"):
            parse_duration(bad, "--every")


def test_rain_is_held_or_decays_from_the_gauges_recent_rate():
    from hardware_bridge.fusion import Reading

    like = _dem(np.zeros((4, 5)))
    issue = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    lon, lat = _lonlat(500_250.0, 2_499_750.0)
    # 6 readings of 2 mm in the last 30 min: 12 mm in 0.5 h = 24 mm/h; one older reading is outside
    readings = [Reading("R/rain_gauge", "rain_gauge", issue - timedelta(minutes=5 * k), 0.002, lon=lon, lat=lat,
                        unit="m") for k in range(6)]
    readings.append(Reading("R/rain_gauge", "rain_gauge", issue - timedelta(minutes=40), 0.05, lon=lon,
                            lat=lat, unit="m"))
    req = LiveForecastRequest(store=".", issue_time="2024-06-01T08:00:00Z", hours=1.0)
    held, info = forecast_rain(readings, like, issue, req)
    assert info["gauges"] == 1
    assert held.rates.shape == (6, 4, 5)  # 10-min blocks over the hour
    assert np.allclose(held.rates * 3.6e6, 24.0)  # one gauge: the same rate everywhere, every block
    decay = LiveForecastRequest(store=".", issue_time="2024-06-01T08:00:00Z", hours=1.0, rain_mode="decay",
                                decay_tau_s=1800.0)
    decayed, _ = forecast_rain(readings, like, issue, decay)
    mids = np.arange(300.0, 3600.0, 600.0)
    assert np.allclose(decayed.rates[:, 0, 0] * 3.6e6, 24.0 * np.exp(-mids / 1800.0))
    dry, dry_info = forecast_rain([], like, issue, req)
    assert dry_info["gauges"] == 0 and not dry.rates.any()


def test_nudging_inserts_the_observed_surface_at_the_gauge_cells():
    z = np.array([[5.0, 5.0, 5.0], [5.0, 4.0, 5.0], [5.0, 5.0, np.nan]])
    dem = _dem(z)
    lon, lat = _lonlat(500_150.0, 2_499_850.0)  # the centre cell (row 1, col 1)
    obs = {"W": (datetime(2024, 6, 1, tzinfo=UTC), 0.3)}
    depth_gauge = Gauge("W", "W/water_level", lon, lat)
    h, info = nudge_depth(dem, np.zeros(z.shape), [depth_gauge], obs, gain=1.0, radius_m=60.0)
    assert h[1, 1] == pytest.approx(0.3)  # a reading without a datum is a depth above the cell's ground
    assert np.count_nonzero(h) == 1 and info["volume_m3"] == pytest.approx(0.3 * 100 * 100)
    # with a datum the reading is a level: surface 4.0 + 0.3 - 0.5 = 3.8 m is below the ground: stays dry
    datum = Gauge("W", "W/water_level", lon, lat, datum_m=3.5)
    h, _ = nudge_depth(dem, np.zeros(z.shape), [datum], obs, gain=1.0, radius_m=150.0)
    assert not h.any()
    datum_high = Gauge("W", "W/water_level", lon, lat, datum_m=4.5)
    h, _ = nudge_depth(dem, np.zeros(z.shape), [datum_high], obs, gain=0.5, radius_m=150.0)
    assert h[1, 1] == pytest.approx(0.5 * (4.8 - 4.0))  # half the misfit removed
    assert h[0, 1] == 0.0 and np.isnan(z[2, 2]) and h[2, 2] == 0.0  # 4.8 < 5 m ground; blocked untouched
    # default: the gauge's own cell only, wherever the gauge stands in it; a second gauge in the
    # same cell is skipped; a gauge off the grid is left out
    flat = _dem(np.full((3, 3), 4.0))
    corner = Gauge("A", "A/water_level", *_lonlat(500_190.0, 2_499_810.0))  # near the cell's corner
    twin = Gauge("B", "B/water_level", lon, lat)
    away = Gauge("C", "C/water_level", *_lonlat(510_000.0, 2_499_850.0))
    levels = {"A": obs["W"], "B": (obs["W"][0], 0.9), "C": obs["W"]}
    h, info = nudge_depth(flat, np.zeros((3, 3)), [twin, corner, away], levels, gain=1.0)
    assert info["gauges"] == ["A"] and info["skipped"] == ["B"] and info["own_cell"]
    assert h[1, 1] == pytest.approx(0.3) and np.count_nonzero(h) == 1


def test_a_crossing_counts_only_ahead_and_below_the_latest_reading():
    g = {"lead_s": [0.0, 600.0, 1200.0], "levels": [0.2, 0.6, 1.1],
         "thresholds": {"warning": 0.5, "alarm": 1.0}, "observed": {"value": 0.2}}
    assert predicted_crossing(g) == ("alarm", 1.0, 1200.0, 1.1)
    assert predicted_crossing({**g, "observed": {"value": 0.7}}) == ("alarm", 1.0, 1200.0, 1.1)
    assert predicted_crossing({**g, "observed": {"value": 1.2}}) is None  # already above: the bridge's alert
    assert predicted_crossing({**g, "levels": [0.9, 0.3, 0.3]}) is None  # only the analysis is above


# ----------------------------------------------------------------------------- end to end
RAIN_STATION, DRY_STATION = "TEST-RG-1", "TEST-WL-DRY"
DRY_LONLAT = (114.0550, 22.5400)  # Futian CBD, flat built-up land
THRESHOLD_M = 0.05


def _cli(args: list[str]):
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def _publish_test_gauges(address: str, start: datetime, minutes: int) -> int:
    """A rain gauge with 10 mm/min (600 mm/h) and a dry street gauge (0 m), one reading a minute."""
    from hardware_bridge.schema import obs_topic
    from hardware_bridge.sources.mqtt import MqttPublisher, parse_broker

    host, port = parse_broker(address)
    n = 0
    with MqttPublisher(host, port) as pub:
        for k in range(1, minutes + 1):
            t = (start + timedelta(minutes=k)).isoformat().replace("+00:00", "Z")
            for station, kind, value, unit in ((RAIN_STATION, "rain_gauge", 10.0, "mm"),
                                               (DRY_STATION, "water_level", 0.0, "m")):
                body = {"datastream": f"{station}/{kind}", "phenomenonTime": t, "resultTime": t,
                        "result": value, "unit": unit, "seq": k}
                pub.publish(obs_topic(kind, station), json.dumps(body).encode())
                n += 1
    return n


def _wait_stored(store_dir, n: int, timeout_s: float = 60.0) -> None:
    from twin.store import Store

    deadline = time.monotonic() + timeout_s
    with Store.open_readonly(store_dir) as st:
        while st.count_observations() < n:
            assert time.monotonic() < deadline, f"{st.count_observations()} of {n} observations stored"
            time.sleep(0.2)


def test_forecast_loop_end_to_end(mosquitto, tmp_path, city):
    import httpx

    from twin.sensors import Sensor
    from twin.store import Store
    from viz.console import ConsoleServer, create_app

    store_dir, runs_dir = tmp_path / "store", tmp_path / "store" / "runs"
    bridge = subprocess.Popen(
        [sys.executable, "-c", "from twin.cli import main; main()", "bridge", "run", "--broker",
         mosquitto.address, "--store", str(store_dir), "--client-id", "forecast-test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(bridge.stdout.readline())["event"] == "ready"
        sim = json.loads(_cli(["bridge", "simulate", "--devices", "2", "--kinds", "water_level", "--minutes",
                               "40", "--seed", "4", "--broker", mosquitto.address, "--register",
                               str(store_dir)]).output)
        start = datetime.fromisoformat(sim["start"])
        sent = sim["messages"] + _publish_test_gauges(mosquitto.address, start, 40)
        _wait_stored(store_dir, sent)
    finally:
        bridge.send_signal(signal.SIGTERM)
        bridge.communicate(timeout=30)
    with Store.open(store_dir) as st:
        st.put_sensors([
            Sensor(id=RAIN_STATION, kind="rain_gauge", lon=DRY_LONLAT[0] + 0.01, lat=DRY_LONLAT[1], unit="m"),
            Sensor(id=DRY_STATION, kind="water_level", lon=DRY_LONLAT[0], lat=DRY_LONLAT[1], unit="m",
                   thresholds={"warning": THRESHOLD_M})])
        sim_gauges = [s for s, r in st.sensor_records().items() if r["kind"] == "water_level" and s != DRY_STATION]
    assert len(sim_gauges) == 2

    issues = [start + timedelta(minutes=20), start + timedelta(minutes=30)]
    lines = []
    for t in issues:
        out = _cli(["forecast", "--store", str(store_dir), "--once", "--horizon", "1h", "--every", "10min",
                    "--districts", "Futian", "--resolution", "250", "--at", t.isoformat()]).output
        lines.append(json.loads(out.strip().splitlines()[-1]))
    first, second = lines
    assert second["warm_start_run"] == first["run"] and first["warm_start_run"] is None

    with Store.open(store_dir) as st:
        runs = {r.id: r for r in st.runs()}
        for line, t in zip(lines, issues, strict=True):
            r = runs[line["run"]]
            assert (r.kind, r.status) == (KIND_NAME, "done")
            assert r.params["forecast"]["issue_time"] == t.isoformat().replace("+00:00", "Z")
            assert r.params["forecast"]["lead_times_s"] == [600.0 * k for k in range(7)]
        issued = st.run_event_rows(first["run"], FORECAST_EVENT)[0].data
        alerts = [e for e in st.event_rows_after(0, [ALERT_KIND])]

    # rain: the one test gauge's 20 readings of 10 mm in the 30-min window before the first issue
    assert issued["rain"]["gauges"] == 1
    assert issued["rain"]["recent_mm_h"] == pytest.approx(20 * 10.0 / 0.5)
    # every gauge on the grid is predicted; the simulated ones were nudged to their latest reading
    assert set(issued["gauges"]) == {*sim_gauges, DRY_STATION}
    for s in sim_gauges:
        g = issued["gauges"][s]
        assert g["levels"][0] == pytest.approx(g["observed"]["value"], abs=1e-6)

    # the dry street gauge floods under 400 mm/h: one forecast alert, not repeated by the second forecast
    dry = issued["gauges"][DRY_STATION]
    assert max(dry["levels"][1:]) >= THRESHOLD_M > dry["observed"]["value"]
    assert len(alerts) == 1
    a = alerts[0]
    assert a.run_id is None and a.source == f"{DRY_STATION}/water_level" and a.severity == "warning"
    assert a.data["forecast"] is True and a.data["run"] == first["run"]
    assert a.data["lead_s"] > 0 and a.data["predicted_m"] >= THRESHOLD_M
    assert a.data["lead_s"] == min(lead for lead, v in zip(dry["lead_s"], dry["levels"], strict=True)
                                   if lead > 0 and v >= THRESHOLD_M)

    history = json.loads(_cli(["forecast", "list", "--store", str(store_dir), "--json"]).output)
    assert [(h["run"], h["warm_start_run"], h["alerts"]) for h in history] == [
        (second["run"], first["run"], 0), (first["run"], None, 1)]

    # the run's report opens with the forecast: the dry gauge's predicted crossing at the alert's lead
    report = (runs_dir / "run-{:05d}".format(first["run"]) / "report.html").read_text(encoding="utf-8")
    assert "<h2>Forecast</h2>" in report and "warning 0.05 m in {:g} min".format(a.data["lead_s"] / 60) in report

    # warm start: away from the gauges, the second forecast starts from the first one's 10-min frame
    with xr.open_dataset(runs_dir / "run-{:05d}".format(first["run"]) / "flood.nc") as d1, \
            xr.open_dataset(runs_dir / "run-{:05d}".format(second["run"]) / "flood.nc") as d2:
        h1, h2 = d1["depth"].isel(time=1).values, d2["depth"].isel(time=0).values
        assert h1.shape == h2.shape
        far = np.isfinite(h1) & np.isfinite(h2)
        xs, ys = np.meshgrid(d1["x"].values, d1["y"].values)
        from pyproj import Transformer

        tr = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
        for g in issued["gauges"].values():
            gx, gy = tr.transform(g["lon"], g["lat"])
            far &= np.hypot(xs - gx, ys - gy) > 600.0
        assert np.count_nonzero(h1[far] > 0.01) > 100  # the first forecast has water there to carry over
        assert np.allclose(h2[far], h1[far], atol=1e-6)

    # the console shows the newest forecast, ?run= the earlier one, and lists the forecast alert
    app = create_app(store_dir, token=None, runs_dir=runs_dir, city=city, base_resolution=500)
    with ConsoleServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as c:
        newest = c.get("/api/scene/forecast")
        assert newest.status_code == 200 and newest.json()["run"] == second["run"]
        earlier = c.get("/api/scene/forecast", params={"run": first["run"]})
        assert earlier.status_code == 200 and earlier.json()["run"] == first["run"]
        assert earlier.json()["layers"] and earlier.json()["title"] != newest.json()["title"]
        listed = {r["id"]: r for r in c.get("/api/runs").json()["runs"]}
        assert listed[first["run"]]["has_outputs"] and listed[second["run"]]["has_outputs"]
        console_alerts = c.get("/api/alerts").json()["alerts"]
        assert any(x.get("kind") == ALERT_KIND for x in console_alerts)

    # verification: predictions paired with what the simulated gauges then read
    _cli(["forecast", "verify", "--store", str(store_dir), "--out", str(tmp_path / "verif")])
    pairs = pd.read_csv(tmp_path / "verif" / "pairs.csv")
    with Store.open_readonly(store_dir) as st:
        for row in pairs.itertuples():
            valid = datetime.fromisoformat(row.valid_time)
            exact = st.observations(row.datastream, valid, valid + timedelta(seconds=1))
            assert len(exact) == 1 and row.observed == pytest.approx(exact[0].value)
    # readings end 40 min after the start: the first forecast pairs leads 0-20 min, the second 0-10 min
    per_gauge = pairs.groupby(["station", "run"]).size()
    for s in (*sim_gauges, DRY_STATION):
        assert per_gauge[(s, first["run"])] == 3 and per_gauge[(s, second["run"])] == 2
    table = pd.read_csv(tmp_path / "verif" / "verification.csv")
    analysis = table[(table["station"] == "all") & (table["lead"] == "0 (analysis)")].iloc[0]
    assert analysis["n"] == 2 * 3
    assert math.isfinite(analysis["rmse"])


def test_a_failing_cycle_is_recorded_failed_and_the_loop_goes_on(tmp_path):
    from scenarios.forecast import ForecastLoop, ForecastSettings, issue_forecast
    from twin.errors import TwinError
    from twin.store import Store

    settings = ForecastSettings(store=tmp_path / "store", districts=("Atlantis",), horizon_s=3600.0)
    Store.open(settings.store).close()
    t0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(TwinError, match="Atlantis"):
        issue_forecast(settings, t0)
    with pytest.raises(ValidationError, match="rain_mode='radar'"):  # refused before a run is recorded
        issue_forecast(ForecastSettings(store=settings.store, rain_mode="radar"), t0)
    with Store.open(settings.store) as st:
        assert [(r.kind, r.status) for r in st.runs()] == [(KIND_NAME, "failed")]
    failed = []
    loop = ForecastLoop(settings, sleep=lambda _s: None, skip_missed=False)
    assert loop.run(t0, t0 + timedelta(minutes=20), on_error=lambda t, e: failed.append(t)) == []
    assert failed == [t0, t0 + timedelta(minutes=10), t0 + timedelta(minutes=20)]


def test_the_wall_clock_loop_waits_for_each_issue_time_and_skips_missed_ones():
    from scenarios.forecast import ForecastLoop, ForecastSettings

    clock = {"now": datetime(2024, 6, 1, 8, 0, tzinfo=UTC)}
    slept, issued = [], []

    def sleep(s):
        slept.append(s)
        clock["now"] += timedelta(seconds=s)

    def cycle(settings, t, city=None):  # a cycle that takes 25 min of the clock
        issued.append(t)
        clock["now"] += timedelta(minutes=25)
        return t

    loop = ForecastLoop(ForecastSettings(store="unused", every_s=600.0), now=lambda: clock["now"],
                        sleep=sleep, issue=cycle)
    start = clock["now"] + timedelta(minutes=5)
    loop.run(start, start + timedelta(minutes=60))
    # waits 5 min for the first, which ends at +25 min: +10 (15 min late) is skipped, +20 (5 min late)
    # runs at once and ends at +50: +30 (20 late) skipped, +40 (10 late: not more than one interval)
    # runs, ends at +75: +50 and +60 are skipped
    assert slept == [300.0]
    assert [(t - start).total_seconds() / 60 for t in issued] == [0.0, 20.0, 40.0]


def test_live_inputs_take_the_window_before_the_issue_time_and_the_gauges_thresholds(tmp_path):
    from scenarios.forecast import live_inputs
    from twin.sensors import Sensor
    from twin.store import Store

    rules = tmp_path / "alerts.toml"
    rules.write_text('[water_level]\nenabled = true\ndeadband = 0.05\nrules = []\n'
                     '[[water_level.stations."W1".rules]]\nmetric = "level_m"\nthreshold = 1.0\n'
                     'severity = "alarm"\nlabel = "test"\nsource = "test"\nverified = true\n')
    issue = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    with Store.open(tmp_path / "store") as st:
        st.put_sensors([Sensor(id="W1", kind="water_level", lon=114.05, lat=22.54, unit="m",
                               thresholds={"warning": 0.5, "critical": 0.4}),
                        Sensor(id="R1", kind="rain_gauge", lon=114.06, lat=22.54, unit="m")])
        for minutes, value in ((-40, 0.1), (-10, 0.3), (5, 0.9)):
            st.put_observation("W1/water_level", issue + timedelta(minutes=minutes), value, "m")
        for minutes in (-35, -20, 0, 1):
            st.put_observation("R1/rain_gauge", issue + timedelta(minutes=minutes), 0.001, "m")
        st.put_observation("R1/rain_gauge/status", issue, 0.9, "1")
        st.put_observation("X9/water_level", issue, 2.0, "m")  # no registered position: left out
        live = live_inputs(st, issue, rain_window_s=1800.0, max_level_age_s=1800.0, alert_config=rules)
        stale = live_inputs(st, issue, rain_window_s=1800.0, max_level_age_s=300.0)
    assert sorted(r.time for r in live.rain) == [issue - timedelta(minutes=20), issue]
    assert live.levels == {"W1": (issue - timedelta(minutes=10), 0.3)}
    assert [g.station for g in live.gauges] == ["W1"]
    # "critical" is not a severity: a warning; the lowest warning level is kept; the rule adds the alarm
    assert live.gauges[0].thresholds == {"warning": 0.4, "alarm": 1.0}
    assert stale.levels == {} and stale.gauges[0].thresholds == {"warning": 0.4}


def test_cli_argument_errors(tmp_path):
    from twin.store import Store

    Store.open(tmp_path / "store").close()
    store = str(tmp_path / "store")
    cases = [([], "give --store"),
             (["--store", store, "--every", "soon"], "--every='soon' is not a duration"),
             (["--store", store, "--at", "2024-06-01T08:00"], "has no time zone"),
             (["--store", store, "--at", "2024-06-01T08:00Z"], "needs --once")]
    for args, message in cases:
        r = CliRunner().invoke(main, ["forecast", *args])
        assert r.exit_code != 0 and message in r.output, (args, r.output)
    with Store.open(store) as st:
        assert st.runs() == []  # nothing ran
