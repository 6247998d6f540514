"""Kind ``basemap``: our own basemap — hillshade with water tinted, districts, coast; no tile service."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import xarray as xr

from viz.layers import register
from viz.scene import LayerSet, Legend

#: Legend of the basemap (categories; colours as the layers draw them).
BASEMAP_LEGEND = [("Relief (hillshade)", (150, 150, 150, 255)), ("District boundary", (40, 60, 130, 230)),
                  ("Shore and lakes", (20, 90, 170, 220))]


def grid_basemap_inputs(ds: xr.Dataset) -> tuple[xr.DataArray | None, xr.DataArray | None]:
    """Hillshade and water mask of a model grid that carries ``elevation`` (and ``land`` or ``sea``).

    Returns ``(None, None)`` when the dataset has no elevation.
    """
    from gis.raster import make_grid, transform_of
    from gis.terrain import hillshade

    if "elevation" not in ds:
        return None, None
    elev = ds["elevation"].copy(deep=False)
    elev.attrs = {**elev.attrs, "crs": elev.attrs.get("crs") or ds.attrs.get("crs"),
                  "transform": tuple(transform_of(ds))[:6]}
    shade = hillshade(elev)
    water = None
    if "sea" in ds:  # sea cells of the domain (land == 0 also holds outside a polygon domain)
        water = np.asarray(ds["sea"].values) > 0
    elif "land" in ds:
        water = (np.asarray(ds["land"].values) == 0) & np.isfinite(np.asarray(elev.values))
    if water is not None:
        water = make_grid(water.astype("uint8"), transform_of(ds), ds.attrs["crs"], name="water")
    return shade, water


@register("basemap")
def basemap(hillshade: xr.DataArray | None = None, *, water: xr.DataArray | None = None,
            districts: gpd.GeoDataFrame | None = None, coast: gpd.GeoDataFrame | None = None,
            max_px: int = 2048, label: str = "Basemap") -> LayerSet:
    """Hillshade bitmap (clear over water), district outlines with tooltips, coast lines.

    The relief is transparent over water (see :func:`viz.citymap.hillshade_bitmap`),
    so it ends at the shore, not at the DEM's rectangle.  The legend lists
    what is drawn (relief, district boundaries, shore).

    Parameters
    ----------
    hillshade : DataArray or None
        Raster convention (crs/transform attrs), values 0–1 or 0–255.
    water : DataArray or None
        Truthy where water (any grid/CRS).
    districts, coast : GeoDataFrame or None
        Any CRS; see :func:`viz.citymap.districts_layer`.
    """
    from viz.citymap import coast_layer, districts_layer, hillshade_layer

    layers, bounds = [], []
    if hillshade is not None:
        hs = hillshade_layer(hillshade, water=water, max_px=max_px)
        layers.append(hs)
        bounds.append(tuple(hs.bounds))
    if districts is not None and len(districts):
        layers += districts_layer(districts)
        bounds.append(tuple(float(v) for v in districts.to_crs(4326).total_bounds))
    if coast is not None and len(coast):
        layers += coast_layer(coast)
    b = np.array(bounds) if bounds else None
    box = None if b is None else (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    drawn = [hillshade is not None, districts is not None and len(districts) > 0,
             coast is not None and len(coast) > 0]
    stops = [s for s, d in zip(BASEMAP_LEGEND, drawn, strict=True) if d]
    legends = [Legend(layers[0]["id"] if isinstance(layers[0], dict) else layers[0].id, "Basemap", "", stops)] \
        if layers and stops else []
    return LayerSet(layers=layers, legends=legends, label=label, bounds=box)
