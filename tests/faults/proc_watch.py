"""Watch /proc for the child processes of given roots and record their argv and environment.

A thread scans /proc every few milliseconds, finds every descendant of the root PIDs
(parent links from /proc/<pid>/stat) and keeps each distinct (argv, environ) it sees,
so a test can search them afterwards. Linux only.

:class:`ProcessWatcher` does the same from a separate process (``python proc_watch.py``),
for tests whose own process must not share its interpreter with a busy polling thread
(a Textual app under Pilot).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path


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
    exclude: set[int] = field(default_factory=set)
    on_new: object = None  # called with each new Seen (the watcher process writes it out)
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
            if (pid in roots and not self.include_roots) or pid in self.exclude:
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
            seen = Seen(pid, [a for a in argv.split(b"\0") if a], env)
            with self._lock:
                self.seen.append(seen)
            if self.on_new is not None:
                self.on_new(seen)

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


class ProcessWatcher:
    """A ProcWatcher for one root PID, running in its own process; results are read from a file."""

    def __init__(self, root: int, interval_s: float = 0.003) -> None:
        self.root = root
        self.interval_s = interval_s
        self.path = Path(tempfile.mkstemp(prefix="proc-watch-", suffix=".jsonl")[1])

    def __enter__(self) -> "ProcessWatcher":
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.root), str(self.interval_s), str(self.path)],
                                     stdin=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)
        self.path.unlink(missing_ok=True)

    def snapshot(self) -> list[Seen]:
        out = []
        for line in self.path.read_text().splitlines():
            try:
                item = json.loads(line)
            except ValueError:  # a line being written
                continue
            out.append(Seen(item["pid"], [bytes.fromhex(a) for a in item["argv"]],
                            {bytes.fromhex(k): bytes.fromhex(v) for k, v in item["environ"].items()}))
        return out

    def named(self, name: str) -> list[Seen]:
        return [s for s in self.snapshot() if s.name == name]


def _serve(root: int, interval_s: float, out_path: str) -> None:
    with open(out_path, "a", encoding="ascii") as out:
        def write(seen: Seen) -> None:
            out.write(json.dumps({"pid": seen.pid, "argv": [a.hex() for a in seen.argv],
                                  "environ": {k.hex(): v.hex() for k, v in seen.environ.items()}}) + "\n")
            out.flush()

        watcher = ProcWatcher({root}, interval_s, exclude={os.getpid()}, on_new=write)
        with watcher:
            sys.stdin.read()  # until the test closes our stdin


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
