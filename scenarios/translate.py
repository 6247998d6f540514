"""A scenario file -> the coupled runner's config (:class:`scenarios.runner.RunConfig`).

:func:`translate` (and its short form :func:`scenario_to_config`) decides
which couplings run, with which parameters, on which grid, and records why
each coupling is enabled:

1. **Models.** Every ``[models.<kind>]`` enables every registered coupling
   whose :attr:`~scenarios.coupling.Coupling.kinds` lists ``<kind>``; a kind
   no coupling stands for is refused (naming the kinds couplings do stand
   for). Its parameters are ``from_scenario(section, scenario)``: the section
   as written (files resolved against the scenario file) over the scenario's
   shared values (:data:`scenarios.schema.SHARED_FIELDS`, files resolved).
2. **Scenario sections.** A coupling with no kinds named like a top-level
   list of the scenario (``injects``, ``sensors``) is enabled when that list
   is not empty ("injects: the scenario has 5 injects").
3. **Providers.** For every name an enabled coupling reads and no enabled
   coupling writes (and the grid does not hold), the one registered coupling
   that writes it is added ("roads: provides road_graph read by dispatch"),
   with ``from_scenario(shared values, scenario)``; repeated until nothing is
   missing. Two registered writers of one name are refused, listing them;
   a field or shared object no registered coupling writes is refused before
   anything runs. **Events are what may happen**: the writer of an event read
   (``event:people_to_move``) is added only when every event it reads itself
   is written by an enabled coupling (``debris`` joins a scenario that runs
   the slope model, not a flood-only one); an event read left without a
   writer goes to the config's ``external`` (no such event will come) and to
   :attr:`Translation.notes`.

**Grid.** The finest ``resolution`` (m) of the model sections (or
``resolution_m``), the largest ``buffer_m`` of the sections and of
``area.buffer_m``; districts from ``area`` (``"all"``: the whole city). A
bounding box or polygon area is the config's ``area`` (the polygon file
resolved): the grid is cut to it plus the margin
(:meth:`twin.domain.Domain.from_area`: a box's cells all take part, cells
outside a polygon are blocked: no water routed, nobody counted there); its
margin is the largest ``buffer_m`` given, 0 when none is (the area is what
the user drew; districts get the runner's 500 m default). **Time.** ``start``,
``duration`` and ``seed`` as written; the frames of ``fields.nc`` every
``outputs.frame_every`` (default 10 min).

**Roads.** The scenario's ``[roads]`` table goes to the ``roads`` coupling
when it runs (:func:`road_params`): ``file`` (resolved against the scenario
file, hashed into the manifest as ``scenario:roads.file``) or ``lattice``
with ``spacing_m`` and ``circuity`` (the ASSUMED lattice walk network; the
coupling's reason says so). Without the table the city's road layer is used.

**``time.step``** is read as the runner's step: when given, it is the
period of every enabled coupling whose parameters set no ``period_s`` of
their own (a model that must step finer says so in its section). Without it
each coupling keeps its own default period.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.coupling import EVENT_PREFIX, Coupling, couplings, provider_problems
from scenarios.runner import RunConfig
from twin.errors import ValidationError

#: Default interval of the output frames (s) when the scenario sets no ``outputs.frame_every``.
FRAME_EVERY_S = 600.0
#: Grid keys of a model section (read here, for the run's grid).
GRID_KEYS = ("resolution", "resolution_m", "buffer_m")
#: Top-level lists of a scenario that enable the coupling of the same name when not empty.
SCENARIO_LISTS = ("injects", "sensors")


@dataclass
class Translation:
    """A scenario translated: the run's config and why each coupling is in it.

    Attributes
    ----------
    config : RunConfig
    reasons : dict
        Coupling name -> why it is enabled ("flood: models.flood_forecast",
        "roads: provides road_graph read by routes").
    scenario : scenarios.schema.Scenario
    base_dir : Path
        Folder the scenario's relative paths are resolved against.
    inputs : dict
        Files the scenario names, by role (``scenario:stations.file``), for the manifest.
    notes : list of str
        Event reads left without a writer (the config's ``external``), and why.
    """

    config: RunConfig
    reasons: dict[str, str]
    scenario: Any
    base_dir: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def scenario_to_config(scenario: Any, *, duration_s: float | None = None,
                       resolution_m: float | None = None,
                       registry: dict[str, Coupling] | None = None) -> RunConfig:
    """The :class:`RunConfig` of a scenario (see :func:`translate`)."""
    return translate(scenario, duration_s=duration_s, resolution_m=resolution_m,
                     registry=registry).config


def translate(scenario: Any, *, duration_s: float | None = None, resolution_m: float | None = None,
              registry: dict[str, Coupling] | None = None) -> Translation:
    """Translate a scenario into a run config (module docstring: couplings, grid, time).

    Parameters
    ----------
    scenario : LoadedScenario or Scenario
        A loaded file (paths relative to it) or a validated scenario (paths
        relative to the working directory).
    duration_s : float, optional
        Run only this much of the scenario (s); its storm and tide keep their
        length (a short run is the start of the scenario, not a compressed one).
    resolution_m : float, optional
        The grid's cell size instead of the sections' finest.
    registry : dict name -> Coupling, optional
        The couplings to choose from (default: the registered ones).

    Raises
    ------
    ValidationError
        Listing every model no coupling stands for; every name two registered
        couplings write; every field or shared object read that no registered
        coupling writes.
    """
    sc, base = _unpack(scenario)
    known = dict(registry) if registry is not None else couplings()
    shared = shared_values(sc, base)
    params, reasons = _enable_models(known, sc, base, shared)
    _enable_lists(known, sc, shared, params, reasons)
    silent = _add_providers(known, params, reasons, shared, sc)
    _apply_roads(sc, base, params, reasons)
    missing = provider_problems([known[n] for n in params], static=STATIC_NAMES, external=silent)
    if missing:
        raise ValidationError(f"scenario {sc.name}: " + "; ".join(missing))
    cfg = RunConfig.from_mapping(_config(sc, base, params, duration_s, resolution_m) | {"external": silent})
    notes = [f"{n}: no enabled coupling writes it, so none will come (its writers need events "
             "this scenario does not make)" for n in silent]
    if getattr(sc, "roads", None) is not None and "roads" not in params:
        notes.append("roads: the scenario's [roads] table is not used (no enabled coupling reads road_graph)")
    return Translation(config=cfg, reasons=reasons, scenario=sc, base_dir=base,
                       inputs=scenario_inputs(sc, base), notes=notes)


def _enable_models(known: dict[str, Coupling], sc: Any, base: Path,
                   shared: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Params and reasons of the couplings of every ``[models.<kind>]``; a kind without one is refused."""
    params: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str] = {}
    problems: list[str] = []
    for kind, section in sc.models.items():
        found = sorted((c for c in known.values() if kind in c.kinds), key=lambda c: c.name)
        if not found:
            problems.append(f"models.{kind}: no registered coupling runs the model {kind!r} in a "
                            f"coupled run; couplings stand for {_kinds_listed(known)} (a model joins "
                            "by registering a coupling with kinds=(...), scenarios/couplings/)")
            continue
        merged = shared | _resolved(section, base)
        for c in found:
            if c.name in params:
                reasons[c.name] += f", models.{kind}"
                continue
            params[c.name] = _from_scenario(c, merged, sc)
            reasons[c.name] = f"models.{kind}"
    if problems:
        raise ValidationError(f"scenario {sc.name}: " + "; ".join(problems))
    return params, reasons


