"""Terrain conditioning rules (physics/flood_terrain.py) on small synthetic rasters with hand-computed results."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import LineString, box

from physics.flood_terrain import (
    building_fraction,
    building_porosity,
    burn_roads,
    check_steps,
    remove_artefacts,
    road_level,
    window_cells,
)
from twin.errors import ValidationError

DX = 30.0
T = Affine(DX, 0.0, 0.0, 0.0, -DX, 600.0)  # 20 x 20 cells, x 0..600, y 600..0


def _plane(n=20, z0=10.0):
    return np.full((n, n), z0)


def _row_line(j, i0, i1):
    """A horizontal line through the centres of row j from column i0 to i1 (inclusive)."""
    y = 600.0 - (j + 0.5) * DX
    return LineString([((i0 + 0.5) * DX, y), ((i1 + 0.5) * DX, y)])


def _col_line(i, j0, j1):
    x = (i + 0.5) * DX
    return LineString([(x, 600.0 - (j0 + 0.5) * DX), (x, 600.0 - (j1 + 0.5) * DX)])


def test_window_cells_is_odd_and_at_least_three():
    assert window_cells(150.0, 30.0) == 5 and window_cells(150.0, 90.0) == 3 and window_cells(100.0, 30.0) == 3


def test_small_deep_pit_and_spike_removed_real_depression_and_shallow_pit_kept():
    z = _plane()
    z[3, 3] = z[3, 4] = -10.0          # a 2-cell hole 20 m deep: artefact (narrower than k=5, > 16 m)
    z[15, 15] = 40.0                   # a one-cell tower 30 m high: spike
    z[5:8, 15:18] = 40.0               # a 3 x 3 block 30 m high: not a one-cell spike, kept
    z[10:17, 2:9] = -10.0              # a 7 x 7 basin 20 m deep: real (wider than k), kept
    z[3, 12] = 0.0                     # a 10 m pit: shallower than the threshold, kept
    out, rep = remove_artefacts(z, dx=DX)
    assert out[3, 3] == out[3, 4] == 10.0 and out[15, 15] == 10.0
    np.testing.assert_array_equal(out[10:17, 2:9], -10.0)
    assert out[3, 12] == 0.0
    np.testing.assert_array_equal(out[5:8, 15:18], 40.0)
    assert rep.cells_changed == 3 and rep.detail["pits"] == 1 and rep.detail["spikes"] == 1
    assert rep.max_change_m == 20.0 and rep.min_change_m == -30.0


def test_valley_that_drains_is_not_a_pit():
    # a V valley 3 cells wide, 20 m deep, falling 1 m per cell towards the grid edge: it drains, so the fill
    # leaves it and nothing changes although a 5 x 5 closing would fill it
    z = _plane(z0=30.0) - np.arange(20)[None, :] * 1.0
    z[9, :] -= 20.0
    out, rep = remove_artefacts(z, dx=DX)
    assert rep.cells_changed == 0


def test_pit_next_to_a_blocked_cell_is_not_closed_against_it():
    z = _plane()
    z[0:3, :] = np.nan                 # blocked band (e.g. sea): open, not a wall
    z[3, 8] = -10.0
    out, rep = remove_artefacts(z, dx=DX)
    assert out[3, 8] == -10.0 and rep.cells_changed == 0
    assert np.isnan(out[0:3]).all()


def test_road_levels_from_tags():
    assert road_level({"bridge": "yes"}) == "bridge" and road_level({"bridge": "viaduct"}) == "bridge"
    assert road_level({"layer": "1"}) == "bridge" and road_level({"tunnel": "yes", "layer": "-1"}) == "tunnel"
    assert road_level({"layer": "-1"}) == "sunken" and road_level({"bridge": "no"}) == "ground"
    assert road_level({}) == "ground" and road_level({"layer": None, "bridge": float("nan")}) == "ground"


def _ways(rows):
    return gpd.GeoDataFrame([r[1] for r in rows], geometry=[r[0] for r in rows], crs="EPSG:4547")


def test_ground_road_burned_by_kerb_below_lowest_neighbour_bridge_not_burned_underpass_deeper():
    z = _plane(z0=10.0)
    z[9, :] = 12.0                     # buildings/trees beside... the road row reads 2 m high
    z[10, 5] = 9.0                     # one low return beside the road
    ground = _row_line(9, 2, 17)       # ground-level road along row 9
    bridge = _col_line(10, 4, 14)      # a bridge crossing it at column 10
    bridge_only = _col_line(15, 12, 18)  # a bridge over open ground (no road beneath): not burned
    ways = _ways([(ground, {"bridge": None, "tunnel": None, "layer": None}),
                  (bridge, {"bridge": "yes", "tunnel": None, "layer": "1"}),
                  (bridge_only, {"bridge": "yes", "tunnel": None, "layer": None})])
    out, rep = burn_roads(z, ways, T, kerb_m=0.15, underpass_m=1.0)
    # road cells: min(own 12, lowest within one cell) - 0.15
    assert out[9, 3] == pytest.approx(10.0 - 0.15)
    assert out[9, 5] == pytest.approx(9.0 - 0.15)      # the low return at (10, 5) is within one cell
    assert out[9, 10] == pytest.approx(10.0 - 0.15 - 1.0)  # under the bridge: an underpass
    assert out[5, 10] == 10.0 and out[14, 10] == 10.0  # the bridge deck's cells are untouched
    assert out[13, 15] == 10.0
    assert rep.detail["underpass_cells"] == 1 and rep.detail["ground_cells"] == 15
    assert rep.cells_changed == 16


def test_hillside_road_drops_at_most_the_cap():
    # a road along a slope falling 10 m per cell southwards: the cell below is 10 m lower, the cap holds it
    z = _plane() - np.arange(20)[:, None] * 10.0
    ways = _ways([(_row_line(9, 2, 17), {"bridge": None, "tunnel": None, "layer": None})])
    out, rep = burn_roads(z, ways, T, kerb_m=0.15, max_drop_m=3.0)
    np.testing.assert_allclose(out[9, 2:18], z[9, 2:18] - 3.15)
    assert rep.min_change_m == pytest.approx(-3.15)


def test_check_steps_orders_and_refuses():
    assert check_steps("roads+artefacts") == ("artefacts", "roads") and check_steps(None) == ()
    assert check_steps(["none"]) == ()
    with pytest.raises(ValidationError, match="conditioning='trees'"):
        check_steps("trees")


def test_tunnel_not_burned_except_portals_and_sunken_road_burned_deeper():
    z = _plane()
    tunnel = _row_line(5, 3, 12)
    sunken = _row_line(15, 3, 6)
    ways = _ways([(tunnel, {"bridge": None, "tunnel": "yes", "layer": "-1"}),
                  (sunken, {"bridge": None, "tunnel": None, "layer": "-1"})])
    out, rep = burn_roads(z, ways, T, kerb_m=0.15, underpass_m=1.0)
    assert out[5, 3] == out[5, 12] == pytest.approx(10.0 - 1.15)   # portals
    np.testing.assert_array_equal(out[5, 4:12], 10.0)               # underground
    np.testing.assert_allclose(out[15, 3:7], 10.0 - 1.15)
    assert rep.detail["tunnel_cells_kept"] == 8 and rep.detail["underpass_cells"] == 6


def test_burn_only_where_allowed():
    z = _plane()
    ways = _ways([(_row_line(9, 0, 19), {"bridge": None, "tunnel": None, "layer": None})])
    where = np.zeros(z.shape, bool)
    where[:, :10] = True               # e.g. the Shenzhen side of the border
    out, rep = burn_roads(z, ways, T, where=where)
    assert rep.cells_changed == 10 and (out[9, 10:] == 10.0).all()


def test_building_fraction_porosity_and_blocking():
    import xarray as xr

    from gis.raster import make_grid

    like = make_grid(np.zeros((20, 20)), T, "EPSG:4547", name="z", units="m")
    assert isinstance(like, xr.DataArray)
    # one footprint covering cell (0, 0) wholly and the left quarter of cell (0, 1)
    b = gpd.GeoDataFrame(geometry=[box(0.0, 570.0, 37.5, 600.0)], crs="EPSG:4547")
    f = building_fraction(b, like)
    assert f[0, 0] == 1.0 and f[0, 1] == pytest.approx(0.25) and f[1, 0] == 0.0
    phi, blocked, rep = building_porosity(f, block_fraction=0.5)
    assert blocked[0, 0] and not blocked[0, 1]
    assert phi[0, 0] == 0.0 and phi[0, 1] == pytest.approx(0.75) and phi[5, 5] == 1.0
    assert rep.detail["blocked_cells"] == 1 and rep.detail["porous_cells"] == 1 and rep.cells_changed == 2


def test_errors_name_the_field():
    with pytest.raises(ValidationError, match="threshold_m"):
        remove_artefacts(_plane(), dx=DX, threshold_m=-1.0)
    with pytest.raises(ValidationError, match="kerb_m"):
        burn_roads(_plane(), _ways([]), T, kerb_m=float("nan"))
    with pytest.raises(ValidationError, match="block_fraction"):
        building_porosity(np.zeros((2, 2)), block_fraction=0.0)


@pytest.mark.slow
def test_city_setup_with_buildings_on_real_nanshan_data():
    """Nanshan at 90 m with the 433 OSM footprints: porosity >= 0.5 on open cells, blocked cells NaN and not land."""
    from physics.flood_city import city_flood_setup

    s = city_flood_setup(resolution=90.0, districts=["Nanshan"], storm=30.0, hours=0.1,
                         conditioning=("artefacts", "buildings"))
    rep = s["context"]["conditioning"]["reports"][-1]
    assert rep["step"] == "buildings" and rep["detail"]["porous_cells"] > 0
    phi, dem, land = s["porosity"], s["dem"].values, s["context"]["land"]
    blocked = phi == 0                 # the cells the buildings block (phi is 1 - f elsewhere)
    assert rep["detail"]["blocked_cells"] == int(blocked.sum()) > 0
    assert np.all(phi[phi > 0] >= 0.5) and not np.any(land & blocked) and np.all(np.isnan(dem[blocked]))
