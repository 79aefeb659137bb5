"""The audit log: one JSON line per event of every operation (check, backup, migrate, rollback).

Usable by the CLI and the wizard alike::

    audit = AuditLog(path_or_none)               # --audit-log PATH / MIGRATE_AUDIT_LOG / ./migrate-tui.log
    emit = audit.tap(settings, "rollback", emit) # records each event, then passes it on
    entries = read(audit.path)                   # for the wizard's log screen / `migrate-tui log`

Each line carries the time (UTC), the operator (OS user), the masked target, the
operation, the event and its fields (outcome, durations, backup paths and sha256).
The file is created 0600, never through a link (:class:`AuditLog`). Every line goes through :func:`migration.settings.redact`
with :meth:`Settings.secrets` as a safety net: no password is ever written.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import functools
import getpass
import json
import os
import stat
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import ConfigError
from .redact import redact
from .settings import Settings

DEFAULT_PATH = "migrate-tui.log"
ENV_VAR = "MIGRATE_AUDIT_LOG"
OPERATIONS = ("check", "backup", "drill", "rehearse", "migrate", "rollback", "restore", "verify", "cron-secret")


def default_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_VAR) or DEFAULT_PATH)


def operator() -> str:
    """Who runs this (every audit line says it): looked up once per user and environment, not per line."""
    return _operator(os.getuid(), *(os.environ.get(name) for name in ("LOGNAME", "USER", "LNAME", "USERNAME")))


@functools.lru_cache(maxsize=8)
def _operator(uid: int, *environment: str | None) -> str:  # getpass.getuser() reads these variables, then pwd
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry and no $USER
        return f"uid {uid}"


def to_jsonable(value: Any) -> Any:
    """Events (dataclasses, enums, paths, tuples) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__name__ == "StructureReport":  # the whole catalog is too much for a log line
            return {"state": value.state, "problems": list(value.problems),
                    "differences": list(value.differences)}
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, (str, int)) else value.name
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """Lift the fields people search for to the top level of the line."""
    out: dict[str, Any] = {}
    if "outcome" in data:
        out["outcome"] = data["outcome"]
    for key in ("elapsed_ms", "waited_ms"):
        if isinstance(data.get(key), (int, float)):
            out["duration_ms"] = round(float(data[key]), 1)
            break
    copy = data.get("copy") if isinstance(data.get("copy"), dict) else data
    if isinstance(copy, dict) and copy.get("sha256") and copy.get("path"):
        out["backup_path"] = copy["path"]
        out["sha256"] = copy["sha256"]
        if "duration_ms" not in out and isinstance(copy.get("elapsed_ms"), (int, float)):
            out["duration_ms"] = round(float(copy["elapsed_ms"]), 1)
    return out


