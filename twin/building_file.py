"""The tables a building description file shares between the twin's building models.

One building file (TOML or JSON) serves the building evacuation
(:mod:`agents.building`) and the high-rise fire model
(:mod:`physics.fire_building`); neither model imports the other, so the
pieces both read live here: where the tower stands (:class:`Location`), its
storeys (:class:`Storeys`), reading the file (:func:`read_description`) and
the refuge-floor rule both apply to generated towers (:func:`refuge_floors`).
This module holds no model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import DataIntegrityError, DataMissingError


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Location(_Strict):
    """Where the tower stands (WGS84)."""

    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    label: str | None = Field(default=None, max_length=200)
    footprint: list[list[float]] | None = Field(default=None, min_length=3, max_length=2000)

    @model_validator(mode="after")
    def _points(self) -> Location:
        for i, pt in enumerate(self.footprint or []):
            if len(pt) != 2 or not (-180 <= pt[0] <= 180 and -90 <= pt[1] <= 90):
                raise ValueError(f"footprint.{i} = {pt!r}: give [lon, lat] in WGS84 degrees")
        return self


class Storeys(_Strict):
    """Storeys above ground, ground floor included: ``count`` x ``height_m`` or ``heights_m``."""

    count: int | None = Field(default=None, ge=1, le=200)
    height_m: float = Field(default=3.0, ge=2.0, le=12.0, allow_inf_nan=False)
    heights_m: list[float] | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> Storeys:
        if (self.count is None) == (self.heights_m is None):
            raise ValueError("give either count (with height_m) or heights_m, not both or neither")
        for h in self.heights_m or []:
            if not (math.isfinite(h) and 2.0 <= h <= 12.0):
                raise ValueError(f"heights_m: {h!r} m is outside 2-12 m")
        return self

    @property
    def n(self) -> int:
        return self.count if self.heights_m is None else len(self.heights_m)

    def heights(self) -> np.ndarray:
        """Storey heights (m), ground floor first."""
        return np.asarray(self.heights_m if self.heights_m is not None else [self.height_m] * self.count, float)


def read_description(path: str | Path) -> dict:
    """The raw dict of a building file (``.toml`` or ``.json``).

    Raises
    ------
    DataMissingError
        No such file.
    DataIntegrityError
        Not TOML/JSON, or not a table at the top (names the line when the parser does).
    """
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"{p}: no such building file (a .toml or .json description)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataIntegrityError(f"{p}: cannot be read as UTF-8 text ({exc})") from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise DataIntegrityError(f"{p}: not valid {kind} ({exc})") from exc
    if not isinstance(data, dict):
        raise DataIntegrityError(f"{p}: expected a table/object at the top, got {type(data).__name__}")
    return data


def refuge_floors(elevations: list[float], top_m: float) -> list[int]:
    """Refuge floors of GB 50016-2014 §5.5.23: over 100 m, one within every 50 m of height.

    The highest floor at or below 50 m, then the highest within 50 m above each one.
    """
    if top_m <= 100.0:
        return []
    out, base = [], 0.0
    while base + 50.0 < top_m:
        below = [i for i, e in enumerate(elevations) if base < e <= base + 50.0]
        if not below:
            break
        out.append(below[-1])
        base = elevations[below[-1]]
    return out
