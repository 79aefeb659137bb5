"""The Post-migration screen (Pilot, real PostgreSQL 18 and real .env files): the guide's Post-Migration Steps —
verify (its query and \\d database_backups, ✓/✗), CRON_SECRET into the .env in use, deploy and test as ticks."""

from __future__ import annotations

import json

import pytest
from conftest import assert_no_secret, flat, make_app, screen_text, settle, target_ready, wait_until, widget_text

from migration.env_file import read_env_file
from migration.settings import load_settings
from tui.dialogs.confirm import ConfirmDialog
from tui.screens.post_migration import PostMigrationScreen

pytestmark = pytest.mark.timeout(120)

ENV = "# shop settings\r\nexport DATABASE_URL={url}\r\n\r\n# storage\r\nCLOUDFLARE_ACCESS_KEY_ID=key # R2\r\n"


async def to_post_migration(app, pilot) -> PostMigrationScreen:
    await target_ready(app, pilot)
    for key in ("m", "enter", "p"):
        await pilot.press(key)
        await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, PostMigrationScreen)
    await wait_until(pilot, lambda: screen.verified is not None and screen.secret is not None, "the checks")
    await settle(app, pilot)
    return screen


async def test_verify_then_cron_secret_into_the_env_in_use_then_ticks(db18, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env_file = tmp_path / "shop.env"
    original = ENV.format(url=db18.url).encode()
    env_file.write_bytes(original)
    env_file.chmod(0o600)
    settings = load_settings(env_file, environ={})
    app = make_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await to_post_migration(app, pilot)
        assert screen.verified.ok
        assert "Post-migration" in screen_text(app).splitlines()[0]  # the path shows where we are
        listed = widget_text(screen, "#post-listed")
        assert listed == "✓ It lists database_backups (1 row)."
        describe = widget_text(screen, "#post-describe")
        for line in ("✓ id ", "✓ backup_type ", "✓ idx_database_backups_status ", "✓ PRIMARY KEY ",
                     "✓ database_backups_id_seq "):
            assert line in describe, describe
        assert "✗" not in describe and "✅ Migration verified" in widget_text(screen, "#post-verdict")
        await pilot.press("c")  # the guide's query, whole
        assert app.clipboard == ("SELECT table_name FROM information_schema.tables\n"
                                 "WHERE table_schema = 'public' AND table_name = 'database_backups';")
        assert "the .env in use, shop.env" in flat(widget_text(screen, "#post-env"))  # relative to the cwd
        assert "CRON_SECRET is not set there" in flat(widget_text(screen, "#post-env"))

        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.secret == (True, 6), "CRON_SECRET to be written")
        await settle(app, pilot)
        value = read_env_file(env_file)["CRON_SECRET"]
        assert env_file.read_bytes() == original + f"CRON_SECRET={value}\r\n".encode()
        assert f"…{value[-4:]} (64 characters)" in flat(widget_text(screen, "#post-env-result"))
        assert_no_secret(app, value)
        assert value not in (tmp_path / "audit.log").read_text() if (tmp_path / "audit.log").exists() else True

        await pilot.press("g")  # set now: replacing it needs the explicit choice
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and "Replace" in flat(screen_text(app))
        await pilot.press("n")
        await settle(app, pilot)
        assert read_env_file(env_file)["CRON_SECRET"] == value

        assert app.journey.ended.get("after") is None  # not done until the operator ticks deploy and test
        for tick in ("#tick-deploy", "#tick-test-1", "#tick-test-2", "#tick-test-3"):
            screen.query_one(tick).focus()
            await pilot.press("space")
            await pilot.pause()
        assert app.journey.ended.get("after") == "done"
        assert "✓ Post-migration" in screen_text(app).splitlines()[0]
    log = [json.loads(line) for line in open(app.audit_log_path, encoding="utf-8")]
    assert [e["event"] for e in log if e["operation"] == "verify"][-1] == "VerifyFinished"
    assert any(e["event"] == "CronSecretWritten" and e["data"]["line"] == 6 for e in log)
    assert value not in open(app.audit_log_path, encoding="utf-8").read()


async def test_on_the_demo_cron_secret_goes_to_dot_env_in_the_working_directory(db18, settings_for, tmp_path,
                                                                               monkeypatch):
    from dataclasses import replace

    monkeypatch.chdir(tmp_path)
    app = make_app(replace(settings_for(db18), demo=True))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await to_post_migration(app, pilot)
        assert "no .env file is in use: the demo configures itself" in flat(widget_text(screen, "#post-env"))
        await pilot.press("g", "y")
        await wait_until(pilot, lambda: screen.secret == (True, 1), "CRON_SECRET to be written")
        assert len(read_env_file(tmp_path / ".env")["CRON_SECRET"]) == 64


async def test_a_table_that_differs_from_the_guide_is_crossed_and_the_step_fails(db18, settings_for, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(settings_for(db18))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await to_post_migration(app, pilot)
        db18.execute("ALTER TABLE database_backups ALTER COLUMN status DROP DEFAULT")
        await pilot.press("v")
        await wait_until(pilot, lambda: screen.verified is not None and not screen.verified.ok, "a failed verify")
        await settle(app, pilot)
        describe = widget_text(screen, "#post-describe")
        assert "✗ status" in describe and "expected: text NOT NULL DEFAULT 'completed'::text" in describe
        assert "❌ 1 of " in widget_text(screen, "#post-verdict")
        assert app.journey.ended.get("after") == "failed"
        assert "✗ Post-migration" in screen_text(app).splitlines()[0]
