"""Backup failures on real PostgreSQL: cancel, lost connection, permissions, old pg_dump, full disk.

Each leaves no file behind and ends in a message with a fix hint; the password never
reaches pg_dump's argv (nor its environment: it gets a 0600 passfile).
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from engine_support import wait_until
from test_backup import dir_entries, seed, settings

from migration.backup import Backup
from migration.events import BackupFinished, BackupStarted, Outcome
from migration.options import BackupOptions
from migration.pgserver import system_bin_dir
from migration.pgtools import Locator, PgTool, tool_version

pytestmark = pytest.mark.timeout(180)


class ExclusiveLock:
    """An admin session holding ACCESS EXCLUSIVE on a table: pg_dump waits for it."""

    def __init__(self, db, table: str = "customers") -> None:
        self.db, self.table, self.conn = db, table, None

    def __enter__(self) -> "ExclusiveLock":
        self.conn = self.db.admin()
        self.conn.execute("BEGIN")
        self.conn.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.execute("ROLLBACK")
            self.conn.close()


class BackupThread:
    def __init__(self, backup_factory) -> None:
        self.events: list = []
        self.started = threading.Event()
        self.backup: Backup = backup_factory(self._record)
        self.result: BackupFinished | None = None
        self.thread = threading.Thread(target=self._body, daemon=True)
        self.thread.start()

    def _record(self, event) -> None:
        self.events.append(event)
        if isinstance(event, BackupStarted):
            self.started.set()

    def _body(self) -> None:
        self.result = self.backup.run()

    def join(self, timeout: float = 60) -> BackupFinished:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the backup did not finish"
        assert self.result is not None
        return self.result


def blocked_pg_dump(db, backup: Backup) -> int:
    """The server PID of pg_dump's session once it waits on the lock."""
    return wait_until(lambda: db.scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
        (backup.application_name,)), 60, "pg_dump to wait on the lock")


def test_cancel_while_dumping_leaves_no_file_and_no_password_in_argv(db, tmp_path, canary):
    seed(db)
    backup_dir = tmp_path / "backups"
    with ExclusiveLock(db):
        run = BackupThread(lambda emit: Backup(settings(db), emit, BackupOptions(backup_dir=backup_dir)))
        assert run.started.wait(60)
        blocked_pg_dump(db, run.backup)
        pid = run.backup.child_pid
        assert pid is not None
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert argv[0].endswith(b"pg_dump") and b"--no-password" in argv
        assert any(arg.startswith(b"--dbname=") and b"app_user" in arg for arg in argv)
        assert not any(canary.encode() in arg for arg in argv + environ)
        # The password file is an anonymous memory file the child inherited: nothing on any disk.
        passfile = next(v.split(b"=", 1)[1] for v in environ if v.startswith(b"PGPASSFILE="))
        assert passfile.startswith(b"/dev/fd/")
        held = f"/proc/{pid}/fd/{passfile.decode().rsplit('/', 1)[1]}"
        assert os.readlink(held).startswith("/memfd:migrate-tui-pgpass")
        assert os.stat(held).st_mode & 0o777 == 0o600
        assert [name for name in dir_entries(backup_dir) if name.endswith(".partial")]  # being written

        run.backup.cancel()
        result = run.join()
    assert result.outcome is Outcome.CANCELLED and "partial file was deleted" in result.message
    assert dir_entries(backup_dir) == []
    assert not Path(f"/proc/{pid}").exists() or b"pg_dump" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    # Sessions end asynchronously on the server: wait for pg_dump's to go (bounded).
    wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                 (run.backup.application_name,)) == 0, 20, "pg_dump's session to end")


def test_cancel_before_pg_dump_starts_writes_nothing(db, tmp_path):
    backup = Backup(settings(db), None, BackupOptions(backup_dir=tmp_path / "backups"))
    backup.cancel()
    result = backup.run()
    assert result.outcome is Outcome.CANCELLED and not (tmp_path / "backups").exists()


def test_lost_connection_is_reported_and_the_partial_file_deleted(db, tmp_path):
    seed(db)
    backup_dir = tmp_path / "backups"
    with ExclusiveLock(db):
        run = BackupThread(lambda emit: Backup(settings(db), emit, BackupOptions(backup_dir=backup_dir)))
        pid = blocked_pg_dump(db, run.backup)
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        result = run.join()
    assert result.outcome is Outcome.FAILED
    assert result.error.message == "The connection to the server was lost while pg_dump was running."
    assert "run the backup again" in result.error.hint
    assert "partial file was deleted" in result.message
    assert dir_entries(backup_dir) == []


def test_permission_denied_on_a_table_names_it_and_the_grant(db, tmp_path):
    db.execute("CREATE TABLE payroll (amount int)")  # owned by the admin, not readable by app_user
    result = Backup(settings(db), None, BackupOptions(backup_dir=tmp_path / "backups")).run()
    assert result.outcome is Outcome.FAILED
    assert "permission denied for table payroll" in result.error.message
    assert "GRANT pg_read_all_data TO app_user;" in result.error.hint
    assert dir_entries(tmp_path / "backups") == []


def pg15() -> PgTool:
    bin_dir = system_bin_dir(15)
    if bin_dir is None:
        pytest.skip("the system PostgreSQL 15 client is not installed")
    version, major = tool_version(bin_dir / "pg_dump")
    return PgTool("pg_dump", bin_dir / "pg_dump", version, major, "system")


def test_pg_dump_older_than_the_server_is_refused_and_leaves_nothing(db18, tmp_path):
    tool = pg15()
    result = Backup(settings(db18), None, BackupOptions(backup_dir=tmp_path / "b"),
                    locator=Locator({"PG_DUMP": str(tool.path), "PATH": ""})).run()
    assert result.outcome is Outcome.FAILED
    assert "older than the server (PostgreSQL 18)" in result.error.message
    assert "PG_DUMP=/usr/lib/postgresql/18/bin/pg_dump" in result.error.hint
    assert dir_entries(tmp_path / "b") == []  # pg_dump was stopped before it wrote anything that is kept


def test_pg_dump_version_mismatch_from_pg_dump_itself_is_explained(db18, tmp_path):
    """Forced to run anyway, pg_dump 15 aborts; its words become the same clear message."""
    result = Backup(settings(db18), None, BackupOptions(backup_dir=tmp_path / "b"), tool=pg15()).run()
    assert result.outcome is Outcome.FAILED
    assert "older than the server (PostgreSQL 18)" in result.error.message
    assert "server version mismatch" in (result.error.detail or "")
    assert dir_entries(tmp_path / "b") == []


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_reported_and_the_partial_file_deleted(db, tiny_disk):
    seed(db)
    from migration.preflight import Status, run_checklist

    checklist = run_checklist(settings(db), options=BackupOptions(backup_dir=tiny_disk / "backups"))
    assert checklist.by_key("disk_space").status is Status.FAILURE  # the checklist saw it coming
    result = Backup(settings(db), None, BackupOptions(backup_dir=tiny_disk / "backups")).run()
    assert result.outcome is Outcome.FAILED
    assert result.error.message.startswith("The disk is full: pg_dump could not write the backup")
    assert "--backup-dir" in result.error.hint
    assert dir_entries(tiny_disk / "backups") == []
