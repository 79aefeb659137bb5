"""Where the wizard's fleet comes from (``migrate-tui --fleet FILE`` or ``--demo-fleet``), like
:mod:`tui.target_source` for one database: called once from a worker thread (the demo fleet takes a few seconds
to start), it returns a checked :class:`migration.fleet.Fleet` or raises
:class:`migration.errors.ConfigError`; ``close()`` is safe from any thread, any number of times (the demo fleet's
server and its fleet file's directory go away).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from migration.fleet import Fleet


class FleetSource:
    """A fleet already read and checked (``--fleet FILE``: checked before the wizard starts)."""

    fleet = True  # tui.app.wizard_app opens the Fleet screen for it
    description = "Reading the fleet file"

    def __init__(self, read: Callable[[], "Fleet"], selection: str = "") -> None:
        self._read = read
        self.selection = selection  # what --only / --shard kept of the file ("" for all of it)

    def __call__(self) -> "Fleet":
        return self._read()

    def close(self) -> None:
        pass


class DemoFleetSource(FleetSource):
    """The demo fleet (:class:`migration.demo.DemoFleet`): several databases on the embedded server."""

    description = "Starting the demo fleet (embedded PostgreSQL, six databases)"

    def __init__(self, lock_wait: float | None = None, select: Callable[["Fleet"], "Fleet"] | None = None) -> None:
        """``select``: --only / --shard, applied to the demo's fleet file once it is read."""
        super().__init__(self._start, getattr(select, "description", ""))
        self._lock = threading.Lock()
        self._closed = False
        self._lock_wait = lock_wait
        self._select = select
        self.demo = None

    def _start(self) -> "Fleet":
        from migration.demo import DemoFleet
        from migration.errors import ConfigError
        from migration.fleet import read_fleet

        with self._lock:  # close() waits for a start in progress, then stops it
            if self._closed:
                raise ConfigError("The wizard is closing.", "Start it again.")
            self.demo = DemoFleet()
            path = self.demo.start()
        fleet = read_fleet(path, environ=self.demo.environ, lock_wait=self._lock_wait)
        return self._select(fleet) if self._select is not None else fleet

    def close(self) -> None:
        with self._lock:
            self._closed = True
            demo, self.demo = self.demo, None
        if demo is not None:
            demo.stop()