def _enable_lists(known: dict[str, Coupling], sc: Any, shared: dict[str, Any],
                  params: dict[str, dict[str, Any]], reasons: dict[str, str]) -> None:
    """Enable the coupling named like each non-empty list of :data:`SCENARIO_LISTS` (no kinds of its own)."""
    for name in SCENARIO_LISTS:
        items = getattr(sc, name, None) or []
        c = known.get(name)
        if items and c is not None and not c.kinds and name not in params:
            params[name] = _from_scenario(c, dict(shared), sc)
            reasons[name] = f"the scenario has {len(items)} {name}"


# ----------------------------------------------------------------------------- pieces
def _unpack(scenario: Any) -> tuple[Any, Path]:
    from scenarios.files import LoadedScenario
    from scenarios.schema import Scenario

    if isinstance(scenario, LoadedScenario):
        return scenario.scenario, scenario.base_dir
    if isinstance(scenario, Scenario):
        return scenario, Path.cwd()
    raise ValidationError(f"scenario={scenario!r:.80}: give a scenarios.files.LoadedScenario "
                          "(load_scenario) or a scenarios.schema.Scenario")


def _kinds_listed(known: dict[str, Coupling]) -> list[str]:
    return sorted({k for c in known.values() for k in c.kinds})


def _from_scenario(c: Coupling, section: dict[str, Any], sc: Any) -> dict[str, Any]:
    if c.from_scenario is None:
        return {}
    out = c.from_scenario(dict(section), sc)
    if not isinstance(out, dict):
        raise ValidationError(f"coupling {c.name!r}: from_scenario returned {type(out).__name__}, "
                              "not a dict of parameters")
    return dict(out)


