"""The guide's "Manual Rollback", made safe, and its undo.

- :mod:`.preview` — what a rollback would drop, read from the catalog without side effects;
- :mod:`.dependents` — what CASCADE drops besides the table: owners, how the copy keeps each, their order;
- :mod:`.safety_copy` — ``pg_dump --table`` of the table and what recreates each dependent, verified, with a
  manifest of its sections;
- :mod:`.drop` — :class:`Rollback`: the safety copy, the lock-aware DROP, the verification;
- :mod:`.lock_watch` — who the waiting DROP is blocked by;
- :mod:`.restore` — :class:`Restore`: the safety copy back (the table, then each dependent), only if it is the
  file that was written.
"""

from .drop import Rollback, read_preview
from .restore import Restore

__all__ = ["Restore", "Rollback", "read_preview"]
