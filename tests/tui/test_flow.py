"""The wizard on real PostgreSQL 18, driven by Pilot at 100x30 and 80x24: the guide's outcomes."""

from __future__ import annotations

from conftest import assert_no_secret, flat, make_app, screen_text, settle, target_ready, widget_text

from migration.events import Outcome, Step
from headless.printers.migrate import SUCCESS_LINES
from tui.screens.migrate import MigrateScreen
from tui.screens.result import ResultScreen
from tui.widgets.step_panel import StepPanel

MISSING_METADATA = "Required column metadata is missing from database_backups table"


def panels(screen) -> dict[int, StepPanel]:
    return {p.number: p for p in screen.query(StepPanel).results(StepPanel)}


async def run_migration(app, pilot) -> MigrateScreen:
    await pilot.press("m")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, MigrateScreen)
    assert screen.result is not None, "the run never finished"
    return screen


async def open_result(app, pilot) -> ResultScreen:
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, ResultScreen)
    return app.screen


async def test_fresh_database_success_then_not_needed(db18, settings_for, size, canary):
    app = make_app(settings_for(db18))
    async with app.run_test(size=size) as pilot:
        target = await target_ready(app, pilot)
        assert target.overview.state == "absent"
        text = screen_text(app)
        assert "absent: the migration will create it" in text
        assert "PostgreSQL 18" in text and "app_user" in text
        assert "CRON_SECRET" in text
        assert_no_secret(app, canary)

        migrate = await run_migration(app, pilot)
        assert migrate.result.outcome is Outcome.SUCCESS
        states = {n: p.state for n, p in panels(migrate).items()}
        assert states == {step.value: "done" for step in Step}
        assert "Table database_backups created successfully" in panels(migrate)[4].message
        assert panels(migrate)[1].elapsed_ms is not None
        assert_no_secret(app, canary)
        footer = screen_text(app).splitlines()[-1]  # the footer names the key the button names
        assert "See the result (Enter)" in flat(screen_text(app))
        assert "Enter Result" in footer and "v Result" not in footer, footer

        await open_result(app, pilot)
        text = screen_text(app)
        assert "🎉 Migration completed successfully!" in text
        for line in SUCCESS_LINES:
            assert line in text
        assert "Next: the guide's Post-Migration Steps" in flat(text) and "Press p" in flat(text)
        verification = widget_text(app.screen, "#result-verification")
        assert "10 columns" in verification and "5 indexes" in verification
        assert "idx_database_backups_created_by" in verification and "metadata" in verification
        assert_no_secret(app, canary)
        assert db18.table_exists()

        # Back to Target: the facts are read again and the table is now valid.
        await pilot.press("t")
        await target_ready(app, pilot)
        assert app.screen is app.target_screen
        assert app.target_screen.overview.state == "valid"

        migrate = await run_migration(app, pilot)
        assert migrate.result.outcome is Outcome.NOT_NEEDED
        states = {n: p.state for n, p in panels(migrate).items()}
        assert states[Step.TABLE_CREATION.value] == "skipped"
        assert states[Step.VERIFICATION.value] == "done"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ResultScreen)
        assert "✅ Migration not needed - table already exists and is valid" in screen_text(app)
        await pilot.press("q")
    assert app.return_code == 0


async def test_table_with_missing_column_fails_and_changes_nothing(db18, settings_for, size, canary):
    db18.execute("CREATE TABLE database_backups (id SERIAL PRIMARY KEY, filename TEXT NOT NULL UNIQUE, "
                 "s3_key TEXT NOT NULL, file_size INTEGER NOT NULL, backup_type TEXT DEFAULT 'full' NOT NULL, "
                 "status TEXT DEFAULT 'completed' NOT NULL, created_by TEXT DEFAULT 'system' NOT NULL, "
                 "created_at TIMESTAMP DEFAULT NOW(), completed_at TIMESTAMP)")
    before = db18.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'database_backups'::regclass")
    app = make_app(settings_for(db18))
    async with app.run_test(size=size) as pilot:
        target = await target_ready(app, pilot)
        assert target.overview.state == "invalid"
        assert MISSING_METADATA in flat(screen_text(app))

        migrate = await run_migration(app, pilot)
        assert migrate.result.outcome is Outcome.FAILED
        failed = panels(migrate)[Step.EXISTENCE_CHECK.value]
        assert failed.state == "failed"
        assert failed.error.message == MISSING_METADATA
        assert "DROP TABLE" in failed.error.hint
        assert panels(migrate)[Step.TABLE_CREATION.value].state == "skipped"

        await open_result(app, pilot)
        text = screen_text(app)
        assert "❌ Migration failed" in text
        assert "Step 2/8 Existence Check failed." in text
        assert MISSING_METADATA in flat(text)
        assert "Nothing was changed" in text
        assert_no_secret(app, canary)
        await pilot.press("q")
    assert app.return_code == 1
    after = db18.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'database_backups'::regclass")
    assert after == before
    assert not db18.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'database_backups'::regclass "
                           "AND attname = 'metadata'")


async def test_index_name_clash_fails_late_and_leaves_no_table(db18, settings_for, size, canary):
    db18.execute("CREATE TABLE other_things (status TEXT)")
    db18.execute("CREATE INDEX idx_database_backups_status ON other_things(status)")
    db18.execute("ALTER TABLE other_things OWNER TO app_user")
    app = make_app(settings_for(db18))
    async with app.run_test(size=size) as pilot:
        target = await target_ready(app, pilot)
        assert target.overview.state == "absent"
        assert "idx_database_backups_status is already used" in flat(screen_text(app))

        migrate = await run_migration(app, pilot)
        assert migrate.result.outcome is Outcome.FAILED
        assert migrate.result.rolled_back
        p = panels(migrate)
        assert p[Step.TABLE_CREATION.value].state == "done"
        failed = p[Step.INDEX_CREATION.value]
        assert failed.state == "failed"
        assert failed.error.sqlstate == "42P07"
        assert "idx_database_backups" in failed.error.hint
        assert p[Step.TRANSACTION_COMMIT.value].state == "skipped"
        text = screen_text(app)
        assert "SQLSTATE 42P07" in text
        assert "Fix:" in text

        await open_result(app, pilot)
        text = screen_text(app)
        assert "Step 5/8 Index Creation failed." in text
        assert "All changes rolled back" in text
        assert "SQLSTATE 42P07" in text
        assert_no_secret(app, canary)
    assert not db18.table_exists()
    assert db18.table_exists("other_things")
