"""Every command through a real PgBouncer, in transaction and session mode, on PostgreSQL 18 and 15, as an
operator runs it: the exit code and the output agree with the catalog read directly from the server, each
command names the pooler's mode and why, and says what it means for it.

Transaction pooling: ``check`` fails on the "Direct connection" row (the backup would not be correct),
``backup`` and the rollback's safety copy are refused before pg_dump starts, ``run --yes --skip-backup``,
``rollback --yes --no-table-backup`` and ``rollback --restore`` work. Session pooling: everything works as on
a direct connection. Either way no server connection of the pool keeps a session setting afterwards.
"""

from __future__ import annotations

import json

import pytest
from cli.cli_support import cli_env, run_cli
from pooler_support import default_settings, server_connection_settings

from migration import exit_codes

pytestmark = pytest.mark.timeout(240)
WRONG_REASON = "consecutive statements ran in different server sessions"


def _pooler_line(output: str, what: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("🔀 Connection pooler — ")]
    assert len(lines) == 1, output
    assert f"For {what}: " in lines[0], lines[0]
    return lines[0]


def _rows(db) -> int:
    return db.scalar("SELECT count(*) FROM public.database_backups")


def _assert_pool_clean(pooled) -> None:
    """No server connection of the pool kept a session setting of any command (pg_dump's, the copy's)."""
    seen = server_connection_settings(pooled.bouncer, pooled.db.name)
    assert set(seen.values()) == {default_settings(pooled.db)}, seen


