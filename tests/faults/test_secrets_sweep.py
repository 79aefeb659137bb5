"""Secrets sweep: every headless command and every wizard screen, with the canary password.

Searched afterwards, with zero hits allowed: stdout and stderr of each command, SVG
screenshots of each wizard screen, the audit logs, every file written (backups, their
.sha256 and manifests, rollback safety copies), and the argv and environment of every
child process seen while the commands ran (/proc, polled every few ms; the backups are
held on a table lock until the watcher has seen pg_dump, so it is always caught; the restores
run psql with the same passfile).

Found and asserted: pg_dump gets the password through PGPASSFILE (an anonymous 0600 memory
file it inherits, nothing on disk), never through argv or PGPASSWORD, and the operator's
DATABASE_URL (and the other secrets) are not passed on to it.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from fault_support import CANARY, RUN, cli_env, finish, start_cli, table_state, wait_until, waiting_on_lock
from proc_watch import ProcessWatcher, ProcWatcher

FORMS = (CANARY.encode(), quote(CANARY, safe="").encode())
CRON = "Cron-secret-canary-5e1f-DO-NOT-LEAK"  # the optional secrets must not leak either
SECRETS = (*FORMS, CRON.encode())
CLI_ARGV = [sys.executable.encode(), b"-m", b"headless.entry"]


def hits(blob: bytes) -> list[bytes]:
    return [s for s in SECRETS if s in blob]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def real_dumps(watcher: "ProcWatcher | ProcessWatcher") -> list:
    """pg_dump processes that dump (not the `pg_dump --version` probes of the tool search)."""
    return [s for s in watcher.named("pg_dump") if b"--version" not in s.argv]


def assert_children_clean(watcher: "ProcWatcher | ProcessWatcher", what: str) -> list:
    """Every child's argv and environment is free of the secrets; returns the pg_dump children seen."""
    for seen in watcher.snapshot():
        argv = b"\0".join(seen.argv)
        if seen.argv[:3] == CLI_ARGV:
            continue  # the CLI itself between fork and exec of a child: the operator's own environment
        assert not hits(argv), f"{what}: a secret in the argv of {seen.name} (pid {seen.pid})"
        for key, value in seen.environ.items():
            assert not hits(value), f"{what}: a secret in {key.decode()} in the environment of {seen.name}"
    dumps = real_dumps(watcher)
    for seen in dumps:
        assert b"PGPASSWORD" not in seen.environ, "pg_dump got PGPASSWORD; the passfile is preferred"
        assert b"DATABASE_URL" not in seen.environ
        assert b"--no-password" in seen.argv
    return dumps


@pytest.fixture
def shop(db18):
    with db18.app() as conn:  # owned by the application role, so its pg_dump may read it
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 500) g")
    return db18


def _run_blocking_pg_dump(db, tmp_path, env, watcher, args) -> tuple:
    """Run a command whose pg_dump waits on a locked table until the watcher has seen pg_dump."""
    before = len(real_dumps(watcher))
    with db.admin() as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        proc = start_cli(*args, cwd=tmp_path, env=env)
        watcher.add_root(proc.pid)
        try:
            wait_until(lambda: waiting_on_lock(db, f"migrate-tui-backup-{proc.pid}-%"), 60, "pg_dump to start")
            wait_until(lambda: len(real_dumps(watcher)) > before, 10, "the watcher to see pg_dump")
        finally:
            holder.execute("ROLLBACK")
        result = finish(proc, 120)
    return result, real_dumps(watcher)[before:]


