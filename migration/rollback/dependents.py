"""What DROP ... CASCADE removes besides the table, and how the safety copy keeps each of it (catalog reads only).

For every dependent :func:`migration.rollback.preview.dependents` finds, this module reads:

- its owner (its own, or the owner of the table it belongs to) and whether that is the operator's role by the
  rule the table itself is judged by (:func:`migration.catalog.relation`: owner, or member of the owner and not
  a superuser): PostgreSQL's CASCADE drops other roles' objects without asking them; migrate-tui refuses to;
- how the copy keeps it (``keep``): ``pg_dump`` (a view, materialized view or inherited table: its own
  ``pg_dump --table`` in the same snapshot, with owner, grants, comments, rows), ``definition`` (a statement
  written from ``pg_get_constraintdef`` / ``pg_get_functiondef`` / ``pg_get_triggerdef`` / ``pg_get_ruledef`` /
  ``pg_get_indexdef`` / ``pg_get_expr``, schema-qualified because this session's search_path is
  ``pg_catalog, pg_temp``), ``part of <key>`` (inside another dependent's pg_dump), or nothing, with the reason
  (``why_lost``): a column of another table whose type is the table's row type, for instance, takes its values
  with it, and no copy of the table can hold them;
- the order the copy must recreate them in (:func:`order`): dependents of dependents come after them;
- each one's current state (:func:`states`): checked again inside the DROP's transaction, so what is dropped is
  what the copy holds.

Every function only SELECTs; the caller owns the connection and its transaction (search_path pinned).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from psycopg import sql

from ..events import Dependent

DUMPED_RELKINDS = ("r", "p", "v", "m", "f")  # recreated by pg_dump --table (a table: with its rows)
LOST_COLUMN = ("a column of another relation: DROP ... CASCADE drops its values with it, and no copy of this "
               "table can hold them")

# (the relation it belongs to, its owner's oid, a detail that decides how it is kept) for one object
_FACTS = {
    "pg_class": "SELECT CASE WHEN c.relkind IN ('i', 'I') THEN (SELECT indrelid FROM pg_index WHERE indexrelid = c.oid)"
                " ELSE c.oid END, c.relowner, c.relkind::text FROM pg_class c WHERE c.oid = %s",
    "pg_constraint": "SELECT nullif(x.conrelid, 0), coalesce((SELECT relowner FROM pg_class WHERE oid = x.conrelid), "
                     "(SELECT typowner FROM pg_type WHERE oid = x.contypid)), "
                     "CASE WHEN x.contypid <> 0 THEN 'domain' ELSE x.conparentid::text END "
                     "FROM pg_constraint x WHERE x.oid = %s",
    "pg_attrdef": "SELECT d.adrelid, c.relowner, a.attgenerated::text FROM pg_attrdef d "
                  "JOIN pg_class c ON c.oid = d.adrelid "
                  "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.oid = %s",
    "pg_trigger": "SELECT t.tgrelid, c.relowner, '' FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                  "WHERE t.oid = %s",
    "pg_policy": "SELECT p.polrelid, c.relowner, '' FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
                 "WHERE p.oid = %s",
    "pg_rewrite": "SELECT r.ev_class, c.relowner, '' FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class "
                  "WHERE r.oid = %s",
    "pg_proc": "SELECT NULL::oid, p.proowner, p.prokind::text FROM pg_proc p WHERE p.oid = %s",
    "pg_type": "SELECT NULL::oid, t.typowner, t.typtype::text FROM pg_type t WHERE t.oid = %s",
    "pg_operator": "SELECT NULL::oid, o.oprowner, '' FROM pg_operator o WHERE o.oid = %s",
}
_OWNER = ("SELECT r.rolname::text, r.rolname = current_user OR (NOT (SELECT rolsuper FROM pg_roles "
          "WHERE rolname = current_user) AND pg_has_role(current_user, r.oid, 'USAGE')) "
          "FROM pg_roles r WHERE r.oid = %s")

# Parts of an object: what depends on it automatically or internally (a view's rule and row type, a table's
# constraints, indexes, defaults, TOAST table), recursively: a dependent inside a pg_dump'd relation is
# recreated with it, and the dependencies of an object's parts order it after what they reference.
_PARTS = """
WITH RECURSIVE parts(i, classid, objid) AS (
  SELECT * FROM unnest(%(i)s::int[], %(classid)s::regclass[]::oid[], %(objid)s::oid[])
  UNION
  SELECT p.i, d.classid, d.objid FROM parts p JOIN pg_depend d
    ON d.refclassid = p.classid AND d.refobjid = p.objid AND d.deptype IN ('a', 'i')
)
"""
_EDGES = _PARTS + """
SELECT DISTINCT a.i, b.i FROM parts a
  JOIN pg_depend d ON d.classid = a.classid AND d.objid = a.objid
  JOIN parts b ON b.classid = d.refclassid AND b.objid = d.refobjid
