"""Events recorded from real engine runs (record.py), replayed by the wizard's snapshot tests.

``events.json`` holds, per scenario, what the real Preflight, Backup, Migration, Verify and Rollback emitted
on PostgreSQL 18 — normalized only in the named volatile fields of serial.py — and, for a cancelled run, how
many events came before the cancel. tests/tui/test_recorded_events.py records them again and compares every
field, so these cannot drift from the engine. Re-record after an intended engine change with
``.venv/bin/python tests/tui/recorded/record.py`` (a few seconds) and review the diff.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path
from typing import Any, Callable

from recorded.serial import decode

FIXTURE = Path(__file__).with_name("events.json")


@cache
def _scenarios() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def names() -> list[str]:
    return list(_scenarios())


def events(name: str) -> list:
    """The scenario's events, as the engine's own objects."""
    return [decode(e) for e in _scenarios()[name]["events"]]


def cancelled_after(name: str) -> int:
    """How many events a cancelled scenario emitted before it was cancelled (while it waited on a lock)."""
    return _scenarios()[name]["cancelled_after"]


def overview(name: str):
    """The Target screen's TargetOverview from a real ``describe_target`` ("overview-absent", ...)."""
    (recorded,) = events(name)
    return recorded


def describe(name: str) -> Callable:
    """A ``describe`` for MigrateApp: the recorded overview, whatever the settings."""
    recorded = overview(name)
    return lambda settings: recorded


def check_results(name: str) -> list:
    """The checklist's rows of a recorded Preflight ("checklist-ready", "checklist-warning", "checklist-failure")."""
    return [e.result for e in events(name) if type(e).__name__ == "CheckCompleted"]


def checks(name: str) -> Callable:
    """A ``checks`` function for ChecklistScreen that yields the recorded rows (and the recorded table state)."""
    finished = events(name)[-1]

    def run(settings, checklist, **options):
        checklist.table_state = finished.checklist.table_state
        for result in check_results(name):
            checklist.results.append(result)
            yield result
    return run


class Replay:
    """Emits a recorded scenario through ``emit``, like the operation it stands for (run() / cancel()).

    ``pause_at``: before that event, wait until cancel() — a cancelled scenario pauses where the real run was
    cancelled, then ends as it did; ``stop``: end there instead (return None), for a replay that is cancelled
    where the real run went on (the rollback waiting for its lock)."""

    def __init__(self, emit, recorded: list, pause_at: int | None = None, stop: bool = False) -> None:
        self.emit, self.events = emit, recorded
        self.pause_at, self.stop = pause_at, stop
        self._cancel = threading.Event()

    @classmethod
    def of(cls, name: str, *, pause: bool = False, stop_before: str | None = None) -> Callable:
        """A factory (``settings, emit, ...``) replaying ``name``; ``pause``: at its cancel; ``stop_before``: stay
        waiting before the first event of that type until cancelled."""
        recorded = events(name)
        pause_at = cancelled_after(name) if pause else None
        if stop_before is not None:
            pause_at = next(i for i, e in enumerate(recorded) if type(e).__name__ == stop_before)
        return lambda settings, emit, *args: cls(emit, recorded, pause_at, stop=stop_before is not None)

    def run(self):
        for index, event in enumerate(self.events):
            if index == self.pause_at:
                self._cancel.wait(60)
                if self.stop:
                    return None
            self.emit(event)
        return self.events[-1]

    def cancel(self) -> None:
        self._cancel.set()
