"""What the snapshots cannot take from a real run: the app's own settings and an unreachable target.

Every event a snapshot replays is recorded from the real engine (tests/tui/recorded/). Two inputs stay here:

- ``fixed_settings()``: the settings the wizard is started with. Its DATABASE_URL names a target that does
  not exist (``db.internal.example``) and carries the suite's canary password, so the pictures show one
  fixed, masked address and ``test_no_snapshot_shows_the_password`` can look for the password. Nothing
  connects with it: the screens get their data from the recorded events, whose volatile server address is
  normalized to this one (recorded/serial.py).
- ``unreachable(error)``: the Target screen for a server that never answers. A real unreachable host
  takes the connect timeout and its message names this machine's resolver and addresses, so the error
  is written out by the test that shows it.
"""

from __future__ import annotations

from harness import CANARY

from migration.errors import OperatorError
from migration.overview import TargetOverview
from migration.schema import TABLE
from migration.settings import load_settings

FIXED_URL = f"postgresql://shop_app:{CANARY}@db.internal.example:5432/shop"


def fixed_settings(**overrides):
    return load_settings(database_url=FIXED_URL, environ={"CRON_SECRET": "s3cret-value-for-cron"}, **overrides)


def unreachable(error: OperatorError):
    """A ``describe`` for a target that could not be reached: no facts, no report, the error."""
    def describe(settings):
        return TargetOverview(settings.masked_url, settings.schema, TABLE.name, settings.optional_present(),
                              None, None, error)
    return describe
