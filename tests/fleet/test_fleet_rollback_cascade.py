"""``migrate-tui fleet FILE rollback --yes [--cascade [--accept-loss]]`` on PostgreSQL 18 and 15 at once: the same
confirmation rules as ``migrate-tui rollback --yes --cascade [--accept-loss]``, per target, each target's catalog
read back; the output and the summary say what was dropped with each table, and what no copy holds."""

from __future__ import annotations

import json
import shutil

import pytest
from cli.cli_support import run_cli
from fleet_support import fleet_env, migrate, summary_rows, target, write_fleet
from harness import CANARY

from migration import exit_codes

pytestmark = pytest.mark.timeout(180)


def _with_view(db) -> None:
    """Migrated, one row, a view on the table (kept in the safety copy) — created by the table's own role."""
    migrate(db)
    with db.app() as conn:
        conn.execute("INSERT INTO public.database_backups (filename, s3_key, file_size) VALUES ('a.sql', 'k/a', 1)")
        conn.execute("CREATE VIEW public.v_backups AS SELECT id, filename FROM public.database_backups")


def _with_lost_column(db) -> None:
    """Also a column of another table of the table's row type: no safety copy can bring it back."""
    _with_view(db)
    with db.app() as conn:
        conn.execute("CREATE TABLE public.audit_rows (id int, snap public.database_backups)")


def _view(db) -> bool:
    return bool(db.scalar("SELECT to_regclass('public.v_backups') IS NOT NULL"))


def _snap_column(db) -> bool:
    return bool(db.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('public.audit_rows') "
                          "AND attname = 'snap' AND NOT attisdropped"))


def test_cascade_and_accept_loss_confirm_per_target_as_rollback_does(tmp_path, server18, server15, make_db):
    plain, viewed, lossy = make_db(server18), make_db(server15), make_db(server18)
    migrate(plain)
    _with_view(viewed)
    _with_lost_column(lossy)
    urls = {"plain": plain.url, "viewed": viewed.url, "lossy": lossy.url}
    path = write_fleet(tmp_path / "fleet.toml", [target(name, "all") for name in urls])
    common = ("--yes", "--backup-dir", str(tmp_path / "b"), "--audit-log", str(tmp_path / "audit.log"))
    env = fleet_env(urls)

    wrong = run_cli("fleet", str(path), "run", "--yes", "--cascade", cwd=tmp_path, env=env)
    assert wrong.returncode == exit_codes.CONFIG, wrong.output
    assert "--cascade is an option of the fleet's rollback" in wrong.output and "Fix:" in wrong.output
    assert not list(tmp_path.glob("b/*"))  # nothing attempted

    # Without --cascade: a target whose table has dependents needs confirmation, nothing dropped there.
    first = run_cli("fleet", str(path), "rollback", *common, cwd=tmp_path, env=env)
    assert first.returncode == exit_codes.FAILURE, first.output
    rows = summary_rows(first.stdout, "rollback")
    assert {name: row["outcome"] for name, row in rows.items()} == {
        "plain": "ok", "viewed": "needs confirmation", "lossy": "needs confirmation"}, first.stdout
    assert rows["viewed"]["message"].startswith("1 other object(s) depend on public.database_backups")
    assert "view public.v_backups" in first.stdout and "confirm with --cascade" in first.stdout
    assert not plain.table_exists() and viewed.table_exists() and lossy.table_exists()
    assert _view(viewed) and _view(lossy) and _snap_column(lossy)

    # --cascade: the view goes with its table (kept in the copy); the lost column still needs --accept-loss.
    second = run_cli("fleet", str(path), "rollback", "--cascade", "--json", *common, cwd=tmp_path, env=env)
    assert second.returncode == exit_codes.FAILURE, second.output
    targets = {t["name"]: t for t in json.loads(second.stdout)["targets"]}
    assert {name: t["outcome"] for name, t in targets.items()} == {
        "plain": "not_needed", "viewed": "success", "lossy": "needs_confirmation"}, second.stdout
    assert targets["viewed"]["message"].startswith("dropped with 1 dependent object(s) (CASCADE): Table "
                                                   "public.database_backups was dropped")
    assert targets["viewed"]["backup_path"].startswith(str(tmp_path / "b" / "viewed") + "/")
    assert "--accept-loss" in targets["lossy"]["error"]["hint"]
    assert "table column public.audit_rows.snap" in targets["lossy"]["error"]["message"]
    assert not viewed.table_exists() and not _view(viewed)
    assert lossy.table_exists() and _view(lossy) and _snap_column(lossy)

    # --cascade --accept-loss: dropped with both, the output names what no copy holds.
    third = run_cli("fleet", str(path), "rollback", "--cascade", "--accept-loss", *common, cwd=tmp_path, env=env)
    assert third.returncode == exit_codes.OK, third.output
    assert "with --cascade" in third.stdout and "--accept-loss: also those no copy can hold" in third.stdout
    lost = "[lossy]   ⚠️  not in the copy (cannot be recreated): table column public.audit_rows.snap"
    assert lost in third.stdout
    assert "[lossy]     also dropped: view public.v_backups" in third.stdout
    assert "[lossy]   ✓ dropped: DROP TABLE" in third.stdout and "CASCADE;" in third.stdout
    rows = summary_rows(third.stdout, "rollback")
    assert rows["lossy"]["message"].startswith("dropped with 2 dependent object(s) (CASCADE; 1 NOT recoverable)")
    assert rows["plain"]["outcome"] == rows["viewed"]["outcome"] == "not needed"
    assert not lossy.table_exists() and not _view(lossy) and not _snap_column(lossy)
    for result in (wrong, first, second, third):
        assert CANARY not in result.output
    assert CANARY not in (tmp_path / "audit.log").read_text()


