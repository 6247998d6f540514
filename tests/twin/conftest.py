"""Fixtures of the store tests: a throw-away PostgreSQL server and a store target per backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_at(request) -> Callable[[Path], str | Path]:
    """``store_at(directory)``: the store target of this test's backend whose files live in ``directory``.

    SQLite: the directory itself. PostgreSQL: a fresh database of the test server, with ``?files=directory``.
    Every call in one test names the same database.
    """
    if request.param == "sqlite":
        return lambda d: d
    url = request.getfixturevalue("pg_server").new_database()
    return lambda d: f"{url}?files={d}"
