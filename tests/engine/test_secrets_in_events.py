"""The password never shows in Settings' str/repr nor in any event the runner emits."""

from __future__ import annotations

from engine_support import AdvisoryLockHolder, run

from migration.errors import explain
from migration.events import Outcome
from migration.plan import advisory_key
from migration.settings import load_settings

WRONG = "Wrong-canary-pw-5d2e8b-DO-NOT-LEAK"


def assert_no_secret(events, *secrets: str) -> None:
    assert events
    for event in events:
        text = repr(event) + str(event)
        for secret in secrets:
            assert secret not in text, f"secret in {type(event).__name__}"


def test_settings_str_and_repr_hide_the_password(db, settings_for, canary):
    settings = settings_for(db)
    assert settings.password == canary  # it is there, for libpq
    for text in (str(settings), repr(settings), settings.masked_url, str(settings.target)):
        assert canary not in text
    assert "****" in settings.masked_url


def test_settings_repr_hides_optional_secrets(db, canary):
    settings = load_settings(database_url=db.url, environ={
        "CRON_SECRET": "Canary-cron-1b2c3d", "CLOUDFLARE_SECRET_ACCESS_KEY": "Canary-r2-secret-4e5f"})
    assert settings.optional_present()["CRON_SECRET"] is True
    for text in (str(settings), repr(settings)):
        for secret in (canary, "Canary-cron-1b2c3d", "Canary-r2-secret-4e5f"):
            assert secret not in text


def test_no_event_of_a_successful_then_not_needed_run_has_the_password(db, settings_for, canary):
    result, events = run(settings_for(db))
    assert result.outcome is Outcome.SUCCESS
    assert_no_secret(events, canary)
    result, events = run(settings_for(db))
    assert result.outcome is Outcome.NOT_NEEDED
    assert_no_secret(events, canary)


def test_no_event_of_failed_runs_has_the_password(db, settings_for, canary):
    with db.app() as conn:
        conn.execute("CREATE TABLE jobs (status text)")
        conn.execute("CREATE INDEX idx_database_backups_status ON jobs(status)")
    result, events = run(settings_for(db))
    assert result.outcome is Outcome.FAILED and result.rolled_back
    assert_no_secret(events, canary)

    with AdvisoryLockHolder(db, advisory_key("public")):
        result, events = run(settings_for(db, lock_wait_s=0.2))
    assert result.outcome is Outcome.BUSY
    assert_no_secret(events, canary)


def test_wrong_password_is_not_echoed(db, settings_for, canary):
    url = db.server.url(db.name, password=WRONG)
    result, events = run(settings_for(db, database_url=url))
    assert result.outcome is Outcome.FAILED
    assert "password authentication failed" in result.error.message
    assert_no_secret(events, WRONG, canary)


def test_wrong_user_and_database_are_explained_without_the_password(db, settings_for):
    url = db.server.url("no_such_db_x", password=WRONG)
    result, events = run(settings_for(db, database_url=url))
    assert result.outcome is Outcome.FAILED
    assert result.error.hint
    assert_no_secret(events, WRONG)


def test_explain_redacts_secrets_from_arbitrary_errors():
    error = explain(RuntimeError(f"boom postgresql://u:{WRONG}@h/db"), secrets=[WRONG])
    assert WRONG not in repr(error)
    error = explain(OSError(f"cannot open {WRONG}"), secrets=[WRONG])
    assert WRONG not in repr(error)