WHERE a.i <> b.i
"""
_MEMBERS = _PARTS + "SELECT i, classid::regclass::text, objid FROM parts"


def describe(conn, found: list[Dependent]) -> tuple[Dependent, ...]:
    """The dependents with their owner, whether they are ours, and how the copy keeps them."""
    if not found:
        return ()
    out: list[Dependent] = []
    relids: dict[int, int | None] = {}
    parents: dict[int, int] = {}
    for index, dep in enumerate(found):
        relid, owner_oid, detail = _facts(conn, dep)
        relids[index] = relid
        owner, ours = ("", False)
        if owner_oid is not None:
            row = conn.execute(_OWNER, (owner_oid,)).fetchone()
            owner, ours = (str(row[0]), bool(row[1])) if row else ("", False)
        keep, why = _how(dep, detail)
        out.append(replace(dep, owner=owner, ours=ours, keep=keep, why_lost=why))
        parents[index] = int(detail) if dep.catalog == "pg_constraint" and detail.isdigit() else 0
    # a partition's copy of a partitioned table's constraint comes back with its parent's
    constraints = {d.oid: d for d in out if d.catalog == "pg_constraint"}
    out = [replace(d, keep=f"part of {constraints[parents[i]].key}") if parents[i] in constraints else d
           for i, d in enumerate(out)]
    return _inside_dumps(conn, out, relids)


def _facts(conn, dep: Dependent) -> tuple[int | None, int | None, str]:
    query = _FACTS.get(dep.catalog)
    row = conn.execute(query, (dep.oid,)).fetchone() if query else None
    if row is None:
        return None, None, ""
    return (int(row[0]) if row[0] is not None else None, int(row[1]) if row[1] is not None else None,
            str(row[2] or ""))


def _how(dep: Dependent, detail: str) -> tuple[str, str]:
    """("pg_dump" | "definition", "") when the copy can hold it, else ("", why not)."""
    cat = dep.catalog
    if cat == "pg_class" and dep.subid:
        return "", LOST_COLUMN
    if cat == "pg_class" and detail in DUMPED_RELKINDS:
        return "pg_dump", ""
    if cat == "pg_class" and detail == "i":
        return "definition", ""
    if cat == "pg_constraint" or cat in ("pg_trigger", "pg_policy", "pg_rewrite"):
        return "definition", ""
    if cat == "pg_attrdef":
        if detail:  # a generated column's expression goes with its column
            return "", "the expression of a generated column: DROP ... CASCADE drops the column and its values"
        return "definition", ""
    if cat == "pg_proc":
        if detail in ("f", "p"):
            return "definition", ""
        return "", "an aggregate or window function: migrate-tui cannot write its definition"
    if cat == "pg_type":
        return "", ("a type built on the table's row type: DROP ... CASCADE drops it, and with it the values of "
                    "every column of that type")
    return "", f"migrate-tui cannot write the definition of a {dep.kind}"


def _inside_dumps(conn, deps: list[Dependent], relids: dict[int, int | None]) -> tuple[Dependent, ...]:
    """A dependent that belongs to a relation the copy pg_dumps (a default, a constraint, an index of an
    inherited table) is recreated by that pg_dump: ``keep`` says so, and it gets no statement of its own."""
    dumped = {i: d for i, d in enumerate(deps) if d.keep == "pg_dump"}
    if not dumped:
        return tuple(deps)
    inside: dict[tuple[str, int], int] = {}
    for i, catalog_name, objid in conn.execute(_MEMBERS, _roots(dumped)).fetchall():
        inside.setdefault((str(catalog_name), int(objid)), int(i))
    by_oid = {d.oid: i for i, d in dumped.items()}
    out = []
    for index, dep in enumerate(deps):
        owner = None
        if index not in dumped:
            owner = inside.get((dep.catalog, dep.oid))
            if owner is None and relids.get(index) in by_oid:
                owner = by_oid[relids[index]]
        if owner is not None:
            dep = replace(dep, keep=f"part of {deps[owner].key}", why_lost="")
        out.append(dep)
    return tuple(out)


def _roots(items: dict[int, Dependent]) -> dict[str, list]:
    return {"i": list(items), "classid": [f"pg_catalog.{d.catalog}" for d in items.values()],
            "objid": [d.oid for d in items.values()]}


def pieces_of(deps: tuple[Dependent, ...]) -> list[Dependent]:
    """The dependents that get a section of their own in the copy (not inside another's pg_dump)."""
    return [d for d in deps if d.keep in ("pg_dump", "definition")]


def order(conn, items: list[Dependent]) -> list[Dependent]:
    """``items`` so that each comes after the others it depends on (a view over a function after the
    function, a trigger after its function, a view after the view it selects from)."""
    if len(items) < 2:
        return list(items)
    roots = {i: d for i, d in enumerate(items)}
    params = _roots(roots)
    needs: dict[int, set[int]] = {i: set() for i in roots}
    for a, b in conn.execute(_EDGES, params).fetchall():
        needs[int(a)].add(int(b))
    done: list[int] = []
    left = list(roots)
    while left:
        ready = [i for i in left if needs[i] <= set(done)]
        pick = ready[0] if ready else left[0]  # a cycle: keep the catalog's order for the rest
        done.append(pick)
        left.remove(pick)
    return [roots[i] for i in done]


# --- definitions: the statements that recreate a dependent (pg_dump'd ones excepted) --------------------------

def _qualified_relation(conn, relid: int) -> tuple[sql.Composable, str]:
    schema, name, relkind = conn.execute(
        "SELECT n.nspname::text, c.relname::text, c.relkind::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s", (relid,)).fetchone()
    return sql.Identifier(schema, name), relkind


def _comment(conn, dep: Dependent, target: sql.Composable) -> list[sql.Composable]:
    text = conn.execute("SELECT obj_description(%s, %s)", (dep.oid, dep.catalog)).fetchone()[0]
    if text is None:
        return []
    return [sql.SQL("COMMENT ON {} IS {};").format(target, sql.Literal(text))]


def definition(conn, dep: Dependent) -> str:
    """The SQL that recreates ``dep`` (after the table and the dependents it needs), schema-qualified."""
    statements = _DEFINERS[dep.catalog](conn, dep)
    return "\n".join(s if isinstance(s, str) else s.as_string(conn) for s in statements) + "\n"


def _constraint(conn, dep: Dependent) -> list:
    name, relid, typid, text = conn.execute(
        "SELECT conname::text, conrelid, contypid, pg_get_constraintdef(oid) FROM pg_constraint WHERE oid = %s",
        (dep.oid,)).fetchone()
    if relid:
        rel, relkind = _qualified_relation(conn, relid)
        only = sql.SQL("" if relkind == "p" else "ONLY ")
        head = sql.SQL("ALTER TABLE {}{} ADD CONSTRAINT {} ").format(only, rel, sql.Identifier(name))
        target = sql.SQL("CONSTRAINT {} ON {}").format(sql.Identifier(name), rel)
    else:
        schema, typname = conn.execute("SELECT n.nspname::text, t.typname::text FROM pg_type t "
                                       "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = %s",
                                       (typid,)).fetchone()
        domain = sql.Identifier(schema, typname)
        head = sql.SQL("ALTER DOMAIN {} ADD CONSTRAINT {} ").format(domain, sql.Identifier(name))
        target = sql.SQL("CONSTRAINT {} ON DOMAIN {}").format(sql.Identifier(name), domain)
    return [head.as_string(conn) + text + ";", *_comment(conn, dep, target)]


def _default(conn, dep: Dependent) -> list:
    relid, column, expr = conn.execute(
        "SELECT d.adrelid, a.attname::text, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
        "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.oid = %s",
        (dep.oid,)).fetchone()
    rel, relkind = _qualified_relation(conn, relid)
    only = sql.SQL("" if relkind == "p" else "ONLY ")
    return [sql.SQL("ALTER TABLE {}{} ALTER COLUMN {} SET DEFAULT ").format(only, rel, sql.Identifier(column))
            .as_string(conn) + expr + ";"]


def _index(conn, dep: Dependent) -> list:
    text, schema, name = conn.execute(
        "SELECT pg_get_indexdef(c.oid), n.nspname::text, c.relname::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s", (dep.oid,)).fetchone()
    return [text + ";", *_comment(conn, dep, sql.SQL("INDEX {}").format(sql.Identifier(schema, name)))]


_ENABLED = {"D": "DISABLE {kind} {name}", "R": "ENABLE REPLICA {kind} {name}", "A": "ENABLE ALWAYS {kind} {name}"}


def _enabled(rel: sql.Composable, kind: str, name: str, state: str) -> list:
    if state not in _ENABLED:
        return []
    return [sql.SQL("ALTER TABLE {} " + _ENABLED[state] + ";").format(rel, kind=sql.SQL(kind),
                                                                     name=sql.Identifier(name))]


def _trigger(conn, dep: Dependent) -> list:
    text, relid, name, enabled = conn.execute(
        "SELECT pg_get_triggerdef(oid), tgrelid, tgname::text, tgenabled::text FROM pg_trigger WHERE oid = %s",
        (dep.oid,)).fetchone()
    rel, _ = _qualified_relation(conn, relid)
    target = sql.SQL("TRIGGER {} ON {}").format(sql.Identifier(name), rel)
    return [text + ";", *_enabled(rel, "TRIGGER", name, enabled), *_comment(conn, dep, target)]


def _rule(conn, dep: Dependent) -> list:
    text, relid, name, enabled = conn.execute(
        "SELECT pg_get_ruledef(oid), ev_class, rulename::text, ev_enabled::text FROM pg_rewrite WHERE oid = %s",
        (dep.oid,)).fetchone()
    rel, _ = _qualified_relation(conn, relid)
    target = sql.SQL("RULE {} ON {}").format(sql.Identifier(name), rel)
    text = text.rstrip()
    return [text if text.endswith(";") else text + ";", *_enabled(rel, "RULE", name, enabled),
            *_comment(conn, dep, target)]


_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def _policy(conn, dep: Dependent) -> list:
    name, relid, command, permissive, roles, using, check = conn.execute(
        "SELECT polname::text, polrelid, polcmd::text, polpermissive, "
        "ARRAY(SELECT CASE WHEN r = 0 THEN '' ELSE pg_get_userbyid(r)::text END FROM unnest(polroles) r), "
        "pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy WHERE oid = %s",
        (dep.oid,)).fetchone()
    rel, _ = _qualified_relation(conn, relid)
    to = sql.SQL(", ").join(sql.Identifier(r) if r else sql.SQL("PUBLIC") for r in roles)
    head = sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}").format(
        sql.Identifier(name), rel, sql.SQL("PERMISSIVE" if permissive else "RESTRICTIVE"),
        sql.SQL(_COMMANDS.get(command, "ALL")), to).as_string(conn)
    text = head + (f" USING ({using})" if using is not None else "") + (
        f" WITH CHECK ({check})" if check is not None else "") + ";"
    return [text, *_comment(conn, dep, sql.SQL("POLICY {} ON {}").format(sql.Identifier(name), rel))]


