"""Who holds or waits for a lock: the sessions a waiting statement of ours is blocked by, named for the
operator (application, user, state, transaction age, query — redacted). Only SELECTs.

pg_stat_activity shows another role's session only in part to a role without pg_read_all_stats: its
state, transaction start and query are NULL / ``<insufficient privilege>``. Such a blocker is marked
``hidden`` (never reported as "no transaction"); the lock it holds comes from pg_locks, which
every role can read."""

from __future__ import annotations

import re

from .events import Blocker
from .redact import redact

QUERY_CHARS = 120

# Whether this role may see the session's details (what pg_stat_activity itself checks), and the locks it
# holds on the relations the waiting backend asks for.
_SEEN = ("coalesce(pg_has_role(a.usesysid, 'USAGE'), false) OR pg_has_role('pg_read_all_stats', 'USAGE')")
_BLOCKERS = f"""
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), coalesce(a.state, ''),
       extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''), NOT ({_SEEN}),
       coalesce((SELECT string_agg(DISTINCT h.mode, ', ') FROM pg_locks w JOIN pg_locks h
                 ON h.locktype = w.locktype AND h.database IS NOT DISTINCT FROM w.database
                 AND h.relation IS NOT DISTINCT FROM w.relation AND h.pid = a.pid AND h.granted
                 WHERE w.pid = %s AND NOT w.granted), '')
FROM unnest(pg_blocking_pids(%s)) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
ORDER BY a.xact_start NULLS LAST, a.pid
"""
# After a lock timeout there is nobody to ask pg_blocking_pids about: read who holds (or waits
# for) a lock on the table instead.
_LOCKERS = f"""
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), coalesce(a.state, ''),
       extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''), NOT ({_SEEN}),
       string_agg(DISTINCT l.mode, ', ') FILTER (WHERE l.granted), a.xact_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = %s AND l.database = (SELECT oid FROM pg_database
      WHERE datname = current_database()) AND l.pid <> pg_backend_pid() AND l.pid <> ALL(%s)
GROUP BY a.pid, a.application_name, a.usename, a.state, a.xact_start, a.query, a.usesysid
ORDER BY a.xact_start NULLS LAST, a.pid
"""
_PASSWORD_LITERAL = re.compile(r"(password\s*)('(?:[^']|'')*'|\S+)", re.I)


def _blocker(row, secrets: list[str]) -> Blocker:
    pid, app, user, state, age, query, hidden, holds = row[:8]
    if hidden:  # the server showed nothing of it to this role: say so, never "no transaction"
        state, age, query = "", None, ""
    query = " ".join(str(query).split())
    query = _PASSWORD_LITERAL.sub(r"\1****", redact(query, secrets))
    if len(query) > QUERY_CHARS:
        query = query[: QUERY_CHARS - 1] + "…"
    return Blocker(int(pid), str(app), str(user), str(state), None if age is None else round(float(age), 1), query,
                   hidden=bool(hidden), holds=str(holds or ""))


def blockers(conn, pid: int, secrets: list[str]) -> tuple[Blocker, ...]:
    """Sessions our backend ``pid`` is waiting for (holders and waiters ahead of it)."""
    return tuple(_blocker(r, secrets) for r in conn.execute(_BLOCKERS, (pid, pid)).fetchall())


def lockers(conn, oid: int, secrets: list[str], exclude: list[int]) -> tuple[Blocker, ...]:
    """Sessions holding or awaiting a lock on the table (read after a lock timeout)."""
    return tuple(_blocker(r, secrets) for r in conn.execute(_LOCKERS, (oid, exclude)).fetchall())
