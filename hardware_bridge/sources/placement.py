"""Real positions for simulated devices, read from the city's data (seeded, reproducible).

A simulated device (:mod:`hardware_bridge.sources.simulated`) reports readings but has no
place; the console can list it but not draw it. :func:`place_devices` gives each device a
site of the kind of place such a device is installed at, chosen from the data set
(``TWIN_DATA``, read through :class:`twin.city.City`, so every datum is already WGS 84):

=========================================  ====================================================
kinds                                      sites
=========================================  ====================================================
``rain_gauge``, ``water_level``            the city's official waterlogging-prone road spots
                                           (2019 list, ``waterlogging``; CGCS2000 = WGS 84 to
                                           well under a metre) that lie inside Futian's
                                           boundary: Futian's low streets. Spots that fall
                                           outside their district (mis-geocoded, see the data
                                           README) are not used.
``gas_o2``, ``gas_h2s``, ``gas_co``,       metro stations (``metro_stations``, WGS 84): the
``gas_lel``, ``das_event``                 stations' plant rooms and the tunnels' fibre
``smoke``, ``heat``                        OSM building footprints of central Nanshan
                                           (``buildings``): a point inside the footprint, with
                                           ``properties.building`` (the OSM id) and ``floor``
                                           (1 .. its ``building:levels``), which fire fusion
                                           needs to group detectors by building
``petrol_video_event``                     fuel stations (``amenity=fuel``) of the Nanshan OSM
                                           extract (``osm``)
``gnss_displacement``, ``inclinometer``    steep hillsides: cells of the SRTM DEM on a
                                           200 m grid (``City.static``) with a mean slope of
                                           25° or more, on land inside the city. The data set
                                           has no slope-monitoring stations; a steep hillside
                                           is where such a station would stand (property
                                           ``slope_deg``)
=========================================  ====================================================

The waterlogging list is validation data: it is used here only to put drill devices where
water is known to gather, never to set a model parameter.

Every site is checked to lie inside the city's districts (the land the twin covers). Sites are
drawn without replacement per family (a random permutation of the sorted candidates, from
``numpy.random.default_rng([seed, family])``), cycling when there are more devices than sites:
the same devices and seed give the same positions. When a family's data is missing, its
devices are left unplaced with the reason (the missing file), and the rest are still placed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware_bridge.schema import KINDS, Kind
from twin.errors import DataMissingError, TwinError
from twin.sensors import Sensor, SensorRegistry

log = logging.getLogger(__name__)

#: Site family of each kind (None: no site in the data set).
FAMILY: dict[Kind, str | None] = {
    Kind.RAIN_GAUGE: "waterlogging", Kind.WATER_LEVEL: "waterlogging",
    Kind.GAS_O2: "metro_station", Kind.GAS_H2S: "metro_station", Kind.GAS_CO: "metro_station",
    Kind.GAS_LEL: "metro_station", Kind.DAS_EVENT: "metro_station",
    Kind.SMOKE: "building", Kind.HEAT: "building",
    Kind.PETROL_VIDEO_EVENT: "fuel_station",
    Kind.GNSS_DISPLACEMENT: "steep_slope", Kind.INCLINOMETER: "steep_slope",
}
NO_SITE = "the data set has no sites for this kind"
#: Grid (m) and least mean slope (degrees) of the steep-hillside family.
SLOPE_GRID_M = 200.0
SLOPE_MIN_DEG = 25.0
#: District of the waterlogging family (adcode of Futian).
FUTIAN = "440304"


@dataclass(frozen=True)
class Site:
    """A candidate place: its name, WGS 84 position, the data it comes from, and extra properties."""

    name: str
    lon: float
    lat: float
    source: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Placement:
    """What :func:`place_devices` did: the placed sensors and, per unplaced station, why."""

    sensors: list[Sensor]
    unplaced: dict[str, str]

    def registry(self) -> SensorRegistry:
        return SensorRegistry(self.sensors)

    def summary(self) -> dict[str, Any]:
        """``{"placed": n, "unplaced": n, "reasons": {reason: count}}`` (for CLI output)."""
        reasons: dict[str, int] = {}
        for why in self.unplaced.values():
            reasons[why] = reasons.get(why, 0) + 1
        return {"placed": len(self.sensors), "unplaced": len(self.unplaced), "reasons": reasons}


def _land(city) -> Any:
    """The union of the city's districts (WGS 84), prepared for point tests."""
    from shapely import prepare, union_all

    geom = union_all(list(city.districts().geometry))
    prepare(geom)
    return geom


