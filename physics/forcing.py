"""Time-varying forcings of the flood model: rain, inflow hydrographs, water levels.

Each forcing answers two questions for the solver: its value at time t, and
the next time its value changes (so steps never straddle a change and the
applied volumes equal the prescribed ones exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from twin.errors import ValidationError

MM_PER_H = 1.0 / 3.6e6  # m/s per mm/h


def _times(times, name: str) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValidationError(f"{name}: times must be a non-empty 1-D sequence of seconds")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValidationError(f"{name}: times must be finite and strictly increasing, got {t[:5]}...")
    return t


class Rain:
    """Base: rain rate as a grid or a (1, 1) array, in m/s."""

    def rate(self, t: float) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def next_change(self, t: float) -> float:
        return np.inf

    def depth_mm(self, t0: float, t1: float) -> float:
        """Mean rain depth (mm) between t0 and t1 (for reports and tests)."""
        raise NotImplementedError


@dataclass
class NoRain(Rain):
    def rate(self, t: float) -> np.ndarray:
        return np.zeros((1, 1))

    def depth_mm(self, t0: float, t1: float) -> float:
        return 0.0


class UniformRain(Rain):
    """Spatially uniform, piecewise-constant rain: ``rates_mm_h[i]`` on [times[i], times[i+1]).

    ``times`` has one more entry than ``rates`` (the end of the last block);
    before ``times[0]`` and after ``times[-1]`` it does not rain.
    """

    def __init__(self, times_s, rates_mm_h):
        self.times = _times(times_s, "rain")
        self.rates = np.asarray(rates_mm_h, dtype=np.float64)
        if self.rates.shape != (self.times.size - 1,):
            raise ValidationError(
                f"rain: {self.rates.size} rates need {self.rates.size + 1} block edges, got {self.times.size}"
            )
        if np.any(~np.isfinite(self.rates)) or np.any(self.rates < 0):
            bad = self.rates[~np.isfinite(self.rates) | (self.rates < 0)][0]
            raise ValidationError(f"rain: rates must be finite and >= 0 mm/h, got {bad}")

    @classmethod
    def constant(cls, mm_h: float, duration_s: float, start_s: float = 0.0) -> UniformRain:
        return cls([start_s, start_s + duration_s], [mm_h])

    def _index(self, t: float) -> int:
        return int(np.searchsorted(self.times, t, side="right")) - 1

    def rate(self, t: float) -> np.ndarray:
        k = self._index(t)
        r = self.rates[k] if 0 <= k < self.rates.size else 0.0
        return np.full((1, 1), r * MM_PER_H)

    def next_change(self, t: float) -> float:
        k = int(np.searchsorted(self.times, t, side="right"))
        return float(self.times[k]) if k < self.times.size else np.inf

    def depth_mm(self, t0: float, t1: float) -> float:
        edges = np.clip(self.times, t0, t1)
        return float(np.sum(self.rates * np.diff(edges)) / 3600.0)

    @property
    def total_mm(self) -> float:
        return float(np.sum(self.rates * np.diff(self.times)) / 3600.0)


class GriddedRain(Rain):
    """Rain on the model grid, piecewise constant in time: ``rates_mm_h`` of shape (nt, ny, nx)."""

    def __init__(self, times_s, rates_mm_h: np.ndarray):
        self.times = _times(times_s, "gridded rain")
        r = np.asarray(rates_mm_h, dtype=np.float64)
        if r.ndim != 3 or r.shape[0] != self.times.size - 1:
            raise ValidationError(
                f"gridded rain: need rates of shape (nt, ny, nx) with nt = len(times) - 1 = "
                f"{self.times.size - 1}, got {r.shape}"
            )
        if np.any(~np.isfinite(r)) or np.any(r < 0):
            raise ValidationError("gridded rain: rates must be finite and >= 0 mm/h")
        self.rates = r * MM_PER_H

    @classmethod
    def from_dataarray(cls, da: xr.DataArray, like) -> GriddedRain:
        """From a (time, y, x) DataArray in mm/h on any grid/CRS: warped onto ``like`` (bilinear).

        ``time`` holds the start of each block in seconds; the last block
        lasts as long as the one before it (or ``da.attrs['block_s']``).
        """
        from gis.raster import reproject

        if da.dims[0] != "time":
            raise ValidationError(f"gridded rain: first dim must be 'time', got {da.dims}")
        starts = np.asarray(da["time"].values, dtype=np.float64)
        block = float(da.attrs.get("block_s", starts[-1] - starts[-2] if starts.size > 1 else 3600.0))
        layers = []
        for k in range(starts.size):
            frame = da.isel(time=k).copy()
            frame.attrs.update(da.attrs)
            layers.append(np.nan_to_num(reproject(frame, None, like=like).values, nan=0.0))
        return cls(np.append(starts, starts[-1] + block), np.stack(layers))

    def _index(self, t: float) -> int:
        return int(np.searchsorted(self.times, t, side="right")) - 1

    def rate(self, t: float) -> np.ndarray:
        k = self._index(t)
        if 0 <= k < self.rates.shape[0]:
            return self.rates[k]
        return np.zeros((1, 1))

    def next_change(self, t: float) -> float:
        k = int(np.searchsorted(self.times, t, side="right"))
        return float(self.times[k]) if k < self.times.size else np.inf

    def depth_mm(self, t0: float, t1: float) -> float:
        edges = np.clip(self.times, t0, t1)
        return float(np.sum(self.rates.mean(axis=(1, 2)) * np.diff(edges)) * 1000.0)


def scale_rain(rain: Rain, factor: float) -> Rain:
    """``rain`` with every rate multiplied by ``factor`` (>= 0); the same blocks, a copy.

    A :class:`physics.rain.DesignStorm` keeps its metadata and records the
    factor (``rain_scale`` in :meth:`describe`); 1 returns ``rain`` itself.
    Used by the ensembles' rain perturbation and the ``rain_scale`` of the
    flood and slope requests.
    """
    import copy
    import math

    f = float(factor)
    if not (math.isfinite(f) and f >= 0.0):
        raise ValidationError(f"rain_scale={factor!r}: give a finite factor >= 0 (1 = the rain as given)")
    if f == 1.0 or isinstance(rain, NoRain):
        return rain
    if not isinstance(rain, UniformRain | GriddedRain):
        raise ValidationError(f"rain_scale: cannot scale a {type(rain).__name__}; give a uniform or gridded rain")
    out = copy.copy(rain)
    out.rates = rain.rates * f
    out.rain_scale = getattr(rain, "rain_scale", 1.0) * f
    return out


@dataclass
class Hydrograph:
    """Inflow Q(t) in m³/s at a point, linear between samples, zero outside them."""

    x: float
    y: float
    times_s: np.ndarray
    discharge_m3s: np.ndarray
    name: str = "inflow"

    def __post_init__(self):
        self.times_s = _times(self.times_s, f"hydrograph {self.name!r}")
        self.discharge_m3s = np.asarray(self.discharge_m3s, dtype=np.float64)
        if self.discharge_m3s.shape != self.times_s.shape:
            raise ValidationError(f"hydrograph {self.name!r}: times and discharge differ in length")
        if np.any(self.discharge_m3s < 0) or not np.all(np.isfinite(self.discharge_m3s)):
            raise ValidationError(f"hydrograph {self.name!r}: discharge must be finite and >= 0 m³/s")

    def at(self, t: float) -> float:
        if t < self.times_s[0] or t > self.times_s[-1]:
            return 0.0
        return float(np.interp(t, self.times_s, self.discharge_m3s))


@dataclass
class WaterLevel:
    """A water-level series (m, same vertical datum as the DEM) imposed on ``mask`` cells (e.g. sea).

    Linear between samples, held constant beyond them: a tide or storm-surge boundary.
    """

    mask: np.ndarray
    times_s: np.ndarray
    level_m: np.ndarray
    name: str = "tide"

    def __post_init__(self):
        self.mask = np.asarray(self.mask, dtype=np.uint8)
        self.times_s = _times(self.times_s, f"water level {self.name!r}")
        self.level_m = np.asarray(self.level_m, dtype=np.float64)
        if self.level_m.shape != self.times_s.shape or not np.all(np.isfinite(self.level_m)):
            raise ValidationError(f"water level {self.name!r}: need one finite level per time")

    def at(self, t: float) -> float:
        return float(np.interp(t, self.times_s, self.level_m))
