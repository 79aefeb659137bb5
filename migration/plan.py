"""The SQL a migration run executes, step by step, for the dry run (`migrate-tui sql`).

The runner builds its statements with the same functions, so the preview is
exactly what runs. Connection-test and catalog-reading SELECTs are not shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from .db import PIN_SEARCH_PATH
from .events import Step
from .schema import TABLE, Table
from .settings import Settings


def advisory_key(schema: str, table: Table = TABLE) -> int:
    """A stable signed 64-bit key for pg_try_advisory_xact_lock, per schema and table."""
    import hashlib

    digest = hashlib.sha256(f"migrate-tui:{schema}.{table.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def try_lock(schema: str, table: Table = TABLE) -> sql.Composed:
    return sql.SQL("SELECT pg_try_advisory_xact_lock({})").format(sql.Literal(advisory_key(schema, table)))


def set_local(name: str, ms: int) -> sql.Composed:
    return sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(f"{ms}ms"))


@dataclass(frozen=True)
class PlannedStatement:
    step: Step
    statement: sql.Composable
    comment: str = ""


def migration_plan(settings: Settings, table: Table = TABLE) -> list[PlannedStatement]:
    s = settings.schema
    return [
        PlannedStatement(Step.TRANSACTION_START, sql.SQL("BEGIN")),
        PlannedStatement(Step.TRANSACTION_START, sql.SQL(PIN_SEARCH_PATH),
                         "only built-in functions and types, whatever other roles created in other schemas"),
        PlannedStatement(Step.TRANSACTION_START, try_lock(s, table),
                         "only one migrate-tui run at a time (released at commit/rollback)"),
        PlannedStatement(Step.TRANSACTION_START, set_local("lock_timeout", settings.lock_timeout_ms)),
        PlannedStatement(Step.TRANSACTION_START, set_local("statement_timeout", settings.statement_timeout_ms)),
        PlannedStatement(Step.TABLE_CREATION, table.create_table(s)),
        *(PlannedStatement(Step.INDEX_CREATION, stmt) for stmt in table.create_indexes(s)),
        PlannedStatement(Step.SEQUENCE_RESET, table.reset_sequence(s)),
        PlannedStatement(Step.VERIFICATION, table.probe_insert(s, literal=True),
                         "a verification row (the values are sent as bound parameters)"),
        PlannedStatement(Step.VERIFICATION, table.probe_delete(s, row_id=1),
                         "delete it by the id the INSERT returned (1 on the new table)"),
        PlannedStatement(Step.VERIFICATION, table.reset_sequence(s), "so the first real row gets id 1"),
        PlannedStatement(Step.TRANSACTION_COMMIT, sql.SQL("COMMIT")),
    ]


def render_plan(settings: Settings, table: Table = TABLE) -> str:
    lines = [f"-- migrate-tui: add {table.name} to schema {settings.schema}",
             "-- Runs in one transaction; any failure rolls everything back."]
    current = None
    for planned in migration_plan(settings, table):
        if planned.step is not current:
            current = planned.step
            lines.append("")
            lines.append(f"-- Step {current.value}: {current.title} - {current.description}")
        if planned.comment:
            lines.append(f"-- {planned.comment}")
        lines.append(planned.statement.as_string(None) + ";")
    return "\n".join(lines) + "\n"


def rollback_sql(settings: Settings, table: Table = TABLE, cascade: bool = True) -> str:
    """The guide's manual rollback statement for this schema."""
    return table.drop(settings.schema, cascade=cascade).as_string(None) + ";"
