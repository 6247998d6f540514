"""Kind ``fire_floors``: a real fire run of the 30-storey example tower as storey slabs on the slider."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from twin.errors import ValidationError
from viz.layers import build, kinds
from viz.layers.fire_building import (
    BURNING,
    BURNING_UNTENABLE,
    CLEAR,
    EVENT_COLUMNS,
    REFUGE_LINE,
    SMOKE,
    UNTENABLE,
    map_view,
    status_colours,
    time_label,
)
from viz.scene import Scene

#: Origin storey index 4 (L5), an ultrafast fire with the sprinklers off: the origin storey burns from the first
#: frame (flame orange) and its escape route turns untenable at about 120 s (flame red), within the 180 s the test
#: runs; the other storeys stay clear in this model.
RUN = {"floor": 4, "growth": "ultrafast", "sprinklers": False, "duration_s": 180.0, "record_every_s": 10.0}


def run_file(tmp_path_factory) -> Path:
    """Where this session keeps the run's fire.nc (tests/viz/test_fire_map_browser.py reads it: one run, not two)."""
    key = hashlib.sha1(json.dumps(RUN, sort_keys=True).encode()).hexdigest()[:12]
    return tmp_path_factory.getbasetemp() / f"fire_tower_30_{key}.nc"


@pytest.fixture(scope="module")
def fire_ds(tmp_path_factory):
    from physics.fire_sim import simulate_fire

    ds = simulate_fire("tower_30_residential", **RUN).dataset
    ds.to_netcdf(run_file(tmp_path_factory))
    return ds


def _frame_rows(ls, layer_id: str, k: int) -> list[dict]:
    """The rows layer ``layer_id`` shows at frame ``k`` (frame 0 is the layer's own data)."""
    if k == 0:
        return next(lyr for lyr in ls.layers if lyr["id"] == layer_id)["data"]
    return ls.frames[layer_id][k]["data"]


def _expected_colours(ds, i: int) -> list[list[int]]:
    """Colours written out here: status 0/1/2 -> clear/smoke/untenable; burning wins (flame red if untenable)."""
    t = float(ds["time"].values[i])
    ign = ds["ignition_s"].values
    out = []
    for f, s in enumerate(ds["floor_status"].values[i]):
        burning = np.isfinite(ign[f]) and ign[f] <= t
        if burning:
            out.append(list(BURNING_UNTENABLE if s == 2 else BURNING))
        else:
            out.append(list((CLEAR, SMOKE, UNTENABLE)[int(s)]))
    return out


def test_the_kind_is_registered():
    assert "fire_floors" in kinds()


def test_one_slab_per_storey_at_its_elevation(fire_ds):
    ls = build("fire_floors", fire_ds)
    n = fire_ds.sizes["storey"]
    assert n == 30
    slabs = _frame_rows(ls, "fire_floors", 0)
    strip = _frame_rows(ls, "fire_floors_strip", 0)
    assert len(slabs) == len(strip) == n
    base, height = fire_ds["storey_base_m"].values, fire_ds["storey_height_m"].values
    for f, row in enumerate(slabs):
        assert {p[2] for p in row["polygon"]} == {round(float(base[f]), 2)}
        assert row["e"] == pytest.approx(0.85 * height[f], abs=0.01)
    # the footprint is a square of the plate's area (600 m² in agents/data/tower_30_residential.toml)
    ring = np.array(slabs[0]["polygon"])[:, :2]
    lat = fire_ds.attrs["lat"]
    side_x = (ring[:, 0].max() - ring[:, 0].min()) * 111_320.0 * np.cos(np.radians(lat))
    side_y = (ring[:, 1].max() - ring[:, 1].min()) * 111_320.0
    assert side_x * side_y == pytest.approx(fire_ds.attrs["floor_area_m2"], rel=1e-3)
    assert np.allclose(ring.mean(axis=0), [fire_ds.attrs["lon"], lat], atol=1e-6)


