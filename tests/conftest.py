"""Fixtures: real PostgreSQL servers (see tests/harness.py), one fresh database per test."""

from __future__ import annotations

import os

import pytest

from harness import CANARY, Database, Server, start_server
from skip_rule import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401 - no silent skips on CI

from migration.settings import load_settings

EXTERNAL = bool(os.environ.get("TEST_DATABASE_URL"))
ENGINE_VERSIONS = ["external"] if EXTERNAL else ["18", "15"]

_servers: dict[str, Server] = {}


def _worker_tmpdir() -> str | None:
    """Under pytest-xdist (tests/run.sh runs the suite on several workers), each worker gets a temp directory of
    its own, for itself and every child (TMPDIR): a test that looks for what a command left in the temp
    directory (a drill's or the demo's server directory, a passfile) sees only its own worker's. Tests that
    use the system's /tmp on purpose share the xdist group ``system-tmp`` (run one at a time)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return None
    import tempfile

    path = tempfile.mkdtemp(prefix=f"migrate-tui-tests-{worker}-", dir="/tmp")
    os.chmod(path, 0o755)  # as root the throwaway servers run as an unprivileged user: it must reach them
    os.environ["TMPDIR"] = path
    tempfile.tempdir = path
    return path


_WORKER_TMP = _worker_tmpdir()


def _server(version: str) -> Server:
    if version not in _servers:
        try:
            _servers[version] = start_server(version)
        except LookupError as exc:
            # With CI set this skip is a failure (skip_rule): CI installs both versions.
            pytest.skip(f"{exc} (install postgresql-15 to run these)")
    return _servers[version]


def pytest_sessionfinish(session, exitstatus):
    for server in _servers.values():
        server.stop()
    _servers.clear()
    if _WORKER_TMP is not None:
        import shutil

        shutil.rmtree(_WORKER_TMP, ignore_errors=True)


@pytest.fixture(params=ENGINE_VERSIONS)
def server(request) -> Server:
    """Each engine test runs on PostgreSQL 18 and on PostgreSQL 15."""
    return _server(request.param)


@pytest.fixture
def server18() -> Server:
    return _server("external" if EXTERNAL else "18")


@pytest.fixture
def server15() -> Server:
    if EXTERNAL:
        pytest.skip("TEST_DATABASE_URL is set: only the external server is used")
    return _server("15")


def _database(server: Server):
    db = server.create_database()
    try:
        yield db
    finally:
        server.drop_database(db.name)


@pytest.fixture
def db(server) -> Database:
    """A fresh database on each engine server version."""
    yield from _database(server)


@pytest.fixture
def db18(server18) -> Database:
    """A fresh database on PostgreSQL 18 (the wizard tests)."""
    yield from _database(server18)


@pytest.fixture
def settings_for():
    def make(database: Database, **overrides):
        return load_settings(database_url=overrides.pop("database_url", database.url), environ={}, **overrides)

    return make


@pytest.fixture
def canary() -> str:
    return CANARY
