"""Regenerate screenshots/: an SVG of every wizard screen from a real run on the demo database.

    python -m tui.screenshots [--out screenshots] [--size 100x30]

It starts the embedded demo database (like ``migrate-tui --demo``), drives the
real app with Textual's Pilot — Target, SQL preview, help, checklist, backup (with
its restore drill and the rehearsal on the copy),
migrate, result, post-migration (verify, CRON_SECRET), rollback preview, audit log
(and an operation's events), light theme — then a second demo database with a
clashing index name for the failure screens, and a missing DATABASE_URL for the
configuration screen. Every file is checked for the demo password (and the
CRON_SECRET it wrote) before it is written. Runs in a temporary directory, so
backups, the audit log and the .env do not land in the working tree.

The README shows the 100x30 set (``screenshots/``) and the key screens at 80x24
(``python -m tui.screenshots --size 80x24 --out screenshots/80x24``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Awaitable, Callable

SIZE = (100, 30)


class Shooter:
    def __init__(self, out: Path, secrets: list[str]) -> None:
        self.out = out
        self.secrets = secrets
        self.written: list[Path] = []

    def __call__(self, app, name: str) -> None:
        svg = app.export_screenshot(title=f"migrate-tui — {name.replace('-', ' ')}")
        for secret in self.secrets:
            if secret and secret in svg:
                raise SystemExit(f"refusing to write {name}.svg: it contains a password")
        path = self.out / f"{name}.svg"
        path.write_text(svg, encoding="utf-8")
        self.written.append(path)
        print(f"  {path}")


async def settle(app, pilot) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def until(pilot, condition: Callable[[], bool], what: str, tries: int = 1200) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def screen_is(app, name: str) -> bool:
    return type(app.screen).__name__ == name


async def target_ready(app, pilot, shoot) -> None:
    """The Target screen shows the server facts; from now on the screenshots must not hold the password."""
    await settle(app, pilot)
    await until(pilot, lambda: app.target_screen.overview is not None, "the server facts")
    shoot.secrets.append(app.settings.password or "")


async def press_until(app, pilot, key: str, screen: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: screen_is(app, screen), f"the {screen}")
    await settle(app, pilot)


def demo_load(database_url: str | None = None):
    """The demo's settings, as ``migrate-tui --demo`` reads them."""
    from migration.settings import load_settings

    return load_settings(database_url=database_url, demo=True)


async def happy_path(shoot: Shooter, size, audit_log: Path) -> None:
    from tui.app import MigrateApp
    from tui.target_source import DemoSource

    source = DemoSource(demo_load)
    app = MigrateApp(source, preflight=True, audit_log=audit_log)
    try:
        async with app.run_test(size=size) as pilot:
            await target_ready(app, pilot, shoot)
            shoot(app, "target")
            await press_until(app, pilot, "s", "SqlScreen")
            shoot(app, "sql-preview")
            await press_until(app, pilot, "escape", "TargetScreen")
            await press_until(app, pilot, "question_mark", "HelpScreen")
            shoot(app, "help")
            await press_until(app, pilot, "escape", "TargetScreen")
            await press_until(app, pilot, "m", "ChecklistScreen")
            shoot(app, "checklist")
            if app.screen.query_one("#acknowledge").display:  # the demo has no CRON_SECRET: warnings to accept
                await pilot.press("a")
                await settle(app, pilot)
            await press_until(app, pilot, "enter", "BackupScreen")
            backup = app.screen
            await until(pilot, lambda: backup.query_one("#proof").state in ("passed", "failed", "skipped"),
                        "the backup, its drill and the rehearsal")
            await settle(app, pilot)
            backup.query_one("#backup-body").scroll_home(animate=False)
            await settle(app, pilot)
            shoot(app, "backup")
            body = backup.query_one("#backup-body")
            body.scroll_to(y=backup.query_one("#proof").virtual_region.y, animate=False)
            await settle(app, pilot)
            shoot(app, "drill")
            backup.query_one("#backup-body").scroll_end(animate=False)
            await settle(app, pilot)
            shoot(app, "rehearsal")
            await press_until(app, pilot, "enter", "MigrateScreen")
            await until(pilot, lambda: app.screen.result is not None, "the migration")
            await settle(app, pilot)
            shoot(app, "migrate")
            await press_until(app, pilot, "enter", "ResultScreen")
            shoot(app, "result")
            await press_until(app, pilot, "p", "PostMigrationScreen")
            post = app.screen
            await until(pilot, lambda: post.verified is not None and post.secret is not None, "the verification")
            await settle(app, pilot)
            shoot(app, "post-migration")
            await pilot.press("g")
            await until(pilot, lambda: screen_is(app, "ConfirmDialog"), "the CRON_SECRET question")
            await pilot.press("y")
            await until(pilot, lambda: post.secret is not None and post.secret[0], "CRON_SECRET")
            shoot.secrets.append(Path(".env").read_text().strip().partition("=")[2])
            for tick in post.query("Tick"):
                tick.value = True
            await settle(app, pilot)
            await pilot.press("end")
            await pilot.pause(0.6)
            shoot(app, "post-migration-done")
            Path(".env").unlink()  # the next demo runs as the first did
            await press_until(app, pilot, "escape", "ResultScreen")
            await press_until(app, pilot, "d", "RollbackScreen")
            await until(pilot, lambda: app.screen.preview is not None, "the rollback preview")
            await settle(app, pilot)
            shoot(app, "rollback-preview")
            rollback = app.screen
            await press_until(app, pilot, "d", "ConfirmDropDialog")
            await pilot.press(*rollback.preview.table)
            await settle(app, pilot)
            shoot(app, "rollback-confirm")
            await pilot.press("enter")
            await until(pilot, lambda: rollback.result is not None, "the rollback")
            await settle(app, pilot)
            shoot(app, "rollback-done")
            await press_until(app, pilot, "l", "AuditLogScreen")
            shoot(app, "audit-log")
            await pilot.press("down", "down", "down")  # the migration's row (rollback, CRON_SECRET, verify above)
            await pilot.press("enter")
            await settle(app, pilot)
            shoot(app, "audit-log-events")
            await pilot.press("escape")
            await settle(app, pilot)
            await app.run_action("back_to_target")
            await settle(app, pilot)
            await pilot.press("ctrl+t")
            await settle(app, pilot)
            shoot(app, "target-light-theme")
            await pilot.press("ctrl+t")
            await app.run_action("quit")
    finally:
        source.close()


