"""A TCP relay between migrate-tui (and its pg_dump / psql) and a real PostgreSQL server that stops a
chosen session at a chosen statement, so a fault can be injected exactly there.

Nothing of PostgreSQL is emulated: every byte goes through unchanged. The relay only reads the
framing of protocol 3 (the start-up packet, then typed messages with a length) to learn each
session's ``application_name`` and where each statement starts (a simple ``Query`` or an
extended-protocol ``Parse``). A session the test watches (``watch(application_name)``) runs in
lockstep: each of its statements waits at the relay as a :class:`Held` until the test decides:

- :meth:`Held.forward`: let it go on to the server (the next statement is held again);
- :meth:`Held.forward_and_hold_answer`: let the server run it, and keep its whole answer (up to
  ReadyForQuery) at the relay: the statement has done its work on the server, the client waits;
- :meth:`Held.drop`: the statement never reaches the server (e.g. its session is being terminated).

:meth:`PgProxy.pass_through` ends the lockstep for good (every held statement and answer goes on).
SSL and GSS encryption requests are answered "N" (the relay must read the messages); cancel
requests (the tool's ``cancel_safe``) are passed to the server.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
from typing import Callable

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
STATEMENT_STARTS = (b"Q", b"P")  # a simple query; the Parse of an extended-protocol query


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def _read_message(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """(type, whole message) of one typed protocol message; None at the end of the stream."""
    head = _recv_exact(sock, 5)
    if head is None:
        return None
    length = struct.unpack("!I", head[1:])[0]
    body = _recv_exact(sock, length - 4) if length > 4 else b""
    if body is None:
        return None
    return head[:1], head + body


def _statement_text(kind: bytes, message: bytes) -> str:
    body = message[5:]
    if kind == b"P":  # Parse: statement name \0, query \0, ...
        body = body.split(b"\0", 1)[1] if b"\0" in body else body
    return body.split(b"\0", 1)[0].decode("utf-8", errors="replace")


class Held:
    """One statement of a watched session, stopped at the relay until the test decides."""

    def __init__(self, session: "_Session", message: bytes, sql: str) -> None:
        self.session = session
        self.message = message
        self.sql = sql
        self.decision: str | None = None
        self.decided = threading.Event()
        self.answered = threading.Event()  # the server's whole answer (ReadyForQuery) is held at the relay

    @property
    def application_name(self) -> str:
        return self.session.application_name

    @property
    def backend_pid(self) -> int | None:
        return self.session.backend_pid

    def forward(self) -> None:
        self._decide("forward")

    def drop(self) -> None:
        self._decide("drop")

    def forward_and_hold_answer(self, timeout: float = 30) -> None:
        """The server runs the statement; its answer stays here until :meth:`PgProxy.pass_through`."""
        self.session.hold_answer(self)
        self._decide("forward")
        if not self.answered.wait(timeout):
            raise AssertionError(f"the server did not answer {self.sql[:80]!r} within {timeout} s")

    def _decide(self, decision: str) -> None:
        assert self.decision is None, f"already decided: {self.decision}"
        self.decision = decision
        self.decided.set()

    def __repr__(self) -> str:
        return f"Held({self.application_name!r}, {self.sql[:60]!r})"


class _Session:
    def __init__(self, proxy: "PgProxy", client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server: socket.socket | None = None
        self.application_name = ""
        self.backend_pid: int | None = None
        self._lock = threading.Lock()
        self._answer_for: Held | None = None
        self._answer: list[bytes] = []
        self.closed = threading.Event()

    # -- the answer held at the relay --------------------------------------------------------
    def hold_answer(self, held: Held) -> None:
        with self._lock:
            self._answer_for = held

    def release_answer(self) -> None:
        with self._lock:
            pending, self._answer, self._answer_for = self._answer, [], None
        for message in pending:
            self._send(self.client, message)

    # -- relaying ----------------------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(target=self._client_side, name="pg-proxy-client", daemon=True).start()

    def _client_side(self) -> None:
        try:
            if not self._startup():
                return
            threading.Thread(target=self._server_side, name="pg-proxy-server", daemon=True).start()
            while True:
                message = _read_message(self.client)
                if message is None:
                    return
                kind, data = message
                if kind in STATEMENT_STARTS and self.proxy.holds(self.application_name):
                    held = Held(self, data, _statement_text(kind, data))
                    self.proxy.held.put(held)
                    while not held.decided.wait(0.05):
                        if self.closed.is_set():
                            return
                        if self.proxy.passing.is_set():
                            held.decision = "forward"
                            break
                    if held.decision == "drop":
                        continue
                if not self._send(self.server, data):
                    return
        finally:
            self.close()

    def _startup(self) -> bool:
        """Encryption requests answered 'N'; a cancel request passed on; a start-up packet: connect."""
        while True:
            head = _recv_exact(self.client, 8)
            if head is None:
                return False
            length, code = struct.unpack("!II", head)
            rest = _recv_exact(self.client, length - 8) if length > 8 else b""
            if rest is None:
                return False
            if code in (SSL_REQUEST, GSS_REQUEST):
                self.client.sendall(b"N")
                continue
            self.server = socket.create_connection(self.proxy.upstream)
            self.server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.server.sendall(head + rest)
            if code == CANCEL_REQUEST:
                _recv_exact(self.server, 1)  # the server closes the connection when done
                return False
            params = rest.split(b"\0")
            pairs = dict(zip(params[0::2], params[1::2]))
            self.application_name = pairs.get(b"application_name", b"").decode("utf-8", errors="replace")
            return True

    def _server_side(self) -> None:
        try:
            while True:
                message = _read_message(self.server)
                if message is None:
                    return
                kind, data = message
                if kind == b"K":  # BackendKeyData: the backend's pid
                    self.backend_pid = struct.unpack("!I", data[5:9])[0]
                with self._lock:
                    held = self._answer_for
                    if held is not None:
                        self._answer.append(data)
                        if kind == b"Z":
                            held.answered.set()
                        continue
                if not self._send(self.client, data):
                    return
        finally:
            self.close()

    @staticmethod
    def _send(sock: socket.socket | None, data: bytes) -> bool:
        if sock is None:
            return False
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.server):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class PgProxy:
    """Listens on 127.0.0.1 (``port``) and relays to ``upstream`` (host, port).

    ``watch(application_name)``: whether a session runs in lockstep (its statements arrive in
    :attr:`held` one at a time). Use as a context manager.
    """

    def __init__(self, upstream: tuple[str, int], watch: Callable[[str], bool]) -> None:
        self.upstream = upstream
        self.watch = watch
        self.held: "queue.Queue[Held]" = queue.Queue()
        self.passing = threading.Event()
        self.sessions: list[_Session] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)

    def __enter__(self) -> "PgProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def holds(self, application_name: str) -> bool:
        return not self.passing.is_set() and self.watch(application_name)

    def next_held(self, timeout: float = 60) -> Held:
        try:
            return self.held.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no statement of a watched session reached the relay within {timeout} s") from None

    def pass_through(self) -> None:
        """No more lockstep: held statements go on, held answers are delivered."""
        self.passing.set()
        for session in list(self.sessions):
            session.release_answer()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one message at a time: no Nagle delay
            session = _Session(self, client)
            self.sessions.append(session)
            session.start()

    def close(self) -> None:
        self.passing.set()
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._listener.close()
        for session in list(self.sessions):
            session.close()


def url_through(url: str, proxy: PgProxy) -> str:
    """The same URL, with the host and port of the relay."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit((parts.scheme, f"{userinfo}@127.0.0.1:{proxy.port}", parts.path, parts.query, ""))
