"""The run pipeline's map page (viz.run_map) for runs with and without a model grid."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from twin.errors import ValidationError
from viz.layers import build
from viz.run_map import run_scene, write_run_map


class _AgentsKind:
    """A run kind whose output has no grid: people on two Futian streets (lon/lat per frame)."""

    name, title = "people_test", "People test"

    @staticmethod
    def layers(ds, warp=None, max_px=0):
        assert warp is None  # no grid to warp to
        return [build("movers", ds["time"].values, ds["lon"].values, ds["lat"].values)]


def _agents_ds() -> xr.Dataset:
    lon = np.array([[114.050, 114.060], [114.052, np.nan], [114.054, np.nan]])
    lat = np.array([[22.540, 22.535], [22.541, np.nan], [22.542, np.nan]])
    return xr.Dataset({"lon": (("time", "agent"), lon), "lat": (("time", "agent"), lat)},
                      coords={"time": [0.0, 60.0, 120.0]})


def test_a_run_without_grid_opens_on_its_own_layers(tmp_path):
    scene = run_scene(_AgentsKind, _agents_ds(), city=None)
    assert scene.view["longitude"] == pytest.approx(114.055, abs=1e-3)  # centre of the agents' extent
    assert scene.view["latitude"] == pytest.approx(22.5385, abs=1e-3)
    out = write_run_map(_AgentsKind, _agents_ds(), tmp_path / "map.html")
    assert out["frames"] == 3 and out["path"].stat().st_size > 0


def test_a_run_whose_layers_have_no_extent_is_refused():
    class Empty(_AgentsKind):
        @staticmethod
        def layers(ds, warp=None, max_px=0):
            from viz.scene import LayerSet

            return [LayerSet(layers=[], label="nothing")]

    with pytest.raises(ValidationError, match="people_test run: its layers give no extent"):
        run_scene(Empty, _agents_ds(), city=None)


def test_a_kind_may_pitch_the_view_its_map_opens_on():
    class Pitched(_AgentsKind):
        @staticmethod
        def map_view(ds, view):
            return {**view, "pitch": 50, "bearing": -20, "zoom": view["zoom"] - 1}

    flat = run_scene(_AgentsKind, _agents_ds(), city=None).view
    view = run_scene(Pitched, _agents_ds(), city=None).view
    assert view == {**flat, "pitch": 50, "bearing": -20, "zoom": pytest.approx(flat["zoom"] - 1)}


def test_facilities_take_their_own_kind_keyword_through_build():
    # build's own first parameter is positional-only, so a builder may have a `kind=` keyword
    s = build("facilities", [114.05], [22.54], ["Futian Hospital"], kind="hospital")
    assert s.bounds is not None
