"""One lifecycle for every operation (migration.operation.Operation), checked on each of them.

- run() returns the Finished that was also its last event; one Outcome for every operation, one exit code
  for every outcome;
- cancel() works before run() and from another thread while it runs, and is safe to call twice;
- every thread an operation starts has ended when it reports (regression: the backup's hashing thread hit
  FileNotFoundError on the partial file the failed backup had already deleted);
- configuration mistakes are found when the settings are read, named, not halfway through a run.
"""

from __future__ import annotations

import threading

import pytest

from cli.cli_support import cli_env, run_cli
from engine.engine_support import wait_until

from migration import exit_codes
from migration.backup import Backup
from migration.events import Outcome
from migration.operation import Operation
from migration.options import BackupOptions, RollbackOptions
from migration.outcome import Finished
from migration.preflight import Preflight
from migration.rollback import Restore, Rollback
from migration.runner import Migration

pytestmark = pytest.mark.timeout(120)


def _operations(settings, tmp_path, emit):
    return {
        "check": Preflight(settings, emit, options=BackupOptions(backup_dir=tmp_path / "b")),
        "backup": Backup(settings, emit, BackupOptions(backup_dir=tmp_path / "b")),
        "migrate": Migration(settings, emit),
        "rollback": Rollback(settings, emit, RollbackOptions(backup_dir=tmp_path / "b")),
        "restore": Restore(settings, tmp_path / "b" / "missing.sql", emit),
    }


def _own_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("migrate-tui")]


def test_every_operation_reports_one_finished_that_is_its_last_event(db, settings_for, tmp_path):
    settings = settings_for(db)
    for name in ("check", "backup", "migrate", "rollback", "restore"):
        events: list = []
        operation = _operations(settings, tmp_path, events.append)[name]
        assert isinstance(operation, Operation)
        result = operation.run()
        assert isinstance(result, Finished) and events[-1] is result, name
        assert [e for e in events if isinstance(e, Finished)] == [result], name
        assert operation.done.is_set()
        assert exit_codes.for_outcome(result.outcome) in (0, 1), (name, result)
    assert not db.table_exists()  # the migration created it, the rollback dropped it, the restore was refused
    assert _own_threads() == []


def test_every_outcome_has_one_exit_code():
    assert {o: exit_codes.for_outcome(o) for o in Outcome} == {
        Outcome.SUCCESS: 0, Outcome.NOT_NEEDED: 0, Outcome.NEEDS_CONFIRMATION: 1, Outcome.CHANGED: 1,
        Outcome.FAILED: 1, Outcome.CANCELLED: 130, Outcome.BUSY: 75}
    assert exit_codes.for_outcome(None) == exit_codes.FAILURE


def test_cancel_before_run_ends_every_operation_cancelled_and_changes_nothing(db, settings_for, tmp_path):
    settings = settings_for(db)
    for name, operation in _operations(settings, tmp_path, lambda e: None).items():
        operation.cancel()
        operation.cancel()  # twice is harmless
        result = operation.run()
        assert result.outcome is Outcome.CANCELLED, (name, result)
        assert result.error is not None and result.error.hint, name
    assert not db.table_exists()
    assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []


def test_cancel_from_another_thread_while_the_migration_waits(db, settings_for):
    """cancel() from another thread interrupts the running statement; the run reports CANCELLED, rolled back."""
    holder = db.admin()
    try:
        holder.execute("BEGIN")
        holder.execute("CREATE TABLE public.database_backups (id int)")  # our CREATE TABLE waits on it
        migration = Migration(settings_for(db, lock_timeout_ms=60_000), lambda e: None)
        box: dict = {}
        runner = threading.Thread(target=lambda: box.setdefault("r", migration.run()))
        runner.start()
        wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'migrate-tui' "
                                     "AND wait_event_type = 'Lock'"), 30, "the CREATE TABLE to wait")
        threading.Thread(target=migration.cancel).start()
        runner.join(30)
        assert not runner.is_alive()
        assert box["r"].outcome is Outcome.CANCELLED and box["r"].rolled_back
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not db.table_exists()


def test_a_failed_backup_ends_its_hashing_thread_before_it_reports(db18, settings_for, tmp_path):
    """Regression: the hashing thread outlived the failed backup and crashed on its deleted partial file."""
    db18.execute("CREATE TABLE public.payroll (amount int)")  # unreadable by the app role: pg_dump fails
    with db18.app() as conn:
        conn.execute("CREATE TABLE public.items AS SELECT g AS id, repeat('x', 200) AS t FROM "
                     "generate_series(1, 20000) g")
    seen: list[list[str]] = []

    def emit(event) -> None:
        if isinstance(event, Finished):
            seen.append(_own_threads())  # at the moment it reports

    result = Backup(settings_for(db18), emit, BackupOptions(backup_dir=tmp_path / "b")).run()
    assert result.outcome is Outcome.FAILED
    assert seen == [[]], f"threads still running when the backup reported: {seen}"
    assert _own_threads() == []
    assert list((tmp_path / "b").iterdir()) == []


def test_an_unreadable_env_file_is_named_with_its_line(tmp_path):
    env = tmp_path / "bad.env"
    env.write_text("# settings\nCRON_SECRET=abc\nDATABASE_URL=\"postgresql://u:p@127.0.0.1/db\n")
    env.chmod(0o600)
    result = run_cli("check", "--env-file", str(env), cwd=tmp_path, env=cli_env())
    assert result.returncode == exit_codes.CONFIG
    assert f"{env}, line 3: this line cannot be read" in result.output
    assert "DATABASE_URL is not set" not in result.output


@pytest.mark.parametrize("name, value, shown", [
    ("MIGRATE_STATEMENT_TIMEOUT_MS", "99999999999999", "too large"),
    ("MIGRATE_LOCK_TIMEOUT_MS", "-5", "must be positive"),
    ("MIGRATE_LOCK_TIMEOUT_MS", "5s", "whole number"),
])
def test_numeric_settings_are_checked_when_read(tmp_path, name, value, shown):
    """Regression: MIGRATE_STATEMENT_TIMEOUT_MS=99999999999999 passed `check` and failed `run` at step 3."""
    env = cli_env("postgresql://u:p@127.0.0.1:1/db", **{name: value})
    for command in (("check",), ("run", "--yes"), ("rollback",)):
        result = run_cli(*command, cwd=tmp_path, env=env)
        assert result.returncode == exit_codes.CONFIG, (command, result.output)
        assert name in result.output and shown in result.output, result.output
