"""The backup checked against its manifest before anything restores it: every byte's sha256 and every size.

:class:`BackupCheck` opens the backup (a file, or a directory holding exactly the manifest's files)
without following links, and hashes it on idle CPU (Linux ``SCHED_IDLE``) while the drill starts its
throwaway server: initdb and the server start keep their CPU, the hash takes what they leave.
:meth:`BackupCheck.finish` then hashes whatever is left on every core, at normal priority, and
hands over the descriptor only when every file matches; the restore reads nothing before that.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ..backup.directory import Followed
from ..backup.hashing import lower_thread_priority
from ..backup.manifest import LoadedBackup
from ..errors import MigrateError, OperatorError
from ..safe_dirs import list_files, open_file, open_own_dir


def changed(name: str) -> MigrateError:
    return MigrateError(OperatorError(
        f"The backup {name} no longer matches its manifest (its sha256 or size changed after it was written); "
        "it was not restored.", "Do not use it: find out who changed it, and take a new backup."))


class BackupCheck:
    """:meth:`start` opens the backup and hashes it in an idle-priority thread; :meth:`finish` completes the hash
    and returns the checked descriptor (the caller closes it); :meth:`close` stops and releases everything."""

    def __init__(self, backup: LoadedBackup, workers: int) -> None:
        self.backup = backup
        self.workers = max(1, workers)
        self.fd = -1  # the dump file, or the archive directory
        self.expected: dict[str, tuple[int, str]] = {}  # name -> (size, sha256) from the manifest
        self.files: list[Followed] = []  # largest first
        self.problem: BaseException | None = None  # why the backup is not restored (raised by finish)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def directory(self) -> bool:
        return self.backup.format == "directory"

    def start(self, idle: bool = True) -> "BackupCheck":
        """Open the backup; a missing, extra or resized file is a problem at once (nothing is hashed then)."""
        try:
            self._open()
        except BaseException as exc:  # noqa: BLE001 - raised by finish(), in the order the drill reports it
            self.problem = exc
            return self
        if idle:
            self._thread = threading.Thread(target=self._hash_idle, name="migrate-tui-drill-check", daemon=True)
            self._thread.start()
        return self

    def _open(self) -> None:
        backup = self.backup
        if self.directory:
            self.fd = open_own_dir(backup.directory, backup.name)
            self.expected = {f["name"]: (f["size_bytes"], f["sha256"]) for f in backup.manifest.get("files", [])}
            present = list_files(self.fd)
            if set(present) != set(self.expected) or any(present[n] != self.expected[n][0] for n in self.expected):
                raise changed(backup.name)
        else:
            self.fd = backup.directory.open_own(backup.name, "backup")
            self.expected = {backup.name: (backup.manifest.get("size_bytes"), backup.manifest.get("sha256"))}
        self.files = [Followed(name) for name in sorted(self.expected, key=lambda n: -(self.expected[n][0] or 0))]

    def _open_file(self, followed: Followed) -> int:
        return open_file(self.fd, followed.name) if self.directory else os.dup(self.fd)

    def _hash_idle(self) -> None:
        lower_thread_priority()
        try:
            for followed in self.files:
                fd = self._open_file(followed)
                try:
                    while not self._stop.is_set():
                        if followed.read(fd) == 0:  # a step at a time (16 MB): a stop is seen within one
                            followed.done = True
                            break
                finally:
                    os.close(fd)
                if self._stop.is_set():
                    return
        except Exception:  # noqa: BLE001 - finish() reads that file again and reports what is wrong with it
            return

    def finish(self, check_cancel: Callable[[], None] = lambda: None) -> int:
        """Hash what is left (every core, normal priority); the descriptor once every file matches its manifest.
        ``check_cancel`` is called between steps of 16 MB (it raises to stop)."""
        self._halt()
        if self.problem is not None:
            raise self.problem

        def complete(followed: Followed) -> None:
            fd = self._open_file(followed)
            try:
                while followed.read(fd):
                    check_cancel()
                followed.done = True
            finally:
                os.close(fd)

        left = [f for f in self.files if not f.done]
        if left:
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="migrate-tui-drill-hash") as pool:
                list(pool.map(complete, left))
        if any((f.size, f.digest.hexdigest()) != self.expected[f.name] for f in self.files):
            raise changed(self.backup.name)
        fd, self.fd = self.fd, -1
        return fd

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def close(self) -> None:
        """Stop hashing and close the descriptor unless :meth:`finish` handed it over."""
        self._halt()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_checked(backup: LoadedBackup, workers: int) -> int:
    """The backup (a file, or a directory of files) checked against its manifest, in the caller's thread and on
    ``workers`` cores; its descriptor."""
    check = BackupCheck(backup, workers).start(idle=False)
    try:
        return check.finish()
    finally:
        check.close()
