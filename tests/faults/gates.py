"""Stopping the tool's children where the test wants them, and finding what a killed run left behind.

:class:`Gate`: a wrapper named like a PostgreSQL program (first in ``PG_DUMP``'s directory, so it is
also the sibling the tool takes for ``pg_restore`` and ``psql``) that announces itself and waits at a
FIFO until the test opens the gate, then becomes the real program. Children get an allowlisted
environment only, so the wrapper carries its settings in the script itself. The shell waits itself (no
child of its own), so a signal to the wrapper stops it as it would stop the real program.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from engine.engine_support import wait_until

PASS = """#!/bin/sh
exec '{real}' "$@"
"""

GATED = """#!/bin/sh
case "$1" in --version|-V) exec '{real}' "$@";; esac
: > '{started}.'$$
read gate < '{fifo}' || :
exec '{real}' "$@"
"""


class Gate:
    """``bin_dir``: wrappers for every program in ``programs`` (pass-through), ``gated`` waits at the gate."""

    def __init__(self, root: Path, real_bin: Path, gated: str,
                 programs: tuple[str, ...] = ("pg_dump", "pg_restore", "psql")) -> None:
        self.bin_dir = root / "bin"
        self.bin_dir.mkdir(parents=True)
        self.fifo = root / "gate.fifo"
        os.mkfifo(self.fifo, 0o600)
        self.started = root / f"{gated}.started"
        for name in programs:
            text = GATED if name == gated else PASS
            script = self.bin_dir / name
            script.write_text(text.format(real=real_bin / name, started=self.started, fifo=self.fifo))
            script.chmod(0o700)

    @property
    def env(self) -> dict[str, str]:
        return {"PG_DUMP": str(self.bin_dir / "pg_dump"), "PG_RESTORE": str(self.bin_dir / "pg_restore")}

    def waiting(self) -> list[int]:
        """PIDs of the gated program that announced themselves."""
        return [int(p.name.rsplit(".", 1)[1]) for p in self.started.parent.glob(self.started.name + ".*")]

    def wait_reached(self, timeout: float = 60) -> int:
        (pid,) = wait_until(self.waiting, timeout, f"{self.started.stem} to reach the gate")
        return pid

    def open(self, timeout: float = 10) -> bool:
        """Let a waiting program through (False when none waits: it was stopped meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: nobody has the FIFO open for reading (yet, or any more)
                if exc.errno != errno.ENXIO:
                    raise
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
                continue
            os.close(fd)
            return True


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def partials(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.partial")) if directory.exists() else []


def unlocked(path: Path) -> bool:
    """No process holds the flock of a temporary file (the writer, or an orphaned pg_dump, has ended)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
