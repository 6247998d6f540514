"""One writer at a time across bridge processes sharing a store, without SQLite's sleeping waits.

SQLite (WAL) admits one writer: a second process whose ``BEGIN IMMEDIATE`` finds
the write lock taken waits in SQLite's busy handler, which *sleeps* 1, 2, 5, 10,
15, 20, 25, 25, 25, 50, 50, 100 ms ... between retries. With two bridges on one
shared subscription each commit holds the lock through its WAL fsync (1.5-8 ms on
a loaded disk), so the waiting bridge keeps oversleeping the release: measured
70-140 such sleeps of 0.1-0.8 s in total per bridge in a 5 s run of two bridges
(none with one), during which the lock sat free and that bridge's messages waited.

:class:`WriteLock` is an exclusive ``flock`` on a file next to the database,
taken around every write transaction of the bridge: a waiter blocks in the
kernel and wakes as soon as the holder commits (the kernel releases it when a
process dies, even by ``kill -9``). Lock order is always this lock, then SQLite's,
so it cannot deadlock with writers that do not use it (the CLI, another tool):
those still meet SQLite's busy handler, as before.

:class:`LockedWrites` wraps a :class:`~twin.store.Store`: its write methods run
under the lock, everything else is passed through.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twin.errors import StoreError

LOCK_NAME = "bridge-write.lock"
#: Store methods that open a write transaction (run under the lock).
WRITE_METHODS = frozenset({"put_ingested", "write_prepared", "put_observation", "put_observations", "put_event",
                           "put_dead_letter", "put_dead_letters", "put_sensors"})

__all__ = ["LOCK_NAME", "LockedWrites", "WriteLock"]


class WriteLock:
    """Exclusive cross-process lock (``flock``) plus an in-process mutex.

    ``flock`` belongs to the open file, so threads of one process would share it:
    the mutex makes them take turns first.

    Parameters
    ----------
    path : path
        The lock file (created if missing; its content is never used).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the bridge write lock {self.path}: {exc}; "
                             "check the store directory's permissions") from exc
        self._mutex = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the duration of the ``with`` block."""
        with self._mutex:
            if self._fd < 0:
                raise StoreError(f"the bridge write lock {self.path} is closed")
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (idempotent)."""
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class LockedWrites:
    """A store whose write methods (:data:`WRITE_METHODS`) run under a :class:`WriteLock`.

    Parameters
    ----------
    store : twin.store.Store
        The store; every other attribute is the store's own.
    lock : WriteLock, optional
        Default: a lock on ``<store root>/bridge-write.lock``.
    """

    def __init__(self, store: Any, lock: WriteLock | None = None) -> None:
        self.store = store
        self.lock = lock if lock is not None else WriteLock(Path(store.root) / LOCK_NAME)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name not in WRITE_METHODS:
            return attr
        lock = self.lock
        if name == "put_ingested":  # validation and row building need no turn: only the transaction does
            store = self.store

            def put_ingested(observations: Any, dead_letters: Any = ()) -> list[bool]:
                batch = store.prepare_ingested(observations, dead_letters)
                with lock.held():
                    return store.write_prepared(batch)

            put_ingested.__doc__ = attr.__doc__
            return put_ingested

        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock.held():
                return attr(*args, **kwargs)

        locked.__name__ = name
        locked.__doc__ = attr.__doc__
        return locked

    def __repr__(self) -> str:
        return f"LockedWrites({self.store!r})"
