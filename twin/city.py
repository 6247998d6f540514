"""A city's static state, built from its manifest and the real data files.

``City("shenzhen").static()`` gives one ``xarray.Dataset`` on the working
metric grid (elevation, land/water, district id, slope, aspect, city mask)
with units and CRS in attributes; ``City.vector(name)`` gives the vector
layers in WGS 84 with their datum offsets removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from gis.crs import WGS84
from gis.raster import make_grid, open_raster, reproject, target_grid
from gis.vector import rasterize_ids, read_vector
from twin.config import ENV_VAR, data_dir
from twin.errors import ConfigError, DataMissingError
from twin.manifest import Manifest, load_manifest


class City:
    """The static part of a city twin: manifest + data directory."""

    def __init__(self, manifest: Manifest | str = "shenzhen", data_root: Path | None = None):
        self.manifest = load_manifest(manifest) if isinstance(manifest, str) else manifest
        self.data_root = Path(data_root) if data_root is not None else data_dir()
        self._vectors: dict[str, gpd.GeoDataFrame] = {}
        self._static: dict[float, xr.Dataset] = {}

    @property
    def name(self) -> str:
        return self.manifest.city.name

    @property
    def crs(self) -> str:
        return self.manifest.city.working_crs

    # -- files -----------------------------------------------------------
    def _layer(self, name: str):
        try:
            return self.manifest.layers[name]
        except KeyError:
            raise ConfigError(
                f"city {self.name!r} has no layer {name!r}; layers: {sorted(self.manifest.layers)}"
            ) from None

    def source(self, name: str) -> tuple[list[Path], dict]:
        """The files a layer is read from and what to say about them.

        The layer's own files when all exist, else the first of its
        ``alternatives`` that exists (e.g. the Copernicus DEM built by ``twin data
        fetch`` for the SRTM one); ``meta`` has ``vertical`` and ``long_name``
        (the alternative's when it gives them) and ``path`` of an alternative.
        Raises :class:`DataMissingError` saying which commands need the layer and
        how to get it.
        """
        layer = self._layer(name)
        own = [self.data_root / rel for rel in layer.files]
        if all(p.exists() for p in own):
            return own, {"vertical": layer.vertical, "long_name": layer.long_name}
        for alt in layer.alternatives:
            path = self.data_root / alt.path
            if path.exists():
                return [path], {"vertical": alt.vertical or layer.vertical,
                                "long_name": alt.long_name or layer.long_name, "path": alt.path}
        missing = next(p for p in own if not p.exists())
        raise DataMissingError(self.missing_message(name, missing))

    def files(self, name: str) -> list[Path]:
        """Absolute paths of a layer's files (see :meth:`source`), or DataMissingError."""
        return self.source(name)[0]

    def missing_message(self, name: str, path: Path) -> str:
        """Why layer ``name`` is missing at ``path``, who needs it, and what to run."""
        from twin.config import data_dir_source

        layer = self._layer(name)
        rel = path.relative_to(self.data_root).as_posix() if path.is_relative_to(self.data_root) else str(path)
        needed = f" (needed by: {', '.join('twin ' + c for c in layer.needed_by)})" if layer.needed_by else ""
        lines = [f"{self.name} layer {name!r} not found: {path}{needed}."]
        if self.data_root == data_dir():
            lines.append(f"The data directory is {self.data_root} (chosen by {data_dir_source()}; "
                         f"point {ENV_VAR} at a data directory that has it).")
        else:
            lines.append(f"Or point {ENV_VAR} at a data directory that has it.")
        reason = _no_upstream(self.name, rel)
        if reason:
            lines.append(
                f"It has no public upstream to build it from ({reason}): run "
                f"`twin data fetch {self.name} --mirror URL` with a mirror of the data set, "
                f"or copy the file to {path}."
            )
        else:
            lines.append(f"Run `twin data fetch {self.name}` (it builds this layer from its public "
                         f"upstream, or takes it from --mirror URL), or copy the file to {path}.")
        return " ".join(lines)

    def layer_status(self) -> list[dict]:
        """One row per layer: kind, datum, files found / expected, which file is used, who needs it."""
        rows = []
        for name, layer in self.manifest.layers.items():
            found = sum((self.data_root / rel).exists() for rel in layer.files)
            try:
                used = self.source(name)[1].get("path")
                present = True
            except DataMissingError:
                used, present = None, False
            rows.append({
                "layer": name, "kind": layer.kind, "datum": layer.datum,
                "files": len(layer.files), "found": found, "present": present,
                "alternative": used, "needed_by": list(layer.needed_by),
                "optional": layer.optional,
            })
        return rows

    # -- vectors ----------------------------------------------------------
    def vector(self, name: str) -> gpd.GeoDataFrame:
        """A vector layer in WGS 84 (offsets removed per the manifest's datum), cached."""
        if name not in self._vectors:
            layer = self._layer(name)
            if layer.kind == "points_csv":
                (path,) = self.files(name)
                df = pd.read_csv(path)
                gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=WGS84)
            elif layer.kind == "vector":
                frames = []
                for path in self.files(name):
                    g = read_vector(path, datum=layer.datum)
                    g["source_file"] = path.stem
                    frames.append(g)
                gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=WGS84)
            else:
                raise ConfigError(f"layer {name!r} is of kind {layer.kind!r}, not a vector layer")
            self._vectors[name] = gdf
        return self._vectors[name]

    def districts(self) -> gpd.GeoDataFrame:
        """Districts with adcode, English and Chinese names, and area (km², in the working CRS)."""
        gdf = self.vector("districts").copy()
        names = self._layer("districts").names or {}
        gdf["adcode"] = gdf["source_file"].astype(str)
        gdf["name"] = [names.get(c, [c, c])[0] for c in gdf["adcode"]]
        gdf["name_zh"] = [names.get(c, [c, c])[1] for c in gdf["adcode"]]
        gdf["area_km2"] = gdf.to_crs(self.crs).area / 1e6
        gdf = gdf.dissolve(by="adcode", aggfunc={"name": "first", "name_zh": "first", "area_km2": "sum"})
        gdf = gdf.reset_index().sort_values("adcode").reset_index(drop=True)
        gdf["district_id"] = np.arange(len(gdf), dtype=np.int16)
        return gdf[["district_id", "adcode", "name", "name_zh", "area_km2", "geometry"]]

    def events(self) -> dict:
        """The recorded hazard facts (hazard_events.json)."""
        (path,) = self.files("events")
        return json.loads(path.read_text(encoding="utf-8"))

    # -- grid and static layers ------------------------------------------
    def grid(self, resolution: float | None = None):
        """(transform, height, width) of the working grid at ``resolution`` metres."""
        res = float(resolution or self.manifest.city.resolution_m)
        ext = self.vector(self.manifest.city.extent_layer).to_crs(self.crs)
        minx, miny, maxx, maxy = ext.total_bounds
        b = self.manifest.city.buffer_m
        return target_grid((minx - b, miny - b, maxx + b, maxy + b), res)

    def raw_elevation(self) -> xr.DataArray:
        """The DEM as stored (lon/lat), nodata masked."""
        (path,), meta = self.source("elevation")
        layer = self._layer("elevation")
        da = open_raster(path, units=layer.units, name="elevation")
        da.attrs["vertical_datum"] = meta["vertical"] or ""
        da.attrs["long_name"] = meta["long_name"] or "elevation"
        return da

    def static(self, resolution: float | None = None, *, terrain: bool = True) -> xr.Dataset:
        """The static state on the working grid (cached per resolution).

        Variables: ``elevation`` (m, float32, NaN outside the DEM), ``land``
        (uint8 1/0 from the GSHHG land mask), ``district`` (int16 id into
        ``attrs['district_adcodes']``, -1 outside every district), ``in_city``
        (uint8) and, with ``terrain``, ``slope`` and ``aspect`` (degrees).
        """
        res = float(resolution or self.manifest.city.resolution_m)
        key = (res, terrain)
        if key in self._static:
            return self._static[key]
        from gis import terrain as terr

        transform, h, w = self.grid(res)
        like = make_grid(np.zeros((h, w), dtype=np.uint8), transform, self.crs)
        elev_layer = self._layer("elevation")
        raw = self.raw_elevation()
        elev = reproject(raw, self.crs, like=like, resampling=elev_layer.resampling)
        elev = elev.astype(np.float32)
        elev.attrs.update(units="m", long_name=raw.attrs["long_name"],
                          vertical_datum=raw.attrs["vertical_datum"])
        (land_path,) = self.files("land")
        land_src = open_raster(land_path, masked=False).astype(np.float32)
        land_frac = reproject(land_src, self.crs, like=like, resampling=self._layer("land").resampling)
        land = (np.nan_to_num(land_frac.values, nan=0.0) >= 0.5).astype(np.uint8)
        dist = self.districts()
        district = rasterize_ids(dist, like, column="district_id", fill=-1, dtype=np.int16)
        in_city = rasterize_ids(
            self.vector("city").assign(one=1), like, column="one", fill=0, dtype=np.uint8
        ).values
        coords = {"y": elev["y"], "x": elev["x"]}
        ds = xr.Dataset(coords=coords)
        ds["elevation"] = elev.variable
        ds["land"] = (("y", "x"), land, {"units": "1", "long_name": "land (1) or water (0), GSHHG full"})
        ds["district"] = (("y", "x"), district.values, {
            "units": "1", "long_name": "district id (see district_adcodes), -1 outside", "_FillValue": -1})
        ds["in_city"] = (("y", "x"), in_city, {"units": "1", "long_name": "inside the city boundary"})
        if terrain:
            sl = terr.slope(elev)
            ds["slope"] = sl.astype(np.float32).variable
            ds["slope"].attrs.update(units="degree", long_name="terrain slope (Horn 1981)")
            asp = terr.aspect(elev).astype(np.float32)
            asp = asp.where(asp < 360.0, 0.0)  # 359.99999 rounds to 360 in float32
            ds["aspect"] = asp.variable
            ds["aspect"].attrs.update(units="degree", long_name="aspect, clockwise from north, -1 flat")
        ds.attrs.update(
            city=self.name, crs=self.crs, transform=tuple(transform)[:6], resolution_m=res,
            district_adcodes=list(dist["adcode"]), district_names=list(dist["name"]),
            title=f"{self.manifest.city.title} static state",
        )
        self._static[key] = ds
        return ds

    def _count(self, name: str) -> int | None:
        """Features of an optional layer, None when it is absent."""
        try:
            return int(len(self.vector(name)))
        except DataMissingError:
            if not self._layer(name).optional:
                raise
            return None

    def summary(self, resolution: float | None = None) -> dict:
        """What ``twin city show`` prints: CRS, grid, elevation range, districts, totals."""
        res = float(resolution or self.manifest.city.resolution_m)
        _, h, w = self.grid(res)
        raw = self.raw_elevation()
        dist = self.districts()
        area = float(dist["area_km2"].sum())
        return {
            "city": self.name,
            "title": self.manifest.city.title,
            "data_dir": str(self.data_root),
            "working_crs": self.crs,
            "resolution_m": res,
            "grid_shape": [int(h), int(w)],
            "grid_cells": int(h * w),
            "elevation_raw_min_m": float(np.nanmin(raw.values)),
            "elevation_raw_max_m": float(np.nanmax(raw.values)),
            "elevation_vertical_datum": raw.attrs.get("vertical_datum", ""),
            "districts": [
                {"adcode": r.adcode, "name": r.name, "name_zh": r.name_zh, "area_km2": round(float(r.area_km2), 2)}
                for r in dist.itertuples()
            ],
            "district_count": int(len(dist)),
            "district_area_total_km2": round(area, 2),
            "official_area_km2": self.manifest.city.official_area_km2,
            "boundary_datum": self._layer("districts").datum,
            "metro_stations": self._count("metro_stations"),
        }


def _no_upstream(city: str, relpath: str) -> str | None:
    """The catalogue's reason why ``relpath`` has no public upstream (None when it has one)."""
    from twin.errors import TwinError
    from twin.fetch.catalogue import load_catalogue

    try:
        entry = load_catalogue(city).entry(relpath)
    except TwinError:
        return None
    return entry.no_upstream
