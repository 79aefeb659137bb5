"""``migrate-tui drill``, ``rehearse`` and ``run`` as an operator runs them: Ctrl+C and SIGTERM during the restore
remove the throwaway server, a killed run's leftovers go at the next start, ``run --yes`` drills and rehearses
by default and stops before any change when the drill fails; skipping says the risk and records it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from cli.cli_support import CANCELLED_EXIT, cli_env, finish, lines_in_order, run_cli, start_cli
from drill_support import ROWS, backup, drill_dirs, manifest, postmasters_under, seed

from migration import exit_codes

pytestmark = pytest.mark.timeout(240)


def source_port(db) -> str:
    return str(urlsplit(db.server.admin_url).port)


def environment_check(db, *, slow: bool) -> None:
    """A table whose CHECK passes on the source but not on another server (another port): on the throwaway copy
    it sleeps (a restore to interrupt) or fails (a backup that does not restore)."""
    port = source_port(db)
    body = ("BEGIN IF current_setting('port') <> '%s' THEN PERFORM pg_sleep(60); END IF; RETURN true; END" % port
            if slow else "BEGIN RETURN current_setting('port') = '%s'; END" % port)
    with db.app() as conn:
        conn.execute(f"CREATE FUNCTION public.here(x int) RETURNS boolean LANGUAGE plpgsql AS $$ {body} $$")
        conn.execute("CREATE TABLE public.placed (x int CHECK (public.here(x)))")
        conn.execute("INSERT INTO public.placed VALUES (1)")


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 60) -> list[str]:
    """Read stdout until a line contains ``text`` (the command keeps running)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never printed {text!r}:\n{''.join(seen)}")


