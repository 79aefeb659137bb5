"""Opening connections and reading server facts (all psycopg, no Textual).

Every session the tool opens trusts nothing that other roles of the database can create
(CVE-2018-1058): each transaction starts by pinning ``search_path`` to ``pg_catalog, pg_temp``
(pg_dump's own practice), so no function, operator, type or relation of a user schema can
stand in for the built-in one a statement means, and objects of the user's schema are always
written schema-qualified. The pin is ``SET LOCAL``: it holds for the transaction only, which is
also correct behind a transaction-mode pooler (a session-level SET would land on whichever
server connection the pooler picks, and could leak to other clients).

:class:`PinnedCursor` enforces this for every statement: outside a transaction a statement runs
in a transaction of its own that pins first; inside one, the transaction must have been opened
with :meth:`PinnedConnection.begin`. Prepared statements are off (``prepare_threshold=None``):
transaction-mode poolers cannot keep them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from . import connected
from .settings import Settings

APPLICATION_NAME = "migrate-tui"
# psycopg warns on stderr when closing a connection the server already ended ("error ignored in rollback on
# <...>"): the outcome is reported by the operation itself, read back from the catalog; no stray lines.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
PIN_SEARCH_PATH = "SET LOCAL search_path = pg_catalog, pg_temp"
_MODE = re.compile(r"^(ISOLATION LEVEL (SERIALIZABLE|REPEATABLE READ|READ COMMITTED)( READ (ONLY|WRITE))?"
                   r"|READ (ONLY|WRITE))?$")
_ENDS = ("COMMIT", "ROLLBACK", "END", "ABORT")
# Settings a transaction may give itself in the BEGIN's own round trip (SET LOCAL), e.g. so that a role's
# idle_in_transaction_session_timeout cannot end it before its next statement: name -> allowed values.
_LOCAL_NAME = re.compile(r"^(idle_in_transaction_session_timeout|transaction_timeout|statement_timeout|lock_timeout)$")
_LOCAL_VALUE = re.compile(r"^[0-9]{1,10}(ms)?$")
_BEGINS = ("BEGIN", "START")


class UnpinnedTransaction(psycopg.ProgrammingError):
    """A statement in a transaction that did not pin search_path first: a bug in migrate-tui."""


def _keyword(query, conn) -> str:
    """The statement's first word, upper-case (BEGIN, COMMIT, SELECT, ...)."""
    if isinstance(query, sql.Composable):
        query = query.as_string(conn)
    elif isinstance(query, (bytes, bytearray, memoryview)):
        query = bytes(query).decode("utf-8", "replace")
    words = str(query).lstrip().split(None, 1)
    return words[0].rstrip(";").upper() if words else ""


