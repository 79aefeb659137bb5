"""Who holds or waits for a lock: the sessions a waiting statement of ours is blocked by, named for the
operator (application, user, state, transaction age, query — redacted). Only SELECTs."""

from __future__ import annotations

import re

from .events import Blocker
from .redact import redact

QUERY_CHARS = 120

_BLOCKERS = """
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), coalesce(a.state, ''),
       extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, '')
FROM unnest(pg_blocking_pids(%s)) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
ORDER BY a.xact_start NULLS LAST, a.pid
"""
# After a lock timeout there is nobody to ask pg_blocking_pids about: read who holds (or waits
# for) a lock on the table instead.
_LOCKERS = """
SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), coalesce(a.state, ''),
       extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''), a.xact_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = %s AND l.database = (SELECT oid FROM pg_database
      WHERE datname = current_database()) AND l.pid <> pg_backend_pid() AND l.pid <> ALL(%s)
ORDER BY a.xact_start NULLS LAST, a.pid
"""
_PASSWORD_LITERAL = re.compile(r"(password\s*)('(?:[^']|'')*'|\S+)", re.I)


def _blocker(row, secrets: list[str]) -> Blocker:
    pid, app, user, state, age, query = row[:6]
    query = " ".join(str(query).split())
    query = _PASSWORD_LITERAL.sub(r"\1****", redact(query, secrets))
    if len(query) > QUERY_CHARS:
        query = query[: QUERY_CHARS - 1] + "…"
    return Blocker(int(pid), str(app), str(user), str(state), None if age is None else round(float(age), 1), query)


def blockers(conn, pid: int, secrets: list[str]) -> tuple[Blocker, ...]:
    """Sessions our backend ``pid`` is waiting for (holders and waiters ahead of it)."""
    return tuple(_blocker(r, secrets) for r in conn.execute(_BLOCKERS, (pid,)).fetchall())


def lockers(conn, oid: int, secrets: list[str], exclude: list[int]) -> tuple[Blocker, ...]:
    """Sessions holding or awaiting a lock on the table (read after a lock timeout)."""
    return tuple(_blocker(r, secrets) for r in conn.execute(_LOCKERS, (oid, exclude)).fetchall())
