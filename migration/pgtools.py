"""Finding and running pg_dump / pg_restore: version match, password handling, error mapping.

The password reaches a child process only through a passfile of its own
(:mod:`migration.children`); argv carries a password-less conninfo string and
``--no-password``, so nothing secret shows in ``/proc/<pid>/cmdline`` or ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import quote

from .children import PROBE_TIMEOUT_S, child_environ
from .errors import OperatorError
from .pgserver import SYSTEM_PG_ROOT, embedded_bin_dir
from .redact import redact
from .settings import Settings
from .url import conninfo, plain_url

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
ENV_OVERRIDE = {"pg_dump": "PG_DUMP", "pg_restore": "PG_RESTORE"}
# conninfo keys that carry secrets: never put into argv
_SECRET_KEYS = ("password", "sslpassword")


@dataclass(frozen=True)
class PgTool:
    """One pg_dump / pg_restore binary and its version."""

    name: str
    path: Path
    version: str  # "18.6"
    major: int
    source: str  # where it was found: PG_DUMP, PATH, system, embedded

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.path})"


@dataclass(frozen=True)
class ToolSearch:
    """The result of looking for a tool: the chosen one (if any), everything found, and why."""

    name: str
    chosen: PgTool | None
    found: tuple[PgTool, ...]
    override: str | None = None  # the PG_DUMP / PG_RESTORE value when set
    problem: OperatorError | None = None


_probed: dict[tuple, tuple[str, int] | None] = {}  # tool_version's answers, by what they depend on
_probing = threading.Lock()  # guards _probe_locks
_probe_locks: dict[tuple, threading.Lock] = {}


def _probe_key(path: Path, env: dict[str, str]) -> tuple | None:
    """What ``path --version`` depends on: the file (and the one a link leads to: device, inode, size, mtime,
    ctime), PostgreSQL's installed versions (Debian's ``pg_wrapper`` picks among them) and the child's
    environment. None when the file cannot be read (then it is not cached)."""
    def identity(target) -> tuple:
        info = os.stat(target)
        return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns

    try:
        key = (str(path), identity(path), os.path.realpath(path), tuple(sorted(env.items())))
        root = SYSTEM_PG_ROOT
        return key + ((identity(root) if root is not None and root.is_dir() else None),)
    except OSError:
        return None


def tool_version(path: Path) -> tuple[str, int] | None:
    """("18.6", 18) from ``path --version``; None when it does not run.

    Asked once per binary and process (a fleet run asks for every target): the answer is kept for as long as
    the file, the file a link leads to, the installed PostgreSQL versions and the environment stay the same."""
    env = child_environ()
    key = _probe_key(path, env)
    if key is not None and key in _probed:
        return _probed[key]
    if key is None:
        return _run_version(path, env)
    with _probing:
        lock = _probe_locks.setdefault(key, threading.Lock())
    with lock:  # a fleet's targets ask at once: one probe of each binary, the others wait for its answer
        if key in _probed:
            return _probed[key]
        answer = _run_version(path, env)
        if answer is not None:
            _probed[key] = answer
    return answer


def _run_version(path: Path, env: dict[str, str]) -> tuple[str, int] | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                             stdin=subprocess.DEVNULL, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    major = int(match.group(1))
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return version, major


class Locator:
    """Where to look for PostgreSQL client tools. Tests narrow it down to nothing."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, system_root: Path | None = SYSTEM_PG_ROOT,
                 embedded: bool = True) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.system_root = system_root
        self.embedded = embedded

    def _candidates(self, name: str) -> Iterator[tuple[Path, str]]:
        on_path = shutil.which(name, path=self.environ.get("PATH", ""))
        if on_path:
            yield Path(on_path), "PATH"
        if self.system_root is not None and self.system_root.is_dir():
            for bin_dir in sorted(self.system_root.glob("*/bin"), reverse=True):
                yield bin_dir / name, "system"
        if self.embedded:
            bin_dir = embedded_bin_dir()
            if bin_dir is not None:
                yield bin_dir / name, "embedded"

    def find(self, name: str = "pg_dump", server_major: int | None = None) -> ToolSearch:
        """The tool to use: the override when set, else the lowest major >= the server's.

        The lowest matching major is the closest to the server (the distribution's build,
        usually with SSL support); without a known server version, the newest wins.
        """
        override = self.environ.get(ENV_OVERRIDE.get(name, ""), "").strip() or None
        if override:
            path = Path(override)
            version = tool_version(path) if path.is_file() and os.access(path, os.X_OK) else None
            if version is None:
                return ToolSearch(name, None, (), override, OperatorError(
                    f"{ENV_OVERRIDE[name]}={override} is not a runnable {name}.",
                    f"Point {ENV_OVERRIDE[name]} at a {name} binary (e.g. /usr/lib/postgresql/18/bin/{name}) "
                    f"or unset it to search PATH and /usr/lib/postgresql."))
            tool = PgTool(name, path, version[0], version[1], ENV_OVERRIDE[name])
            return ToolSearch(name, tool, (tool,), override, _too_old([tool], server_major))
        found: list[PgTool] = []
        seen: set[Path] = set()
        for path, source in self._candidates(name):
            try:
                real = path.resolve()
            except OSError:
                continue
            if real in seen or not path.is_file():
                continue
            seen.add(real)
            version = tool_version(path)
            if version:
                found.append(PgTool(name, path, version[0], version[1], source))
        return self.decide(ToolSearch(name, None, tuple(found)), server_major)

    def decide(self, search: ToolSearch, server_major: int | None) -> ToolSearch:
        """The choice among the tools ``search`` found, for this server version; none is run again."""
        name, found = search.name, list(search.found)
        if search.override is not None:
            if search.chosen is None:
                return search
            return dataclasses.replace(search, problem=_too_old([search.chosen], server_major))
        if not found:
            return ToolSearch(name, None, (), None, OperatorError(
                f"No {name} found (looked in PATH, {self.system_root}/*/bin and the embedded PostgreSQL).",
                f"Install the PostgreSQL client (e.g. apt install postgresql-client-{server_major or 18}) "
                f"or set {ENV_OVERRIDE[name]}=/path/to/{name}."))
        usable = [t for t in found if server_major is None or t.major >= server_major]
        if not usable:
            return ToolSearch(name, None, tuple(found), None, _too_old(found, server_major))
        if server_major is None:
            chosen = max(usable, key=lambda t: t.major)
        else:
            chosen = min(usable, key=lambda t: t.major)
        return ToolSearch(name, chosen, tuple(found))


