"""Two migrations at once: exactly one creates the table, the other ends cleanly."""

from __future__ import annotations

import threading

import pytest
from engine_support import AdvisoryLockHolder, ThreadedRun, catalog_snapshot, run, wait_until

from migration.events import Notice, Outcome, RunFinished, Step, StepFailed
from migration.plan import advisory_key

pytestmark = pytest.mark.timeout(120)


def waiting_notices(run: ThreadedRun) -> list[Notice]:
    return [e for e in list(run.events) if isinstance(e, Notice) and "waiting" in e.message]


def test_two_runs_at_once_one_creates_the_other_is_not_needed(db, settings_for):
    settings = settings_for(db, lock_wait_s=60)
    # Hold the lock until both runs wait for it, so both really overlap inside their transactions.
    with AdvisoryLockHolder(db, advisory_key("public")):
        runs = [ThreadedRun.start(settings), ThreadedRun.start(settings)]
        wait_until(lambda: all(waiting_notices(r) for r in runs), 30, "both runs to wait for the lock")
    results = [r.join() for r in runs]

    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == sorted([Outcome.SUCCESS.value, Outcome.NOT_NEEDED.value])
    loser = next(r for r in results if r.outcome is Outcome.NOT_NEEDED)
    assert loser.message == "Migration not needed - table already exists and is valid"
    assert loser.error is None
    assert db.scalar("SELECT count(*) FROM database_backups") == 0
    with db.app() as conn:  # the winner's sequence reset still holds
        assert conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) "
                            "VALUES ('a', 'k', 1) RETURNING id").fetchone()[0] == 1


def test_two_runs_started_together_without_help(db, settings_for):
    """No orchestration: whichever order they land in, one SUCCESS and one NOT_NEEDED."""
    settings = settings_for(db, lock_wait_s=60)
    barrier = threading.Barrier(2)
    results: list[RunFinished] = []

    def go():
        barrier.wait()
        results.append(run(settings)[0])

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(r.outcome.value for r in results) == sorted([Outcome.SUCCESS.value, Outcome.NOT_NEEDED.value])
    assert db.table_exists()


def test_lock_held_too_long_gives_busy(db, settings_for):
    settings = settings_for(db, lock_wait_s=0.3)
    before = catalog_snapshot(db)
    with AdvisoryLockHolder(db, advisory_key("public")):
        busy = ThreadedRun.start(settings)
        result = busy.join(30)

    assert result.outcome is Outcome.BUSY
    assert "another migration is running" in result.error.message.lower()
    assert "--lock-wait" in result.error.hint
    failed = [e for e in busy.events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [Step.TRANSACTION_START]
    assert waiting_notices(busy)
    assert result.rolled_back  # the transaction had begun; nothing was done in it
    assert not db.table_exists()
    assert catalog_snapshot(db) == before


def test_lock_key_is_per_schema(db, settings_for):
    """A lock held for another schema does not block this one."""
    assert advisory_key("public") != advisory_key("app")
    with AdvisoryLockHolder(db, advisory_key("app")):
        other = ThreadedRun.start(settings_for(db, lock_wait_s=0.3))
        assert other.join(30).outcome is Outcome.SUCCESS


def test_cancel_while_waiting_for_the_lock(db, settings_for):
    with AdvisoryLockHolder(db, advisory_key("public")):
        waiting = ThreadedRun.start(settings_for(db, lock_wait_s=60))
        wait_until(lambda: waiting_notices(waiting), 30, "the run to wait for the lock")
        waiting.migration.cancel()
        result = waiting.join(30)
    assert result.outcome is Outcome.CANCELLED
    assert result.message.startswith("All changes rolled back")
    assert not db.table_exists()


def test_table_created_with_a_wrong_structure_while_waiting_fails_naming_it(db, settings_for):
    """Someone creates a table without `metadata` while this run waits for the lock: fail, change nothing."""
    with AdvisoryLockHolder(db, advisory_key("public")):
        waiting = ThreadedRun.start(settings_for(db, lock_wait_s=60))
        wait_until(lambda: waiting_notices(waiting), 30, "the run to wait for the lock")
        with db.app() as conn:
            conn.execute("CREATE TABLE database_backups (id serial PRIMARY KEY, filename text NOT NULL UNIQUE, "
                         "s3_key text NOT NULL, file_size integer NOT NULL, backup_type text NOT NULL DEFAULT 'full', "
                         "status text NOT NULL DEFAULT 'completed', created_by text NOT NULL DEFAULT 'system', "
                         "created_at timestamp DEFAULT now(), completed_at timestamp)")
        before = catalog_snapshot(db)
    result = waiting.join(30)
    assert result.outcome is Outcome.FAILED
    assert result.error.message == "Required column metadata is missing from database_backups table"
    assert catalog_snapshot(db) == before