def _function(conn, dep: Dependent) -> list:
    text, schema, name, args, kind, owner, acl, default_acl = conn.execute(
        "SELECT pg_get_functiondef(p.oid), n.nspname::text, p.proname::text, "
        "pg_get_function_identity_arguments(p.oid), p.prokind::text, pg_get_userbyid(p.proowner)::text, "
        "ARRAY(SELECT ARRAY[CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee)::text END, "
        "      a.privilege_type, a.is_grantable::text] FROM aclexplode(p.proacl) a), p.proacl IS NULL "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = %s", (dep.oid,)).fetchone()
    keyword = "PROCEDURE" if kind == "p" else "FUNCTION"
    signature = sql.SQL("{} {}({})").format(sql.SQL(keyword), sql.Identifier(schema, name), sql.SQL(args))
    out: list = [text.rstrip() + ";", sql.SQL("ALTER {} OWNER TO {};").format(signature, sql.Identifier(owner))]
    if not default_acl:  # as pg_dump does: start from nothing, then grant what the catalog shows
        out.append(sql.SQL("REVOKE ALL ON {} FROM PUBLIC;").format(signature))
        out.append(sql.SQL("REVOKE ALL ON {} FROM {};").format(signature, sql.Identifier(owner)))
        for grantee, privilege, grantable in acl:
            out.append(sql.SQL("GRANT {} ON {} TO {}{};").format(
                sql.SQL(privilege), signature, sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
                sql.SQL(" WITH GRANT OPTION" if grantable == "true" else "")))
    return out + _comment(conn, dep, signature)


_DEFINERS = {"pg_constraint": _constraint, "pg_attrdef": _default, "pg_class": _index, "pg_trigger": _trigger,
             "pg_rewrite": _rule, "pg_policy": _policy, "pg_proc": _function}


# --- states: did a dependent change between the copy and the DROP? ------------------------------------------

_RELATION_STATE = """
SELECT c.relkind::text, pg_get_userbyid(c.relowner)::text, coalesce(c.relacl::text, ''),
  coalesce(obj_description(c.oid, 'pg_class'), ''),
  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END,
  (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
     FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
FROM pg_class c WHERE c.oid = %s
"""


def state(conn, dep: Dependent) -> str:
    """A digest of what the copy holds of ``dep``: its definition (and a table's rows)."""
    if dep.keep == "definition":
        text = definition(conn, dep)
    elif dep.keep == "pg_dump":
        row = conn.execute(_RELATION_STATE, (dep.oid,)).fetchone()
        text = repr(row)
        if row is not None and row[0] in ("r", "p"):
            schema, name = conn.execute("SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n "
                                        "ON n.oid = c.relnamespace WHERE c.oid = %s", (dep.oid,)).fetchone()
            text += repr(rows_fingerprint(conn, schema, name))
    else:
        return ""
    return hashlib.sha256(text.encode()).hexdigest()


def states(conn, deps) -> dict[str, str]:
    return {d.key: state(conn, d) for d in deps if d.keep in ("pg_dump", "definition")}


def rows_fingerprint(conn, schema: str, name: str) -> tuple[int, str]:
    """Row count and an order-independent hash of the relation's own rows (not its inherited tables')."""
    row = conn.execute(sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM ONLY {} t"
    ).format(sql.Identifier(schema, name))).fetchone()
    return int(row[0]), str(row[1])


