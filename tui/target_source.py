"""Where the wizard's settings come from: DATABASE_URL (.env) or the embedded demo database.

A source is called once from a worker thread (it may block: the demo database takes about a
second to start) and returns :class:`migration.settings.Settings` or raises
:class:`migration.errors.ConfigError`. It is given a ``load(database_url=None)`` function that
turns the operator's options into Settings (the console script builds it from the command line),
so the wizard reads the same options as every headless command. ``close()`` is safe from any
thread, at any time, any number of times: a demo database still starting is stopped as soon as
its start returns.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from migration.settings import Settings

Load = Callable[..., "Settings"]


def _default_load(database_url: str | None = None) -> "Settings":
    from migration.settings import load_settings

    return load_settings(database_url=database_url)


class SettingsSource:
    """Settings from the environment and .env (through ``load``)."""

    description = "Reading DATABASE_URL"

    def __init__(self, load: Load | None = None) -> None:
        self._load = load or _default_load

    def __call__(self) -> "Settings":
        return self._load()

    def close(self) -> None:
        pass


class DemoSource(SettingsSource):
    """Starts the embedded demo database (migration.demo.DemoDatabase) and targets it."""

    description = "Starting the demo database (embedded PostgreSQL)"

    def __init__(self, load: Load | None = None) -> None:
        super().__init__(load)
        self._lock = threading.Lock()
        self._closed = False
        self.demo = None

    def __call__(self) -> "Settings":
        from migration.demo import DemoDatabase
        from migration.errors import ConfigError

        with self._lock:  # close() waits for a start in progress, then stops it
            if self._closed:
                raise ConfigError("The wizard is closing.", "Start it again.")
            self.demo = DemoDatabase()
            url = self.demo.start()
        return self._load(database_url=url)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            demo, self.demo = self.demo, None
        if demo is not None:
            demo.stop()


def fixed(settings: "Settings") -> SettingsSource:
    """A source of settings already known (tests, screenshots)."""
    return SettingsSource(lambda database_url=None: settings)
