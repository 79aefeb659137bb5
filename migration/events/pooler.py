"""The event every operation emits when a connection pooler sits between migrate-tui and the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..pooler import PoolerReport


@dataclass(frozen=True)
class PoolerDetected:
    """``pooler`` (its mode and why) and what it means for ``operation`` (check, backup, migrate, rollback,
    restore), as one line for the printers, the wizard and the audit log."""

    operation: str
    pooler: PoolerReport
    text: str
