"""Tables counted in the copy while pg_restore is still busy with others.

A table is counted as soon as the restore is done with it: pg_restore reported its data loaded
(committed: ``finished item … TABLE DATA``, or the next table started when one job restores), and
every index and constraint the source has on it exists in the copy — so that the count's read lock
never holds up the restore's ``ALTER TABLE … ADD PRIMARY KEY`` (which needs the table to itself).
The count is the same ``count(*)`` the drill makes afterwards (:func:`.compare.count_rows`), on one
connection of its own whose server process runs at idle priority (Linux ``SCHED_IDLE``, without
parallel workers): it only takes CPU the restore leaves idle (while its last jobs run alone, while a
worker waits). Whatever is not counted when the restore ends — the count running then is cancelled —
is counted afterwards at normal priority, as before. Only the rows loaded matter to a count: an index
or constraint not recognised here only makes a table wait.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Callable

from ..backup.dumptext import split_identifiers
from ..db import connect_url
from ..events.drill import TableCheck
from .compare import count_rows

_INDEX_TABLE = re.compile(r" ON (?:ONLY )?(.+?) USING ")
_PRESENT = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indisvalid
UNION ALL
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(k.conname) FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = k.connamespace
"""


def _idle_backend(conn, data_dir: Path) -> bool:
    """The count's server process runs only on CPU the restore leaves idle (Linux ``SCHED_IDLE``; the throwaway
    server is ours), in one process (no parallel workers, which would run at normal priority). Only a process of
    the throwaway server itself (its working directory is the data directory) is touched; False when that cannot
    be done."""
    conn.execute("SET max_parallel_workers_per_gather = 0")
    pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    try:
        if os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) != os.path.realpath(data_dir):
            return False
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        return False
    return True


def awaited(objects: dict, tables: list[str]) -> dict[str, set[str]]:
    """Per table (manifest key), the indexes and constraints (catalog_objects keys) the restore creates on it."""
    out: dict[str, set[str]] = {table: set() for table in tables}
    for name, definition in (objects.get("index") or {}).items():
        match = _INDEX_TABLE.search(definition)
        if match and match.group(1) in out:
            out[match.group(1)].add(name)
    for name in objects.get("constraint") or {}:
        table = name.rsplit(".", 1)[0]
        if table in out:
            out[table].add(name)
    return out


class CountWhileRestoring:
    """:meth:`offer` (any thread) passes the tables whose data is loaded; a thread counts those the restore is done
    with, on idle CPU; :meth:`stop` ends it and returns what was counted."""

    def __init__(self, url: str, data_dir: Path, rows: dict[str, int], exact: dict[str, int] | None, objects: dict,
                 checked: Callable[[TableCheck], None], interval_s: float = 0.25) -> None:
        """``url``, ``data_dir``: the throwaway server's (a local one: its process is put at idle priority)."""
        self.url = url
        self.data_dir = data_dir
        self.rows = rows  # manifest key -> rows in the backup
        self.exact = exact or {}
        self.checked = checked
        self.interval_s = interval_s
        self.awaited = awaited(objects, list(rows))
        self._keys = {".".join(split_identifiers(key)): key for key in rows}  # as pg_restore prints them
        self._loaded: set[str] = set()
        self.results: dict[str, TableCheck] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn = None
        self._thread = threading.Thread(target=self._run, name="migrate-tui-drill-early-count", daemon=True)

    def start(self) -> "CountWhileRestoring":
        self._thread.start()
        return self

    def offer(self, loaded: list[str]) -> None:
        """Tables whose data the restore has loaded and committed (named as pg_restore prints them)."""
        keys = {self._keys[name] for name in loaded if name in self._keys}
        with self._lock:
            self._loaded |= keys

    def _run(self) -> None:
        try:
            with connect_url(self.url, application_name="migrate-tui drill count") as conn:
                self._conn = conn
                if not _idle_backend(conn, self.data_dir):
                    return  # a count at normal priority would slow the restore more than it saves: counted afterwards
                while not self._stop.wait(self.interval_s):
                    with self._lock:
                        waiting = sorted(self._loaded - set(self.results), key=lambda t: -self.rows[t])
                    if not waiting:
                        continue
                    present = {row[0] for row in conn.execute(_PRESENT).fetchall()}
                    for table in waiting:
                        if self._stop.is_set():
                            return
                        if self.awaited[table] <= present:
                            check = TableCheck(table, self.rows[table], count_rows(conn, table), self.exact.get(table))
                            self.results[table] = check
                            self.checked(check)
        except Exception:  # noqa: BLE001 - stopped, or the copy went away: what is not counted is counted afterwards
            return
        finally:
            self._conn = None

    def cancel(self) -> None:
        """Stop at once (the running count is cancelled)."""
        self._stop.set()
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                conn.cancel_safe(timeout=5)
            except Exception:  # noqa: BLE001 - ended meanwhile
                pass

    def stop(self) -> dict[str, TableCheck]:
        """No more counts here: the one running is cancelled (on idle CPU it could wait long for a CPU; it is counted
        again afterwards at normal priority). The tables counted."""
        while self._thread.is_alive():
            self.cancel()
            self._thread.join(0.2)
        return dict(self.results)
