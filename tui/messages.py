"""Typed messages that carry engine results from worker threads to screens.

Workers call ``widget.post_message(...)`` (thread-safe); screens handle them
with ``on_<message_name>`` methods. Engine objects travel inside unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from migration.overview import TargetOverview
    from migration.settings import Settings


class SettingsReady(Message):
    """The target's settings are known (DATABASE_URL read, or the demo database started)."""

    def __init__(self, settings: "Settings") -> None:
        super().__init__()
        self.settings = settings


class OverviewLoaded(Message):
    """Server facts and table state read by :func:`migration.overview.describe_target`."""

    def __init__(self, overview: "TargetOverview") -> None:
        super().__init__()
        self.overview = overview


class EngineEvent(Message):
    """One event of any engine operation (migration.events), posted to the screen that runs it."""

    def __init__(self, event: Any, at: Any = None, run: int = 0) -> None:
        super().__init__()
        self.event = event
        self.at = at  # datetime the event was received (None in deterministic mode)
        self.run = run  # which of the screen's operations sent it (WizardScreen.run_count)


class OperationEnded(Message):
    """An engine operation's worker has ended (posted to the app; its Finished came before)."""

    def __init__(self, operation: Any, result: Any = None) -> None:
        super().__init__()
        self.operation = operation
        self.result = result  # its Finished (None if the worker crashed)


class SettingsFailed(Message):
    """The configuration is missing or invalid (a ConfigError), or the demo database did not start."""

    def __init__(self, error) -> None:
        super().__init__()
        self.error = error  # migration.errors.OperatorError


class LockWaits(Message):
    """The sessions a running step waits for (migration.overview.lock_waits), polled while it runs long."""

    def __init__(self, step: int, blockers: tuple) -> None:
        super().__init__()
        self.step = step  # Step number (1-8)
        self.blockers = blockers  # migration.events.Blocker items
