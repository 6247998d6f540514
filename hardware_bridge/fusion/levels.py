"""Water-level gauges → flood-model boundaries and correction of the flood state.

Two uses of a gauge's water level η (m, on the DEM's vertical datum):

(a) **Boundary series.** :func:`water_level_boundary` turns a tide or river
    gauge's readings into a :class:`physics.forcing.WaterLevel` imposed on the
    boundary cells of a mask (sea, river mouth). ``datum_offset_m`` is added
    to every reading to bring it onto the DEM's datum (Hong Kong / Shenzhen
    tide gauges often report on chart datum or a local datum, the DEM on the
    1985 National Height Datum: give the offset of the station).

(b) **Nudging** (Newtonian relaxation, Hoke & Anthes 1976, *Mon. Wea. Rev.*
    104:1551): :class:`Nudger` pulls the depth of the cells near a gauge
    toward the observed surface,

        h ← max(h + k · (η_obs − (z + h)), 0)

    for every open cell (porosity > 0) whose centre lies within ``radius_m``
    of the gauge (a cell near several gauges follows the nearest one).
    ``k`` in (0, 1] is the fraction of the misfit removed per call (k = 1 is
    direct insertion; with calls every Δt it is a relaxation time Δt/k). The
    clamp at h = 0 keeps depths non-negative, so the applied change can be
    smaller than k times the misfit.

    Nudging adds or removes water the flood model did not account for. The
    volume changed, ``Σ φ Δh · cell area`` (m³), is returned by every call
    and summed in :attr:`Nudger.total_volume_m3`. The nudger reads and writes
    the model through its fields only (``get`` / ``set`` of
    ``surface_water__depth``, ``topographic__elevation``, ``porosity``); the
    flood model books a depth set from outside with its
    ``add_correction(volume_m3)``, so its balance closes:
    ``error = Δstorage − (rain − infiltration − drainage + inflow − outflow
    + level_exchange + correction)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from gis.raster import cell_size, coords_from_transform, transform_of
from hardware_bridge.fusion import Reading, as_readings, seconds_of, with_xy
from physics.forcing import WaterLevel
from twin.errors import GridError, ValidationError

__all__ = [
    "NudgeResult",
    "Nudger",
    "gauge_positions",
    "water_level_boundary",
    "water_level_series",
]


def _level_readings(readings, station: str | None) -> list[Reading]:
    rs = [r for r in as_readings(readings) if r.kind == "water_level" and r.value is not None]
    if station is not None:
        rs = [r for r in rs if station in (r.station, r.datastream_id)]
    if not rs:
        raise ValidationError(
            f"no water_level readings{'' if station is None else f' for station {station!r}'}: "
            "cannot build a water-level series"
        )
    streams = {r.datastream_id for r in rs}
    if len(streams) > 1:
        raise ValidationError(
            f"water-level readings from {len(streams)} datastreams {sorted(streams)[:4]}: pick one "
            "gauge with station=..."
        )
    return rs


def water_level_series(
    readings, *, origin: datetime | float, station: str | None = None, datum_offset_m: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(times in s since ``origin``, levels in m + ``datum_offset_m``), time-sorted.

    Several readings at the same time: the last one given wins.
    """
    if not math.isfinite(datum_offset_m):
        raise ValidationError(f"datum_offset_m={datum_offset_m!r} must be finite")
    by_t: dict[float, float] = {}
    for r in _level_readings(readings, station):
        by_t[seconds_of(r.time, origin)] = float(r.value) + datum_offset_m
    t = np.array(sorted(by_t))
    return t, np.array([by_t[k] for k in t])


def water_level_boundary(
    readings,
    mask,
    *,
    origin: datetime | float,
    station: str | None = None,
    datum_offset_m: float = 0.0,
    name: str | None = None,
) -> WaterLevel:
    """:class:`WaterLevel` on ``mask`` cells from one gauge's readings (linear between them)."""
    t, lv = water_level_series(readings, origin=origin, station=station, datum_offset_m=datum_offset_m)
    m = np.asarray(mask)
    if m.ndim != 2 or not np.any(m):
        raise GridError(f"water-level mask must be a 2-D array with at least one cell set, got shape {m.shape}")
    label = name or station or _level_readings(readings, station)[0].datastream_id
    return WaterLevel(mask=m.astype(np.uint8), times_s=t, level_m=lv, name=label)


def gauge_positions(readings, crs: str = "EPSG:4547") -> dict[str, tuple[float, float]]:
    """Position (x, y) in ``crs`` of every water-level station (``station`` or datastream id)."""
    out: dict[str, tuple[float, float]] = {}
    for r in with_xy([r for r in as_readings(readings) if r.kind == "water_level"], crs):
        out.setdefault(r.station or r.datastream_id, (float(r.x), float(r.y)))
    return out


