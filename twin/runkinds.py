"""Run kinds: how a model plugs into the twin's one run pipeline, CLI, console, map and report.

A model registers one :class:`RunKind` — its request schema, its runner, how
it writes its outputs, its map layers and its report sections — instead of
being named in a central switch::

    # physics/ponding.py (a model's component module registers its kind)
    from twin.runkinds import RunKind, register_kind

    register_kind(RunKind(name="ponding", title="Ponding", request=PondingRequest,
                          run=run_ponding, write=write_ponding, layers=ponding_layers))

The command line (``twin <cli_name> run``), the console's run list and form,
the offline map and the report then find it through :func:`kinds`.

Discovery (the first time :func:`kinds` or :func:`get_kind` is called) imports

* every public module of the model packages :data:`MODEL_PACKAGES`
  (``physics``, ``agents``, ``scenarios``) whose source calls
  ``register_kind``, so a new model module is found without touching any
  other file (keep such a module's top-level imports light: it is imported
  for ``twin --help``);
* the modules named by the entry-point group ``twin.models`` (a model in
  another distribution);
* the modules or ``.py`` files listed in ``$TWIN_PLUGINS`` (comma-separated).

A plug-in that fails to import gives a :class:`RuntimeWarning`, not a crash
(xarray's backends do the same). A module imported any other way (a test
importing a file) registers the same way. This module imports no model.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from twin.errors import RequestError, RunCancelled, ValidationError

MODEL_PACKAGES = ("physics", "agents", "scenarios")
ENTRY_POINT_GROUP = "twin.models"
PLUGINS_ENV = "TWIN_PLUGINS"

Progress = Callable[[dict[str, Any]], None]


@dataclass
class RunContext:
    """What a runner gets besides its request.

    Attributes
    ----------
    city : twin.city.City or None
        The city the caller works on (the console's, the CLI's ``--city``).
    out_dir : Path
        The run's output folder (created by the pipeline).
    progress : callable(dict) or None
        Called by the runner with at least ``{"sim_s", "duration_s"}`` (and
        ``steps``, ``dt``... as the model has them) while it runs.
    extras : dict
        What the runner hands on to its ``write``/``layers`` (e.g. the
        city's districts for a map); not stored.
    cancel : threading.Event or callable() -> bool, optional
        Set (or true) when the caller wants the run stopped: the next
        :meth:`report` raises :class:`twin.errors.RunCancelled`, so every kind
        stops at its next progress report without code of its own.
    """

    city: Any = None
    out_dir: Path | None = None
    progress: Progress | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    cancel: threading.Event | Callable[[], bool] | None = None

    @property
    def cancelled(self) -> bool:
        """True once the caller asked the run to stop."""
        c = self.cancel
        if c is None:
            return False
        return c.is_set() if isinstance(c, threading.Event) else bool(c())

    def check_cancelled(self) -> None:
        """Raise :class:`twin.errors.RunCancelled` if the caller asked the run to stop."""
        if self.cancelled:
            raise RunCancelled("the run was cancelled")

    def report(self, sim_s: float, duration_s: float, **more: Any) -> None:
        """Report progress of the run (a no-op without a callback).

        Raises
        ------
        twin.errors.RunCancelled
            When :attr:`cancel` is set: the run stops here.
        """
        self.check_cancelled()
        if self.progress is not None:
            self.progress({"phase": "running", "sim_s": float(sim_s), "duration_s": float(duration_s),
                           "fraction": min(1.0, sim_s / duration_s) if duration_s > 0 else 1.0, **more})


@dataclass(frozen=True)
class RunOutputs:
    """What a kind's ``write`` returns: the files it wrote (by role) and the run's summary."""

    paths: dict[str, Path]
    summary: dict[str, Any]


@dataclass(frozen=True)
class RunKind:
    """One kind of run a model offers (see the module docstring).

    Attributes
    ----------
    name : str
        Identifier stored with each run and used by the console's API
        (``[a-z][a-z0-9_]*``).
    title : str
        Human name, e.g. "Flood forecast".
    request : pydantic model class
        The validated parameters of a run (every field typed, extra fields
        refused); the CLI builds one from its options, the pipeline checks it
        before anything runs.
    run : callable(request, RunContext) -> xarray.Dataset
        Runs the model; reports progress through the context.
    write : callable(Dataset, out_dir, request, RunContext) -> RunOutputs
        Writes the standard files (the main NetCDF named :attr:`output`
        among them) and returns the summary.
    layers : callable(Dataset, warp=None, max_px=...) -> list of viz.scene.LayerSet
        The run's map layers, built with :mod:`viz.layers` kinds; the first
        one is the main layer.
    report_sections : callable(Dataset, summary, RunContext) -> list of str, optional
        HTML ``<section>`` blocks of the run's report (default: the summary
        as a table).
    console_request : pydantic model class, optional
        The subset of ``request`` the console's form may send (default:
        ``request``); keep file paths and expert switches out of it.
    output : str
        File name of the main NetCDF in the run folder.
    cli_name : str, optional
        Name of the command family (default: ``name``). Two words
        (``"evacuate building"``) make the kind the sub-command ``building``
        of the group ``twin evacuate`` (see :mod:`twin.cli`).
    command : callable() -> click.Command, optional
        The command family; default: ``twin <cli_name> run`` made from the
        request's fields (:func:`twin.cli.kinds.kind_command`); for a
        two-word ``cli_name``, the command itself (renamed to the second
        word) or, without one, that ``run`` command as ``twin <family> <member>``.
    describe : callable(params dict) -> str, optional
        One line for the console's run list.
    summary_keys : tuple of str
        Summary entries the console shows for a finished run.
    duration_s : callable(request) -> float, optional
        Simulated length of a run (progress fractions).
    check : callable(request, city) -> None, optional
        Every check the model makes on a request that pydantic cannot make
        alone (a storm length against its block length, district names
        against the city's...), run by :meth:`precheck` before anything
        starts: the pipeline and the console call it, so a request the
        model would refuse mid-run is refused at once. Raise
        :class:`twin.errors.RequestError` naming the field and the value
        (a plain ``ValidationError`` is blamed on the whole request). Keep
        it cheap (no grid, no model): it runs while the console's client waits.
    compare : str, optional
        Output variable whose B − A difference the console's A/B compare
        shows (e.g. ``"max_depth"``); None: the first 2-D variable of :attr:`output`.
    map_view : callable(Dataset, view dict) -> view dict, optional
        Adjusts the view the run's map opens on (``longitude``, ``latitude``,
        ``zoom``, and deck.gl's ``pitch``, ``bearing``): e.g. a building's
        extruded floors seen pitched. Default: straight down on the run's extent.
    rank : int
        Listing order within the kind's package (lower first, then registration
        order). The first kind listed is the console's default run: the flood
        forecast registers rank 0 so that a model added to ``physics`` (found
        in alphabetical order) does not take its place.
    """

    name: str
    title: str
    request: type
    run: Callable[..., Any]
    write: Callable[..., RunOutputs]
    layers: Callable[..., list]
    report_sections: Callable[..., list[str]] | None = None
    console_request: type | None = None
    output: str = "output.nc"
    cli_name: str | None = None
    command: Callable[[], Any] | None = None
    describe: Callable[[Mapping[str, Any]], str] | None = None
    summary_keys: tuple[str, ...] = ()
    duration_s: Callable[[Any], float] | None = None
    check: Callable[[Any, Any], None] | None = None
    compare: str | None = None
    map_view: Callable[[Any, dict], dict] | None = None
    rank: int = 100

    @property
    def command_name(self) -> str:
        return self.cli_name or self.name.replace("_", "-")

    @property
    def form_request(self) -> type:
        return self.console_request or self.request

    def validate(self, params: Mapping[str, Any] | Any, *, context: dict | None = None,
                 console: bool = False) -> Any:
        """The request model of ``params`` (a mapping or a model already), or a ValidationError.

        The error names each offending field and the value given, so a bad
        run is refused before anything runs.
        """
        import pydantic

        model = self.form_request if console else self.request
        if isinstance(params, self.request):
            return params
        if isinstance(params, pydantic.BaseModel):
            params = params.model_dump()
        try:
            req = model.model_validate(dict(params), context=context)
            # a console request is a subset: the run takes the full request with the rest defaulted
            return req if model is self.request else self.request.model_validate(req.model_dump(),
                                                                                 context=context)
        except pydantic.ValidationError as exc:
            raise ValidationError(f"{self.name} run: " + describe_errors(exc)) from None

    def precheck(self, request: Any, city: Any = None) -> None:
        """Run the kind's :attr:`check` on a validated request (nothing without one).

        Raises
        ------
        twin.errors.RequestError
            Naming the field and the value the model refuses.
        """
        if self.check is None:
            return
        try:
            self.check(request, city)
        except RequestError:
            raise
        except ValidationError as exc:
            raise RequestError(f"{self.name} run: {exc}", field="request", value=None) from exc

    def describe_params(self, params: Mapping[str, Any]) -> str:
        if self.describe is not None:
            return self.describe(params)
        return ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)


def describe_errors(exc: Any) -> str:
    """'field=value: reason; ...' of a pydantic ValidationError."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "request"
        parts.append(f"{loc}={e.get('input')!r}: {e['msg']}")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- registry
_KINDS: dict[str, RunKind] = {}
_lock = threading.RLock()
_discovered = False
_discovery_done = threading.Event()
_discoverer: int | None = None  # the thread importing the plug-ins


def register_kind(kind: RunKind, *, replace: bool = False) -> RunKind:
    """Add ``kind`` to the registry (returns it).

    Raises
    ------
    ValidationError
        When the name is malformed, or taken by another kind (the same kind
        registered again, e.g. on a module re-import, is accepted), or the
        command name collides with another kind's.
    """
    import re

    if not isinstance(kind, RunKind):
        raise ValidationError(f"register_kind({kind!r}): give a twin.runkinds.RunKind")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", kind.name or ""):
        raise ValidationError(f"run kind name {kind.name!r}: use lower-case letters, digits and _ "
                              "(starting with a letter)")
    with _lock:
        old = _KINDS.get(kind.name)
        if old is not None and not replace and not _same(old, kind):
            raise ValidationError(f"run kind {kind.name!r} is already registered (by "
                                  f"{old.run.__module__}): pick another name or pass replace=True")
        for other in _KINDS.values():
            if other.name != kind.name and other.command_name == kind.command_name:
                raise ValidationError(f"run kind {kind.name!r}: command name {kind.command_name!r} is "
                                      f"taken by run kind {other.name!r}; set cli_name")
        _KINDS[kind.name] = kind
    return kind


