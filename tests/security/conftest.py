"""Fixtures of the hostile-database tests: one private logging server per PostgreSQL version for the
session (see hostile_support.HostileServer), and on each a template database full of the attacker's
objects, generated from the SQL the tool sent while every command ran on a clean database."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from hostile_objects import Plan, create_sql, plan
from hostile_support import ATTACKER, Exercise, HostileServer, exercise
from sql_surface import Surface, surface

VERSIONS = ["18", "15"]
_servers: dict[str, HostileServer] = {}
_templates: dict[str, "Template"] = {}


@dataclass
class Template:
    """A database "like an old one" (CREATE on public for PUBLIC) full of the attacker's objects."""

    name: str
    discovery: Exercise  # every command on a clean database: where the surface was read from
    surface: Surface
    plan: Plan
    seconds: float  # discovery + planning + creation


def hostile_server(version: str) -> HostileServer:
    if version not in _servers:
        try:
            _servers[version] = HostileServer(version)
        except LookupError as exc:
            if os.environ.get("CI"):
                raise  # CI installs both versions: a missing one is a failure there
            pytest.skip(f"{exc} (install postgresql-15 to run these)")
    return _servers[version]


def pytest_sessionfinish(session, exitstatus):
    for server in _servers.values():
        server.cleanup()
    _servers.clear()
    _templates.clear()


@pytest.fixture(scope="session", params=VERSIONS, ids=lambda v: f"pg{v}")
def hostile(request) -> HostileServer:
    """A private PostgreSQL server (18, then 15) with log_statement=all, an operator and an attacker."""
    return hostile_server(request.param)


def build_template(hs: HostileServer, workdir) -> Template:
    t0 = time.monotonic()
    clean = hs.create_database()
    try:
        found = exercise(hs, clean, workdir)
    finally:
        hs.drop_database(clean)
    failed = {k: r for k, r in found.results.items()
              if r.returncode != (1 if k == "rollback blocked" else 0)}
    assert not failed, "a command failed on a clean database, so its SQL would be missing from the surface: " + \
        "; ".join(f"{k}: exit {r.returncode}\n{r.output}" for k, r in failed.items())
    scanned = surface(found.statements())
    name = hs.create_database()
    with hs.admin(name) as conn:
        planned = plan(conn, scanned)
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # the default before PostgreSQL 15
        conn.execute("BEGIN")
        conn.execute(f"SET LOCAL ROLE {ATTACKER}")
        conn.execute(create_sql(planned, ATTACKER))
        conn.execute("COMMIT")
    return Template(name, found, scanned, planned, time.monotonic() - t0)


@pytest.fixture(scope="session")
def template(hostile, tmp_path_factory) -> Template:
    if hostile.version not in _templates:
        _templates[hostile.version] = build_template(hostile, tmp_path_factory.mktemp(f"discovery{hostile.version}"))
    return _templates[hostile.version]


@pytest.fixture
def hostile_db(hostile, template):
    """A fresh database cloned from the template: the attacker's objects are already there."""
    name = hostile.create_database(template=template.name)
    try:
        yield name
    finally:
        hostile.drop_database(name)
        hostile.demote()  # a test that shows the attack working leaves the attacker a superuser
