"""Directory-format backups with parallel jobs: written into a private directory published without replacing
anything, every file's sha256 in the manifest, verified by pg_restore reading every file, and drilled with
pg_restore --jobs. Compression is whatever this pg_dump can do, and it says so when it cannot."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from drill_support import ROWS, backup, drill, manifest, seed, settings

from migration.backup import Backup
from migration.events import BackupStarted, Outcome
from migration.options import BackupOptions
from migration.safe_dirs import PendingDir
from migration.safe_files import open_dir

pytestmark = pytest.mark.timeout(240)


def test_directory_backup_with_jobs_is_verified_and_drilled(db, tmp_path):
    seed(db)
    events: list = []
    result = Backup(settings(db), events.append, BackupOptions(backup_dir=tmp_path / "backups", fmt="directory",
                                                               jobs=2)).run()
    assert result.ok, result
    started = next(e for e in events if isinstance(e, BackupStarted))
    assert (started.jobs, started.compression) == (2, "none")  # neither pg_dump here has lz4
    path = Path(result.path)
    assert path.name.endswith(".dir") and stat.S_IMODE(path.stat().st_mode) == 0o700
    m = manifest(path)
    assert m["format"] == "directory" and m["jobs"] == 2 and m["rows"] == ROWS
    assert m["verification"].startswith("pg_restore") and "every file" in m["verification"]
    files = {f["name"]: f for f in m["files"]}
    assert set(files) == set(os.listdir(path)) and "toc.dat" in files
    for name, entry in files.items():
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o600
        assert entry["size_bytes"] == (path / name).stat().st_size
    assert m["size_bytes"] == sum(f["size_bytes"] for f in m["files"])
    check = subprocess.run(["sha256sum", "-c", f"{path.name}.sha256"], cwd=path.parent, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == len(files), check.stdout + check.stderr
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]
    drilled = drill(db, path, jobs=2)
    assert drilled.ok, drilled
    assert {c.table: c.rows_restored for c in drilled.tables} == ROWS


def test_gzip_compression_and_a_method_pg_dump_lacks(db, tmp_path):
    seed(db)
    gz = backup(db, tmp_path, "directory", jobs=2, compress="gzip")
    names = [f["name"] for f in manifest(gz.path)["files"]]
    assert any(n.endswith(".dat.gz") for n in names), names
    assert manifest(gz.path)["rows"] == ROWS  # counted from the gzip files as pg_dump wrote them
    assert drill(db, gz.path).ok
    refused = Backup(settings(db), None, BackupOptions(backup_dir=tmp_path / "b2", fmt="directory", jobs=2,
                                                       compress="lz4")).run()
    assert refused.outcome is Outcome.FAILED
    assert "cannot compress with lz4" in refused.error.message and "--compress" in refused.error.hint
    assert not (tmp_path / "b2").exists() or os.listdir(tmp_path / "b2") == []


def test_a_changed_or_extra_file_in_the_directory_is_not_restored(db, tmp_path):
    seed(db)
    path = Path(backup(db, tmp_path, "directory", jobs=2).path)
    data_file = max((p for p in path.iterdir() if p.name != "toc.dat"), key=lambda p: p.stat().st_size)
    original = data_file.read_bytes()
    data_file.write_bytes(original[:5] + bytes([original[5] ^ 1]) + original[6:])  # one bit, same size
    changed = drill(db, path)
    assert changed.outcome is Outcome.FAILED and "no longer matches its manifest" in changed.error.message
    data_file.write_bytes(original)
    (path / "9999.dat").write_bytes(b"1\n")
    extra = drill(db, path)
    assert extra.outcome is Outcome.FAILED and "no longer matches its manifest" in extra.error.message
    (path / "9999.dat").unlink()
    assert drill(db, path).ok


def test_a_partial_directory_of_a_killed_run_is_removed_and_a_held_one_is_not(db, tmp_path):
    seed(db)
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    stale = backups / ".backup_before_migration_20200101_000000.dir.partial"
    stale.mkdir(mode=0o700)
    (stale / "toc.dat").write_bytes(b"half")
    with open_dir(backups) as directory:
        held = PendingDir(directory, "backup_before_migration_20200101_000001.dir")  # a running backup's, locked
        try:
            events: list = []
            result = Backup(settings(db), events.append, BackupOptions(backup_dir=backups, fmt="directory",
                                                                       jobs=2)).run()
            assert result.ok, result
            started = next(e for e in events if isinstance(e, BackupStarted))
            assert started.removed == (str(stale),)
            assert not stale.exists() and held.temporary_path.is_dir()
        finally:
            held.discard()
    assert not held.temporary_path.exists()


def test_publishing_never_replaces_what_is_at_the_final_name(tmp_path):
    """renameat2(RENAME_NOREPLACE): an empty directory at the final name (which rename() would replace) stays."""
    from migration.safe_files import UnsafePath

    base = tmp_path / "b"
    base.mkdir(mode=0o700)
    with open_dir(base) as directory:
        pending = PendingDir(directory, "x.dir")
        (base / "x.dir").mkdir()
        with pytest.raises(UnsafePath, match="already exists"):
            pending.publish()
        assert (base / "x.dir").is_dir() and os.listdir(base / "x.dir") == []
        pending.discard()


def test_the_backup_is_hashed_on_idle_cpu_while_the_server_starts_and_whole_before_the_restore(db, tmp_path,
                                                                                              monkeypatch):
    """The drill's check of every file's sha256 runs at idle priority (initdb keeps its CPU); whatever it has not
    reached when the server is up is hashed before the restore reads anything: a changed byte is never restored."""
    import threading

    from migration.backup import manifest as manifests
    from migration.drill import check as check_module
    from migration.errors import MigrateError

    policies: list[int] = []
    real = check_module.lower_thread_priority

    def recording() -> None:
        real()
        policies.append(os.sched_getscheduler(threading.get_native_id()))

    monkeypatch.setattr(check_module, "lower_thread_priority", recording)
    seed(db)
    path = Path(backup(db, tmp_path, "directory", jobs=2).path)
    smallest = min(path.iterdir(), key=lambda p: p.stat().st_size)  # the idle thread takes the largest first
    original = smallest.read_bytes()
    smallest.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    loaded = manifests.load(path)
    try:
        check = check_module.BackupCheck(loaded, 2).start()
        with pytest.raises(MigrateError, match="no longer matches its manifest"):
            check.finish()
        check.close()
        assert policies == [os.SCHED_IDLE]
        smallest.write_bytes(original)
        check = check_module.BackupCheck(loaded, 2).start()
        fd = check.finish()
        try:
            assert sorted(os.listdir(fd)) == sorted(f["name"] for f in manifest(path)["files"])
        finally:
            os.close(fd)
            check.close()
    finally:
        loaded.close()
