"""The rehearsal on the drilled copy: the migration, its rollback and the restore of the safety copy, each with
its outcome and timings; the production catalog is the same before and after (pg_class, pg_attribute), and a
phase that fails on the copy is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from drill_support import backup, catalog, manifest, seed, settings

from migration.drill.rehearsal import PHASES, Rehearsal
from migration.events import Outcome, RehearsalPhaseFinished, Rehearsed, StepFinished

pytestmark = pytest.mark.timeout(240)


def run_rehearsal(db, tmp_path, events: list):
    from migration.drill.drill import Drill
    from migration.options import DrillOptions

    path = backup(db, tmp_path).path
    d = Drill(settings(db), None, path, DrillOptions(jobs=2), keep=True)
    assert d.run().ok
    copy_root = d.copy.root
    result = Rehearsal(settings(db), events.append, d.copy, d.manifest, path).run()
    return path, copy_root, result


def test_rehearse_leaves_the_production_catalog_unchanged(db, tmp_path):
    seed(db)
    before = catalog(db)
    events: list = []
    path, copy_root, result = run_rehearsal(db, tmp_path, events)
    assert result.ok, result
    assert [r.phase for r in result.phases] == list(PHASES) and all(r.ok for r in result.phases)
    assert [title for title, _ in result.step_timings] == [
        "Connection Test", "Existence Check", "Transaction Start", "Table Creation", "Index Creation",
        "Sequence Reset", "Verification", "Transaction Commit"]
    assert all(ms >= 0 for _, ms in result.step_timings)
    assert catalog(db) == before  # production only read: no database_backups, nothing else changed either
    assert not db.table_exists()
    assert result.removed and not copy_root.exists()
    inner = [e.event for e in events if isinstance(e, Rehearsed)]
    assert len([e for e in inner if isinstance(e, StepFinished)]) == 8
    finished = [e.result.phase for e in events if isinstance(e, RehearsalPhaseFinished)]
    assert finished == list(PHASES)
    recorded = manifest(path)["rehearsal"]
    assert recorded["outcome"] == "success" and [p["phase"] for p in recorded["phases"]] == list(PHASES)
    assert set(recorded["steps_ms"]) == {title for title, _ in result.step_timings}
    # the safety copy went to a private temporary directory, never the backup directory
    assert sorted(p.name for p in Path(path).parent.iterdir()) == sorted(
        [Path(path).name, Path(path).name + ".sha256", Path(path).name + ".manifest.json"])


def test_a_phase_that_fails_on_the_copy_is_named(db, tmp_path):
    """A database_backups of another shape: the rehearsed migration fails as production's would, in the guide's words."""
    seed(db)
    with db.app() as conn:
        conn.execute("CREATE TABLE database_backups (id serial PRIMARY KEY, note text)")
    before = catalog(db)
    events: list = []
    _, copy_root, result = run_rehearsal(db, tmp_path, events)
    assert result.outcome is Outcome.FAILED
    assert [r.phase for r in result.phases] == ["migrate"]
    assert "the rehearsed migration failed on a copy of the database" in result.message
    assert "different structure" in result.error.message or "missing" in result.error.message, result.error
    assert result.error.hint
    assert result.removed and not copy_root.exists()
    assert catalog(db) == before


def test_a_cancel_during_the_rehearsal_removes_the_copy(db, tmp_path):
    seed(db)
    events: list = []
    from migration.drill.drill import Drill
    from migration.options import DrillOptions

    path = backup(db, tmp_path).path
    d = Drill(settings(db), None, path, DrillOptions(jobs=2), keep=True)
    assert d.run().ok
    copy_root = d.copy.root
    box = {}

    def emit(event):
        events.append(event)
        if isinstance(event, Rehearsed) and isinstance(event.event, StepFinished) and event.event.step.value == 4:
            box["rehearsal"].cancel()  # in the middle of the rehearsed migration's transaction

    box["rehearsal"] = Rehearsal(settings(db), emit, d.copy, d.manifest, path)
    result = box["rehearsal"].run()
    assert result.outcome is Outcome.CANCELLED
    assert result.removed and not copy_root.exists()
    assert not db.table_exists()
