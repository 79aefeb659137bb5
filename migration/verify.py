"""The guide's post-migration "Verify Migration Success", read-only: its own query, then ``\\d database_backups``.

``Verify(settings, emit).run()`` runs, in one READ ONLY transaction, the guide's query
(``SELECT table_name FROM information_schema.tables WHERE table_schema = … AND table_name = …``) and
reads the table's structure from the catalog (:func:`migration.catalog.inspect`: columns, types,
defaults, indexes, constraints, sequence — never a row), each line judged against the one
definition (:mod:`migration.describe`). SUCCESS only when the table is there and every line matches.
"""

from __future__ import annotations

import psycopg

from . import catalog
from .db import connect
from .describe import described, summary
from .errors import OperatorError
from .events.verify import TableDescribed, TableListed, VerifyFinished, VerifyStarted
from .operation import Emit, Operation, Stop
from .outcome import Outcome
from .schema import TABLE, Table
from .settings import Settings

_LISTED = ("SELECT table_name::text FROM information_schema.tables "
           "WHERE table_schema = %s::text AND table_name = %s::text")


def guide_query(schema: str, table: Table = TABLE) -> str:
    """The guide's query as it writes it, on its two lines (for the operator to read and copy), with this schema."""
    return (f"SELECT table_name FROM information_schema.tables\n"
            f"WHERE table_schema = '{schema}' AND table_name = '{table.name}';")


class Verify(Operation):
    name = "verify"
    cancelled_hint = "Nothing was changed (the verification only reads). Run it again when ready."

    def __init__(self, settings: Settings, emit: Emit | None = None, table: Table = TABLE) -> None:
        super().__init__(settings, emit)
        self.table = table
        self._conn: psycopg.Connection | None = None

    def _interrupt(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.cancel_safe(timeout=5)

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _perform(self) -> VerifyFinished:
        s, table = self.settings, self.table
        self.emit(VerifyStarted(s.masked_url, s.schema, table.name))
        self._conn = conn = connect(s)
        self.check_cancel()
        conn.begin("READ ONLY")
        rows = tuple(r[0] for r in conn.execute(_LISTED, (s.schema, table.name)).fetchall())
        self.emit(TableListed(guide_query(s.schema, table), rows))
        report = catalog.inspect(conn, s.schema, table)  # the catalog only: no row is read
        conn.execute("ROLLBACK")
        if not report.exists:
            raise Stop(Outcome.FAILED, f"Table {s.schema}.{table.name} does not exist.", OperatorError(
                f"Table {s.schema}.{table.name} does not exist: the migration has not been applied to this schema.",
                "Run the migration first (the wizard, or migrate-tui run)."))
        if report.not_a_table:
            raise Stop(Outcome.FAILED, "Not a table.", catalog.structure_error(report, s.schema, table))
        lines = described(report, s.schema, table)
        self.emit(TableDescribed(lines))
        bad = [line for line in lines if not line.ok]
        if not rows:  # the catalog has it but information_schema does not show it: no privilege on it
            bad_listing = OperatorError(
                f"The guide's query does not list {s.schema}.{table.name}: your role has no privilege on it.",
                f"Run as the role that owns the table ({report.relation.owner if report.relation else '?'}).")
            return self._finish(Outcome.FAILED, "The guide's query does not list the table.", lines, bad_listing)
        if bad:
            names = ", ".join(f"{line.section.lower()} {line.name}" for line in bad[:4])
            more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
            error = OperatorError(f"{summary(lines)} ({names}{more})",
                                  catalog.GUIDE_FIX_INVALID.format(table=f'"{s.schema}"."{table.name}"'))
            return self._finish(Outcome.FAILED, summary(lines), lines, error)
        return self._finish(Outcome.SUCCESS, f"Migration verified: {summary(lines)}", lines)

    def _finish(self, outcome: Outcome, message: str, lines, error: OperatorError | None = None) -> VerifyFinished:
        return VerifyFinished(outcome, message, error, self.elapsed_ms, found=True, lines=tuple(lines))

    def _ended(self, outcome: Outcome, message: str, error: OperatorError | None = None,
               details: tuple[str, ...] = ()) -> VerifyFinished:
        return VerifyFinished(outcome, message, error, self.elapsed_ms)
