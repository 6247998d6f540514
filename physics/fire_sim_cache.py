"""What a fire run derives from its network alone, made once per network object and shared by the runs on it.

An ensemble's members run one after another on one prepared network (:func:`physics.fire_sim.prepare_building`,
:mod:`physics.fire_window`'s windows); each member used to rebuild its device set, escape routes, storey groups and
façade windows, ~2 ms of a ~75 ms windowed member. :func:`per_network` keeps them with the network object (freed
with it) so they are made once. What it holds is read only: a run must not modify it (the network itself is read
only during a run).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

_CACHE: dict[int, dict[Hashable, Any]] = {}
_LOCK = threading.Lock()


def per_network(network: Any, key: Hashable, make: Callable[[], Any]) -> Any:
    """``make()`` once per (``network`` object, ``key``); later calls return the same object."""
    with _LOCK:
        store = _CACHE.get(id(network))
        if store is None:
            store = _CACHE[id(network)] = {}
            weakref.finalize(network, _CACHE.pop, id(network), None)
        if key in store:
            return store[key]
    value = make()
    with _LOCK:
        return store.setdefault(key, value)
