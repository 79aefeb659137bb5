"""Secrets left on disk or passed on to children (issue finding 5, first two parts).

- ``kill -9`` during a backup leaves no password file anywhere (pg_dump reads it from an anonymous
  memory file, ``PGPASSFILE=/dev/fd/N``); the ``.partial`` dump it leaves is removed by the next backup.
- Password directories of the on-disk fallback left by a killed run are removed at the next start; those
  of a live process or of another user are left alone.
- With ``PGPASSWORD`` (and a DATABASE_URL without a password) in the operator's environment, no child
  (``pg_dump --version``, ``pg_dump``, ``pg_restore``, ``psql --version``, the restore's ``psql``) gets
  it, nor DATABASE_URL, CRON_SECRET or CLOUDFLARE_*: recording wrappers named like the real programs
  (first on PATH and in PG_DUMP) save each child's own ``/proc/<pid>/environ`` and argv, then exec the
  real program, so even the shortest-lived probe is caught.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from cli.cli_support import run_cli, start_cli
from engine.engine_support import wait_until
from files_support import (
    attacker_ids,
    attacker_symlink,
    env_for,
    install_wrappers,
    recorded_calls,
    secret_free,
    shared_place,  # noqa: F401 - the fixture 'shared'
)
from harness import CANARY

from migration import exit_codes

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("system-tmp")]  # the CLI runs without TMPDIR: /tmp

CRON = "Cron-secret-canary-91c4-DO-NOT-LEAK"
R2_ID = "R2-key-id-canary-77ab-DO-NOT-LEAK"
R2_SECRET = "R2-secret-canary-0d3e-DO-NOT-LEAK"
PASS_DIR = "migrate-tui-pass-"
REMOVED_PARTIAL = "🧹 Removed a temporary file left by a killed run: "
REMOVED_PASSFILE = "🧹 Removed a password file left by a killed migrate-tui run: "


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:  # the process is gone
        return None


def children_of(pid: int, name: str) -> list[int]:
    """Live child processes of ``pid`` with this command name."""
    found = []
    for entry in os.listdir("/proc"):
        stat_line = _read(f"/proc/{entry}/stat") if entry.isdigit() else None
        if stat_line is None:
            continue
        fields = stat_line[stat_line.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z" and (_read(f"/proc/{entry}/comm") or "").strip() == name:
            found.append(int(entry))
    return found


def ended(pid: int) -> bool:
    """Gone, or a zombie (its files are closed, its locks released)."""
    stat_line = _read(f"/proc/{pid}/stat")
    return stat_line is None or stat_line[stat_line.rindex(")") + 2:].split()[0] == "Z"


def pass_dirs(tmp: str, pid: int | None = None) -> list[str]:
    prefix = PASS_DIR + (f"{pid}-" if pid is not None else "")
    return sorted(name for name in os.listdir(tmp) if name.startswith(prefix))


def seed_locked_table(db) -> None:
    with db.app() as conn:
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 500) g")


def test_kill9_during_a_backup_leaves_no_password_file_and_the_next_backup_removes_the_partial(db, tmp_path):
    seed_locked_table(db)
    env = env_for(db.url, tmp_path / "audit.log")
    tmp = "/tmp"  # the CLI runs without TMPDIR (env_for)
    backups = tmp_path / "backups"
    holder = db.admin()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
    proc = start_cli("backup", cwd=tmp_path, env=env)
    try:
        wait_until(lambda: db.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                                     "'migrate-tui-backup-%%' AND wait_event_type = 'Lock'"), 60,
                   "pg_dump to wait on the lock")
        (pg_dump,) = children_of(proc.pid, "pg_dump")
        environ = dict(item.split(b"=", 1) for item in Path(f"/proc/{pg_dump}/environ").read_bytes().split(b"\0")
                       if b"=" in item)
        passfile = environ[b"PGPASSFILE"].decode()
        assert re.fullmatch(r"/dev/fd/\d+", passfile), passfile
        assert os.readlink(f"/proc/{pg_dump}/fd/{passfile.rsplit('/', 1)[1]}").startswith("/memfd:migrate-tui-pgpass")
        assert b"PGPASSWORD" not in environ and b"DATABASE_URL" not in environ
        assert CANARY.encode() not in Path(f"/proc/{pg_dump}/environ").read_bytes()
        assert CANARY.encode() not in Path(f"/proc/{pg_dump}/cmdline").read_bytes()
        assert pass_dirs(tmp, proc.pid) == []  # nothing on disk while it runs
        partials = [p.name for p in backups.iterdir() if p.name.endswith(".partial")]
        assert len(partials) == 1

        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # pg_dump (its own session) goes on once the lock is free, then ends: its stderr reader is gone.
    wait_until(lambda: ended(pg_dump), 60, "the orphaned pg_dump to end")
    assert pass_dirs(tmp, proc.pid) == []  # no password file left anywhere
    assert [p.name for p in backups.iterdir()] == partials  # the partial dump is left, nothing else

    result = run_cli("backup", cwd=tmp_path, env=env)
    assert result.returncode == exit_codes.OK, result.output
    assert f"{REMOVED_PARTIAL}backups/{partials[0]}" in result.stdout
    names = sorted(p.name for p in backups.iterdir())
    assert partials[0] not in names and not [n for n in names if n.endswith(".partial")]
    assert len(names) == 3  # the new backup, its .sha256 and manifest


def test_stale_password_directories_of_killed_runs_are_removed_and_no_others(db18, shared, tmp_path):
    """The on-disk fallback's directories, planted as a killed run leaves them (in a TMPDIR of this test,
    so that other sessions' commands on this machine do not clean them first)."""
    tmp = shared.base / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid belongs to no process now
    dead_pid = dead.pid
    assert not Path(f"/proc/{dead_pid}").exists()

    def plant(name: str, owner: tuple[int, int] | None = None) -> Path:
        path = tmp / name
        path.mkdir(mode=0o700)
        (path / "pgpass").write_text("*:*:*:*:stale-password\n")
        os.chmod(path / "pgpass", 0o600)
        if owner is not None:
            os.chown(path / "pgpass", *owner)
            os.chown(path, *owner)
        return path

    stale = plant(f"{PASS_DIR}{dead_pid}-x1")
    live = plant(f"{PASS_DIR}{os.getpid()}-x2")  # this test's own process is alive
    foreign = plant(f"{PASS_DIR}{dead_pid}-x3", owner=attacker_ids())
    precious = shared.base / "precious-dir"
    precious.mkdir()
    (precious / "keep").write_text("keep me\n")
    attacker_symlink(precious, tmp / f"{PASS_DIR}{dead_pid}-x4")  # a link named like one: never followed

    env = env_for(db18.url, tmp_path / "audit.log", TMPDIR=str(tmp))
    result = run_cli("check", cwd=tmp_path, env=env)
    assert result.returncode == exit_codes.OK, result.output
    assert f"{REMOVED_PASSFILE}{stale}" in result.stderr
    assert result.output.count("🧹") == 1, result.output
    assert not os.path.lexists(stale)
    assert (live / "pgpass").exists() and (foreign / "pgpass").exists()
    assert os.path.islink(tmp / f"{PASS_DIR}{dead_pid}-x4") and (precious / "keep").read_text() == "keep me\n"
    assert sorted(os.listdir(tmp)) == sorted([live.name, foreign.name, f"{PASS_DIR}{dead_pid}-x4"])


