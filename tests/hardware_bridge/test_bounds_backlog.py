"""Issue 16, weak spot 2: the bridge's own bound on messages received and not yet acknowledged.

Against a real mosquitto (``mosquitto`` fixture, 127.0.0.1 at a free port): a persistent session
collects a backlog of 20,000 QoS-1 messages while the bridge is away; the bridge then drains it
into a real store. Debian's mosquitto 2.0 does not hold the MQTT 5 *Receive Maximum* the bridge
asks for when it flushes a queued backlog (issue 16 saw > 12,000 unacknowledged messages where
1,000 were asked for), so the bound must be the bridge's own: at most ``max_unacked`` messages
received and not yet acknowledged at any moment.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources import IngestorSink
from hardware_bridge.sources.mqtt import MqttConfig, MqttPublisher, MqttSource
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)
N = 20_000
BOUND = 1_000


def _obs(i: int) -> tuple[str, bytes]:
    st = f"WL-{i % 20:02d}"
    t = (T0 + timedelta(seconds=60 * (i // 20))).isoformat()
    return (f"sz/v1/water_level/{st}/obs",
            json.dumps({"datastream": f"{st}/water_level", "phenomenonTime": t,
                        "result": 1.0, "unit": "m", "seq": i}).encode())


class _Watching(IngestorSink):
    """The real ingestor sink, noting how many messages the source holds unacknowledged per batch."""

    source: MqttSource | None = None
    peak = 0

    def handle_many(self, messages):  # noqa: ANN001, ANN201
        s = self.source.stats
        self.peak = max(self.peak, s.received - s.acked - s.not_acked_stale)
        return super().handle_many(messages)


def test_backlog_drains_with_at_most_max_unacked_held(mosquitto, tmp_path):
    cfg = MqttConfig(port=mosquitto.port, client_id="t-backlog", receive_maximum=BOUND, max_unacked=BOUND)
    # make the persistent session, then go away so the broker queues the backlog
    first = MqttSource(cfg, lambda msgs: [None] * len(msgs)).start()
    first.wait_subscribed()
    first.stop(drain_s=0.0)
    with MqttPublisher(mosquitto.host, mosquitto.port, window=500) as pub:
        for i in range(N):
            pub.publish(*_obs(i))

    store = Store.open(tmp_path / "s")
    sink = _Watching(Ingestor(store, seed_from_store=False))
    src = MqttSource(cfg, sink)
    sink.source = src
    src.start()
    try:
        deadline = time.monotonic() + 60
        while store.count_observations() < N and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        src.stop()
    assert store.count_observations() == N  # nothing lost while pausing
    peak = src.stats.unacked_peak
    print(f"held unacknowledged: peak {sink.peak} seen by the sink, {peak} by the source (bound {BOUND})")
    assert sink.peak <= BOUND, f"{sink.peak} messages held unacknowledged, bound {BOUND}"
    assert peak <= BOUND
    store.close()
