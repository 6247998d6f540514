"""Scenario files: load TOML or YAML, check everything, list every problem at once.

:func:`load_scenario` reads a scenario file (``.toml`` with :mod:`tomllib`,
``.yaml``/``.yml`` with ``yaml.safe_load``) or a built-in scenario by name, and
checks, before anything runs:

* the schema (:class:`scenarios.schema.Scenario`): types, ranges, required keys, unknown keys;
* the city (a shipped manifest) and the district names of the area against it;
* every file the scenario names (rain file, polygon, zones, fills, shelters,
  stations, and any path-like value of a model table) exists, relative to the
  scenario file;
* every ``[models.<kind>]`` table against that run kind's own request model, with
  the scenario's shared values passed down (:data:`scenarios.schema.SHARED_FIELDS`),
  and, with ``precheck=True``, the kind's own pre-check (:meth:`twin.runkinds.RunKind.precheck`:
  storm length against its blocks, stations file rows...); an input another model of the
  scenario supplies (a request field marked ``twin_run``, e.g. the district evacuation's
  ``flood``) gets the placeholder ``"run:<kind>"`` that the runner replaces;
* injects fall within the scenario's window; a ``sensor_value`` inject names a
  declared sensor (when sensors are declared); every source and assumption is
  about a key the file sets.

Every problem found is listed in one :class:`ScenarioError` (a
:class:`twin.errors.ValidationError`): its path in the file
(``models.flood_forecast.resolution``), the value, and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from twin.errors import RequestError, ValidationError

BUILTIN_DIR = Path(__file__).parent / "builtin"
SUFFIXES = (".toml", ".yaml", ".yml")
#: Prefix of the placeholder given to an input another model of the scenario supplies.
RUN_LINK = "run:"
#: A string value of a model table ending with one of these is a file (it must exist).
PATH_SUFFIXES = (".csv", ".geojson", ".json", ".gpkg", ".shp", ".nc", ".tif", ".tiff", ".toml", ".parquet",
                 ".zarr", ".osm", ".pbf", ".jsonl", ".txt", ".yaml", ".yml")
#: Keys of the scenario (dotted, outside ``models``) that name files.
FILE_KEYS = ("area.polygon", "hazards.rain.file", "hazards.slope.zones", "hazards.slope.fills",
             "populations.shelters", "stations.file", "roads.file")


@dataclass(frozen=True)
class Problem:
    """One problem of a scenario file: where (dotted path), the value found, what is allowed."""

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        shown = "(missing)" if self.value is _MISSING else _short(self.value)
        return f"{self.path} = {shown}: {self.message}"


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


class ScenarioError(ValidationError):
    """A scenario file that cannot run; ``problems`` lists every :class:`Problem` found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        super().__init__(f"scenario {source}: {len(self.problems)} problem(s):\n  {lines}")


@dataclass(frozen=True)
class LoadedScenario:
    """A checked scenario: the model, where it came from, and each model's validated request.

    Attributes
    ----------
    scenario : scenarios.schema.Scenario
    path : Path
        The scenario file.
    requests : dict
        Run kind name -> that kind's validated request (shared values passed down, files
        resolved to absolute paths, inputs of other models as ``"run:<kind>"``).
    links : dict
        Run kind name -> {request field: kind that supplies it}.
    """

    scenario: Any
    path: Path
    requests: dict[str, Any]
    links: dict[str, dict[str, str]]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def hash(self) -> str:
        return scenario_hash(self.scenario)


