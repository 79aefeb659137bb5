"""The connection drops around COMMIT: did it commit? The runner's catalog read decides.

A TCP proxy between the runner and the server cuts the migration's connection either
just *after* the server answered COMMIT (committed, but the client never hears it) or just
*before* COMMIT reaches the server (never committed). The runner must report success in the
first case and "rolled back" in the second, each confirmed by reading the catalog on a fresh
connection (through the same proxy, which lets later connections pass).
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

import pytest

from fault_support import catalog_snapshot, table_state
from migration.events import Outcome, Step, StepFinished
from migration.runner import Migration


class CommitCutter:
    """Forwards 127.0.0.1:<port> to the server; cuts the connection at the COMMIT of the change.

    Every statement of the tool runs in a transaction (even a lone SELECT, which commits at once),
    so the cut waits for the COMMIT that follows a CREATE TABLE or DROP TABLE on the same connection.
    """

    def __init__(self, upstream_port: int, cut: str) -> None:
        assert cut in ("after", "before")
        self.upstream_port = upstream_port
        self.cut = cut
        self.armed = True
        self.cut_done = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = {"cut_on_reply": False, "changed": False}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, client, server, state) -> None:
        """Client -> server; COMMIT either goes through (cut on the reply) or is swallowed."""
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                break
            if not data:
                break
            if b"CREATE TABLE" in data or b"DROP TABLE" in data:
                state["changed"] = True
            if self.armed and state["changed"] and b"COMMIT" in data:
                self.armed = False
                if self.cut == "before":
                    self._close(client, server)
                    return
                state["cut_on_reply"] = True
            try:
                server.sendall(data)
            except OSError:
                break
        self._close(client, server, done=False)

    def _down(self, server, client, state) -> None:
        """Server -> client; after COMMIT was forwarded, the server's answer is dropped with the connection."""
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                break
            if not data:
                break
            if state["cut_on_reply"]:
                self._close(client, server)
                return
            try:
                client.sendall(data)
            except OSError:
                break
        self._close(client, server, done=False)

    def _close(self, client, server, done: bool = True) -> None:
        if done:
            # Before the sockets go: the client wakes up as soon as its socket is shut, and may
            # finish its catalog read-back before this thread runs again (seen under load).
            self.cut_done.set()
        for sock in (client, server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        return url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{self.port}", 1)

    def close(self) -> None:
        self._closed = True
        self.listener.close()


@pytest.fixture
def cutter(request, db):
    proxy = CommitCutter(urlsplit(db.url).port, request.param)
    yield proxy
    proxy.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cutter", ["after"], indirect=True)
def test_commit_reached_the_server_but_the_answer_was_lost(db, settings_for, cutter):
    events = []
    result = Migration(settings_for(db, database_url=cutter.url(db.url)), events.append).run()
    assert cutter.cut_done.is_set(), "the proxy cut the connection after COMMIT"
    assert result.outcome is Outcome.SUCCESS, result
    commit = [e for e in events if isinstance(e, StepFinished) and e.step is Step.TRANSACTION_COMMIT]
    assert commit and "confirmed after the connection dropped" in commit[0].message
    assert table_state(db) == "valid"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cutter", ["before"], indirect=True)
def test_commit_never_reached_the_server(db, settings_for, cutter):
    before = catalog_snapshot(db)
    result = Migration(settings_for(db, database_url=cutter.url(db.url)), lambda e: None).run()
    assert cutter.cut_done.is_set(), "the proxy cut the connection before COMMIT"
    assert result.outcome is Outcome.FAILED, result
    assert result.rolled_back and result.message.startswith("All changes rolled back: verified"), result.message
    assert result.error is not None and "connection" in result.error.message.lower() and result.error.hint
    assert table_state(db) == "absent"
    assert catalog_snapshot(db) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cutter, dropped", [("after", True), ("before", False)], indirect=["cutter"],
                         ids=["after-commit", "before-commit"])
def test_rollback_commit_cut(db, settings_for, cutter, dropped):
    """The same for the rollback's DROP: the catalog read decides, and the report matches the catalog."""
    from migration.options import RollbackOptions
    from migration.rollback import Rollback

    assert Migration(settings_for(db), lambda e: None).run().outcome is Outcome.SUCCESS
    migrated = catalog_snapshot(db)
    settings = settings_for(db, database_url=cutter.url(db.url))
    result = Rollback(settings, lambda e: None, RollbackOptions(table_backup=False, retries=0)).run()
    assert cutter.cut_done.is_set(), "the proxy cut the rollback's connection at COMMIT"
    if dropped:
        assert result.outcome is Outcome.SUCCESS, result
        assert table_state(db) == "absent"
    else:
        assert result.outcome is Outcome.FAILED, result
        assert result.error is not None and result.error.hint
        assert result.message == "Rollback failed; nothing was dropped (the catalog still shows public.database_backups)."
        assert "connection" in result.error.message.lower() and "Run again" in result.error.hint
        assert "Traceback" not in result.error.message
        assert table_state(db) == "valid"
        assert catalog_snapshot(db) == migrated
