"""Where the wizard's settings come from: DATABASE_URL (.env) or the embedded demo database.

A source is called once from a worker thread (it may block: the demo database
takes about a second to start) and returns :class:`migration.settings.Settings`
or raises :class:`migration.errors.ConfigError`. ``close()`` is safe from any
thread, at any time, any number of times: a demo database still starting is
stopped as soon as its start returns.
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from migration.settings import Settings


class SettingsSource:
    """Settings from the command line, the environment and .env."""

    description = "Reading DATABASE_URL"

    def __init__(self, args: argparse.Namespace | None = None,
                 factory: Callable[[], "Settings"] | None = None) -> None:
        self.args = args or argparse.Namespace()
        self._factory = factory

    def __call__(self) -> "Settings":
        if self._factory is not None:
            return self._factory()
        from migration.commands.common import settings_from_args

        return settings_from_args(self.args)

    def close(self) -> None:
        pass


class DemoSource(SettingsSource):
    """Starts the embedded demo database (migration.demo.DemoDatabase) and targets it."""

    description = "Starting the demo database (embedded PostgreSQL)"

    def __init__(self, args: argparse.Namespace | None = None) -> None:
        super().__init__(args)
        self._lock = threading.Lock()
        self._closed = False
        self.demo = None

    def __call__(self) -> "Settings":
        from migration.commands.common import settings_from_args
        from migration.demo import DemoDatabase
        from migration.errors import ConfigError

        with self._lock:  # close() waits for a start in progress, then stops it
            if self._closed:
                raise ConfigError("The wizard is closing.", "Start it again.")
            self.demo = DemoDatabase()
            url = self.demo.start()
        return settings_from_args(self.args, database_url=url)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            demo, self.demo = self.demo, None
        if demo is not None:
            demo.stop()


def source_for(args: argparse.Namespace) -> SettingsSource:
    return DemoSource(args) if getattr(args, "demo", False) else SettingsSource(args)