def test_colours_follow_floor_status_on_every_frame(fire_ds):
    ls = build("fire_floors", fire_ds)
    times = fire_ds["time"].values
    assert len(ls.times_s) == len(times) <= 60  # 19 records of 10 s: none thinned
    for k, t in enumerate(ls.times_s):
        i = int(np.flatnonzero(np.isclose(times, t))[0])
        expected = _expected_colours(fire_ds, i)
        assert [r["c"] for r in _frame_rows(ls, "fire_floors", k)] == expected
        assert [r["c"] for r in _frame_rows(ls, "fire_floors_strip", k)] == expected
    first = [r["c"] for r in _frame_rows(ls, "fire_floors", 0)]
    last = [r["c"] for r in _frame_rows(ls, "fire_floors", len(ls.times_s) - 1)]
    assert first != last  # the run changes something within 180 s
    origin = int(fire_ds.attrs["origin_storey"])
    assert first[origin] == list(BURNING) and last[origin] == list(BURNING_UNTENABLE)
    assert (fire_ds["floor_status"].values[0] == 0).all()


def test_status_colours_burning_wins():
    cols = status_colours(np.array([0, 1, 2, 1, 2]), np.array([False, False, False, True, True]))
    assert [list(c) for c in cols] == [list(CLEAR), list(SMOKE), list(UNTENABLE), list(BURNING),
                                       list(BURNING_UNTENABLE)]


def test_hover_names_the_storey_and_its_tenability(fire_ds):
    ls = build("fire_floors", fire_ds)
    origin = int(fire_ds.attrs["origin_storey"])
    tip = _frame_rows(ls, "fire_floors", len(ls.times_s) - 1)[origin]["tooltip"]
    assert tip.startswith(f"<b>L{origin + 1}</b>") and "fire origin" in tip
    for text in ("upper layer T max", "°C", "visibility", "FED asphyxiant", "heat", "ASET"):
        assert text in tip
    t_max = float(fire_ds["floor_temperature_max"].values[-1, origin]) - 273.15
    assert f"upper layer T max {t_max:.0f} °C" in tip
    assert "RSET" not in tip  # no evacuation in this run


def test_hover_shows_rset_and_margin_when_the_coupling_added_them(fire_ds):
    n = fire_ds.sizes["storey"]
    rset = np.full(n, 250.0)
    aset = fire_ds["aset_s"].values
    margin = aset - rset
    ds = fire_ds.assign(rset_s=("storey", rset), margin_s=("storey", margin),
                        people_caught=("storey", np.where(margin < 0, 7.0, 0.0)))
    ls = build("fire_floors", ds)
    rows = _frame_rows(ls, "fire_floors", 0)
    assert all("RSET 250 s" in r["tooltip"] for r in rows)
    f = int(np.flatnonzero(np.isfinite(aset))[0])  # an untenable storey: it has a margin
    assert f"margin ASET − RSET {margin[f]:+.0f} s" in rows[f]["tooltip"]
    if margin[f] < 0:
        assert "(unsafe), 7 people caught" in rows[f]["tooltip"]


def test_refuge_floors_are_outlined_blue(fire_ds):
    ls = build("fire_floors", fire_ds)
    refuge = np.flatnonzero(fire_ds["refuge"].values.astype(bool))
    strip = _frame_rows(ls, "fire_floors_strip", 0)
    assert [f for f, r in enumerate(strip) if r["lc"] == list(REFUGE_LINE)] == list(refuge)
    rings = next((lyr for lyr in ls.layers if lyr["id"] == "fire_floors_refuge"), None)
    if len(refuge):
        assert len(rings["data"]) == 2 * len(refuge)  # the slab's base and top edge
    else:
        assert rings is None


def test_events_appear_on_the_slider_after_their_time(fire_ds):
    ls = build("fire_floors", fire_ds)
    events = json.loads(fire_ds.attrs["events"])
    assert any(e["kind"] == "detector" for e in events)
    counts = [len(_frame_rows(ls, "fire_floors_events", k)) for k in range(len(ls.times_s))]
    assert counts == sorted(counts) and counts[-1] > 0
    first = {}
    for e in events:
        for k, (_, kinds_, _) in enumerate(EVENT_COLUMNS):
            if e["kind"] in kinds_ and e["storey"] is not None:
                first.setdefault((e["storey"], k), e["time_s"])
    for k, t in enumerate(ls.times_s):
        assert counts[k] == sum(1 for v in first.values() if v <= t + 1e-9)
    origin = next(lyr for lyr in ls.layers if lyr["id"] == "fire_floors_origin")["data"][0]
    assert origin["tooltip"].startswith("<b>Fire origin</b>: L5, flat A") and "detector" in origin["tooltip"]


