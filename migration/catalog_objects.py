"""The objects a database holds, read from its catalog: what a restored copy must hold too.

:func:`read_objects` reads, in one read-only transaction with ``search_path`` pinned (so every
definition comes back schema-qualified), the schemas, tables, columns, indexes, constraints,
sequences, views, functions, extensions and types of the user's schemas, leaving out what an
extension brings with it. The backup reads the source's this way while pg_dump runs (the
manifest keeps it); the drill reads the restored copy's and :func:`compare` names every
difference. Only catalog tables are read: no user table is touched.
"""

from __future__ import annotations

import re

from .events.drill import Difference

KINDS = ("schema", "table", "column", "index", "constraint", "sequence", "view", "function", "extension", "type")
PLURALS = {"index": "indexes"}


def describe_counts(counts) -> str:
    """``1 schema, 5 tables, 8 indexes``: the kinds that have objects, from (kind, n) pairs."""
    return ", ".join(f"{n} {kind if n == 1 else PLURALS.get(kind, kind + 's')}" for kind, n in counts if n)
# Definitions PostgreSQL prints itself (pg_get_indexdef, ...): worded differently by another major version.
_PRINTED = ("index", "constraint", "view")

_USER_NS = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
            "AND n.nspname NOT LIKE 'pg\\_temp\\_%'")


def _not_extension(catalog: str, oid: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
            f"AND d.objid = {oid} AND d.deptype = 'e')")


_QUERIES = {
    "schema": f"""
        SELECT quote_ident(n.nspname), '' FROM pg_namespace n
        WHERE {_USER_NS} AND {_not_extension('pg_namespace', 'n.oid')}""",
    "table": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
               CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'f') AND {_USER_NS} AND {_not_extension('pg_class', 'c.oid')}""",
    "column": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
               || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END
               || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f') AND {_USER_NS}
          AND {_not_extension('pg_class', 'c.oid')}""",
    "index": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_indexdef(c.oid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NS} AND {_not_extension('pg_class', 'i.indrelid')}""",
    "constraint": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(coalesce(c.relname, t.typname)) || '.'
               || quote_ident(k.conname), pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
        LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
        WHERE k.contype <> 'n' AND {_USER_NS} AND {_not_extension('pg_constraint', 'k.oid')}
          AND (k.conrelid = 0 OR {_not_extension('pg_class', 'k.conrelid')})
          AND (k.contypid = 0 OR {_not_extension('pg_type', 'k.contypid')})""",
    "sequence": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
               format_type(s.seqtypid, NULL) || ' increment ' || s.seqincrement || ' start ' || s.seqstart
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NS} AND {_not_extension('pg_class', 'c.oid')}""",
    "view": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
               CASE c.relkind WHEN 'm' THEN 'materialized view: ' ELSE 'view: ' END || pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_USER_NS} AND {_not_extension('pg_class', 'c.oid')}""",
    "function": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid)
               || ')', p.prokind::text || ' ' || l.lanname::text || ' returns ' || format_type(p.prorettype, NULL)
               || ' ' || md5(coalesce(p.prosrc, '') || coalesce(p.probin, ''))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE {_USER_NS} AND {_not_extension('pg_proc', 'p.oid')}""",
    "extension": """
        SELECT quote_ident(e.extname), e.extversion FROM pg_extension e WHERE e.extname <> 'plpgsql'""",
    "type": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname),
               CASE t.typtype
                 WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                           FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                 WHEN 'd' THEN 'domain over ' || format_type(t.typbasetype, t.typtypmod)
                 WHEN 'c' THEN 'composite (' || (SELECT string_agg(quote_ident(a.attname) || ' '
                                                 || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                                 FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0
                                                 AND NOT a.attisdropped) || ')'
                 WHEN 'r' THEN 'range'
                 ELSE 'base type' END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b') AND {_USER_NS} AND {_not_extension('pg_type', 't.oid')}
          AND NOT (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) <> 'c')
          AND NOT (t.typtype = 'b' AND t.typcategory = 'A')""",
}


def read_objects(conn) -> dict[str, dict[str, str]]:
    """Every kind's objects (``{kind: {name: definition}}``), read in one read-only transaction."""
    conn.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        return read_objects_in_transaction(conn)
    finally:
        conn.execute("ROLLBACK")


def read_objects_in_transaction(conn) -> dict[str, dict[str, str]]:
    """The same, inside a transaction the caller opened (the one whose snapshot pg_dump uses)."""
    return {kind: {str(name): str(definition or "") for name, definition in conn.execute(query).fetchall()}
            for kind, query in _QUERIES.items()}


def counts(objects: dict[str, dict[str, str]]) -> dict[str, int]:
    return {kind: len(objects.get(kind, {})) for kind in KINDS}


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def compare(source: dict[str, dict[str, str]], copy: dict[str, dict[str, str]], *, same_major: bool = True
            ) -> tuple[list[Difference], list[str]]:
    """What differs between the source's objects and the copy's: (differences, notes).

    A definition PostgreSQL prints itself (an index, a constraint, a view) that reads differently on
    another major version is a note, not a difference; so is an extension's version (a server
    installs its own) and the ``public`` schema, which every new database has."""
    differences: list[Difference] = []
    notes: list[str] = []
    for kind in KINDS:
        ours, theirs = source.get(kind, {}), copy.get(kind, {})
        for name in sorted(set(ours) - set(theirs)):
            differences.append(Difference(kind, name, "missing from the restored copy"))
        for name in sorted(set(theirs) - set(ours)):
            if kind == "schema" and name == "public":
                notes.append("schema public exists in the copy (every new database has it) but not in the source")
                continue
            differences.append(Difference(kind, name, "in the restored copy but not in the source"))
        for name in sorted(set(ours) & set(theirs)):
            a, b = _normal(ours[name]), _normal(theirs[name])
            if a == b:
                continue
            if kind == "extension":
                notes.append(f"extension {name}: version {b} in the copy, {a} in the source (a server installs "
                             "its own version)")
            elif kind in _PRINTED and not same_major:
                notes.append(f"{kind} {name} is worded differently by the copy's PostgreSQL version")
            else:
                differences.append(Difference(kind, name, f"differs: source {a!r}, copy {b!r}"))
    return differences, notes
