"""The sha256 of every file of a directory-format dump, each one as soon as pg_dump has finished it.

pg_dump ``--jobs N --verbose`` reports ``finished item ID TABLE DATA name`` once a table's file
(``ID.dat``, ``ID.dat.gz``, ``ID.dat.lz4``, ``ID.dat.zst``) is closed: :class:`DirHasher` hashes it
then, on idle CPU, while the other jobs go on. What is left at the end (``toc.dat``, large objects,
the files of a one-job dump) is hashed on every core; the page cache still holds it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from ..safe_dirs import list_files, open_file
from .hashing import lower_thread_priority

_CHUNK = 4 << 20


def sha256_file(dir_fd: int, name: str) -> tuple[int, str]:
    """(size, sha256) of a file in a directory, read without following links."""
    fd = open_file(dir_fd, name)
    try:
        digest = hashlib.sha256()
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        size = 0
        while n := os.preadv(fd, [buffer], size):
            digest.update(view[:n])
            size += n
        return size, digest.hexdigest()
    finally:
        os.close(fd)


def listing(files: dict[str, tuple[int, str]], prefix: str = "") -> str:
    """``sha256  prefix/name`` lines, sorted (``sha256sum -c`` reads them); their own sha256 names the whole dump."""
    return "".join(f"{digest}  {prefix}{name}\n" for name, (_, digest) in sorted(files.items()))


class DirHasher:
    """Hashes the files of a directory being written by pg_dump, as pg_dump finishes them."""

    def __init__(self, dir_fd: int, workers: int = 2) -> None:
        """``dir_fd``: a descriptor of the directory (the hasher closes its own duplicate)."""
        self.fd = os.dup(dir_fd)
        self.workers = max(1, workers)
        self.hashes: dict[str, tuple[int, str]] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="migrate-tui-backup-hash", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def item_finished(self, dump_id: str) -> None:
        """pg_dump finished the table data item ``dump_id``: its file is complete."""
        self._queue.put(dump_id)

    def _run(self) -> None:
        lower_thread_priority()
        while (dump_id := self._queue.get()) is not None:
            pattern = re.compile(rf"^{re.escape(dump_id)}\.dat(\.\w+)?$")
            for name in list_files(self.fd):
                if pattern.match(name):
                    self._hash(name)

    def _hash(self, name: str) -> None:
        with self._lock:
            if name in self.hashes:
                return
        result = sha256_file(self.fd, name)
        with self._lock:
            self.hashes[name] = result

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> dict[str, tuple[int, str]]:
        """Every file's (size, sha256): the ones not hashed yet now, on every core."""
        self.stop()
        left = [name for name in list_files(self.fd) if name not in self.hashes]
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="migrate-tui-hash") as pool:
            for name, result in zip(left, pool.map(lambda n: sha256_file(self.fd, n), left)):
                self.hashes[name] = result
        return dict(self.hashes)

    def close(self) -> None:
        self.stop()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
