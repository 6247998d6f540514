"""Layer kind ``walkable``: the place of a pedestrian run (area, walls, exits open/closed, density cells)."""

from __future__ import annotations

import pytest
from shapely.geometry import LineString, Polygon, box

from twin.errors import ValidationError
from viz.layers import build
from viz.layers.walkable import CLOSED, OPEN

AREA = box(114.0500, 22.5400, 114.0502, 22.5402)
EXITS = {"a": LineString([(114.0502, 22.54005), (114.0502, 22.54010)]),
         "b": LineString([(114.0500, 22.54005), (114.0500, 22.54010)])}


def _layer(ls, suffix):
    return next(lyr for lyr in ls.layers if lyr["id"] == f"walkable_{suffix}")


def test_exits_turn_red_on_the_slider_when_they_close():
    ls = build("walkable", AREA, exits=EXITS, closed_at_s={"a": 10.0}, times_s=[0.0, 5.0, 10.0, 15.0])
    frames = ls.frames["walkable_exits"]
    assert len(frames) == 4 and ls.times_s == [0.0, 5.0, 10.0, 15.0]
    colours = [[row["c"] for row in f["data"]] for f in frames]
    assert colours[0] == colours[1] == [list(OPEN), list(OPEN)]
    assert colours[2] == colours[3] == [list(CLOSED), list(OPEN)]
    assert "closes at 10 s" in frames[0]["data"][0]["tooltip"]


def test_static_without_closures_and_bounds_of_the_area():
    ls = build("walkable", AREA, exits=EXITS, walls=[box(114.05005, 22.54005, 114.05006, 22.54006),
                                                    LineString([(114.05001, 22.5401), (114.05003, 22.5401)])])
    assert ls.frames == {} and ls.times_s is None
    assert ls.bounds == pytest.approx(AREA.bounds)
    assert {"walkable_area", "walkable_walls", "walkable_wall_lines", "walkable_exits"} <= set(ls.layer_ids())


def test_density_cells_below_the_first_stop_are_not_drawn():
    cells = [box(114.05, 22.54, 114.05001, 22.54001), box(114.05001, 22.54, 114.05002, 22.54001),
             box(114.05002, 22.54, 114.05003, 22.54001)]
    ls = build("walkable", AREA, exits=EXITS, density=(cells, [0.25, 1.5, float("nan")]), density_cell_m=2.0)
    rows = _layer(ls, "density")["data"]
    assert len(rows) == 1 and "1.50 P/m²" in rows[0]["tooltip"]


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"area": box(500000, 2490000, 500060, 2490300)}, "not lon/lat", id="metres"),
    pytest.param({"closed_at_s": {"c": 3.0}}, "'c'", id="unknown-exit"),
    pytest.param({"exits": {}}, "at least one exit", id="no-exits"),
    pytest.param({"area": Polygon()}, "non-empty", id="empty-area"),
])
def test_bad_input_is_refused_naming_it(kwargs, message):
    args = {"area": AREA, "exits": EXITS, **kwargs}
    with pytest.raises(ValidationError, match=message):
        build("walkable", args.pop("area"), **args)