def shared_values(sc: Any, base: Path) -> dict[str, Any]:
    """The scenario's shared values (:meth:`Scenario.shared`), files resolved against ``base``."""
    from scenarios.files import FILE_KEYS, resolve
    from scenarios.schema import SHARED_FIELDS

    out = {}
    for k, v in sc.shared().items():
        if isinstance(v, str) and SHARED_FIELDS.get(k) in FILE_KEYS:
            v = str(resolve(base, v))
        out[k] = v
    return out


def _resolved(section: dict[str, Any], base: Path) -> dict[str, Any]:
    """A model section with its file values made absolute (``run:`` links kept)."""
    from scenarios.files import PATH_SUFFIXES, RUN_LINK, resolve

    out = {}
    for k, v in section.items():
        if isinstance(v, str) and not v.startswith(RUN_LINK) and (
                v.lower().endswith(PATH_SUFFIXES) or "/" in v):
            v = str(resolve(base, v))
        out[k] = v
    return out


def road_params(sc: Any, base: Path) -> dict[str, Any]:
    """The ``roads`` coupling's parameters from the scenario's ``[roads]`` table ({} without one).

    Raises
    ------
    ValidationError
        For a ``roads.file`` that does not exist (naming the key and where it was looked for).
    """
    from scenarios.files import resolve

    roads = getattr(sc, "roads", None)
    if roads is None:
        return {}
    if roads.file is not None:
        path = resolve(base, roads.file)
        if not path.is_file():
            raise ValidationError(f"scenario {sc.name}: roads.file = {roads.file!r}: no such file (looked for "
                                  f"{path}; paths are relative to the scenario file)")
        return {"roads": str(path)}
    if roads.lattice:
        out: dict[str, Any] = {"lattice": True}
        if roads.spacing_m is not None:
            out["lattice_spacing_m"] = float(roads.spacing_m)
        if roads.circuity is not None:
            out["circuity"] = float(roads.circuity)
        return out
    return {}


def _apply_roads(sc: Any, base: Path, params: dict[str, dict[str, Any]], reasons: dict[str, str]) -> None:
    """Put the ``[roads]`` table on the ``roads`` coupling (when it runs) and say so in its reason."""
    extra = road_params(sc, base)
    if "roads" not in params or not extra:
        return
    params["roads"].update(extra)
    reasons["roads"] += (" (ASSUMED lattice walk network: roads.lattice)" if extra.get("lattice")
                         else f" (road file: roads.file {sc.roads.file})")


def _add_providers(known: dict[str, Coupling], params: dict[str, dict[str, Any]],
                   reasons: dict[str, str], shared: dict[str, Any], sc: Any) -> list[str]:
    """Add the registered writer of every name read and not written, to a fixed point.

    Returns the event reads left without a writer (they become the config's
    ``external``: no such event will come). Fields and shared objects first;
    an event's writer is added only when the events it reads itself are
    written by enabled couplings.
    """
    while True:
        enabled = [known[n] for n in params]
        written = {w for c in enabled for w in c.writes} | set(STATIC_NAMES)
        missing: dict[str, list[str]] = {}
        for c in enabled:
            for r in c.reads:
                if r not in written:
                    missing.setdefault(r, []).append(c.name)
        added, problems = None, []
        for name in sorted(missing, key=lambda n: (n.startswith(EVENT_PREFIX), n)):
            writers = [c for c in known.values() if name in c.writes and c.name not in params]
            if name.startswith(EVENT_PREFIX):
                writers = [c for c in writers if all(r in written for r in c.reads
                                                     if r.startswith(EVENT_PREFIX))]
            names = sorted(c.name for c in writers)
            if len(names) > 1:
                problems.append(f"{name} (read by {', '.join(missing[name])}) is written by several "
                                f"couplings {names}: enable one of them in the scenario")
            elif names:
                added = (names[0], name)
                break  # the new coupling's own reads change what is missing
        if problems:
            raise ValidationError(f"scenario {sc.name}: " + "; ".join(problems))
        if added is None:
            return sorted(n for n in missing if n.startswith(EVENT_PREFIX))
        w, name = added
        params[w] = _from_scenario(known[w], dict(shared), sc)
        reasons[w] = f"provides {name} read by {', '.join(sorted(set(missing[name])))}"


