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

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from .settings import Settings

APPLICATION_NAME = "migrate-tui"
PIN_SEARCH_PATH = "SET LOCAL search_path = pg_catalog, pg_temp"
_MODE = re.compile(r"^(ISOLATION LEVEL (SERIALIZABLE|REPEATABLE READ|READ COMMITTED)( READ (ONLY|WRITE))?"
                   r"|READ (ONLY|WRITE))?$")
_ENDS = ("COMMIT", "ROLLBACK", "END", "ABORT")
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
    """An autocommit connection whose transactions are opened with :meth:`begin`."""

    _pinned = False

    def begin(self, mode: str = "") -> None:
        """``BEGIN [mode]`` and pin ``search_path``, in one round trip (the simple query protocol)."""
        if not _MODE.match(mode):
            raise ValueError(f"unsupported transaction mode {mode!r}")
        if self.pgconn.transaction_status != TransactionStatus.IDLE:
            raise UnpinnedTransaction("a transaction is already open")
        psycopg.Cursor(self).execute(f"BEGIN{' ' + mode if mode else ''}; {PIN_SEARCH_PATH}")
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
    return PinnedConnection.connect(url, autocommit=True, prepare_threshold=None, cursor_factory=PinnedCursor,
                                    **params)


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
        backend_pid=int(backend_pid),
    )
