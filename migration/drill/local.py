"""The throwaway PostgreSQL a drill restores into: which local binaries can load the dump, starting one,
and removing it — on every exit path, and at the next start after a killed run.

- :func:`choose` picks, among the system PostgreSQL installations (``/usr/lib/postgresql/N``) and the
  embedded one (or only the directory ``MIGRATE_DRILL_PG_BIN`` names, checked: :mod:`.pg_bin`), the lowest
  major at least as new as the dump's source whose share directory has every extension the dump creates;
  when none has them all it names what is missing, with the fix.
- :class:`LocalCopy` starts it (:class:`migration.pgserver.LocalServer`, in a temp directory named
  ``migrate-tui-drill-<pid>-…``), tuned for a one-off bulk load (no fsync, minimal WAL, no autovacuum),
  and removes it with an immediate shutdown (there is nothing to keep).
- :func:`remove_stale` finds the directories of drills whose process is gone (kill -9, a power cut),
  stops a postmaster still running from one (its working directory is the data directory) and
  deletes it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..children import PROBE_TIMEOUT_S, child_environ
from ..errors import MigrateError, OperatorError
from ..pgserver import SYSTEM_PG_ROOT, LocalServer, embedded_bin_dir, scratch_dir
from . import pg_bin

PREFIX = "migrate-tui-drill-"
REHEARSAL_PREFIX = "migrate-tui-rehearsal-"  # the rehearsal's private directory for its safety copy
_STALE = re.compile(r"^migrate-tui-(?:drill|rehearsal)-(\d+)-")
# A throwaway copy for one bulk load: nothing needs to survive a crash, nothing replicates, nothing vacuums.
SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "wal_level=minimal", "max_wal_senders=0",
            "autovacuum=off", "max_wal_size=4GB", "checkpoint_timeout=30min", "maintenance_work_mem=256MB",
            "max_locks_per_transaction=1024")  # a plain dump restores in one transaction: a lock per object


@dataclass(frozen=True)
class Candidate:
    bin_dir: Path
    major: int
    version: str
    source: str  # "system", "embedded" or "MIGRATE_DRILL_PG_BIN"
    extensions: frozenset[str]

    def describe(self) -> str:
        return f"PostgreSQL {self.version} ({self.source}, {self.bin_dir})"


def _version(bin_dir: Path) -> tuple[str, int] | None:
    try:
        out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                             stdin=subprocess.DEVNULL, env=child_environ()).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", out)
    if not match:
        return None
    return match.group(1) + (f".{match.group(2)}" if match.group(2) else ""), int(match.group(1))


def _extensions(bin_dir: Path) -> frozenset[str]:
    try:
        share = subprocess.run([str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                               stdin=subprocess.DEVNULL, env=child_environ()).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        share = ""
    folder = Path(share) / "extension" if share else bin_dir.parent / "share" / "extension"
    try:
        return frozenset(p.name[:-len(".control")] for p in folder.glob("*.control"))
    except OSError:
        return frozenset()


@functools.lru_cache(maxsize=4)
def candidates(system_root: Path | None = SYSTEM_PG_ROOT, embedded: bool = True) -> tuple[Candidate, ...]:
    """Every local PostgreSQL that can run a throwaway server (postgres, initdb and pg_ctl side by side)."""
    dirs: list[tuple[Path, str]] = []
    if system_root is not None and system_root.is_dir():
        dirs += [(d, "system") for d in sorted(system_root.glob("*/bin"))]
    if embedded and (bin_dir := embedded_bin_dir()) is not None:
        dirs.append((bin_dir, "embedded"))
    found = []
    for bin_dir, source in dirs:
        if not all((bin_dir / name).is_file() for name in ("postgres", "initdb", "pg_ctl")):
            continue
        version = _version(bin_dir)
        if version is not None:
            found.append(Candidate(bin_dir, version[1], version[0], source, _extensions(bin_dir)))
    return tuple(found)


def override() -> Candidate | OperatorError | None:
    """The directory ``MIGRATE_DRILL_PG_BIN`` names as the only candidate (checked, then probed like the others),
    why it cannot be used, or None when it is not set."""
    value = pg_bin.chosen()
    if value is None:
        return None
    bin_dir, problem = pg_bin.check(value)
    if problem is not None:
        return problem
    version = _version(bin_dir)
    if version is None:
        return OperatorError(f"{pg_bin.ENV}={value} cannot be used for the drill's throwaway PostgreSQL: "
                             f"{bin_dir / 'postgres'} --version does not name a PostgreSQL version.",
                             f"Point {pg_bin.ENV} at a PostgreSQL bin directory, or unset it.")
    return Candidate(bin_dir, version[1], version[0], pg_bin.ENV, _extensions(bin_dir))


def choose(source_major: int, extensions: list[str] | tuple[str, ...],
           found: tuple[Candidate, ...] | None = None) -> tuple[Candidate | None, OperatorError | None, tuple[str, ...]]:
    """(the server to restore into, or None with why and the extensions that are missing everywhere).
    ``found``: the local servers to choose from; by default MIGRATE_DRILL_PG_BIN's when set, else :func:`candidates`."""
    if found is None:
        chosen = override()
        if isinstance(chosen, OperatorError):
            return None, chosen, ()
        found = candidates() if chosen is None else (chosen,)
    new_enough = [c for c in found if c.major >= source_major]
    if not new_enough:
        have = ", ".join(c.describe() for c in found) or "none"
        return None, OperatorError(
            f"No local PostgreSQL can load a dump of PostgreSQL {source_major} (a server loads dumps of its own "
            f"major version or older; found: {have}).",
            f"Install PostgreSQL {source_major} or newer (e.g. apt install postgresql-{source_major}), or drill on "
            "a scratch server you provide: --drill-url URL."), ()
    needed = [e for e in extensions if e != "plpgsql"]
    complete = [c for c in new_enough if all(e in c.extensions for e in needed)]
    if complete:
        return min(complete, key=lambda c: (c.major, c.source != "system")), None, ()
    closest = min(new_enough, key=lambda c: sum(e not in c.extensions for e in needed))
    missing = tuple(e for e in needed if e not in closest.extensions)
    names = ", ".join(missing)
    looked = "; ".join(f"{c.describe()} lacks {', '.join(e for e in needed if e not in c.extensions)}"
                       for c in new_enough)
    return None, OperatorError(
        f"The backup cannot be restored here: it needs the extension{'s' if len(missing) > 1 else ''} {names}, "
        f"which no local PostgreSQL has ({looked}).",
        f"Install {names} for PostgreSQL {closest.major} (e.g. apt install postgresql-{closest.major}-{missing[0]}, "
        "or the package your distribution names), or drill on a scratch server that has it: --drill-url URL.",
        detail=f"the dump runs CREATE EXTENSION {names}"), missing


