"""Helpers for the security tests: another OS user (the attacker), shared directories, victim files,
the names the tool will use, and a recording wrapper for pg_dump / psql.

The tests run as root (CI does); the attacker is another OS user (``nobody``), whose actions run in
a forked child that drops to that user first (:func:`as_attacker`). Shared directories live under
a private 0755 base in /tmp (pytest's own tmp_path is 0700: another user could not reach it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

import pytest

from cli.cli_support import cli_env

ATTACKER = "nobody"
VICTIM_TEXT = b"root's precious file: must never change\n"
# The window of seconds (around the start of a command) for which timestamped names are planted.
WINDOW_BEFORE_S = 2
WINDOW_AFTER_S = 45


def attacker_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(ATTACKER)
    return entry.pw_uid, entry.pw_gid


def require_root() -> None:
    """These tests need two OS users; CI runs as root. Outside CI, as non-root, say why they cannot run."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            raise AssertionError("the security tests need root (to act as another OS user)")
        pytest.skip("needs root: the attacker is another OS user")


def as_attacker(action: Callable[..., object], *args) -> None:
    """Run ``action(*args)`` in a forked child as the attacker (no supplementary groups); fails if it raised."""
    uid, gid = attacker_ids()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the attacker, act, report, exit without any cleanup of the parent's
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            action(*args)
            code = 0
        except BaseException:  # noqa: BLE001 - reported to the parent
            os.write(write_end, traceback.format_exc().encode(errors="replace")[-4000:])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the attacker's action failed:\n{report}"


# --- what the attacker does (these run as the attacker) ---------------------------------------------

def _symlinks(directory: str, names: list[str], target: str) -> None:
    for name in names:
        try:
            os.symlink(target, os.path.join(directory, name))
        except FileExistsError:
            pass


def _files(directory: str, names: list[str]) -> None:
    for name in names:
        fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.fchmod(fd, 0o666)
        os.close(fd)


def plant_links(directory: Path, names: Iterable[str], target: Path) -> list[str]:
    """The attacker creates a symlink to ``target`` at each name in the (shared) directory."""
    names = sorted(set(names))
    as_attacker(_symlinks, str(directory), names, str(target))
    return names


def plant_files(directory: Path, names: Iterable[str]) -> list[str]:
    """The attacker creates an empty 0666 file of their own at each name (to receive what is written there)."""
    names = sorted(set(names))
    as_attacker(_files, str(directory), names)
    return names


def attacker_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    def write(p: str, d: bytes, m: int) -> None:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, m)
        os.write(fd, d)
        os.fchmod(fd, m)
        os.close(fd)

    as_attacker(write, str(path), data, mode)


def attacker_symlink(target: Path, link: Path) -> None:
    as_attacker(os.symlink, str(target), str(link))


def attacker_mkdir(path: Path, mode: int = 0o755) -> None:
    def mkdir(p: str, m: int) -> None:
        os.mkdir(p)
        os.chmod(p, m)

    as_attacker(mkdir, str(path), mode)


# --- shared places ---------------------------------------------------------------------------------

@dataclass
class Victim:
    """A root-owned file the attacker points links at: it must keep its bytes, mode and owner."""

    path: Path

    @classmethod
    def create(cls, path: Path, mode: int = 0o644) -> "Victim":
        path.write_bytes(VICTIM_TEXT)
        os.chmod(path, mode)
        os.chown(path, 0, 0)
        victim = cls(path)
        victim.before = victim.state()
        return victim

    def state(self) -> tuple:
        st = os.lstat(self.path)
        return (self.path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_ino, st.st_nlink,
                stat.S_IFMT(st.st_mode))

    def assert_untouched(self) -> None:
        now = self.state()
        if now != self.before:
            data, mode, *rest = now
            raise AssertionError(f"the victim file {self.path} was changed: now {len(data)} bytes, mode {mode:04o}, "
                                 f"owner/inode/links {rest} (was {len(self.before[0])} bytes, mode "
                                 f"{self.before[1]:04o}); it starts {data[:120]!r}")


@dataclass
class Shared:
    """A base directory other users can reach (0755, root's), with a shared 1777 ``backups`` in it."""

    base: Path
    backups: Path
    victim: Victim
    attacker_dir: Path  # the attacker's own directory (0755, theirs)