def test_no_table_backup_and_retries_are_the_rollback_s_own(tmp_path, server18, server15, make_db):
    """``--no-table-backup`` drops each target's table without a copy (and says so per target); ``--retries N``
    sets the attempts after a lock timeout; both are refused for another action, as --cascade is."""
    first, second = make_db(server18), make_db(server15)
    migrate(first)
    migrate(second)
    urls = {"first": first.url, "second": second.url}
    path = write_fleet(tmp_path / "fleet.toml", [target(name, "all") for name in urls])
    env = fleet_env(urls)
    backups = tmp_path / "b"
    for action, flag in (("run", ("--no-table-backup",)), ("verify", ("--retries", "2"))):
        wrong = run_cli("fleet", str(path), action, "--yes", *flag, "--backup-dir", str(backups), cwd=tmp_path,
                        env=env)
        assert wrong.returncode == exit_codes.CONFIG, wrong.output
        assert f"{flag[0]} is an option of the fleet's rollback, not of {action}" in wrong.output, wrong.output
    negative = run_cli("fleet", str(path), "rollback", "--yes", "--retries", "-1", cwd=tmp_path, env=env)
    assert negative.returncode == exit_codes.USAGE and "--retries: must be 0 or more" in negative.output  # as rollback
    assert first.table_exists() and second.table_exists() and not backups.exists()  # nothing attempted

    with second.admin() as reader:  # a reader holds the table: second's DROP times out, with no further attempt
        reader.execute("BEGIN")
        reader.execute("LOCK TABLE public.database_backups IN ACCESS SHARE MODE")
        held = run_cli("fleet", str(path), "rollback", "--yes", "--retries", "0", "--only", "second", "--json",
                       "--backup-dir", str(backups), cwd=tmp_path, env=env)
        reader.execute("ROLLBACK")
    assert held.returncode == exit_codes.FAILURE, held.output
    (only,) = json.loads(held.stdout)["targets"]
    assert only["outcome"] == "failed" and "in 1 attempt(s) of 3000 ms each" in only["error"]["message"], only
    assert second.table_exists()
    shutil.rmtree(backups)  # the safety copy that attempt took

    done = run_cli("fleet", str(path), "rollback", "--yes", "--no-table-backup", "--retries", "0",
                   "--backup-dir", str(backups), "--audit-log", str(tmp_path / "audit.log"), cwd=tmp_path, env=env)
    assert done.returncode == exit_codes.OK, done.output
    for name in urls:
        assert f"[{name}]   ⚠️  no safety copy: --no-table-backup" in done.stdout, done.stdout
    assert not first.table_exists() and not second.table_exists()
    assert not list(backups.rglob("*")), list(backups.rglob("*"))  # no safety copy written anywhere
    assert CANARY not in done.output
