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


def test_needed_by_names_known_commands_and_makes_a_layer_not_optional(tmp_path):
    m = load_manifest("shenzhen")
    assert m.layers["events"].needed_by == ["flood run", "slope run"] and not m.layers["events"].optional
    assert m.layers["metro_stations"].optional and m.layers["metro_stations"].needed_by == []
    alt = m.layers["elevation"].alternatives[0]
    assert alt.path == "shenzhen/terrain/copernicus_glo30_shenzhen.tif"
    assert alt.vertical == "EGM2008 geoid"
    base = (
        '[city]\nname="x"\ntitle="x"\nworking_crs="EPSG:4547"\nresolution_m=5\nextent_layer="a"\n'
        '[layers.a]\nkind="vector"\npath="a.geojson"\n'
    )
    p = tmp_path / "m.toml"
    p.write_text(base + 'needed_by = ["flood fly"]\n')
    with pytest.raises(ConfigError, match="unknown command.*flood fly"):
        load_manifest(p)
    p.write_text(base + "optional = true\n")  # optional is derived from needed_by, not declared
    with pytest.raises(ConfigError, match="optional"):
        load_manifest(p)
    p.write_text(base + 'needed_by = ["flood run"]\nvalidation_only = true\n')
    with pytest.raises(ConfigError, match="validation_only"):
        load_manifest(p)
