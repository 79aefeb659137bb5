"""Files the tool writes or runs, safe in directories that other users of the machine can reach.

- A directory is opened once (:func:`open_dir`) and checked on its descriptor: owned by the
  operator (or root), not writable by group or others unless it is sticky and the operator's own.
  Every file in it is then created, published, read and deleted *relative to that descriptor*,
  so swapping a path component for a link afterwards changes nothing.
- Files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing file, link or anything
  else at the name is an error that names it, and nothing is ever written through a link.
- A finished file gets its final name with ``link()``, which fails when the name exists (never
  replacing or following what another user put there), then its temporary name is removed.
- A temporary (``.NAME.partial``) file carries an ``flock`` while it is written; one without a
  lock was left by a killed run, and :func:`remove_stale_partials` deletes it.
- A file the tool reads back to run (a restore) must be a regular file, owned by the operator
  and writable by nobody else (:meth:`CheckedDir.open_own`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from .errors import MigrateError, OperatorError

# The operating system's own directories: a backup written there could replace or expose system files.
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
               "/sys", "/usr", "/var/cache", "/var/lib", "/var/log", "/var/mail", "/var/run", "/var/spool", "/snap")
# The temporary names of the tool's own files (backups, safety copies, their sidecars): the only ones ever
# treated as left behind by a killed run.
PARTIAL = re.compile(r"^\.(backup_before_migration_[^/]+|[^/]+-before-rollback-[^/]+)\.partial$")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(MigrateError):
    """A directory or file the tool refuses to use; nothing was written or read through it."""


def partial_name(final_name: str) -> str:
    return f".{final_name}.partial"


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"


def is_system_dir(real: str) -> bool:
    return real == "/" or any(real == d or real.startswith(d + "/") for d in SYSTEM_DIRS)


@dataclass
class CheckedDir:
    """An open, checked directory; every file operation is relative to its descriptor."""

    path: Path  # as the operator gave it (for messages)
    fd: int
    real: str  # where it resolves to

    @property
    def shown(self) -> str:
        """``backups`` or ``backups -> /mnt/disk/backups`` when it resolves elsewhere."""
        given = str(self.path)
        absolute = os.path.abspath(given)
        return given if absolute == self.real else f"{given} -> {self.real}"

    def name(self, name: str) -> Path:
        return self.path / name

    def lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The directory's own flock: a temporary is created and locked under it, and the stale-temporary cleanup
        scans under it, so the cleanup never finds another run's new temporary before that run has locked it."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def create(self, name: str, mode: int = 0o600, *, lock: bool = False) -> int:
        """A new file: never an existing one, never through a link. ``lock``: hold an flock while it is written."""
        if lock:
            with self.locked():
                return self.create(name, mode)
        try:
            fd = os.open(name, _CREATE, mode, dir_fd=self.fd)
        except FileExistsError:
            raise UnsafePath(_exists_error(self, name)) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(_exists_error(self, name)) from None
            raise UnsafePath(OperatorError(f"Cannot write in {self.shown}: {exc.strerror}.",
                                           "Choose a directory you can write to.")) from None
        try:
            os.fchmod(fd, mode)  # whatever the umask
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else can hold it
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_read(self, name: str, expect_inode: os.stat_result | None = None) -> int:
        """A file of ours, opened again for reading (no link followed; the same inode when given)."""
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        st = os.fstat(fd)
        if expect_inode is not None and (st.st_ino, st.st_dev) != (expect_inode.st_ino, expect_inode.st_dev):
            os.close(fd)
            raise UnsafePath(OperatorError(f"{self.name(name)} was replaced while it was being written.",
                                           "Someone else writes in this directory: use a private one."))
        return fd

    def open_own(self, name: str, what: str = "file") -> int:
        """A file to read back and run: a regular file, owned by the operator, writable by nobody else."""
        shown = self.name(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=self.fd)
        except FileNotFoundError:
            raise UnsafePath(OperatorError(f"The {what} {shown} does not exist.",
                                           "Check the path (it was printed when the file was written).")) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(OperatorError(f"The {what} {shown} is a symbolic link; it is not read.",
                                               "Use the file migrate-tui wrote, not a link to it.")) from None
            raise UnsafePath(OperatorError(f"Cannot read the {what} {shown}: {exc.strerror}.",
                                           "Check the path and its permissions.")) from None
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "is not a regular file"
        elif st.st_uid != os.geteuid():
            problem = f"is owned by {_owner(st.st_uid)}, not by you"
        elif st.st_mode & 0o022:
            problem = f"can be changed by other users (mode {_mode(st)})"
        if problem:
            os.close(fd)
            raise UnsafePath(OperatorError(f"The {what} {shown} {problem}; it is not used.",
                                           "Use the file migrate-tui wrote (mode 0600, owned by you)."))
        os.set_blocking(fd, True)
        return fd

    def publish(self, temporary: str, final: str) -> None:
        """Give a finished file its final name without replacing anything there, then drop the temporary name."""
        try:
            os.link(temporary, final, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        except FileExistsError:
            raise UnsafePath(_exists_error(self, final)) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                raise
            # A file system without hard links: rename, after making sure the name is free.
            if self.lstat(final) is not None:
                raise UnsafePath(_exists_error(self, final)) from None
            os.rename(temporary, final, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            self.fsync()
            return
        self.unlink(temporary)
        self.fsync()

    def unlink(self, name: str) -> bool:
        try:
            os.unlink(name, dir_fd=self.fd)
            return True
        except FileNotFoundError:
            return False

    def write_new(self, name: str, data: bytes) -> Path:
        """A small file (a checksum, a manifest): written under a temporary name, fsynced, then published."""
        temporary = partial_name(name)
        fd = self.create(temporary, lock=True)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            self.unlink(temporary)
            raise
        os.close(fd)
        try:
            self.publish(temporary, name)
        except BaseException:
            self.unlink(temporary)
            raise
        return self.name(name)

    def replace_own(self, name: str, data: bytes, what: str = "file") -> Path:
        """A new version of a small file of ours (a manifest that gains the drill's result): written under a
        temporary name, fsynced, then renamed over the old one, which must be a regular file of the operator's
        (``rename`` replaces a link at the name, never follows it)."""
        os.close(self.open_own(name, what))  # refuses a link, another user's file, a group-writable one
        temporary = partial_name(name)
        fd = self.create(temporary, lock=True)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.rename(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.unlink(temporary)
            raise
        finally:
            os.close(fd)
        self.fsync()
        return self.name(name)

    def read_small(self, name: str, what: str = "file", limit: int = 1 << 20) -> bytes:
        fd = self.open_own(name, what)
        try:
            return os.read(fd, limit)
        finally:
            os.close(fd)

    def fsync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError:  # some file systems cannot fsync a directory
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "CheckedDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PendingFile:
    """A file being written under a locked temporary name (``.NAME.partial``) in a checked directory,
    then published under its final name, or discarded."""

    def __init__(self, directory: CheckedDir, final: str) -> None:
        self.dir = directory
        self.final = final
        self.temporary = partial_name(final)
        self.fd = directory.create(self.temporary, lock=True)
        self.inode = os.fstat(self.fd)

    @property
    def path(self) -> Path:
        return self.dir.name(self.final)

    @property
    def temporary_path(self) -> Path:
        return self.dir.name(self.temporary)

    def reader(self) -> int:
        """A read-only descriptor of the same file (its own offset)."""
        return self.dir.open_read(self.temporary, self.inode)

    def size(self) -> int:
        return os.fstat(self.fd).st_size if self.fd >= 0 else 0

    def publish(self) -> Path:
        os.fsync(self.fd)
        self.dir.publish(self.temporary, self.final)
        self._close()
        return self.path

    def discard(self) -> bool:
        """Delete the temporary file (before the lock goes); True when there was one."""
        deleted = self.dir.unlink(self.temporary) if self.fd >= 0 else False
        self._close()
        return deleted

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def reserve(directory: CheckedDir, names) -> PendingFile:
    """The first of ``names`` free in the directory, as a :class:`PendingFile` (see :func:`reserve_name`)."""
    return reserve_name(directory, names, stat.S_IFREG, PendingFile)


_Pending = TypeVar("_Pending")


def reserve_name(directory: CheckedDir, names, kind: int, make: Callable[[CheckedDir, str], _Pending]) -> _Pending:
    """``make(directory, final)`` for the first of ``names`` free in the directory (neither it nor its temporary
    name exist); ``make`` creates the temporary exclusively (it raises UnsafePath when something is there).

    A name taken by an entry of ours of this ``kind`` (``stat.S_IFREG``, ``stat.S_IFDIR``: an earlier backup of
    the same second, or one created meanwhile by another backup of ours) is skipped; anything else there (a
    link, another user's file) is an error that names it.
    """
    me = os.geteuid()

    def ours(name: str) -> bool:
        st = directory.lstat(name)
        return st is not None and stat.S_IFMT(st.st_mode) == kind and st.st_uid == me

    for final in names:
        taken = [n for n in (final, partial_name(final)) if directory.lstat(n) is not None]
        for name in taken:
            if not ours(name) and directory.lstat(name) is not None:
                raise UnsafePath(_exists_error(directory, name))
        if taken:
            continue
        try:
            return make(directory, final)
        except UnsafePath:
            if ours(partial_name(final)):  # created meanwhile by another backup of ours: the next name
                continue
            raise
    raise UnsafePath(OperatorError("Too many backups with the same name in " + directory.shown + ".",
                                   "Wait a second and try again."))


def read_all(fd: int) -> bytes:
    """A whole file, read with pread (the descriptor's offset is left alone)."""
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _exists_error(d: CheckedDir, name: str) -> OperatorError:
    st = d.lstat(name)
    what = "something"
    if st is not None:
        what = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else "a file" if stat.S_ISREG(st.st_mode)
                else "a directory" if stat.S_ISDIR(st.st_mode) else "a special file")
        what += f" owned by {_owner(st.st_uid)}"
    return OperatorError(f"{d.name(name)} already exists ({what}); nothing was written through it.",
                         "Someone else may be writing in this directory: check that file, and use a directory only "
                         "you can write to.")


def open_dir(path: str | os.PathLike[str], *, what: str = "backup directory", create: bool = False,
             own: bool = False, trust: bool = False) -> CheckedDir:
    """Open and check a directory once. ``own``: it must be the operator's and not a system directory
    (unless ``trust``, the operator's explicit choice); always: not writable by other users."""
    given = Path(path)
    if create and not os.path.isdir(given):
        shown, problem, hint = describe_dir(given, trust=trust or not own)  # before anything is created
        if problem is not None:
            raise UnsafePath(OperatorError(f"The {what} {shown} {problem}; nothing is written there.",
                                           hint or "Choose another directory."))
        try:
            os.makedirs(given, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise UnsafePath(OperatorError(f"Cannot create the {what} {given}: {exc.strerror}.",
                                           "Choose a writable directory.")) from None
    try:
        fd = os.open(given, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafePath(OperatorError(f"Cannot open the {what} {given}: {exc.strerror}.",
                                       "Check the path, or choose another directory.")) from None
    real = _real(fd, given)
    d = CheckedDir(given, fd, real)
    problem = dir_problem(os.fstat(fd), real, own=own, trust=trust)
    if problem is not None:
        d.close()
        message, hint = problem
        raise UnsafePath(OperatorError(f"The {what} {d.shown} {message}; nothing is written there.", hint))
    return d


def dir_problem(st: os.stat_result, real: str, *, own: bool, trust: bool) -> tuple[str, str] | None:
    """Why a directory is refused (message, hint), or None."""
    me = os.geteuid()
    private = "Use a directory only you can write to, e.g. mkdir -m 700 ~/migrate-tui-backups"
    if st.st_mode & 0o022 and not (st.st_mode & stat.S_ISVTX and st.st_uid == me):
        return (f"can be written by other users (mode {_mode(st)}, owner {_owner(st.st_uid)})",
                private + " (or chmod go-w on it if it is yours).")
    if st.st_uid not in (me, 0):
        if not (own and trust):
            return (f"belongs to {_owner(st.st_uid)}", private + ".")
    if own and not trust:
        if is_system_dir(real):
            return ("is a system directory", private + "; --trust-backup-dir accepts it anyway (files of the "
                    "system there could be overwritten or exposed).")
        if st.st_uid != me:
            return (f"belongs to {_owner(st.st_uid)}, not to you",
                    private + "; --trust-backup-dir accepts it anyway (its owner can read or replace your backups).")
    return None


def _real(fd: int, given: Path) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(given)


def describe_dir(path: str | os.PathLike[str], *, trust: bool = False) -> tuple[str, str | None, str | None]:
    """For the checklist, without creating anything: (shown, problem, hint) of a backup directory.

    A directory that does not exist yet is created (0700, the operator's) in its nearest existing parent.
    """
    given = Path(path)
    probe = Path(os.path.abspath(given))
    missing: list[str] = []
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe.name)
        probe = probe.parent
    real = os.path.join(os.path.realpath(probe), *reversed(missing))
    shown = str(given) if os.path.abspath(given) == real else f"{given} -> {real}"
    try:
        st = os.stat(probe)
    except OSError as exc:
        return shown, f"cannot be read ({exc.strerror})", "Choose another directory with --backup-dir."
    if not missing:
        if not stat.S_ISDIR(st.st_mode):
            return shown, "is not a directory", "Choose a directory with --backup-dir."
        problem = dir_problem(st, real, own=True, trust=trust)
    elif is_system_dir(real) and not trust:
        problem = ("would be created in a system directory",
                   "Choose a directory only you can write to with --backup-dir.")
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = (f"cannot be created: {probe} is not writable", "Choose a writable directory with --backup-dir.")
    else:
        problem = None
    return (shown, None, None) if problem is None else (shown, *problem)


def remove_stale_partials(d: CheckedDir) -> list[str]:
    """Delete temporary files of ours that no running process holds (left by a killed run); their names."""
    return remove_unlocked_partials(d, stat.S_IFREG, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                                    lambda fd, name: d.unlink(name))


def remove_unlocked_partials(d: CheckedDir, kind: int, flags: int, remove: Callable[[int, str], bool]) -> list[str]:
    """``remove(fd, name)`` each temporary (``.NAME.partial``) of ours of this ``kind`` that no running process
    holds (its flock is free: a killed run left it); the names it removed. It scans under the directory's lock,
    so a temporary being created (not yet locked) is never among them. Opened with ``flags`` (never following
    a link), checked and locked through that descriptor."""
    removed = []
    me = os.geteuid()
    with d.locked():
        for entry in os.scandir(d.fd):
            if not PARTIAL.match(entry.name):
                continue
            try:
                fd = os.open(entry.name, flags, dir_fd=d.fd)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if stat.S_IFMT(st.st_mode) != kind or st.st_uid != me:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # a running backup holds it
                    continue
                if remove(fd, entry.name):
                    removed.append(str(d.name(entry.name)))
            except OSError:
                continue
            finally:
                os.close(fd)
    return removed
