"""Side-effect-free catalog reads for the rollback: preview, CASCADE victims, checks (blockers: migration.locks).

Every function only SELECTs; the caller owns the connection and its transaction.
"""

from __future__ import annotations


from psycopg import sql

from .. import catalog
from ..events import Dependent, Preview
from ..schema import TABLE, Table
from .dependents import describe as describe_dependents
from .dependents import rows_fingerprint


# Everything DROP ... CASCADE reaches from the table, read from pg_depend:
# - walk down to objects depending on a visited object ('n' normal, 'a' auto, 'i' internal);
# - walk up from an object to the owner it is an internal part of ('i'), as PostgreSQL does
#   (a view's _RETURN rule depends on our table; dropping the rule means dropping the view).
# ``external`` becomes true once a normal ('n') edge is crossed: those are the objects
# that are not part of the table itself (its indexes, constraints, sequence, types, toast).
_WALK = """
WITH RECURSIVE walk(classid, objid, objsubid, external) AS (
  SELECT 'pg_class'::regclass::oid, %(oid)s::oid, 0, false
  UNION
  SELECT n.classid, n.objid, n.objsubid, n.external FROM walk w CROSS JOIN LATERAL (
    SELECT d.classid, d.objid, d.objsubid, (w.external OR d.deptype = 'n') AS external
    FROM pg_depend d
    WHERE d.refclassid = w.classid AND d.refobjid = w.objid
      AND (w.objsubid = 0 OR d.refobjsubid = w.objsubid) AND d.deptype IN ('n', 'a', 'i')
    UNION ALL
    SELECT d.refclassid, d.refobjid, d.refobjsubid, w.external
    FROM pg_depend d
    WHERE d.classid = w.classid AND d.objid = w.objid
      AND (w.objsubid = 0 OR d.objsubid = w.objsubid) AND d.deptype = 'i'
  ) n
),
victims AS (
  SELECT DISTINCT w.classid, w.objid, w.objsubid FROM walk w
  WHERE w.external
    AND NOT EXISTS (SELECT 1 FROM walk p WHERE p.classid = w.classid AND p.objid = w.objid
                    AND p.objsubid = w.objsubid AND NOT p.external)
    -- internal parts of another victim (a view's rule and row type) are named by their owner
    AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN walk o
                    ON o.classid = d.refclassid AND o.objid = d.refobjid AND o.external
                    WHERE d.classid = w.classid AND d.objid = w.objid AND d.deptype = 'i')
)
SELECT i.type, i.identity, v.classid::regclass::text, v.objid, v.objsubid,
  CASE v.classid
    WHEN 'pg_constraint'::regclass THEN (SELECT nullif(conrelid, 0)::regclass::text FROM pg_constraint
                                         WHERE oid = v.objid)
    WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid::regclass::text FROM pg_attrdef WHERE oid = v.objid)
    WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid::regclass::text FROM pg_trigger WHERE oid = v.objid)
    WHEN 'pg_policy'::regclass THEN (SELECT polrelid::regclass::text FROM pg_policy WHERE oid = v.objid)
    WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class::regclass::text FROM pg_rewrite WHERE oid = v.objid)
    WHEN 'pg_class'::regclass THEN CASE WHEN v.objsubid <> 0 THEN v.objid::regclass::text
                                        ELSE (SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = v.objid)
                                   END
  END
FROM victims v CROSS JOIN LATERAL pg_identify_object(v.classid, v.objid, v.objsubid) i
ORDER BY 1, 2
"""



def table_oid(conn, schema: str, table: Table = TABLE) -> int | None:
    """The table's oid when it exists and is an ordinary table (never a view or anything else)."""
    return catalog.table_oid(conn, schema, table)


def dependents(conn, oid: int) -> tuple[Dependent, ...]:
    """What DROP ... CASCADE removes besides the table, each with its owner and how the safety copy keeps it
    (:mod:`.dependents`). The TOAST storage of a dropped relation is part of it, not an object of its own."""
    found = [Dependent(kind, identity, alters, catalog, int(objid), int(subid))
             for kind, identity, catalog, objid, subid, alters in conn.execute(_WALK, {"oid": oid}).fetchall()
             if not identity.startswith("pg_toast.")]
    return describe_dependents(conn, found)


