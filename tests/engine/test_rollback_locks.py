"""The lock-aware DROP: bounded waits, blockers named, retries, never queueing readers for long, cancel."""

from __future__ import annotations

import threading
import time

import pytest
from engine_support import QueuedReader, wait_until
from rollback_support import Holder, Recorder, migrate_with_rows, rollback

from migration.events import (
    Dropped,
    LockAcquired,
    LockTimedOut,
    RollbackFinished,
    Outcome,
    WaitingForLock,
)

pytestmark = pytest.mark.timeout(120)
LOCK_TIMEOUT_MS = 1500
MARGIN_S = 1.0  # scheduling on a busy 2-core machine; without the lock timeout the reader waits 60 s


def test_waits_name_the_blocker_retry_and_succeed_once_it_ends(db, settings_for, tmp_path, canary):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    # The holder's last query even quotes the password: it must reach no event.
    holder = Holder(db, f"SELECT count(*) FROM database_backups WHERE filename <> '{canary}'")
    rec = Recorder()
    # A fresh session that starts reading once the DROP waits on its lock (attempt 1).
    reader = QueuedReader(db, "migrate-tui rollback")

    def on_event(event) -> None:
        # The reader, and the holder released by a timer thread once the DROP has timed out twice.
        if isinstance(event, WaitingForLock) and event.attempt == 1 and reader.started is None:
            reader.start()
        if isinstance(event, LockTimedOut) and event.attempt == 2:
            threading.Timer(0.05, holder.release).start()

    rec.hooks.append(on_event)
    engine, _ = rollback(settings, tmp_path, rec, lock_timeout_ms=LOCK_TIMEOUT_MS, retries=8, backoff_s=0.2,
                         backoff_max_s=0.4, watch_interval_s=0.1)
    try:
        result = engine.run()
        waited = reader.join(30)
    finally:
        holder.release()
        reader.close()

    assert result.outcome is Outcome.SUCCESS, result
    timeouts = rec.of(LockTimedOut)
    assert len(timeouts) >= 2 and result.attempts >= 3
    assert timeouts[0].retry_in_s == pytest.approx(0.2) and timeouts[1].retry_in_s == pytest.approx(0.4)
    blocker = next(b for b in timeouts[0].blockers if b.pid == holder.pid)
    assert blocker.application_name == "test-holder" and blocker.user == "app_user"
    assert blocker.state == "idle in transaction" and blocker.xact_age_s is not None
    assert blocker.query.startswith("SELECT count(*) FROM database_backups") and "****" in blocker.query
    waits = rec.of(WaitingForLock)
    assert any(b.pid == holder.pid for w in waits for b in w.blockers)
    assert rec.of(LockAcquired) and rec.of(Dropped) and not db.table_exists()
    for event in rec.events:
        assert canary not in repr(event)

    # The reader queued behind the waiting DROP, and was released within the lock timeout.
    assert reader.queued_behind_tool, "the reader never queued behind the waiting DROP"
    assert waited < LOCK_TIMEOUT_MS / 1000 + MARGIN_S, f"the reader waited {waited:.2f} s"