def test_drill_prints_the_comparison_table_and_the_verdict(db, tmp_path, private_tmp):
    seed(db)
    path = backup(db, tmp_path).path
    env = cli_env(db.url, TMPDIR=str(private_tmp))
    result = run_cli("drill", path, "--audit-log", str(tmp_path / "audit.log"), cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == exit_codes.OK, result.output
    lines_in_order(result.stdout, [
        f"🧪 Restore drill: {path}",
        "  ✓ Throwaway PostgreSQL",
        "  ✓ Database",
        "  ✓ Restored with",
        "  ✓ 4 tables counted, all match",
        "    table",
        '    "Sales Data"."Weird ""Name"""',
        "  ✓ Objects as in the source:",
        "✓ Drill passed: the backup restores: 4 tables with 1,540 rows",
        "  The throwaway server and its files were removed.",
    ])
    assert re.search(r"^    public\.orders +1,200 +1,200  ✓$", result.stdout, re.M), result.stdout
    assert drill_dirs(private_tmp) == []
    entries = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert {e["operation"] for e in entries} == {"drill"}
    assert entries[-1]["event"] == "DrillFinished" and entries[-1]["outcome"] == "success"


@pytest.mark.parametrize("fmt, sig", [("plain", signal.SIGINT), ("custom", signal.SIGTERM)])
def test_a_signal_during_the_restore_removes_the_throwaway_server(db, tmp_path, private_tmp, fmt, sig):
    environment_check(db, slow=True)
    path = backup(db, tmp_path, fmt).path
    proc = start_cli("drill", path, cwd=tmp_path, env=cli_env(db.url, TMPDIR=str(private_tmp)))
    try:
        wait_for_line(proc, "✓ Database")
        time.sleep(1.0)  # the restore has started: it now waits on the copy's sleeping CHECK
        (server_dir,) = drill_dirs(private_tmp)
        assert postmasters_under(server_dir), "the throwaway server should be running"
        proc.send_signal(sig)
        result = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result.returncode == CANCELLED_EXIT, result.output
    assert "Drill cancelled; the throwaway server and its files were removed" in result.stdout
    assert drill_dirs(private_tmp) == [] and postmasters_under(private_tmp) == []
    assert "drill" not in manifest(path)  # a cancelled drill proves nothing either way


def test_leftovers_of_a_killed_drill_are_removed_at_the_next_start(db, tmp_path, private_tmp):
    environment_check(db, slow=True)
    slow = backup(db, tmp_path).path
    env = cli_env(db.url, TMPDIR=str(private_tmp))
    proc = start_cli("drill", slow, cwd=tmp_path, env=env)
    try:
        wait_for_line(proc, "✓ Database")
        (server_dir,) = drill_dirs(private_tmp)
        assert str(proc.pid) in server_dir.name
        proc.kill()  # kill -9: nothing of ours runs to clean up
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert server_dir.exists() and postmasters_under(server_dir), "kill -9 leaves the server running"
    with db.app() as conn:
        conn.execute("DROP TABLE public.placed")
    good = backup(db, tmp_path).path
    result = run_cli("drill", good, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == exit_codes.OK, result.output
    assert f"🧹 Removed a throwaway server left by a killed drill: {server_dir}" in result.stderr  # at start-up
    assert not server_dir.exists() and postmasters_under(private_tmp) == []


def test_run_drills_and_rehearses_by_default(db, tmp_path, private_tmp):
    seed(db)
    env = cli_env(db.url, TMPDIR=str(private_tmp))
    log = tmp_path / "audit.log"
    result = run_cli("run", "--yes", "--backup-dir", str(tmp_path / "backups"), "--audit-log", str(log),
                     cwd=tmp_path, env=env, timeout=180)
    assert result.returncode == exit_codes.OK, result.output
    lines_in_order(result.stdout, [
        "✓ Pre-migration checklist passed",
        "✓ Backup written and verified",
        "🧪 Restore drill:",
        "✓ Drill passed:",
        "🎭 Rehearsal on the restored copy",
        "      ✓ 4/8 Table Creation",
        "✓ Rehearsal passed:",
        "🚀 Starting safe migration: Add database_backups table",
        "🎉 Migration completed successfully!",
    ])
    assert db.table_exists()
    (path,) = [p for p in (tmp_path / "backups").iterdir() if p.suffix == ".sql"]
    m = manifest(path)
    assert m["drill"]["outcome"] == "success" and m["rehearsal"]["outcome"] == "success" and m["rows"] == ROWS
    operations = [json.loads(line)["operation"] for line in log.read_text().splitlines()]
    assert operations.index("drill") < operations.index("rehearse") < operations.index("migrate")
    assert drill_dirs(private_tmp) == []


def test_run_stops_before_any_change_when_the_drill_fails(db, tmp_path, private_tmp):
    environment_check(db, slow=False)  # the backup does not restore on any other server
    env = cli_env(db.url, TMPDIR=str(private_tmp))
    result = run_cli("run", "--yes", "--backup-dir", str(tmp_path / "backups"), cwd=tmp_path, env=env, timeout=180)
    assert result.returncode == exit_codes.FAILURE, result.output
    lines_in_order(result.stdout, [
        "✓ Backup written and verified",
        "✗ Drill failed: the backup did not prove it restores.",
        "Error: The backup does not restore: ",
        "  Fix: ",
        "Nothing was changed: the production migration does not start, because the backup did not prove it "
        "restores.",
    ])
    assert 'violates check constraint "placed_x_check"' in result.stdout
    assert "🚀 Starting safe migration" not in result.stdout and "Rehearsal" not in result.stdout
    assert not db.table_exists()
    assert drill_dirs(private_tmp) == []


def test_skipping_the_drill_says_the_risk_and_records_it(db, tmp_path, private_tmp):
    seed(db)
    log = tmp_path / "audit.log"
    result = run_cli("run", "--yes", "--skip-drill", "--backup-dir", str(tmp_path / "backups"), "--audit-log", str(log),
                     cwd=tmp_path, env=cli_env(db.url, TMPDIR=str(private_tmp)), timeout=180)
    assert result.returncode == exit_codes.OK, result.output
    assert "⚠️  DRILL AND REHEARSAL SKIPPED (--skip-drill)." in result.stdout
    assert "Risk: the backup was verified (sha256, complete) but not restored" in result.stderr
    assert "🧪 Restore drill" not in result.stdout and db.table_exists()
    (path,) = [p for p in (tmp_path / "backups").iterdir() if p.suffix == ".sql"]
    assert manifest(path)["drill"] == {"skipped": True, "reason": "--skip-drill", "risk": manifest(path)["drill"]["risk"]}
    assert manifest(path)["rehearsal"]["skipped"] is True
    skipped = [json.loads(line) for line in log.read_text().splitlines() if "Skipped" in line]
    assert [e["event"] for e in skipped] == ["DrillSkipped"] and skipped[0]["data"]["reason"] == "--skip-drill"


def test_a_password_in_drill_url_is_refused(db, tmp_path):
    result = run_cli("drill", "--drill-url", "postgresql://u:hunter2x@example.invalid/db", cwd=tmp_path,
                     env=cli_env(db.url), timeout=60)
    assert result.returncode == exit_codes.CONFIG, result.output
    assert "MIGRATE_DRILL_URL" in result.stderr and "hunter2x" not in result.output


def test_rehearse_command_leaves_the_production_catalog_unchanged(db, tmp_path, private_tmp):
    from drill_support import catalog

    seed(db)
    before = catalog(db)
    result = run_cli("rehearse", "--backup-dir", str(tmp_path / "backups"), cwd=tmp_path,
                     env=cli_env(db.url, TMPDIR=str(private_tmp)), timeout=180)
    assert result.returncode == exit_codes.OK, result.output
    lines_in_order(result.stdout, ["✓ Backup written and verified", "✓ Drill passed:", "🎭 Rehearsal on the restored copy",
                                   "  Migration (the guide's 8 steps)", "      ✓ 8/8 Transaction Commit",
                                   "  Rollback (safety copy, DROP, verification)", "  Restore of the safety copy",
                                   "✓ Rehearsal passed:", "  The throwaway copy was removed."])
    assert catalog(db) == before and not db.table_exists()
    assert drill_dirs(private_tmp) == [] and not list(private_tmp.glob("migrate-tui-rehearsal-*"))


@pytest.mark.xdist_group("system-tmp")  # as root it drills in /tmp and checks what is left there
def test_a_private_tmpdir_still_drills_where_the_server_can_run(db18, tmp_path):
    """As root the throwaway server runs as an unprivileged OS user, which cannot reach a private TMPDIR (0700
    under a 0700 home): the drill runs in the system's /tmp instead, the checklist says so, and nothing stays.
    As another user the server is the user's own, and the drill runs in TMPDIR itself."""
    import os

    seed(db18)
    private = tmp_path / "private-tmp"
    private.mkdir(mode=0o700)
    where = "/tmp" if os.geteuid() == 0 else str(private)
    before = set(drill_dirs(where))
    path = backup(db18, tmp_path).path
    env = cli_env(db18.url, TMPDIR=str(private))
    check = run_cli("check", "--audit-log", str(tmp_path / "audit.log"), cwd=tmp_path, env=env)
    assert check.returncode == exit_codes.OK, check.output
    room = next(line for line in check.stdout.splitlines() if "Drill room and time" in line)
    assert f" in {where} (" in room, room
    proc = start_cli("drill", path, "--audit-log", str(tmp_path / "audit.log"), cwd=tmp_path, env=env)
    result = finish(proc, timeout=120)
    assert result.returncode == exit_codes.OK, result.output
    assert "Unexpected error" not in result.output
    # Its server's directory is named by its pid (other processes on this machine may drill in /tmp meanwhile).
    ours = [d for d in set(drill_dirs(where)) - before if d.name.startswith(f"migrate-tui-drill-{proc.pid}-")]
    assert ours == [] and not drill_dirs(private), "the throwaway server was removed"
