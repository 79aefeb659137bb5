"""How the backup treats the machine it runs on: the hashing thread only takes idle CPU, and the
dump is written back to disk (and dropped from the page cache) behind the hash as it grows."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from engine_support import wait_until

from migration.backup import hashing as backup_module

pytestmark = pytest.mark.timeout(180)


def test_the_hashing_thread_runs_at_idle_priority():
    seen: dict[str, int] = {}

    def probe() -> None:
        backup_module.lower_thread_priority()
        seen["policy"] = os.sched_getscheduler(threading.get_native_id())

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen["policy"] == os.SCHED_IDLE
    assert os.sched_getscheduler(threading.get_native_id()) != os.SCHED_IDLE  # only that thread


def test_the_follower_writes_back_and_drops_what_it_hashed(tmp_path, monkeypatch):
    """A file growing like pg_dump's output: each range is advised twice behind the hash (start
    writing, then drop), and the sha256 is exactly the file's."""
    calls: list[tuple[int, int]] = []
    real_fadvise = os.posix_fadvise

    def recording_fadvise(fd, offset, length, advice):
        assert advice == os.POSIX_FADV_DONTNEED
        calls.append((offset, offset + length))
        return real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(backup_module, "_WRITEBACK_STEP", 64 << 10)
    monkeypatch.setattr(backup_module.os, "posix_fadvise", recording_fadvise)
    path = tmp_path / "growing.sql"
    path.write_bytes(b"")
    follower = backup_module.Follower(os.open(path, os.O_RDONLY))
    follower.start()
    digest, written = hashlib.sha256(), 0
    with open(path, "ab") as out:
        for _ in range(40):
            chunk = os.urandom(16 << 10)
            out.write(chunk)
            out.flush()
            digest.update(chunk)
            written += len(chunk)
            # This thread idles while it waits, so the idle-priority (SCHED_IDLE) follower gets a CPU
            # -- on a busy machine only when nothing else wants one: a generous bound, not a fixed pause.
            wait_until(lambda: follower.count >= written, 120, f"the follower to hash {written} bytes")
            assert follower.count == written
    assert follower.finish() == digest.hexdigest() and follower.count == written
    follower.close()
    assert len(calls) >= 8, calls
    assert calls[0][0] == 0
    for before, after in zip(calls, calls[1:]):  # every range is advised twice: start writing, then drop
        assert after[0] <= before[1] <= after[1]
    assert calls[-1][1] <= written

