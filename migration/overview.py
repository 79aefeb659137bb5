"""What the wizard's Target screen shows: the server, the table state, the optional variables.

``describe_target(settings)`` opens one short read-only connection (SELECTs on
the catalog only) and never raises: a failure becomes ``overview.error`` with a
message and a fix hint. No Textual here; the headless commands may reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import IndexFact, StructureReport
from .db import ServerFacts
from .errors import OperatorError
from .pooler import PoolerReport
from .schema import TABLE, Table
from .settings import Settings

OVERVIEW_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class TargetOverview:
    masked_url: str
    schema: str
    table: str
    optional: dict[str, bool] = field(default_factory=dict)
    facts: ServerFacts | None = None
    report: StructureReport | None = None
    error: OperatorError | None = None
    pooler: PoolerReport | None = None  # None: not looked at (the server could not be read)

    @property
    def state(self) -> str:
        """absent / valid / invalid, or unknown when the server could not be read."""
        return self.report.state if self.report is not None else "unknown"

    @property
    def state_text(self) -> str:
        report = self.report
        if report is None:
            return "unknown (the server could not be read)"
        if not report.exists:
            return "absent: the migration will create it"
        if report.valid:
            return "present and valid: the migration is not needed"
        if report.not_a_table:
            rel = report.relation
            return (f"{self.schema}.{self.table} is a {rel.kind}, not a table (owner {rel.owner}): "
                    "migrate-tui never reads or drops it")
        return "present but invalid:\n" + "\n".join(f"• {p}" for p in report.problems)

    @property
    def notes(self) -> tuple[str, ...]:
        """Things the operator should know before running (not failures of the overview itself)."""
        out: list[str] = []
        report = self.report
        if report is not None and report.exists and not report.valid:
            from .catalog import structure_error

            out.append(f"Fix: {structure_error(report, self.schema).hint}")
        if report is not None:
            out.extend(f"Note: {d}" for d in report.differences)
            out.extend(_clash_note(ix) for ix in report.foreign_index_names)
        if self.facts is not None and self.facts.in_recovery:
            out.append("The server is a read-only standby (in recovery): point DATABASE_URL at the primary.")
        if self.pooler is not None and self.pooler.present:
            out.append(f"Connection pooler: {self.pooler.describe('check')}")
        return tuple(out)


def _clash_note(ix: IndexFact) -> str:
    return (f"The name {ix.name} is already used by {ix.table}: the Index Creation step will fail "
            "(SQLSTATE 42P07) unless it is renamed or dropped first.")


def describe_target(settings: Settings, table: Table = TABLE) -> TargetOverview:
    """Server facts and table state in one short connection; never raises."""
    from . import catalog
    from .db import connect, server_facts
    from .errors import explain
    from .pooler import detect

    base = dict(masked_url=settings.masked_url, schema=settings.schema, table=table.name,
                optional=settings.optional_present())
    facts = None
    try:
        with connect(settings, connect_timeout=OVERVIEW_CONNECT_TIMEOUT_S) as conn:
            facts = server_facts(conn)
            pooler = detect(conn, settings, facts.backend_pid)
            report = catalog.inspect(conn, settings.schema, table)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message and a fix hint
        user = facts.user if facts else None
        try:
            user = user or settings.target["user"]
        except Exception:
            pass
        error = explain(exc, user=user, schema=settings.schema, secrets=settings.secrets())
        return TargetOverview(**base, facts=facts, error=error)
    return TargetOverview(**base, facts=facts, report=report, pooler=pooler)


def lock_waits(settings: Settings) -> tuple:
    """Who the migration is waiting for: the sessions blocking a migrate-tui backend of this database.

    Read on a separate short connection while a step runs long (the wizard polls it); returns
    ``migration.rollback_events.Blocker`` items (redacted queries), empty when nothing waits on
    a lock. Never raises: a failure to look is not a failure of the migration.
    """
    import psycopg

    from .db import APPLICATION_NAME, connect
    from .errors import MigrateError
    from .locks import blockers

    try:
        with connect(settings, connect_timeout=OVERVIEW_CONNECT_TIMEOUT_S,
                     application_name=f"{APPLICATION_NAME} (lock monitor)") as conn:
            waiting = [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", (APPLICATION_NAME,)).fetchall()]
            found: dict[int, object] = {}
            for pid in waiting:
                for blocker in blockers(conn, pid, settings.secrets()):
                    if blocker.pid not in waiting:
                        found.setdefault(blocker.pid, blocker)
            return tuple(found.values())
    except (psycopg.Error, OSError, MigrateError):  # best effort, shown only as a hint (a bug still shows)
        return ()