def preview(conn, schema: str, table: Table = TABLE) -> Preview:
    """Whether the table exists, its rows, size, indexes, sequence and CASCADE victims."""
    drop = table.drop(schema, cascade=False).as_string(conn)
    version = str(conn.execute("SELECT current_setting('server_version')").fetchone()[0]).split()[0]
    rel = catalog.relation(conn, schema, table)
    if rel is None:
        return Preview(schema, table.name, False, drop_sql=drop, server_version=version)
    if not rel.is_table or not rel.can_drop:  # nothing is read from it: only the catalog
        return Preview(schema, table.name, True, drop_sql=drop, server_version=version, kind=rel.kind,
                       relkind=rel.relkind, owner=rel.owner, can_drop=rel.can_drop)
    oid = catalog.lock_table(conn, schema, table).oid  # locked, then checked again: only then read
    size, pretty = conn.execute("SELECT pg_total_relation_size(%s), pg_size_pretty(pg_total_relation_size(%s))",
                                (oid, oid)).fetchone()
    # its own rows: an inherited table's are its own dependent's (COPY and pg_dump count them apart)
    rows = conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(table.qualified(schema))).fetchone()[0]
    indexes = tuple(r[0] for r in conn.execute(
        "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = %s ORDER BY 1", (oid,)))
    sequences = [r[0] for r in conn.execute(
        "SELECT d.objid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = %s AND s.relkind = 'S' AND d.deptype IN ('a', 'i') ORDER BY 1", (oid,))]
    deps = dependents(conn, oid)
    return Preview(
        schema, table.name, True, int(rows), int(size), str(pretty),
        tuple(_qualify(schema, name) for name in indexes),
        _qualify(schema, sequences[0]) if sequences else None,
        deps, table.drop(schema, cascade=bool(deps)).as_string(conn), version, owner=rel.owner,
    )


def _qualify(schema: str, name: str) -> str:
    """regclass::text omits a schema on the search_path; always show it."""
    return name if "." in name else f"{schema}.{name}"


def fingerprint(conn, schema: str, table: Table = TABLE) -> tuple[int, str]:
    """Row count and an order-independent hash of the table's own rows: did the table change?"""
    return rows_fingerprint(conn, schema, table.name)


def still_there(conn, schema: str, preview_: Preview, table: Table = TABLE) -> list[str]:
    """What the rollback should have removed but the catalog still has (empty: verified)."""
    left: list[str] = []
    names = [preview_.qualified, *preview_.indexes] + ([preview_.sequence] if preview_.sequence else [])
    for name in names:
        schema_name, _, rel = name.partition(".")
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema_name.strip(chr(34))}".'
                                                              f'"{rel.strip(chr(34))}"',)).fetchone()[0]:
            left.append(name)
    for dep in preview_.dependents:
        if dep.catalog == "pg_class" and dep.subid:
            query = ("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s AND attnum = %s "
                     "AND NOT attisdropped)")
            params: tuple = (dep.oid, dep.subid)
        elif dep.catalog.startswith("pg_") and dep.catalog.replace("_", "").isalnum():
            query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE oid = %s)").format(
                sql.Identifier("pg_catalog", dep.catalog))
            params = (dep.oid,)
        else:  # pragma: no cover - pg_identify_object only names catalogs
            continue
        if conn.execute(query, params).fetchone()[0]:
            left.append(dep.key)
    return left


def not_ours(preview_: Preview, what: str = "nothing was dropped"):
    """Why a rollback must not touch what the preview found (an OperatorError), or None when it may: only an
    ordinary table of the operator's own role (a superuser does not count: another role's table holds that
    role's code, which restoring its copy would run with superuser rights) is ever read from or dropped."""
    from ..errors import OperatorError

    if not preview_.exists:
        return None
    if not preview_.is_table:
        return catalog.not_a_table_error(preview_.schema, preview_.table, preview_.relkind, preview_.owner,
                                         what=what)
    if not preview_.can_drop:
        return OperatorError(
            f"Table {preview_.qualified} is owned by {preview_.owner}, not by you: migrate-tui rolls back only a "
            f"table of your own role; {what} and nothing was read from it.",
            f"Run the rollback as {preview_.owner} (or as a member of that role). A superuser does not do it for "
            "another role: restoring that role's table would run its constraints and triggers with superuser "
            "rights.", "42501")
    return None