def test_gives_up_after_the_retries_with_the_blockers_named(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    with Holder(db) as holder:
        engine, rec = rollback(settings, tmp_path, lock_timeout_ms=200, retries=1, backoff_s=0.1,
                               table_backup=False)
        result = engine.run()
    assert result.outcome is Outcome.FAILED
    assert result.error.sqlstate == "55P03" and "2 attempt(s) of 200 ms" in result.error.message
    assert f"pid {holder.pid} test-holder" in result.error.detail
    assert [e.retry_in_s for e in rec.of(LockTimedOut)] == [pytest.approx(0.1), None]
    assert db.table_exists() and not rec.of(Dropped)


def test_cancel_while_waiting_for_the_lock(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    rec = Recorder()
    with Holder(db):
        engine, _ = rollback(settings, tmp_path, rec, lock_timeout_ms=60_000, watch_interval_s=0.1)
        rec.hooks.append(lambda e: isinstance(e, WaitingForLock) and threading.Thread(
            target=engine.cancel, daemon=True).start())
        started = time.monotonic()
        result = engine.run()
        elapsed = time.monotonic() - started
        # The holder is still there: the run really was cancelled, not granted.
        assert result.outcome is Outcome.CANCELLED
        assert elapsed < 15
        # The rollback's sessions end (asynchronously on the server: a bounded wait).
        wait_until(lambda: not db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                                         "'migrate-tui rollback%%' AND datname = current_database()"),
                   20, "the rollback's sessions to end")
    assert result.error.sqlstate == "57014" and "nothing was dropped" in result.message.lower()
    assert isinstance(rec.events[-1], RollbackFinished) and not rec.of(Dropped)
    assert db.table_exists()


def test_cancel_during_the_backoff_pause(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    rec = Recorder()
    with Holder(db):
        engine, _ = rollback(settings, tmp_path, rec, lock_timeout_ms=150, retries=5, backoff_s=30,
                             table_backup=False)
        rec.hooks.append(lambda e: isinstance(e, LockTimedOut) and threading.Thread(
            target=engine.cancel, daemon=True).start())
        started = time.monotonic()
        result = engine.run()
    assert result.outcome is Outcome.CANCELLED and time.monotonic() - started < 10
    assert db.table_exists()


def test_the_drop_session_killed_while_waiting_fails_cleanly(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    rec = Recorder()

    def kill_the_drop(event) -> None:
        if isinstance(event, WaitingForLock) and not getattr(kill_the_drop, "done", False):
            kill_the_drop.done = True
            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                       "'migrate-tui rollback' AND wait_event_type = 'Lock'")

    rec.hooks.append(kill_the_drop)
    with Holder(db):
        engine, _ = rollback(settings, tmp_path, rec, lock_timeout_ms=30_000, watch_interval_s=0.1,
                             table_backup=False)
        result = engine.run()
    assert result.outcome is Outcome.FAILED
    assert result.message == "Rollback failed; nothing was dropped (the catalog still shows public.database_backups)."
    assert "connection" in result.error.message.lower() or result.error.sqlstate == "57P01", result.error
    assert db.table_exists() and not rec.of(Dropped)


def test_a_blocker_the_role_may_not_see_is_named_with_what_hides_it(db, settings_for, tmp_path):
    """Another role's session shows no state, transaction or query to a role without pg_read_all_stats:
    say so and say what would show it — never "no transaction" for a session idle in a transaction."""
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    admin = db.admin()
    try:
        admin.execute("SET application_name = 'ops-psql'")
        admin.execute("BEGIN")
        admin.execute("SELECT count(*) FROM public.database_backups")
        engine, rec = rollback(settings, tmp_path, lock_timeout_ms=200, retries=0, table_backup=False)
        result = engine.run()
        admin.execute("ROLLBACK")
        blocker = next(b for t in rec.of(LockTimedOut) for b in t.blockers if b.application_name == "ops-psql")
        assert blocker.hidden and blocker.state == "" and blocker.xact_age_s is None and blocker.query == ""
        assert blocker.holds == "AccessShareLock"
        text = blocker.describe()
        assert "no transaction" not in text and "insufficient privilege" not in text
        assert "holds AccessShareLock" in text and "hidden from your role: grant it pg_read_all_stats" in text
        assert result.outcome is Outcome.FAILED and "pg_read_all_stats" in result.error.detail

        admin.execute("GRANT pg_read_all_stats TO app_user")
        admin.execute("BEGIN")
        admin.execute("SELECT count(*) FROM public.database_backups")
        engine, rec = rollback(settings, tmp_path, lock_timeout_ms=200, retries=0, table_backup=False)
        engine.run()
        admin.execute("ROLLBACK")
        seen = next(b for t in rec.of(LockTimedOut) for b in t.blockers if b.application_name == "ops-psql")
        assert not seen.hidden and seen.state == "idle in transaction" and seen.xact_age_s is not None
        assert "transaction open" in seen.describe() and "pg_read_all_stats" not in seen.describe()
    finally:
        admin.execute("ROLLBACK")
        admin.execute("REVOKE pg_read_all_stats FROM app_user")
        admin.close()
