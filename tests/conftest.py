"""Shared fixtures.

Integration tests read the real Shenzhen data from ``TWIN_DATA``; they are
skipped, with the reason, only when that setting is absent (CI sets it).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n 2`` in pyproject.toml), each worker compiles into its own numba cache folder,
    ``$NUMBA_CACHE_DIR/xdist-gwN``: numba's cache index is read, extended and rewritten without a lock, so two
    processes compiling two signatures of one kernel at once on an empty cache (CI's clean clone) can both
    take data file ``.1.nbc`` and one of them later load the other's machine code. Subprocesses the tests start
    inherit the worker's folder. Set here, before any test module imports numba."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not worker or not base:
        return
    own = str(Path(base) / f"xdist-{worker}")
    os.environ["NUMBA_CACHE_DIR"] = own
    import sys

    if "numba" in sys.modules:  # a plugin imported it first: numba read the variable at import
        sys.modules["numba"].config.CACHE_DIR = own


@pytest.fixture(scope="session")
def twin_data() -> Path:
    """The data directory named by TWIN_DATA (skips the test when it is not set)."""
    env = os.environ.get("TWIN_DATA")
    if not env:
        message = "TWIN_DATA is not set: point it at the real data (e.g. TWIN_DATA=../shared/data)"
        if os.environ.get("CI"):  # .ci/run sets it: real-data tests must run there
            pytest.fail(message)
        pytest.skip(message)
    root = Path(env).resolve()
    if not (root / "shenzhen").is_dir():
        pytest.fail(f"TWIN_DATA={env} has no shenzhen/ folder: it should hold the city data")
    return root


@pytest.fixture(scope="session")
def shenzhen_dir(twin_data: Path) -> Path:
    """The real Shenzhen data folder, ``$TWIN_DATA/shenzhen``."""
    return twin_data / "shenzhen"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of headless Chromium; fails under CI (which must install it), skips locally."""
    from twin.errors import ConfigError
    from viz.browser import find_chromium

    try:
        return find_chromium()
    except ConfigError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def mosquitto(tmp_path_factory):
    """A real mosquitto broker on 127.0.0.1 at a free port (``.host``, ``.port``, ``.address``,
    ``.restart()``), stopped afterwards; fails under CI (which installs it), skips locally."""
    from hardware_bridge.broker import MOSQUITTO, LocalBroker

    if not Path(MOSQUITTO).is_file():
        message = f"mosquitto not installed at {MOSQUITTO} (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    broker = LocalBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def city(twin_data):
    """The real Shenzhen city (manifest, grids and layers from ``TWIN_DATA``)."""
    from twin.city import City

    return City("shenzhen")


@pytest.fixture
def twin_serve():
    """Start ``twin serve`` as a real process: ``twin_serve(store_dir, *options, env=...)`` returns
    ``(process, base_url)`` once it accepts on 127.0.0.1; each is stopped with SIGINT afterwards
    (``process.stderr_text`` then holds its log)."""
    import signal
    import subprocess
    import sys
    import time

    from hardware_bridge.broker import accepts, free_port

    procs = []

    def start(store_dir, *options, env=None):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twin.cli import main; main()", "serve", "--store", str(store_dir),
             "--port", str(port), "--base-resolution", "500", *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        procs.append(proc)
        deadline = time.monotonic() + 60
        while not accepts("127.0.0.1", port):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "twin serve did not start"
            time.sleep(0.1)
        return proc, f"http://127.0.0.1:{port}"

    def stop(proc):
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            _, proc.stderr_text = proc.communicate(timeout=30)

    start.stop = stop
    yield start
    for p in procs:
        stop(p)


def load_pg_helper():
    """``tests/pg_server.py`` by path (``--import-mode=importlib`` puts no test directory on ``sys.path``)."""
    if "twin_tests_pg_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location("twin_tests_pg_server", Path(__file__).parent / "pg_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["twin_tests_pg_server"]


@pytest.fixture(scope="session")
def pg_server():
    """A throw-away PostgreSQL server on 127.0.0.1 (``tests/pg_server.py``: Debian's binaries, run as ``postgres``
    when we are root), one per test session (per xdist worker), shared by the store and the bridge tests; each
    test takes a fresh database with ``new_database()``. Missing PostgreSQL or psycopg: skipped locally, a failure
    under CI (which installs both)."""
    pg = load_pg_helper()
    missing = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = "psycopg not installed: pip install -e '.[pg]'"
    bin_dir = pg.find_pg_bin()
    if bin_dir is None:
        missing = "PostgreSQL not installed: apt-get install postgresql postgresql-15-postgis-3"
    if missing:
        if os.environ.get("CI"):  # .ci/run installs them: a missing server there is a failure
            pytest.fail(f"PostgreSQL tests must run in CI: {missing}")
        pytest.skip(missing)
    server = pg.PgServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()
