"""Helpers for the fault suite: private servers (stop/restart, a hot standby), CLI runs, catalog reads.

Scenarios that stop a server or need a replica start their own
:class:`migration.pgserver.LocalServer` here instead of touching the shared session servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psycopg

from cli.cli_support import CliResult, assert_clean, cli_env, finish, run_cli, start_cli  # noqa: F401
from engine.engine_support import catalog_snapshot, migration_backends, wait_until  # noqa: F401
from harness import CANARY, Database, Server

from migration.pgserver import LocalServer, embedded_bin_dir, free_port
from migration.schema import TABLE

RUN = ("run", "--yes")


def table_state(db: Database) -> str:
    """'absent', or 'valid' (the guide's columns and all three indexes), else 'other'."""
    if not db.table_exists():
        return "absent"
    with db.admin() as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'database_backups'").fetchall()}
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'database_backups'"
        ).fetchall()}
    wanted_columns = set(TABLE.column_names)
    wanted_indexes = {ix.name for ix in TABLE.indexes}
    return "valid" if columns == wanted_columns and wanted_indexes <= indexes else "other"


def env_for(db: Database, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: DATABASE_URL with the canary, the audit log in tmp_path."""
    return cli_env(db.url, MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log"), **extra)


def terminate_migration_backends(db: Database, application_name: str = "migrate-tui") -> int:
    """pg_terminate_backend with a wait (PostgreSQL 14+): returns once each backend has exited."""
    with db.admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()",
            (db.name, application_name)).fetchall()
    return sum(1 for (ok,) in rows if ok)


def send(proc: subprocess.Popen, sig: int) -> None:
    os.kill(proc.pid, sig)


def backend_count(db: Database, like: str) -> int:
    with db.admin() as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
                            (db.name, like)).fetchone()[0]


def waiting_on_lock(db: Database, like: str, unlike: str = "") -> bool:
    """A session whose application_name is LIKE ``like`` (and not LIKE ``unlike``) waits for a lock."""
    with db.admin() as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s "
            "AND application_name NOT LIKE %s AND wait_event_type = 'Lock'", (db.name, like, unlike)).fetchone()[0])


class PrivateServer:
    """A PostgreSQL 18 server of one test module: may be stopped, restarted and replicated."""

    def __init__(self) -> None:
        bin_dir = embedded_bin_dir()
        if bin_dir is None:
            raise LookupError("the embedded PostgreSQL 18 wheel is not installed")
        # A real primary: WAL for a standby; default durability settings are not needed here.
        self.local = LocalServer(bin_dir, settings=("fsync=off", "wal_level=replica", "max_wal_senders=4"))
        self.local.start()
        self.server = Server(self.local.url(), "private18", self.local)
        self.standby_port: int | None = None
        self.standby_dir: Path | None = None

    def stop_fast(self) -> None:
        self.local.stop("fast")

    def start_again(self) -> None:
        self.local._pg_ctl_start()

    # -- a hot standby -------------------------------------------------------------------------
    def _as_server_user(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = list(cmd)
        if self.local.os_user:
            argv = ["runuser", "-u", self.local.os_user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=True)

    def start_standby(self) -> int:
        """pg_basebackup -R into a second data directory, started as a hot standby on another port."""
        assert self.local.root is not None
        bin_dir = self.local.bin_dir
        self.standby_dir = self.local.root / "standby"
        conninfo = f"host=127.0.0.1 port={self.local.port} user=postgres password={self.local.password}"
        self._as_server_user(str(bin_dir / "pg_basebackup"), "-R", "-X", "stream", "-c", "fast",
                             "-D", str(self.standby_dir), "-d", conninfo)
        self.standby_port = free_port()
        options = f"-p {self.standby_port} -k {self.local.root} -c listen_addresses=127.0.0.1 -c hot_standby=on"
        self._as_server_user(str(bin_dir / "pg_ctl"), "-D", str(self.standby_dir), "-w", "-t", "60",
                             "-l", str(self.local.root / "standby.log"), "-o", options, "start")
        return self.standby_port

    def standby_url(self, dbname: str) -> str:
        assert self.standby_port is not None
        return self.server.url(dbname).replace(f":{self.local.port}/", f":{self.standby_port}/")

    def wait_replayed(self, dbname: str) -> None:
        """Wait until the standby accepts connections to dbname and is in recovery."""
        def ready():
            try:
                with psycopg.connect(self.standby_url(dbname), connect_timeout=3) as conn:
                    return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            except psycopg.OperationalError:
                return False
        wait_until(ready, 60, "the standby to accept connections")

    def cleanup(self) -> None:
        if self.standby_dir is not None and self.standby_dir.exists():
            try:
                self._as_server_user(str(self.local.bin_dir / "pg_ctl"), "-D", str(self.standby_dir), "-m",
                                     "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        self.local.cleanup()


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}

__all__ = ["CANARY", "RUN", "SIGNALS", "PrivateServer", "table_state", "env_for", "terminate_migration_backends",
           "send", "backend_count", "waiting_on_lock", "run_cli", "start_cli", "finish", "assert_clean",
           "catalog_snapshot", "migration_backends", "wait_until", "CliResult"]