def _inside(sites: list[Site], area) -> list[Site]:
    from shapely import Point

    return [s for s in sites if area.contains(Point(s.lon, s.lat))]


def _waterlogging(city) -> list[Site]:
    from shapely import prepare

    pts = city.vector("waterlogging")
    d = city.districts()
    futian = d.loc[d["adcode"] == FUTIAN, "geometry"]
    if futian.empty:
        raise DataMissingError(f"district {FUTIAN} (Futian) is missing from the boundaries")
    area = futian.iloc[0]
    prepare(area)
    sites = [Site(f"{r.street} {r.location}", float(r.geometry.x), float(r.geometry.y),
                  "validation/waterlogging_points_2019.csv", {"district": "Futian", "street": str(r.street)})
             for r in pts.itertuples()]
    return _inside(sites, area)


def _metro(city) -> list[Site]:
    g = city.vector("metro_stations")
    out = []
    for r in g.itertuples():
        if r.geometry is None or r.geometry.is_empty:
            continue
        name = f"{getattr(r, 'nameCn', '') or ''} {getattr(r, 'name', '') or ''} station".strip()
        out.append(Site(name, float(r.geometry.x), float(r.geometry.y), "metro/sz_metro_stations.geojson",
                        {"metro_line": str(getattr(r, "line", ""))}))
    # a transfer station appears once per line: keep one site per name
    return list({s.name: s for s in out}.values())


def _buildings(city) -> list[Site]:
    g = city.vector("buildings")
    out = []
    for row in g.to_dict("records"):
        geom = row.get("geometry")
        if geom is None or geom.is_empty:
            continue
        p = geom.representative_point()  # inside the footprint, unlike a centroid
        osmid = str(row.get("osmid"))
        try:
            levels = max(1, int(float(row.get("building:levels"))))
        except (TypeError, ValueError):
            levels = 1
        name = row.get("name") if isinstance(row.get("name"), str) and row.get("name") else f"OSM building {osmid}"
        out.append(Site(name, float(p.x), float(p.y), "osm/nanshan_buildings.geojson",
                        {"building": f"osm-{osmid}", "levels": levels}))
    return out


def _fuel(city) -> list[Site]:
    from gis.osm import read_osm_xml

    (path,) = city.files("osm")
    coords, ways = read_osm_xml(path, keep_way=lambda t: t.get("amenity") == "fuel")
    out = []
    for w in ways:
        pts = [coords[n] for n in w.nodes if n in coords]
        if not pts:
            continue
        lon, lat = np.mean(pts, axis=0)
        out.append(Site(w.tags.get("name") or f"fuel station (OSM way {w.id})", float(lon), float(lat),
                        "osm/nanshan_central_2021.osm", {"osm_way": w.id}))
    return out