# --- the copy's plan: what each section of the safety copy recreates, in order ----------------------------------

@dataclass(frozen=True)
class Piece:
    """One dependent with a section of its own in the copy: a pg_dump of a relation, or a definition."""

    dependent: Dependent
    address: tuple[str, tuple[str, ...], tuple[str, ...]]  # pg_identify_object_as_address: found again by it
    definition: str | None = None  # the statements (keep == "definition")
    relation: tuple[str, str] | None = None  # schema, name (keep == "pg_dump")
    relkind: str = ""
    rows: int | None = None  # a pg_dump'd table's own rows, in the snapshot


@dataclass(frozen=True)
class CopyPlan:
    pieces: tuple[Piece, ...] = ()  # in the order they are recreated
    inside: tuple[Piece, ...] = ()  # recreated by another piece's pg_dump (no section of their own)
    lost: tuple[Dependent, ...] = ()  # no copy can hold them


def address(conn, dep: Dependent) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    kind, names, args = conn.execute("SELECT * FROM pg_identify_object_as_address(%s::regclass, %s, %s)",
                                     (f"pg_catalog.{dep.catalog}", dep.oid, dep.subid)).fetchone()
    return str(kind), tuple(names or ()), tuple(args or ())


def plan(conn, deps: tuple[Dependent, ...]) -> CopyPlan:
    """What the copy holds of ``deps`` (read in the copy's snapshot, before pg_dump runs)."""
    pieces = []
    for dep in order(conn, pieces_of(deps)):
        if dep.keep == "definition":
            pieces.append(Piece(dep, address(conn, dep), definition=definition(conn, dep)))
            continue
        schema, name, relkind = conn.execute(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s", (dep.oid,)).fetchone()
        rows = rows_fingerprint(conn, schema, name)[0] if relkind in ("r", "p") else None
        pieces.append(Piece(dep, address(conn, dep), relation=(schema, name), relkind=relkind, rows=rows))
    inside = tuple(Piece(d, address(conn, d)) for d in deps if d.keep.startswith("part of "))
    return CopyPlan(tuple(pieces), inside, tuple(d for d in deps if not d.recoverable))
