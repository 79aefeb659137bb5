"""How every operation ends: one :class:`Outcome` for all of them, and :class:`Finished`, their last event
(re-exported with every other event by :mod:`migration.events`).

Light on purpose (no database driver): the exit-code table (:mod:`migration.exit_codes`) and the
headless start-up import it before anything connects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import OperatorError


class Outcome(enum.Enum):
    SUCCESS = "success"  # done and verified: migrated, backed up, dropped, restored, checked
    NOT_NEEDED = "not_needed"  # nothing to do: the table is already valid / there is nothing to roll back
    NEEDS_CONFIRMATION = "needs_confirmation"  # refused: objects depend on the table and were not confirmed
    CHANGED = "changed_since_preview"  # refused: what the operator confirmed is no longer what is there
    FAILED = "failed"  # did not happen; the report says (from the catalog) what the database holds
    CANCELLED = "cancelled"  # the operator stopped it; everything rolled back, partial files deleted
    BUSY = "busy"  # another migrate-tui migration or rollback holds the lock

    @property
    def ok(self) -> bool:
        return self in (Outcome.SUCCESS, Outcome.NOT_NEEDED)


@dataclass(frozen=True)
class Finished:
    """The last event of an operation, also what its ``run()`` returns."""

    outcome: Outcome
    message: str
    error: OperatorError | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome.ok


@dataclass(frozen=True)
class Notice:
    """A server NOTICE or another line for the operator that is not a step of its own."""

    message: str
