"""Coupling modules: how a model joins a coupled run on the twin's one clock.

A coupling declares what it reads and writes and when it runs; the runner
(:mod:`scenarios.runner`) orders and drives the enabled ones::

    # scenarios/couplings/ponding.py  (a new model adds this file and nothing else)
    from scenarios.coupling import Coupling, register_coupling

    register_coupling(Coupling(
        name="ponding", phase="physics", period_s=60.0,
        reads=("rain_rate",), writes=("water_depth", "event:pond_full"),
        setup=setup_ponding, step=step_ponding))

Names in ``reads`` and ``writes``:

* a plain name (``water_depth``) is a field of :class:`twin.state.TwinState`
  (dynamic, or a static layer of the run's grid) or an object the couplings
  share through :attr:`CouplingContext.shared` (``road_graph``);
* ``event:<kind>`` is an event kind of the twin's event log (``event:road_closed``).

A name read by an enabled coupling must be written by an enabled coupling, be
a static layer of the state, or be declared external by the run's config
(e.g. injects of a drill); :func:`check_couplings` lists every problem at once.

``optional_reads`` are names a coupling uses when they are there and does
without when not (dispatch takes flood rescues from ``water_depth`` when a
flood runs, and incidents from ``event:incident`` when injects or debris make
them). They never make a run refuse nor pull a writer into a scenario; when a
writer is enabled in the same phase, it is still ordered before the reader
(:func:`scenarios.runner.schedule`), exactly like a writer of a required read.

Phases, in their order within one instant: :data:`PHASES` =
``forcing < physics < consequences < response``.

Discovery: the first call of :func:`couplings` or :func:`get_coupling`
imports every module of :mod:`scenarios.couplings` whose name does not start
with ``_`` (the pattern of :mod:`twin.runkinds` and :mod:`viz.layers`): no
central switch names a model. A module imported any other way (a test)
registers the same way.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from twin.domain import Domain
    from twin.events import Event
    from twin.state import TwinState

#: Stages within one instant, in the order they run.
PHASES = ("forcing", "physics", "consequences", "response")
#: Prefix of event kinds in ``reads``/``writes``.
EVENT_PREFIX = "event:"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RESOURCE = re.compile(r"(event:)?[a-z][a-z0-9_]*")


@dataclass
class CouplingContext:
    """What a coupling's ``setup`` and ``step`` get (one context per coupling and run).

    Attributes
    ----------
    name : str
        The coupling's name.
    params : dict
        The coupling's parameters from the run's config (``period_s`` removed).
    state : twin.state.TwinState
        The run's state (fields, clock, event log), shared by every coupling.
    domain : twin.domain.Domain or None
        The run's grid, masks and districts.
    shared : dict
        Objects the couplings share by name (e.g. ``"road_graph"``), shared by every coupling.
    rng : numpy.random.Generator
        This coupling's generator, seeded from the run's seed and the coupling's name.
    inputs : dict
        Input files of the run by role (their sha256 go to the manifest); add with :meth:`add_input`.
    own : dict
        This coupling's private objects for the run (its model, its counters).
    summary : dict
        What the coupling reports in ``summary.json`` (filled by the coupling).
    duration_s : float or None
        The run's simulated length (s).
    period_s : float or None
        This coupling's step in this run (s): its default or the config's ``period_s``.
    """

    name: str
    params: dict[str, Any]
    state: TwinState
    domain: Domain | None
    shared: dict[str, Any]
    rng: np.random.Generator
    inputs: dict[str, Path]
    own: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    period_s: float | None = None

    @property
    def city(self) -> Any:
        """The run's :class:`twin.city.City` (None without a domain)."""
        return None if self.domain is None else self.domain.city

    def add_input(self, role: str, path: str | Path) -> None:
        """Record an input file (its sha256 goes to the run's manifest)."""
        self.inputs[str(role)] = Path(path)

    def emit(self, kind: str, message: str = "", *, severity: str = "info",
             data: dict[str, Any] | None = None) -> Event:
        """Record an event at the clock's current time, from this coupling.

        ``wall_time`` is the simulated instant (``clock.now``), not the real
        time: a coupled run is a simulation, and its event log must be the
        same for the same config and seed.
        """
        from twin.events import Event

        clock = self.state.clock
        event = Event.parse({"time_s": clock.now_s, "wall_time": clock.now, "kind": kind,
                             "source": self.name, "severity": severity, "message": message,
                             "data": data or {}})
        self.state.events.append(event)
        return event


Setup = Callable[[CouplingContext], None]
Step = Callable[[CouplingContext, float, float], None]


