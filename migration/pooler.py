"""Is a connection pooler between migrate-tui and PostgreSQL, in which mode, and what that means.

:func:`detect` looks at a live connection and returns a :class:`PoolerReport`: the mode (none,
session, transaction, or a pooler whose mode could not be told), the signals that say so, and what it
means for each operation (:meth:`PoolerReport.meaning`). Verified against PgBouncer 1.18 (Debian 12)
in both modes:

- **Presence.** A pooler answers the client's startup itself: the BackendKeyData (cancel key) psycopg
  reports as ``conn.info.backend_pid`` is the pooler's, not the server process's that
  ``SELECT pg_backend_pid()`` returns. Well-known pooler endpoints (ports 6543 and 6432, ``pooler`` or
  ``pgbouncer`` in the host name) are signals too. ``SHOW VERSION`` on an ordinary connection is passed
  through to the server (``unrecognized configuration parameter "version"``, as on a direct one); only
  PgBouncer's admin database ``pgbouncer`` answers it. That database is asked (``SHOW VERSION``,
  ``SHOW POOLS``) only once the cancel key shows a pooler: it names PgBouncer and, for its admin and
  stats users, gives the configured ``pool_mode``; other users get PgBouncer's ``not allowed``.
- **Mode.** One client alone cannot tell: an idle pool gives its consecutive transactions the same
  server connection in both modes. The probe uses two short connections of its own: the second holds
  a transaction open, then the first asks ``pg_backend_pid()`` again. Under transaction pooling the
  second transaction gets the server connection the first had just released, or the first moves to
  another one; under session pooling (or a direct connection) neither can happen. Every probe
  statement runs in a pinned transaction (:mod:`migration.db`); the probe is bounded in time (a full
  pool leaves a waiting client unanswered, and PgBouncer ignores a cancel request for it: the probe's
  sockets are shut down instead) and then reports the mode as unknown.

What each mode means is decided here, once, for every command (see ``_MEANINGS``): transaction
pooling keeps every statement of one transaction on one server connection, so the migration and the
rollback's DROP (one transaction each, ``pg_try_advisory_xact_lock``, ``SET LOCAL``) are correct
through it; pg_dump is not: its session settings (``search_path = ''``, ``statement_timeout = 0``,
``row_security = off``, …) are plain ``SET`` s before its transaction, which stay on whichever pooled
server connection ran them — verified: other clients of the pool then ran with an empty search_path —
while its own transaction may run on another server connection without them. A pooler whose mode
could not be told is treated as transaction pooling.
"""

from __future__ import annotations

import enum
import os
import queue
import re
import socket
import threading
from dataclasses import dataclass

from .settings import Settings

# Ports that pooled endpoints use: Supabase's transaction pooler (Supavisor), PgBouncer's default.
POOLER_PORTS = {"6543": "the port of Supabase's transaction pooler", "6432": "PgBouncer's default port"}
POOLER_HOST_WORDS = ("pooler", "pgbouncer")  # Supabase/Neon pooled host names, PgBouncer deployments
PROBE_TIMEOUT_S = 3.0
PROBE_ROUNDS = 3
APPLICATION_NAME = "migrate-tui pooler probe"
DUMP_REFUSED = ("its session settings (search_path = '', statement_timeout = 0, row_security = off, …) would stay "
                "on the pooled server connections that ran them and reach other clients")
DIRECT_URL_HINT = ("Use the direct (non-pooled) URL for it: your provider's direct connection, usually "
                   "port 5432 and the host without 'pooler'")
OPERATIONS = ("check", "backup", "migrate", "rollback", "restore")


class PoolMode(str, enum.Enum):
    NONE = "none"  # a direct connection
    SESSION = "session"
    TRANSACTION = "transaction"
    UNKNOWN = "unknown"  # a pooler whose mode could not be told: treated as transaction pooling


_TRANSACTION_MEANINGS = {
    "check": "the migration and the rollback's DROP are safe through it (each runs in one transaction, which the "
             "pooler keeps on one server connection: pg_try_advisory_xact_lock and SET LOCAL hold for exactly "
             "that transaction); pg_dump (the backup, the rollback's safety copy) is not: its session settings "
             "would stay on pooled server connections and reach other clients",
    "backup": "pg_dump does not run through it: its session settings (search_path = '', statement_timeout = 0, "
              "row_security = off, …) are plain SETs before its transaction; they would stay on the pooled "
              "server connections that ran them and reach other clients, and its transaction may run on another "
              "server connection without them",
    "migrate": "the migration is safe through it: it runs in one transaction, which the pooler keeps on one "
               "server connection, and its lock (pg_try_advisory_xact_lock) and timeouts (SET LOCAL) hold for "
               "exactly that transaction",
    "rollback": "the DROP is safe through it (one transaction, pg_try_advisory_xact_lock, SET LOCAL); the safety "
                "copy is not: pg_dump's session settings would stay on pooled server connections and reach "
                "other clients",
    "restore": "the restore is safe through it: psql runs the copy in one transaction (--single-transaction), "
               "and its session settings are reset (RESET ALL) before that transaction commits, so nothing stays "
               "on the pooled server connection",
}
_SESSION_MEANING = ("each client keeps one server connection for its whole session, as on a direct connection: "
                    "every command works as it does there")