class PinnedCursor(psycopg.Cursor):
    """Runs every statement in a transaction whose first statement pinned ``search_path``."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        conn = self.connection
        keyword = _keyword(query, conn)
        if keyword in _BEGINS:
            raise UnpinnedTransaction("open transactions with PinnedConnection.begin(), not BEGIN")
        if conn.pgconn.transaction_status == TransactionStatus.IDLE:
            conn._pinned = False
            if keyword in _ENDS:  # nothing to end: harmless, as in psql
                return super().execute(query, params, prepare=prepare, binary=binary)
            # A statement on its own: a transaction of its own, pinned first.
            conn.begin()
            try:
                super().execute(query, params, prepare=prepare, binary=binary)
            except BaseException:
                _end(conn, "ROLLBACK")
                raise
            _end(conn, "COMMIT")
            return self
        if not conn._pinned and keyword not in _ENDS:
            raise UnpinnedTransaction("this transaction did not pin search_path (use PinnedConnection.begin())")
        if keyword == "ROLLBACK" and params is None:  # never fails: a dead connection has nothing to end
            _end(conn, "ROLLBACK")
            return self
        return super().execute(query, params, prepare=prepare, binary=binary)

    def executemany(self, query, params_seq, *, returning=False):
        raise NotImplementedError("migrate-tui runs statements one by one (PinnedCursor.execute)")


def _end(conn: "PinnedConnection", command: str) -> None:
    """COMMIT / ROLLBACK through a plain cursor (the pinned one would wrap it)."""
    try:
        psycopg.Cursor(conn).execute(command)
    except BaseException:
        if command == "COMMIT":
            raise
        # a broken connection: the server discards the transaction
    finally:
        if conn.pgconn.transaction_status == TransactionStatus.IDLE:
            conn._pinned = False


class PinnedConnection(psycopg.Connection):
    """An autocommit connection whose transactions are opened with :meth:`begin`.

    ``ROLLBACK`` never raises: on a connection the server closed (a terminated session, a lost server) the
    transaction is already gone, and the ``ROLLBACK`` of a ``finally`` must not replace the error that says
    what happened with "the connection is closed"."""

    _pinned = False

    def execute(self, query, params=None, *, prepare=None, binary=False):
        if self.closed and params is None and _keyword(query, self) == "ROLLBACK":
            self._pinned = False
            return None
        return super().execute(query, params, prepare=prepare, binary=binary)

    def begin(self, mode: str = "", local: dict[str, str] | None = None) -> None:
        """``BEGIN [mode]`` and pin ``search_path``, in one round trip (the simple query protocol).

        ``local``: timeouts the transaction sets for itself (``SET LOCAL``) in that same round trip, before
        it can ever be idle (e.g. ``{"idle_in_transaction_session_timeout": "0"}``)."""
        if not _MODE.match(mode):
            raise ValueError(f"unsupported transaction mode {mode!r}")
        if self.pgconn.transaction_status != TransactionStatus.IDLE:
            raise UnpinnedTransaction("a transaction is already open")
        settings = ""
        for name, value in (local or {}).items():
            if not _LOCAL_NAME.match(name) or not _LOCAL_VALUE.match(str(value)):
                raise ValueError(f"unsupported SET LOCAL {name} = {value!r}")
            settings += f"; SET LOCAL {name} = '{value}'"
        psycopg.Cursor(self).execute(f"BEGIN{' ' + mode if mode else ''}; {PIN_SEARCH_PATH}{settings}")
        self._pinned = True


def connect(settings: Settings, *, connect_timeout: int | None = None,
            application_name: str = APPLICATION_NAME) -> PinnedConnection:
    """An autocommit connection; transactions are opened explicitly with ``conn.begin()``.

    A ``connect_timeout`` in DATABASE_URL is the operator's choice and wins over the defaults
    (a keyword argument would otherwise silently override it).
    """
    return connect_url(settings.database_url,
                       connect_timeout=_url_connect_timeout(settings) or connect_timeout or settings.connect_timeout_s,
                       application_name=application_name)


def connect_url(url: str, **params) -> PinnedConnection:
    """A pinned autocommit connection to a URL (the demo database, test and benchmark set-up)."""
    conn = PinnedConnection.connect(url, autocommit=True, prepare_threshold=None, cursor_factory=PinnedCursor,
                                    **params)
    connected.record(url, conn.info.host, str(conn.info.port))
    return conn


_OUTSIDE = ("CREATE DATABASE", "DROP DATABASE", "VACUUM", "CHECKPOINT")


def outside_transaction(conn: PinnedConnection, statement) -> None:
    """A statement PostgreSQL refuses inside a transaction (CREATE DATABASE, VACUUM, CHECKPOINT): sent
    on its own. Only these are allowed here: they call no function or operator a search_path resolves."""
    text = statement.as_string(conn) if isinstance(statement, sql.Composable) else str(statement)
    if not " ".join(text.split()).upper().startswith(_OUTSIDE):
        raise UnpinnedTransaction(f"not a statement that must run outside a transaction: {text[:40]!r}")
    psycopg.Cursor(conn).execute(statement)


def create_database(conn: PinnedConnection, name: str, owner: str) -> None:
    outside_transaction(conn, sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                           sql.Identifier(owner)))


def _url_connect_timeout(settings: Settings) -> int | None:
    from .url import conninfo

    value = conninfo(settings.database_url).get("connect_timeout", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def guarded(conn: psycopg.Connection, *, idle_ms: int, statement_timeout_ms: int | None = None,
            lock_timeout_ms: int | None = None) -> dict[str, str]:
    """``begin(local=...)`` values for a transaction of ours that the role's or the database's timeouts must
    not end: ``idle_in_transaction_session_timeout`` (0 = never, for a session that waits while a child such as
    pg_dump reads its snapshot) and, where the server has it (PostgreSQL 17+), ``transaction_timeout = 0``;
    our own statement and lock timeouts still bound every statement."""
    local = {"idle_in_transaction_session_timeout": f"{idle_ms}ms"}
    if conn.info.server_version >= 170000:
        local["transaction_timeout"] = "0"
    if statement_timeout_ms is not None:
        local["statement_timeout"] = f"{statement_timeout_ms}ms"
    if lock_timeout_ms is not None:
        local["lock_timeout"] = f"{lock_timeout_ms}ms"
    return local


def rollback_quietly(conn: psycopg.Connection | None) -> None:
    """End an open transaction, if any; a dead connection needs nothing (the server rolls back)."""
    if conn is None or conn.closed:
        return
    try:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - broken connection: the server discards the transaction
        pass


@dataclass(frozen=True)
class ServerFacts:
    version: str  # e.g. "PostgreSQL 15.4"
    version_num: int  # server_version_num, e.g. 150004
    server_time: str  # "2024-01-15 10:30:25"
    user: str
    database: str
    in_recovery: bool
    ssl: bool
    host: str = ""  # the host this connection reached (from a host list: the first that answered)
    port: str = ""
    backend_pid: int = 0  # pg_backend_pid(): the server process (behind a pooler, not conn.info.backend_pid)

    @property
    def major(self) -> int:
        return self.version_num // 10000


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    row = conn.execute(
        "SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS'), current_setting('server_version'), "
        "current_setting('server_version_num')::int, current_user, current_database(), pg_is_in_recovery(), "
        "coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), pg_backend_pid()"
    ).fetchone()
    assert row is not None
    server_time, version, version_num, user, database, in_recovery, ssl, backend_pid = row
    return ServerFacts(
        version=f"PostgreSQL {str(version).split()[0]}",
        version_num=int(version_num),
        server_time=server_time,
        user=user,
        database=database,
        in_recovery=bool(in_recovery),
        ssl=bool(ssl),
        host=conn.info.host,
        port=str(conn.info.port),
        backend_pid=int(backend_pid),
    )
