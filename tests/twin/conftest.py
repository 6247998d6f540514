"""Fixtures of the store tests: a throw-away PostgreSQL server and a store target per backend."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _load_helper():
    """tests/pg_server.py by path (``--import-mode=importlib`` puts no test directory on sys.path)."""
    if "twin_tests_pg_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location("twin_tests_pg_server", Path(__file__).parents[1] / "pg_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["twin_tests_pg_server"]


_pg = _load_helper()
PgServer, find_pg_bin = _pg.PgServer, _pg.find_pg_bin

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server on 127.0.0.1 (Debian's binaries, run as ``postgres`` when we are root).

    Missing PostgreSQL or psycopg: skipped locally, a failure under CI (which installs both).
    """
    missing = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg not installed: pip install 'psycopg[binary]'"
    bin_dir = find_pg_bin()
    if bin_dir is None:
        missing = "PostgreSQL not installed: apt-get install postgresql postgresql-15-postgis-3"
    if missing:
        if os.environ.get("CI"):  # .ci/run installs them: a missing server there is a failure
            pytest.fail(f"PostgreSQL store tests must run in CI: {missing}")
        pytest.skip(missing)
    server = PgServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


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