_SESSION_MEANINGS = {
    "check": _SESSION_MEANING,
    "backup": _SESSION_MEANING + " (pg_dump holds one pooled server connection while it runs)",
    "migrate": _SESSION_MEANING,
    "rollback": _SESSION_MEANING + " (the rollback holds up to four pooled server connections while it runs)",
    "restore": _SESSION_MEANING,
}


@dataclass(frozen=True)
class PoolerReport:
    mode: PoolMode
    signals: tuple[str, ...] = ()  # why: each a short clause
    product: str = ""  # "PgBouncer 1.18.0" / "PgBouncer" when its admin database says so

    @property
    def present(self) -> bool:
        return self.mode is not PoolMode.NONE

    @property
    def dumps_safely(self) -> bool:
        """pg_dump (the backup, the rollback's safety copy) is correct through this connection."""
        return self.mode in (PoolMode.NONE, PoolMode.SESSION)

    @property
    def label(self) -> str:
        """e.g. "transaction pooling (PgBouncer 1.18.0)"."""
        what = {PoolMode.NONE: "a direct connection", PoolMode.SESSION: "session pooling",
                PoolMode.TRANSACTION: "transaction pooling",
                PoolMode.UNKNOWN: "a connection pooler in an unknown or unsupported mode (treated as "
                                  "transaction pooling)"}[self.mode]
        return f"{what} ({self.product})" if self.product else what

    @property
    def reason(self) -> str:
        return "; ".join(self.signals)

    def meaning(self, operation: str) -> str:
        """What this connection means for ``operation`` (one of :data:`OPERATIONS`)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        if self.mode is PoolMode.NONE:
            return "no connection pooler: nothing changes"
        if self.mode is PoolMode.SESSION:
            return _SESSION_MEANINGS[operation]
        return _TRANSACTION_MEANINGS[operation]

    def describe(self, operation: str) -> str:
        """One line for an operation's output: the mode, why, and what it means for it."""
        what = {"check": "every command", "migrate": "the migration"}.get(operation, f"the {operation}")
        return f"{self.label}: {self.reason}. For {what}: {self.meaning(operation)}."


DIRECT = PoolerReport(PoolMode.NONE)


def url_signals(settings: Settings, host: str | None = None, port: str | None = None) -> list[str]:
    """Why the URL looks like a connection pooler's (empty when it looks direct); ``host``/``port``: the ones
    actually connected (a URL may list several), else the URL's."""
    target = settings.target
    shown = host or target["host"]
    port = str(port or target["port"])
    signals = []
    if port in POOLER_PORTS:
        signals.append(f"port {port} is {POOLER_PORTS[port]}")
    if any(word in shown.lower() for word in POOLER_HOST_WORDS):
        signals.append(f"the host {shown} is a pooler endpoint")
    return signals


def detect(conn, settings: Settings, server_pid: int | None = None, *,
           probe_timeout_s: float = PROBE_TIMEOUT_S) -> PoolerReport:
    """The pooler (if any) between ``conn`` and the server. ``server_pid``: ``pg_backend_pid()`` if already
    read (:attr:`migration.db.ServerFacts.backend_pid`). Opens short probe connections only when a
    pooler shows."""
    if server_pid is None:
        server_pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    signals = url_signals(settings, conn.info.host, conn.info.port)
    keyed = conn.info.backend_pid != server_pid
    if keyed:
        signals.insert(0, f"the cancel key the connection got names process {conn.info.backend_pid}, but the "
                          f"server process is {server_pid}: something between them answers for the server")
    if not signals:
        return DIRECT
    product, configured = console(settings) if keyed else ("", None)
    mode = _MODES.get(configured or "")
    if mode is not None:
        signals.append(f"its admin console reports pool_mode = {configured}")
    else:
        mode, why = probe(conn, settings, probe_timeout_s)
        signals.append(why)
    return PoolerReport(mode, tuple(signals), product)


def detect_for(settings: Settings) -> PoolerReport:
    """:func:`detect` on a short connection of its own (e.g. the rollback's preview)."""
    from .db import connect

    with connect(settings, application_name=APPLICATION_NAME) as conn:
        return detect(conn, settings)


# --- PgBouncer's admin console ------------------------------------------------------------------

_NOT_ALLOWED = re.compile(r"FATAL:\s+not allowed\s*$", re.M)
# PgBouncer's pool_mode values. Statement pooling refuses multi-statement transactions, which every command
# uses: it is reported as it is configured, with the meaning of an unknown mode.
_MODES = {"session": PoolMode.SESSION, "transaction": PoolMode.TRANSACTION, "statement": PoolMode.UNKNOWN}


