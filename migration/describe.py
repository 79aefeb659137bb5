"""``\\d database_backups`` from the catalog, each line judged against the one table definition (schema.TABLE).

:func:`described` turns what :func:`migration.catalog.inspect` read (catalog only: columns, types,
defaults, indexes, constraints, the sequence; never a row) into :class:`Line` items with ✓/✗; the
expectation of each comes from :data:`migration.schema.TABLE`, nothing is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import StructureReport, _default_matches
from .schema import TABLE, Table


@dataclass(frozen=True)
class Line:
    """One line of the description: what the catalog says, what the guide defines, and whether they match."""

    section: str  # Column, Index, Constraint, Sequence
    name: str
    actual: str  # as read from the catalog ("" when missing)
    expected: str  # as the guide's definition says
    ok: bool

    @property
    def mark(self) -> str:
        return "✓" if self.ok else "✗"


def _column_text(type_: str, not_null: bool, default: str | None) -> str:
    return type_ + (" NOT NULL" if not_null else "") + (f" DEFAULT {default}" if default else "")


def _expected_default(col) -> str | None:
    if col.catalog_default == "nextval":
        return "nextval(<its sequence>)"
    return col.catalog_default


def described(report: StructureReport, schema: str, table: Table = TABLE) -> tuple[Line, ...]:
    """Every column, index, constraint and the sequence of the table, each with ✓/✗ against ``table``."""
    lines: list[Line] = []
    facts = {c.name: c for c in report.columns}
    for col in table.columns:
        not_null = col.not_null or col.primary_key
        expected = _column_text(col.catalog_type, not_null, _expected_default(col))
        fact = facts.get(col.name)
        if fact is None:
            lines.append(Line("Column", col.name, "", expected, False))
            continue
        ok = (fact.type == col.catalog_type and fact.not_null == not_null
              and _default_matches(col.catalog_default, fact.default))
        lines.append(Line("Column", col.name, _column_text(fact.type, fact.not_null, fact.default), expected, ok))
    for name in facts.keys() - set(table.column_names):
        fact = facts[name]
        lines.append(Line("Column", name, _column_text(fact.type, fact.not_null, fact.default),
                          "not in the guide's definition", False))

    indexes = {ix.name: ix for ix in report.indexes}
    for ix in table.indexes:
        expected = f"btree ({ix.column})"
        fact = indexes.get(ix.name)
        actual = _index_text(fact.definition) if fact else ""
        lines.append(Line("Index", ix.name, actual, expected, actual == expected))

    constraints = list(report.constraints)
    for kind, label, columns in _constraints(table):
        want = f"{label} ({', '.join(columns)})"
        found = next((c for c in constraints if c.startswith(f"{kind}:") and c.split(":", 1)[1] == want), None)
        lines.append(Line("Constraint", label, want if found else "", want, found is not None))

    expected_seq = f"{schema}.{table.name}_{table.serial_column}_seq"
    owned = report.sequence or ""
    lines.append(Line("Sequence", f"{table.name}_{table.serial_column}_seq", owned,
                      f"{expected_seq}, owned by {table.serial_column}", bool(owned)))
    return tuple(lines)


def _constraints(table: Table) -> list[tuple[str, str, tuple[str, ...]]]:
    """The constraints the definition implies: (pg_constraint.contype, keyword, columns)."""
    out = [("p", "PRIMARY KEY", tuple(c.name for c in table.columns if c.primary_key))]
    out += [("u", "UNIQUE", (c.name,)) for c in table.columns if c.unique]
    return [c for c in out if c[2]]


def _index_text(definition: str) -> str:
    """``CREATE INDEX n ON s.t USING btree (col)`` → ``btree (col)``."""
    _, _, using = definition.partition(" USING ")
    return using or definition


def summary(lines: tuple[Line, ...]) -> str:
    bad = [line for line in lines if not line.ok]
    if not bad:
        return f"All {len(lines)} lines match the guide's definition."
    return f"{len(bad)} of {len(lines)} lines do not match the guide's definition."
