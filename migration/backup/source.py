"""What the backup reads from the source besides the dump: its objects, the operator's role, its encoding,
and with ``--exact`` every table's row count in the dump's own snapshot.

All of it is read-only. The objects (:mod:`migration.catalog_objects`), the role and the encoding
come from catalog tables only, read while pg_dump runs. Exact counts are the one extra work for
the server: ``count(*)`` of every table, on a connection whose snapshot pg_dump imports
(``pg_export_snapshot()`` then ``pg_dump --snapshot``), so they count exactly the rows the dump holds.
"""

from __future__ import annotations

from ..catalog_objects import read_objects_in_transaction
from .dumptext import qualified

_DATA_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY 1, 2
"""
_ROLE = """
SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
       coalesce((SELECT array_agg(g.rolname ORDER BY g.rolname) FROM pg_auth_members m
                 JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}')
FROM pg_roles r WHERE r.rolname = current_user
"""
_DATABASE = ("SELECT pg_encoding_to_char(encoding), pg_get_userbyid(datdba) FROM pg_database "
             "WHERE datname = current_database()")
# Who may connect to / create in / make temp tables in the database: not in a dump without --create.
_DATABASE_GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
WHERE d.datname = current_database() AND a.grantee <> d.datdba ORDER BY 1, 2
"""


_TABLE_OIDS = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


def table_oids(conn) -> dict[int, str]:
    """Every table's OID -> its name (``schema.table``, quoted as needed): to name a directory archive's data files."""
    return {int(oid): qualified(schema, name) for oid, schema, name in conn.execute(_TABLE_OIDS).fetchall()}


def data_tables(conn) -> list[tuple[str, str]]:
    """The ordinary tables whose rows pg_dump writes (not an extension's): (schema, name)."""
    return [(schema, name) for schema, name in conn.execute(_DATA_TABLES).fetchall()]


def read_in_transaction(conn) -> dict:
    """The source's facts for the manifest, inside the caller's (read-only) transaction."""
    name, superuser, inherit, createrole, createdb, bypassrls, member_of = conn.execute(_ROLE).fetchone()
    return {
        "objects": read_objects_in_transaction(conn),
        "operator_role": {"name": name, "superuser": bool(superuser), "inherit": bool(inherit),
                          "createrole": bool(createrole), "createdb": bool(createdb), "bypassrls": bool(bypassrls),
                          "member_of": list(member_of)},
        **dict(zip(("encoding", "database_owner"), conn.execute(_DATABASE).fetchone())),
        "database_grants": [list(row) for row in conn.execute(_DATABASE_GRANTS).fetchall()],
        "_table_oids": table_oids(conn),  # for this backup only, not the manifest
    }


def read(conn, lock_timeout_ms: int) -> dict:
    """The same, in a read-only transaction of its own (no --exact). Reading a column default or a view's
    definition takes a share lock on its table: it waits no longer than pg_dump does for its locks."""
    from ..plan import set_local  # the database driver loads once connected, not before pg_dump starts

    conn.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        conn.execute(set_local("lock_timeout", lock_timeout_ms))
        return read_in_transaction(conn)
    finally:
        conn.execute("ROLLBACK")


class SnapshotCounts:
    """``--exact``: a snapshot exported for pg_dump, the source's facts read in it, then every table counted in it.

    The transaction stays open until :meth:`close` (pg_dump imports the snapshot when it starts)."""

    def __init__(self, conn, lock_timeout_ms: int) -> None:
        self.conn = conn
        self.lock_timeout_ms = lock_timeout_ms
        self.snapshot: str | None = None
        self.facts: dict | None = None
        self.rows: dict[str, int] = {}

    def export(self) -> str:
        from ..plan import set_local

        self.conn.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self.conn.execute(set_local("lock_timeout", self.lock_timeout_ms))
        self.snapshot = str(self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0])
        self.facts = read_in_transaction(self.conn)
        return self.snapshot

    def count(self, check_cancel) -> dict[str, int]:
        """``count(*)`` of every table in the snapshot, one after the other (the caller's thread)."""
        from psycopg import sql

        for schema, name in data_tables(self.conn):
            check_cancel()
            query = sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name))
            self.rows[qualified(schema, name)] = int(self.conn.execute(query).fetchone()[0])
        return self.rows

    def cancel(self) -> None:
        if not self.conn.closed:
            self.conn.cancel_safe(timeout=5)

    def close(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - a cancelled or broken connection: the server ends the transaction
            pass
