"""Read the table back from the PostgreSQL catalog and compare it with schema.TABLE.

Side-effect free: only SELECTs on pg_catalog. Used by the existence check,
the post-migration verification, the result screen and the rollback preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import TABLE, Table


@dataclass(frozen=True)
class ColumnFact:
    name: str
    type: str
    not_null: bool
    default: str | None


@dataclass(frozen=True)
class IndexFact:
    name: str
    definition: str
    table: str  # schema-qualified table the index belongs to


# pg_class.relkind -> what it is called in messages
RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table",
            "S": "sequence", "i": "index", "I": "partitioned index", "c": "composite type", "t": "TOAST table"}
DROP_KEYWORDS = {"p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE",
                 "i": "INDEX", "I": "INDEX", "c": "TYPE"}


@dataclass(frozen=True)
class Relation:
    """A relation with the table's name, whatever its kind. Only an ordinary table (relkind 'r') is
    ever read from or dropped: selecting from a view runs its owner's functions as the caller."""

    oid: int
    relkind: str
    owner: str
    can_drop: bool  # the current role owns it, or belongs to its owner; being a superuser does not count:
    # another role's table holds that role's constraints, defaults and triggers, and restoring its
    # safety copy would run them with the superuser's rights

    @property
    def kind(self) -> str:
        return RELKINDS.get(self.relkind, f"relation of kind {self.relkind}")

    @property
    def is_table(self) -> bool:
        return self.relkind == "r"


def not_a_table_error(schema: str, name: str, relkind: str, owner: str, *, what: str = "nothing was changed"):
    """The message for a relation named like our table that is not an ordinary table."""
    from psycopg import sql

    from .errors import OperatorError

    kind = RELKINDS.get(relkind, f"relation of kind {relkind}")
    keyword = DROP_KEYWORDS.get(relkind, "TABLE")
    statement = sql.SQL("DROP {} {};").format(sql.SQL(keyword), sql.Identifier(schema, name)).as_string(None)
    return OperatorError(
        f"{schema}.{name} is a {kind}, not a table (owner {owner}); {what}.",
        f"migrate-tui never reads from or drops anything but an ordinary table. Check what it is and what uses "
        f"it; then rename it or drop it yourself (e.g. {statement}) and run again.")


@dataclass(frozen=True)
class StructureReport:
    """What the catalog says about the table, judged against the definition.

    ``problems`` make an existing table unusable (the migration fails);
    ``differences`` are tolerated but reported.
    """

    exists: bool
    columns: tuple[ColumnFact, ...] = ()
    indexes: tuple[IndexFact, ...] = ()
    constraints: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    sequence: str | None = None
    row_count: int | None = None
    foreign_index_names: tuple[IndexFact, ...] = field(default=())
    relation: Relation | None = None

    @property
    def not_a_table(self) -> bool:
        return self.relation is not None and not self.relation.is_table

    @property
    def valid(self) -> bool:
        return self.exists and not self.problems

    @property
    def state(self) -> str:
        if not self.exists:
            return "absent"
        return "valid" if self.valid else "invalid"


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_INDEXES = """
SELECT i.relname, pg_get_indexdef(i.oid), format('%%I.%%I', n.nspname, t.relname)
FROM pg_class i
JOIN pg_index x ON x.indexrelid = i.oid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE {where}
ORDER BY i.relname
"""
_CONSTRAINTS = """
SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s ORDER BY conname
"""


GUIDE_FIX_INVALID = (
    "The table exists but has wrong structure. Either: 1. Drop the existing table: "
    "DROP TABLE {table} CASCADE; (see `migrate-tui rollback`) 2. Or manually add missing columns."
)


def structure_error(report: StructureReport, schema: str, table: Table = TABLE):
    """An existing table that cannot be used, in the guide's words ("Required column metadata is missing
    from database_backups table") with the guide's fix; the checklist and the migration say the same."""
    from .errors import OperatorError

    if report.not_a_table:
        return not_a_table_error(schema, table.name, report.relation.relkind, report.relation.owner)
    message = (report.problems[0] if len(report.problems) == 1 else
               f"Table {table.name} already exists with a different structure: " + "; ".join(report.problems))
    return OperatorError(message, GUIDE_FIX_INVALID.format(table=f'"{schema}"."{table.name}"'))


def relation(conn, schema: str, table: Table = TABLE) -> Relation | None:
    """The relation named like the table in the schema (any kind), or None."""
    row = conn.execute(
        "SELECT c.oid, c.relkind::text, pg_get_userbyid(c.relowner), "
        "  c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
        "  OR (NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
        "      AND pg_has_role(current_user, c.relowner, 'USAGE')) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, table.name),
    ).fetchone()
    return Relation(int(row[0]), str(row[1]), str(row[2]), bool(row[3])) if row else None