def make_shared(prefix: str = "mtui-sec-") -> Shared:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)
    backups = base / "backups"
    backups.mkdir()
    os.chmod(backups, 0o1777)
    victim = Victim.create(base / "victim.conf")
    attacker_dir = base / "attacker"
    attacker_dir.mkdir()
    os.chown(attacker_dir, *attacker_ids())
    return Shared(base, backups, victim, attacker_dir)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def listing(directory: Path) -> dict[str, tuple]:
    """Every entry of a directory: its kind, owner, mode and size (links not followed)."""
    out = {}
    for entry in os.scandir(directory):
        st = entry.stat(follow_symlinks=False)
        out[entry.name] = (stat.S_IFMT(st.st_mode), st.st_uid, stat.S_IMODE(st.st_mode), st.st_size,
                           os.readlink(entry.path) if entry.is_symlink() else None)
    return out


def regular_files_of(directory: Path, uid: int = 0) -> list[str]:
    return sorted(name for name, (kind, owner, *_rest) in listing(directory).items()
                  if kind == stat.S_IFREG and owner == uid)


# --- the names the tool will use -----------------------------------------------------------------

def _seconds(start: datetime, before: int = WINDOW_BEFORE_S, after: int = WINDOW_AFTER_S) -> list[datetime]:
    return [start + timedelta(seconds=s) for s in range(-before, after + 1)]


def backup_names(start: datetime | None = None, ext: str = ".sql", suffixes: int = 3,
                 parts: tuple[str, ...] = ("dump", "dump.partial", "sha256", "sha256.partial", "manifest",
                                           "manifest.partial")) -> list[str]:
    """``backup_before_migration_YYYYMMDD_HHMMSS[_N].sql`` (local time; the CLI runs with TZ=UTC) and its
    temporary and sidecar names, for every second of the window."""
    start = start or datetime.now(timezone.utc)
    names = []
    for moment in _seconds(start):
        stamp = moment.strftime("%Y%m%d_%H%M%S")
        for n in range(suffixes):
            names.extend(_variants(f"backup_before_migration_{stamp}{'' if n == 0 else f'_{n}'}{ext}", parts))
    return names


def copy_names(start: datetime | None = None, schema: str = "public", suffixes: int = 3,
               parts: tuple[str, ...] = ("dump", "dump.partial", "manifest", "manifest.partial")) -> list[str]:
    """The rollback's ``public.database_backups-before-rollback-YYYYMMDDTHHMMSSZ[-N].sql`` (UTC), its
    temporary name and its manifest, for every second of the window."""
    start = start or datetime.now(timezone.utc)
    names = []
    for moment in _seconds(start):
        base = f"{schema}.database_backups-before-rollback-{moment.strftime('%Y%m%dT%H%M%SZ')}"
        for n in range(1, suffixes + 1):
            names.extend(_variants(f"{base}.sql" if n == 1 else f"{base}-{n}.sql", parts))
    return names


def _variants(final: str, parts: tuple[str, ...]) -> list[str]:
    every = {"dump": final, "dump.partial": f".{final}.partial", "sha256": f"{final}.sha256",
             "sha256.partial": f".{final}.sha256.partial", "manifest": f"{final}.manifest.json",
             "manifest.partial": f".{final}.manifest.json.partial"}
    return [every[p] for p in parts]


# --- running the CLI -------------------------------------------------------------------------------

