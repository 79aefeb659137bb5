"""Events of the post-migration verification (the guide's "Verify Migration Success"): read-only."""

from __future__ import annotations

from dataclasses import dataclass

from ..outcome import Finished


@dataclass(frozen=True)
class VerifyStarted:
    masked_url: str
    schema: str
    table: str


@dataclass(frozen=True)
class TableListed:
    """The guide's own query (``information_schema.tables``) and the rows it returned."""

    query: str  # as the guide writes it, with this schema
    rows: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return len(self.rows) == 1


@dataclass(frozen=True)
class TableDescribed:
    """``\\d database_backups`` from the catalog, each line judged against the definition."""

    lines: tuple  # migration.describe.Line items

    @property
    def mismatches(self) -> int:
        return sum(1 for line in self.lines if not line.ok)


@dataclass(frozen=True)
class VerifyFinished(Finished):
    """SUCCESS: the table exists and every line matches the guide's definition; FAILED otherwise."""

    found: bool = False
    lines: tuple = ()


VerifyEvent = VerifyStarted | TableListed | TableDescribed | VerifyFinished
