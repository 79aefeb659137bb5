"""While the rollback's DROP waits for its lock: who is in the way, re-read on the monitor connection."""

from __future__ import annotations

import threading
import time
from typing import Callable

from .. import locks
from ..events import Blocker, WaitingForLock


class LockWatch:
    """While the DROP waits for a lock, re-reads who blocks it on the monitor connection.

    ``monitor(read)`` runs ``read(connection)`` on the monitor connection; ``emit`` reports each change."""

    def __init__(self, monitor: Callable, emit: Callable, pid: int, attempt: int, attempts: int,
                 interval_s: float, secrets: list[str]) -> None:
        self.monitor, self.emit = monitor, emit
        self.pid = pid
        self.attempt, self.attempts = attempt, attempts
        self.interval_s, self.secrets = interval_s, secrets
        self.last: tuple[Blocker, ...] = ()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="migrate-tui-lock-watch", daemon=True)
        self._t0 = time.perf_counter()
        self.monitor(lambda m: None)  # open the monitor connection before waiting

    def __enter__(self) -> "LockWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _loop(self) -> None:
        wait = min(0.1, self.interval_s)
        while not self._stop.wait(wait):
            wait = self.interval_s
            try:
                found = self.monitor(lambda m: locks.blockers(m, self.pid, self.secrets))
            except Exception:  # noqa: BLE001 - best effort; the DROP's own timeout still bounds the wait
                return
            if found and not self._stop.is_set():
                self.last = found
                self.emit(WaitingForLock(self.attempt, self.attempts, (time.perf_counter() - self._t0) * 1000,
                                         found))
