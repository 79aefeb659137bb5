"""Is a dump complete? The plain format's end-of-dump marker, or pg_restore reading a custom archive
whole; and its sha256. Every function reads through a descriptor (the file the backup wrote)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from typing import TYPE_CHECKING, Callable

from ..children import child_environ

if TYPE_CHECKING:
    from ..pgtools import PgTool

PLAIN_HEADER = b"-- PostgreSQL database dump"
PLAIN_TRAILER = b"-- PostgreSQL database dump complete"
CUSTOM_MAGIC = b"PGDMP"
_TAIL = 64 * 1024
_CHUNK = 1 << 20


def sha256_fd(fd: int) -> str:
    """The sha256 of a whole file, read with pread (the descriptor's offset is left alone)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def verify_plain(fd: int) -> str | None:
    """None when the plain dump is complete; else what is wrong. The trailer need not be last."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 256, 0)
    tail = os.pread(fd, _TAIL, max(0, size - _TAIL))
    if PLAIN_HEADER not in head:
        return "it does not start like a pg_dump plain-format dump"
    if PLAIN_TRAILER not in tail:
        return "the end-of-dump marker '-- PostgreSQL database dump complete' is missing (the dump is truncated)"
    return None


def verify_custom(fd: int, pg_restore: PgTool,
                  start: Callable[..., subprocess.Popen] = subprocess.Popen) -> str | None:
    """None when ``pg_restore -f /dev/null`` reads the whole archive (given as its stdin); else its error.

    ``start`` starts the child (an operation's ``start_child``, so that cancelling stops it)."""
    if os.pread(fd, len(CUSTOM_MAGIC), 0) != CUSTOM_MAGIC:
        return "it is not a pg_dump custom-format archive"
    os.lseek(fd, 0, os.SEEK_SET)
    proc = start([str(pg_restore.path), "--file=/dev/null"], stdin=fd, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True, errors="replace", env=child_environ())
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        return "pg_restore could not read it: " + (lines[-1] if lines else f"exit code {proc.returncode}")
    return None
