"""The shared model domain (twin/domain.py): real Shenzhen data at 90 m, and small DEM files."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine

from gis.raster import make_grid, write_geotiff
from twin.city import City
from twin.domain import Domain, outflow_candidates
from twin.errors import GridError, ValidationError
from twin.state import TwinState

RES = 90.0


@pytest.fixture(scope="module")
def city(twin_data):
    return City("shenzhen")


@pytest.fixture(scope="module")
def futian(city):
    return Domain.from_city(city, resolution=RES, districts="Futian,Luohu")


# -- masks -------------------------------------------------------------------------------------------
def test_land_sea_blocked_partition_the_grid(futian):
    land, sea, blocked = futian.land, futian.sea, futian.blocked
    assert (land.astype(int) + sea + blocked == 1).all()
    assert land.sum() > 1000 and sea.sum() > 100  # Futian fronts Shenzhen Bay


def test_sea_never_on_the_grid_border(futian):
    # Border sea would drain through free edges and be refilled by its fixed level.
    sea = futian.sea
    assert not (sea[0].any() or sea[-1].any() or sea[:, 0].any() or sea[:, -1].any())


def _next_to(mask):
    near = np.zeros_like(mask)
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    return near


def test_outflow_candidates_follow_their_rule(futian):
    cand = futian.outflow_candidates
    assert cand.sum() > 50
    assert np.all(futian.blocked[cand]) and np.all(np.isfinite(futian.elevation[cand]))
    assert np.all(_next_to(futian.land)[cand]) and not (cand & futian.sea).any()
    # every blocked GSHHG-land cell with an elevation next to active land is one (land is never sea)
    must = _next_to(futian.land) & futian.blocked & (futian.land_mask_gshhg == 1) \
        & np.isfinite(futian.elevation)
    assert np.all(cand[must])


def test_outflow_candidates_on_a_small_grid():
    land = np.zeros((5, 5), bool)
    land[1:4, 1:4] = True
    blocked = ~land
    sea = np.zeros_like(land)
    sea[2, 4] = True           # blocked sea next to land: not a candidate
    z = np.ones((5, 5))
    z[0, 2] = np.nan           # no elevation: not a candidate
    cand = outflow_candidates(land, blocked, sea, z)
    expected = np.zeros_like(land)
    expected[0, 1] = expected[0, 3] = True
    expected[4, 1:4] = True
    expected[1:4, 0] = True
    expected[1, 4] = expected[3, 4] = True
    assert cand.tolist() == expected.tolist()  # corners are only 8-adjacent: never candidates


def test_district_ids_match_the_district_polygons(futian, city):
    polys = futian.districts.to_crs(city.crs)
    x, y = futian.cell_centres()
    rows, cols = np.nonzero(futian.district >= 0)
    pick = np.random.default_rng(0).choice(rows.size, 300, replace=False)
    for i, j in zip(rows[pick], cols[pick], strict=True):
        p = shapely.Point(x[j], y[i])
        poly = polys.geometry.iloc[int(futian.district[i, j])]
        # Rasterizing takes the cell centre: away from the boundary it must lie in its polygon.
        if poly.boundary.distance(p) > RES:
            assert poly.contains(p), (i, j)
    outside = np.argwhere(futian.district < 0)
    for i, j in outside[:: max(1, len(outside) // 200)]:
        p = shapely.Point(x[j], y[i])
        assert not polys.geometry.buffer(-RES).contains(p).any()


def test_futian_clip_lies_inside_the_city(futian, city):
    whole = city.vector("city").to_crs(city.crs).union_all()
    assert whole.buffer(1.0).contains(futian.outline)
    assert futian.label == "Futian, Luohu"
    assert futian.region.contains(futian.outline)
    x, y = futian.cell_centres()
    i, j = np.nonzero(futian.land | futian.sea)
    inside = shapely.contains_xy(futian.region, x[j], y[i])
    assert inside.all()  # every active cell has its centre in the buffered clip polygon


def test_arrays_are_read_only(futian):
    with pytest.raises(ValueError, match="read-only"):
        futian.land[0, 0] = True


# -- grid helpers -------------------------------------------------------------------------------------
def test_cell_of_inverts_cell_centres(futian):
    x, y = futian.cell_centres()
    row, col = futian.cell_of(x[[0, 7, -1]], y[[3, 0, -1]])
    assert row.tolist() == [3, 0, futian.shape[0] - 1] and col.tolist() == [0, 7, futian.shape[1] - 1]
    with pytest.raises(GridError, match="outside the grid"):
        futian.cell_of(x[0] - RES, y[0])


def test_as_dataset_is_a_valid_twin_state(futian):
    ds = futian.as_dataset()
    state = TwinState(ds)
    assert state.shape == futian.shape and state.crs == "EPSG:4547"
    assert ds["elevation"].attrs["units"] == "m" and ds["slope"].attrs["units"] == "degree"
    assert ds["land"].values.sum() == futian.land.sum()


def test_grid_dataarray_checks_the_shape(futian):
    da = futian.grid_dataarray(np.zeros(futian.shape), "depth", "m", "water depth")
    assert da.attrs["crs"] == "EPSG:4547" and da.attrs["transform"] == tuple(futian.transform)[:6]
    with pytest.raises(GridError, match="depth"):
        futian.grid_dataarray(np.zeros((2, 2)), "depth", "m")


# -- bad arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"resolution": -30}, "resolution=-30", id="negative resolution"),
    pytest.param({"resolution": "fine"}, "resolution='fine'", id="resolution not a number"),
    pytest.param({"buffer_m": -1.0}, "buffer_m=-1.0", id="negative buffer"),
    pytest.param({"shape": "circle"}, "shape='circle'", id="unknown shape"),
    pytest.param({"districts": "Futian,Atlantis"}, "Atlantis", id="unknown district"),
    pytest.param({"districts": " , "}, "districts=", id="no district named"),
])
def test_from_city_rejects_bad_arguments(city, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        Domain.from_city(city, **{"resolution": RES, **kwargs})


# -- a DEM file ---------------------------------------------------------------------------------------
def _geographic_dem(tmp_path):
    """A 40 x 50 cell, 3-arc-second DEM in EPSG:4326 near Futian: a 12 m plane, one nodata block."""
    d = 3 / 3600
    z = np.full((40, 50), 12.0, np.float32)
    z[:10, :10] = np.nan
    da = make_grid(z, Affine(d, 0, 114.0, 0, -d, 22.6), "EPSG:4326", units="m")
    return write_geotiff(da, tmp_path / "plane_4326.tif")


def test_from_dem_warps_a_geographic_dem_to_utm(tmp_path):
    import pyproj

    dom = Domain.from_dem(_geographic_dem(tmp_path))
    assert dom.crs == "EPSG:32650" and dom.kind == "dem"
    assert dom.resolution_m == pytest.approx(3 / 3600 * 111320.0, abs=1e-3)  # 92.767 m
    lon, lat = pyproj.Transformer.from_crs(dom.crs, "EPSG:4326", always_xy=True).transform(
        dom.x.mean(), dom.y.mean())
    assert lon == pytest.approx(114.0 + 25 * 3 / 3600, abs=0.002)
    assert lat == pytest.approx(22.6 - 20 * 3 / 3600, abs=0.002)
    assert np.nanmin(dom.elevation) == pytest.approx(12.0) and np.nanmax(dom.elevation) == pytest.approx(12.0)
    assert dom.blocked.any() and (dom.land == np.isfinite(dom.elevation)).all()
    assert not dom.sea.any() and (dom.district == -1).all() and dom.outline is None


def test_from_dem_resolution_and_errors(tmp_path):
    path = _geographic_dem(tmp_path)
    assert Domain.from_dem(path, resolution=200).resolution_m == 200.0
    with pytest.raises(ValidationError, match="resolution=0"):
        Domain.from_dem(path, resolution=0)
    empty = write_geotiff(make_grid(np.full((4, 4), np.nan, np.float32), Affine(30, 0, 0, 0, -30, 120),
                                    "EPSG:32650", units="m"), tmp_path / "empty.tif")
    with pytest.raises(GridError, match="no valid cell"):
        Domain.from_dem(empty)


# -- one domain, several set-ups ------------------------------------------------------------------------
def test_flood_setup_on_a_domain_equals_city_flood_setup(futian, city):
    from physics.flood_city import city_flood_setup, flood_setup

    a = flood_setup(futian, storm=40.0, hours=0.5)
    b = city_flood_setup(city, resolution=RES, districts="Futian,Luohu", storm=40.0, hours=0.5)
    assert np.array_equal(a["dem"].values, b["dem"].values, equal_nan=True)
    assert np.array_equal(a["manning"], b["manning"]) and np.array_equal(a["h0"], b["h0"])
    assert a["context"]["domain"] is futian and isinstance(b["context"]["domain"], Domain)
    assert a["context"]["land"] is futian.land
