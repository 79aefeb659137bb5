"""Opening connections and reading server facts (all psycopg, no Textual)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from .settings import Settings

APPLICATION_NAME = "migrate-tui"


def connect(settings: Settings, *, connect_timeout: int | None = None,
            application_name: str = APPLICATION_NAME) -> psycopg.Connection:
    """An autocommit connection; transactions are opened explicitly by the caller.

    A ``connect_timeout`` in DATABASE_URL is the operator's choice and wins over the defaults
    (a keyword argument would otherwise silently override it).
    """
    return psycopg.connect(
        settings.database_url,
        autocommit=True,
        connect_timeout=_url_connect_timeout(settings) or connect_timeout or settings.connect_timeout_s,
        application_name=application_name,
    )


def _url_connect_timeout(settings: Settings) -> int | None:
    from .settings import conninfo

    value = conninfo(settings.database_url).get("connect_timeout", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def rollback_quietly(conn: psycopg.Connection | None) -> None:
    """End an open transaction, if any; a dead connection needs nothing (the server rolls back)."""
    if conn is None or conn.closed:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
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

    @property
    def major(self) -> int:
        return self.version_num // 10000


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    row = conn.execute(
        "SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS'), current_setting('server_version'), "
        "current_setting('server_version_num')::int, current_user, current_database(), pg_is_in_recovery(), "
        "coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)"
    ).fetchone()
    assert row is not None
    server_time, version, version_num, user, database, in_recovery, ssl = row
    return ServerFacts(
        version=f"PostgreSQL {str(version).split()[0]}",
        version_num=int(version_num),
        server_time=server_time,
        user=user,
        database=database,
        in_recovery=bool(in_recovery),
        ssl=bool(ssl),
    )
