"""The run's outcome never depends on who consumes its events: a closed stdout, a failing handler."""

from __future__ import annotations

import os

from migration.errors import explain
from migration.events import Outcome, RunFinished, Step, StepFinished
from headless.printers.migrate import Printer
from migration.runner import Migration


def test_printer_on_a_closed_pipe_stays_quiet_and_the_migration_completes(db, settings_for):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away, like `migrate-tui run --yes | head -1` after one line
    with os.fdopen(write_end, "w") as out:
        printer = Printer(out)
        result = Migration(settings_for(db), printer).run()
    assert printer.closed
    assert result.outcome is Outcome.SUCCESS
    assert db.table_exists()


def test_a_failing_event_handler_rolls_back_and_run_still_returns(db, settings_for):
    seen: list = []

    def handler(event):
        seen.append(event)
        if isinstance(event, StepFinished) and event.step is Step.TABLE_CREATION:
            raise RuntimeError("UI handler bug")

    result = Migration(settings_for(db), handler).run()  # must not raise
    assert result.outcome is Outcome.FAILED
    assert result.rolled_back and result.message.startswith("All changes rolled back")
    assert "RuntimeError" in result.error.message
    assert isinstance(seen[-1], RunFinished)
    assert not db.table_exists()


def test_a_handler_that_always_fails_still_gets_a_result(db, settings_for):
    def handler(event):
        raise ValueError("I/O operation on closed file")

    result = Migration(settings_for(db), handler).run()
    assert result.outcome is Outcome.FAILED
    assert not db.table_exists()


def test_broken_pipe_is_explained_without_blaming_the_file_system():
    error = explain(BrokenPipeError(32, "Broken pipe"))
    assert "broken pipe" in error.message.lower()
    assert "head" in error.hint and "file system" not in error.hint
