"""The restored copy read back and compared with the backup's manifest: rows per table, objects, sequence values.

Everything here reads the throwaway copy only; the source's side was recorded in the manifest while
the dump was written (rows counted from the dump itself, objects from the source's catalog).
Tables are counted with ``count(*)`` on several connections at once, the largest first.
"""

from __future__ import annotations

import threading
from typing import Callable

from psycopg import sql

from ..backup.dumptext import split_identifiers
from ..catalog_objects import compare, read_objects
from ..db import connect_url
from ..events.drill import Difference, TableCheck


class RowCounter:
    """``count(*)`` of every table of the backup in the copy, on ``jobs`` connections; :meth:`cancel` stops them."""

    def __init__(self, url: str, jobs: int) -> None:
        self.url = url
        self.jobs = max(1, jobs)
        self._conns: list = []
        self._lock = threading.Lock()
        self._cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            for conn in self._conns:
                if not conn.closed:
                    try:
                        conn.cancel_safe(timeout=5)
                    except Exception:  # noqa: BLE001 - ended meanwhile
                        pass

    def count(self, rows: dict[str, int], exact: dict[str, int] | None, checked: Callable[[TableCheck], None],
              check_cancel: Callable[[], None]) -> list[TableCheck]:
        pending = sorted(rows, key=lambda name: -rows[name])
        results: dict[str, TableCheck] = {}
        failures: list[BaseException] = []
        lock = threading.Lock()

        def work() -> None:
            try:
                with connect_url(self.url, application_name="migrate-tui drill count") as conn:
                    with self._lock:
                        if self._cancelled:
                            return
                        self._conns.append(conn)
                    while True:
                        with lock:
                            if not pending or failures:
                                return
                            name = pending.pop(0)
                        check_cancel()
                        restored = _count(conn, name)
                        check = TableCheck(name, rows[name], restored, (exact or {}).get(name))
                        with lock:
                            results[name] = check
                        checked(check)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                with lock:
                    failures.append(exc)

        threads = [threading.Thread(target=work, name=f"migrate-tui-drill-count-{i}", daemon=True)
                   for i in range(min(self.jobs, max(1, len(rows))))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        check_cancel()
        return [results[name] for name in sorted(results)]


def _count(conn, name: str) -> int | None:
    """Rows of one table of the copy (only its own rows, as pg_dump dumped them); None when it is missing."""
    from psycopg import errors

    parts = split_identifiers(name)
    conn.begin("READ ONLY")
    try:
        query = sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(*parts))
        return int(conn.execute(query).fetchone()[0])
    except errors.UndefinedTable:
        return None
    finally:
        conn.execute("ROLLBACK")


def sequence_differences(url: str, expected: dict[str, list]) -> list[Difference]:
    """Each sequence's value in the copy against the value the dump set (``setval``)."""
    out = []
    with connect_url(url, application_name="migrate-tui drill compare") as conn:
        for name, (value, called) in sorted(expected.items()):
            parts = split_identifiers(name)
            conn.begin("READ ONLY")
            try:
                row = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
                    sql.Identifier(*parts))).fetchone()
            except Exception:  # noqa: BLE001 - a missing sequence is reported by the objects' comparison
                row = None
            finally:
                conn.execute("ROLLBACK")
            if row is not None and (int(row[0]), bool(row[1])) != (int(value), bool(called)):
                out.append(Difference("sequence value", name, f"{row[0]} in the copy, {value} in the backup"))
    return out


def object_differences(url: str, source: dict, same_major: bool) -> tuple[list[Difference], list[str]]:
    with connect_url(url, application_name="migrate-tui drill compare") as conn:
        copy = read_objects(conn)
    return compare(source, copy, same_major=same_major)
