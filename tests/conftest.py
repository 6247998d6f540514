"""Shared fixtures.

Integration tests read the real Shenzhen data from ``TWIN_DATA``; they are
skipped, with the reason, only when that setting is absent (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def twin_data() -> Path:
    """The data directory named by TWIN_DATA (skips the test when it is not set)."""
    env = os.environ.get("TWIN_DATA")
    if not env:
        pytest.skip("TWIN_DATA is not set: point it at the real data (e.g. TWIN_DATA=../shared/data)")
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