def test_every_command_through_pgbouncer(pooled, tmp_path):
    db, env, mode = pooled.db, cli_env(pooled.url), pooled.mode
    transaction = mode == "transaction"
    label = f"{mode} pooling (PgBouncer): the cancel key the connection got names process"
    backups = tmp_path / "backups"
    with db.app() as conn:  # something of the application's to back up
        conn.execute("CREATE TABLE public.orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.orders SELECT g, 'order ' || g FROM generate_series(1, 50) g")

    # check: the "Direct connection" row, in the output and in --json.
    check = run_cli("check", "--backup-dir", str(backups), cwd=tmp_path, env=env)
    assert check.returncode == (exit_codes.FAILURE if transaction else exit_codes.OK), check.output
    (row,) = [line for line in check.stdout.splitlines() if "Direct connection:" in line]
    assert row.startswith("  ✗ Direct connection: " if transaction else "  ⚠️  Direct connection: "), row
    assert label in row and WRONG_REASON not in check.output
    document = json.loads(run_cli("check", "--json", "--backup-dir", str(backups), cwd=tmp_path, env=env).stdout)
    (pooler,) = [r for r in document["checks"] if r["key"] == "pooler"]
    assert pooler["status"] == ("failure" if transaction else "warning") and label in pooler["detail"]
    assert not db.table_exists()

    # backup: refused before pg_dump starts through transaction pooling; written and verified through session pooling.
    backup = run_cli("backup", "--backup-dir", str(backups), cwd=tmp_path, env=env)
    line = _pooler_line(backup.stdout, "the backup")
    if transaction:
        assert backup.returncode == exit_codes.FAILURE, backup.output
        assert "pg_dump does not run through it" in line
        assert "Error: pg_dump does not run through transaction pooling (PgBouncer): its session settings" in backup.stdout
        assert "Fix: Use the direct (non-pooled) URL" in backup.stdout
        assert not backups.exists() or not any(backups.iterdir())
    else:
        assert backup.returncode == exit_codes.OK, backup.output
        (dump,) = backups.glob("backup_before_migration_*.sql")
        text = dump.read_text()
        assert "CREATE TABLE public.orders" in text and "\n50\torder 50\n" in text
    _assert_pool_clean(pooled)

    # run --yes: the checklist stops it through transaction pooling (the backup would be wrong); the migration
    # itself runs through both modes.
    if transaction:
        stopped = run_cli("run", "--yes", "--backup-dir", str(backups), cwd=tmp_path, env=env)
        assert stopped.returncode == exit_codes.FAILURE, stopped.output
        assert "❌ Migration not started - the pre-migration checklist failed" in stopped.stdout
        assert not db.table_exists(), "the report said nothing was changed"
    run = run_cli("run", "--yes", "--backup-dir", str(backups), *(("--skip-backup",) if transaction else ()),
                  cwd=tmp_path, env=env)
    assert run.returncode == exit_codes.OK, run.output
    assert "🎉 Migration completed successfully!" in run.stdout
    assert db.table_exists() and _rows(db) == 0, "the report said migrated"
    migrate_lines = [line for line in run.stdout.splitlines() if line.startswith("🔀 Connection pooler — ")]
    assert [line for line in migrate_lines if "For the migration: " in line], run.stdout
    if transaction:
        assert "the migration is safe through it" in migrate_lines[-1]
    else:
        assert len(list(backups.glob("backup_before_migration_*.sql"))) == 2
    db.execute("INSERT INTO public.database_backups (filename, s3_key, file_size) "
               "SELECT 'f' || g || '.sql', 'k/' || g, g FROM generate_series(1, 4) g")

    # rollback (the preview): says what the pooler means for the rollback, changes nothing.
    preview = run_cli("rollback", cwd=tmp_path, env=env)
    assert preview.returncode == exit_codes.OK, preview.output
    _pooler_line(preview.stdout, "the rollback")
    assert "Table public.database_backups: 4 rows" in preview.stdout and _rows(db) == 4

    # rollback --yes: through transaction pooling the safety copy (pg_dump) is refused, nothing is dropped.
    copies = tmp_path / "copies"
    rollback = run_cli("rollback", "--yes", "--backup-dir", str(copies), cwd=tmp_path, env=env)
    _pooler_line(rollback.stdout, "the rollback")
    if transaction:
        assert rollback.returncode == exit_codes.FAILURE, rollback.output
        assert "❌ Rollback refused: no safety copy could be taken, so nothing was dropped." in rollback.stdout
        assert "--no-table-backup" in rollback.stdout
        assert db.table_exists() and _rows(db) == 4, "the report said nothing was dropped"
        # The operator takes the copy through a direct connection instead.
        rollback = run_cli("rollback", "--yes", "--backup-dir", str(copies), cwd=tmp_path, env=cli_env(db.url))
    assert rollback.returncode == exit_codes.OK, rollback.output
    assert "✅ Table public.database_backups was dropped" in rollback.stdout
    assert not db.table_exists(), "the report said dropped"
    (copy,) = copies.glob("public.database_backups-before-rollback-*.sql")
    _assert_pool_clean(pooled)

    # rollback --restore, through the pooler in both modes.
    restore = run_cli("rollback", "--restore", str(copy), cwd=tmp_path, env=env)
    assert restore.returncode == exit_codes.OK, restore.output
    _pooler_line(restore.stdout, "the restore")
    assert "✅ Table public.database_backups restored from the safety copy: 4 rows, structure verified." \
        in restore.stdout
    assert db.table_exists() and _rows(db) == 4, "the report said restored"
    # psql ran the copy's SETs (search_path = '', row_security = off, …) in its one transaction; RESET ALL
    # before the commit leaves nothing on the server connection other clients get next.
    _assert_pool_clean(pooled)

    if transaction:  # and the DROP itself goes through transaction pooling
        dropped = run_cli("rollback", "--yes", "--no-table-backup", cwd=tmp_path, env=env)
        assert dropped.returncode == exit_codes.OK, dropped.output
        assert "the DROP is safe through it" in _pooler_line(dropped.stdout, "the rollback")
        assert not db.table_exists(), "the report said dropped"

    events = [json.loads(line)["event"] for line in (tmp_path / "migrate-tui.log").read_text().splitlines()]
    assert events.count("PoolerDetected") >= 6
