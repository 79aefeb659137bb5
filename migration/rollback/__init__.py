"""The guide's "Manual Rollback", made safe, and its undo.

- :mod:`.preview` — what a rollback would drop, read from the catalog without side effects;
- :mod:`.safety_copy` — ``pg_dump --table`` of just the table, verified, with a manifest;
- :mod:`.drop` — :class:`Rollback`: the safety copy, the lock-aware DROP, the verification;
- :mod:`.lock_watch` — who the waiting DROP is blocked by;
- :mod:`.restore` — :class:`Restore`: the safety copy back, only if it is the file that was written.
"""

from .drop import Rollback, read_preview
from .restore import Restore

__all__ = ["Restore", "Rollback", "read_preview"]
