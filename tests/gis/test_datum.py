"""The datum of the Amap boundary files, established from the data (issue: foundation, item 5).

Evidence: Shenzhen's city and district boundaries follow ridges. The shift
that maximises the mean topographic position index (TPI) under the raw
boundary vertices equals the inverse GCJ-02 offset (about -523 m east,
+297 m north at the city's centre; the offset formula is the public
GCJ-02 one in gis.coords); after converting GCJ-02 -> WGS 84 the best shift
is near zero. Reproduce with `twin city datum shenzhen`.
"""

import geopandas as gpd
import numpy as np
import pytest

from gis.datum import assess_gcj02, boundary_points, fit_ridge_offset
from gis.raster import open_raster, reproject

CODES = ["440300"] + [f"4403{c:02d}" for c in (3, 4, 5, 6, 7, 8, 9, 10, 11)]


@pytest.fixture(scope="module")
def dem(shenzhen_dir):
    return reproject(open_raster(shenzhen_dir / "terrain/srtm1_shenzhen.tif"), "EPSG:4547", 30.0)


@pytest.fixture(scope="module")
def boundary_geoms(shenzhen_dir):
    return [g for c in CODES for g in gpd.read_file(shenzhen_dir / f"boundaries/{c}.geojson").geometry]


@pytest.mark.data
@pytest.mark.slow
def test_boundaries_are_gcj02(dem, boundary_geoms):
    finding = assess_gcj02(boundary_geoms, dem, step_m=40.0, search_m=1200.0)
    bx, by = finding.fit_raw.best_shift_m
    ix, iy = finding.gcj02_inverse_shift_m
    assert finding.verdict == "gcj02", finding.as_dict()
    # tolerance 100 m (see assess_gcj02); the fit lands within 2 search steps of the GCJ-02 inverse.
    assert np.hypot(bx - ix, by - iy) < 100
    assert np.hypot(*finding.fit_converted.best_shift_m) < 100
    # The aligned layer sits on ridges: mean TPI several times higher than the raw layer's.
    assert finding.fit_converted.score_unshifted > 4 * finding.fit_raw.score_unshifted


@pytest.mark.data
def test_wgs84_layer_is_recognised(dem, boundary_geoms):
    """Control: a layer already in WGS 84 (the converted boundary) must fit with ~zero shift."""
    from gis.coords import gcj02_to_wgs84

    pts = boundary_points(boundary_geoms[:1])
    lon, lat = gcj02_to_wgs84(pts[:, 0], pts[:, 1])
    fit = fit_ridge_offset(np.column_stack([lon, lat]), dem, step_m=60.0, search_m=900.0)
    assert np.hypot(*fit.best_shift_m) <= 100
