"""Tests for twin.state (TwinState), twin.sensors (Sensor, SensorRegistry) and twin.events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pydantic
import pytest
import xarray as xr

from twin.clock import SimClock
from twin.errors import CRSError, GridError, ValidationError
from twin.events import Event, EventLog, Severity
from twin.sensors import Sensor, SensorRegistry
from twin.state import TwinState, validate_static

CST = timezone(timedelta(hours=8))


def make_static(ny: int = 4, nx: int = 6, seed: int = 0) -> xr.Dataset:
    """A small EPSG:4547 grid (30 m cells) with the layer kinds a city has."""
    a, e = 30.0, -30.0
    c, f = 500_000.0, 2_500_020.0
    x = c + a * (np.arange(nx) + 0.5)
    y = f + e * (np.arange(ny) + 0.5)
    rng = np.random.default_rng(seed)
    elev = rng.normal(20.0, 15.0, (ny, nx))
    elev[0, 0] = np.nan
    return xr.Dataset(
        {
            "elevation": (("y", "x"), elev, {"units": "m", "long_name": "ground elevation"}),
            "land": (("y", "x"), (elev > 10).astype(np.uint8), {"units": "1"}),
        },
        coords={"y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})},
        attrs={"crs": "EPSG:4547", "transform": (a, 0.0, c, 0.0, e, f)},
    )


# ------------------------------------------------------------------ TwinState
def test_set_field_stores_values_units_on_the_static_grid():
    state = TwinState(make_static())
    depth = np.full((4, 6), 0.25, dtype=np.float32)
    state.set_field("water_depth", depth, "m", "water depth")
    depth[:] = 9.0  # a copy was stored
    got = state.field("water_depth")
    assert got.dtype == np.float32
    assert float(got.max()) == 0.25
    assert got.attrs == {"units": "m", "long_name": "water depth"}
    np.testing.assert_array_equal(got["x"].values, state.static["x"].values)
    np.testing.assert_array_equal(got["y"].values, state.static["y"].values)
    assert state.field("elevation").attrs["units"] == "m"  # static layers are fields too


def test_set_field_wrong_shape_names_both_shapes():
    state = TwinState(make_static())
    with pytest.raises(GridError, match=r"\(6, 4\).*\(4, 6\)"):
        state.set_field("water_depth", np.zeros((6, 4)), "m")
    assert "water_depth" not in state.dynamic


def test_set_field_needs_units_and_the_static_coords():
    state = TwinState(make_static())
    with pytest.raises(ValidationError, match="units=''"):
        state.set_field("water_depth", np.zeros((4, 6)), "")
    shifted = xr.DataArray(
        np.zeros((4, 6)),
        dims=("y", "x"),
        coords={"y": state.static["y"].values + 1.0, "x": state.static["x"].values},
    )
    with pytest.raises(GridError, match="coordinate 'y' differs"):
        state.set_field("water_depth", shifted, "m")
    with pytest.raises(ValidationError, match="static layer"):
        state.set_field("elevation", np.zeros((4, 6)), "m")


def test_static_validation_names_the_problem():
    ds = make_static()
    validate_static(ds)
    with pytest.raises(CRSError, match="EPSG:999999"):
        validate_static(ds.assign_attrs(crs="EPSG:999999"))
    with pytest.raises(GridError, match="transform"):
        validate_static(ds.assign_attrs(transform=(30.0, 0.0, 0.0)))
    with pytest.raises(GridError, match="coordinate 'x' does not match"):
        validate_static(ds.assign_coords(x=ds["x"].values + 15.0))
    no_units = ds.copy()
    no_units["land"].attrs = {}
    with pytest.raises(ValidationError, match="'land' has units=None"):
        validate_static(no_units)
    with pytest.raises(GridError, match="dims"):
        validate_static(ds.assign(t=(("x", "y"), np.zeros((6, 4)), {"units": "1"})))


def test_field_unknown_and_drop():
    state = TwinState(make_static())
    state.set_field("h", np.ones((4, 6)), "m")
    state.drop_field("h")
    with pytest.raises(ValidationError, match="no field named 'h'"):
        state.field("h")


def test_set_field_gives_the_dataset_a_dataarray_assignment_gives_and_keeps_old_handles():
    """set_field stores a bare Variable on the Dataset's coords (no alignment): same Dataset as
    assigning a DataArray with the static coords; replacing a field keeps its place and leaves a
    DataArray returned earlier with its values."""
    state = TwinState(make_static())
    a, b = np.arange(24.0).reshape(4, 6), np.ones((4, 6), np.float32)
    first = state.set_field("depth", a, "m", "water depth", attrs={"source": "test"})
    state.set_field("speed", b, "m s-1")
    expected = xr.Dataset(coords={d: state.static[d] for d in ("y", "x")})
    expected["depth"] = xr.DataArray(a, dims=("y", "x"), coords={d: state.static[d] for d in ("y", "x")},
                                     attrs={"source": "test", "units": "m", "long_name": "water depth"})
    expected["speed"] = xr.DataArray(b, dims=("y", "x"), attrs={"units": "m s-1"})
    assert state.dynamic.identical(expected)
    state.set_field("depth", a + 1.0, "m", "water depth")
    assert list(state.dynamic.data_vars) == ["depth", "speed"]
    assert float(first.max()) == 23.0 and float(state.field("depth").max()) == 24.0
    assert state.field("depth")["y"].attrs == {"units": "m"}  # the static coords, attrs and all


def test_a_dynamic_dataset_without_coords_gets_the_grids():
    state = TwinState(make_static(), dynamic=xr.Dataset({"h": (("y", "x"), np.zeros((4, 6)), {"units": "m"})}))
    state.set_field("v", np.ones((4, 6)), "m s-1")
    np.testing.assert_array_equal(state.field("v")["x"].values, state.static["x"].values)
    np.testing.assert_array_equal(state.field("h")["y"].values, state.static["y"].values)


class Model:
    """A stand-in for a model publishing after each step: counts the computations asked of it."""

    def __init__(self) -> None:
        self.h = np.zeros((4, 6))
        self.calls = 0

    def step(self) -> None:
        self.h += 1.0

    def depth(self) -> np.ndarray:
        self.calls += 1
        return self.h.copy()


def test_a_deferred_field_is_computed_only_when_read_and_once():
    state = TwinState(make_static())
    m = Model()
    state.set_field("rain_rate", np.zeros((4, 6)), "mm h-1")
    state.defer_field("depth", m.depth, "m", "water depth")
    assert m.calls == 1  # a new field is computed at once: it takes its place among the fields
    for _ in range(5):  # published after every step, never read: never computed
        m.step()
        state.defer_field("depth", m.depth, "m", "water depth")
    assert m.calls == 1 and state.has_field("depth")
    assert float(state.field("depth").max()) == 5.0 and m.calls == 2
    assert float(state.field("depth").max()) == 5.0 and m.calls == 2  # read twice: computed once
    m.step()
    state.defer_field("depth", m.depth, "m", "water depth")
    assert list(state.dynamic.data_vars) == ["rain_rate", "depth"] and m.calls == 3  # .dynamic computes
    assert float(state.dynamic["depth"].max()) == 6.0
    assert state.field("depth").attrs == {"units": "m", "long_name": "water depth"}
    m.step()
    state.defer_field("depth", m.depth, "m", "water depth")
    assert state.summary()["dynamic"]["depth"]["max"] == 7.0 and m.calls == 4
    m.step()
    state.defer_field("depth", m.depth, "m")
    state.set_field("depth", np.full((4, 6), -1.0), "m")  # a set replaces what was deferred
    assert float(state.field("depth").max()) == -1.0 and m.calls == 4
    state.defer_field("depth", m.depth, "m")
    state.drop_field("depth")  # dropped unread: not computed
    assert not state.has_field("depth") and m.calls == 4
    assert "depth" not in state.dynamic


def test_deferred_field_errors_name_the_field():
    state = TwinState(make_static())
    with pytest.raises(ValidationError, match="compute is a ndarray, not a callable"):
        state.defer_field("depth", np.zeros((4, 6)), "m")
    with pytest.raises(ValidationError, match="units=''"):
        state.defer_field("depth", lambda: np.zeros((4, 6)), "")
    with pytest.raises(ValidationError, match="static layer"):
        state.defer_field("elevation", lambda: np.zeros((4, 6)), "m")
    with pytest.raises(GridError, match=r"'depth' has shape \(2, 2\)"):
        state.defer_field("depth", lambda: np.zeros((2, 2)), "m")  # new: checked at once
    state.defer_field("depth", lambda: np.zeros((4, 6)), "m")
    state.defer_field("depth", lambda: np.zeros((6, 4)), "m")  # replaced: checked when read
    with pytest.raises(GridError, match=r"'depth' has shape \(6, 4\)"):
        state.field("depth")
    assert state.field("depth").shape == (4, 6)  # the last good values stay


def test_summary_reports_grid_layers_clock_sensors_events():
    clock = SimClock(datetime(2024, 6, 1, 8, tzinfo=CST), now_s=60.0)
    state = TwinState(make_static(), clock=clock)
    state.set_field("water_depth", np.zeros((4, 6), np.float32), "m")
    state.sensors.add(Sensor(id="rg-1", kind="rain_gauge", lon=114.06, lat=22.54, unit="mm"))
    state.events.record(clock, "rain_start", "rain began", severity="advisory")
    s = state.summary()
    assert s["grid"]["shape"] == [4, 6]
    assert s["grid"]["crs"] == "EPSG:4547"
    assert s["grid"]["cell_size"] == [30.0, 30.0]
    assert s["grid"]["bounds"] == [500_000.0, 2_499_900.0, 500_180.0, 2_500_020.0]
    assert s["static"]["elevation"]["n_valid"] == 23  # one NaN of 24
    assert s["dynamic"]["water_depth"]["max"] == 0.0
    assert s["clock"]["now_s"] == 60.0
    assert s["clock"]["now_local"].startswith("2024-06-01T08:01:00")
    assert s["sensors"] == {"count": 1, "by_kind": {"rain_gauge": 1}}
    assert s["events"]["by_severity"]["advisory"] == 1


# -------------------------------------------------------------------- sensors
def test_duplicate_sensor_id_names_the_id():
    reg = SensorRegistry()
    reg.add(Sensor(id="wl-07", kind="water_level", lon=114.1, lat=22.6, unit="m"))
    with pytest.raises(ValidationError, match="'wl-07' is already registered"):
        reg.add({"id": "wl-07", "kind": "rain_gauge", "lon": 114.0, "lat": 22.5})
    assert len(reg) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("lon", 181.0), ("lat", -90.5), ("lon", float("nan")), ("id", ""), ("lat", "22.5")],
)
def test_sensor_fields_are_validated_strictly(field, value):
    rec = {"id": "s1", "kind": "rain_gauge", "lon": 114.0, "lat": 22.5, field: value}
    with pytest.raises(ValidationError, match=f"{field}="):
        Sensor.parse(rec)
    with pytest.raises(pydantic.ValidationError):
        Sensor(**rec)


def test_registry_queries_and_round_trip():
    reg = SensorRegistry(
        [
            Sensor(
                id="rg-1",
                kind="rain_gauge",
                name="福田雨量站",
                lon=114.05,
                lat=22.54,
                unit="mm",
                thresholds={"warning": 30.0, "alarm": 50.0},
            ),
            Sensor(
                id="wl-1",
                kind="water_level",
                lon=114.10,
                lat=22.60,
                unit="m",
                properties={"datum": "EGM2008", "operator": "SZ water"},
            ),
            Sensor(id="rg-2", kind="rain_gauge", lon=113.95, lat=22.52, unit="mm"),
        ]
    )
    assert [s.id for s in reg.by_kind("rain_gauge")] == ["rg-1", "rg-2"]
    assert reg.kinds() == {"rain_gauge": 2, "water_level": 1}
    assert reg.get("wl-1").properties["datum"] == "EGM2008"
    again = SensorRegistry.from_records(reg.to_records())
    assert again == reg
    removed = reg.remove("rg-1")
    assert removed.name == "福田雨量站"
    assert "rg-1" not in reg and again != reg
    with pytest.raises(ValidationError, match="'rg-1' is not registered"):
        reg.get("rg-1")


def test_registry_to_geodataframe_is_wgs84_points():
    reg = SensorRegistry([Sensor(id="a", kind="k", lon=114.05, lat=22.54)])
    gdf = reg.to_geodataframe()
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf["id"]) == ["a"]
    assert (gdf.geometry.x[0], gdf.geometry.y[0]) == (114.05, 22.54)


# --------------------------------------------------------------------- events
def _log() -> EventLog:
    t = datetime(2024, 6, 1, tzinfo=UTC)
    log = EventLog()
    log.append(Event(time_s=0.0, wall_time=t, kind="run_start", source="cli"))
    log.append(
        Event(
            time_s=60.0,
            wall_time=t,
            kind="threshold",
            source="rg-1",
            severity=Severity.WARNING,
            message="30 mm/h",
            data={"value": 31.2},
        )
    )
    log.append(
        {
            "time_s": 120.0,
            "wall_time": "2024-06-01T08:02:00+08:00",
            "kind": "threshold",
            "source": "wl-1",
            "severity": "alarm",
            "message": "3.1 m",
        }
    )
    log.append(
        Event(time_s=180.0, wall_time=t, kind="road_closed", source="ops", severity="advisory")
    )
    return log


def test_event_log_queries():
    log = _log()
    assert [e.time_s for e in log.query(kind="threshold")] == [60.0, 120.0]
    assert [e.time_s for e in log.query(t0=60.0, t1=180.0)] == [60.0, 120.0]  # half-open
    assert [e.kind for e in log.query(severity="alarm")] == ["threshold"]
    assert [e.time_s for e in log.query(min_severity=Severity.ADVISORY)] == [60.0, 120.0, 180.0]
    assert [e.source for e in log.query(source="wl-1")] == ["wl-1"]
    assert log.counts() == {"info": 1, "advisory": 1, "warning": 1, "alarm": 1}
    assert log[2].wall_time == datetime(2024, 6, 1, 0, 2, tzinfo=UTC)
    assert log[2].wall_time.utcoffset() == timedelta(0)


def test_event_log_round_trips_through_records():
    log = _log()
    again = EventLog.from_records(log.to_records())
    assert again == log
    assert again[1].data == {"value": 31.2}


def test_event_validation():
    with pytest.raises(ValidationError, match="severity"):
        Event.parse({"time_s": 0.0, "kind": "x", "severity": "panic"})
    with pytest.raises(ValidationError, match="wall_time"):
        Event.parse({"time_s": 0.0, "kind": "x", "wall_time": datetime(2024, 1, 1)})
    with pytest.raises(ValidationError, match="time_s"):
        Event.parse({"time_s": float("inf"), "kind": "x"})
    assert Severity.ALARM.rank > Severity.WARNING.rank > Severity.ADVISORY.rank > Severity.INFO.rank


def test_record_uses_the_clock_time():
    clock = SimClock(now_s=42.0)
    log = EventLog()
    ev = log.record(
        clock, "flood", "street flooded", source="model", severity="warning", data={"depth_m": 0.4}
    )
    assert (ev.time_s, ev.severity, len(log)) == (42.0, Severity.WARNING, 1)