async def failure_path(shoot: Shooter, size, audit_log: Path) -> None:
    """A second demo database where another table already uses the name idx_database_backups_status."""
    from migration.demo_scenarios import index_name_clash
    from tui.app import MigrateApp
    from tui.target_source import DemoSource

    class ClashingDemo(DemoSource):
        def __call__(self):
            settings = super().__call__()
            index_name_clash(settings.database_url)
            return settings

    source = ClashingDemo(demo_load)
    app = MigrateApp(source, audit_log=audit_log)
    try:
        async with app.run_test(size=size) as pilot:
            await target_ready(app, pilot, shoot)
            shoot(app, "target-index-clash")
            await press_until(app, pilot, "m", "MigrateScreen")
            await until(pilot, lambda: app.screen.result is not None, "the migration")
            await settle(app, pilot)
            shoot(app, "migrate-failed")
            await press_until(app, pilot, "enter", "ResultScreen")
            shoot(app, "result-failed")
            await app.run_action("quit")
    finally:
        source.close()


async def config_error(shoot: Shooter, size) -> None:
    from migration.settings import load_settings
    from tui.app import MigrateApp
    from tui.target_source import SettingsSource

    app = MigrateApp(SettingsSource(lambda database_url=None: load_settings(environ={})))
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await until(pilot, lambda: screen_is(app, "ConfigErrorScreen"), "the configuration screen")
        shoot(app, "configuration-error")
        await app.run_action("quit")


async def main_async(out: Path, size) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shoot = Shooter(out, [])
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="migrate-tui-shots-") as work:
        os.chdir(work)  # backups/ and the audit log of these runs go here, not into the repository
        try:
            audit_log = Path(work) / "migrate-tui.log"
            steps: list[Callable[[], Awaitable[None]]] = [
                lambda: happy_path(shoot, size, audit_log),
                lambda: failure_path(shoot, size, audit_log),
                lambda: config_error(shoot, size),
            ]
            for step in steps:
                await step()
        finally:
            os.chdir(home)
    return shoot.written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="screenshots", help="output directory (default: screenshots)")
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="terminal size WxH (default: 100x30)")
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.lower().split("x"))
    out = Path(args.out).resolve()
    print(f"Writing screenshots to {out} ({width}x{height}) from a real run on the demo database:")
    written = asyncio.run(main_async(out, (width, height)))
    print(f"{len(written)} screenshots written.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
