"""Helpers for the wizard tests: build the app around a test database and drive it."""

from __future__ import annotations

import pytest

from tui.app import MigrateApp

SIZES = [(100, 30), (80, 24)]


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def size(request):
    return request.param


async def settle(app, pilot) -> None:
    """Wait until every worker has finished and the messages they posted are handled."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def target_ready(app, pilot):
    """Wait for the settings and the server facts to fill in on the Target screen."""
    await settle(app, pilot)
    screen = app.target_screen
    assert screen.overview is not None, "the overview never arrived"
    return screen


def make_app(settings, **kwargs) -> MigrateApp:
    return MigrateApp(settings=settings, **kwargs)