# ----------------------------------------------------------------------------- finding files
def builtin_names() -> list[str]:
    """Names of the built-in scenarios (``scenarios/builtin/*.toml``)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def find_scenario(name_or_path: str | os.PathLike) -> Path:
    """The file of a built-in scenario name, or the path given.

    Raises
    ------
    ScenarioError
        When it is neither an existing file nor a built-in name (listing the built-ins).
    """
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    builtin = BUILTIN_DIR / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    raise ScenarioError(str(name_or_path), [Problem("(file)", str(name_or_path),
                        f"no such file, and not a built-in scenario; built-ins are {builtin_names()}")])


def read_file(path: Path) -> dict[str, Any]:
    """The raw table of a TOML or YAML scenario file (a ScenarioError when it cannot be parsed)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ScenarioError(str(path), [Problem("(file)", path.name, f"a scenario file ends with one of {SUFFIXES}")])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [Problem("(file)", str(path), f"cannot be read: {exc}")]) from None
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        else:
            import yaml

            data = _dates_as_text(yaml.safe_load(text))
    except Exception as exc:  # noqa: BLE001 - tomllib / yaml parse errors: one problem with the parser's line
        kind = "TOML" if suffix == ".toml" else "YAML"
        raise ScenarioError(str(path), [Problem("(file)", path.name, f"not valid {kind}: {exc}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError(str(path), [Problem("(file)", type(data).__name__, "the file must hold a table (mapping)")])
    return data


def _dates_as_text(node: Any) -> Any:
    """YAML reads an unquoted ``2023-09-07`` as a date: a scenario means the text (a storm's name)."""
    if isinstance(node, dict):
        return {k: _dates_as_text(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_dates_as_text(v) for v in node]
    if isinstance(node, date) and not isinstance(node, datetime):
        return node.isoformat()
    return node


# ----------------------------------------------------------------------------- loading
def load_scenario(source: str | os.PathLike, *, precheck: bool = False) -> LoadedScenario:
    """Load and check a scenario file or built-in name; nothing runs on a bad file.

    Parameters
    ----------
    source : str or path
        A ``.toml``/``.yaml``/``.yml`` file, or a built-in scenario name (:func:`builtin_names`).
    precheck : bool
        Also run each model's own pre-check (:meth:`twin.runkinds.RunKind.precheck`; reads
        the city's data, so it needs ``TWIN_DATA``).

    Raises
    ------
    ScenarioError
        Listing every problem found, each with its path in the file, the value and what is allowed.
    """
    path = find_scenario(source)
    data = read_file(path)
    data = {"name": path.stem.replace("-", "_").lower(), **data}
    return check_scenario(data, base_dir=path.parent, source=str(path), precheck=precheck, path=path)


def check_scenario(data: dict[str, Any], *, base_dir: str | os.PathLike = ".", source: str = "scenario",
                   precheck: bool = False, path: Path | None = None) -> LoadedScenario:
    """Check a scenario's raw table (as parsed from its file); see :func:`load_scenario`."""
    import pydantic

    from scenarios.schema import Scenario

    base = Path(base_dir)
    problems: list[Problem] = []
    scenario = None
    try:
        scenario = Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        problems += _translate(exc, prefix="", data=data)
    known = _known_districts(data.get("city", "shenzhen") if scenario is None else scenario.city, problems)
    problems += _area_problems(data, known)
    problems += _file_problems(data, base)
    problems += _timeline_problems(scenario if scenario is not None else _lenient_timeline(data))
    problems += _note_problems(data)
    shared = scenario.shared() if scenario is not None else _lenient_shared(data)
    if scenario is not None and not problems and scenario.area.districts is None:
        try:
            shared["districts"] = area_districts(scenario.area, scenario.city, base)
        except ValidationError as exc:
            key = "area.bbox" if scenario.area.bbox is not None else "area.polygon"
            problems.append(Problem(key, _get(data, key), str(exc)))
    requests, links, model_problems = _model_requests(data.get("models"), shared, base, known,
                                                      precheck=precheck, city=data.get("city", "shenzhen"))
    problems += model_problems
    problems = _unique(problems)
    if problems:
        raise ScenarioError(source, problems)
    return LoadedScenario(scenario, Path(path) if path is not None else base / f"{scenario.name}.toml",
                          requests, links)


def scenario_hash(scenario: Any) -> str:
    """sha256 (hex) of the canonical JSON of a validated scenario: keys sorted, durations in their
    canonical unit, so the same scenario written in another key order or unit hashes the same."""
    return hashlib.sha256(canonical_json(scenario).encode("utf-8")).hexdigest()


def canonical_json(scenario: Any) -> str:
    """The canonical JSON text of a validated scenario (what :func:`scenario_hash` hashes)."""
    obj = scenario.model_dump(mode="json") if hasattr(scenario, "model_dump") else scenario
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ----------------------------------------------------------------------------- pydantic errors
def _translate(exc: Any, *, prefix: str, data: Any, shared_from: dict[str, str] | None = None) -> list[Problem]:
    """Problems of a pydantic ValidationError: path in the file, value, what is allowed."""
    from scenarios.schema import INJECT_KINDS

    out = []
    for e in exc.errors():
        loc = full = list(e["loc"])
        # a discriminated union puts the member's tag after the list index: not a key of the file
        loc = [p for i, p in enumerate(loc) if not (i > 0 and isinstance(loc[i - 1], int) and p in INJECT_KINDS)]
        loc = _keys_only(loc, data)
        dotted = ".".join(str(p) for p in loc)
        if shared_from and loc and loc[0] in shared_from:
            where = f"{shared_from[loc[0]]} (passed to {prefix}{dotted})"
        else:
            where = f"{prefix}{dotted}" if dotted else (prefix.rstrip(".") or "(file)")
        value = _MISSING if e["type"] == "missing" else e.get("input")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = _allowed(exc, full)
            msg = f"unknown key; allowed keys here: {allowed}" if allowed else "unknown key"
        out.append((Problem(where, value, msg), e["type"]))
    # a union (a list of names, or "all") fails in each member: keep the member that got deeper
    paths = [p.path for p, _ in out]
    return [p for p, t in out if not (t in ("literal_error", "none_required", "enum") and any(
        q.startswith(p.path + ".") for q in paths))]


def _keys_only(loc: list, data: Any) -> list:
    """``loc`` without pydantic's labels of union members (``list[constrained-str]``, ``function-after[...]``):
    the elements before the last that are no key of the file's table at that point."""
    out, node = [], data
    for i, p in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and p in node:
            out.append(p)
            node = node[p]
        elif isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node):
            out.append(p)
            node = node[p]
        elif last and not (isinstance(p, str) and ("[" in p or p.startswith("function-"))):
            out.append(p)  # a missing or unknown key: named, though not in the table
        elif not isinstance(node, dict | list):
            break
    return out


def _allowed(exc: Any, loc: list) -> str:
    """The keys allowed at the parent of ``loc`` (for an unknown key), from the model's schema."""
    from scenarios import schema as S

    model = getattr(exc, "title", "")
    cls = getattr(S, model, None)
    tags = {"sensor_value": S.SensorValueInject, "incident": S.IncidentInject, "road_lost": S.RoadLostInject,
            "station_lost": S.StationLostInject}
    try:
        for i, p in enumerate(loc[:-1]):
            if isinstance(p, int):
                continue
            if i > 0 and isinstance(loc[i - 1], int) and p in tags:
                cls = tags[p]
                continue
            field = cls.model_fields[p]
            cls = _model_of(field.annotation)
        return ", ".join(cls.model_fields) if cls is not None else ""
    except (KeyError, AttributeError, TypeError):
        return ""


def _model_of(annotation: Any) -> Any:
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in typing.get_args(annotation):
        m = _model_of(a)
        if m is not None:
            return m
    return None


# ----------------------------------------------------------------------------- semantic checks
def _get(data: Any, dotted: str) -> Any:
    """The value at a dotted path of the raw table (list indices as numbers), or _MISSING."""
    node = data
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _known_districts(city: Any, problems: list[Problem]) -> dict[str, str] | None:
    """{casefolded English/Chinese name, adcode, name without apostrophes: English name} of the city."""
    from twin.errors import ConfigError
    from twin.manifest import load_manifest

    if not isinstance(city, str):
        return None
    try:
        manifest = load_manifest(city)
    except ConfigError as exc:
        problems.append(Problem("city", city, str(exc)))
        return None
    layer = manifest.layers.get("districts")
    names = getattr(layer, "names", None) or {}
    known = {}
    for code, (en, zh) in names.items():
        for key in (en, zh, code, en.replace("'", "")):
            known[str(key).casefold()] = en
    return known or None


def _area_problems(data: dict, known: dict[str, str] | None) -> list[Problem]:
    districts = _get(data, "area.districts")
    if not isinstance(districts, list) or known is None:
        return []
    choices = sorted(set(known.values()))
    return [Problem(f"area.districts.{i}", n, f"unknown district of {data.get('city', 'shenzhen')}; choose from "
                    f"{choices} (or Chinese names, adcodes), or districts = \"all\"")
            for i, n in enumerate(districts) if isinstance(n, str) and n.strip().casefold() not in known]


def area_districts(area: Any, city: str, base: Path) -> list[str]:
    """The districts of ``city`` a bounding box or polygon area overlaps (English names, in the city's order).

    They are passed down to the models that take districts (the runner clips to the area itself).
    The same reading of the area as the run's (:func:`twin.domain.area_outline`,
    :func:`twin.domain.overlapped_districts`): the city's district boundaries (``TWIN_DATA``) and
    the polygon file.

    Raises
    ------
    twin.errors.ValidationError
        When the area overlaps no district, the polygon file cannot be read, or the boundaries are missing.
    """
    from twin.city import City
    from twin.domain import area_outline, overlapped_districts
    from twin.errors import TwinError

    spec = {"bbox": list(area.bbox)} if area.bbox is not None else {"polygon": str(resolve(base, area.polygon))}
    try:
        c = City(city)
        outline, label, _ = area_outline(c, spec)
        return list(overlapped_districts(c, outline, label))
    except ValidationError:
        raise
    except TwinError as exc:
        raise ValidationError(f"cannot place the area on the districts: {exc}") from exc


def resolve(base: Path, value: str) -> Path:
    """A file named in a scenario: ``~`` and ``$VARS`` expanded, relative to the scenario's folder."""
    p = Path(os.path.expandvars(value)).expanduser()
    return p if p.is_absolute() else base / p


def _file_problems(data: dict, base: Path) -> list[Problem]:
    out = []
    for key in FILE_KEYS:
        v = _get(data, key)
        if isinstance(v, str) and v and not resolve(base, v).exists():
            out.append(Problem(key, v, f"no such file (looked for {resolve(base, v)}; paths are relative to the "
                               "scenario file)"))
    for i, c in enumerate(_get(data, "hazards.construction") if isinstance(_get(data, "hazards.construction"),
                                                                           list) else []):
        v = c.get("polygon") if isinstance(c, dict) else None
        if isinstance(v, str) and v and not resolve(base, v).exists():
            out.append(Problem(f"hazards.construction.{i}.polygon", v, f"no such file (looked for {resolve(base, v)})"))
    return out


def _lenient_timeline(data: dict) -> Any:
    """What a scenario that failed validation has of a timeline: the window, and each inject,
    sensor and fire that validates alone (the others keep their index, as None)."""
    from types import SimpleNamespace

    import pydantic

    from scenarios import schema as S

    def each(key: str, adapter: Any) -> list:
        items = data.get(key) if isinstance(data.get(key), list) else []
        out = []
        for item in items:
            try:
                out.append(adapter.validate_python(item))
            except pydantic.ValidationError:
                out.append(None)
        return out

    try:
        time_window = S.TimeWindow.model_validate(data.get("time"))
    except pydantic.ValidationError:
        return None
    hazards = data.get("hazards") if isinstance(data.get("hazards"), dict) else {}
    raw_fires = hazards.get("fires")
    fires = [_try(S.FireOrigin, x) for x in raw_fires] if isinstance(raw_fires, list) else []
    return SimpleNamespace(time=time_window, injects=each("injects", pydantic.TypeAdapter(S.Inject)),
                           sensors=[x for x in each("sensors", pydantic.TypeAdapter(S.Sensor)) if x is not None],
                           hazards=SimpleNamespace(fires=fires))


def _try(cls: Any, raw: Any) -> Any:
    import pydantic

    try:
        return cls.model_validate(raw)
    except pydantic.ValidationError:
        return None


def _timeline_problems(sc: Any) -> list[Problem]:
    out: list[Problem] = []
    if sc is None:
        return out
    start, end = sc.time.start, sc.time.start + timedelta(seconds=sc.time.duration)
    for i, inj in enumerate(sc.injects):
        if inj is None:
            continue
        if inj.at is not None and not (start <= inj.at <= end):
            out.append(Problem(f"injects.{i}.at", inj.at.isoformat(), f"outside the scenario's window "
                               f"{start.isoformat()} .. {end.isoformat()}"))
        if inj.after is not None and inj.after > sc.time.duration:
            from scenarios.schema import format_duration

            out.append(Problem(f"injects.{i}.after", format_duration(inj.after),
                               f"after the scenario's end (duration {format_duration(sc.time.duration)})"))
    declared = {(s.station, s.kind.value) for s in sc.sensors}
    if declared:
        for i, inj in enumerate(sc.injects):
            if inj is not None and inj.kind == "sensor_value" and (inj.payload.station, inj.payload.sensor.value) not in declared:
                out.append(Problem(f"injects.{i}.payload.station", inj.payload.station,
                                   f"no {inj.payload.sensor.value} sensor of that station in [[sensors]]; "
                                   f"declared: {sorted(declared)}"))
    for i, fire in enumerate(sc.hazards.fires):
        if fire is not None and fire.after > sc.time.duration:
            out.append(Problem(f"hazards.fires.{i}.after", fire.after, "after the scenario's end"))
    return out


def _note_problems(data: dict) -> list[Problem]:
    out = []
    for section in ("sources", "assumptions"):
        notes = data.get(section)
        if not isinstance(notes, list):
            continue
        for i, n in enumerate(notes):
            about = n.get("about") if isinstance(n, dict) else None
            if isinstance(about, str) and about not in ("scenario", "description") and _get(data, about) is _MISSING:
                out.append(Problem(f"{section}.{i}.about", about, "names no key of this file; give the dotted "
                                   "path of the value it is about (e.g. hazards.sea.surge_m), or 'scenario'"))
    return out


def _lenient_shared(data: dict) -> dict[str, Any]:
    """The shared values of a scenario that failed validation, taken from each section that validates alone."""
    import pydantic

    from scenarios import schema as S

    out: dict[str, Any] = {}
    sections = {"time": S.TimeWindow, "area": S.Area, "hazards": S.Hazards, "populations": S.Populations,
                "stations": S.Stations}
    fields: dict[str, Any] = {}
    for key, cls in sections.items():
        if key in data:
            try:
                fields[key] = cls.model_validate(data[key])
            except pydantic.ValidationError:
                pass
    for key in ("city", "seed"):
        if key in data:
            fields[key] = data[key]
    try:
        partial = S.Scenario.model_construct(**fields)
        for key in ("city", "seed", "time", "area", "hazards", "populations", "stations"):
            if key not in fields:
                raise AttributeError(key)
        out = partial.shared()
    except (AttributeError, TypeError):
        t = fields.get("time")
        if t is not None:
            out["hours"] = t.hours
        a = fields.get("area")
        if a is not None and isinstance(a.districts, list):
            out["districts"] = list(a.districts)
    return out


# ----------------------------------------------------------------------------- model tables
def _looks_like_path(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith(RUN_LINK) and (
        value.lower().endswith(PATH_SUFFIXES) or "/" in value)


def _linked_fields(kind: Any) -> dict[str, str]:
    """{request field: kind supplying it} of a run kind (fields marked ``twin_run``)."""
    out = {}
    for n, f in kind.request.model_fields.items():
        extra = f.json_schema_extra
        if isinstance(extra, dict) and isinstance(extra.get("twin_run"), dict):
            out[n] = extra["twin_run"].get("kind", "")
    return out


def _model_requests(models: Any, shared: dict[str, Any], base: Path, known: dict[str, str] | None, *,
                    precheck: bool, city: Any) -> tuple[dict[str, Any], dict[str, dict[str, str]], list[Problem]]:
    import pydantic

    from scenarios.schema import SHARED_FIELDS
    from twin.runkinds import get_kind, kinds

    problems: list[Problem] = []
    requests: dict[str, Any] = {}
    links: dict[str, dict[str, str]] = {}
    if not isinstance(models, dict):
        return requests, links, problems  # the schema reports it
    registered = [k.name for k in kinds()]
    for name, table in models.items():
        prefix = f"models.{name}."
        try:
            k = get_kind(name)
        except ValidationError:
            problems.append(Problem(f"models.{name}", table, f"unknown model; registered run kinds are {registered}"))
            continue
        if k.name != name:
            problems.append(Problem(f"models.{name}", name, f"use the run kind's name {k.name!r}"))
            continue
        if not isinstance(table, dict):
            continue  # the schema reports it
        fields = k.request.model_fields
        params: dict[str, Any] = {}
        passed: dict[str, str] = {}
        dem_given = "dem" in table
        for field, value in shared.items():
            if field in fields and field not in table and not (dem_given and field in ("city", "districts")):
                params[field] = _resolve_path(field, value, base)
                passed[field] = SHARED_FIELDS[field]
        for field in ("storm", "rain_mm_h", "rain_file"):
            if field in shared and field not in fields and {"storm", "rain_mm_h", "rain_file"} & set(fields):
                problems.append(Problem(SHARED_FIELDS[field], shared[field], f"the {name} model takes no "
                                        f"{field}: give its rain another way, or leave it out of this scenario"))
        kind_links = {}
        for field, value in table.items():
            if isinstance(value, str) and value.startswith(RUN_LINK):
                src = value.removeprefix(RUN_LINK)
                if src not in models:
                    problems.append(Problem(f"{prefix}{field}", value, f"{src!r} is not a model of this scenario; "
                                            f"its models are {sorted(models)}"))
                kind_links[field] = src
                params[field] = value
            elif _looks_like_path(value):
                p = resolve(base, value)
                if not p.exists():
                    problems.append(Problem(f"{prefix}{field}", value, f"no such file (looked for {p}; paths are "
                                            "relative to the scenario file)"))
                params[field] = str(p)
            else:
                params[field] = value
        for f, src in _linked_fields(k).items():
            if f not in table and src in models:
                kind_links[f] = src
                params[f] = f"{RUN_LINK}{src}"
        links[name] = kind_links
        ctx = {"districts": known} if known else None
        try:
            req = k.request.model_validate(params, context=ctx)
        except pydantic.ValidationError as exc:
            problems += _translate(exc, prefix=prefix, data=table, shared_from=passed)
            continue
        if precheck:
            try:
                k.precheck(req, city if isinstance(city, str) else None)
            except RequestError as exc:
                if exc.field not in kind_links:
                    where = f"{passed[exc.field]} (passed to {prefix}{exc.field})" if exc.field in passed \
                        else f"{prefix}{exc.field}"
                    problems.append(Problem(where, exc.value, str(exc)))
        requests[name] = req
    return requests, links, problems


def _resolve_path(field: str, value: Any, base: Path) -> Any:
    from scenarios.schema import SHARED_FIELDS

    key = SHARED_FIELDS.get(field, "")
    if isinstance(value, str) and key in FILE_KEYS:
        return str(resolve(base, value))
    return value


def _unique(problems: list[Problem]) -> list[Problem]:
    """Problems without repeats; a shared value's problem seen again in a model table is listed once."""
    seen, out = set(), []
    own = [p.path for p in problems if " (passed to " not in p.path]
    for p in problems:
        origin = p.path.split(" (passed to ", 1)[0]
        if origin != p.path and any(o == origin or o.startswith(origin + ".") for o in own):
            continue
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# ----------------------------------------------------------------------------- TOML out
def to_toml(obj: dict[str, Any]) -> str:
    """TOML text of a JSON-like table (None values left out): what ``twin scenario show`` prints."""
    lines: list[str] = []
    _emit_table(obj, [], lines)
    return "\n".join(lines).strip() + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _emit_table(obj: dict[str, Any], path: list[str], lines: list[str], *, array: bool = False) -> None:
    scalars = {k: v for k, v in obj.items() if v is not None and not isinstance(v, dict) and not _is_table_array(v)}
    if path and (scalars or array or not obj):  # a table holding only tables needs no header of its own
        lines.append("")
        name = ".".join(_key(p) for p in path)
        lines.append(f"[[{name}]]" if array else f"[{name}]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in obj.items():
        if isinstance(v, dict):
            _emit_table(v, [*path, k], lines)
        elif _is_table_array(v):
            for item in v:
                _emit_table(item, [*path, k], lines, array=True)


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, str):
        if "\n" in v:
            return '"""\n' + v.replace("\\", "\\\\").replace('"""', '\\"""') + '"""'
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + "}"
    return json.dumps(str(v), ensure_ascii=False)


def scenario_toml(scenario: Any) -> str:
    """The validated scenario as TOML (canonical durations, defaults written out)."""
    return to_toml(scenario.model_dump(mode="json", exclude_none=True))


def json_ready(data: Any) -> Any:
    """A raw parsed table with TOML/YAML datetimes as ISO 8601 text (to check it against the JSON Schema)."""
    if isinstance(data, dict):
        return {k: json_ready(v) for k, v in data.items()}
    if isinstance(data, list):
        return [json_ready(v) for v in data]
    if isinstance(data, datetime | date | time):
        return data.isoformat()
    return data


__all__ = ["BUILTIN_DIR", "RUN_LINK", "LoadedScenario", "Problem", "ScenarioError", "area_districts", "builtin_names",
           "canonical_json", "check_scenario", "find_scenario", "json_ready", "load_scenario", "read_file",
           "resolve", "scenario_hash", "scenario_toml", "to_toml"]
