"""Demo-database states that make the migration fail, for screenshots and guided tours.

Each function takes a DATABASE_URL of a demo (or test) database and changes it
so the next run meets a failure an operator can meet in production. Used by
``python -m tui.screenshots``; never run against a real target.
"""

from __future__ import annotations

from psycopg import sql

from .db import connect_url
from .schema import TABLE, Table


def index_name_clash(url: str, *, on_table: str = "orders", column: str = "status",
                     table: Table = TABLE) -> str:
    """Another table already uses the name of one of our indexes: the Index Creation step fails (42P07)."""
    name = next(ix.name for ix in table.indexes if ix.column == column)
    with connect_url(url) as conn:
        conn.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
            sql.Identifier(name), sql.Identifier("public", on_table), sql.Identifier(column)))
    return name
