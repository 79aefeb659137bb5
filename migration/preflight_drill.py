"""The checklist's rows about proving the backup: the backup format for the database's size, whether a local
PostgreSQL can load the dump (its major, the extensions the database uses), room and time for the drill.

Read-only, like the rest of the checklist: the source's extensions come from ``pg_extension``.
"""

from __future__ import annotations

from typing import Iterator

from .backup.progress import human_bytes
from .drill import estimate
from .drill.local import choose
from .events import CheckResult, Status
from .options import BackupOptions, DrillOptions

GROUP = "Drill"
RECOMMEND_DIRECTORY_BYTES = 5 * 1024 ** 3  # above this, --format directory --jobs N pays off (README "Benchmarks")


def _row(key: str, name: str, status: Status, detail: str, hint: str = "") -> CheckResult:
    return CheckResult(key, "Backup" if key == "backup_format" else GROUP, name, status, detail, hint)


def check_backup_format(options: BackupOptions, database_bytes: int) -> CheckResult:
    """Its own row in the Backup group: which format suits a database of this size."""
    name = "Backup format"
    size = human_bytes(database_bytes)
    if options.fmt == "directory":
        return _row("backup_format", name, Status.OK, f"directory, {options.jobs} parallel jobs ({size} database)")
    if database_bytes > RECOMMEND_DIRECTORY_BYTES:
        return _row("backup_format", name, Status.WARNING,
                    f"{options.fmt}, one job, for a {size} database: the backup, its verification and the drill "
                    "each read it with one process",
                    "Use --format directory --jobs N (N up to the cores of this machine and the server): pg_dump and "
                    "pg_restore then work on several tables at once.")
    return _row("backup_format", name, Status.OK, f"{options.fmt} ({size} database; --format directory --jobs N pays "
                f"off above {human_bytes(RECOMMEND_DIRECTORY_BYTES)})")


def check_drill(conn, source_major: int, database_bytes: int, backup: BackupOptions,
                drill: DrillOptions) -> Iterator[CheckResult]:
    """The drill's rows: skipped (and why), or where it will run, with room and time for it."""
    if not drill.wanted(database_bytes):
        why = "--skip-drill" if drill.enabled is False else (
            f"the database is {human_bytes(database_bytes)}, above the drill size limit "
            f"{human_bytes(drill.max_bytes)}")
        yield _row("drill", "Restore drill", Status.WARNING, f"will not run ({why}): the backup is verified but not "
                   "restored, and the migration is not rehearsed on a copy",
                   "Pass --drill to restore it on a throwaway copy and rehearse the migration there first "
                   "(or --drill-max-size to raise the limit).")
        return
    if drill.drill_url:
        yield _row("drill", "Restore drill", Status.OK, "on the scratch database given with --drill-url (checked when "
                   "the drill starts: another server than the target's, empty)")
        return
    extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall()]
    candidate, problem, _ = choose(source_major, extensions)
    if candidate is None:
        yield _row("drill", "Restore drill", Status.FAILURE, problem.message,
                   problem.hint + " Or skip the drill knowingly: --skip-drill.")
        return
    used = [e for e in extensions if e != "plpgsql"]
    yield _row("drill", "Restore drill", Status.OK, f"into a throwaway {candidate.describe()}"
               + (f", which has {', '.join(used)}" if used else "") + "; then the migration is rehearsed on it"
               + ("" if drill.rehearse else " (not: --skip-rehearsal)"))
    yield check_drill_room(database_bytes, backup, drill)


def check_drill_room(database_bytes: int, backup: BackupOptions, drill: DrillOptions,
                     free: int | None = None) -> CheckResult:
    name = "Drill room and time"
    where = estimate.temp_dir()
    free = estimate.free_bytes(where) if free is None else free
    need = estimate.room_needed(database_bytes)
    took = estimate.clock(estimate.seconds(database_bytes, backup.fmt, drill.jobs))
    detail = (f"needs about {human_bytes(need)} in {where} ({human_bytes(free)} free); takes about {took} "
              f"for {human_bytes(database_bytes)}")
    if free < need:
        return _row("drill_room", name, Status.FAILURE, detail + " — the restored copy would not fit",
                    "Free space there, point TMPDIR at a bigger disk, or use --drill-url on a scratch server; or "
                    "skip the drill knowingly: --skip-drill.")
    if free < 2 * need:
        return _row("drill_room", name, Status.WARNING, detail + " — little headroom",
                    "Watch the free space while the drill runs, or point TMPDIR at a bigger disk.")
    return _row("drill_room", name, Status.OK, detail)
