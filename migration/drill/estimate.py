"""What a drill needs before it starts: room in the temp directory and time, both from the database's size.

The rates are measured (``benchmarks/drill.py``, README "Benchmarks"): a restore into the throwaway
server, index builds and the row counts included, per byte of ``pg_database_size``; a parallel
restore of an archive scales with the jobs up to the machine's cores, less well than linearly.
They are deliberately the slower end of what was measured: the estimate is a promise to the operator.
"""

from __future__ import annotations

import os
import shutil

PLAIN_BYTES_PER_S = 40 * 1024 ** 2  # one psql, one transaction
ARCHIVE_BYTES_PER_S = 40 * 1024 ** 2  # one pg_restore job
PARALLEL_GAIN = 0.6  # each further job adds this much of one job's rate
FIXED_S = 3.0  # start the server, create the database and roles, compare the catalog
ROOM_FACTOR = 1.2  # the restored copy is about the database's size; indexes are rebuilt, WAL is minimal


def seconds(database_bytes: int, fmt: str, jobs: int) -> float:
    rate = PLAIN_BYTES_PER_S if fmt == "plain" else ARCHIVE_BYTES_PER_S
    if fmt != "plain":
        usable = max(1, min(jobs, os.cpu_count() or 1))
        rate *= 1 + PARALLEL_GAIN * (usable - 1)
    return FIXED_S + database_bytes / rate


def room_needed(database_bytes: int) -> int:
    return int(database_bytes * ROOM_FACTOR) + 64 * 1024 ** 2


def temp_dir() -> str:
    """Where the drill's throwaway server will live (:func:`migration.pgserver.scratch_dir`)."""
    from ..pgserver import scratch_dir

    return str(scratch_dir())


def free_bytes(path: str | None = None) -> int:
    return shutil.disk_usage(path or temp_dir()).free


def clock(total: float) -> str:
    total = int(round(total))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total // 60 % 60:02d} min"
