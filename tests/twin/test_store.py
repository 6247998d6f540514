"""Tests for twin.store: observations, events and snapshots, on both backends (``store_at``: tests/twin/conftest.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from twin.clock import SimClock
from twin.errors import SnapshotError, StoreError, ValidationError
from twin.events import Event, EventLog, Severity
from twin.sensors import Sensor, SensorRegistry
from twin.state import TwinState
from twin.store import SCHEMA_VERSION, Observation, Store

CST = timezone(timedelta(hours=8))
T0 = datetime(2024, 6, 1, 8, 0, tzinfo=CST)


def make_state(ny: int = 7, nx: int = 9, seed: int = 1) -> TwinState:
    """The synthetic twin of the round-trip test: every dtype and attr kind a city uses."""
    rng = np.random.default_rng(seed)
    a, e = 30.0, -30.0
    c, f = 493_215.0, 2_509_870.0
    x = c + a * (np.arange(nx) + 0.5)
    y = f + e * (np.arange(ny) + 0.5)
    elevation = rng.normal(25.0, 20.0, (ny, nx))
    elevation[rng.random((ny, nx)) < 0.2] = np.nan
    land = (rng.random((ny, nx)) < 0.7).astype(np.uint8)
    district = rng.integers(0, 10, (ny, nx)).astype(np.int16)
    district[land == 0] = -1
    slope = rng.uniform(0.0, 35.0, (ny, nx)).astype(np.float32)
    static = xr.Dataset(
        {
            "elevation": (
                ("y", "x"),
                elevation,
                {"units": "m", "long_name": "地面高程 ground elevation", "nodata": np.nan},
            ),
            "land": (("y", "x"), land, {"units": "1", "flag_values": (0, 1)}),
            "district": (
                ("y", "x"),
                district,
                {"units": "1", "nodata": np.int16(-1), "_FillValue": np.int16(-1)},
            ),
            "slope": (("y", "x"), slope, {"units": "degree", "scale": np.float32(1.5)}),
        },
        coords={
            "y": ("y", y, {"units": "m", "axis": "Y"}),
            "x": ("x", x, {"units": "m", "axis": "X"}),
        },
        attrs={
            "crs": "EPSG:4547",
            "transform": (a, 0.0, c, 0.0, e, f),
            "source": ["dem.tif", "landuse.gpkg"],
            "history": {"built": "2024-06-01", "resolution_m": 30},
        },
    )
    clock = SimClock(T0)
    state = TwinState(static, clock=clock)
    state.set_field(
        "water_depth", rng.uniform(0, 2, (ny, nx)).astype(np.float32), "m", "water depth"
    )
    state.set_field("velocity", rng.normal(0, 1, (ny, nx)), "m s-1", attrs={"solver": "lisflood"})
    state.set_field("wet", rng.random((ny, nx)) < 0.5, "1", "wet cell")
    state.sensors.add(
        Sensor(
            id="rg-futian",
            kind="rain_gauge",
            name="福田雨量站",
            lon=114.055,
            lat=22.541,
            unit="mm",
            thresholds={"warning": 30.0, "alarm": 50.0},
        )
    )
    state.sensors.add(
        Sensor(
            id="wl-shenzhen-river",
            kind="water_level",
            lon=114.1,
            lat=22.53,
            unit="m",
            properties={"datum": "EGM2008", "nested": {"a": [1, 2.5]}},
        )
    )
    state.events.append(
        Event(time_s=0.0, wall_time=T0, kind="run_start", source="test", message="start")
    )
    clock.every(100.0, lambda t: None)
    clock.advance_to(1234.5)
    state.events.record(
        clock,
        "threshold",
        "水位超警",
        source="wl-shenzhen-river",
        severity="alarm",
        data={"v": 3.2},
    )
    return state


def same_value(got, want) -> bool:
    """``got == want``, except that NaN equals NaN: a NaN attr restored as NaN is exact."""
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(
            same_value(got[k], want[k]) for k in want)
    if isinstance(want, tuple | list):
        return type(got) is type(want) and len(got) == len(want) and all(
            same_value(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, np.ndarray):
        return np.array_equal(got, want, equal_nan=want.dtype.kind in "fc")
    if isinstance(want, float | np.floating) and np.isnan(want):
        return isinstance(got, float | np.floating) and np.isnan(got)
    return bool(got == want)


def assert_same_state(got: TwinState, want: TwinState) -> None:
    for name in ("static", "dynamic"):
        g, w = getattr(got, name), getattr(want, name)
        xr.testing.assert_identical(g, w)
        for var in w.variables:
            assert g[var].dtype == w[var].dtype, (name, var)
            assert g[var].attrs.keys() == w[var].attrs.keys(), (name, var)
            for k, v in w[var].attrs.items():
                assert type(g[var].attrs[k]) is type(v), (name, var, k)
        assert list(g.data_vars) == list(w.data_vars)
        assert set(g.coords) == set(w.coords)
    assert type(got.static.attrs["transform"]) is tuple
    assert same_value(got.static.attrs, want.static.attrs)
    assert got.sensors == want.sensors
    assert got.events == want.events
    assert got.clock.start == want.clock.start
    assert got.clock.now_s == want.clock.now_s


# ------------------------------------------------------------------ snapshots
def test_snapshot_restore_reproduces_every_field(tmp_path, store_at):
    state = make_state()
    with Store.open(store_at(tmp_path / "store")) as store:
        run = store.start_run("scenario", {"name": "typhoon", "rain_mm": 250})
        sid = store.snapshot(state, run_id=run, label="t=1234.5")
        info = store.snapshots()[0]
        restored = store.restore(sid)
    assert (info.id, info.run_id, info.label, info.sim_time_s) == (sid, run, "t=1234.5", 1234.5)
    assert info.path.parent == tmp_path / "store" / "snapshots"
    assert info.nbytes == info.path.stat().st_size
    assert [p.name for p in info.path.parent.iterdir()] == [info.path.name]  # no temp left
    assert_same_state(restored, state)
    assert restored.clock.now == datetime(2024, 6, 1, 0, 20, 34, 500000, tzinfo=UTC)
    assert restored.static["district"].attrs["nodata"] == np.int16(-1)
    assert (
        np.isnan(restored.static["elevation"].values).sum()
        == np.isnan(state.static["elevation"].values).sum()
    )
    # The restored clock runs on from the saved time.
    restored.clock.advance(0.5)
    assert restored.clock.now_s == 1235.0


def test_snapshot_file_is_plain_netcdf_with_readable_units(tmp_path, store_at):
    import netCDF4

    with Store.open(store_at(tmp_path)) as store:
        path = store.snapshot_info(store.snapshot(make_state())).path
    with netCDF4.Dataset(path) as nc:
        assert set(nc.groups) == {"static", "dynamic"}
        assert nc["static"]["elevation"].units == "m"
        assert nc["static"].crs == "EPSG:4547"
        assert list(nc["static"].transform) == [30.0, 0.0, 493_215.0, 0.0, -30.0, 2_509_870.0]
        assert nc["dynamic"]["water_depth"].dtype == np.float32


def test_tampered_snapshot_raises_naming_the_file(tmp_path, store_at):
    with Store.open(store_at(tmp_path)) as store:
        sid = store.snapshot(make_state())
        path = store.snapshot_info(sid).path
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(SnapshotError, match=f"{path.name}.*corrupt"):
            store.restore(sid)
        path.unlink()
        with pytest.raises(SnapshotError, match=f"{path.name} is missing"):
            store.restore(sid)
        with pytest.raises(SnapshotError, match="snapshot id 99 does not exist"):
            store.restore(99)


def test_failed_snapshot_leaves_no_row_and_no_file(tmp_path, store_at):
    state = make_state()
    state.dynamic["when"] = (("y", "x"), np.zeros(state.shape, "datetime64[ns]"), {"units": "1"})
    with Store.open(store_at(tmp_path)) as store:
        with pytest.raises(SnapshotError, match="dynamic/when has dtype datetime64"):
            store.snapshot(state)
        assert store.snapshots() == []
    assert list((tmp_path / "snapshots").iterdir()) == []


def test_snapshot_events_and_sensors_are_kept_apart_from_the_live_log(tmp_path, store_at):
    state = make_state()
    with Store.open(store_at(tmp_path)) as store:
        store.put_event(Event(time_s=5.0, kind="live", severity="warning"))
        store.put_sensors([Sensor(id="cam-1", kind="camera", lon=114.0, lat=22.5)])
        sid = store.snapshot(state)
        assert [e.kind for e in store.events()] == ["live"]
        assert [e.kind for e in store.events(snapshot_id=sid)] == ["run_start", "threshold"]
        assert store.sensors().ids() == ["cam-1"]
        assert store.sensors(snapshot_id=sid) == state.sensors


DTYPES = ["float64", "float32", "int8", "int16", "int32", "int64"]
DTYPES += ["uint8", "uint16", "uint32", "uint64", "bool"]
ATTR_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda k: k != "units")
ATTR_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.tuples(st.floats(allow_nan=False), st.floats(allow_nan=False)),
    st.lists(st.integers(-100, 100), max_size=4),
    st.sampled_from(["float32", "int16", "uint8"]).flatmap(
        lambda d: hnp.from_dtype(np.dtype(d)).map(np.dtype(d).type)
    ),
)


@st.composite
def twin_states(draw) -> TwinState:
    ny, nx = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    a = draw(st.sampled_from([1.0, 12.5, 30.0, 90.0]))
    c = draw(st.floats(-1e6, 1e6).map(round))
    f = draw(st.floats(1e6, 3e6).map(round))

    def layers(prefix: str) -> dict:
        out = {}
        for i in range(draw(st.integers(0 if prefix == "d" else 1, 3))):
            dtype = np.dtype(draw(st.sampled_from(DTYPES)))
            values = draw(hnp.arrays(dtype, (ny, nx)))
            attrs = draw(st.dictionaries(ATTR_KEYS, ATTR_VALUES, max_size=3))
            attrs["units"] = draw(st.sampled_from(["m", "1", "m s-1", "毫米"]))
            out[f"{prefix}{i}"] = (("y", "x"), values, attrs)
        return out

    x = c + a * (np.arange(nx) + 0.5)
    y = f - a * (np.arange(ny) + 0.5)
    static = xr.Dataset(
        layers("s"),
        coords={"y": y, "x": x},
        attrs={"crs": "EPSG:4547", "transform": (a, 0.0, c, 0.0, -a, f)}
        | draw(
            st.dictionaries(
                ATTR_KEYS.filter(lambda k: k not in ("crs", "transform")), ATTR_VALUES, max_size=2
            )
        ),
    )
    dynamic = xr.Dataset(layers("d"), coords={"y": y, "x": x})
    clock = SimClock(T0, now_s=draw(st.floats(0, 1e9)))
    return TwinState(static, clock=clock, dynamic=dynamic)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=twin_states())
def test_property_snapshot_round_trip_is_exact(state):
    with tempfile.TemporaryDirectory() as tmp, Store.open(tmp) as store:
        restored = store.restore(store.snapshot(state))
    assert_same_state(restored, state)


# --------------------------------------------------------------- observations
def test_duplicate_observation_is_stored_once(tmp_path, store_at):
    with Store.open(store_at(tmp_path)) as store:
        assert store.put_observation("rg-1/rain", T0, 3.5, "mm", raw={"v": "3.5"}) is True
        # Same instant spelled in UTC: still the same observation; the first value wins.
        same = T0.astimezone(UTC).isoformat()
        assert store.put_observation("rg-1/rain", same, 9.9, "mm") is False
        assert store.put_observation("rg-1/rain", T0, 4.0, "mm", seq=1) is True
        obs = store.observations("rg-1/rain")
    assert [(o.value, o.seq) for o in obs] == [(3.5, 0), (4.0, 1)]
    assert obs[0].raw == {"v": "3.5"}
    assert obs[0].phenomenon_time == T0


def test_batch_insert_counts_new_rows_only(tmp_path, store_at):
    def ob(i: int, value: float = 1.0) -> Observation:
        return Observation("wl-1/level", T0 + timedelta(minutes=i), value, "m")

    with Store.open(store_at(tmp_path)) as store:
        assert store.put_observations([ob(i) for i in range(5)]) == 5
        batch = [ob(i) for i in range(3, 10)] + [ob(9), ob(9, 2.0)]  # 2 stored + 1 twice in batch
        batch.append({"datastream_id": "wl-1/level", "phenomenon_time": T0, "value": 1.0, "seq": 7})
        assert store.put_observations(batch) == 6
        assert store.count_observations("wl-1/level") == 11
        with pytest.raises(ValidationError, match="no timezone"):
            store.put_observations([ob(20), Observation("wl-1/level", datetime(2024, 1, 1), 1.0)])
        assert store.count_observations() == 11  # the bad batch stored nothing


def test_observation_range_is_half_open_and_ordered(tmp_path, store_at):
    with Store.open(store_at(tmp_path)) as store:
        for i in (5, 1, 3, 0, 4, 2):
            store.put_observation("s/p", T0 + timedelta(hours=i), float(i))
        got = store.observations("s/p", T0 + timedelta(hours=1), T0 + timedelta(hours=4))
        assert [o.value for o in got] == [1.0, 2.0, 3.0]
        assert store.observations("s/p", limit=2)[1].value == 1.0
        assert store.datastreams() == ["s/p"]


WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import datetime, timedelta, timezone
    from twin.store import Observation, Store

    target, root, name, go = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    t0 = datetime(2024, 6, 1, tzinfo=timezone.utc)
    with Store.open(target) as store:
        open(os.path.join(root, "ready-" + name), "w").close()
        for _ in range(6000):  # wait for the start signal, at most about a minute
            if os.path.exists(go):
                break
            time.sleep(0.01)
        else:
            sys.exit("no start signal")
        own = common = 0
        for i in range(300):
            own += store.put_observation(name + "/single", t0 + timedelta(seconds=i), float(i))
            if i % 6 == 0:
                common += store.put_observation("shared/x", t0 + timedelta(seconds=i // 6), 1.0)
        batch = [Observation(name + "/batch", t0 + timedelta(seconds=i), float(i)) for i in range(100)]
        own += store.put_observations(batch)
    print(json.dumps({"own": own, "common": common}))
    """
)