def _too_old(tools: list[PgTool], server_major: int | None) -> OperatorError | None:
    if server_major is None or any(t.major >= server_major for t in tools):
        return None
    newest = max(tools, key=lambda t: t.major)
    name = newest.name
    return OperatorError(
        f"{name} {newest.version} is older than the server (PostgreSQL {server_major}); "
        f"{name} refuses to dump a newer server.",
        f"Install a {name} of version {server_major} or later (e.g. apt install postgresql-client-{server_major}) "
        f"and point {ENV_OVERRIDE[name]} at it, e.g. {ENV_OVERRIDE[name]}=/usr/lib/postgresql/{server_major}/bin/{name}.")


def public_conninfo(settings: Settings, application_name: str = "migrate-tui-backup") -> str:
    """The connection string for argv: everything but the password."""
    plain = plain_url(settings.database_url)
    if plain is not None:  # read without loading libpq (see settings.plain_url)
        params = {k: v for k, v in plain.params if k != "application_name"}
        params.setdefault("connect_timeout", str(settings.connect_timeout_s))
        params["application_name"] = quote(application_name, safe="")
        return plain.without_password.split("?", 1)[0] + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    from psycopg.conninfo import make_conninfo

    params = {k: v for k, v in conninfo(settings.database_url).items() if k not in _SECRET_KEYS}
    if settings.password:  # our passfile carries it: a passfile= in the URL would take precedence
        params.pop("passfile", None)
    params.setdefault("connect_timeout", str(settings.connect_timeout_s))
    params["application_name"] = application_name
    return make_conninfo("", **params)


# --- pg_dump / pg_restore failures -> operator messages ----------------------------------------