@dataclass(frozen=True)
class Coupling:
    """One model's part in a coupled run.

    Attributes
    ----------
    name : str
        Identifier (``[a-z][a-z0-9_]*``), the key of its parameters in the run's config.
    reads, writes : tuple of str
        State fields, shared objects and ``event:<kind>`` names (module docstring).
    optional_reads : tuple of str
        Names used when present and not required (module docstring): ordered
        after their writers like ``reads``, never refused when nobody writes them.
    period_s : float
        Default step (s) on the clock; the config's ``period_s`` overrides it.
    phase : str
        One of :data:`PHASES`: its stage within an instant.
    setup : callable(ctx)
        Builds the coupling's objects (at t = 0, in the run's order).
    step : callable(ctx, t, dt)
        Advances to simulation time ``t`` (s) by ``dt`` (s); called by the clock.
    finish : callable(ctx), optional
        Called once at the end (fill ``ctx.summary``).
    save : callable(ctx) -> dict, optional
        The coupling's own state at a checkpoint: numpy arrays and JSON-able
        values by key (what the twin state does not hold: a model's internals).
    restore : callable(ctx, dict), optional
        Puts a :attr:`save` dict back, after ``setup`` on a resumed run.
        A run with checkpoints needs both from every enabled coupling.
    doc : str
        One line for listings.
    kinds : tuple of str
        The run kinds (:mod:`twin.runkinds`) this coupling stands for in a
        scenario file: a scenario's ``[models.<kind>]`` section enables every
        coupling listing ``<kind>`` (e.g. the flood coupling lists
        ``"flood_forecast"``). Empty: enabled only by name or as the provider
        of a name another enabled coupling reads (road closures).
    from_scenario : callable(section, scenario) -> dict, optional
        The coupling's parameters from the scenario's model section (a dict,
        the section as written plus the scenario's shared values,
        :data:`scenarios.schema.SHARED_FIELDS`) and the validated
        :class:`scenarios.schema.Scenario`. Default: no parameters.
    layers : callable(ctx, times_s) -> list, optional
        Map layers (:mod:`viz.layers` objects) of what the coupling made, on
        the run's frame times ``times_s`` (s), for the run's one-slider map;
        called after ``finish``.
    tables : callable(ctx) -> dict, optional
        Tables by name (``pandas.DataFrame`` or ``geopandas.GeoDataFrame``),
        written as ``<name>.parquet`` (GeoParquet when they have geometry).
    report : callable(ctx) -> list of str, optional
        HTML sections of the run's report.
    files : callable(ctx, out_dir) -> dict, optional
        Files of the coupling's own format (a building model's NetCDF over
        storeys, not a raster of ``fields.nc``) written into the run's folder
        ``out_dir``; returns their paths by name. Called after ``finish`` with
        the tables; a failure is listed in the summary's ``output_problems``.
    map_view : callable(ctx, view) -> dict, optional
        The view the run's map opens on, given the straight-down view of the
        grid (``longitude``, ``latitude``, ``zoom``): e.g. a building model's
        pitched view of its tower. The last coupling of the schedule that has
        one wins; a failure is listed and the grid's view kept.
    """

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    period_s: float
    phase: str
    setup: Setup
    step: Step
    finish: Callable[[CouplingContext], None] | None = None
    save: Callable[[CouplingContext], dict[str, Any]] | None = None
    restore: Callable[[CouplingContext, dict[str, Any]], None] | None = None
    doc: str = ""
    kinds: tuple[str, ...] = ()
    from_scenario: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    layers: Callable[[CouplingContext, Any], list] | None = None
    tables: Callable[[CouplingContext], dict[str, Any]] | None = None
    report: Callable[[CouplingContext], list[str]] | None = None
    files: Callable[[CouplingContext, Path], dict[str, Path]] | None = None
    map_view: Callable[[CouplingContext, dict[str, float]], dict[str, float]] | None = None
    optional_reads: tuple[str, ...] = ()

    @property
    def all_reads(self) -> tuple[str, ...]:
        """``reads`` then ``optional_reads``: every name the coupling may read (for the run's order)."""
        return self.reads + self.optional_reads

    @property
    def resumable(self) -> bool:
        """True when the coupling can be checkpointed and resumed (has save and restore)."""
        return self.save is not None and self.restore is not None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", tuple(self.reads))
        object.__setattr__(self, "writes", tuple(self.writes))
        object.__setattr__(self, "optional_reads", tuple(self.optional_reads))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        problems = declaration_problems(self)
        if problems:
            raise ValidationError(f"coupling {self.name!r}: " + "; ".join(problems))

    @property
    def phase_rank(self) -> int:
        return PHASES.index(self.phase)