def test_two_processes_writing_concurrently_lose_nothing(tmp_path, store_at):
    root = tmp_path / "store"
    target = store_at(root)
    Store.open(target).close()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(root), name, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    try:
        for _ in range(6000):
            if all((root / f"ready-{n}").exists() for n in ("alpha", "beta")):
                break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        go.touch()
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    results = [json.loads(out) for out, _ in outs]
    assert [r["own"] for r in results] == [400, 400]
    assert sum(r["common"] for r in results) == 50  # each shared key stored by exactly one
    with Store.open(target) as store:
        for name in ("alpha", "beta"):
            single = store.observations(f"{name}/single")
            assert [o.value for o in single] == [float(i) for i in range(300)]
            assert store.count_observations(f"{name}/batch") == 100
        assert store.count_observations("shared/x") == 50
        assert store.count_observations() == 850


# ---------------------------------------------------------- runs, events, schema
def test_runs_lifecycle(tmp_path, store_at):
    with Store.open(store_at(tmp_path)) as store:
        rid = store.start_run("replay", {"event": "Mangkhut 2018"})
        assert store.run(rid).status == "running"
        store.end_run(rid, "done")
        info = store.run(rid)
        assert (info.status, info.params) == ("done", {"event": "Mangkhut 2018"})
        assert info.ended is not None and info.ended >= info.started
        with pytest.raises(ValidationError, match="already ended"):
            store.end_run(rid, "failed")
        with pytest.raises(ValidationError, match="status='ok'"):
            store.end_run(store.start_run("x"), "ok")


