"""``MIGRATE_DRILL_PG_BIN``: the one PostgreSQL bin directory a drill may use, chosen by the operator.

Without it a drill looks at the system installations (``/usr/lib/postgresql/N/bin``) and the embedded
wheel (:func:`migration.drill.local.candidates`). With it, that directory is the only candidate: it must
hold ``postgres``, ``initdb`` and ``pg_ctl``, and nobody but the operator and root may be able to change
what runs from it — the directory, each program (links followed) and every directory above them are owned
by the operator or root and not writable by group or others (a sticky directory above, like ``/tmp``, is
fine: nobody else can rename or remove what is not theirs there). It is then probed like the others
(:func:`migration.drill.local.override`): ``postgres --version`` and the extensions of its share
directory. The drill also takes its ``psql`` / ``pg_restore`` from there when they are present.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path
from typing import Mapping

from ..errors import OperatorError

ENV = "MIGRATE_DRILL_PG_BIN"
REQUIRED = ("postgres", "initdb", "pg_ctl")
ALSO_RUN = ("pg_config", "psql", "pg_restore")  # run from there too when present


def chosen(environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(ENV, "").strip()
    return value or None


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def changeable(path: Path) -> str | None:
    """Why another user could change what ``path`` is (links followed), or None: it, or a directory above it,
    belongs to someone else or is writable by group or others (above it: unless sticky)."""
    me = os.geteuid()
    real = Path(os.path.realpath(path))
    for depth, place in enumerate([real, *real.parents]):
        st = os.stat(place)
        if st.st_uid not in (0, me):
            return f"{place} belongs to {_owner(st.st_uid)}"
        if st.st_mode & 0o022 and not (depth > 0 and st.st_mode & stat.S_ISVTX):
            return f"{place} can be written by other users (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def check(value: str) -> tuple[Path | None, OperatorError | None]:
    """The directory ``value`` names, when a drill may run its programs; else why not, with the fix."""
    fix = (f"Point {ENV} at a PostgreSQL bin directory holding postgres, initdb and pg_ctl that only you or root "
           f"can change (e.g. /usr/lib/postgresql/18/bin), or unset it to use the installed PostgreSQL.")

    def refused(why: str) -> tuple[None, OperatorError]:
        return None, OperatorError(f"{ENV}={value} cannot be used for the drill's throwaway PostgreSQL: {why}.", fix)

    bin_dir = Path(value)
    if not bin_dir.is_absolute():
        return refused("it is not an absolute path")
    if not bin_dir.is_dir():
        return refused("it is not a directory")
    missing = [name for name in REQUIRED if not (bin_dir / name).is_file() or not os.access(bin_dir / name, os.X_OK)]
    if missing:
        return refused(f"it has no runnable {', '.join(missing)}")
    try:
        for path in [bin_dir, *(bin_dir / name for name in REQUIRED + ALSO_RUN if (bin_dir / name).exists())]:
            problem = changeable(path)
            if problem is not None:
                return refused(problem)
    except OSError as exc:
        return refused(f"{exc.filename}: {exc.strerror}")
    return bin_dir, None
