"""City manifests: which files make up a city, in which datum, on which grid.

A manifest is a small TOML file shipped in ``twin/cities/`` (or given by
path). Loading it validates every entry before any file is opened, so a bad
manifest fails at once with the field and value named.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as _PydanticError

from twin.errors import ConfigError

LayerKind = Literal["raster", "vector", "osm", "json", "points_csv", "table"]


#: The commands a layer can be needed by (``twin <command>``).
COMMANDS = ("flood run", "flood map", "city show", "city build", "city map", "city datum",
            "evacuate district", "dispatch run", "slope run")


class Alternative(BaseModel):
    """Another file that can stand for a layer when its own files are absent.

    E.g. the DEM built from Copernicus GLO-30 tiles by ``twin data fetch`` when
    there is no mirror holding the SRTM file. ``vertical`` and ``long_name``
    replace the layer's when this file is the one used.
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    vertical: str | None = None
    long_name: str | None = None
    built_by: str | None = None


class Layer(BaseModel):
    """One layer of a city: a file (or several) with its datum and meaning.

    ``needed_by`` lists the commands that fail without the layer; a layer no
    command needs is *optional* (maps and reports leave it out when absent).
    """

    model_config = ConfigDict(extra="forbid")

    kind: LayerKind
    path: str | None = None
    paths: list[str] | None = None
    datum: str = "wgs84"
    vertical: str | None = None
    units: str | None = None
    resampling: str = "bilinear"
    long_name: str | None = None
    names: dict[str, list[str]] | None = None
    needed_by: list[str] = Field(default_factory=list)
    alternatives: list[Alternative] = Field(default_factory=list)
    validation_only: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Layer:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give exactly one of 'path' or 'paths'")
        unknown = [c for c in self.needed_by if c not in COMMANDS]
        if unknown:
            raise ValueError(f"needed_by names unknown command(s) {unknown}; known: {list(COMMANDS)}")
        if self.validation_only and self.needed_by:
            raise ValueError("a validation_only layer cannot be needed by a command")
        return self

    @property
    def optional(self) -> bool:
        """True when no command needs the layer (it is left out when absent)."""
        return not self.needed_by

    @property
    def files(self) -> list[str]:
        """Relative paths of the layer's files."""
        return [self.path] if self.path else list(self.paths or [])


class CitySpec(BaseModel):
    """The [city] table."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: str
    adcode: str | None = None
    working_crs: str
    resolution_m: float = Field(gt=0)
    extent_layer: str
    buffer_m: float = Field(ge=0, default=0.0)
    official_area_km2: float | None = None


class Manifest(BaseModel):
    """A whole city manifest."""

    model_config = ConfigDict(extra="forbid")

    city: CitySpec
    layers: dict[str, Layer]

    @model_validator(mode="after")
    def _extent_exists(self) -> Manifest:
        if self.city.extent_layer not in self.layers:
            raise ValueError(f"city.extent_layer={self.city.extent_layer!r} is not a layer")
        return self


def available_cities() -> list[str]:
    """Names of the manifests shipped with the package."""
    folder = resources.files("twin").joinpath("cities")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_manifest(city_or_path: str | Path) -> Manifest:
    """Load a shipped manifest by city name, or a manifest file by path."""
    p = Path(city_or_path)
    if p.suffix == ".toml" and p.exists():
        text, where = p.read_text(encoding="utf-8"), str(p)
    else:
        res = resources.files("twin").joinpath("cities", f"{city_or_path}.toml")
        if not res.is_file():
            raise ConfigError(
                f"unknown city {city_or_path!r}: shipped cities are {available_cities()}; "
                "or give the path of a manifest .toml file"
            )
        text, where = res.read_text(encoding="utf-8"), f"twin/cities/{city_or_path}.toml"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"manifest {where} is not valid TOML: {err}") from err
    try:
        return Manifest.model_validate(raw)
    except _PydanticError as err:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()
        )
        raise ConfigError(f"manifest {where} is invalid: {problems}") from err