def test_events_query_in_store(tmp_path, store_at):
    wall = datetime(2024, 6, 1, tzinfo=UTC)
    log = EventLog(
        [
            Event(time_s=float(i), wall_time=wall, kind=k, severity=s, data={"i": i})
            for i, (k, s) in enumerate(
                [("a", "info"), ("b", "warning"), ("a", "alarm"), ("b", "advisory")]
            )
        ]
    )
    with Store.open(store_at(tmp_path)) as store:
        rid = store.start_run("live")
        for e in log:
            store.put_event(e, run_id=rid)
        assert store.events() == list(log)
        assert [e.time_s for e in store.events(kind="a")] == [0.0, 2.0]
        assert [e.time_s for e in store.events(t0=1.0, t1=3.0)] == [1.0, 2.0]
        assert [e.time_s for e in store.events(min_severity=Severity.WARNING)] == [1.0, 2.0]
        assert [e.time_s for e in store.events(severity="advisory")] == [3.0]
        assert len(store.events(run_id=rid)) == 4


def test_durability_settings_and_newer_schema_refused(tmp_path):
    with Store.open(tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(tmp_path / "twin.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer.*upgrade shenzhen-twin"):
        Store.open(tmp_path)


def test_closed_store_says_so(tmp_path, store_at):
    store = Store.open(store_at(tmp_path))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.put_observation("a/b", T0, 1.0)


def test_sensor_registry_json_survives_store_round_trip(tmp_path, store_at):
    reg = SensorRegistry(
        [Sensor(id=f"s{i}", kind="k", lon=114.0 + i / 100, lat=22.5) for i in range(3)]
    )
    with Store.open(store_at(tmp_path)) as store:
        assert store.put_sensors(reg) == 3
        assert store.put_sensors([Sensor(id="s1", kind="moved", lon=114.5, lat=22.6)]) == 1
        live = store.sensors()
    assert live.get("s1").kind == "moved"
    assert live.ids() == ["s0", "s1", "s2"]  # replaced in place
    assert Path(tmp_path / "twin.sqlite").is_file() == (store.backend == "sqlite")


@pytest.mark.data
def test_real_shenzhen_static_state_round_trips(shenzhen_dir, tmp_path):
    """The lead's city loader output (coarse 1 km grid) survives snapshot/restore exactly."""
    from twin.city import City

    static = City("shenzhen").static(resolution=1000)
    state = TwinState(static, clock=SimClock(T0))
    state.set_field("water_depth", np.zeros(state.shape, np.float32), "m")
    with Store.open(tmp_path) as store:
        restored = store.restore(store.snapshot(state))
    assert_same_state(restored, state)
    assert restored.static.attrs["district_names"][1] == "Futian"


def test_put_ingested_flags_new_rows_against_stored_and_in_batch_duplicates(tmp_path, store_at):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def obs(stream, k, value=1.0):
        return Observation(datastream_id=stream, phenomenon_time=t0 + timedelta(seconds=k),
                           result_time=t0 + timedelta(seconds=k), seq=0, value=value, unit="m")

    with Store.open(store_at(tmp_path / "s")) as store:
        assert store.put_ingested([obs("A", 1), obs("A", 2)]) == [True, True]  # all new: fast path
        # A/2 stored before, B/1 twice in this batch (the first one is the new one), B/2 new
        flags = store.put_ingested([obs("A", 2, 9.0), obs("B", 1), obs("B", 1, 7.0), obs("B", 2)],
                                   [("sz/v1/x", b"{", "bad JSON", t0)])
        assert flags == [False, True, False, True]
        assert store.count_observations() == 4
        assert store.observations("A", t0=t0 + timedelta(seconds=2))[0].value == 1.0  # first kept
        assert store.observations("B", t0=t0 + timedelta(seconds=1))[0].value == 1.0
        assert store.count_dead_letters() == 1
        assert store.put_ingested([]) == []
        with pytest.raises(ValidationError):
            store.put_ingested([obs("C", 1), {"datastream_id": ""}])
        assert store.count_observations() == 4  # nothing of a bad batch is written
