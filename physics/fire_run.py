"""The high-rise fire's run kind ``fire``: request, checks, runner, outputs, map layers, report.

Registered with :func:`twin.runkinds.register_kind` on import, so the run
pipeline (:func:`twin.pipeline.run`), ``twin fire run``, the console's run
form and the offline map find it. A run resolves the building (a fire
building file, or an example of :data:`physics.fire_building.EXAMPLES` by
name), checks the origin floor and compartment against it, and runs
:func:`physics.fire_sim.simulate_fire` with progress reports; the outputs are
:func:`physics.fire_io.write_fire_outputs` (``fire.nc``, ``events.jsonl``,
``aset.csv``, three plots), the summary :func:`physics.fire_io.summarise`,
the report :func:`physics.fire_report.report_sections` and the map the
``fire_floors`` layer (:mod:`viz.layers.fire_building`).

This module is imported for ``twin --help``: numpy, xarray and the model are
imported only inside its functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "fire"
#: Named t² growth rates (NFPA 72 classes; :data:`physics.fire_correlations` gives their alpha).
GROWTHS = ("slow", "medium", "fast", "ultrafast")
#: Bounds of a growth given as alpha (kW/s²): below "slow" (0.00293) and above "ultrafast" (0.1876).
ALPHA_RANGE = (0.001, 1.0)
MAX_DURATION_S = 6 * 3600.0
LAYER_KIND = "fire_floors"
EVACUATION_KIND = "fire_evacuation"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FireConsoleRequest(_Strict):
    """A fire in a tower (what the console's form may send).

    Attributes
    ----------
    building : str
        An example building by name (``twin fire examples``: ``tower_30_residential``,
        ``ping_an_finance_centre``) or the path of a fire building file (.toml or .json,
        documented in :mod:`physics.fire_building`).
    floor : int
        Storey of the fire's origin, 0 = ground (L1), as everywhere in the building files;
        checked against the building's storeys before the run.
    growth : str or float
        t² growth class (slow, medium, fast, ultrafast) or its alpha in kW/s² (0.001-1).
    sprinklers : {"on", "off", "building"}
        Sprinklers operate (on), fail or are absent (off), or as the building file says.
    season : {"summer", "winter"} or None
        Outside air: summer 33 °C (Shenzhen's July mean maximum), winter 10 °C; None means
        summer unless ``t_outside_c`` is given.
    duration_s : float
        Simulated time after ignition (s), 10 s to 6 h.
    """

    building: str = Field(min_length=1, max_length=1000,
                          description="Example name (twin fire examples) or fire building file (.toml/.json)",
                          examples=["tower_30_residential"])
    floor: int = Field(ge=0, le=300, description="Storey of the origin, 0 = ground (L1)", examples=[10])
    growth: str | float = Field(default="fast", description="t² growth: slow|medium|fast|ultrafast or alpha "
                                "(kW/s², 0.001-1)")
    sprinklers: Literal["on", "off", "building"] = Field(
        default="building", description="Sprinklers operate (on), fail/absent (off), or as the building file says")
    season: Literal["summer", "winter"] | None = Field(
        default=None, description="Outside air: summer 33 °C, winter 10 °C (default summer)")
    duration_s: float = Field(default=3600.0, ge=10.0, le=MAX_DURATION_S, allow_inf_nan=False,
                              description="Simulated time after ignition (s)")

    @field_validator("growth", mode="before")
    @classmethod
    def _growth(cls, v: Any) -> str | float:
        if isinstance(v, bool):
            raise ValueError(f"give one of {list(GROWTHS)} or alpha in kW/s² ({ALPHA_RANGE[0]}-{ALPHA_RANGE[1]})")
        if isinstance(v, str):
            name = v.strip().lower()
            if name in GROWTHS:
                return name
            try:
                v = float(name)
            except ValueError:
                raise ValueError(f"give one of {list(GROWTHS)} or alpha in kW/s² "
                                 f"({ALPHA_RANGE[0]}-{ALPHA_RANGE[1]})") from None
        if isinstance(v, int | float):
            a = float(v)
            if not ALPHA_RANGE[0] <= a <= ALPHA_RANGE[1]:
                raise ValueError(f"alpha {a!r} kW/s² is outside {ALPHA_RANGE[0]}-{ALPHA_RANGE[1]} "
                                 "(slow 0.00293 ... ultrafast 0.1876)")
            return a
        raise ValueError(f"give one of {list(GROWTHS)} or alpha in kW/s²")


class FireRequest(FireConsoleRequest):
    """Every parameter of a fire run (``twin fire run --help``).

    Attributes
    ----------
    compartment : str or None
        The room of origin on ``floor`` (its name in the building file, e.g. ``"flat A"``, or the
        network's ``"<floor>/<name>"``); None: the floor's first room. Checked against that floor's rooms.
    t_outside_c : float or None
        Outside air temperature (°C, -20-50) instead of ``season``.
    dt_s : float
        Time step of the zone model (s), 0.05-5.
    record_every_s : float
        Interval of the recorded time series (s), a whole number of ``dt_s`` steps, at most ``duration_s``.
    evacuate : bool
        Run the building's evacuation in the same run: the request goes to the run kind
        ``fire_evacuation`` (its other fields at their defaults), whose outputs, report and map the
        run writes (``twin fire run --evacuate`` calls that kind directly, with ``--seed`` and
        ``--door-hold``).
    threads : int
        Threads of the zone model's kernel (1, the default; see :class:`~physics.fire_zone.FireZoneModel`). The
        same results to the bit; faster only where the machine's cores are idle, slower where other work keeps
        them busy (each parallel region of a step waits for every thread).
    """

    compartment: str | None = Field(default=None, min_length=1, max_length=80,
                                    description="Room of origin on the floor (default: its first room)")
    t_outside_c: float | None = Field(default=None, ge=-20.0, le=50.0, allow_inf_nan=False,
                                      description="Outside air temperature (°C) instead of season")
    dt_s: float = Field(default=1.0, ge=0.05, le=5.0, allow_inf_nan=False, description="Zone-model time step (s)")
    record_every_s: float = Field(default=10.0, gt=0.0, le=600.0, allow_inf_nan=False,
                                  description="Interval of the recorded time series (s)")
    threads: int = Field(default=1, ge=1, le=64, description="Threads of the zone model's kernel (same results; "
                         "for idle cores only)")
    evacuate: bool = Field(default=False, description="Also evacuate the building in the same run (run kind "
                           "fire_evacuation: smoke slows people, RSET - ASET per floor)")

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: Any) -> FireRequest:
        """Field errors and cross-field problems together, so a bad request lists every problem at once."""
        import pydantic

        errors: list[dict] = []
        model = None
        try:
            model = handler(data)
        except pydantic.ValidationError as exc:
            errors = [{k: e[k] for k in ("type", "loc", "input", "ctx") if k in e} for e in exc.errors()]
        raw = data if isinstance(data, dict) else (model.model_dump() if model is not None else {})
        for field, value, msg in cross_problems(raw):
            errors.append({"type": pydantic_core.PydanticCustomError("request", msg), "loc": (field,), "input": value})
        if errors:
            raise pydantic.ValidationError.from_exception_data(cls.__name__, errors)
        return model


def cross_problems(raw: dict) -> list[tuple[str, Any, str]]:
    """(field, value, problem) of a request's values that are each valid alone but not together."""
    def num(name: str, default: float) -> float | None:
        v = raw.get(name, default)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else None

    out = []
    if raw.get("season") is not None and raw.get("t_outside_c") is not None:
        out.append(("t_outside_c", raw["t_outside_c"], f"give season={raw['season']!r} or t_outside_c, not both"))
    dt, rec, dur = num("dt_s", 1.0), num("record_every_s", 10.0), num("duration_s", 3600.0)
    if dt is not None and rec is not None:
        steps = rec / dt
        if abs(steps - round(steps)) > 1e-6 * steps or round(steps) < 1:
            out.append(("record_every_s", raw.get("record_every_s", rec),
                        f"must be a whole number of dt_s={dt!r} s steps"))
    if rec is not None and dur is not None and rec > dur:
        out.append(("record_every_s", raw.get("record_every_s", rec), f"exceeds duration_s={dur!r}"))
    return out


# ----------------------------------------------------------------------------- building of a request
def building_path(building: str) -> Path:
    """The file of ``building``: an example's by name, else the path given.

    Raises
    ------
    twin.errors.RequestError
        Naming ``building`` and the examples when it is neither an example nor an existing file.
    """
    from physics.fire_building import EXAMPLES
    from twin.errors import RequestError

    if building in EXAMPLES:
        return EXAMPLES[building]
    p = Path(building).expanduser()
    if not p.is_file():
        raise RequestError(f"building={building!r}: neither an example ({', '.join(sorted(EXAMPLES))}) nor an "
                           "existing fire building file (.toml or .json); list the examples with `twin fire "
                           "examples`", field="building", value=building)
    return p


def load_building(building: str):
    """The checked :class:`physics.fire_building.FireBuildingSpec` of ``building`` (example or file).

    Raises
    ------
    twin.errors.RequestError
        Naming ``building`` with every problem of the file.
    """
    from physics.fire_building import load_fire_building
    from twin.errors import DataError, RequestError, ValidationError

    path = building_path(building)
    try:
        return load_fire_building(path)
    except (DataError, ValidationError) as exc:
        raise RequestError(f"building={building!r}: {exc}", field="building", value=building) from exc


def floor_rooms(network, floor: int) -> list[str]:
    """Names (without the ``"<floor>/"`` prefix) of the rooms of ``floor`` that can burn (kind room)."""
    from physics.fire_network import COMPARTMENT_KINDS

    room = COMPARTMENT_KINDS.index("room")
    return [network.names[i].split("/", 1)[1] for i in network.on_storey(floor) if int(network.kind[i]) == room]


def origin_compartment(req: FireRequest, network) -> str:
    """The origin room's short name on ``req.floor`` (``req.compartment`` checked, or the first room).

    Raises
    ------
    twin.errors.RequestError
        Naming ``compartment`` (and listing the floor's rooms) or ``floor`` (a floor without rooms).
    """
    from twin.errors import RequestError

    rooms = floor_rooms(network, req.floor)
    if not rooms:
        raise RequestError(f"floor={req.floor!r}: storey L{req.floor + 1} has no room that can burn (only "
                           "lobby, corridor, refuge or shafts); pick another floor", field="floor", value=req.floor)
    if req.compartment is None:
        return rooms[0]
    name = req.compartment
    prefix = f"{req.floor}/"
    short = name[len(prefix):] if name.startswith(prefix) else name
    if short not in rooms:
        raise RequestError(f"compartment={name!r}: not a room of floor {req.floor} (L{req.floor + 1}); its rooms "
                           f"are {rooms}", field="compartment", value=name)
    return short


def evacuation_request(req: FireRequest):
    """(the ``fire_evacuation`` run kind, its request made of ``req``'s fields) for ``evacuate=True``.

    Raises
    ------
    twin.errors.RequestError
        Naming ``evacuate`` when that kind is not registered (``scenarios/fire_evacuation.py``).
    """
    from twin.errors import RequestError, ValidationError
    from twin.runkinds import get_kind

    try:
        kind = get_kind(EVACUATION_KIND)
    except ValidationError as exc:
        raise RequestError(f"evacuate=True: the run kind {EVACUATION_KIND!r} is not available ({exc})",
                           field="evacuate", value=True) from None
    fields = kind.request.model_fields
    params = {k: v for k, v in req.model_dump().items() if k in fields and k != "evacuate"}
    return kind, kind.validate(params)


def check_fire(req: FireRequest, city: Any = None) -> None:
    """Every check a run makes on a request, before anything runs (the building is read, no simulation).

    The building file (or example) loads and passes its checks; ``floor`` is one of its storeys; the
    compartment is one of that floor's rooms. Every problem found is listed in one error.

    Raises
    ------
    twin.errors.RequestError
        Naming the first field at fault; the message lists every problem.
    """
    from physics.fire_building import build_network
    from twin.errors import RequestError

    spec = load_building(req.building)  # nothing else can be checked without it
    n = spec.n_storeys
    if not 0 <= req.floor < n:
        problems = [("floor", req.floor, f"floor={req.floor!r}: {spec.name} has storeys 0-{n - 1} (0 = ground, "
                                         f"L1-L{n})")]
        if req.compartment is not None:
            problems.append(("compartment", req.compartment, f"compartment={req.compartment!r}: cannot be "
                             "checked without a valid floor"))
        raise RequestError("; ".join(p[2] for p in problems), field=problems[0][0], value=problems[0][1])
    origin_compartment(req, build_network(spec))
    if req.evacuate:
        kind, sub = evacuation_request(req)
        kind.precheck(sub, city)


def season_arg(req: FireRequest) -> str | float:
    """The ``season`` argument of :func:`physics.fire_sim.simulate_fire`: a name or the outside air in K."""
    if req.t_outside_c is not None:
        return req.t_outside_c + 273.15
    return req.season or "summer"


def sprinklers_arg(req: FireRequest) -> bool | None:
    """The ``sprinklers`` argument of :func:`physics.fire_sim.simulate_fire` (None: as the building says)."""
    return {"on": True, "off": False, "building": None}[req.sprinklers]


def sim_kwargs(req: FireRequest, network=None) -> dict[str, Any]:
    """Keyword arguments of :func:`physics.fire_sim.simulate_fire` for ``req`` (the building as a path)."""
    from physics.fire_building import build_network

    if network is None:
        network = build_network(load_building(req.building))
    return {"building": str(building_path(req.building)), "floor": req.floor,
            "compartment": origin_compartment(req, network), "growth": req.growth,
            "sprinklers": sprinklers_arg(req), "season": season_arg(req), "duration_s": req.duration_s,
            "dt_s": req.dt_s, "record_every_s": req.record_every_s}


# ----------------------------------------------------------------------------- run
def run_fire(req: FireRequest, ctx: RunContext):
    """Run the fire (:func:`physics.fire_sim.simulate_fire`) and return its Dataset (the ``fire.nc`` contract).

    The result, the building description and the wall time go to ``ctx.extras`` (``"result"``,
    ``"spec"``, ``"run_time_s"``) for the writer and the report.
    """
    from physics.fire_building import build_network
    from physics.fire_sim import simulate_fire

    if req.evacuate:  # the fire and the evacuation in one run: the fire_evacuation kind runs it
        kind, sub = evacuation_request(req)
        ctx.extras["delegate"] = (kind, sub)
        return kind.run(sub, ctx)
    spec = load_building(req.building)
    network = build_network(spec)
    kw = sim_kwargs(req, network)
    ctx.report(0.0, req.duration_s, message=f"{spec.name}: {spec.n_storeys} storeys, {network.n_compartments} "
               f"compartments; fire in {kw['compartment']} on L{req.floor + 1} (storey {req.floor})")

    def progress(t_s: float, duration_s: float, info: dict | None = None) -> None:
        extra = {k: v for k, v in (info or {}).items() if isinstance(v, int | float | str)}
        ctx.report(float(t_s), float(duration_s), **extra)

    t0 = time.perf_counter()
    res = simulate_fire(**kw, progress=progress, threads=req.threads)
    wall = time.perf_counter() - t0
    ds = res.dataset
    ds.attrs.setdefault("title", f"Fire on L{req.floor + 1} — {spec.name}")
    ctx.extras.update(result=res, spec=spec, run_time_s=wall)
    return ds


def write_fire(ds, out_dir, req: FireRequest, ctx: RunContext) -> RunOutputs:
    """fire.nc, events.jsonl, aset.csv, layers.png, tenability.png, hrr.png; the summary."""
    from physics.fire_io import summarise, write_fire_outputs

    if "delegate" in ctx.extras:
        kind, sub = ctx.extras["delegate"]
        return kind.write(ds, out_dir, sub, ctx)
    result = ctx.extras.get("result", ds)
    paths = write_fire_outputs(result, out_dir)
    return RunOutputs(paths=paths, summary=summarise(ds, run_time_s=ctx.extras.get("run_time_s")))


def fire_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The tower's storeys coloured by tenability on the time slider (layer kind ``fire_floors``).

    Raises
    ------
    twin.errors.ValidationError
        When the layer module (:mod:`viz.layers.fire_building`) is not installed: run without the map.
    """
    from twin.errors import ValidationError
    from viz.layers import build, kinds

    if "floor_status" not in ds:  # an evacuate=True run: the fire_evacuation kind's Dataset and layers
        from twin.runkinds import get_kind

        return get_kind(EVACUATION_KIND).layers(ds, warp=warp, max_px=max_px)
    if LAYER_KIND not in kinds():
        raise ValidationError(f"fire run: the map layer {LAYER_KIND!r} (viz/layers/fire_building.py) is not "
                              "installed; run with --no-map (map=False)")
    return [build(LAYER_KIND, ds)]


def map_available() -> bool:
    """True when the ``fire_floors`` map layer is registered (the map can be written)."""
    from viz.layers import kinds

    return LAYER_KIND in kinds()


def map_view(ds, view: dict) -> dict:
    """The map opens pitched 50° on the whole tower (:func:`viz.layers.fire_building.map_view`: 1.8 × its
    height across the page); without that module, pitched 50° and zoomed out a little."""
    try:
        from viz.layers.fire_building import map_view as tower_view
    except ImportError:
        return {**view, "zoom": min(view["zoom"] - 1.2, 18.0), "pitch": 50.0, "bearing": -20.0}
    return tower_view(ds, view)


def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The report's sections (:func:`physics.fire_report.report_sections`)."""
    from physics.fire_report import report_sections as sections

    kind = ((getattr(ctx, "extras", None) or {}).get("delegate") or (None,))[0]
    if kind is not None and kind.report_sections is not None:
        return kind.report_sections(ds, summary, ctx)
    return sections(ds, summary, ctx)


def describe(params: dict[str, Any]) -> str:
    b = str(params.get("building", "?"))
    name = Path(b).stem if b.endswith((".toml", ".json")) else b
    floor = params.get("floor")
    where = f"L{floor + 1}" if isinstance(floor, int) else "?"
    return f"{name}, {where}, {params.get('growth', 'fast')}, sprinklers {params.get('sprinklers', 'building')}"


def _command():
    from twin.cli.fire import fire

    return fire


FIRE = register_kind(RunKind(
    name=KIND, title="High-rise fire", request=FireRequest, console_request=FireConsoleRequest,
    run=run_fire, write=write_fire, layers=fire_layers, report_sections=report_sections, output="fire.nc",
    cli_name="fire", command=_command, describe=describe,
    summary_keys=("first_detector_s", "flashover_s", "storeys_untenable_by_min", "run_time_s"),
    duration_s=lambda req: req.duration_s, check=check_fire, map_view=map_view,
))

__all__ = ["FIRE", "GROWTHS", "FireConsoleRequest", "FireRequest", "building_path", "check_fire", "describe",
           "evacuation_request", "fire_layers", "floor_rooms", "load_building", "map_available", "map_view", "origin_compartment",
           "run_fire", "season_arg", "sim_kwargs", "sprinklers_arg", "write_fire"]
