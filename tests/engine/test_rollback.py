"""The manual rollback against real PostgreSQL (18 and 15): preview, safety copy, DROP, verification."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess

from rollback_support import ROWS, Recorder, catalog_has, migrate_with_rows, rollback, table_rows

from migration.rollback import read_preview
from migration.events import (
    Dropped,
    LockAcquired,
    PreviewReady,
    RollbackFinished,
    Outcome,
    SafetyCopyFinished,
    SafetyCopySkipped,
    SafetyCopyStarted,
    Verified,
)
from migration.schema import TABLE


def test_rollback_of_a_table_with_rows_and_restore_from_the_safety_copy(db, settings_for, tmp_path, canary):
    settings = settings_for(db)
    before = migrate_with_rows(db, settings)
    assert len(before) == len(ROWS)

    engine, rec = rollback(settings, tmp_path)
    result = engine.run()

    assert result.outcome is Outcome.SUCCESS, result
    assert rec.names() == ["RollbackStarted", "PreviewReady", "SafetyCopyStarted", "SafetyCopyFinished",
                           "LockAcquired", "Dropped", "Verified", "RollbackFinished"]
    preview = rec.of(PreviewReady)[0].preview
    assert preview.exists and preview.row_count == 3 and preview.size_bytes > 0
    assert set(preview.indexes) == {f"public.{ix.name}" for ix in TABLE.indexes} | {
        "public.database_backups_pkey", "public.database_backups_filename_key"}
    assert preview.sequence == "public.database_backups_id_seq"
    assert preview.dependents == ()
    dropped = rec.of(Dropped)[0]
    assert dropped.statement == 'DROP TABLE IF EXISTS "public"."database_backups";' and not dropped.cascade

    # Gone, read back from the catalog: table, its indexes, its sequence.
    assert not db.table_exists()
    for name in [*preview.indexes, preview.sequence]:
        assert not catalog_has(db, name), name
    assert "sequence public.database_backups_id_seq is gone" in rec.of(Verified)[0].checks

    # The safety copy: private, verified, its sha256 right, no password inside.
    copy = result.copy
    assert copy is not None and copy == rec.of(SafetyCopyFinished)[0].copy
    path = tmp_path / "backups" / os.path.basename(copy.path)
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == copy.sha256 and len(data) == copy.size_bytes
    assert copy.rows == 3
    assert canary.encode() not in data and canary not in copy.restore_command
    assert not list((tmp_path / "backups").glob("*.partial"))

    # The restore command shown, run as shown, brings every row back.
    env = {**os.environ, "DATABASE_URL": db.url}
    done = subprocess.run(["bash", "-c", copy.restore_command], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert table_rows(db) == before
    assert {r[0] for r in db.admin().execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'database_backups'").fetchall()} == {
        n.split(".")[1] for n in preview.indexes}


def test_absent_table_is_nothing_to_roll_back(db, settings_for, tmp_path):
    engine, rec = rollback(settings_for(db), tmp_path)
    result = engine.run()
    assert result.outcome is Outcome.NOT_NEEDED
    assert result.message == "Nothing to roll back: table public.database_backups does not exist."
    assert rec.names() == ["RollbackStarted", "PreviewReady", "RollbackFinished"]
    assert not (tmp_path / "backups").exists()  # no copy of nothing


def test_preview_is_side_effect_free(db, settings_for):
    settings = settings_for(db)
    absent = read_preview(settings)
    assert not absent.exists and absent.dependents == ()
    migrate_with_rows(db, settings)
    with db.admin() as conn:
        xid = conn.execute("SELECT txid_current_if_assigned()").fetchone()
        before = conn.execute("SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables "
                              "WHERE relname = 'database_backups'").fetchone()
    preview = read_preview(settings)
    assert preview.exists and preview.row_count == 3
    assert preview.drop_sql == 'DROP TABLE IF EXISTS "public"."database_backups"'
    assert db.table_exists()
    with db.admin() as conn:
        assert conn.execute("SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables "
                            "WHERE relname = 'database_backups'").fetchone() == before
    assert xid == (None,)


def test_no_table_backup_skips_the_copy(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    engine, rec = rollback(settings, tmp_path, table_backup=False)
    result = engine.run()
    assert result.outcome is Outcome.SUCCESS and result.copy is None
    assert rec.of(SafetyCopySkipped) and not rec.of(SafetyCopyStarted)
    assert not (tmp_path / "backups").exists()
    assert not db.table_exists()


def test_rows_written_after_the_safety_copy_stop_the_drop(db, settings_for, tmp_path):
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    rec = Recorder()

    def write_after_copy(event):
        if isinstance(event, SafetyCopyFinished):
            with db.app() as conn:
                conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('late', 'k', 1)")

    rec.hooks.append(write_after_copy)
    engine, _ = rollback(settings, tmp_path, rec)
    result = engine.run()
    assert result.outcome is Outcome.CHANGED
    assert "after the safety copy" in result.error.message
    assert rec.of(LockAcquired) and not rec.of(Dropped)
    assert db.table_exists() and len(table_rows(db)) == 4
    assert isinstance(rec.events[-1], RollbackFinished)


def test_restore_brings_the_table_back_exactly(db, settings_for, tmp_path):
    from migration.rollback import Restore

    settings = settings_for(db)
    before = migrate_with_rows(db, settings)
    engine, _ = rollback(settings, tmp_path)
    copy = engine.run().copy
    assert not db.table_exists()
    result = Restore(settings, copy.path).run()
    assert result.ok and result.outcome is Outcome.SUCCESS and result.rows == 3, result
    assert table_rows(db) == before
    with db.app() as conn:  # the sequence continues after the restored rows
        assert conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('n', 'k', 1) "
                            "RETURNING id").fetchone()[0] == before[-1][0] + 1
    second = Restore(settings, copy.path).run()
    assert not second.ok and "already exists" in second.error.message


def test_restore_of_a_damaged_copy_restores_nothing(db, settings_for, tmp_path):
    from migration.rollback import Restore

    settings = settings_for(db)
    migrate_with_rows(db, settings)
    engine, _ = rollback(settings, tmp_path)
    copy = engine.run().copy
    damaged = tmp_path / "damaged.sql"
    text = open(copy.path, encoding="utf-8").read()
    damaged.write_text(text.replace("CREATE INDEX idx_database_backups_status", "CREATE INDEX broken syntax here"))
    damaged.chmod(0o600)
    manifest = json.loads(open(copy.manifest, encoding="utf-8").read())
    (tmp_path / "damaged.sql.manifest.json").write_text(json.dumps(manifest))
    refused = Restore(settings, damaged).run()  # changed after it was written: never run
    assert not refused.ok and "was changed after migrate-tui wrote it" in refused.error.message
    assert not db.table_exists()
    data = damaged.read_bytes()  # as if migrate-tui had written it so: psql runs it and fails half-way
    manifest.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    (tmp_path / "damaged.sql.manifest.json").write_text(json.dumps(manifest))
    result = Restore(settings, damaged).run()
    assert not result.ok and "nothing was restored" in result.error.message
    assert not db.table_exists()  # one transaction: not even the table


def test_pg_dump_and_psql_never_get_the_password_in_argv(db, settings_for, tmp_path, canary, monkeypatch):
    import subprocess as sp

    from migration.rollback import restore as rollback_restore
    from migration.rollback import safety_copy as rollback_copy

    seen: list[tuple[list[str], dict]] = []
    real = sp.Popen

    def spy(argv, *args, **kwargs):
        if "--version" not in argv:  # pg_dump/psql runs, not the version probes
            seen.append((list(argv), dict(kwargs.get("env") or {})))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(rollback_copy.subprocess, "Popen", spy)
    monkeypatch.setattr(rollback_restore.subprocess, "Popen", spy)
    settings = settings_for(db)
    migrate_with_rows(db, settings)
    engine, _ = rollback(settings, tmp_path)
    copy = engine.run().copy
    assert rollback_restore.Restore(settings, copy.path).run().ok
    assert [os.path.basename(argv[0]) for argv, _ in seen] == ["pg_dump", "psql"]
    for argv, env in seen:
        assert "--no-password" in argv
        assert not any(canary in a for a in argv)
        assert "PGPASSWORD" not in env and env.get("PGPASSFILE")  # a 0600 passfile, removed afterwards
        assert not os.path.exists(env["PGPASSFILE"])
