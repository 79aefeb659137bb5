"""The Target screen with a host list in DATABASE_URL names the host that answered (Pilot, real PostgreSQL 18)."""

from __future__ import annotations

import re

import pytest
from conftest import flat, make_app, target_ready
from harness import CANARY

from migration.pgserver import free_port
from migration.settings import load_settings
from tui.widgets.facts import FactList

pytestmark = pytest.mark.timeout(60)


async def test_the_server_row_names_the_host_that_answered(db18):
    host, port = re.search(r"@([^:/]+):(\d+)/", db18.url).groups()
    closed = free_port()
    url = f"postgresql://app_user:{CANARY}@127.0.0.1:{closed},{host}:{port}/{db18.name}"
    app = make_app(load_settings(database_url=url, environ={}))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await target_ready(app, pilot)
        text = flat(screen.query_one("#target-facts", FactList).text)
    assert f"at {host}:{port} (the first listed host that answered)" in text
    assert f"postgresql://app_user:****@127.0.0.1:{closed},{host}:{port}/{db18.name}" in text
    assert CANARY not in text