def declaration_problems(c: Coupling) -> list[str]:
    """What is wrong with a coupling's declaration (empty when nothing)."""
    out = []
    if not isinstance(c.name, str) or not _NAME.fullmatch(c.name):
        out.append(f"name={c.name!r}: use lower-case letters, digits and _ (starting with a letter)")
    if c.phase not in PHASES:
        out.append(f"phase={c.phase!r}: use one of {list(PHASES)}")
    try:
        period = float(c.period_s)
    except (TypeError, ValueError):
        period = math.nan
    if not (math.isfinite(period) and period > 0):
        out.append(f"period_s={c.period_s!r}: give a finite number of seconds > 0")
    for what, names in (("reads", c.reads), ("writes", c.writes), ("optional_reads", c.optional_reads)):
        for n in names:
            if not isinstance(n, str) or not _RESOURCE.fullmatch(n):
                out.append(f"{what} entry {n!r}: give a field name or 'event:<kind>' "
                           "(lower-case letters, digits and _)")
    both = sorted(set(c.reads) & set(c.writes))
    if both:
        out.append(f"reads and writes both name {both}: a coupling that updates a name writes it")
    twice = sorted(set(c.optional_reads) & set(c.reads))
    if twice:
        out.append(f"optional_reads and reads both name {twice}: a name is read either always (reads) "
                   "or when present (optional_reads)")
    both = sorted(set(c.optional_reads) & set(c.writes))
    if both:
        out.append(f"optional_reads and writes both name {both}: a coupling that updates a name writes it")
    for what, fn in (("setup", c.setup), ("step", c.step)):
        if not callable(fn):
            out.append(f"{what}={fn!r} is not callable")
    return out


# ----------------------------------------------------------------------------- registry
_COUPLINGS: dict[str, Coupling] = {}
_lock = threading.RLock()
_loaded = False
PACKAGE = "scenarios.couplings"


def register_coupling(coupling: Coupling, *, replace: bool = False) -> Coupling:
    """Add ``coupling`` to the registry (returns it).

    Raises
    ------
    ValidationError
        When it is not a :class:`Coupling`, or its name is taken by another
        coupling (the same one registered again on a re-import is accepted).
    """
    if not isinstance(coupling, Coupling):
        raise ValidationError(f"register_coupling({coupling!r}): give a scenarios.coupling.Coupling")
    with _lock:
        old = _COUPLINGS.get(coupling.name)
        if old is not None and not replace and _origin(old) != _origin(coupling):
            raise ValidationError(f"coupling {coupling.name!r} is already registered (by "
                                  f"{old.step.__module__}): pick another name or pass replace=True")
        _COUPLINGS[coupling.name] = coupling
    return coupling


def _origin(c: Coupling) -> tuple[str, str]:
    return (getattr(c.step, "__module__", ""), getattr(c.step, "__qualname__", ""))


def unregister_coupling(name: str) -> None:
    """Remove a coupling (tests clean up with it)."""
    with _lock:
        _COUPLINGS.pop(name, None)


def _discover() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        pkg = importlib.import_module(PACKAGE)
        for m in pkgutil.iter_modules(pkg.__path__):
            if not m.name.startswith("_"):
                importlib.import_module(f"{PACKAGE}.{m.name}")


def couplings() -> dict[str, Coupling]:
    """The registered couplings by name (after importing :mod:`scenarios.couplings`)."""
    _discover()
    with _lock:
        return dict(_COUPLINGS)


def get_coupling(name: str) -> Coupling:
    """The coupling called ``name``; a ValidationError listing the known ones."""
    known = couplings()
    if name not in known:
        raise ValidationError(f"unknown coupling {name!r}: known couplings are {sorted(known)}; "
                              "a model registers one with scenarios.coupling.register_coupling")
    return known[name]


# ----------------------------------------------------------------------------- checks
def check_couplings(enabled: Iterable[Coupling], *, static: Iterable[str] = (),
                    external: Iterable[str] = ()) -> None:
    """Refuse a set of couplings whose reads nobody provides, listing every problem.

    Parameters
    ----------
    enabled : couplings of one run
    static : names the state holds from the start (its static layers)
    external : names the run's config declares as coming from outside (injects)

    Raises
    ------
    ValidationError
        Naming, for every unprovided read, the coupling, the name and who could write it.
    """
    enabled = list(enabled)
    problems = provider_problems(enabled, static=static, external=external)
    if problems:
        raise ValidationError("coupled run refused: " + "; ".join(problems))


def provider_problems(enabled: Iterable[Coupling], *, static: Iterable[str] = (),
                      external: Iterable[str] = ()) -> list[str]:
    """Each read of ``enabled`` that no enabled coupling writes and is neither static nor external."""
    enabled = list(enabled)
    written = {n for c in enabled for n in c.writes}
    given = set(static) | set(external)
    registered = _COUPLINGS if _loaded else {}
    out = []
    for c in enabled:
        for n in c.reads:
            if n in written or n in given:
                continue
            could = sorted(o.name for o in registered.values() if n in o.writes)
            hint = (f"enable {' or '.join(could)}" if could
                    else "no registered coupling writes it; declare it external or add a coupling")
            out.append(f"coupling {c.name!r} reads {n!r}, which no enabled coupling writes ({hint})")
    return out


__all__ = ["EVENT_PREFIX", "PHASES", "Coupling", "CouplingContext", "check_couplings", "couplings",
           "declaration_problems", "get_coupling", "provider_problems", "register_coupling",
           "unregister_coupling"]
