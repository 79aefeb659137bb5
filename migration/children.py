"""What a child process (pg_dump, pg_restore, psql, the demo's initdb and pg_ctl) gets from us.

- An environment built from an allowlist (:func:`child_environ`), never ``os.environ`` minus a few
  names: ``/proc/<pid>/environ`` shows a child's environment to anyone who may read it, so no
  ``PGPASSWORD``, ``DATABASE_URL`` or other secret is passed on.
- The password through a passfile that never touches a disk: an anonymous memory file
  (``memfd_create``, mode 0600) the child inherits as a file descriptor and reads as
  ``PGPASSFILE=/dev/fd/N``. It disappears with the last process that holds it, even after
  ``kill -9``. Where the kernel has no memory files, a 0600 passfile in a private (0700) temporary
  directory is used instead, removed on every exit path; one left by a killed run is found and
  removed by :func:`remove_stale_passfiles` at the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

if TYPE_CHECKING:
    from .settings import Settings

_ALLOWED = frozenset("PATH HOME USER LOGNAME LANG LANGUAGE TZ TMPDIR TERM".split())
# libpq's variables that say where and how to connect; never PGPASSWORD or PGPASSFILE (ours is set here)
_LIBPQ = frozenset("""PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGSERVICEFILE PGSYSCONFDIR PGOPTIONS
    PGAPPNAME PGSSLMODE PGREQUIRESSL PGSSLCOMPRESSION PGSSLCERT PGSSLKEY PGSSLCERTMODE PGSSLROOTCERT PGSSLCRL
    PGSSLCRLDIR PGSSLSNI PGREQUIREPEER PGSSLMINPROTOCOLVERSION PGSSLMAXPROTOCOLVERSION PGSSLNEGOTIATION
    PGGSSENCMODE PGKRBSRVNAME PGGSSLIB PGGSSDELEGATION PGCONNECT_TIMEOUT PGCLIENTENCODING PGTARGETSESSIONATTRS
    PGLOADBALANCEHOSTS PGCHANNELBINDING PGREQUIREAUTH PGDATESTYLE PGTZ PGGEQO PGLOCALEDIR""".split())
PASS_DIR_PREFIX = "migrate-tui-pass-"
_PASS_DIR = re.compile(rf"^{PASS_DIR_PREFIX}(\d+)-")


# How long a probe of a local tool (``--version``, ``pg_config --sharedir``, a compression check) may take. It answers
# in milliseconds; on a loaded machine, or traced, a wrapper script can take seconds: too short a limit would
# quietly take a working tool for a broken one.
PROBE_TIMEOUT_S = 60.0


def child_environ(secrets: list[str] | tuple[str, ...] = (), environ: Mapping[str, str] | None = None
                  ) -> dict[str, str]:
    """The allowlisted part of our environment, without any variable whose value holds a secret."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items()
            if (k in _ALLOWED or k in _LIBPQ or k.startswith("LC_"))
            and not any(s and s in v for s in secrets)}


@dataclass
class ChildEnv:
    """``env`` and ``pass_fds`` for ``subprocess.Popen``."""

    env: dict[str, str]
    pass_fds: tuple[int, ...] = field(default=())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def child_env(settings: "Settings", *, environ: Mapping[str, str] | None = None,
              memory: bool = True) -> Iterator[ChildEnv]:
    """The environment for a child connecting to the target; the password in a passfile of its own.

    Without a password (neither in DATABASE_URL nor PGPASSWORD), the operator's own PGPASSFILE or
    ``~/.pgpass`` still apply. ``memory=False`` forces the on-disk fallback (tests).
    """
    source = os.environ if environ is None else environ
    env = child_environ(settings.secrets(), source)
    env["PGCONNECT_TIMEOUT"] = str(settings.connect_timeout_s)
    password = settings.password
    if not password:
        if source.get("PGPASSFILE"):
            env["PGPASSFILE"] = source["PGPASSFILE"]
        yield ChildEnv(env)
        return
    line = f"*:*:*:*:{_escape(password)}\n".encode()
    if memory and hasattr(os, "memfd_create"):
        fd = os.memfd_create("migrate-tui-pgpass", os.MFD_CLOEXEC)
        try:
            os.fchmod(fd, 0o600)  # libpq ignores a passfile that others could read
            os.write(fd, line)
            env["PGPASSFILE"] = f"/dev/fd/{fd}"
            yield ChildEnv(env, (fd,))
        finally:
            os.close(fd)
        return
    private = tempfile.mkdtemp(prefix=f"{PASS_DIR_PREFIX}{os.getpid()}-")  # 0700, ours
    try:
        fd = os.open(os.path.join(private, "pgpass"), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(line)
        env["PGPASSFILE"] = os.path.join(private, "pgpass")
        yield ChildEnv(env)
    finally:
        shutil.rmtree(private, ignore_errors=True)


@contextlib.contextmanager
def readable_copy(data: bytes, name: str = "migrate-tui-input") -> Iterator[int]:
    """A descriptor of a read-only file holding exactly ``data``, for a child to read as ``/dev/fd/N``
    (give it in ``pass_fds``).

    The child reads the whole of it at its own pace, whatever becomes of us: fed through a pipe, its
    input would end wherever we stopped writing if we were killed (``kill -9``), and psql would take
    that for the end of the script. A sealed memory file where the kernel has them (nobody can change
    it afterwards), else an unlinked temporary file of our own."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(name, os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
    else:  # pragma: no cover - every Linux the tool supports has memory files
        fd, path = tempfile.mkstemp(prefix=f"{name}-")
        os.unlink(path)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        seals = getattr(fcntl, "F_ADD_SEALS", None)
        if seals is not None:
            try:
                fcntl.fcntl(fd, seals, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
                            | fcntl.F_SEAL_SEAL)
            except OSError:  # a temporary file cannot be sealed: it is unlinked and ours alone
                pass
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


def remove_stale_passfiles(tmp: str | None = None) -> list[str]:
    """Passfile directories of ours whose process is gone (a killed run): removed; their paths."""
    root = Path(tmp or tempfile.gettempdir())
    removed = []
    me = os.geteuid()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        match = _PASS_DIR.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != me:
                continue
        except OSError:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
