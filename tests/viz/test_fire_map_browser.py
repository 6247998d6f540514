"""The offline 3-D page of a fire run in headless Chromium: the storeys change colour on the slider."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from viz.layers import build
from viz.layers.fire_building import BURNING_UNTENABLE, UNTENABLE, map_view, status_colours

#: As tests/viz/test_fire_layers.py: L5, ultrafast, no sprinklers, 180 s (L5's route turns untenable at ~120 s).
RUN = {"floor": 4, "growth": "ultrafast", "sprinklers": False, "duration_s": 180.0, "record_every_s": 10.0}


class _FireKind:
    """The run kind's map hooks, as the fire run kind wires them (twin.runkinds.RunKind.layers/map_view)."""

    name, title = "fire", "Fire: 30-storey residential tower, L5, ultrafast, sprinklers off"

    @staticmethod
    def layers(ds, warp=None, max_px=0):
        return [build("fire_floors", ds)]

    map_view = staticmethod(map_view)


def _colours(ds, i: int) -> list[list[int]]:
    """Storey colours at record ``i`` (floor_status, burning once ignition_s <= t)."""
    ign = ds["ignition_s"].values
    burning = np.isfinite(ign) & (ign <= float(ds["time"].values[i]))
    return [[int(v) for v in c] for c in status_colours(ds["floor_status"].values[i], burning)]


@pytest.fixture(scope="module")
def fire_ds(tmp_path_factory):
    """The run of RUN: the fire.nc tests/viz/test_fire_layers.py wrote in this session, else run here."""
    import xarray as xr

    from physics.fire_sim import simulate_fire

    key = hashlib.sha1(json.dumps(RUN, sort_keys=True).encode()).hexdigest()[:12]
    path = tmp_path_factory.getbasetemp() / f"fire_tower_30_{key}.nc"
    if not path.exists():
        return simulate_fire("tower_30_residential", **RUN).dataset
    with xr.open_dataset(path) as ds:
        return ds.load()


@pytest.mark.browser
def test_fire_page_draws_the_storeys_and_they_change_on_the_slider(fire_ds, chromium, tmp_path):
    from PIL import Image

    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.run_map import write_run_map

    out = write_run_map(_FireKind, fire_ds, tmp_path / "map.html")
    n_storeys = fire_ds.sizes["storey"]
    assert out["frames"] == fire_ds.sizes["time"]
    colours = "map.deck.props.layers.find(l => l.id === 'fire_floors').props.data.map(r => r.c)"
    with BrowserSession(width=1100, height=750) as b:
        b.goto(out["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        ids = b.evaluate("map.deck.props.layers.map(l => l.id)")
        assert {"fire_floors", "fire_floors_strip", "fire_floors_events", "fire_floors_origin"} <= set(ids)
        assert b.evaluate("map.deck.props.layers.find(l => l.id === 'fire_floors').props.data.length") == n_storeys
        assert b.evaluate("map.viewState.pitch") == 50  # the slabs seen in 3-D
        c0 = b.evaluate(colours)
        last = out["frames"] - 1
        assert b.evaluate(f"map.setFrame({last}).then(() => map.frame)") == last
        c_end = b.evaluate(colours)
        assert c0 == _colours(fire_ds, 0) and c_end == _colours(fire_ds, -1)
        assert any(a != z for a, z in zip(c0, c_end, strict=True))  # a slab changed colour
        tip = b.evaluate("(() => { var L = map.deck.props.layers.find(l => l.id === 'fire_floors');"
                         " return map._tooltip({layer: L, index: 4, object: L.props.data[4]}).html; })()")
        assert tip.startswith("<b>L5</b> (12 m) — fire origin") and "burning" in tip and "ASET" in tip
        b.pump(0.5)
        shot = tmp_path / "fire_map.png"
        b.screenshot(shot)
        assert b.console_errors == [] and b.network_requests == []
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    hot = [tuple(c[:3]) for c in (UNTENABLE, BURNING_UNTENABLE) if list(c) in c_end]
    assert hot  # the last frame has an untenable or burning storey, and it is drawn
    assert any((np.abs(img - np.array(c)).sum(axis=2) < 30).sum() > 50 for c in hot)
