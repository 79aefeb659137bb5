"""The scanner the hostile tests read the tool's SQL with: what it must find (so no name escapes the
generated attacker objects), on statements shaped like the tool's."""

from __future__ import annotations

from sql_surface import surface


def test_calls_with_their_number_of_arguments_and_only_unqualified_ones():
    s = surface(["SELECT format('%I.%I', n.nspname, c.relname), count(*), now(), pg_catalog.lower('A'), "
                 "setval(pg_get_serial_sequence('\"public\".\"t\"', 'id'), coalesce((SELECT max(\"id\") FROM "
                 "\"public\".\"t\"), 0) + 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"])
    assert s.functions == {("format", 3), ("count", 0), ("now", 0), ("setval", 3), ("pg_get_serial_sequence", 2),
                           ("max", 1)}
    assert {"pg_catalog.lower", "public.t"} <= s.qualified
    assert s.relations == {"pg_class", "pg_namespace"}
    assert ("+", "b") in s.operators and ("=", "b") in s.operators


def test_operators_hidden_in_keyword_syntax():
    s = surface(["SELECT 1 FROM pg_class WHERE relkind IN ('r', 'p') AND relname NOT IN ('x') AND relname NOT LIKE "
                 "'pg_%' AND relname ILIKE 'a' AND relpages BETWEEN 1 AND 2 AND relowner IS DISTINCT FROM 10 AND "
                 "nullif(relnatts, 0) > 0 AND CASE relkind WHEN 'r' THEN true END AND x = ANY($1) "
                 "AND -relpages < 0 AND relname || 'x' <> ''"])
    assert s.operators == {("=", "b"), ("<>", "b"), ("!~~", "b"), ("~~*", "b"), (">=", "b"), ("<=", "b"),
                           (">", "b"), ("-", "l"), ("<", "b"), ("||", "b")}


def test_relations_aliases_ctes_and_syntax_that_is_not_a_call():
    s = surface(["WITH RECURSIVE walk(a, b) AS (SELECT 1, 2 UNION SELECT w.a, d.objid FROM walk w CROSS JOIN "
                 "LATERAL (SELECT objid FROM pg_depend) d) SELECT extract(epoch FROM now() - a.xact_start), "
                 "'pg_class'::regclass::oid, x::text FROM unnest(pg_blocking_pids($1)) AS b(pid) JOIN "
                 "pg_stat_activity a ON a.pid = b.pid, pg_locks l WHERE l.pid IS DISTINCT FROM a.pid"])
    assert s.functions == {("now", 0), ("unnest", 1), ("pg_blocking_pids", 1)}  # not walk(), b(), extract()
    assert s.relations == {"walk", "pg_depend", "pg_stat_activity", "pg_locks"}
    assert s.regclass_literals == {"pg_class"} and s.casts == {"regclass", "oid", "text"}


def test_statements_without_expressions_add_nothing():
    s = surface(["BEGIN READ ONLY; SET LOCAL search_path = pg_catalog, pg_temp", "SET LOCAL \"lock_timeout\" = '5ms'",
                 "COMMIT"])
    assert not (s.functions or s.operators or s.relations)