@pytest.mark.timeout(240)
def test_headless_commands_never_show_the_password(shop, tmp_path):
    db = shop
    audit = tmp_path / "audit.log"
    env = cli_env(db.url, MIGRATE_AUDIT_LOG=str(audit), CRON_SECRET=CRON)
    outputs: dict[str, str] = {}
    passfiles: list[Path] = []
    with ProcWatcher(set()) as watcher:
        def run(name: str, *args: str):
            proc = start_cli(*args, cwd=tmp_path, env=env)
            watcher.add_root(proc.pid)
            result = finish(proc, 120, secrets=(CRON,))
            outputs[name] = result.output
            return result

        assert run("check", "check").returncode == 0
        document = json.loads(run("check --json", "check", "--json").stdout)
        assert document["passed"] is True
        backup, dumps = _run_blocking_pg_dump(db, tmp_path, env, watcher, ("backup",))
        outputs["backup"] = backup.output
        assert backup.returncode == 0, backup.output
        migrate, dumps2 = _run_blocking_pg_dump(db, tmp_path, env, watcher, RUN)
        outputs["run --yes"] = migrate.output
        assert migrate.returncode == 0 and "Migration completed successfully!" in migrate.output, migrate.output
        assert run("rollback", "rollback").returncode == 0
        result = run("rollback --yes", "rollback", "--yes")
        assert result.returncode == 0, result.output
        assert table_state(db) == "absent"
        copies = sorted((tmp_path / "backups").glob("public.database_backups-before-rollback-*.sql"))
        assert copies, "the rollback took a safety copy"
        result = run("rollback --restore", "rollback", "--restore", str(copies[-1]))  # psql gets the passfile
        assert result.returncode == 0, result.output
        assert table_state(db) == "valid"
        assert run("rollback --yes (again)", "rollback", "--yes", "--no-table-backup").returncode == 0
        assert run("sql", "sql").returncode == 0
        assert run("log", "log").returncode == 0
        assert run("log --json", "log", "--json").returncode == 0
        seen_dumps = assert_children_clean(watcher, "headless")
        assert watcher.named("psql"), "psql (the restore) was seen"
        passfiles = [Path(s.environ[b"PGPASSFILE"].decode()) for s in seen_dumps if b"PGPASSFILE" in s.environ]

    assert len(dumps) >= 1 and len(dumps2) >= 1, "pg_dump was seen during both backups"
    assert len(seen_dumps) >= 3, "pg_dump was seen for the backup, run --yes and the rollback's safety copy"
    assert passfiles, "pg_dump got its password from a passfile"
    for path in passfiles:  # an anonymous memory file the child inherited: nothing on any disk to leave behind
        assert str(path).startswith("/dev/fd/"), f"the passfile {path} is a file on disk"

    for name, text in outputs.items():
        assert not hits(text.encode()), f"a secret in the output of {name}"
        assert "Traceback" not in text, name
    written = files_under(tmp_path)
    assert audit in written
    assert any(p.name.endswith(".manifest.json") for p in written), written
    assert any(p.suffix == ".sql" for p in written), written
    for path in written:
        assert not hits(path.read_bytes()), f"a secret in {path.relative_to(tmp_path)}"
        if path.parent.name == "backups" or path == audit:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"


# -- the wizard ------------------------------------------------------------------------------------

async def _settle(app, pilot) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def _until(pilot, condition, what: str, tries: int = 1200) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Shots:
    """SVG screenshots of every screen the wizard showed, kept on disk and searched for the secrets."""

    def __init__(self, app, directory: Path) -> None:
        self.app = app
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.screens: dict[str, str] = {}

    def take(self, name: str) -> None:
        svg = self.app.export_screenshot()
        (self.directory / f"{name}.svg").write_text(svg, encoding="utf-8")
        self.screens[name] = type(self.app.screen).__name__
        assert not hits(svg.encode()), f"a secret on the {name} screen"