def test_legends_and_scene(fire_ds):
    ls = build("fire_floors", fire_ds)
    js = Scene(sets=[ls], view=map_view(fire_ds, {"longitude": 114.05, "latitude": 22.54, "zoom": 16})).to_json()
    titles = [lg["title"] for lg in js["legends"]]
    assert titles[0].startswith("Storeys by tenability") and "Fire events" in titles[1]
    cats = dict((s[0], s[1]) for s in js["legends"][0]["stops"])
    assert list(CLEAR) in cats.values() and list(UNTENABLE) in cats.values() and list(BURNING) in cats.values()
    assert len(js["timeline"]["times_s"]) == len(ls.times_s)
    assert js["view"]["pitch"] == 50.0
    assert js["timeline"]["labels"][-1] == time_label(ls.times_s[-1]) == "+3 min 00 s"


def test_the_written_fire_nc_draws_the_same(fire_ds, tmp_path):
    import xarray as xr

    path = tmp_path / "fire.nc"
    fire_ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        a, b = build("fire_floors", fire_ds), build("fire_floors", back.load())
    assert Scene(sets=[a]).to_json() == Scene(sets=[b]).to_json()


def test_frames_are_thinned_to_max_frames(fire_ds):
    ls = build("fire_floors", fire_ds, max_frames=5)
    assert len(ls.times_s) == 5 and ls.times_s[0] == 0.0 and ls.times_s[-1] == 180.0
    assert all(len(v) == 5 for v in ls.frames.values())


def test_a_dataset_without_floor_status_is_refused_by_name(fire_ds):
    with pytest.raises(ValidationError, match="no 'floor_status' variable.*fire run"):
        build("fire_floors", fire_ds.drop_vars("floor_status"))
    with pytest.raises(ValidationError, match="storey_base_m"):
        build("fire_floors", fire_ds.drop_vars("storey_base_m"))
    bad = fire_ds.copy()
    bad.attrs = {k: v for k, v in fire_ds.attrs.items() if k != "floor_area_m2"}
    with pytest.raises(ValidationError, match="floor_area_m2"):
        build("fire_floors", bad)
    with pytest.raises(ValidationError, match=r"floor_status: expected dims \('time', 'storey'\)"):
        build("fire_floors", fire_ds.assign(floor_status=fire_ds["floor_status"].T))


def test_a_dataset_without_location_is_drawn_at_the_demo_site_and_says_so(fire_ds):
    ds = fire_ds.copy()
    ds.attrs = {k: v for k, v in fire_ds.attrs.items() if k not in ("lon", "lat")}
    ls = build("fire_floors", ds)
    assert "no location in the building file" in ls.legends[0].title


def test_map_view_fits_the_tower_pitched(fire_ds):
    v = map_view(fire_ds, {"longitude": 114.05, "latitude": 22.54, "zoom": 17.0})
    assert (v["pitch"], v["bearing"]) == (50.0, -20.0)
    assert v["longitude"] < 114.05 and v["latitude"] > 22.54  # looking up the tower (bearing -20°: NNW)
    # a tower twice as tall opens one zoom level further out (the zoom fits its height)
    tall = fire_ds.assign(storey_base_m=2 * fire_ds["storey_base_m"], storey_height_m=2 * fire_ds["storey_height_m"])
    assert map_view(tall, v)["zoom"] == pytest.approx(v["zoom"] - 1.0, abs=0.01)


def test_slabs_taper_with_the_storey_plate(fire_ds):
    """A plate of a quarter of the footprint's area (Ping An narrows 3136 -> 1444 m²) draws a slab of half its side."""
    n = fire_ds.sizes["storey"]
    area = float(fire_ds.attrs["floor_area_m2"])
    ls = build("fire_floors", fire_ds.assign(storey_plate_m2=("storey", np.linspace(area, area / 4, n))))
    slabs = _frame_rows(ls, "fire_floors", 0)

    def side(f):
        ring = np.array(slabs[f]["polygon"])
        return ring[:, 1].max() - ring[:, 1].min()

    assert side(n - 1) == pytest.approx(0.5 * side(0), rel=1e-4)
    assert np.allclose(np.array(slabs[n - 1]["polygon"])[:, :2].mean(axis=0),
                       np.array(slabs[0]["polygon"])[:, :2].mean(axis=0), atol=1e-7)  # narrowed about its centre
