"""The feed numbers messages in the order their polls read the store, even when the feed's own loop and a
request's catch-up (``ConsoleApi.sync``) poll at the same time in worker threads."""

from __future__ import annotations

import asyncio
import random
import threading
import time

from viz.console.feed import Feed


class Source:
    """A poll function (the feed takes any callable): each read returns the next version, and the thread
    then dawdles a random while before its messages can be published, as a slow store refresh does."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.version = 0

    def poll(self) -> list[dict]:
        with self._lock:
            self.version += 1
            v = self.version
            pause = self._rng.uniform(0.0, 0.004)
        time.sleep(pause)
        return [{"type": "sensor", "version": v}]


def test_concurrent_polls_publish_in_read_order():
    src = Source(seed=3)
    feed = Feed(src.poll, interval_s=0.001)

    async def main() -> None:
        await feed.start()
        try:
            await asyncio.gather(*(feed.poll_and_publish(src.poll) for _ in range(60)))
        finally:
            await feed.stop()

    asyncio.run(main())
    msgs, lost = feed.since(0)
    assert not lost
    versions = [m["version"] for m in msgs]
    assert len(versions) >= 60  # the 60 catch-ups plus the feed's own polls
    # numbered in the order read: without the feed's lock a poll that read version v and slept longer than a
    # later one was published after it (seen in CI as a console showing an older state last)
    assert versions == sorted(versions)
    assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))
