"""Directories the tool writes (pg_dump's directory format), as safe as its files (:mod:`migration.safe_files`).

- A new directory is made with ``mkdir`` relative to the checked parent's descriptor under a
  temporary name (``.NAME.partial``): ``mkdir`` fails on anything already there, a link included.
  It is opened at once without following links, checked (a directory, the operator's, mode 0700)
  and locked (``flock``) while it is written; children write into it through ``/dev/fd/N``, its
  descriptor, so no name is looked up again.
- It is published with ``renameat2(RENAME_NOREPLACE)``, which never replaces what is at the final
  name (a plain ``rename`` would replace an empty directory there).
- A ``.NAME.partial`` directory nobody holds a lock on was left by a killed run and is removed
  (:func:`remove_stale_partial_dirs`); only regular files in it are deleted, never through a link.
- A directory read back (to verify or to restore) must be the operator's and writable by nobody
  else (:func:`open_own_dir`); each file in it is opened without following links.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
from pathlib import Path

from .errors import OperatorError
from .safe_files import (CheckedDir, UnsafePath, _exists_error, _mode, _owner, partial_name, remove_unlocked_partials,
                         reserve_name)

_RENAME_NOREPLACE = 1
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def rename_noreplace(directory: CheckedDir, old: str, new: str) -> None:
    """``old`` becomes ``new`` in the same directory, unless ``new`` exists (then UnsafePath)."""
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(directory.fd, os.fsencode(old), directory.fd, os.fsencode(new), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise UnsafePath(_exists_error(directory, new))
        if code not in (errno.EINVAL, errno.ENOSYS):  # EINVAL: a file system without RENAME_NOREPLACE
            raise OSError(code, os.strerror(code), new)
    if directory.lstat(new) is not None:  # the directory is checked private: only the operator could race this
        raise UnsafePath(_exists_error(directory, new))
    os.rename(old, new, src_dir_fd=directory.fd, dst_dir_fd=directory.fd)


def _check_own_dir(fd: int, shown: Path, what: str, *, private: bool) -> None:
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif st.st_uid != os.geteuid():
        problem = f"is owned by {_owner(st.st_uid)}, not by you"
    elif st.st_mode & (0o077 if private else 0o022):
        problem = f"can be read or changed by other users (mode {_mode(st)})" if private \
            else f"can be changed by other users (mode {_mode(st)})"
    if problem:
        raise UnsafePath(OperatorError(f"The {what} {shown} {problem}; it is not used.",
                                       "Use the directory migrate-tui wrote (mode 0700, owned by you)."))


def list_files(fd: int) -> dict[str, int]:
    """The regular files directly in a directory, with their sizes (links and subdirectories are not files)."""
    out = {}
    for entry in os.scandir(fd):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            out[entry.name] = st.st_size
    return out


def open_file(dir_fd: int, name: str) -> int:
    """A file in a checked directory, for reading: never through a link, only a regular file."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(OperatorError(f"{name} in the backup directory is not a regular file; it is not read.",
                                       "Use the backup directory migrate-tui wrote, unchanged."))
    os.set_blocking(fd, True)
    return fd


def _empty(fd: int) -> bool:
    """Delete the regular files and links in a directory (pg_dump makes no subdirectories); True when empty."""
    left = False
    for entry in os.scandir(fd):
        if entry.is_dir(follow_symlinks=False):
            left = True
            continue
        try:
            os.unlink(entry.name, dir_fd=fd)
        except FileNotFoundError:
            pass
    return not left


class PendingDir:
    """A directory being written under a locked temporary name, then published under its final name, or discarded."""

    def __init__(self, directory: CheckedDir, final: str) -> None:
        self.dir = directory
        self.final = final
        self.temporary = partial_name(final)
        with directory.locked():  # made and locked before a concurrent stale-directory cleanup can look at it
            try:
                os.mkdir(self.temporary, 0o700, dir_fd=directory.fd)
            except FileExistsError:
                raise UnsafePath(_exists_error(directory, self.temporary)) from None
            try:
                self.fd = os.open(self.temporary, _DIR_FLAGS, dir_fd=directory.fd)
            except OSError:
                raise UnsafePath(_exists_error(directory, self.temporary)) from None
            try:
                os.fchmod(self.fd, 0o700)  # whatever the umask
                _check_own_dir(self.fd, self.temporary_path, "new backup directory", private=True)
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else can hold it
            except BaseException:
                os.close(self.fd)
                raise

    @property
    def path(self) -> Path:
        return self.dir.name(self.final)

    @property
    def temporary_path(self) -> Path:
        return self.dir.name(self.temporary)

    def files(self) -> dict[str, int]:
        return list_files(self.fd) if self.fd >= 0 else {}

    def size(self) -> int:
        return sum(self.files().values())

    def reader(self) -> int:
        """Another descriptor of the same directory (for a child or a thread)."""
        return os.open(".", _DIR_FLAGS, dir_fd=self.fd)

    def publish(self) -> Path:
        for name in self.files():  # pg_dump creates them under its umask; the operator's alone, like every backup
            fd = open_file(self.fd, name)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        os.fsync(self.fd)
        rename_noreplace(self.dir, self.temporary, self.final)
        self.dir.fsync()
        self._close()
        return self.path

    def discard(self) -> bool:
        """Delete the temporary directory and what is in it (before the lock goes); True when there was one."""
        if self.fd < 0:
            return False
        emptied = _empty(self.fd)
        self._close()
        if emptied:
            try:
                os.rmdir(self.temporary, dir_fd=self.dir.fd)
                return True
            except OSError:
                return False
        return False

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def reserve_dir(directory: CheckedDir, names) -> PendingDir:
    """The first of ``names`` free in the directory, as a :class:`PendingDir` (see :func:`reserve_name`)."""
    return reserve_name(directory, names, stat.S_IFDIR, PendingDir)


def remove_stale_partial_dirs(d: CheckedDir) -> list[str]:
    """Temporary backup directories of ours that no running process holds (a killed run), when empty: removed;
    their names."""

    def remove(fd: int, name: str) -> bool:
        if not _empty(fd):
            return False
        os.rmdir(name, dir_fd=d.fd)
        return True

    return remove_unlocked_partials(d, stat.S_IFDIR, _DIR_FLAGS, remove)


def open_own_dir(d: CheckedDir, name: str, what: str = "backup directory") -> int:
    """A directory to read back and restore: the operator's, writable by nobody else; its descriptor."""
    shown = d.name(name)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=d.fd)
    except FileNotFoundError:
        raise UnsafePath(OperatorError(f"The {what} {shown} does not exist.",
                                       "Check the path (it was printed when the backup was written).")) from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(OperatorError(f"The {what} {shown} is not a directory (or is a link); it is not read.",
                                           "Name the directory migrate-tui wrote, not a link to it.")) from None
        raise UnsafePath(OperatorError(f"Cannot read the {what} {shown}: {exc.strerror}.",
                                       "Check the path and its permissions.")) from None
    try:
        _check_own_dir(fd, shown, what, private=False)
    except BaseException:
        os.close(fd)
        raise
    return fd
