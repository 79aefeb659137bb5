"""Connection faults: a wrong password, and a host that accepts TCP but never answers.

The unreachable host is a listening socket in the test that never accepts or replies (the
kernel completes the handshake from the backlog): libpq waits for the server's first
message until connect_timeout, which DATABASE_URL sets to 2 s. No hang, a clear message.
"""

from __future__ import annotations

import socket
import time

import pytest

from fault_support import RUN, catalog_snapshot, cli_env, run_cli, table_state

WRONG = "Wrong-pw-3b1d-not-the-real-one"
COMMANDS = [("check",), (*RUN, "--skip-backup"), ("backup",), ("rollback",), ("rollback", "--yes")]


@pytest.fixture
def silent_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_wrong_password(db18, tmp_path, args):
    db = db18
    before = catalog_snapshot(db)
    url = db.server.url(db.name, password=WRONG)
    result = run_cli(*args, cwd=tmp_path, env=cli_env(url, MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log")),
                     secrets=(WRONG,))
    assert result.returncode == 1, result.output
    assert "password authentication failed" in result.output.lower(), result.output
    assert "Check the user and password in DATABASE_URL" in result.output
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before
    audit = tmp_path / "audit.log"
    if audit.exists():
        assert WRONG not in audit.read_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unreachable_host_times_out(silent_port, tmp_path, args):
    url = f"postgresql://app_user:{WRONG}@127.0.0.1:{silent_port}/shop?connect_timeout=2"
    t0 = time.monotonic()
    result = run_cli(*args, cwd=tmp_path, env=cli_env(url), timeout=60, secrets=(WRONG,))
    took = time.monotonic() - t0
    assert result.returncode == 1, result.output
    assert "Connection failed: the server did not answer within the connect timeout." in result.output, \
        result.output
    assert "Fix: Verify DATABASE_URL is correct, check network connectivity" in result.output
    # connect_timeout=2 per attempt; a command may try twice (e.g. the checklist then the runner's re-check).
    assert took < 9, f"took {took:.1f} s with connect_timeout=2"
