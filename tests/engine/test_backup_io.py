"""How the backup treats the machine it runs on: the hashing thread only takes idle CPU, the dump is
written back to disk (and dropped from the page cache) behind the hash as it grows, and a directory
archive's rows are counted with C-speed work per chunk, the end mark looked for at the end only."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from engine_support import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

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



# A row of COPY text as pg_dump writes it: a backslash or newline inside a value is escaped, so a row is never
# the bare end mark "\." (a value "\." is written "\\.") and holds no newline.
_ROW = st.lists(st.sampled_from(["a", "\t", ".", "\\N", "\\\\", "\\\\.", "\\n", "é"]), max_size=5).map(
    lambda parts: "".join(parts).encode())


@settings(max_examples=400, deadline=None)
@given(rows=st.lists(_ROW, max_size=6), ending=st.sampled_from([b"\\.\n\n\n", b"\\.\n", b"\\.", b"", b"\\", b"\n"]),
       cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4))
def test_a_data_file_s_rows_are_counted_in_any_chunks_and_only_when_its_end_mark_closes_it(rows, ending, cuts):
    """The directory follower counts a data file's rows with one ``count`` per chunk and looks only at the end
    for the mark: the same rows as the plain dump's reader of COPY blocks, however the file grows, and no count
    (an incomplete file) when the mark is not its last line."""
    from migration.backup.directory import CopyData
    from migration.backup.dumptext import DumpReader

    data = b"".join(row + b"\n" for row in rows) + ending
    bounds = sorted({min(c, len(data)) for c in cuts}) + [len(data)]
    counted, reader, start = CopyData(), DumpReader(in_copy="t"), 0
    for end in bounds:
        counted.feed(data[start:end])
        reader.feed(data[start:end])
        start = end
    contents = reader.finish()
    expected = None if contents.open_block is not None else contents.rows["t"]
    assert counted.rows == expected
    assert (counted.rows is not None) == ending.startswith(b"\\.")
    if counted.rows is not None:
        assert counted.rows == len(rows)


def test_a_data_file_ending_in_a_long_run_of_blank_lines_still_shows_its_end_mark():
    from migration.backup.directory import CopyData

    counted = CopyData()
    counted.feed(b"1\tx\n" * 3 + b"\\.\n")
    for _ in range(3):
        counted.feed(b"\n" * 100_000)
    assert counted.rows == 3
    truncated = CopyData()
    truncated.feed(b"1\tx\n" * 3 + b"\n" * 100_000)
    assert truncated.rows is None


def test_the_directory_follower_starts_writing_back_what_it_hashed_and_keeps_it_cached(tmp_path, monkeypatch):
    """A data file growing like one of pg_dump --jobs': its write-back is started behind the hash in steps, without
    a gap, up to its last byte once pg_dump finished it (so pg_dump's fsync at the end has little left), and nothing
    is dropped from the page cache (pg_restore reads every file back next)."""
    from migration.backup import directory

    calls: list[tuple[int, int]] = []
    real = directory.start_writeback

    def recording(fd, offset, length):
        calls.append((offset, offset + length))
        return real(fd, offset, length)

    def no_drop(*args):
        raise AssertionError("the directory follower must not drop pages the verification reads next")

    monkeypatch.setattr(directory, "_WRITEBACK_STEP", 64 << 10)
    monkeypatch.setattr(directory, "start_writeback", recording)
    monkeypatch.setattr(os, "posix_fadvise", no_drop)
    folder = tmp_path / "archive.dir"
    folder.mkdir(mode=0o700)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    follower = directory.DirFollower(dir_fd)
    os.close(dir_fd)
    follower.start()
    digest, written = hashlib.sha256(), 0
    try:
        with open(folder / "4242.dat", "ab") as out:
            for _ in range(20):
                chunk = b"1\tsome row\n" * 3000
                out.write(chunk)
                out.flush()
                digest.update(chunk)
                written += len(chunk)
                wait_until(lambda: follower.files.get("4242.dat") is not None
                           and follower.files["4242.dat"].size >= written, 120, f"the follower to hash {written} bytes")
            out.write(b"\\.\n\n\n")
            digest.update(b"\\.\n\n\n")
            written += 5
        follower.item_finished("4242")  # pg_dump reports the item finished: the follower reads it to its end
        wait_until(lambda: follower.files["4242.dat"].done, 120, "the follower to complete the data file")
        files = follower.finish()
    finally:
        follower.close()
    assert files["4242.dat"] == (written, digest.hexdigest())
    assert follower.rows() == {"4242": 60_000}
    assert len(calls) >= 5 and calls[0][0] == 0, calls
    for before, after in zip(calls, calls[1:]):
        assert after[0] == before[1], calls  # contiguous: every byte's write-back started once
    assert calls[-1][1] == written


CHANGES = {  # what someone does to a dump file after pg_dump wrote it (and after the follower read it)
    "truncate": lambda fd, size: os.ftruncate(fd, size - 7),
    "append": lambda fd, size: os.pwrite(fd, b"9\tlate row\n", size),
    "same size": lambda fd, size: os.pwrite(fd, b"X", size // 2),
}


def change_later(path, change: str) -> None:
    """Change the file once the file system's clock has moved on (its timestamps have a resolution of a few ms)."""
    import time

    time.sleep(0.05)
    fd = os.open(path, os.O_RDWR)
    try:
        CHANGES[change](fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def followed_digest(path, change: str | None) -> str | None:
    """What the plain dump's follower vouches for, having hashed the whole file before it was changed."""
    size = path.stat().st_size
    follower = backup_module.Follower(os.open(path, os.O_RDONLY))
    follower.start()
    try:
        wait_until(lambda: follower.count >= size, 120, "the follower to hash the file")
        if change is not None:
            change_later(path, change)
        return follower.finish()
    finally:
        follower.close()


@pytest.mark.parametrize("change", CHANGES)
def test_the_follower_does_not_vouch_for_a_dump_changed_after_it_hashed_it(tmp_path, change):
    data = b"-- a dump\n" + b"1\tsome row\n" * 20_000
    path = tmp_path / "dump.sql"
    path.write_bytes(data)
    digest = followed_digest(path, change)
    if change == "append":  # what was read is still there: the rest is read on, and the whole is the file's
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        assert digest is None  # the caller hashes the file on disk again
    unchanged = tmp_path / "unchanged.sql"
    unchanged.write_bytes(data)
    assert followed_digest(unchanged, None) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("change", CHANGES)
def test_the_directory_follower_reads_again_a_data_file_changed_after_it_completed_it(tmp_path, change):
    from migration.backup import directory

    folder = tmp_path / "archive.dir"
    folder.mkdir(mode=0o700)
    rows = b"1\tsome row\n" * 3000
    (folder / "4242.dat").write_bytes(rows + b"\\.\n\n")
    (folder / "4343.dat").write_bytes(rows + b"\\.\n\n")  # a file nobody touches
    (folder / "4444.dat").write_bytes(b"\\.\n\n")  # a file removed after it was read
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    follower = directory.DirFollower(dir_fd)
    os.close(dir_fd)
    for dump_id in ("4242", "4343", "4444"):
        follower.item_finished(dump_id)
    follower.start()
    try:
        wait_until(lambda: all(name in follower.files and follower.files[name].done
                               for name in ("4242.dat", "4343.dat", "4444.dat")), 120, "the follower to read them")
        change_later(folder / "4242.dat", change)
        (folder / "4444.dat").unlink()
        (folder / "toc.dat").write_bytes(b"written last")
        files = follower.finish()
    finally:
        follower.close()
    on_disk = {p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.iterdir()}
    assert files == on_disk  # what the manifest will say is what is there
    expected = None if change in ("truncate", "append") else 3000  # cut before, or a row after, the end mark
    assert follower.rows() == {"4242": expected, "4343": 3000}
