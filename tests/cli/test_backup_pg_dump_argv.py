"""`migrate-tui backup` starts pg_dump only once its own connection has shown that no transaction-mode pooler
sits in between (migration.pooler: pg_dump's session settings would stay on pooled server connections the
moment it starts), and never puts the password on pg_dump's command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_support import cli_env

from harness import CANARY
from migration.pgtools import Locator

ROOT = Path(__file__).resolve().parents[2]

# The real command, with a look at each child process as it is started and at the pooler checks made.
PROBE = """
import json, subprocess, sys
import migration.operation
seen, checked = [], []
real_init = subprocess.Popen.__init__
def init(self, args, *rest, **kwargs):
    real_init(self, args, *rest, **kwargs)
    if "--verbose" in args:  # the dump (tool --version probes are not)
        seen.append({"argv": [str(a) for a in args], "pooler_checked": list(checked)})
subprocess.Popen.__init__ = init
real_note = migration.operation.Operation.note_pooler
def note(self, conn, facts):
    report = real_note(self, conn, facts)
    checked.append(report.mode.value)
    return report
migration.operation.Operation.note_pooler = note
import headless.entry
code = headless.entry.main(sys.argv[1:])
print("PROBE " + json.dumps(seen), flush=True)
sys.exit(code)
"""


def test_pg_dump_starts_after_the_pooler_check_and_gets_no_password(db, tmp_path):
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    pg_dump = Locator({"PATH": ""}).find("pg_dump", major).chosen
    env = cli_env(db.url, PG_DUMP=str(pg_dump.path))
    proc = subprocess.run([sys.executable, "-c", PROBE, "backup", "--backup-dir", str(tmp_path / "b")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ Backup written and verified" in proc.stdout
    probe = json.loads(proc.stdout.split("PROBE ", 1)[1])
    assert len(probe) == 1 and probe[0]["pooler_checked"] == ["none"]
    argv = probe[0]["argv"]
    dbname = next(a for a in argv if a.startswith("--dbname="))
    assert CANARY in db.url and not any(CANARY in a for a in argv) and "password" not in dbname
    assert dbname.startswith("--dbname=postgresql://") and "application_name=migrate-tui-backup-" in dbname
