"""Events of a restore drill (the backup restored into a throwaway PostgreSQL and compared with the source)
and of a rehearsal (the migration, its rollback and the restore of the safety copy, run on that copy)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OperatorError
from ..outcome import Finished, Outcome


@dataclass(frozen=True)
class TableCheck:
    """One row of the comparison table: a table's rows in the backup, in the restored copy (and on the source,
    counted in the dump's snapshot, with --exact)."""

    table: str  # schema.table, each part quoted when it needs it
    rows_backup: int
    rows_restored: int | None  # None: the table is missing from the copy
    rows_exact: int | None = None

    @property
    def ok(self) -> bool:
        return self.rows_restored == self.rows_backup and self.rows_exact in (None, self.rows_backup)


@dataclass(frozen=True)
class Difference:
    """An object of the source that the copy lacks, has in another form, or has in excess."""

    kind: str  # schema, table, column, index, constraint, sequence, sequence value, view, function, extension, type
    name: str
    problem: str

    def describe(self) -> str:
        return f"{self.kind} {self.name}: {self.problem}"


@dataclass(frozen=True)
class DrillStarted:
    backup: str
    format: str
    source: str  # "PostgreSQL 15.18, database shop"
    tables_total: int
    rows_total: int
    size_bytes: int
    exact: bool = False  # the manifest has the source's own counts too
    removed: tuple[str, ...] = ()  # throwaway servers of killed runs, stopped and removed first
    scratch: str | None = None  # the operator's scratch database (masked URL), when one was given


@dataclass(frozen=True)
class DrillPhase:
    """A phase of the drill began (``elapsed_ms`` None) or ended: verify, server, roles, restore, count, compare."""

    phase: str
    message: str
    elapsed_ms: float | None = None


@dataclass(frozen=True)
class DrillProgress:
    """The restore so far: tables done (and those being loaded now), rows and bytes read back from the backup."""

    tables_done: int
    tables_total: int
    rows_done: int
    rows_total: int
    bytes_done: int
    bytes_total: int  # 0: not known (an archive's data is compressed)
    fraction: float
    running: tuple[str, ...]
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class DrillTableChecked:
    check: TableCheck


@dataclass(frozen=True)
class DrillCompared:
    object_counts: tuple[tuple[str, int], ...]  # (kind, how many the source has)
    differences: tuple[Difference, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillFinished(Finished):
    """SUCCESS: restored, every table's rows and every object match. FAILED: what did not (named), or why it
    could not be restored here (with the fix). The throwaway server is gone either way (``removed``) unless it
    was handed to the rehearsal (``kept``)."""

    backup: str = ""
    server: str = ""  # "PostgreSQL 15.18 (/usr/lib/postgresql/15/bin)" or the scratch database
    tables: tuple[TableCheck, ...] = ()
    differences: tuple[Difference, ...] = ()
    notes: tuple[str, ...] = ()
    missing_extensions: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()  # roles the dump needs (not in the dump: create them before a real restore)
    restore_s: float = 0.0
    removed: bool = False
    kept: bool = False
    manifest_updated: bool = False

    @property
    def mismatched(self) -> tuple[TableCheck, ...]:
        return tuple(t for t in self.tables if not t.ok)


@dataclass(frozen=True)
class RehearsalStarted:
    copy: str  # the throwaway database, described
    schema: str
    phases: tuple[str, ...]


@dataclass(frozen=True)
class RehearsalPhaseStarted:
    phase: str  # migrate, rollback, restore


@dataclass(frozen=True)
class Rehearsed:
    """An event of the engine operation a phase runs (a migration step, the rollback's drop, ...)."""

    phase: str
    event: object


@dataclass(frozen=True)
class PhaseResult:
    phase: str
    outcome: Outcome
    message: str
    elapsed_ms: float
    error: OperatorError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@dataclass(frozen=True)
class RehearsalPhaseFinished:
    result: PhaseResult


@dataclass(frozen=True)
class RehearsalFinished(Finished):
    """SUCCESS: every phase succeeded on the copy. FAILED: the phase that did not, with its message; the
    production migration must not start. The throwaway server is removed either way (``removed``)."""

    phases: tuple[PhaseResult, ...] = ()
    removed: bool = False
    manifest_updated: bool = False
    step_timings: tuple[tuple[str, float], ...] = field(default=())  # (the guide's step, ms) on real data


DrillEvent = DrillStarted | DrillPhase | DrillProgress | DrillTableChecked | DrillCompared | DrillFinished
RehearsalEvent = RehearsalStarted | RehearsalPhaseStarted | Rehearsed | RehearsalPhaseFinished | RehearsalFinished
