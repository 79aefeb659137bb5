"""The Backup screen's drill and rehearsal panels, with Pilot on real PostgreSQL 18: live progress, the
comparison table and the rehearsed steps, then Continue; a cancel (Escape) removes the throwaway server and
Continue waits; a failing drill blocks Continue until it is skipped knowingly (the risk confirmed, recorded);
above the size limit Continue asks first."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import flat, make_app, screen_text, settle, target_ready, wait_until

from migration.options import BackupOptions, DrillOptions
from tui.dialogs.confirm import ConfirmDialog
from tui.screens.backup import BackupScreen
from tui.screens.migrate import MigrateScreen
from tui.widgets.drill_panel import ProofPanels

pytestmark = pytest.mark.timeout(180)


def seed(db) -> None:
    with db.app() as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items (name) SELECT 'i' || g FROM generate_series(1, 700) g")


def placed(db, *, slow: bool) -> None:
    """A CHECK that passes on the source only (its port): the copy's restore sleeps in it, or fails on it."""
    port = urlsplit(db.server.admin_url).port
    body = (f"BEGIN IF current_setting('port') <> '{port}' THEN PERFORM pg_sleep(60); END IF; RETURN true; END"
            if slow else f"BEGIN RETURN current_setting('port') = '{port}'; END")
    with db.app() as conn:
        conn.execute(f"CREATE FUNCTION public.here(x int) RETURNS boolean LANGUAGE plpgsql AS $$ {body} $$")
        conn.execute("CREATE TABLE public.placed (x int CHECK (public.here(x)))")
        conn.execute("INSERT INTO public.placed VALUES (1)")


async def open_backup(app, pilot, settings, tmp_path: Path, drill: DrillOptions | None = None) -> BackupScreen:
    await target_ready(app, pilot)
    screen = BackupScreen(settings, options=BackupOptions(backup_dir=tmp_path / "backups"),
                          drill=drill or DrillOptions(jobs=2))
    await app.push_screen(screen)
    return screen


def proof(screen) -> ProofPanels:
    return screen.query_one(ProofPanels)


def manifest(screen) -> dict:
    return json.loads(Path(screen.result.manifest).read_text())


async def test_drill_and_rehearsal_pass_then_continue(db18, settings_for, tmp_path):
    seed(db18)
    settings = settings_for(db18)
    app = make_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_backup(app, pilot, settings, tmp_path)
        await wait_until(pilot, lambda: proof(screen).state in ("passed", "failed", "cancelled"), "the proof", 1200)
        await settle(app, pilot)
        panels = proof(screen)
        assert panels.state == "passed" and panels.ready, panels.state
        table = str(screen.query_one("#drill-table").content)
        assert "public.items" in table and "700" in table and "✓" in table
        steps = str(screen.query_one("#rehearsal-steps").content)
        assert "8/8 Transaction Commit" in steps and "Rollback:" in steps and "Restore:" in steps
        assert "Rehearsal passed" in flat(screen_text(app))  # followed into view at 80x24
        assert manifest(screen)["drill"]["outcome"] == "success"
        assert manifest(screen)["rehearsal"]["outcome"] == "success"
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, MigrateScreen)
        await wait_until(pilot, lambda: app.screen.result is not None, "the migration")
    assert db18.table_exists()
    entries = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    operations = [e["operation"] for e in entries]
    assert operations.index("backup") < operations.index("drill") < operations.index("rehearse") \
        < operations.index("migrate")


async def test_escape_cancels_the_drill_then_x_skips_it_knowingly(db18, settings_for, tmp_path, monkeypatch):
    placed(db18, slow=True)
    private = Path(tempfile.mkdtemp(prefix="drill-tui-"))
    private.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # the throwaway server's directory goes here
    settings = settings_for(db18)
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_backup(app, pilot, settings, tmp_path)
        # The restore's progress line: the copy now sleeps 60 s in the CHECK (the drill cannot pass meanwhile).
        await wait_until(pilot, lambda: str(screen.query_one("#drill-status").content).startswith("Tables "),
                         "the restore", 1200)
        assert proof(screen).state == "drilling"
        assert list(private.glob("migrate-tui-drill-*")), "the throwaway server should be there"
        assert not screen.check_action("continue", ())  # not while the drill runs
        await pilot.press("escape")
        await wait_until(pilot, lambda: proof(screen).state == "cancelled", "the cancel", 400)  # 20 s, not the 60
        await settle(app, pilot)
        assert list(private.glob("migrate-tui-drill-*")) == []
        assert not screen.check_action("continue", ()) and isinstance(app.screen, BackupScreen)
        await pilot.press("x")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert "not restored" in app.screen.message and "production is the first" in app.screen.message
        await pilot.press("y")
        await settle(app, pilot)
        assert proof(screen).ready and proof(screen).state == "skipped"
        assert "Skipped knowingly" in str(screen.query_one("#drill-result").content)
        assert manifest(screen)["drill"]["skipped"] is True
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, MigrateScreen)
    skipped = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines() if "Skipped" in line]
    assert [e["event"] for e in skipped] == ["DrillSkipped"]


async def test_a_failing_drill_blocks_continue_with_its_error(db18, settings_for, tmp_path):
    placed(db18, slow=False)
    settings = settings_for(db18)
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_backup(app, pilot, settings, tmp_path)
        await wait_until(pilot, lambda: proof(screen).state in ("passed", "failed", "cancelled"), "the proof", 1200)
        await settle(app, pilot)
        assert proof(screen).state == "failed"
        text = str(screen.query_one("#drill-result").content)
        assert "The backup does not restore" in text and "Fix:" in text and "placed_x_check" in text
        assert not screen.check_action("continue", ())
        assert screen.check_action("drill", ()) and screen.check_action("skip_proof", ())
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, BackupScreen)  # production is not reached past a failed drill
    assert not db18.table_exists()


async def test_above_the_size_limit_continue_asks_first(db18, settings_for, tmp_path):
    seed(db18)
    settings = settings_for(db18)
    app = make_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_backup(app, pilot, settings, tmp_path, DrillOptions(max_bytes=1))
        await wait_until(pilot, lambda: screen.result is not None, "the backup", 1200)
        await settle(app, pilot)
        assert proof(screen).state == "off" and "Press d to run it" in str(screen.query_one("#drill-result").content)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog) and "not restored" in app.screen.message
        await pilot.press("y")
        await settle(app, pilot)
        assert isinstance(app.screen, MigrateScreen)