def test_children_never_get_pgpassword_or_other_secrets(db, tmp_path):
    """DATABASE_URL without a password, PGPASSWORD (and the optional secrets) in the environment."""
    calls_dir = tmp_path / "calls"
    wrappers = install_wrappers(tmp_path / "bin", calls_dir, db.server.bin_dir)
    url = db.server.url(db.name, password=None)
    assert CANARY not in url
    private_tmp = tmp_path / "tmp"  # where an on-disk password file would go (TMPDIR), watched afterwards
    private_tmp.mkdir()
    env = env_for(url, tmp_path / "audit.log", PGPASSWORD=CANARY, CRON_SECRET=CRON, CLOUDFLARE_ACCESS_KEY_ID=R2_ID,
                  CLOUDFLARE_SECRET_ACCESS_KEY=R2_SECRET, PG_DUMP=str(wrappers / "pg_dump"),
                  PATH=f"{wrappers}:{os.environ.get('PATH', '/usr/bin:/bin')}", TMPDIR=str(private_tmp))
    secrets = (CANARY, CRON, R2_ID, R2_SECRET)

    def cli(*args: str) -> str:
        result = run_cli(*args, cwd=tmp_path, env=env, secrets=secrets)
        assert result.returncode == exit_codes.OK, (args, result.output)
        return result.stdout

    cli("check")
    cli("backup", "--format", "custom")  # pg_dump, then pg_restore reads the archive
    cli("run", "--yes")  # the checklist's probes, a plain backup, the migration
    with db.app() as conn:
        conn.execute("INSERT INTO database_backups (filename, s3_key, file_size) VALUES ('a', 'k/a', 1)")
    out = cli("rollback", "--yes")  # the safety copy (pg_dump --table), psql --version for the hint
    copy = re.search(r"✓ Safety copy written and verified: (\S+)", out).group(1)
    cli("rollback", "--restore", copy)  # psql, the copy on its stdin
    assert db.scalar("SELECT count(*) FROM database_backups") == 1  # every step authenticated

    calls = recorded_calls(calls_dir)
    kinds = {(c.program, "--version" in c.argv) for c in calls}
    assert {("pg_dump", True), ("pg_dump", False), ("pg_restore", False), ("psql", True), ("psql", False)} <= kinds
    for call in calls:
        secret_free(call, secrets)
        connects = call.program in ("pg_dump", "psql") and "--version" not in call.argv
        if connects:  # the password arrives in an inherited memory file
            assert re.fullmatch(r"/dev/fd/\d+", call.environ.get("PGPASSFILE", "")), (call.argv, call.environ)
            assert "--no-password" in call.argv
        else:
            assert "PGPASSFILE" not in call.environ, call.argv
    audit = (tmp_path / "audit.log").read_text()
    assert not any(s in audit for s in secrets)
    assert pass_dirs(str(private_tmp)) == []
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and stat.S_ISREG(path.lstat().st_mode) and \
                path.parent != calls_dir:
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