@dataclass
class NudgeResult:
    """What one :meth:`Nudger.nudge` call changed (volumes in m³, positive = water added)."""

    volume_m3: float = 0.0
    added_m3: float = 0.0
    removed_m3: float = 0.0
    cells: int = 0
    clamped: int = 0
    per_station: dict[str, float] = field(default_factory=dict)


class Nudger:
    """Relax a running flood model's depth toward gauge water levels (module docstring).

    Parameters
    ----------
    model : physics.flood.FloodModel (or any Component with the fields
        ``surface_water__depth`` (inout), ``topographic__elevation`` and ``porosity``
        on a grid with a transform, which books depth set from outside)
    gauges : mapping station -> (x, y) in the model's CRS (see :func:`gauge_positions`)
    radius_m : float
        Cells whose centre is within this distance of a gauge are nudged.
    gain : float in (0, 1]
        k, the fraction of the misfit removed per call.
    """

    def __init__(self, model, gauges: Mapping[str, tuple[float, float]], *, radius_m: float,
                 gain: float = 0.5) -> None:
        if not (math.isfinite(radius_m) and radius_m > 0):
            raise ValidationError(f"radius_m={radius_m!r} must be a finite distance > 0 m")
        if not (0 < gain <= 1):
            raise ValidationError(f"gain={gain!r} must lie in (0, 1] (1 = direct insertion)")
        if not gauges:
            raise ValidationError("gauges is empty: give station -> (x, y)")
        self.model = model
        self.radius_m = float(radius_m)
        self.gain = float(gain)
        self.total_volume_m3 = 0.0
        # bed and porosity are fixed for a model's life: read once
        self._z = model.get("topographic__elevation").values.astype(np.float64)
        self._phi = model.get("porosity").values.astype(np.float64)
        depth = model.get("surface_water__depth")
        transform = transform_of(depth)
        dx, dy = cell_size(depth)
        self._cell_area = float(dx * dy)
        xc, yc = coords_from_transform(transform, *depth.shape)
        X, Y = np.meshgrid(xc, yc)
        names = list(gauges)
        dist = np.stack([np.hypot(X - gauges[s][0], Y - gauges[s][1]) for s in names])
        nearest = np.argmin(dist, axis=0)
        open_ = self._phi > 0
        self.cells: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for g, s in enumerate(names):
            sel = (nearest == g) & (dist[g] <= self.radius_m) & open_
            self.cells[s] = np.nonzero(sel)
            if not sel.any():
                raise ValidationError(
                    f"gauge {s!r} at {gauges[s]} has no open cell centre within radius_m={radius_m} "
                    "(outside the grid, on blocked cells, or radius smaller than half a cell)"
                )

    @property
    def cell_area(self) -> float:
        return self._cell_area

    def nudge(self, observed: Mapping[str, float]) -> NudgeResult:
        """Apply one relaxation step toward ``observed`` (station -> η, m); unknown stations are refused."""
        res = NudgeResult()
        depth = self.model.get("surface_water__depth").values  # a copy, in the model's dtype
        for s, eta in observed.items():
            if s not in self.cells:
                raise ValidationError(f"station {s!r} is not one of the nudging gauges {sorted(self.cells)}")
            if eta is None or not math.isfinite(float(eta)):
                raise ValidationError(f"station {s!r}: observed level {eta!r} must be finite")
            j, i = self.cells[s]
            h = depth[j, i].astype(np.float64)
            target = h + self.gain * (float(eta) - (self._z[j, i] + h))
            new = np.maximum(target, 0.0)
            res.clamped += int(np.count_nonzero(target < 0))
            depth[j, i] = new.astype(depth.dtype)
            dh = depth[j, i].astype(np.float64) - h  # what will really be stored (float32 models round)
            dv = dh * self._phi[j, i] * self.cell_area
            v = float(dv.sum())
            res.per_station[s] = v
            res.volume_m3 += v
            res.added_m3 += float(dv[dv > 0].sum())
            res.removed_m3 -= float(dv[dv < 0].sum())
            res.cells += j.size
        # one write of the whole field; the model books the volume it changed (add_correction)
        self.model.set("surface_water__depth", depth)
        self.total_volume_m3 += res.volume_m3
        return res

    def nudge_readings(self, readings: Iterable[Reading] | object) -> NudgeResult:
        """:meth:`nudge` with the latest reading of each known station among ``readings``."""
        latest: dict[str, tuple[float, float]] = {}
        for r in as_readings(readings):
            s = r.station or r.datastream_id
            if r.kind != "water_level" or r.value is None or s not in self.cells:
                continue
            if s not in latest or r.t >= latest[s][0]:
                latest[s] = (r.t, float(r.value))
        return self.nudge({s: v for s, (_, v) in latest.items()})
