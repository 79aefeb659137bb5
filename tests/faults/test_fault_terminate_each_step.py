"""pg_terminate_backend from a second session during each of the eight steps in turn.

The emit callback sees StepStarted(N) before step N's SQL runs and terminates the
migration's backend synchronously (pg_terminate_backend with a wait), so the step's
first statement meets a dead connection. Step 1 has no backend yet when it starts:
there the session is terminated right after it is opened, inside the step.
Before the transaction nothing has changed; inside it everything is rolled back; at
COMMIT the runner's catalog read on a fresh connection decides. Either way the
database ends untouched, the message says what happened and how to go on, and a
second run then succeeds (the advisory lock died with the session).
"""

from __future__ import annotations

import pytest

import migration.runner as runner_module
from fault_support import catalog_snapshot, table_state, terminate_migration_backends
from migration.events import Outcome, RunFinished, Step, StepFailed, StepStarted
from migration.runner import Migration

BEFORE_TRANSACTION = (Step.CONNECTION_TEST, Step.EXISTENCE_CHECK, Step.TRANSACTION_START)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("step", list(Step), ids=lambda s: f"{s.value}-{s.name.lower()}")
def test_terminated_during_step_leaves_database_untouched(db, settings_for, step, monkeypatch):
    before = catalog_snapshot(db)
    settings = settings_for(db)
    events = []
    terminated = []

    def emit(event):
        events.append(event)
        if isinstance(event, StepStarted) and event.step == step and step != Step.CONNECTION_TEST:
            terminated.append(terminate_migration_backends(db))

    if step == Step.CONNECTION_TEST:
        real_connect = runner_module.connect

        def connect_then_terminate(*args, **kwargs):
            conn = real_connect(*args, **kwargs)
            if not terminated:  # only the run's own first connection, not the post-failure check
                terminated.append(terminate_migration_backends(db))
            return conn

        monkeypatch.setattr(runner_module, "connect", connect_then_terminate)

    result = Migration(settings, emit).run()

    assert terminated == [1], "exactly one migrate-tui backend was terminated"
    assert result.outcome is Outcome.FAILED, result
    failed = [e for e in events if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == [step]
    error = result.error
    assert error is not None and error.hint
    assert "connection" in error.message.lower(), error.message
    assert "Traceback" not in error.message + error.hint
    assert "run again" in error.hint.lower(), error.hint
    if step in BEFORE_TRANSACTION:
        assert not result.rolled_back and result.message == "Nothing was changed"
    else:
        assert result.rolled_back
        assert result.message.startswith("All changes rolled back: verified"), result.message
    assert isinstance(events[-1], RunFinished)

    # The catalog, read back by the test: exactly as before the run.
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before

    # The advisory lock died with the session: the next run goes through.
    again = Migration(settings, lambda e: None).run()
    assert again.outcome is Outcome.SUCCESS, again
    assert table_state(db) == "valid"
