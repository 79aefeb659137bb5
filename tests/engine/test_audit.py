"""The audit log: one JSON line per event, 0600, for every operation, never a secret."""

from __future__ import annotations

import json
import os
import stat

import pytest
from rollback_support import Holder, Recorder, migrate_with_rows

from migration import audit
from migration.errors import ConfigError
from migration.events import Outcome
from migration.options import RollbackOptions
from migration.rollback import Rollback
from migration.events import WaitingForLock
from migration.runner import Migration


def _lines(path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_migrate_and_rollback_are_recorded_without_secrets(db, settings_for, tmp_path, canary):
    settings = settings_for(db)
    log = audit.AuditLog(tmp_path / "logs" / "migrate-tui.log")
    seen: list = []
    assert Migration(settings, log.tap(settings, "migrate", seen.append)).run().outcome is Outcome.SUCCESS
    assert seen and type(seen[-1]).__name__ == "RunFinished"  # events still reach the wrapped callback
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a', 'b', 1)")
    result = Rollback(settings, log.tap(settings, "rollback"),
                      RollbackOptions(backup_dir=tmp_path / "backups")).run()

    path = log.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert canary not in path.read_text(encoding="utf-8")
    entries = _lines(path)
    for entry in entries:
        assert {"time", "operator", "target", "operation", "event", "run", "data"} <= set(entry)
        assert entry["target"] == settings.masked_url and "****" in entry["target"]
        assert entry["operator"]
    migrate = [e for e in entries if e["operation"] == "migrate"]
    rollback_ = [e for e in entries if e["operation"] == "rollback"]
    assert len({e["run"] for e in migrate}) == 1 and len({e["run"] for e in rollback_}) == 1
    assert migrate[-1]["event"] == "RunFinished" and migrate[-1]["outcome"] == "success"
    assert migrate[-1]["duration_ms"] > 0
    finished = rollback_[-1]
    assert finished["event"] == "RollbackFinished" and finished["outcome"] == "success"
    assert finished["backup_path"] == result.copy.path and finished["sha256"] == result.copy.sha256
    copied = next(e for e in rollback_ if e["event"] == "SafetyCopyFinished")
    assert copied["sha256"] == result.copy.sha256 and copied["duration_ms"] > 0
    assert [e["event"] for e in rollback_] == ["RollbackStarted", "PreviewReady", "SafetyCopyStarted",
                                                "SafetyCopyFinished", "LockAcquired", "Dropped", "Verified",
                                                "RollbackFinished"]
    assert audit.read(path) == entries
    assert audit.read(path, tail=2) == entries[-2:]


def test_failures_are_recorded_with_their_error(db, settings_for, tmp_path):
    settings = settings_for(db)
    log = audit.AuditLog(tmp_path / "audit.log")
    with db.app() as conn:
        conn.execute("CREATE TABLE database_backups (id int)")  # wrong structure: the migration fails
    assert Migration(settings, log.tap(settings, "migrate")).run().outcome is Outcome.FAILED
    entry = _lines(log.path)[-1]
    assert entry["outcome"] == "failed" and "missing" in entry["data"]["error"]["message"]
    assert "Required column" in audit.describe(entry)


def test_the_password_is_redacted_even_when_an_event_carries_it(settings_for, db, tmp_path, canary):
    settings = settings_for(db)
    log = audit.AuditLog(tmp_path / "audit.log")
    emit = log.tap(settings, "check")
    emit(type("Leaky", (), {"__init__": lambda self: None})())  # not a dataclass: still one line
    log.record(settings, "check", "Note", message=f"connecting with {canary} failed", url=db.url)
    text = log.path.read_text(encoding="utf-8")
    assert canary not in text and "****" in text
    assert len(text.splitlines()) == 2 and all(json.loads(line) for line in text.splitlines())


def test_lock_wait_refreshes_are_recorded_once_per_set_of_blockers(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    log = audit.AuditLog(tmp_path / "audit.log")
    rec = Recorder()
    with Holder(db):
        engine = Rollback(settings, log.tap(settings, "rollback", rec),
                          RollbackOptions(lock_timeout_ms=700, retries=0, watch_interval_s=0.05, table_backup=False))
        engine.run()
    waits = [e for e in _lines(log.path) if e["event"] == "WaitingForLock"]
    assert len(rec.of(WaitingForLock)) > 2 and len(waits) == 1
    assert waits[0]["data"]["blockers"][0]["application_name"] == "test-holder"


def test_unwritable_log_stops_before_anything_happens(settings_for, db, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a directory should be")
    with pytest.raises(ConfigError) as info:
        audit.AuditLog(blocked / "audit.log").tap(settings_for(db), "migrate")
    assert "--audit-log" in info.value.error.hint


def test_read_tolerates_damage_and_absence(tmp_path, monkeypatch):
    assert audit.read(tmp_path / "missing.log") == []
    path = tmp_path / "audit.log"
    path.write_text('{"event": "A"}\nnot json\n\n{"event": "B"}\n', encoding="utf-8")
    assert [e["event"] for e in audit.read(path)] == ["A", "unreadable", "B"]
    monkeypatch.setenv(audit.ENV_VAR, str(path))
    assert audit.default_path() == path
    monkeypatch.delenv(audit.ENV_VAR)
    assert str(audit.default_path()) == "migrate-tui.log"


def test_an_existing_log_is_tightened_to_0600(settings_for, db, tmp_path):
    path = tmp_path / "audit.log"
    path.write_text("")
    path.chmod(0o644)
    audit.AuditLog(path).tap(settings_for(db), "check")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can create a device node (and could chmod one)")
def test_audit_log_on_a_device_never_changes_its_mode(tmp_path):
    """Regression: pointing the log at /dev/null as root once made /dev/null 0600 for everyone. A device is
    refused now (only the literal path /dev/null means "keep no log"), and its mode is never touched."""
    import stat

    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    node.chmod(0o666)
    with pytest.raises(ConfigError) as info:
        audit.AuditLog(node).ensure()
    assert "not a regular file" in info.value.error.message
    assert stat.S_IMODE(node.stat().st_mode) == 0o666


def test_log_lines_name_the_migration_step(db, settings_for, tmp_path):
    log = audit.AuditLog(tmp_path / "audit.log")
    settings = settings_for(db)
    Migration(settings, log.tap(settings, "migrate")).run()
    lines = [audit.describe(e) for e in audit.read(log.path)]
    assert any("StepFinished" in line and "step 4/8 Table Creation" in line and "created successfully" in line
               for line in lines), lines
    assert any("step 8/8 Transaction Commit" in line for line in lines)