def env_for(url: str, audit_log: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: DATABASE_URL, the audit log, UTC (so the backup's local-time names are
    predictable) and no TMPDIR of the developer's."""
    env = cli_env(url, MIGRATE_AUDIT_LOG=str(audit_log), TZ="UTC", **extra)
    env.pop("TMPDIR", None)
    env.update(extra)
    return env


# --- a recording wrapper for the PostgreSQL client programs -------------------------------------------

WRAPPER = """#!/bin/sh
# Records this process's environment and argv (root-only files), then becomes the real program.
umask 077
f=$(mktemp "{log}/call.XXXXXXXX")
cat /proc/$$/environ > "$f.environ"
printf '%s\\0' "$0" "$@" > "$f.argv"
exec {real} "$@"
"""


@dataclass
class Call:
    argv: list[str]
    environ: dict[str, str]
    raw_environ: bytes

    @property
    def program(self) -> str:
        return os.path.basename(self.argv[0])


def install_wrappers(wrap_dir: Path, log_dir: Path, real_bin: Path,
                     programs: tuple[str, ...] = ("pg_dump", "psql", "pg_restore")) -> Path:
    """Wrappers named like the real programs in ``wrap_dir`` (settings written into each script: the
    product passes an allowlisted environment, so nothing could reach them through it)."""
    wrap_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in programs:
        script = wrap_dir / name
        script.write_text(WRAPPER.format(log=log_dir, real=real_bin / name))
        script.chmod(0o700)
    return wrap_dir


def recorded_calls(log_dir: Path) -> list[Call]:
    calls = []
    for argv_file in sorted(log_dir.glob("call.*.argv")):
        argv = [a.decode(errors="replace") for a in argv_file.read_bytes().split(b"\0")[:-1]]
        raw = argv_file.with_suffix(".environ").read_bytes()
        environ = {}
        for item in raw.split(b"\0"):
            if b"=" in item:
                key, _, value = item.partition(b"=")
                environ[key.decode(errors="replace")] = value.decode(errors="replace")
        calls.append(Call(argv, environ, raw))
    return calls


def secret_free(call: Call, secrets: Iterable[str]) -> None:
    """No secret anywhere in the child's environment or argv, and none of the secret-bearing variables."""
    for name in ("PGPASSWORD", "DATABASE_URL", "CRON_SECRET", "CLOUDFLARE_ACCESS_KEY_ID",
                 "CLOUDFLARE_SECRET_ACCESS_KEY", "MIGRATE_AUDIT_LOG"):
        assert name not in call.environ, f"{call.program} got {name}: {call.argv}"
    for secret in secrets:
        assert secret.encode() not in call.raw_environ, f"{call.program}'s environment holds a secret"
        assert not any(secret in arg for arg in call.argv), f"{call.program}'s argv holds a secret"


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(name="shared")
def shared_place():
    """``shared``: a fresh shared place (see :class:`Shared`), removed afterwards. Test modules import
    this function (``from files_support import shared_place``) to get the fixture."""
    require_root()
    place = make_shared()
    try:
        yield place
    finally:
        remove_tree(place.base)


def migrate(url: str, cwd: Path, audit_log: Path) -> None:
    """The migration, headless and without a backup (the set-up of a rollback)."""
    from cli.cli_support import run_cli

    result = run_cli("run", "--yes", "--skip-backup", cwd=cwd, env=env_for(url, audit_log))
    assert result.returncode == 0, result.output


def clear(directory: Path) -> None:
    """Remove every entry of a directory (as root: the planted links too)."""
    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


# --- the wizard under Pilot (the same helpers as tests/tui, which this directory cannot import) ----------

async def settle(app, pilot) -> None:
    """Every worker finished and the messages they posted handled."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def wait_for(pilot, condition, what: str, tries: int = 600) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def screen_text(app) -> str:
    """What the current screen shows, as plain text."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def widget_text(screen, selector: str) -> str:
    from textual.widgets import Static

    return str(screen.query_one(selector, Static).content)


# --- a fake PostgreSQL server that asks for the password in clear text ------------------------------------

class PasswordTrap:
    """Listens on 127.0.0.1, answers SSL/GSS requests with 'N', asks each client for a cleartext password
    (AuthenticationCleartextPassword) and records what it gets; then refuses the login."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.passwords: list[str] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="password-trap")
        self._thread.start()

    def _serve(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            try:
                conn.settimeout(5)
                self._session(conn)
            except OSError:
                pass
            finally:
                conn.close()

    @staticmethod
    def _read(conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _session(self, conn) -> None:
        import struct

        while True:
            length = struct.unpack("!I", self._read(conn, 4))[0]
            body = self._read(conn, length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                conn.sendall(b"N")
                continue
            break
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        kind = self._read(conn, 1)
        length = struct.unpack("!I", self._read(conn, 4))[0]
        body = self._read(conn, length - 4)
        if kind == b"p":
            self.passwords.append(body.rstrip(b"\0").decode(errors="replace"))
        message = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        conn.sendall(b"E" + struct.pack("!I", len(message) + 4) + message)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
