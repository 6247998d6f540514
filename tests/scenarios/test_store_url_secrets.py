"""Forecasts, verification and fire responses on a PostgreSQL store URL: runs go next to the store's files, and
the URL's password is never written to a file they produce (nor to the runs table).

The test PostgreSQL server trusts local connections, so a URL with a password logs in whatever the password is;
what is checked is that ``secret`` appears nowhere in the run folder, the verification folder or the run's params.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scenarios.fire_response import ResponseSettings
from scenarios.forecast import ForecastSettings, issue_forecast, request_store
from scenarios.verification import write_verification
from twin.sensors import Sensor
from twin.store import Store

SECRET = "s3cr3t-pw"
ISSUE = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture()
def secret_url(pg_server, tmp_path, monkeypatch):
    """A fresh database's URL with a password and ``?files=<tmp>/files``; PGPASSWORD restored afterwards."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = pg_server.new_database().replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    return f"{url}?files={tmp_path / 'files'}"


def files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_default_runs_dir_is_next_to_the_store_files(tmp_path):
    url = f"postgresql://u:{SECRET}@db.example:5433/twin?files={tmp_path / 'pgfiles'}"
    assert ForecastSettings(store=url).runs == tmp_path / "pgfiles" / "runs"
    assert ResponseSettings(store=url, buildings={"b": "x"}).runs == tmp_path / "pgfiles" / "runs"
    assert ForecastSettings(store=tmp_path / "st").runs == tmp_path / "st" / "runs"
    assert ForecastSettings(store=tmp_path / "st", runs_dir=tmp_path / "r").runs == tmp_path / "r"


def test_request_store_drops_the_password_into_pgpassword(tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert request_store(tmp_path / "st") == str((tmp_path / "st").resolve())
    kept = request_store(f"postgresql://u:{SECRET}@db.example/twin?files=/x")
    assert kept == "postgresql://u@db.example/twin?files=/x" and os.environ["PGPASSWORD"] == SECRET


def test_forecast_and_verification_on_a_url_with_a_password_write_it_nowhere(secret_url, tmp_path, city):
    with Store.open(secret_url) as st:
        st.put_sensors([
            Sensor(id="RG-S", kind="rain_gauge", lon=114.065, lat=22.54, unit="m"),
            Sensor(id="WL-S", kind="water_level", lon=114.055, lat=22.54, unit="m", thresholds={"warning": 0.3})])
        for k in range(6):  # 5 mm every 5 min before the issue time: rain to hold over the horizon
            t = ISSUE - timedelta(minutes=25 - 5 * k)
            st.put_observation("RG-S/rain_gauge", t, 0.005, "m")
            st.put_observation("WL-S/water_level", t, 0.0, "m")
    settings = ForecastSettings(store=secret_url, horizon_s=1200.0, districts=("Futian",), resolution=500.0)
    issued = issue_forecast(settings, ISSUE, city=city)
    assert issued.out_dir.parent == tmp_path / "files" / "runs"  # the default runs dir: the URL's files=
    assert any(issued.out_dir.iterdir())
    with Store.open(secret_url) as st:
        st.put_observation("WL-S/water_level", ISSUE + timedelta(minutes=10), 0.01, "m")
        (run,) = st.runs()
        assert run.status == "done"
        assert SECRET not in repr(run.params)
        assert run.params["store"].startswith("postgresql://postgres@")
    out = write_verification(secret_url, tmp_path / "verif")
    assert out["forecasts"] == 1
    assert "postgresql://postgres:***@" in out["html"].read_text(encoding="utf-8")
    assert files_holding(tmp_path, SECRET) == []
