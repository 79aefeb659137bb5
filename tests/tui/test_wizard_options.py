"""Finding 10: every option the headless commands take reaches the wizard's same operation.

The wizard is built exactly as ``migrate-tui [options]`` builds it (headless.entry.wizard_setup and
tui.app.wizard_app, DATABASE_URL from the environment); one test per option, on real PostgreSQL 18.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest
from conftest import settle, target_ready, wait_until, widget_text

from headless.entry import _wizard_args, wizard_setup
from migration.events import Outcome
from migration.runner import Migration
from tui.app import wizard_app
from tui.screens.backup import BackupScreen
from tui.screens.checklist import ChecklistScreen
from tui.screens.rollback import RollbackScreen

pytestmark = pytest.mark.timeout(180)


def wizard(argv: list[str], db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db.url)
    args = _wizard_args(argv)
    assert args is not None, f"{argv} does not open the wizard"
    return wizard_app(*wizard_setup(args))


@pytest.mark.parametrize("argv,where,value", [
    (["--backup-dir", "/srv/b"], ("backup", "backup_dir"), Path("/srv/b")),
    (["--backup-dir", "/srv/b"], ("rollback", "backup_dir"), Path("/srv/b")),
    (["--format", "custom"], ("backup", "fmt"), "custom"),
    (["--trust-backup-dir"], ("backup", "trust_dir"), True),
    (["--trust-backup-dir"], ("rollback", "trust_backup_dir"), True),
    (["--retries", "0"], ("rollback", "retries"), 0),
    (["--no-table-backup"], ("rollback", "table_backup"), False),
    (["--lock-timeout", "300"], ("rollback", "lock_timeout_ms"), 300),
    (["--format", "directory"], ("backup", "fmt"), "directory"),
    (["--format", "directory", "--jobs", "3"], ("backup", "jobs"), 3),
    (["--jobs", "3"], ("drill", "jobs"), 3),
    (["--compress", "gzip"], ("backup", "compress"), "gzip"),
    (["--exact"], ("backup", "exact"), True),
    (["--exact"], ("drill", "exact"), True),
    (["--skip-drill"], ("drill", "enabled"), False),
    (["--drill"], ("drill", "enabled"), True),
    (["--skip-rehearsal"], ("drill", "rehearse"), False),
    (["--drill-max-size", "2GB"], ("drill", "max_bytes"), 2 * 1024 ** 3),
    (["--drill-url", "postgresql://scratch@127.0.0.1:5999/empty"], ("drill", "drill_url"),
     "postgresql://scratch@127.0.0.1:5999/empty"),
])
def test_each_option_becomes_the_operations_option(argv, where, value):
    args = _wizard_args(["--demo", *argv])
    _, options, _ = wizard_setup(args)
    assert getattr(getattr(options, where[0]), where[1]) == value


def test_a_password_in_drill_url_is_refused_before_the_wizard_starts(capsys):
    from headless.entry import main

    code = main(["--drill-url", "postgresql://scratch:Sekret-77@127.0.0.1:5999/empty"])
    err = capsys.readouterr().err
    assert code == 78 and "--drill-url has a password in it" in err and "Fix:" in err and "Sekret-77" not in err


def test_the_audit_log_option_reaches_the_app(tmp_path):
    app = wizard_app(*wizard_setup(_wizard_args(["--audit-log", str(tmp_path / "a.log")])))
    assert app.audit_log_path == tmp_path / "a.log"


async def checklist_then_backup(app, pilot) -> BackupScreen:
    await target_ready(app, pilot)
    await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, ChecklistScreen) and app.screen.checklist is not None,
                     "the checklist")
    await settle(app, pilot)
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, BackupScreen) and app.screen.result is not None,
                     "the backup")
    return app.screen


async def test_backup_dir_and_format(db18, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = wizard(["--backup-dir", str(tmp_path / "dumps"), "--format", "custom"], db18, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        backup = await checklist_then_backup(app, pilot)
        assert backup.result.ok, backup.result
        assert Path(backup.result.path).parent == tmp_path / "dumps" and backup.result.path.endswith(".dump")
    assert not (tmp_path / "backups").exists()


async def test_trust_backup_dir(db18, tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory of another user")  # CI runs as root (tests/run.sh)
    monkeypatch.chdir(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o755)
    os.chown(foreign, 65534, 65534)
    for argv, blocked in (([], True), (["--trust-backup-dir"], False)):
        app = wizard(["--backup-dir", str(foreign), *argv], db18, monkeypatch)
        async with app.run_test(size=(80, 24)) as pilot:
            await target_ready(app, pilot)
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, ChecklistScreen)
                             and app.screen.checklist is not None, "the checklist")
            row = app.screen.checklist.by_key("backup_dir")
            assert (row.status.value == "failure") is blocked, row


def _migrate(db) -> None:
    from migration.settings import load_settings

    Migration(load_settings(database_url=db.url, environ={}), lambda e: None).run()


async def open_rollback(app, pilot) -> RollbackScreen:
    await target_ready(app, pilot)
    await pilot.press("d")
    await settle(app, pilot)
    assert isinstance(app.screen, RollbackScreen)
    return app.screen


async def test_lock_timeout_and_retries_bound_the_rollbacks_wait(db18, tmp_path, monkeypatch):
    """--lock-timeout 300 --retries 0: one attempt of 300 ms (it was 3000 ms, 6 attempts, ~40 s to fail)."""
    monkeypatch.chdir(tmp_path)
    _migrate(db18)
    app = wizard(["--lock-timeout", "300", "--retries", "0", "--no-table-backup"], db18, monkeypatch)
    with psycopg.connect(db18.url, autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_rollback(app, pilot)
            await pilot.press("d")
            await pilot.pause()
            started = time.monotonic()
            await pilot.press(*"database_backups", "enter")
            await wait_until(pilot, lambda: screen.result is not None, "the rollback to give up")
            took = time.monotonic() - started
            assert screen.result.outcome is Outcome.FAILED
            assert "1 attempt(s) of 300 ms" in screen.result.error.message
            assert took < 3.0, took
            assert "attempt 1/1" in widget_text(screen, "#rollback-progress")
        holder.execute("ROLLBACK")
    assert db18.table_exists()


async def test_no_table_backup(db18, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _migrate(db18)
    app = wizard(["--no-table-backup"], db18, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_rollback(app, pilot)
        assert screen.query_one("#rollback-copy").value is False  # the box starts unticked
        assert "No safety copy will be taken" in widget_text(screen, "#rollback-preview")
        await pilot.press("d")
        await pilot.pause()
        await pilot.press(*"database_backups", "enter")
        await wait_until(pilot, lambda: screen.result is not None, "the rollback")
        assert screen.result.outcome is Outcome.SUCCESS and screen.result.copy is None
    assert not (tmp_path / "backups").exists()


async def test_audit_log(db18, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIGRATE_AUDIT_LOG", raising=False)
    log = tmp_path / "ops" / "wizard.log"
    log.parent.mkdir(mode=0o700)
    app = wizard(["--audit-log", str(log)], db18, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await target_ready(app, pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ChecklistScreen) and app.screen.checklist is not None,
                         "the checklist")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events and events[-1]["operation"] == "check" and events[-1]["event"] == "ChecklistFinished"
    assert not (tmp_path / "migrate-tui.log").exists()
