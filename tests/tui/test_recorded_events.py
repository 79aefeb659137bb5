"""The events the snapshots replay (tests/tui/recorded/events.json) are what the engine emits now.

Each scenario is recorded again on the suite's PostgreSQL 18 — the real Preflight, Backup, Migration, Verify and
Rollback, the cancelled ones cancelled while they wait on a lock another session holds — and every field of every
event is compared with the checked-in fixture, except the named volatile ones (tests/tui/recorded/serial.py).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from recorded import FIXTURE, events, names
from recorded.record import dump, record
from recorded.serial import differences, normalize

pytestmark = pytest.mark.timeout(180)

RERECORD = "If the engine changed on purpose: .venv/bin/python tests/tui/recorded/record.py, review the diff and the " \
           "snapshots (pytest tests/tui --snapshot-update for the screens that changed)."


def test_every_field_of_every_event_matches_a_fresh_recording(server18, tmp_path):
    fresh = json.loads(dump(record(server18, tmp_path)))
    recorded = json.loads(FIXTURE.read_text())
    assert list(fresh) == list(recorded), RERECORD
    problems = [f"{name}{difference}" for name in recorded for difference in differences(recorded[name], fresh[name])]
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} differences) {RERECORD}"


def test_the_fixture_decodes_to_the_engine_objects_it_was_recorded_from():
    """Replayed objects are the engine's own classes, and encoding them again gives the fixture back."""
    recorded = json.loads(FIXTURE.read_text())
    for name in names():
        replayed = events(name)
        assert all(type(e).__module__.startswith("migration.") for e in replayed), name
        assert normalize(replayed) == recorded[name]["events"], name


def test_the_cancelled_scenarios_were_cancelled_while_waiting():
    """The replays pause where the real runs were cancelled: the migration in Table Creation, the backup
    reporting pg_dump's progress (both waiting on another session's lock), and both end cancelled."""
    from migration.events import BackupFinished, BackupProgress, Outcome, RunFinished, Step, StepStarted
    from recorded import cancelled_after

    migration = events("migration-cancelled")
    assert migration[cancelled_after("migration-cancelled") - 1] == StepStarted(Step.TABLE_CREATION)
    assert isinstance(migration[-1], RunFinished) and migration[-1].outcome is Outcome.CANCELLED
    backup = events("backup-cancelled")
    assert isinstance(backup[cancelled_after("backup-cancelled") - 1], BackupProgress)
    assert isinstance(backup[-1], BackupFinished) and backup[-1].outcome is Outcome.CANCELLED


def test_the_fixture_holds_no_password(canary):
    text = FIXTURE.read_text()
    assert canary not in text and quote(canary, safe="") not in text