@pytest.mark.timeout(240)
async def test_wizard_screens_never_show_the_password(shop, tmp_path, monkeypatch):
    from migration.errors import explain
    from migration.settings import load_settings
    from tui.app import MigrateApp
    from tui.dialogs.error import ErrorDialog
    from tui.target_source import SettingsSource

    db = shop
    monkeypatch.chdir(tmp_path)  # the wizard writes ./backups
    settings = load_settings(database_url=db.url, environ={"CRON_SECRET": CRON})
    audit = tmp_path / "audit-wizard.log"
    app = MigrateApp(settings=settings, preflight=True, audit_log=audit)
    shots = Shots(app, tmp_path / "screenshots")
    with ProcessWatcher(os.getpid()) as watcher:  # its own process: polls /proc without slowing the app
        async with app.run_test(size=(100, 30)) as pilot:
            await _settle(app, pilot)
            await _until(pilot, lambda: app.target_screen.overview is not None, "the target overview")
            shots.take("target")
            await pilot.press("f1")
            await pilot.pause()
            shots.take("help")
            await pilot.press("escape")
            app.action_show_sql()
            await _settle(app, pilot)
            shots.take("sql")
            await pilot.press("escape")
            await pilot.pause()

            await pilot.press("m")  # Checklist -> Backup -> Migrate
            await _settle(app, pilot)
            shots.take("checklist")
            await pilot.press("a")
            await pilot.pause()
            with db.admin() as holder:  # pg_dump waits on this lock while the screen and /proc are read
                holder.execute("BEGIN")
                holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
                await pilot.press("enter")  # Continue (c copies, where there is something to copy)
                await _until(pilot, lambda: real_dumps(watcher), "pg_dump to run")
                await pilot.pause(0.3)
                shots.take("backup-running")
                await pilot.press("k")  # skip? -> the confirmation dialog (answered no)
                await pilot.pause()
                shots.take("confirm-skip-backup")
                await pilot.press("n")
                await pilot.pause()
                holder.execute("ROLLBACK")
            await _settle(app, pilot)
            shots.take("backup-done")
            await pilot.press("enter")
            await _settle(app, pilot)
            shots.take("migrate")
            await pilot.press("enter")
            await _settle(app, pilot)
            shots.take("result")
            assert table_state(db) == "valid"
            await pilot.press("p")  # Post-migration: verify, CRON_SECRET into ./.env (its value never shown)
            await _settle(app, pilot)
            await _until(pilot, lambda: getattr(app.screen, "secret", None) is not None, "the .env read")
            shots.take("post-migration")
            await pilot.press("g")
            await pilot.pause()
            await pilot.press("y")
            await _until(pilot, lambda: (app.screen.secret or (False,))[0], "CRON_SECRET written")
            await _settle(app, pilot)
            shots.take("post-migration-secret")
            written = (tmp_path / ".env").read_text().strip().partition("=")[2]
            assert len(written) == 64 and written not in app.export_screenshot()
            await pilot.press("escape")
            await _settle(app, pilot)

            await pilot.press("d")  # Rollback: preview, typed confirmation, safety copy, drop
            await _settle(app, pilot)
            shots.take("rollback-preview")
            await pilot.press("d")
            await pilot.pause()
            shots.take("confirm-drop")
            await pilot.press(*"database_backups", "enter")
            await _settle(app, pilot)
            shots.take("rollback-done")
            assert table_state(db) == "absent"
            await pilot.press("u")  # undo: restore the safety copy (psql, with the passfile)
            await pilot.pause()
            shots.take("confirm-restore")
            await pilot.press("y")
            await _settle(app, pilot)
            shots.take("restored")
            assert table_state(db) == "valid"
            await pilot.press("l")
            await _settle(app, pilot)
            shots.take("audit-log")

            # An unexpected failure whose text carries the URL: the error dialog redacts it.
            leak = RuntimeError(f"could not use {db.url}")
            app.push_screen(ErrorDialog("Something went wrong in the background",
                                        explain(leak, secrets=settings.secrets())))
            await pilot.pause()
            shots.take("error-dialog")
            await pilot.press("escape")
            app.action_quit()

        # A configuration error (the URL carries the password) and a server that refuses the connection.
        bad = f"postgresql://app_user:{CANARY}@127.0.0.1:1/shop?schema=oops"
        config_app = MigrateApp(SettingsSource(lambda database_url=None: load_settings(database_url=bad, environ={})))
        config_shots = Shots(config_app, tmp_path / "screenshots")
        async with config_app.run_test(size=(100, 30)) as pilot:
            await _settle(config_app, pilot)
            config_shots.take("config-error")
        refused = load_settings(database_url=f"postgresql://app_user:{CANARY}@127.0.0.1:1/shop", environ={})
        down_app = MigrateApp(settings=refused)
        down_shots = Shots(down_app, tmp_path / "screenshots")
        async with down_app.run_test(size=(100, 30)) as pilot:
            await _settle(down_app, pilot)
            down_shots.take("target-connection-failed")
        dumps = assert_children_clean(watcher, "wizard")
        assert watcher.named("psql"), "psql was seen while the wizard restored the copy"

    assert dumps, "pg_dump was seen while the wizard backed up"
    visited = set(shots.screens.values()) | set(config_shots.screens.values())
    for screen in ("TargetScreen", "HelpScreen", "SqlScreen", "ChecklistScreen", "BackupScreen", "ConfirmDialog",
                   "MigrateScreen", "ResultScreen", "RollbackScreen", "ConfirmDropDialog", "AuditLogScreen",
                   "ErrorDialog", "ConfigErrorScreen", "PostMigrationScreen"):
        assert screen in visited, f"the sweep never showed {screen}: {shots.screens}"
    written = files_under(tmp_path)
    assert audit in written and any(p.name.endswith(".manifest.json") for p in written)
    for path in written:
        assert not hits(path.read_bytes()), f"a secret in {path.relative_to(tmp_path)}"


def test_committed_snapshots_hold_no_secret():
    """The wizard's stored snapshot SVGs (pytest-textual-snapshot) never contain the canary."""
    tests_dir = Path(__file__).resolve().parents[1]
    snapshots = [p for p in tests_dir.rglob("*") if p.is_file() and "__snapshots__" in p.parts]
    for path in snapshots:
        assert not hits(path.read_bytes()), f"a secret in {path.relative_to(tests_dir)}"
