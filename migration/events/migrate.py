"""Events of the migration: the guide's eight steps, as the wizard, the headless printer and the audit log see them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import OperatorError
from ..outcome import Finished, Notice

if TYPE_CHECKING:
    from ..catalog import StructureReport


class Step(enum.IntEnum):
    """The guide's eight steps, in the guide's order and with its names."""

    CONNECTION_TEST = 1
    EXISTENCE_CHECK = 2
    TRANSACTION_START = 3
    TABLE_CREATION = 4
    INDEX_CREATION = 5
    SEQUENCE_RESET = 6
    VERIFICATION = 7
    TRANSACTION_COMMIT = 8

    @property
    def title(self) -> str:
        return _TITLES[self][0]

    @property
    def description(self) -> str:
        return _TITLES[self][1]


_TITLES = {
    Step.CONNECTION_TEST: ("Connection Test", "Verifies database connectivity"),
    Step.EXISTENCE_CHECK: ("Existence Check", "Checks if table already exists"),
    Step.TRANSACTION_START: ("Transaction Start", "Begins atomic operation"),
    Step.TABLE_CREATION: ("Table Creation", "Creates the database_backups table"),
    Step.INDEX_CREATION: ("Index Creation", "Adds performance indexes"),
    Step.SEQUENCE_RESET: ("Sequence Reset", "Ensures proper ID sequencing"),
    Step.VERIFICATION: ("Verification", "Tests table functionality"),
    Step.TRANSACTION_COMMIT: ("Transaction Commit", "Finalizes changes"),
}


@dataclass(frozen=True)
class StepStarted:
    step: Step


@dataclass(frozen=True)
class StepFinished:
    step: Step
    elapsed_ms: float
    message: str
    details: tuple[str, ...] = ()
    warning: bool = False  # finished, but with something the operator should notice
    quiet: bool = False  # the guide's output does not print this step


@dataclass(frozen=True)
class StepSkipped:
    step: Step
    reason: str


@dataclass(frozen=True)
class StepFailed:
    step: Step
    elapsed_ms: float
    error: OperatorError


@dataclass(frozen=True)
class RunStarted:
    masked_url: str
    schema: str
    table: str


@dataclass(frozen=True)
class RunFinished(Finished):
    """The migration ended. ``rolled_back``: a transaction was open and was rolled back (read back)."""

    rolled_back: bool = False
    report: StructureReport | None = None
    server_version: str | None = None
    facts: dict[str, str] = field(default_factory=dict)


MigrateEvent = StepStarted | StepFinished | StepSkipped | StepFailed | Notice | RunStarted | RunFinished
