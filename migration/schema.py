"""The one declarative definition of ``database_backups``.

The CREATE TABLE / CREATE INDEX statements, the structure check of an existing
table, the post-migration verification and the rollback DROP are all derived
from :data:`TABLE`. Identifiers are always quoted with :mod:`psycopg.sql`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql


@dataclass(frozen=True)
class Column:
    name: str
    ddl_type: str  # as written in the guide's DDL
    catalog_type: str  # what format_type() reads back
    compatible_types: tuple[str, ...] = ()  # other catalog types an existing table may use
    not_null: bool = False
    default: str | None = None  # DDL default expression
    catalog_default: str | None = None  # what pg_get_expr() reads back (None: no default)
    primary_key: bool = False
    unique: bool = False

    def ddl(self) -> sql.Composable:
        parts: list[sql.Composable] = [sql.Identifier(self.name), sql.SQL(self.ddl_type)]
        if self.primary_key:
            parts.append(sql.SQL("PRIMARY KEY"))
        if self.not_null and not self.primary_key:
            parts.append(sql.SQL("NOT NULL"))
        if self.unique:
            parts.append(sql.SQL("UNIQUE"))
        if self.default is not None:
            parts.append(sql.SQL("DEFAULT {}").format(sql.SQL(self.default)))
        return sql.SQL(" ").join(parts)

    def accepts(self, catalog_type: str) -> bool:
        return catalog_type == self.catalog_type or catalog_type in self.compatible_types


@dataclass(frozen=True)
class Index:
    name: str
    column: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    serial_column: str = "id"
    # A row that passes every constraint, used by the verification insert.
    probe_row: dict[str, object] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def qualified(self, schema: str) -> sql.Identifier:
        return sql.Identifier(schema, self.name)

    # -- DDL -----------------------------------------------------------------
    def create_table(self, schema: str) -> sql.Composed:
        return sql.SQL("CREATE TABLE {} (\n  {}\n)").format(
            self.qualified(schema), sql.SQL(",\n  ").join(c.ddl() for c in self.columns)
        )

    def create_indexes(self, schema: str) -> list[sql.Composed]:
        return [
            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(ix.name), self.qualified(schema), sql.Identifier(ix.column)
            )
            for ix in self.indexes
        ]

    def reset_sequence(self, schema: str) -> sql.Composed:
        """Next nextval() returns max(id)+1 (1 on an empty table); not transactional in PG."""
        return sql.SQL(
            "SELECT setval(pg_get_serial_sequence({qualified}, {col}), "
            "coalesce((SELECT max({ident}) FROM {table}), 0) + 1, false)"
        ).format(
            qualified=sql.Literal(f'"{schema}"."{self.name}"'),
            col=sql.Literal(self.serial_column),
            ident=sql.Identifier(self.serial_column),
            table=self.qualified(schema),
        )

    def probe_insert(self, schema: str, *, literal: bool = False) -> sql.Composed:
        """The verification INSERT; ``literal`` inlines probe_row's values (for the dry run)."""
        cols = list(self.probe_row)
        values = (sql.Literal(self.probe_row[c]) if literal else sql.Placeholder() for c in cols)
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            self.qualified(schema),
            sql.SQL(", ").join(map(sql.Identifier, cols)),
            sql.SQL(", ").join(values),
            sql.SQL(", ").join(map(sql.Identifier, self.column_names)),
        )

    def probe_delete(self, schema: str, row_id: int | None = None) -> sql.Composed:
        """The verification DELETE; ``row_id`` inlines the id (for the dry run), else a parameter."""
        return sql.SQL("DELETE FROM {} WHERE {} = {}").format(
            self.qualified(schema), sql.Identifier(self.serial_column),
            sql.Placeholder() if row_id is None else sql.Literal(row_id),
        )

    def drop(self, schema: str, cascade: bool = False) -> sql.Composed:
        return sql.SQL("DROP TABLE IF EXISTS {}{}").format(
            self.qualified(schema), sql.SQL(" CASCADE" if cascade else "")
        )


TABLE = Table(
    name="database_backups",
    columns=(
        Column("id", "SERIAL", "integer", ("bigint",), not_null=True, primary_key=True,
               catalog_default="nextval"),
        Column("filename", "TEXT", "text", ("character varying",), not_null=True, unique=True),
        Column("s3_key", "TEXT", "text", ("character varying",), not_null=True),
        Column("file_size", "INTEGER", "integer", ("bigint",), not_null=True),
        Column("backup_type", "TEXT", "text", ("character varying",), not_null=True, default="'full'",
               catalog_default="'full'::text"),
        Column("status", "TEXT", "text", ("character varying",), not_null=True, default="'completed'",
               catalog_default="'completed'::text"),
        Column("created_by", "TEXT", "text", ("character varying",), not_null=True, default="'system'",
               catalog_default="'system'::text"),
        Column("metadata", "JSONB", "jsonb", ("json",)),
        Column("created_at", "TIMESTAMP", "timestamp without time zone", ("timestamp with time zone",),
               default="NOW()", catalog_default="now()"),
        Column("completed_at", "TIMESTAMP", "timestamp without time zone", ("timestamp with time zone",)),
    ),
    indexes=(
        Index("idx_database_backups_created_at", "created_at"),
        Index("idx_database_backups_status", "status"),
        Index("idx_database_backups_created_by", "created_by"),
    ),
    probe_row={
        "filename": "migrate-tui-verification-probe",
        "s3_key": "migrate-tui/verification-probe",
        "file_size": 0,
        "metadata": '{"probe": true}',
    },
)


def guide_sql(schema: str = "public", table: Table = TABLE) -> list[sql.Composed]:
    """Every DDL statement of the migration, in execution order."""
    return [table.create_table(schema), *table.create_indexes(schema)]
