"""Feeds into the twin (hardware_bridge.twin_link): ingestor → alerts, permits, gridded rain, levels."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from gis.raster import make_grid
from hardware_bridge.fusion.confined import PermitBook
from hardware_bridge.fusion.levels import Nudger, gauge_positions
from hardware_bridge.ingest import Ingestor
from hardware_bridge.twin_link import TwinLink, confined_spaces_from_config
from physics.flood import FloodModel, simulate
from physics.forcing import GriddedRain
from twin.errors import ConfigError, ValidationError
from twin.events import Severity
from twin.sensors import Sensor, SensorRegistry
from twin.store import Store

T0 = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
# A 12 x 16 grid of 100 m cells in EPSG:4547 near Futian (about 114.05 E, 22.54 N).
NY, NX, D = 12, 16, 100.0
X0, Y0 = 505_000.0, 2_493_000.0
TO_LL = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)


def grid(values=None):
    z = np.zeros((NY, NX)) if values is None else values
    return make_grid(z, Affine(D, 0, X0, 0, -D, Y0 + NY * D), "EPSG:4547", units="m")


def cell_xy(j, i):
    return X0 + (i + 0.5) * D, Y0 + NY * D - (j + 0.5) * D


def lonlat(j, i):
    return TO_LL.transform(*cell_xy(j, i))


GAUGE_CELLS = {"RG-1": (2, 3), "RG-2": (9, 12), "RG-3": (5, 8)}
POSITIONS = {s: lonlat(*c) for s, c in GAUGE_CELLS.items()} | {"WL-1": lonlat(6, 6)}


def msg(kind, station, t, result, unit=None, seq=0):
    body = {"datastream": f"{station}/{kind}", "phenomenonTime": t.isoformat(), "result": result,
            "seq": seq}
    if unit is not None:
        body["unit"] = unit
    return t, f"sz/v1/{kind}/{station}/obs", json.dumps(body).encode()


def feed(ing, msgs, chunk=7):
    msgs = sorted(msgs, key=lambda m: m[0])
    for k in range(0, len(msgs), chunk):
        ing.handle_many([(topic, p, t + timedelta(seconds=1)) for t, topic, p in msgs[k:k + chunk]])


def rain_msgs(station, depth_mm, n, every_s=600, start=T0, seq0=0):
    return [msg("rain_gauge", station, start + timedelta(seconds=every_s * (k + 1)), depth_mm, "mm",
                seq0 + k) for k in range(n)]


@pytest.fixture
def rig(tmp_path):
    """A store, a TwinLink with a PermitBook for confined space CS-1, and the ingestor feeding it."""
    store = Store.open(tmp_path / "store")
    seen = []
    link = TwinLink(store, sensors=POSITIONS, permits=PermitBook(), confined_spaces=["CS-1"],
                    rain_like=grid(), on_event=seen.append)
    ing = Ingestor(store, on_alert=store.put_event, on_stored=link.on_stored)
    yield store, link, ing, seen
    store.close()


def by_source(store, kind=None):
    out = {}
    for e in store.events(kind=kind):
        out.setdefault(e.source, []).append(e.severity)
    return out


def test_simulated_sequence_raises_the_right_alerts(rig):
    store, link, ing, seen = rig
    t = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    msgs = []
    # rain: RG-1 6 mm every 10 min (1 h >= 20 mm at 40 min, 3 h >= 50 mm at 90 min,
    # 3 h >= 100 mm at 170 min); RG-2 2 mm every 10 min stays below every rule
    msgs += rain_msgs("RG-1", 6.0, 18) + rain_msgs("RG-2", 2.0, 18)
    # confined space CS-1: a safe atmosphere at 10 min, then H2S rises to 15 ppm at 12 min
    for kind, v, u in (("gas_o2", 20.9, "%"), ("gas_h2s", 0.0, "ppm"), ("gas_co", 1.0, "ppm"),
                       ("gas_lel", 0.0, "%LEL")):
        msgs.append(msg(kind, "CS-1", t(10), v, u))
    # a fixed LEL detector at petrol station PS-1 (not a confined space): 30 % LEL
    msgs.append(msg("gas_lel", "PS-1", t(20), 30.0, "%LEL"))
    # DAS along a metro tunnel: a train (no alert), an intrusion
    das = lambda c, pos: {"position_m": pos, "energy": 3.0, "class": c, "confidence": 0.9}  # noqa: E731
    msgs.append(msg("das_event", "DA-1", t(30), das("train", 800.0)))
    msgs.append(msg("das_event", "DA-1", t(31), das("intrusion", 1200.0), seq=1))
    # petrol-station video: smoking, a low-confidence phone use (dropped), an open flame
    vid = lambda v, c: {"station": "PS-1", "violation": v, "confidence": c}  # noqa: E731
    msgs.append(msg("petrol_video_event", "PV-1", t(40), vid("smoking", 0.8)))
    msgs.append(msg("petrol_video_event", "PV-1", t(41), vid("phone", 0.3), seq=1))
    msgs.append(msg("petrol_video_event", "PV-1", t(42), vid("open_flame", 0.95), seq=2))
    # heat detector in a tower: 28 °C, then 60 °C (EN 54-5 A1 static response 54 °C)
    msgs.append(msg("heat", "HT-1", t(50), 28.0, "degC"))
    msgs.append(msg("heat", "HT-1", t(51), 60.0, "degC", seq=1))
    # slope GNSS (no slope model yet): 0 mm, then 60 mm cumulative
    msgs.append(msg("gnss_displacement", "GN-1", t(60), 0.0, "mm"))
    msgs.append(msg("gnss_displacement", "GN-1", t(61), 60.0, "mm", seq=1))

    # the permit: refused before there are readings, granted on a safe atmosphere
    assert not link.permits.request("CS-1", "worker-1", t(5)).granted
    first = [m for m in msgs if m[0] <= t(10)]
    feed(ing, first)
    permit = link.permits.request("CS-1", "worker-1", t(10) + timedelta(seconds=30))
    assert permit.granted, permit.reasons
    link.permits.enter("CS-1", "worker-1", t(11))
    msgs.append(msg("gas_h2s", "CS-1", t(12), 15.0, "ppm", seq=1))
    feed(ing, [m for m in msgs if m[0] > t(10)])

    # every feed landed in the store, whether or not a model uses it yet
    assert store.count_observations() == len(msgs)
    for ds in ("GN-1/gnss_displacement", "HT-1/heat", "DA-1/das_event", "PV-1/petrol_video_event"):
        assert store.count_observations(ds) >= 2
    ev = by_source(store)
    A, W, INFO = Severity.ALARM, Severity.WARNING, Severity.INFO
    assert ev["RG-1/rain_gauge"] == [INFO, W, A]  # rainstorm escalation
    assert "RG-2/rain_gauge" not in ev
    assert ev["confined/CS-1"] == [A]  # gas alarm with someone inside
    (gas,) = store.events(kind="confined_space_alarm")
    assert gas.data["inside"] == ["worker-1"] and gas.data["gas"] == "gas_h2s"
    assert gas.time_s == pytest.approx(t(12).timestamp())
    assert not any(s.startswith("CS-1/") for s in ev)  # confined-space gas: PermitBook only
    assert ev["PS-1/gas_lel"] == [W]  # a fixed detector goes to the AlertEngine
    assert ev["DA-1/das_event"] == [W]
    (intr,) = store.events(kind="das_event")
    assert intr.data["class"] == "intrusion" and intr.data["position_m"] == 1200.0
    assert ev["PV-1/petrol_video_event"] == [W, A]
    assert [e.data["class"] for e in store.events(kind="video_violation")] == ["smoking", "open_flame"]
    assert ev["HT-1/heat"] == [A]
    assert ev["GN-1/gnss_displacement"] == [W]
    # the callback saw exactly what was stored, and the counters agree
    assert [e.source for e in seen] == [e.source for e in store.events()]
    assert link.stats["events"] == len(seen) == 10  # 3 rain, 1 gas, 1 LEL, 1 DAS, 2 video, heat, GNSS
    assert link.stats["to_permits"] == 5 and link.stats["readings"] == len(msgs)
    # a redelivered alarm is a duplicate: stored once, no second alert
    _, topic, payload = msg("gas_h2s", "CS-1", t(12), 15.0, "ppm", seq=1)
    (res,) = ing.handle_many([(topic, payload, t(13))])
    assert res.status == "duplicate" and len(store.events(kind="confined_space_alarm")) == 1


def test_without_a_permit_book_gas_goes_to_the_alert_engine(tmp_path):
    with Store.open(tmp_path / "s") as store:
        link = TwinLink(store, confined_spaces=["CS-1"])  # no PermitBook: nothing to route to
        ing = Ingestor(store, on_stored=link.on_stored)
        feed(ing, [msg("gas_h2s", "CS-1", T0, 15.0, "ppm")])
        assert by_source(store) == {"CS-1/gas_h2s": [Severity.ALARM]}  # GB/T 50493 2nd level
        none = TwinLink(store, alerts=None)
        Ingestor(store, on_stored=none.on_stored).handle_many(
            [msg("heat", "HT-9", T0, 90.0, "degC")[1:] + (T0,)])
        assert none.stats["readings"] == 1 and none.stats["events"] == 0


def test_confined_spaces_from_sensors_and_config(tmp_path):
    reg = SensorRegistry([
        Sensor(id="CS-7", kind="gas_h2s", lon=114.0, lat=22.5, properties={"confined_space": True}),
        Sensor(id="PS-2", kind="gas_lel", lon=114.1, lat=22.6),
    ])
    with Store.open(tmp_path / "s") as store:
        store.put_sensors(reg)
        link = TwinLink(store, permits=PermitBook(), confined_spaces=["CS-8"])  # registry from the store
        assert link.confined_spaces == {"CS-7", "CS-8"}
        assert link.positions["PS-2"] == (114.1, 22.6)
    assert confined_spaces_from_config({"confined": {"spaces": ["CS-1", "CS-2"]}}) == {"CS-1", "CS-2"}
    assert confined_spaces_from_config() == frozenset()  # the packaged config lists none
    with pytest.raises(ConfigError, match="spaces"):
        confined_spaces_from_config({"confined": {"spaces": "CS-1"}})


def test_occupied_space_with_silent_sensors_warns(rig):
    store, link, ing, _ = rig
    feed(ing, [msg(k, "CS-1", T0, v, u) for k, v, u in (("gas_o2", 20.9, "%"), ("gas_h2s", 0.0, "ppm"),
                                                         ("gas_co", 0.0, "ppm"), ("gas_lel", 0.0, "%LEL"))])
    link.permits.request("CS-1", "w", T0 + timedelta(seconds=10))
    link.permits.enter("CS-1", "w", T0 + timedelta(seconds=20))
    assert link.check(T0 + timedelta(seconds=60)) == []
    stale = link.check(T0 + timedelta(seconds=600))
    assert len(stale) == 4 and all(e.kind == "confined_space_stale" for e in stale)
    assert len(store.events(kind="confined_space_stale")) == 4
    assert [e.kind for e in link.recent_events(4)] == ["confined_space_stale"] * 4


def test_gauges_to_gridded_rain_to_the_flood_model(rig):
    store, link, ing, _ = rig
    feed(ing, rain_msgs("RG-1", 6.0, 18) + rain_msgs("RG-2", 2.0, 18) + rain_msgs("RG-3", 3.0, 18))
    end = T0 + timedelta(hours=3)
    field = link.rain_field(T0, end)
    assert field.dims == ("time", "y", "x") and field.sizes["time"] == 18
    assert field.attrs["units"] == "mm/h" and field.attrs["gauges"] == "RG-1/rain_gauge,RG-2/rain_gauge,RG-3/rain_gauge"
    # exact at the gauges (6 mm per 10 min = 36 mm/h), a convex combination elsewhere
    for st, mmh in (("RG-1", 36.0), ("RG-2", 12.0), ("RG-3", 18.0)):
        np.testing.assert_allclose(field.values[:, GAUGE_CELLS[st][0], GAUGE_CELLS[st][1]], mmh, rtol=1e-9)
    assert field.values.min() >= 12.0 - 1e-9 and field.values.max() <= 36.0 + 1e-9
    rain = link.gridded_rain(T0, end)
    assert isinstance(rain, GriddedRain) and rain.times[0] == 0.0 and rain.times[-1] == 3 * 3600.0
    # the flood model takes it; a closed basin keeps every drop: storage = rain volume
    z = grid(np.add.outer(np.linspace(2.0, 0.0, NY), np.linspace(1.0, 0.0, NX)))
    ds = simulate(z, 3 * 3600.0, rain=rain, boundaries="closed", output_every_s=3600.0)
    expected = float(field.values.sum()) * (600.0 / 3600.0) / 1000.0 * D * D  # m3
    assert float(ds["volume_rain"][-1]) == pytest.approx(expected, rel=1e-9)
    assert float(ds["volume_storage"][-1]) == pytest.approx(expected, rel=1e-9)
    assert float(ds["volume_relative_error"][-1]) < 1e-10
    assert float(ds["depth"][-1].max()) > float(ds["depth"][-1].min())  # water ran downhill


def test_gauges_without_a_position_are_left_out_of_the_grid(tmp_path):
    with Store.open(tmp_path / "s") as store:
        link = TwinLink(store, sensors={}, rain_like=grid())
        Ingestor(store, on_stored=link.on_stored).handle_many(
            [m[1:] + (m[0],) for m in rain_msgs("RG-X", 1.0, 3)])
        with pytest.raises(ValidationError, match="RG-X"):
            link.rain_field(T0, T0 + timedelta(hours=1))
        with pytest.raises(ValidationError, match="no grid"):
            TwinLink(store).rain_field(T0, T0 + timedelta(hours=1))


def test_latest_levels_drive_a_nudger(rig):
    store, link, ing, _ = rig
    feed(ing, [msg("water_level", "WL-1", T0 + timedelta(minutes=m), v, "m", m)
               for m, v in ((0, 0.20), (10, 0.30))])
    feed(ing, [msg("water_level", "WL-1", T0 + timedelta(minutes=5), 0.9, "m", 5)])  # late, older
    assert link.latest_levels() == {"WL-1": pytest.approx(0.30)}
    model = FloodModel(grid(), h0=0.1)
    gauges = gauge_positions(link.level_readings())
    np.testing.assert_allclose(gauges["WL-1"], cell_xy(6, 6), atol=1e-3)
    res = Nudger(model, gauges, radius_m=150.0, gain=1.0).nudge(link.latest_levels())
    assert res.cells == 9 and model.h[6, 6] == pytest.approx(0.30)
    assert res.volume_m3 == pytest.approx(9 * 0.2 * D * D)
    model.step(60.0)
    assert model.balance()["relative_error"] < 1e-10


def test_warm_up_continues_the_windows_after_a_restart(tmp_path):
    with Store.open(tmp_path / "s") as store:
        link = TwinLink(store, sensors=POSITIONS)
        ing = Ingestor(store, on_stored=link.on_stored, on_alert=store.put_event)
        feed(ing, rain_msgs("RG-1", 6.0, 8))  # 48 mm in 80 min: the 1-h info level only
        feed(ing, [msg("water_level", "WL-1", T0 + timedelta(minutes=m), 0.1 * m, "m", m)
                   for m in (10, 20, 30)])
        assert by_source(store) == {"RG-1/rain_gauge": [Severity.INFO]}
        # "restart": new engines; without warm-up reading 9 alone (6 mm) raises nothing
        cold = TwinLink(store, sensors=POSITIONS)
        warm = TwinLink(store, sensors=POSITIONS)
        # every rain reading of the window; of the levels only the latest
        assert warm.warm_up(T0) == 8 + 1 and warm.stats["suppressed"] == 1
        assert warm.latest_levels() == {"WL-1": pytest.approx(3.0)}
        assert TwinLink(store).warm_up(T0 + timedelta(hours=2)) == 0  # nothing that recent
        assert TwinLink(store).warm_up() == 9  # by default: each kind's longest window (rain 12 h)
        assert TwinLink(store).warm_up(now=T0) == 0  # nothing stored before `now`
        assert len(store.events()) == 1  # replaying raised nothing new
        ing2 = Ingestor(store, on_stored=warm.on_stored, on_alert=store.put_event)
        feed(ing2, rain_msgs("RG-1", 6.0, 1, start=T0 + timedelta(minutes=80), seq0=8))
        # 54 mm in 90 min: orange (3 h >= 50 mm); the info level is not raised again
        assert by_source(store) == {"RG-1/rain_gauge": [Severity.INFO, Severity.WARNING]}
        assert cold.alerts.evaluate(warm.rain_readings()[-1:]) == []


def test_replay_into_a_store_raises_alerts_that_inspect_lists(tmp_path):
    """``twin bridge replay --store`` runs the default TwinLink; ``inspect`` shows the alerts."""
    from click.testing import CliRunner

    from twin.cli import main

    feed_file = tmp_path / "feed.jsonl"
    recs = rain_msgs("RG-1", 6.0, 18) + [msg("heat", "HT-1", T0 + timedelta(minutes=30), 60.0, "degC")]
    feed_file.write_text("".join(json.dumps({"topic": topic, "payload": json.loads(p),
                                             "received_at": (t + timedelta(seconds=1)).isoformat()}) + "\n"
                                 for t, topic, p in recs))
    store = tmp_path / "store"
    cli = CliRunner()
    r = cli.invoke(main, ["bridge", "replay", str(feed_file), "--speed", "inf", "--store", str(store)],
                   catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["stored"] == len(recs)
    r = cli.invoke(main, ["bridge", "inspect", "--store", str(store), "--json", "--now",
                          "2024-06-01T03:00:00Z"], catch_exceptions=False)
    rep = json.loads(r.output)["alerts"]
    assert rep["counts"] == {"info": 1, "advisory": 0, "warning": 1, "alarm": 2}
    # newest first, info left out by the default --min-severity advisory
    assert [(a["source"], a["severity"]) for a in rep["recent"]] == [
        ("RG-1/rain_gauge", "alarm"), ("RG-1/rain_gauge", "warning"), ("HT-1/heat", "alarm")]
    assert rep["recent"][-1]["time"] == "2024-06-01T00:30:00+00:00"
    r = cli.invoke(main, ["bridge", "inspect", "--store", str(store), "--alerts", "1",
                          "--min-severity", "alarm"], catch_exceptions=False)
    assert r.exit_code == 0 and r.output.count("ALARM") == 1 and "WARNING" not in r.output
    assert "2 alarm, 1 warning, 0 advisory, 1 info" in r.output
