"""Geometry of a fibre-optic DAS array along a metro line: channel <-> chainage.

A DAS interrogator samples the fibre in channels ``dx_m`` apart (gauge positions); channel 0 sits at chainage
``chainage0_m`` along the named metro line and chainage grows with the channel number when ``direction`` is +1,
shrinks when it is -1. The layout carries no CRS: mapping a chainage to a point is the tunnel layer's job.

This is issue 15's shared contract (the DAS array convention): chunks are float32 arrays of shape
``(n_time, n_channel)`` in strain rate (1/s) sampled at ``fs_hz``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.errors import ValidationError


@dataclass(frozen=True)
class FibreLayout:
    """A straight-indexed fibre: channel spacing, sampling rate and where it lies along a metro line.

    Parameters
    ----------
    n_channel : int
        Number of channels (>= 1).
    dx_m : float
        Channel spacing in metres (> 0), default 1.0.
    fs_hz : float
        Sampling rate in Hz (> 0), default 1000.0.
    line : str
        Metro line name as the metro geojson spells it (e.g. ``"1号线"``).
    chainage0_m : float
        Chainage of channel 0 along the line (m).
    direction : int
        +1 when chainage grows with the channel number, -1 when it shrinks.
    """

    n_channel: int
    dx_m: float = 1.0
    fs_hz: float = 1000.0
    line: str = ""
    chainage0_m: float = 0.0
    direction: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.n_channel, bool) or int(self.n_channel) != self.n_channel or self.n_channel < 1:
            raise ValidationError(f"FibreLayout.n_channel = {self.n_channel!r}: give a whole number of channels >= 1")
        object.__setattr__(self, "n_channel", int(self.n_channel))
        for name in ("dx_m", "fs_hz"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0.0:
                raise ValidationError(f"FibreLayout.{name} = {getattr(self, name)!r}: give a finite value > 0")
            object.__setattr__(self, name, value)
        c0 = float(self.chainage0_m)
        if not math.isfinite(c0):
            raise ValidationError(f"FibreLayout.chainage0_m = {self.chainage0_m!r}: give a finite chainage in metres")
        object.__setattr__(self, "chainage0_m", c0)
        if self.direction not in (1, -1):
            raise ValidationError(f"FibreLayout.direction = {self.direction!r}: give +1 or -1")
        object.__setattr__(self, "direction", int(self.direction))
        if not isinstance(self.line, str):
            raise ValidationError(f"FibreLayout.line = {self.line!r}: give the metro line's name as a string")

    @property
    def length_m(self) -> float:
        """Fibre length covered by the channels, ``n_channel * dx_m`` (m)."""
        return self.n_channel * self.dx_m

    @property
    def channels(self) -> NDArray[np.int32]:
        """All channel numbers, ``0 .. n_channel-1`` (int32)."""
        return np.arange(self.n_channel, dtype=np.int32)

    def chainage_m(self, channel: ArrayLike) -> NDArray[np.float64]:
        """Chainage (m) of channel(s): ``chainage0_m + direction * channel * dx_m``.

        Fractional channels are allowed (a localised source between channels); no bounds check.
        """
        ch = np.asarray(channel, dtype=np.float64)
        return self.chainage0_m + self.direction * ch * self.dx_m

    def channel(self, chainage_m: ArrayLike) -> NDArray[np.int64]:
        """Nearest channel number(s) to chainage(s) (m); -1 where the chainage lies off the fibre.

        A chainage is on the fibre when it falls within half a channel spacing of channel 0 .. n_channel-1.
        """
        c = np.asarray(chainage_m, dtype=np.float64)
        frac = (c - self.chainage0_m) * self.direction / self.dx_m
        ch = np.floor(frac + 0.5)
        ok = np.isfinite(ch) & (ch >= 0) & (ch <= self.n_channel - 1)
        return np.where(ok, np.nan_to_num(ch, nan=-1.0), -1).astype(np.int64)

    def to_attrs(self) -> dict[str, object]:
        """The layout as the DAS file's global attributes (``fs_hz``, ``dx_m``, ``line``, ``chainage0_m``, ``direction``)."""
        return {
            "fs_hz": self.fs_hz,
            "dx_m": self.dx_m,
            "line": self.line,
            "chainage0_m": self.chainage0_m,
            "direction": self.direction,
        }