class AuditLog:
    """Appends to the log file: created 0600 without following a link, in a directory checked once
    (:mod:`migration.safe_files`); a link or anything but a regular file of the operator's is refused.
    ``/dev/null``, named explicitly, keeps no log."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.Lock()
        self._dir = None  # the checked directory (safe_files.CheckedDir), opened by ensure()
        self.write_errors: list[str] = []

    @property
    def discarded(self) -> bool:
        return str(self.path) == os.devnull

    def ensure(self) -> "AuditLog":
        """Open (or create, 0600) the log now, so an unusable log stops the operation before it starts."""
        if self.discarded or self._dir is not None:
            return self
        from .safe_files import UnsafePath, open_dir

        try:
            directory = open_dir(self.path.parent if str(self.path.parent) else ".", what="audit log directory",
                                 create=True)
        except UnsafePath as exc:
            raise ConfigError(f"The audit log {self.path} cannot be written: {exc.error.message}",
                              f"Point --audit-log (or ${ENV_VAR}) at a file in a directory only you can write to.",
                              ) from None
        try:
            os.close(self._open(directory))
        except ConfigError:
            directory.close()
            raise
        self._dir = directory
        return self

    def _open(self, directory) -> int:
        """The log file for appending: never through a link, only a regular file of the operator's."""
        name = self.path.name
        try:
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         0o600, dir_fd=directory.fd)
        except OSError as exc:
            reason = "it is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
            raise ConfigError(f"The audit log {self.path} cannot be written: {reason}.",
                              f"Point --audit-log (or ${ENV_VAR}) at a regular file of yours.") from None
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "it is not a regular file"
        elif info.st_uid != os.geteuid():
            problem = "it belongs to another user"
        elif info.st_nlink != 1:  # another name for the same file, maybe planted (a hard link): not ours alone
            problem = f"it has {info.st_nlink} names (hard links); its other names may be files of other users"
        if problem is not None:
            os.close(fd)
            raise ConfigError(f"The audit log {self.path} cannot be written: {problem}.",
                              f"Point --audit-log (or ${ENV_VAR}) at a regular file of yours.")
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
        return fd

    def write(self, entry: dict[str, Any], secrets: Iterable[str] = ()) -> None:
        if self.discarded:
            return
        line = redact(json.dumps(entry, ensure_ascii=False, default=str), list(secrets)) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            try:
                self.ensure()
                fd = self._open(self._dir)
                try:
                    os.write(fd, data)  # one write per line: lines of concurrent runs never interleave
                finally:
                    os.close(fd)
            except (OSError, ConfigError) as exc:
                reason = exc.error.message if isinstance(exc, ConfigError) else f"{self.path}: {exc.strerror or exc}"
                self.write_errors.append(reason)

    def record(self, settings: Settings | None, operation: str, event: str, run_id: str | None = None,
               target_name: str | None = None, **fields: Any) -> None:
        """One line not tied to an engine event (e.g. 'refused: needs --cascade')."""
        data = to_jsonable(fields)
        entry = self._base(settings, operation, run_id or uuid.uuid4().hex[:12], target_name)
        entry.update(event=event, **_summary(data), data=data)
        self.write(entry, settings.secrets() if settings else ())

    def tap(self, settings: Settings, operation: str, emit: Callable[[Any], None] | None = None,
            target_name: str | None = None) -> Callable[[Any], None]:
        """An event callback that records each event, then calls ``emit`` (if any). ``target_name``: the
        fleet target the operation serves (each line then carries it, for ``migrate-tui log --target``).

        Progress ticks are not recorded; repeated lock-wait refreshes only when the blocking
        sessions change."""
        self.ensure()
        run_id = uuid.uuid4().hex[:12]
        secrets = settings.secrets()
        last_wait: list[Any] = [None]

        def handler(event: Any) -> None:
            try:
                name = type(event).__name__
                data = to_jsonable(event)
                if not isinstance(data, dict):
                    data = {"value": data}
                # progress ticks are for the screen, not the record; a drill's table checks are all in its DrillFinished
                skip = name.endswith("Progress") or name == "DrillTableChecked"
                if name == "WaitingForLock":
                    key = (data.get("attempt"), tuple(b.get("pid") for b in data.get("blockers", [])))
                    skip, last_wait[0] = key == last_wait[0], key
                if not skip:
                    entry = self._base(settings, operation, run_id, target_name)
                    entry.update(event=name, **_summary(data), data=data)
                    self.write(entry, secrets)
            except Exception as exc:  # the log never breaks the operation it records
                self.write_errors.append(f"{type(exc).__name__}: {redact(str(exc), secrets)}")
            if emit is not None:
                emit(event)

        return handler

    @staticmethod
    def _base(settings: Settings | None, operation: str, run_id: str, target_name: str | None = None
              ) -> dict[str, Any]:
        from . import connected
        from .version import version

        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "version": version(),  # of migrate-tui: which code did this
            "operator": operator(),
            # a host list names the host that answered, once the operation has connected
            "target": connected.masked_target(settings.masked_url, settings.database_url) if settings else None,
            "schema": settings.schema if settings else None,
            "operation": operation,
            "run": run_id,
        }
        if target_name is not None:
            entry["target_name"] = target_name
        server = connected.server(settings.database_url) if settings else None
        if server is not None:
            entry["server"] = connected.describe(*server)
        return entry


def read(path: str | os.PathLike[str] | None = None, tail: int | None = None) -> list[dict[str, Any]]:
    """The log's entries, oldest first (a damaged line becomes an entry saying so)."""
    path = Path(path) if path is not None else default_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"The audit log {path} cannot be read: {reason}.",
                          f"Point --audit-log (or ${ENV_VAR}) at the log file itself.") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"The audit log {path} cannot be read: it is not a regular file.",
                              f"Point --audit-log (or ${ENV_VAR}) at the log file itself.")
        os.set_blocking(fd, True)
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries.append(entry if isinstance(entry, dict) else {"event": "unreadable", "line": number})
        except json.JSONDecodeError:
            entries.append({"event": "unreadable", "line": number})
    return entries


def details(entry: dict[str, Any]) -> list[str]:
    """What happened, for people: the migration step, the backup file, the message, the error."""
    data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
    parts: list[str] = []
    step = data.get("step")
    if entry.get("operation") == "migrate" and isinstance(step, int) and not isinstance(step, bool):
        from .events import Step

        if step in Step._value2member_map_:
            parts.append(f"step {step}/8 {Step(step).title}")
    if entry.get("backup_path"):
        parts.append(f"{entry['backup_path']} (sha256 {str(entry.get('sha256', ''))[:12]}…)")
    if entry.get("operation") == "cron-secret" and data.get("path") and data.get("line"):
        how = "created" if data.get("created") else ("replaced" if data.get("replaced") else "added")
        parts.append(f"CRON_SECRET {how} in {data['path']}, line {data['line']} (the value is never recorded)")
    if data.get("message"):
        parts.append(str(data["message"]))
    error = data.get("error")
    if isinstance(error, dict) and error.get("message"):
        parts.append(f"error: {error['message']}")
    return parts


def describe(entry: dict[str, Any]) -> str:
    """One human line for an entry (the CLI `log` command)."""
    parts = [str(entry.get("time", "?"))[:19].replace("T", " "), str(entry.get("operation", "?")),
             str(entry.get("event", "?"))]
    if entry.get("outcome"):
        parts.append(str(entry["outcome"]))
    if entry.get("duration_ms") is not None:
        parts.append(f"{entry['duration_ms']:.0f} ms")
    parts.extend(details(entry))
    if entry.get("target_name"):
        parts.append(f"[{entry['target_name']}]")
    parts.append(f"by {entry.get('operator', '?')} on {entry.get('target', '?')}")
    return "  ".join(parts)