class LocalCopy:
    """A throwaway local server holding the restored database; :meth:`cleanup` removes all of it."""

    scratch = False

    def __init__(self, candidate: Candidate, dbname: str) -> None:
        self.candidate = candidate
        self.dbname = dbname
        self.server = LocalServer(candidate.bin_dir, settings=SETTINGS, prefix=f"{PREFIX}{os.getpid()}-")

    @property
    def major(self) -> int:
        return self.candidate.major

    @property
    def bin_dir(self) -> Path:
        return self.candidate.bin_dir

    @property
    def root(self) -> Path | None:
        return self.server.root

    def describe(self) -> str:
        return f"throwaway PostgreSQL {self.candidate.version} ({self.candidate.bin_dir})"

    def start(self) -> "LocalCopy":
        try:
            self.server.start()
        except subprocess.CalledProcessError as exc:
            self.cleanup()
            program = Path(str(exc.cmd[exc.cmd.index("--") + 1] if "--" in exc.cmd else exc.cmd[0])).name
            lines = [line for line in (exc.stderr or exc.stdout or "").splitlines() if line.strip()]
            raise MigrateError(OperatorError(
                f"The throwaway PostgreSQL {self.candidate.version} could not be started ({program} failed); "
                "nothing was restored.",
                f"See the detail. The server runs in {scratch_dir()}: it needs room there and, when "
                "migrate-tui runs as root, must be reachable by its unprivileged OS user. Or drill on a scratch "
                "server: --drill-url URL.", detail="; ".join(lines[-3:]) or None)) from None
        except BaseException:
            self.cleanup()
            raise
        return self

    def admin_url(self, dbname: str | None = None) -> str:
        return self.server.url(dbname or self.dbname)

    def url_as(self, role: str, password: str) -> str:
        return self.server.url(self.dbname, role, password)

    def cleanup(self) -> bool:
        """Stop the server at once (immediate shutdown: nothing to keep) and delete its directory; True when gone."""
        server, root = self.server, self.server.root
        if root is None:
            return True
        if (root / "data" / "postmaster.pid").exists():
            try:
                server._run("pg_ctl", "-D", str(server.data_dir), "-m", "immediate", "-w", "-t", "30", "stop",
                            check=False)
            except (OSError, subprocess.SubprocessError):
                _stop_postmaster(root / "data")
        server._started = False
        shutil.rmtree(root, ignore_errors=True)
        server.root = None
        return not root.exists()


def _postmaster(data: Path) -> int | None:
    """The pid of a postmaster running from this data directory, if any."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0].strip())
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return None
    return pid if os.path.realpath(cwd) == os.path.realpath(data) else None


def _stop_postmaster(data: Path, timeout: float = 15.0) -> None:
    pid = _postmaster(data)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _postmaster(data) == pid:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _server_users() -> set[int]:
    """Who may own a drill's directory: the operator, and as root the server's OS user."""
    import pwd

    users = {os.geteuid()}
    if os.geteuid() == 0:
        for name in ("postgres", "embedded_postgres"):
            try:
                users.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
    return users


def remove_stale(tmp: str | None = None) -> list[str]:
    """Throwaway servers of drills (and rehearsal directories) whose process is gone: stopped and deleted;
    their paths."""
    # The servers live in scratch_dir(), the rehearsals' private directories in the temp directory: both looked at.
    roots = [Path(tmp)] if tmp else list(dict.fromkeys([scratch_dir(), Path(tempfile.gettempdir())]))
    entries = []
    for root in roots:
        try:
            entries += list(os.scandir(root))
        except OSError:
            continue
    owners = _server_users()
    removed = []
    for entry in entries:
        match = _STALE.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid not in owners:
                continue
        except OSError:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        _stop_postmaster(Path(entry.path) / "data")
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed
