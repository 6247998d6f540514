"""Map layer kinds: one small module per kind, found through a registry.

A kind is a function returning a :class:`viz.scene.LayerSet` (deck.gl layers,
legends, optional time frames), registered under a name::

    # viz/layers/slope_failure.py  (a later model adds this file and nothing else)
    from viz.layers import register
    from viz.scene import LayerSet

    @register("slope_failure")
    def slope_failure(prob, *, layer_id="slope_failure") -> LayerSet:
        ...

Every module of this package whose name does not start with ``_`` is
imported the first time the registry is used, so a new module is picked up
without touching any other.  A module elsewhere (a test, a plugin) registers
the same way once it is imported.

Built-in kinds: basemap, roads, metro, flood_depth, flood_max_depth,
flood_arrival, sensors, alerts, diff.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from twin.errors import ValidationError
from viz.scene import LayerSet

Builder = Callable[..., LayerSet]

_REGISTRY: dict[str, Builder] = {}
_loaded = False


def register(kind: str, *, replace: bool = False) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn`` as the builder of layer ``kind``.

    Raises
    ------
    ValidationError
        When ``kind`` is empty or already registered by another function
        (pass ``replace=True`` to override on purpose).
    """
    if not isinstance(kind, str) or not kind.strip():
        raise ValidationError(f"layer kind {kind!r}: give a non-empty name")

    def deco(fn: Builder) -> Builder:
        old = _REGISTRY.get(kind)
        if old is not None and not replace and \
                (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValidationError(
                f"layer kind {kind!r} is already registered by {old.__module__}.{old.__qualname__}: "
                "pick another name or pass replace=True")
        _REGISTRY[kind] = fn
        return fn

    return deco


def unregister(kind: str) -> None:
    """Remove a kind (tests use it to clean up)."""
    _REGISTRY.pop(kind, None)


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def kinds() -> list[str]:
    """Registered kinds, in registration order."""
    _load_builtin()
    return list(_REGISTRY)


def builder(kind: str) -> Builder:
    """The builder of ``kind``.

    Raises
    ------
    ValidationError
        For an unknown kind, listing the known ones.
    """
    _load_builtin()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ValidationError(
            f"unknown layer kind {kind!r}: known kinds are {sorted(_REGISTRY)}; add a module to "
            "viz/layers/ that decorates its builder with @register(kind)") from None


def build(kind: str, /, *args, **kwargs) -> LayerSet:
    """Build one layer set of ``kind`` (arguments as that builder takes them)."""
    out = builder(kind)(*args, **kwargs)
    if not isinstance(out, LayerSet):
        raise ValidationError(f"layer kind {kind!r} returned {type(out).__name__}, not a LayerSet")
    return out
