"""The bridges' shared write lock (hardware_bridge.write_lock) on a real store."""

from __future__ import annotations

import threading

import pytest

from hardware_bridge.write_lock import LOCK_NAME, LockedWrites, WriteLock
from twin.errors import StoreError, ValidationError
from twin.events import Event
from twin.store import Store


def test_writes_wait_for_the_lock_reads_do_not(tmp_path):
    with Store.open(tmp_path / "s") as store:
        writes = LockedWrites(store)
        assert writes.lock.path == store.root / LOCK_NAME and writes.lock.path.exists()
        other = WriteLock(store.root / LOCK_NAME)  # another open file: as another process would
        done = threading.Event()

        def put():
            writes.put_event(Event(time_s=1.0, kind="probe"))
            done.set()

        with other.held():
            th = threading.Thread(target=put)
            th.start()
            assert not done.wait(0.3)  # blocked on the lock held elsewhere
            assert writes.events() == []  # reads pass straight through
            assert writes.datastreams() == []
        th.join(10)
        assert done.is_set() and [e.kind for e in store.events()] == ["probe"]
        assert writes.put_event.__name__ == "put_event" and writes.root == store.root
        other.close()
        writes.lock.close()
        writes.lock.close()  # idempotent
        with pytest.raises(StoreError, match="closed"), writes.lock.held():
            pass


def test_threads_of_one_process_take_turns(tmp_path):
    lock = WriteLock(tmp_path / "l")
    inside, overlap = [], []

    def work():
        for _ in range(200):
            with lock.held():
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(1)
                inside.pop()

    ths = [threading.Thread(target=work) for _ in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert overlap == []
    lock.close()


def test_unwritable_lock_file_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="bridge write lock"):
        WriteLock(tmp_path / "missing-dir" / "x.lock")


def test_batches_are_validated_before_waiting_for_the_lock(tmp_path):
    # put_ingested builds and checks its rows outside the lock (only the transaction takes a
    # turn), so two bridges validate in parallel; a bad batch fails while another holds the lock.
    with Store.open(tmp_path / "s") as store:
        writes = LockedWrites(store)
        other = WriteLock(store.root / LOCK_NAME)
        with other.held(), pytest.raises(ValidationError):
            writes.put_ingested([{"datastream_id": ""}])
        other.close()
        writes.lock.close()
