"""A dump cut short or extended after pg_dump wrote it fails the backup's verification, which reads the files
as they are on disk, not the bytes hashed while pg_dump wrote them.

pg_dump here is a wrapper: it runs the real pg_dump, then — after it has exited, before migrate-tui verifies —
cuts the last 40 bytes of the plain dump or of the customers data file, or appends a row to it. The plain dump
and each file of a directory archive are hashed while pg_dump writes them (a same-size change after that is
re-hashed: tests/engine/test_backup_io.py, where the test knows when the hash has caught up).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from drill.drill_support import seed

from migration.backup import Backup
from migration.options import BackupOptions
from migration.outcome import Outcome
from migration.pgtools import Locator
from migration.settings import load_settings

pytestmark = pytest.mark.timeout(180)

MARK = b"\tc150\t"  # a customers row: 150\tc150\tok

WRAPPER = r'''#!{python}
import os, subprocess, sys
rc = subprocess.call([{real!r}] + sys.argv[1:], close_fds=False)
if rc != 0 or "--version" in sys.argv or "-V" in sys.argv:
    sys.exit(rc)
target = next((a[len("--file=/dev/fd/"):] for a in sys.argv[1:] if a.startswith("--file=/dev/fd/")), None)
if target is None:  # a plain dump is pg_dump's standard output
    fd = os.open("/proc/self/fd/1", os.O_RDWR)
else:  # a directory archive: the data file holding the customers row
    folder = int(target)
    for name in os.listdir(folder):
        if name.endswith(".dat"):
            fd = os.open(name, os.O_RDWR, dir_fd=folder)
            if {mark!r} in os.pread(fd, 1 << 20, 0):
                break
            os.close(fd)
size = os.fstat(fd).st_size
change = {change!r}
if change == "truncate":
    os.ftruncate(fd, size - 40)
else:
    os.pwrite(fd, b"9999\tc9999\tok\n", size)
os.close(fd)
sys.exit(rc)
'''


def changing_pg_dump(tmp_path: Path, db, change: str) -> Locator:
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    real = Locator().find("pg_dump", major).chosen
    assert real is not None
    wrapper = tmp_path / "bin" / "pg_dump"
    wrapper.parent.mkdir(mode=0o700)
    wrapper.write_text(WRAPPER.format(python=sys.executable, real=str(real.path), mark=MARK, change=change))
    wrapper.chmod(0o700)
    return Locator({"PG_DUMP": str(wrapper), "PATH": ""})


def backup(db, tmp_path: Path, fmt: str, change: str):
    backup_dir = tmp_path / "backups"
    options = BackupOptions(backup_dir=backup_dir, fmt=fmt, jobs=2 if fmt == "directory" else 1,
                            compress="none" if fmt == "directory" else None)
    result = Backup(load_settings(database_url=db.url, environ={}), None, options,
                    locator=changing_pg_dump(tmp_path, db, change)).run()
    return result, backup_dir


@pytest.mark.parametrize("fmt", ["plain", "directory"])
@pytest.mark.parametrize("change", ["truncate", "append"])
def test_a_dump_cut_short_or_extended_after_pg_dump_fails_verification(db, tmp_path, fmt, change):
    seed(db)
    result, backup_dir = backup(db, tmp_path, fmt, change)
    assert result.outcome is Outcome.FAILED, result
    assert "failed verification" in result.error.message and "It was deleted" in result.error.message
    if fmt == "directory":
        assert "public.customers" in result.error.message  # the data file that changed, by its table
    assert not backup_dir.exists() or os.listdir(backup_dir) == []