#: Names the run's grid holds from the start (:meth:`twin.domain.Domain.as_dataset`).
STATIC_NAMES = ("elevation", "slope", "land", "sea", "blocked", "district", "outflow_candidate",
                "land_mask_gshhg")


def grid_of(sc: Any, resolution_m: float | None = None) -> tuple[float, float]:
    """(resolution_m, buffer_m) of the run: the sections' finest cell and largest margin.

    With no margin given anywhere: the runner's default around districts, none around a
    bounding box or polygon area.
    """
    res = [float(s[k]) for s in sc.models.values() for k in ("resolution", "resolution_m")
           if isinstance(s.get(k), int | float) and not isinstance(s.get(k), bool)]
    buf = [float(s["buffer_m"]) for s in sc.models.values()
           if isinstance(s.get("buffer_m"), int | float) and not isinstance(s.get("buffer_m"), bool)]
    cell = float(resolution_m) if resolution_m is not None else (min(res) if res else
                                                                  RunConfig.resolution_m)
    drawn = sc.area.districts is None
    margin = max(buf + [float(sc.area.buffer_m)]) if buf or sc.area.buffer_m or drawn else RunConfig.buffer_m
    return cell, margin


def districts_of(sc: Any, base: Path) -> list[str] | None:
    """The run's districts: the area's list; None for the whole city or a bbox/polygon area (:func:`area_of`)."""
    if isinstance(sc.area.districts, list):
        return list(sc.area.districts)
    return None


def area_of(sc: Any, base: Path) -> dict[str, Any] | None:
    """The config's ``area`` of a bbox or polygon area (polygon resolved against ``base``); None for districts."""
    from scenarios.files import resolve

    if sc.area.bbox is not None:
        return {"bbox": [float(v) for v in sc.area.bbox]}
    if sc.area.polygon is not None:
        return {"polygon": str(resolve(base, sc.area.polygon))}
    return None


def _config(sc: Any, base: Path, params: dict[str, dict[str, Any]], duration_s: float | None,
            resolution_m: float | None) -> dict[str, Any]:
    if duration_s is not None and not (isinstance(duration_s, int | float) and duration_s > 0):
        raise ValidationError(f"duration_s={duration_s!r}: give a number of seconds > 0")
    if resolution_m is not None and not (isinstance(resolution_m, int | float) and resolution_m > 0):
        raise ValidationError(f"resolution_m={resolution_m!r}: give a cell size in metres > 0")
    if sc.time.step is not None:
        for p in params.values():
            p.setdefault("period_s", float(sc.time.step))
    cell, margin = grid_of(sc, resolution_m)
    return {"couplings": params, "duration_s": float(duration_s or sc.time.duration),
            "start": sc.time.start.isoformat(), "city": sc.city, "districts": districts_of(sc, base),
            "area": area_of(sc, base),
            "resolution_m": cell, "buffer_m": margin, "seed": int(sc.seed),
            "output_every_s": float(sc.outputs.frame_every or FRAME_EVERY_S)}


def scenario_inputs(sc: Any, base: Path) -> dict[str, Path]:
    """Files the scenario names (its file keys and path values of model sections), by role."""
    from scenarios.files import FILE_KEYS, resolve

    data = sc.model_dump(mode="json")
    out = {}
    for key in FILE_KEYS:
        v = data
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if isinstance(v, str) and v:
            out[f"scenario:{key}"] = resolve(base, v)
    for kind, section in sc.models.items():
        for k, v in _resolved(section, base).items():
            if isinstance(v, str) and os.path.isabs(v) and Path(v).is_file():
                out[f"scenario:models.{kind}.{k}"] = Path(v)
    return out


def describe(tr: Translation) -> list[str]:
    """One line per enabled coupling: ``name: why``, in the config's order."""
    return [f"{n}: {tr.reasons.get(n, 'given')}" for n in tr.config.couplings]


__all__ = ["FRAME_EVERY_S", "STATIC_NAMES", "Translation", "area_of", "describe", "districts_of", "grid_of",
           "road_params", "scenario_inputs", "scenario_to_config", "shared_values", "translate"]