def lock_table(conn, schema: str, table: Table = TABLE, mode: str = "ACCESS SHARE") -> Relation:
    """Lock the relation by name, then make sure it is an ordinary table the operator may drop; only then
    may its rows be read. Checking first and reading by name after leaves a window in which another role
    can rename a view into the name; once the name is locked, nothing can be renamed into or out of it.
    Call inside a transaction; raises MigrateError (nothing read) when it is not such a table."""
    from psycopg import sql

    from .errors import MigrateError, OperatorError

    if mode not in ("ACCESS SHARE", "ACCESS EXCLUSIVE"):
        raise ValueError(mode)
    conn.execute(sql.SQL("LOCK TABLE {} IN {} MODE").format(table.qualified(schema), sql.SQL(mode)))
    rel = relation(conn, schema, table)
    if rel is None:
        raise MigrateError(OperatorError(f"Table {schema}.{table.name} disappeared meanwhile.",
                                         "Someone dropped it; check with the preview."))
    if not rel.is_table:
        raise MigrateError(not_a_table_error(schema, table.name, rel.relkind, rel.owner))
    if not rel.can_drop:
        raise MigrateError(OperatorError(f"Table {schema}.{table.name} is owned by {rel.owner}, not by you; it "
                                         "was not read.", f"Run as {rel.owner}."))
    return rel


def table_oid(conn, schema: str, table: Table = TABLE) -> int | None:
    """The oid of the table when it exists and is an ordinary table; None otherwise."""
    rel = relation(conn, schema, table)
    return rel.oid if rel is not None and rel.is_table else None


def index_name_clashes(conn, schema: str, table: Table = TABLE) -> tuple[IndexFact, ...]:
    """Relations in the schema already using one of our index names (not on our table)."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind::text, coalesce(pg_get_indexdef(c.oid), ''), "
        "coalesce((SELECT format('%%I.%%I', tn.nspname, t.relname) FROM pg_index x "
        "  JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "  WHERE x.indexrelid = c.oid), '') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, [ix.name for ix in table.indexes]),
    ).fetchall()
    own = f"{schema}.{table.name}"
    return tuple(
        IndexFact(name, definition or f"a relation of kind {kind}", owner or "(not an index)")
        for name, kind, definition, owner in rows
        if owner.replace('"', "") != own
    )


def inspect(conn, schema: str, table: Table = TABLE, *, strict: bool = False) -> StructureReport:
    """Read the table's structure. ``strict`` (after creation) turns differences into problems."""
    clashes = index_name_clashes(conn, schema, table)
    rel = relation(conn, schema, table)
    if rel is None:
        return StructureReport(exists=False, foreign_index_names=clashes)
    if not rel.is_table:  # never read: only the catalog says what it is
        return StructureReport(exists=True, problems=(f"{schema}.{table.name} is a {rel.kind}, not a table",),
                               foreign_index_names=clashes, relation=rel)
    oid = rel.oid
    columns = tuple(ColumnFact(n, t, bool(nn), d) for n, t, nn, d in conn.execute(_COLUMNS, (oid,)).fetchall())
    indexes = tuple(
        IndexFact(*row) for row in conn.execute(_INDEXES.format(where="x.indrelid = %s"), (oid,)).fetchall()
    )
    constraints = tuple(f"{t}:{d}" for t, d in conn.execute(_CONSTRAINTS, (oid,)).fetchall())
    seq_row = conn.execute(
        "SELECT pg_get_serial_sequence(%s, %s)", (f'"{schema}"."{table.name}"', table.serial_column)
    ).fetchone() if any(c.name == table.serial_column for c in columns) else None

    problems: list[str] = []
    differences: list[str] = []
    by_name = {c.name: c for c in columns}
    for col in table.columns:
        fact = by_name.get(col.name)
        if fact is None:
            problems.append(f"Required column {col.name} is missing from {table.name} table")
            continue
        if not col.accepts(fact.type):
            problems.append(f"Column {col.name} has type {fact.type}, expected {col.catalog_type}")
        elif fact.type != col.catalog_type:
            differences.append(f"Column {col.name} has type {fact.type} (compatible with {col.catalog_type})")
        if col.not_null and not fact.not_null:
            differences.append(f"Column {col.name} allows NULL, expected NOT NULL")
        if not _default_matches(col.catalog_default, fact.default):
            differences.append(
                f"Column {col.name} has default {fact.default or 'none'}, expected {col.catalog_default or 'none'}"
            )
    extra = [c.name for c in columns if c.name not in set(table.column_names)]
    if extra:
        differences.append("Extra columns not in the definition: " + ", ".join(extra))
    if not any(c.startswith("p:") for c in constraints):
        differences.append(f"No primary key on {table.name}")
    if not any(c.startswith("u:") and "(filename)" in c for c in constraints):
        differences.append("No UNIQUE constraint on filename")
    index_names = {ix.name for ix in indexes}
    for ix in table.indexes:
        if ix.name not in index_names:
            differences.append(f"Index {ix.name} is missing")
    if not rel.can_drop:
        differences.append(f"The table is owned by {rel.owner}, not by you: only {rel.owner} can roll it back")
    if strict:
        problems.extend(differences)
        differences = []
    return StructureReport(
        exists=True,
        columns=columns,
        indexes=indexes,
        constraints=constraints,
        problems=tuple(problems),
        differences=tuple(differences),
        sequence=seq_row[0] if seq_row else None,
        foreign_index_names=clashes,
        relation=rel,
    )


def _default_matches(expected: str | None, actual: str | None) -> bool:
    if expected is None:
        return actual is None
    if actual is None:
        return False
    if expected == "nextval":
        return actual.startswith("nextval(")
    return actual == expected or actual.replace("CURRENT_TIMESTAMP", "now()") == expected