def _steep(city) -> list[Site]:
    from pyproj import Transformer

    ds = city.static(SLOPE_GRID_M)
    slope = ds["slope"].values
    ok = (slope >= SLOPE_MIN_DEG) & (ds["land"].values == 1) & (ds["in_city"].values == 1)
    iy, ix = np.nonzero(ok)
    tr = Transformer.from_crs(ds.attrs["crs"], "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(ds["x"].values[ix], ds["y"].values[iy])
    return [Site(f"hillside {la:.4f}N {lo:.4f}E", float(lo), float(la), "terrain/srtm1_shenzhen.tif",
                 {"slope_deg": round(float(slope[y, x]), 1)})
            for lo, la, y, x in zip(lon, lat, iy, ix, strict=True)]


_READERS = {"waterlogging": _waterlogging, "metro_station": _metro, "building": _buildings,
            "fuel_station": _fuel, "steep_slope": _steep}


def family_sites(city, family: str) -> list[Site]:
    """The candidate sites of a family inside the city's districts, sorted (lon, lat, name)."""
    sites = _inside(_READERS[family](city), _land(city))
    return sorted(sites, key=lambda s: (round(s.lon, 7), round(s.lat, 7), s.name))


def _family_seed(seed: int, family: str) -> list[int]:
    # a stable number per family (Python's hash() of a str changes between processes)
    return [int(seed), int.from_bytes(hashlib.sha256(family.encode()).digest()[:4], "little")]


def place_devices(devices: Sequence[Any], *, seed: int = 0, city: Any = None) -> Placement:
    """Sensors (:class:`twin.sensors.Sensor`, id = the device's station) at real sites.

    Parameters
    ----------
    devices : sequence of :class:`~hardware_bridge.sources.simulated.DeviceSpec`
        (anything with ``kind`` and ``station``).
    seed : int
        The same seed and devices give the same sites.
    city : twin.city.City or str, optional
        Where the data comes from (default ``"shenzhen"`` in the data directory).

    Returns
    -------
    Placement
        Placed sensors (unit: the kind's stored SI unit; ``properties.simulated`` true, the
        site's name and source file) and the unplaced stations with the reason.
    """
    from twin.city import City

    unplaced: dict[str, str] = {}
    by_family: dict[str, list[Any]] = {}
    for d in devices:
        fam = FAMILY.get(Kind(d.kind))
        if fam is None:
            unplaced[d.station] = f"{Kind(d.kind).value}: {NO_SITE}"
        else:
            by_family.setdefault(fam, []).append(d)
    if not by_family:
        return Placement([], unplaced)
    try:
        the_city = City(city or "shenzhen") if city is None or isinstance(city, str) else city
    except TwinError as exc:
        for devs in by_family.values():
            for d in devs:
                unplaced[d.station] = f"no city data: {exc}"
        return Placement([], unplaced)
    placed: dict[str, Sensor] = {}
    for fam, devs in by_family.items():
        try:
            sites = family_sites(the_city, fam)
        except (TwinError, OSError) as exc:
            why = str(exc).split(". ")[0]  # the file; the full advice goes to the log
            log.warning("simulated %s devices left unplaced: %s", fam, exc)
            for d in devs:
                unplaced[d.station] = f"{fam} data missing: {why}"
            continue
        if not sites:
            for d in devs:
                unplaced[d.station] = f"no {fam} site inside the city"
            continue
        rng = np.random.default_rng(_family_seed(seed, fam))
        order = rng.permutation(len(sites))
        for j, d in enumerate(devs):
            site = sites[int(order[j % len(sites)])]
            props: dict[str, Any] = {"simulated": True, "site": site.name, "site_source": site.source}
            props.update({k: v for k, v in site.properties.items() if k != "levels"})
            if "levels" in site.properties:
                props["floor"] = int(rng.integers(1, site.properties["levels"] + 1))
            kind = Kind(d.kind)
            spec = KINDS[kind]
            unit = spec.quantities[0].si_unit if spec.quantities else ""
            placed[d.station] = Sensor(id=d.station, kind=kind.value, name=f"{site.name} · {kind.value}",
                                       lon=round(site.lon, 7), lat=round(site.lat, 7), unit=unit,
                                       properties=props)
    order_in = [d.station for d in devices if d.station in placed]
    return Placement([placed[s] for s in order_in], unplaced)


__all__ = ["FAMILY", "Placement", "Site", "family_sites", "place_devices"]
