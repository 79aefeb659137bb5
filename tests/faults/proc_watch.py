"""Watch /proc for the child processes of given roots and record their argv and environment.

A thread scans /proc every few milliseconds, finds every descendant of the root PIDs
(parent links from /proc/<pid>/stat) and keeps each distinct (argv, environ) it sees,
so a test can search them afterwards. Linux only.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field


@dataclass
class Seen:
    pid: int
    argv: list[bytes]
    environ: dict[bytes, bytes]

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0].decode(errors="replace")) if self.argv else "?"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _parent(pid: str) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # "pid (comm) state ppid ...": comm may contain spaces and parentheses; split after the last ')'.
    try:
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (ValueError, IndexError):
        return None


@dataclass
class ProcWatcher:
    roots: set[int]
    interval_s: float = 0.003
    include_roots: bool = False
    seen: list[Seen] = field(default_factory=list)
    _keys: set = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> "ProcWatcher":
        self._thread = threading.Thread(target=self._loop, name="proc-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def add_root(self, pid: int) -> None:
        with self._lock:
            self.roots.add(pid)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(self.interval_s)

    def scan(self) -> None:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                ppid = _parent(entry)
                if ppid is not None:
                    parents[int(entry)] = ppid
        with self._lock:
            roots = set(self.roots)
        for pid in parents:
            if pid in roots and not self.include_roots:
                continue
            if not self._descends(pid, roots, parents):
                continue
            argv = _read(f"/proc/{pid}/cmdline")
            environ = _read(f"/proc/{pid}/environ")
            if argv is None or environ is None:
                continue
            key = (pid, argv, environ)
            if key in self._keys:
                continue
            self._keys.add(key)
            env = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
            with self._lock:
                self.seen.append(Seen(pid, [a for a in argv.split(b"\0") if a], env))

    @staticmethod
    def _descends(pid: int, roots: set[int], parents: dict[int, int]) -> bool:
        hops = 0
        while pid in parents and hops < 64:
            if pid in roots:
                return True
            pid = parents[pid]
            hops += 1
        return pid in roots

    def named(self, name: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.name == name]

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)
