"""Backup faults through the headless commands: disk full, a truncated and a corrupted dump, an old pg_dump.

Each ends with a clear message and fix, no file left in the backup directory, and the
database untouched (`run --yes` never starts the migration without a verified backup).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from fault_support import RUN, catalog_snapshot, env_for, run_cli, table_state
from migration.pgserver import embedded_bin_dir, system_bin_dir

# A pg_dump that runs the real one, then damages what it wrote (a fault injected on disk, not a mock).
WRAPPER = """#!/bin/sh
f=$(readlink /proc/$$/fd/1)  # pg_dump writes to its stdout: the backup's file
case "$f" in /*) [ -f "$f" ] || f= ;; *) f= ;; esac
for a in "$@"; do case "$a" in --file=*) f="${a#--file=}";; esac; done
if [ "$DAMAGE" = hollow ]; then  # the schema only, while saying it dumped the table's data
  "$REAL_PG_DUMP" "$@" --schema-only || exit $?
  echo 'pg_dump: dumping contents of table "public.events"' >&2
  exit 0
fi
"$REAL_PG_DUMP" "$@" || exit $?
[ -n "$f" ] || exit 0
size=$(stat -c %s "$f")
case "$DAMAGE" in
  truncate) truncate -s $((size * 2 / 3)) "$f" ;;
  corrupt) head -c 512 /dev/urandom | dd of="$f" bs=1 seek=64 conv=notrunc status=none ;;
esac
"""


@pytest.fixture
def data_db(db18):
    """A database with ~6 MB of rows owned by the application role."""
    with db18.app() as conn:
        conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, payload text)")
        conn.execute("INSERT INTO events (payload) SELECT md5(g::text) || repeat('x', 100) "
                     "FROM generate_series(1, 40000) g")
    return db18


# "corrupt" overwrites the archive's table of contents, which pg_restore must parse. (Random bytes in the middle of
# a compressed data block sometimes still decompress, to wrong rows: no archive reader can tell, so a test of that
# could not always fail; README, Known limits.)
def _damaging_pg_dump(tmp_path: Path, damage: str) -> dict[str, str]:
    real = embedded_bin_dir() / "pg_dump"
    wrapper = tmp_path / "bin" / "pg_dump"
    wrapper.parent.mkdir()
    # Children get an allowlisted environment only: the wrapper carries its settings itself.
    wrapper.write_text(WRAPPER.replace("#!/bin/sh\n", f"#!/bin/sh\nREAL_PG_DUMP='{real}'\nDAMAGE={damage}\n", 1))
    wrapper.chmod(0o755)
    return {"PG_DUMP": str(wrapper)}


def _no_files(directory: Path) -> None:
    left = list(directory.iterdir()) if directory.exists() else []
    assert not left, f"files left in the backup directory: {left}"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("damage, fmt, reasons", [
    ("truncate", "plain", ["the end-of-dump marker '-- PostgreSQL database dump complete' is missing"]),
    # A damaged table of contents fails pg_restore, or reads back with fewer entries (a negative count: none).
    ("corrupt", "custom", ["pg_restore could not read it", "of the 1 tables pg_dump dumped"]),
    *[("hollow", fmt, ["it holds the data of 0 of the 1 tables pg_dump dumped (missing: public.events)"])
      for fmt in ("plain", "custom", "directory")],
])
def test_damaged_dump_fails_verification_and_is_deleted(data_db, tmp_path, damage, fmt, reasons):
    db = data_db
    before = catalog_snapshot(db)
    backups = tmp_path / "backups"
    env = env_for(db, tmp_path, **_damaging_pg_dump(tmp_path, damage))
    result = run_cli("backup", "--backup-dir", str(backups), "--format", fmt, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.output
    assert "The backup failed verification" in result.output, result.output
    assert any(reason in result.output for reason in reasons), result.output
    assert "It was deleted." in result.output
    assert "Fix: Run the backup again" in result.output
    _no_files(backups)

    run = run_cli(*RUN, "--backup-dir", str(backups), "--format", fmt, cwd=tmp_path, env=env)
    assert run.returncode == 1, run.output
    assert "the migration does not start without a verified backup" in run.output
    _no_files(backups)
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before


@pytest.fixture
def tiny_fs():
    """A 2 MB tmpfs the backup can fill up (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the disk-full test needs root")
    mountpoint = Path(tempfile.mkdtemp(prefix="migrate-tui-tinyfs-"))
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0777", "tmpfs", str(mountpoint)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip() or mount.returncode})")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
        mountpoint.rmdir()


@pytest.mark.timeout(90)
def test_disk_full_during_backup(data_db, tiny_fs, tmp_path):
    db = data_db
    before = catalog_snapshot(db)
    backups = tiny_fs / "backups"
    env = env_for(db, tmp_path)
    result = run_cli("backup", "--backup-dir", str(backups), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.output
    assert "The disk is full: pg_dump could not write the backup" in result.output, result.output
    assert "Fix: Free disk space or choose another directory with --backup-dir" in result.output
    assert "partial file was deleted" in result.output
    _no_files(backups)

    # run --yes: the checklist or the backup stops it; the migration never starts.
    run = run_cli(*RUN, "--backup-dir", str(backups), cwd=tmp_path, env=env)
    assert run.returncode == 1, run.output
    assert "Starting safe migration" not in run.output
    _no_files(backups)
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(60)
def test_pg_dump_older_than_server(db18, tmp_path):
    old = system_bin_dir(15)
    if old is None:
        pytest.skip("PostgreSQL 15 client tools are not installed (/usr/lib/postgresql/15/bin)")
    db = db18
    backups = tmp_path / "backups"
    env = env_for(db, tmp_path, PG_DUMP=str(old / "pg_dump"))
    result = run_cli("backup", "--backup-dir", str(backups), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.output
    assert "is older than the server (PostgreSQL 18)" in result.output, result.output
    assert "Fix: Install a pg_dump of version 18 or later" in result.output
    _no_files(backups)
    check = run_cli("check", cwd=tmp_path, env=env)
    assert check.returncode == 1 and "older than the server" in check.output, check.output
    run = run_cli(*RUN, cwd=tmp_path, env=env)
    assert run.returncode == 1 and "Starting safe migration" not in run.output, run.output
    assert table_state(db) == "absent"