def error_lines(stderr: str) -> list[str]:
    """The lines of a pg_dump stderr that describe the failure (not the --verbose chatter)."""
    keep = []
    for line in stderr.splitlines():
        low = line.lower()
        if any(tag in low for tag in ("error:", "detail:", "fatal:", "hint:", "could not", "failed", "aborting")):
            keep.append(line.strip())
    return keep


def explain_tool_failure(name: str, stderr: str, returncode: int, *, settings: Settings,
                         tool: PgTool | None = None, server_major: int | None = None,
                         backup_dir: Path | None = None, again: str = "run the backup again") -> OperatorError:
    """Turn a failed pg_dump / pg_restore run into a message + fix hint (no secrets). ``again``: what to do once
    the cause is fixed (the backup's "run the backup again", the rollback's "run the rollback again")."""
    lines = [redact(line, settings.secrets()) for line in error_lines(stderr)]
    text = " ".join(lines)
    low = text.lower()
    detail = "; ".join(lines[-3:]) or None
    user = settings.target["user"]
    if "server version mismatch" in low or ("server version" in low and "version:" in low and "aborting" in low):
        known = _too_old([tool], server_major) if tool and server_major else None
        if known is not None:
            return dataclasses.replace(known, detail=detail)
        return OperatorError(
            f"{name} is older than the server; it refuses to dump a newer server.",
            f"Install a {name} at least as new as the server and set {ENV_OVERRIDE.get(name, 'PG_DUMP')} to it.",
            detail=detail)
    if "unsupported version" in low and "file header" in low:
        return OperatorError(f"{name} is older than the pg_dump that wrote the archive.",
                             f"Use a {name} of the same or a newer version (set PG_RESTORE).", detail=detail)
    if "no space left on device" in low:
        where = f" in {backup_dir}" if backup_dir else ""
        return OperatorError(f"The disk is full: {name} could not write the backup{where}.",
                             "Free disk space or choose another directory with --backup-dir, then run again. "
                             "The partial file was deleted.", detail=detail)
    if "permission denied" in low:
        match = re.search(r"permission denied for (?:table|relation|schema|sequence|large object) ([^\s;]+)", text,
                          re.I)
        what = match.group(0) if match else "permission denied"
        return OperatorError(
            f"{name} cannot read everything: {what}.",
            f"Run it as a role that can read every table (the owner, or one granted pg_read_all_data): "
            f"GRANT pg_read_all_data TO {user}; (PostgreSQL 14+), or GRANT SELECT on the table to {user}.",
            "42501", detail)
    if "password authentication failed" in low or "no password supplied" in low:
        return OperatorError(f"{name} could not log in: password authentication failed.",
                             "Check the user and password in DATABASE_URL.", detail=detail)
    if "ssl" in low and ("not supported" in low or "not compiled" in low):
        return OperatorError(f"This {name} was built without SSL support, but the connection requires SSL.",
                             f"Use a {name} with SSL (e.g. apt install postgresql-client) and set "
                             f"{ENV_OVERRIDE.get(name, 'PG_DUMP')} to it.", detail=detail)
    if "could not obtain lock" in low or "lock timeout" in low:
        return OperatorError(f"{name} could not lock a table within the lock wait timeout.",
                             "Another session holds an exclusive lock (see pg_stat_activity / pg_locks); wait for it "
                             f"to finish, then {again}.", "55P03", detail)
    if any(s in low for s in ("server closed the connection", "terminating connection", "connection to server",
                              "connection lost", "could not receive data", "could not send data", "eof detected")):
        return OperatorError(f"The connection to the server was lost while {name} was running.",
                             f"Check that the server is running and nobody terminated the session, then {again}. "
                             "The partial file was deleted.", detail=detail)
    if returncode < 0:
        return OperatorError(f"{name} was stopped by signal {-returncode}.",
                             f"{again[0].upper()}{again[1:]}; the partial file was deleted.", detail=detail)
    return OperatorError(f"{name} failed (exit code {returncode}): {lines[-1] if lines else 'no error message'}",
                         f"See the detail; fix the cause and {again}.", detail=detail)
