"""A real PgBouncer (Debian's ``pgbouncer`` package) in front of one of the suite's servers.

It listens on 127.0.0.1:<free port>, forwards every database name to the server (``* =``), and
authenticates the suite's application role with the SCRAM secret copied from ``pg_authid`` (the
canary password is never written to a file); PgBouncer passes SCRAM through to the server. The pool
is small (``default_pool_size``) so that clients really share server connections. As root it runs as
the ``postgres`` user (PgBouncer refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness import APP_ROLE, Server

from migration.children import child_environ
from migration.pgserver import free_port

BINARY_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in BINARY_CANDIDATES if os.access(path, os.X_OK)), None)


class PgBouncer:
    def __init__(self, server: Server, mode: str, pool_size: int = 2, stats_users: str = "") -> None:
        self.server, self.mode, self.pool_size, self.stats_users = server, mode, pool_size, stats_users
        self.port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def url(self, dbname: str) -> str:
        """The application role's URL through the pooler (the canary password, as for the server)."""
        direct = self.server.url(dbname)
        upstream = f"127.0.0.1:{self.server.local.port}" if self.server.local else None
        assert upstream and upstream in direct, direct
        return direct.replace(upstream, f"127.0.0.1:{self.port}")

    def start(self) -> "PgBouncer":
        path = binary()
        if path is None:
            raise LookupError("pgbouncer is not installed (Debian package pgbouncer)")
        with self.server.admin() as conn:
            secret = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (APP_ROLE,)).fetchone()[0]
        upstream = self.server.local.port if self.server.local else 5432
        self.root = Path(tempfile.mkdtemp(prefix="migrate-tui-pgbouncer-"))
        self.port = free_port()
        (self.root / "userlist.txt").write_text(f'"{APP_ROLE}" "{secret}"\n')
        (self.root / "pgbouncer.ini").write_text("\n".join([
            "[databases]",
            f"* = host=127.0.0.1 port={upstream}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = scram-sha-256",
            f"auth_file = {self.root / 'userlist.txt'}",
            f"pool_mode = {self.mode}",
            f"default_pool_size = {self.pool_size}",
            "max_client_conn = 200",
            "ignore_startup_parameters = extra_float_digits",
            f"stats_users = {self.stats_users}",
            f"logfile = {self.root / 'pgbouncer.log'}",
            "server_login_retry = 1",
            "",
        ]))
        user = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for item in (self.root, *self.root.iterdir()):
                os.chown(item, user.pw_uid, user.pw_gid)
            for item in self.root.iterdir():
                item.chmod(0o600)
        self._proc = subprocess.Popen(
            [path, str(self.root / "pgbouncer.ini")], env=child_environ(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None)
        self._wait_listening()
        return self

    def _wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited ({self._proc.returncode}): {self.log()[-2000:]}")
            try:
                with socket.create_connection(self.host_port, timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log()[-2000:]}")

    def log(self) -> str:
        try:
            return (self.root / "pgbouncer.log").read_text(errors="replace") if self.root else ""
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


# Settings a session-level SET (pg_dump's, a plain dump's) would leave behind on a server connection.
WATCHED_SETTINGS = ("search_path", "row_security", "statement_timeout", "lock_timeout", "extra_float_digits")


def server_connection_settings(bouncer: PgBouncer, dbname: str) -> dict[int, tuple[str, ...]]:
    """The watched settings of every server connection of the pool: as many clients as the pool has
    server connections each hold a transaction at once, so each of them answers once."""
    import psycopg

    clients = [psycopg.connect(bouncer.url(dbname), autocommit=True, prepare_threshold=None)
               for _ in range(bouncer.pool_size)]
    try:
        seen: dict[int, tuple[str, ...]] = {}
        for client in clients:
            client.execute("BEGIN")
            pid, *values = client.execute(
                "SELECT pg_backend_pid(), " + ", ".join(f"current_setting('{name}')" for name in WATCHED_SETTINGS)
            ).fetchone()
            seen[pid] = tuple(values)
        return seen
    finally:
        for client in clients:
            client.close()


def default_settings(db) -> tuple[str, ...]:
    """The watched settings of a fresh session of the application role (read directly from the server)."""
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as conn:
        return tuple(conn.execute(
            "SELECT " + ", ".join(f"current_setting('{name}')" for name in WATCHED_SETTINGS)).fetchone())