def _same(a: RunKind, b: RunKind) -> bool:
    return (a.run.__module__, a.run.__qualname__) == (b.run.__module__, b.run.__qualname__)


def unregister_kind(name: str) -> None:
    """Remove a kind (tests clean up with it)."""
    with _lock:
        _KINDS.pop(name, None)


def kinds() -> list[RunKind]:
    """Registered kinds: those of :data:`MODEL_PACKAGES` first, in the packages' order (the flood
    of ``physics`` before the agents), then the others; within each, by :attr:`RunKind.rank`, then in
    registration order.

    The order does not depend on which model module happened to be imported first (a test or a
    command importing ``agents.district_run`` before discovery), so "the first kind" — the
    console's default — is stable.
    """
    discover()
    with _lock:
        listed = list(_KINDS.values())
    return sorted(listed, key=lambda k: (_package_rank(k.run.__module__), k.rank))


def _package_rank(module: str) -> int:
    top = module.split(".", 1)[0]
    return MODEL_PACKAGES.index(top) if top in MODEL_PACKAGES else len(MODEL_PACKAGES)


def get_kind(name: str) -> RunKind:
    """The kind called ``name`` (or whose command name is ``name``).

    Raises
    ------
    ValidationError
        For an unknown kind, listing the known ones.
    """
    discover()
    with _lock:
        if name in _KINDS:
            return _KINDS[name]
        for k in _KINDS.values():
            if k.command_name == name:
                return k
        known = sorted(_KINDS)
    raise ValidationError(f"unknown run kind {name!r}: known kinds are {known}; a model registers "
                          "its kind with twin.runkinds.register_kind")


# ----------------------------------------------------------------------------- discovery
def discover(*, force: bool = False) -> None:
    """Import the model modules once (see the module docstring).

    Other threads asking meanwhile wait until every plug-in is imported, so
    none sees a partial registry; the importing thread itself does not wait.
    """
    global _discovered, _discoverer
    with _lock:
        first = force or not _discovered
        if first:
            _discovered, _discoverer = True, threading.get_ident()
            _discovery_done.clear()
    if not first:
        if _discoverer != threading.get_ident():
            _discovery_done.wait()
        return
    try:
        for pkg in MODEL_PACKAGES:
            for name in _package_modules(pkg):
                _load(name)
        for ep in _entry_points():
            _load(ep.value, label=f"entry point {ep.name!r}")
        for item in os.environ.get(PLUGINS_ENV, "").split(","):
            if item.strip():
                _load(item.strip(), label=f"${PLUGINS_ENV}")
    finally:
        _discovery_done.set()


def _package_modules(pkg: str) -> list[str]:
    """Public modules of ``pkg`` whose source registers a kind.

    Reading the source first keeps the registry cheap (``twin --help``): the
    other model modules, with their numba kernels and xarray, are not imported.
    """
    try:
        mod = importlib.import_module(pkg)
    except ImportError:
        return []
    out = []
    for m in pkgutil.iter_modules(getattr(mod, "__path__", None) or []):
        if m.name.startswith("_"):
            continue
        spec = importlib.util.find_spec(f"{pkg}.{m.name}")
        origin = getattr(spec, "origin", None)
        try:
            registers = origin is None or "register_kind" in Path(origin).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):  # compiled or unreadable: import it to find out
            registers = True
        if registers:
            out.append(f"{pkg}.{m.name}")
    return out


def _entry_points() -> list:
    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # pragma: no cover - broken metadata of some distribution
        return []


def _load(target: str, *, label: str | None = None) -> None:
    """Import a module by name (``pkg.mod``, ``pkg.mod:attr``) or a ``.py`` file; warn on failure."""
    try:
        if target.endswith(".py"):
            load_file(target)
        else:
            importlib.import_module(target.split(":", 1)[0])
    except Exception as exc:  # a broken plug-in must not take the CLI or console down
        warnings.warn(f"model plug-in {target!r}{f' ({label})' if label else ''} failed to load: "
                      f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3)


def load_file(path: str | os.PathLike) -> Any:
    """Import a plug-in module from a ``.py`` file (its kinds and layers register on import)."""
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise ValidationError(f"plug-in file {str(p)!r} does not exist")
    name = f"twin_plugin_{p.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, p)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


__all__ = ["RunContext", "RunKind", "RunOutputs", "describe_errors", "discover", "get_kind", "kinds",
           "load_file", "register_kind", "unregister_kind"]
