"""The one input of the snapshots that cannot come from a real run: the settings the wizard starts with.

Every event and overview a snapshot replays is recorded from the real engine (tests/tui/recorded/).
``fixed_settings()`` stays hand-written because it is not an engine output but the operator's input: its
DATABASE_URL names a target that does not exist (``db.internal.example``) and carries the suite's canary
password, so every picture shows one fixed, masked address and ``test_no_snapshot_shows_the_password`` can
look for the password. Nothing connects with it: the screens get their data from the recorded events, whose
volatile server address is normalized to this one (recorded/serial.py).
"""

from __future__ import annotations

from harness import CANARY

from migration.settings import load_settings

FIXED_URL = f"postgresql://shop_app:{CANARY}@db.internal.example:5432/shop"


def fixed_settings(**overrides):
    return load_settings(database_url=FIXED_URL, environ={"CRON_SECRET": "s3cret-value-for-cron"}, **overrides)
