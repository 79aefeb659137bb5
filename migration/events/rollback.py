"""Events of a manual rollback (preview, safety copy, lock-aware DROP, verification) and of a restore."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..outcome import Finished


@dataclass(frozen=True)
class Dependent:
    """An object that DROP ... CASCADE would also remove (or remove from another table)."""

    kind: str  # pg_identify_object type: "view", "table constraint", "function", "table column", ...
    identity: str  # schema-qualified, e.g. "public.recent_backups" or "orders_fkey on public.orders"
    alters: str | None = None  # the other table this changes (constraint/column/default/trigger), if any
    catalog: str = ""  # pg_class, pg_constraint, ... (to verify it is gone)
    oid: int = 0
    subid: int = 0  # a column number when a column of another table is dropped
    owner: str = ""  # its owner, or the owner of the table it belongs to
    ours: bool = True  # owned by the operator's role (or a role it belongs to, unless a superuser)
    keep: str = ""  # how the safety copy keeps it: "pg_dump", "definition", "part of <key>"; "" when it cannot
    why_lost: str = ""  # why no copy can keep it (empty: it can)

    @property
    def key(self) -> str:
        """What the operator confirms: kind + schema-qualified identity."""
        return f"{self.kind} {self.identity}"

    @property
    def label(self) -> str:
        return self.key + (f" (alters table {self.alters})" if self.alters else "")

    @property
    def recoverable(self) -> bool:
        """Whether the safety copy can hold what recreates it."""
        return not self.why_lost

    @property
    def fate(self) -> str:
        """What happens to it, in the operator's words (the preview and the wizard's dialog)."""
        if not self.ours:
            return f"owned by {self.owner or 'another role'}: migrate-tui does not drop it"
        if not self.recoverable:
            return f"NOT recoverable: {self.why_lost}"
        return "kept in the safety copy"


@dataclass(frozen=True)
class Preview:
    """What a rollback would do, read from the catalog without side effects."""

    schema: str
    table: str
    exists: bool
    row_count: int = 0
    size_bytes: int = 0
    size_pretty: str = "0 bytes"
    indexes: tuple[str, ...] = ()  # schema-qualified
    sequence: str | None = None  # schema-qualified
    dependents: tuple[Dependent, ...] = ()
    drop_sql: str = ""
    server_version: str = ""
    kind: str = "table"  # what the relation is (a view, a sequence, ... is never read from or dropped)
    relkind: str = "r"  # pg_class.relkind
    owner: str = ""
    can_drop: bool = True  # the current role owns the table (or may act as its owner)

    @property
    def is_table(self) -> bool:
        return self.kind == "table"

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def dependent_keys(self) -> frozenset[str]:
        return frozenset(d.key for d in self.dependents)

    @property
    def needs_cascade(self) -> bool:
        return bool(self.dependents)

    @property
    def others(self) -> tuple[Dependent, ...]:
        """Dependents owned by other roles: the rollback refuses to drop them."""
        return tuple(d for d in self.dependents if not d.ours)

    @property
    def lost(self) -> tuple[Dependent, ...]:
        """Dependents no safety copy can hold: dropping them needs an explicit acceptance."""
        return tuple(d for d in self.dependents if not d.recoverable)


@dataclass(frozen=True)
class SafetyCopy:
    path: str
    size_bytes: int
    sha256: str
    rows: int
    restore_command: str
    pg_dump: str  # the pg_dump binary used, with its version
    elapsed_ms: float = 0.0
    manifest: str = ""  # the manifest beside the copy (its sha256 and size)
    dependents: tuple[str, ...] = ()  # labels of the dependents whose definitions the copy also holds
    not_kept: tuple[str, ...] = ()  # "label: why" of the dependents it cannot hold (dropped all the same)


@dataclass(frozen=True)
class Blocker:
    """Another session holding or waiting ahead for a conflicting lock (never its password)."""

    pid: int
    application_name: str
    user: str
    state: str
    xact_age_s: float | None
    query: str  # truncated and redacted
    hidden: bool = False  # the operator's role may not see its state, transaction or query (pg_stat_activity)
    holds: str = ""  # the lock modes it holds on what we wait for (pg_locks: visible to every role)

    @property
    def privilege_note(self) -> str:
        """What the operator's role cannot see, and what would show it (empty when nothing is hidden)."""
        if not self.hidden:
            return ""
        return (f"its state, transaction and query are hidden from your role: grant it pg_read_all_stats, or look "
                f"as {self.user or 'its user'} or a superuser, to see them")

    def describe(self) -> str:
        app = self.application_name or "(no application_name)"
        holds = f", holds {self.holds}" if self.holds else ""
        head = f"pid {self.pid} {app} user {self.user or '?'}{holds}"
        if self.hidden:
            return f"{head}; {self.privilege_note}"
        age = f"transaction open {self.xact_age_s:.1f} s" if self.xact_age_s is not None else "no transaction"
        return f"{head}, {self.state or '?'}, {age}: {self.query or '(no query)'}"


@dataclass(frozen=True)
class RollbackStarted:
    masked_url: str
    schema: str
    table: str


@dataclass(frozen=True)
class PreviewReady:
    preview: Preview


@dataclass(frozen=True)
class SafetyCopyStarted:
    path: str
    pg_dump: str
    directory: str = ""  # the backup directory, resolved when it is a link
    removed: tuple[str, ...] = ()  # temporary files of killed runs, deleted before starting


@dataclass(frozen=True)
class SafetyCopyFinished:
    copy: SafetyCopy


@dataclass(frozen=True)
class SafetyCopySkipped:
    reason: str


@dataclass(frozen=True)
class WaitingForLock:
    """The DROP is waiting for its lock; sent again whenever the blockers are re-read."""

    attempt: int
    attempts: int
    waited_ms: float
    blockers: tuple[Blocker, ...]


@dataclass(frozen=True)
class LockTimedOut:
    attempt: int
    attempts: int
    blockers: tuple[Blocker, ...]
    retry_in_s: float | None  # None: no retries left


@dataclass(frozen=True)
class LockAcquired:
    attempt: int
    waited_ms: float


@dataclass(frozen=True)
class Dropped:
    statement: str
    cascade: bool
    dependents: tuple[str, ...]
    elapsed_ms: float


@dataclass(frozen=True)
class Verified:
    checks: tuple[str, ...]


@dataclass(frozen=True)
class RollbackFinished(Finished):
    """SUCCESS: dropped and verified; NOT_NEEDED: nothing to roll back; NEEDS_CONFIRMATION, CHANGED,
    FAILED, CANCELLED, BUSY: nothing dropped (read back from the catalog after any error)."""

    preview: Preview | None = None
    copy: SafetyCopy | None = None
    attempts: int = 0
    details: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RestoreStarted:
    path: str
    schema: str
    table: str
    masked_url: str


@dataclass(frozen=True)
class RestoreFinished(Finished):
    """SUCCESS: the table is back, rows and structure verified; otherwise nothing was restored (read back)."""

    rows: int = 0
    path: str = ""
    sha256: str = ""  # of the copy that was run
    recreated: tuple[str, ...] = ()  # dependents recreated and found again in the catalog (their keys)
    not_recreated: tuple[str, ...] = ()  # "key: why" of the dependents that are not back


RollbackEvent = (RollbackStarted | PreviewReady | SafetyCopyStarted | SafetyCopyFinished | SafetyCopySkipped
                 | WaitingForLock | LockTimedOut | LockAcquired | Dropped | Verified | RollbackFinished)
RestoreEvent = RestoreStarted | RestoreFinished
