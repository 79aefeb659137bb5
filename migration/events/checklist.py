"""Events of the pre-migration checklist: each check's result as it completes, then the whole list.

:attr:`Checklist.blocking` is the one rule, shared by ``run`` and the wizard, of what stops a
migration before its backup: every failure. A table with a different structure or a taken index
name is a failure (in the guide's words), so the migration never starts when it is bound to fail.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..outcome import Finished

if TYPE_CHECKING:
    from ..db import ServerFacts
    from ..pgtools import PgTool


class Status(str, enum.Enum):
    OK = "ok"
    INFO = "info"  # for the operator to know, never blocking, nothing to acknowledge (e.g. variables needed later)
    WARNING = "warning"  # a real risk for this migration: the wizard asks to acknowledge it
    FAILURE = "failure"


@dataclass(frozen=True)
class CheckResult:
    key: str  # stable id for scripts and tests, e.g. "schema_create"
    group: str  # Environment, Connection, Permissions, Table, Backup
    name: str  # what the row is labelled with
    status: Status
    detail: str  # one line
    hint: str = ""  # what to do (empty when ok)

    def as_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


@dataclass
class Checklist:
    """All results plus facts later steps reuse (the chosen pg_dump, the table state)."""

    results: list[CheckResult] = field(default_factory=list)
    facts: ServerFacts | None = None
    pg_dump: PgTool | None = None
    table_state: str | None = None  # absent / valid / invalid
    database_bytes: int | None = None

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.FAILURE]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.WARNING]

    @property
    def notes(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.INFO]

    @property
    def passed(self) -> bool:
        return not self.failures

    def by_key(self, key: str) -> CheckResult | None:
        return next((r for r in self.results if r.key == key), None)

    def summary(self) -> str:
        ok, warn, fail = self.count(Status.OK), self.count(Status.WARNING), self.count(Status.FAILURE)
        info = self.count(Status.INFO)
        verdict = "ready to migrate" if not fail else "fix the failures before migrating"
        notes = f", {info} for later" if info else ""
        return (f"{ok} ok{notes}, {warn} warning{'s' if warn != 1 else ''}, {fail} failure{'s' if fail != 1 else ''}"
                f" — {verdict}")

    @property
    def blocking(self) -> list[CheckResult]:
        """What stops the migration before the backup (in ``run`` and in the wizard alike)."""
        return self.failures


@dataclass(frozen=True)
class CheckCompleted:
    result: CheckResult


@dataclass(frozen=True)
class ChecklistFinished(Finished):
    """SUCCESS: nothing blocks the migration (warnings may remain); FAILED: a check failed."""

    checklist: Checklist | None = None


ChecklistEvent = CheckCompleted | ChecklistFinished