def console(settings: Settings) -> tuple[str, str | None]:
    """PgBouncer's admin database ``pgbouncer``: ("PgBouncer <version>", its pool_mode) for its admin and
    stats users; ("PgBouncer", None) for others (it answers "not allowed"); ("", None) from anything else.

    The console is not PostgreSQL (no transactions, no search_path; only SHOW and admin commands), so
    it is opened as a plain connection, and only SHOW statements are sent to it.
    """
    import psycopg

    try:
        with psycopg.Connection.connect(settings.database_url, dbname="pgbouncer", autocommit=True,
                                        prepare_threshold=None, connect_timeout=3,
                                        application_name=APPLICATION_NAME) as admin:
            version = str(admin.execute("SHOW VERSION").fetchone()[0])
            return version if version.startswith("PgBouncer") else "PgBouncer", _console_mode(admin, settings)
    except psycopg.Error as exc:
        return ("PgBouncer", None) if _NOT_ALLOWED.search(str(exc)) else ("", None)


def _console_mode(admin, settings: Settings) -> str | None:
    import psycopg

    target = settings.target
    try:
        cur = admin.execute("SHOW POOLS")
        names = [c.name for c in cur.description or ()]
        if {"database", "user", "pool_mode"} <= set(names):
            for row in cur.fetchall():
                values = dict(zip(names, row))
                if values["database"] == target["dbname"] and values["user"] == target["user"]:
                    return str(values["pool_mode"] or "").strip().lower() or None
        for name, value, *_ in admin.execute("SHOW CONFIG").fetchall():
            if name == "pool_mode":
                return str(value or "").strip().lower() or None
    except psycopg.Error:
        return None
    return None


# --- the two-connection probe -------------------------------------------------------------------

def probe(conn, settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[PoolMode, str]:
    """Transaction or session pooling: ``conn`` (idle) and a second short connection of the probe's own
    that holds a transaction open (see the module doc). At most ``timeout_s`` per wait."""
    from .errors import explain

    holder = _Holder(settings, timeout_s)
    try:
        before = _pid(conn)
        for _ in range(PROBE_ROUNDS):
            held, release = holder.hold()
            try:
                if held == before:
                    return PoolMode.TRANSACTION, (f"a second connection's transaction ran on server process {held}, "
                                                  "which the first connection had just used: server connections "
                                                  "are shared between transactions")
                now = _pid(conn)
                if now != before:
                    return PoolMode.TRANSACTION, (f"one connection's transactions ran on server processes {before} "
                                                  f"and {now}: server connections are shared between transactions")
            finally:
                release.set()
        return PoolMode.SESSION, (f"one connection's transactions all ran on server process {before}, also while "
                                  "another connection held a transaction open: each client keeps its server "
                                  "connection")
    except _NoAnswer:
        return PoolMode.UNKNOWN, (f"a second connection got no server connection within {timeout_s:g} s (a full "
                                  "pool, or a slow link), so the mode could not be told")
    except Exception as exc:  # noqa: BLE001 - the mode stays unknown, with the reason
        return PoolMode.UNKNOWN, f"the mode could not be told: {explain(exc, secrets=settings.secrets()).message}"
    finally:
        holder.close()


def _pid(conn) -> int:
    return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # a pinned transaction of its own


class _NoAnswer(Exception):
    """The probe's second connection did not get a server connection in time."""


class _Holder:
    """The probe's second connection, in a thread of its own: on each :meth:`hold` it opens a read-only
    transaction, answers its server process, and keeps it open until released (at most ``timeout_s``,
    so a caller that waits for a server connection meanwhile is never stuck behind it)."""

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        self.settings, self.timeout_s = settings, timeout_s
        self._requests: queue.Queue = queue.Queue()
        self._answers: queue.Queue = queue.Queue()
        self._conn = None
        self._stuck = False  # waiting for a server connection: only shutting its socket down ends the wait
        self._thread = threading.Thread(target=self._run, name="migrate-tui-pooler-probe", daemon=True)
        self._thread.start()

    def hold(self) -> tuple[int, threading.Event]:
        release = threading.Event()
        self._requests.put(release)
        try:
            answer = self._answers.get(timeout=self.timeout_s)
        except queue.Empty:
            self._stuck = True
            raise _NoAnswer() from None
        if isinstance(answer, BaseException):
            raise answer
        return answer, release

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(0 if self._stuck else self.timeout_s)
        if self._thread.is_alive():  # still connecting, or waiting for a server connection
            conn = self._conn
            if conn is not None:
                _shut_down(conn)
            self._thread.join(self.timeout_s)

    def _run(self) -> None:
        from .db import connect

        try:
            self._conn = connect(self.settings, application_name=APPLICATION_NAME,
                                 connect_timeout=max(2, int(self.timeout_s + 0.999)))
            with self._conn:
                while (release := self._requests.get()) is not None:
                    self._conn.begin("READ ONLY")
                    try:
                        self._answers.put(_pid(self._conn))
                        release.wait(self.timeout_s)
                    finally:
                        self._conn.execute("ROLLBACK")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller (or dropped after a timeout)
            self._answers.put(exc)


def _shut_down(conn) -> None:
    """Wake a thread blocked on this connection (thread-safe, unlike close()): shut its socket down."""
    try:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    except Exception:  # noqa: BLE001 - already closed
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
