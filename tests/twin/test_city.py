"""The Shenzhen static state built from the real data (issue: foundation, "Done when")."""

import numpy as np
import pytest

from twin.city import City
from twin.errors import DataMissingError

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def city(twin_data):
    return City("shenzhen", data_root=twin_data)


def test_summary_matches_facts(city):
    s = city.summary()
    # Data README facts: 9 districts adding up to the city's 2138 km²; raw DEM -107..924 m.
    assert s["district_count"] == 9
    assert {d["name"] for d in s["districts"]} == {
        "Luohu", "Futian", "Nanshan", "Bao'an", "Longgang", "Yantian", "Longhua", "Pingshan", "Guangming"}
    assert abs(s["district_area_total_km2"] - 2138) <= 10
    assert (s["elevation_raw_min_m"], s["elevation_raw_max_m"]) == (-107.0, 924.0)
    h, w = s["grid_shape"]
    # The city spans about 91 km east-west and 52 km north-south (+ a 300 m margin) at 30 m.
    assert 2950 < w < 3150 and 1650 < h < 1800
    assert s["working_crs"] == "EPSG:4547"


def test_static_dataset(city):
    ds = city.static()
    assert ds.attrs["crs"] == "EPSG:4547" and ds.attrs["resolution_m"] == 30.0
    for v in ("elevation", "land", "district", "in_city", "slope", "aspect"):
        assert "units" in ds[v].attrs, v
    assert ds["elevation"].dtype == np.float32 and ds["district"].dtype == np.int16
    # Rasterized district area agrees with the polygon area within 0.2 % (cell-centre rule).
    cells = int((ds["district"].values >= 0).sum())
    area = city.summary()["district_area_total_km2"]
    assert cells * 900 / 1e6 == pytest.approx(area, rel=2e-3)
    # Wutong Shan (114.205 E, 22.58 N, surveyed 943.7 m) is the high point; the bilinear 30 m grid keeps > 880 m.
    assert 880 < float(np.nanmax(ds["elevation"])) <= 924
    # Land mask and DEM agree: nearly all water cells are at or below 10 m.
    water = (ds["land"].values == 0) & np.isfinite(ds["elevation"].values)
    assert np.mean(ds["elevation"].values[water] <= 10) > 0.95
    s = ds["slope"].values
    assert np.nanmax(s) < 90 and np.nanmin(s) >= 0


def test_metro_stations_fall_in_districts(city):
    """Stations are WGS 84; after the GCJ-02 conversion they should fall inside the city boundary."""
    stations = city.vector("metro_stations")
    inside = stations.within(city.vector("city").union_all())
    assert inside.mean() > 0.97


def test_missing_file_names_file_setting_and_fetch(tmp_path):
    with pytest.raises(DataMissingError) as err:
        City("shenzhen", data_root=tmp_path).raw_elevation()
    msg = str(err.value)
    assert "srtm1_shenzhen.tif" in msg and "twin data fetch shenzhen" in msg and "TWIN_DATA" in msg
