"""The console's live feed: changes of the store and of forecast runs, numbered, for SSE and polling.

One :class:`Feed` per app polls the store every ``interval_s`` (its data version,
:meth:`twin.store.Store.data_version`: microseconds when nothing changed) and the run manager's
version counter, and appends each change as a numbered message to a bounded
buffer. Clients follow it:

* ``GET /api/stream`` (Server-Sent Events): every message as ``id: <seq>`` +
  ``data: <json>``; a reconnecting ``EventSource`` sends ``Last-Event-ID`` and
  gets what it missed, or ``{"type": "resync"}`` when that fell out of the
  buffer (the page then reloads its lists). A comment line every
  ``heartbeat_s`` keeps proxies from closing the stream.
* ``GET /api/changes?since=<cursor>`` (polling fallback): the same messages as JSON.

A cursor is ``"<epoch>.<seq>"``: the epoch is random per server start, so a client
that followed an earlier server (a restart numbers from 1 again) is told to resync
instead of being given the wrong messages.

A burst of observations becomes one ``sensor`` message per datastream per poll.

Between polls the feed waits for the store's next commit when given ``wait``
(:meth:`viz.console.live.LiveState.wait`: LISTEN/NOTIFY on PostgreSQL, wakes on the commit;
50 ms ``data_version`` polls on SQLite), at most ``interval_s``, so what is not in the store
(the run manager's progress) is still polled every ``interval_s``. Without ``wait`` (or when
it fails) the feed sleeps ``interval_s``.

A ``sensor`` message carries the same row as ``GET /api/sensors``
(:meth:`viz.console.live.LiveState.sensors`): the stored SI ``value``/``unit`` and what
people read, ``shown`` (``{"value": "8 ppm", "unit": "ppm", "decimals": 0, "number": 8.0}``,
from :mod:`hardware_bridge.display`), the sensor's alert ``thresholds`` in the same units and
``placed`` (False: no position, not drawn on the map). The feed passes rows through unchanged,
so the stream and the list never disagree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger(__name__)

POLL_S = 0.1
WAIT_SLICE_S = 1.0  # longest single wait in a worker thread: bounds how long stopping the feed can take
RECHECK_S = 15.0
HEARTBEAT_S = 15.0
BUFFER = 2000


class Feed:
    """Numbered change messages from ``sources`` (callables returning message lists).

    Parameters
    ----------
    poll : callable() -> list of messages
        Called in a worker thread every ``interval_s``.
    recheck : callable() -> list of messages, optional
        Called every ``recheck_s`` (time-driven changes such as staleness).
    wait : callable(timeout_s) -> bool, optional
        Blocks until the store changes or ``timeout_s`` passes (:meth:`viz.console.live.LiveState.wait`);
        run in a worker thread between polls with ``timeout_s = interval_s``. None: sleep ``interval_s``.
    """

    def __init__(self, poll: Callable[[], list[dict[str, Any]]], *,
                 recheck: Callable[[], list[dict[str, Any]]] | None = None,
                 wait: Callable[[float], bool] | None = None,
                 interval_s: float = POLL_S, recheck_s: float = RECHECK_S,
                 heartbeat_s: float = HEARTBEAT_S, buffer: int = BUFFER) -> None:
        self._poll = poll
        self._recheck = recheck
        self._wait_change = wait
        self.interval_s = float(interval_s)
        self.recheck_s = float(recheck_s)
        self.heartbeat_s = float(heartbeat_s)
        self._buf: deque[tuple[int, dict[str, Any]]] = deque(maxlen=int(buffer))
        self.seq = 0
        self.epoch = secrets.token_hex(4)
        self._cond: asyncio.Condition | None = None
        self._task: asyncio.Task | None = None
        self._polling = asyncio.Lock()  # one poll-and-publish at a time: messages go out in the order polled
        self.closing = False

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._cond = asyncio.Condition()
        self.closing = False
        self._task = asyncio.create_task(self._run(), name="console-feed")

    async def stop(self) -> None:
        self.closing = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    async def _run(self) -> None:
        last_recheck = time.monotonic()
        while not self.closing:
            recheck = self._recheck is not None and time.monotonic() - last_recheck >= self.recheck_s
            if recheck:
                last_recheck = time.monotonic()
            try:
                await self.poll_and_publish(self._poll, self._recheck if recheck else None)
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing poll must not end the feed
                log.exception("console feed poll failed")
            await self._pause()

    async def poll_and_publish(self, *polls: Callable[[], list[dict[str, Any]]] | None) -> None:
        """Run ``polls`` (None skipped) in a worker thread, one after another, and publish their messages.

        One poll-and-publish runs at a time (the feed's own loop and a request's catch-up share it), so
        messages are numbered in the order their polls read the store: a later poll's messages never get
        a lower number than an earlier poll's.
        """
        async with self._polling:
            msgs: list[dict[str, Any]] = []
            for poll in polls:
                if poll is not None:
                    msgs += await asyncio.to_thread(poll)
            if msgs:
                await self.publish(msgs)

    async def _pause(self) -> None:
        """Until the store's next commit (``wait``), at most ``interval_s``; a failing wait sleeps instead."""
        if self._wait_change is not None:
            t_end = time.monotonic() + self.interval_s
            try:
                while not self.closing and (left := t_end - time.monotonic()) > 0:
                    if await asyncio.to_thread(self._wait_change, min(left, WAIT_SLICE_S)):
                        return
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. the PostgreSQL listener dropped: the next wait reconnects
                log.exception("console feed wait failed; sleeping %.3g s", self.interval_s)
        await asyncio.sleep(self.interval_s)

    async def publish(self, msgs: list[dict[str, Any]]) -> None:
        """Number and buffer messages, wake the streams."""
        now = time.time()
        for m in msgs:
            self.seq += 1
            self._buf.append((self.seq, {**m, "seq": self.seq, "epoch": self.epoch, "sent": now}))
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    # ---------------------------------------------------------------- reading
    @property
    def cursor(self) -> str:
        """``"<epoch>.<seq>"`` of the newest message."""
        return f"{self.epoch}.{self.seq}"

    def parse_cursor(self, text: str | None) -> int | None:
        """Sequence number of a cursor of this server (``-1``: another server's, resync;
        None: no cursor). A bare number is taken as a sequence number of this server."""
        if text is None or text == "":
            return None
        epoch, _, seq = text.rpartition(".")
        if not seq.isdigit() or len(seq) > 15 or (epoch and epoch != self.epoch):
            return -1
        return int(seq)

    def since(self, seq: int) -> tuple[list[dict[str, Any]], bool]:
        """Messages after ``seq`` and whether some were lost (the client must resync)."""
        if seq > self.seq or seq < 0:
            return [], True
        if seq == self.seq:
            return [], False
        first = self._buf[0][0] if self._buf else self.seq + 1
        lost = seq + 1 < first
        return [m for s, m in self._buf if s > seq], lost

    async def stream(self, last_seq: int | None, is_disconnected: Callable[[], Any],
                     max_s: float | None = None) -> AsyncIterator[str]:
        """SSE text chunks from ``last_seq`` (None: from now) until the client leaves.

        ``max_s`` ends the stream after that long (the browser reconnects).
        """
        cur = self.seq if last_seq is None else last_seq
        t_end = None if max_s is None else time.monotonic() + max_s
        hello = json.dumps({"seq": self.seq, "epoch": self.epoch})
        yield f"retry: 1000\nid: {self.epoch}.{cur if cur >= 0 else self.seq}\nevent: hello\ndata: {hello}\n\n"
        while not self.closing:
            msgs, lost = self.since(cur)
            if lost:
                cur = self.seq
                msg = json.dumps({"type": "resync", "seq": cur, "epoch": self.epoch})
                yield f"id: {self.epoch}.{cur}\ndata: {msg}\n\n"
                continue
            for m in msgs:
                cur = m["seq"]
                yield f"id: {self.epoch}.{cur}\ndata: {json.dumps(m, ensure_ascii=False, default=str)}\n\n"
            if t_end is not None and time.monotonic() > t_end:
                return
            if await is_disconnected():
                return
            if not await self._wait(cur):
                yield ": keep-alive\n\n"

    async def _wait(self, cur: int) -> bool:
        """Wait for a message after ``cur`` (True) or the heartbeat interval (False)."""
        assert self._cond is not None, "Feed.start() was not called"
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.seq > cur or self.closing),
                                       timeout=self.heartbeat_s)
            except TimeoutError:
                return False
        return True


__all__ = ["Feed"]
