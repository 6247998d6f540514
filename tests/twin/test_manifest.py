"""City manifests are validated before any file is opened."""

import pytest

from twin.errors import ConfigError
from twin.manifest import available_cities, load_manifest


def test_shenzhen_manifest_loads():
    m = load_manifest("shenzhen")
    assert "shenzhen" in available_cities()
    assert m.city.working_crs == "EPSG:4547"
    assert m.city.resolution_m == 30.0
    assert len(m.layers["districts"].files) == 9
    # The datum finding (tests/gis/test_datum.py) is recorded in the manifest.
    assert m.layers["city"].datum == "gcj02" and m.layers["districts"].datum == "gcj02"
    assert m.layers["metro_stations"].datum == "wgs84"


def test_unknown_city_lists_known():
    with pytest.raises(ConfigError, match="shenzhen"):
        load_manifest("atlantis")


def test_bad_manifest_names_field_and_value(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(
        '[city]\nname="x"\ntitle="x"\nworking_crs="EPSG:4547"\nresolution_m=-5\nextent_layer="a"\n'
        '[layers.a]\nkind="vector"\npath="a.geojson"\n'
    )
    with pytest.raises(ConfigError, match=r"resolution_m.*-5"):
        load_manifest(p)
    p.write_text(
        '[city]\nname="x"\ntitle="x"\nworking_crs="EPSG:4547"\nresolution_m=5\nextent_layer="zz"\n'
        '[layers.a]\nkind="vector"\npath="a.geojson"\n'
    )
    with pytest.raises(ConfigError, match="extent_layer='zz'"):
        load_manifest(p)
