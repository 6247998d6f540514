"""HTTP ingest (Starlette + uvicorn on 127.0.0.1 at a free port): 201 / 400 / 422 / 413 / 503."""

from __future__ import annotations

import json

import httpx
import pytest

from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources.http import HttpServer
from twin.errors import StoreError  # noqa: E402
from twin.store import Store  # noqa: E402

OBS = {"datastream": "CS-7/gas_h2s", "phenomenonTime": "2024-06-01T08:00:00+08:00",
       "result": 3.5, "unit": "ppm", "seq": 0}


@pytest.fixture
def served(tmp_path):
    store = Store.open(tmp_path / "s")
    server = HttpServer(Ingestor(store, source="http"), max_body_bytes=4096).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client, store
    finally:
        server.stop()
        store.close()


def test_observation_is_stored_and_a_resend_is_a_duplicate(served):
    client, store = served
    r = client.post("/v1/obs/gas_h2s/CS-7", content=json.dumps(OBS))
    assert r.status_code == 201, r.text
    assert r.json()["stored"] == 1 and r.json()["duplicates"] == 0
    r = client.post("/v1/obs/gas_h2s/CS-7", content=json.dumps(OBS))
    assert r.status_code == 201 and r.json() == {**r.json(), "stored": 0, "duplicates": 1}
    (o,) = store.observations("CS-7/gas_h2s")
    assert o.value == pytest.approx(3.5e-6) and o.unit == "1"  # ppm -> mol/mol


def test_sensorthings_route_and_batches(served):
    client, store = served
    batch = {"datastream": "CS-7/gas_h2s", "unit": "ppm",
             "components": ["phenomenonTime", "result", "seq"],
             "dataArray": [[f"2024-06-01T08:0{i}:00+08:00", 1.0 + i, i] for i in range(5)]}
    r = client.post("/v1.1/Observations", content=json.dumps(batch))
    assert r.status_code == 201, r.text
    assert r.json()["stored"] == 5 and r.json()["topic"] == "sz/v1/gas_h2s/CS-7/obs"
    assert store.count_observations("CS-7/gas_h2s") == 5


def test_not_json_is_400_and_dead_lettered(served):
    client, store = served
    r = client.post("/v1/obs/gas_h2s/CS-7", content=b"\xff{oops")
    assert r.status_code == 400
    assert r.json()["dead_letter"] is True and r.json()["reason"]
    (d,) = store.dead_letters()
    assert d.payload == b"\xff{oops" and d.topic == "sz/v1/gas_h2s/CS-7/obs"
    assert d.reason == r.json()["reason"] and d.source == "http"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**OBS, "phenomenonTime": "2024-06-01T08:00:00"}, "timezone"),
        ({**OBS, "unit": "furlong"}, "furlong"),
        ({k: v for k, v in OBS.items() if k != "result"}, "result"),
        ({**OBS, "datastream": "OTHER/gas_h2s"}, "OTHER"),
    ],
)
def test_invalid_observation_is_422_with_the_reason_and_dead_lettered(served, body, words):
    client, store = served
    r = client.post("/v1/obs/gas_h2s/CS-7", content=json.dumps(body))
    assert r.status_code == 422, r.text
    assert words in r.json()["reason"]
    (d,) = store.dead_letters()
    assert json.loads(d.payload) == body and d.reason == r.json()["reason"]
    assert store.count_observations() == 0


def test_unknown_kind_in_the_route_is_422(served):
    client, store = served
    r = client.post("/v1/obs/lava/CS-7", content=json.dumps(OBS))
    assert r.status_code == 422 and "lava" in r.json()["reason"]
    assert store.count_dead_letters() == 1


def test_too_large_is_413_and_health(served):
    client, _ = served
    r = client.post("/v1/obs/gas_h2s/CS-7", content=b"x" * 5000)
    assert r.status_code == 413 and "split" in r.json()["reason"]
    assert client.get("/v1/health").json() == {"ok": True}


def test_store_failure_is_503_and_nothing_claimed(tmp_path):
    class Broken:
        def handle_many(self, messages):
            raise StoreError("database is locked (simulated)")

    with HttpServer(Broken()) as server, httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/v1/obs/gas_h2s/CS-7", content=json.dumps(OBS))
    assert r.status_code == 503 and "retry" in r.json()["reason"]
