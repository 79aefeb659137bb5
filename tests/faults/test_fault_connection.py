"""Connection faults: a wrong password, and a host that accepts TCP but never answers.

The unreachable host is a listening socket in the test that accepts each connection and never
replies: libpq waits for the server's first message until connect_timeout, which DATABASE_URL
sets to 2 s. No hang, a clear message. The test notes when each connection arrives, so the
bound is on what follows the first attempt (connect_timeout per attempt), not on how long the
interpreter took to start on a busy machine.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fault_support import RUN, catalog_snapshot, cli_env, run_cli, table_state

WRONG = "Wrong-pw-3b1d-not-the-real-one"
COMMANDS = [("check",), (*RUN, "--skip-backup"), ("backup",), ("rollback",), ("rollback", "--yes")]
CONNECT_TIMEOUT_S = 2


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word; records when each one arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[float] = []
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="test-silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.arrivals.append(time.monotonic())
            self._open.append(conn)  # held open, unanswered, until the test ends

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._open:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_wrong_password(db, tmp_path, args):
    before = catalog_snapshot(db)
    url = db.server.url(db.name, password=WRONG)
    result = run_cli(*args, cwd=tmp_path, env=cli_env(url, MIGRATE_AUDIT_LOG=str(tmp_path / "audit.log")),
                     secrets=(WRONG,))
    assert result.returncode == 1, result.output
    assert "password authentication failed" in result.output.lower(), result.output
    assert "Fix: Check the user and password in DATABASE_URL" in result.output, result.output
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before
    audit = tmp_path / "audit.log"
    if audit.exists():
        assert WRONG not in audit.read_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unreachable_host_times_out(silent_server, tmp_path, args):
    url = (f"postgresql://app_user:{WRONG}@127.0.0.1:{silent_server.port}/shop"
           f"?connect_timeout={CONNECT_TIMEOUT_S}")
    result = run_cli(*args, cwd=tmp_path, env=cli_env(url), timeout=60, secrets=(WRONG,))
    ended = time.monotonic()
    assert result.returncode == 1, result.output
    assert "Connection failed: the server did not answer within the connect timeout." in result.output, \
        result.output
    assert "Fix: Verify DATABASE_URL is correct, check network connectivity" in result.output
    # A command may try twice (e.g. the checklist, then the runner's re-check); each attempt gives up
    # after connect_timeout, and the command ends right after the last one: no hang.
    attempts = len(silent_server.arrivals)
    assert 1 <= attempts <= 2, f"{attempts} connection attempts"
    after_first = ended - silent_server.arrivals[0]
    assert after_first < attempts * CONNECT_TIMEOUT_S + 3, \
        f"ended {after_first:.1f} s after its first attempt, with {attempts} attempt(s) of {CONNECT_TIMEOUT_S} s"
