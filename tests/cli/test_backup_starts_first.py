"""`migrate-tui backup` starts pg_dump before the database driver loads, and still never puts the
password on pg_dump's command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_support import cli_env

from harness import CANARY
from migration.pgtools import Locator

ROOT = Path(__file__).resolve().parents[2]

# The real command, with a look at each child process as it is started.
PROBE = """
import json, subprocess, sys
seen = []
real_init = subprocess.Popen.__init__
def init(self, args, *rest, **kwargs):
    real_init(self, args, *rest, **kwargs)
    if "--verbose" in args:  # the dump (tool --version probes are not)
        seen.append({"argv": [str(a) for a in args], "driver_loaded": "psycopg" in sys.modules})
subprocess.Popen.__init__ = init
import headless.entry
code = headless.entry.main(sys.argv[1:])
print("PROBE " + json.dumps(seen), flush=True)
sys.exit(code)
"""


def test_pg_dump_starts_before_the_driver_loads_and_gets_no_password(db, tmp_path):
    major = db.scalar("SELECT current_setting('server_version_num')::int / 10000")
    pg_dump = Locator({"PATH": ""}).find("pg_dump", major).chosen
    env = cli_env(db.url, PG_DUMP=str(pg_dump.path))
    proc = subprocess.run([sys.executable, "-c", PROBE, "backup", "--backup-dir", str(tmp_path / "b")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ Backup written and verified" in proc.stdout
    probe = json.loads(proc.stdout.split("PROBE ", 1)[1])
    assert len(probe) == 1 and probe[0]["driver_loaded"] is False
    argv = probe[0]["argv"]
    dbname = next(a for a in argv if a.startswith("--dbname="))
    assert CANARY in db.url and not any(CANARY in a for a in argv) and "password" not in dbname
    assert dbname.startswith("--dbname=postgresql://") and "application_name=migrate-tui-backup-" in dbname
