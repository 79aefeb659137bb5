"""A cancel during the drill's restore ends it within seconds, whatever the restore is doing: here the copy
sleeps in a CHECK for two minutes on every row (it passes at once on the source). In every format (psql for
a plain dump; pg_restore --jobs 2, whose worker processes run the statements, for custom and directory
archives) the child and its workers are stopped, the throwaway server is removed, nothing is left running."""

from __future__ import annotations

import tempfile
import threading
import time
from urllib.parse import urlsplit

import pytest
from drill_support import backup, drill_dirs, postmasters_under, private_tmp, settings  # noqa: F401 - a fixture

from migration.drill.drill import Drill
from migration.events import DrillPhase, Outcome
from migration.options import DrillOptions

pytestmark = pytest.mark.timeout(240)
SLEEP_S = 120


def slow_on_the_copy(db) -> None:
    port = urlsplit(db.server.admin_url).port
    with db.app() as conn:
        conn.execute(f"CREATE FUNCTION public.here(x int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
                     f"IF current_setting('port') <> '{port}' THEN PERFORM pg_sleep({SLEEP_S}); END IF; "
                     "RETURN true; END $$")
        conn.execute("CREATE TABLE public.placed (x int CHECK (public.here(x)))")
        conn.execute("INSERT INTO public.placed VALUES (1)")


def descendants(pid: int) -> list[int]:
    """Processes whose parent chain leads to ``pid`` (ours: psql, pg_restore and its workers)."""
    import os
    from pathlib import Path

    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(proc.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found.extend(frontier)
    return [p for p in found if p != os.getpid()]


@pytest.mark.parametrize("fmt", ["plain", "custom", "directory"])
def test_a_cancel_inside_a_long_restore_statement_ends_the_drill_in_seconds(db18, tmp_path, monkeypatch, fmt,
                                                                          private_tmp):  # noqa: F811
    import os

    db = db18  # the formats are what differ here, not the server
    slow_on_the_copy(db)
    taken = backup(db, tmp_path, fmt, **({"jobs": 2} if fmt == "directory" else {}))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    restoring = threading.Event()
    before = set(descendants(os.getpid()))  # the suite's own servers may be our children

    def emit(event) -> None:
        if isinstance(event, DrillPhase) and event.phase == "restore" and event.elapsed_ms is None:
            restoring.set()

    operation = Drill(settings(db), emit, taken.path, DrillOptions(jobs=2), keep=True)  # as the wizard: rehearsal next
    box: dict = {}
    runner = threading.Thread(target=lambda: box.update(result=operation.run()), daemon=True)
    runner.start()
    assert restoring.wait(120), "the restore did not start"
    time.sleep(3)  # the copy is inside the sleeping CHECK now (its rows arrive within a second)
    children = [p for p in descendants(os.getpid()) if p not in before]
    assert children, "the restore's child processes should be running"
    cancelled_at = time.monotonic()
    operation.cancel()
    runner.join(SLEEP_S + 30)
    took = time.monotonic() - cancelled_at
    assert not runner.is_alive(), "the drill did not end"
    assert box["result"].outcome is Outcome.CANCELLED, box["result"]
    assert took < 20, f"the cancel took {took:.0f} s: it waited for the copy's statement to end"
    assert drill_dirs(private_tmp) == [] and postmasters_under(private_tmp) == []
    assert [p for p in children if os.path.exists(f"/proc/{p}") and _not_zombie(p)] == [], \
        "a child of the restore outlived the drill"


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
