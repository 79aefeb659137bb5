"""The guide's post-migration "Add Environment Variables": a random CRON_SECRET written into the ``.env`` file.

:func:`add_cron_secret` writes ``CRON_SECRET=<64 hex digits>`` (32 random bytes from :mod:`secrets`)
into the operator's ``.env``:

- every other byte of the file is kept (comments, blank lines, ``export`` lines, quotes, CRLF line
  endings); an existing ``CRON_SECRET`` line keeps its ``export``, spacing and comment, only its
  value changes; a missing one is appended with the file's own line ending;
- an existing, non-empty CRON_SECRET is never replaced unless ``replace=True`` (the operator's
  explicit choice: ``--force``, or Replace in the wizard);
- the file is written the way every file of the tool is (:mod:`migration.safe_files`): its
  directory is opened and checked once, the existing ``.env`` must be a regular file of the
  operator's that nobody else can change, the new content goes to a temporary created
  ``O_EXCL|O_NOFOLLOW`` (mode 0600) beside it, is fsynced, and is renamed over the ``.env`` — atomic:
  a reader sees the old file or the new one, never half of it;
- the value itself is never returned, printed or logged: only its length and last four characters.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, MigrateError, OperatorError

NAME = "CRON_SECRET"
RANDOM_BYTES = 32  # the guide asks for "a secure random string"; 32 bytes = 64 hex digits
_LIMIT = 1 << 20
# The value of a KEY=value binding, keeping what surrounds it: blank lines before, export, spaces, a comment.
_BINDING = re.compile(
    r"(?P<pre>(?:[ \t]*\r?\n)*[ \t]*(?:export[ \t]+)?" + NAME + r"[ \t]*=[ \t]*)"
    r"(?P<value>'(?:\\'|[^'])*'|\"(?:\\\"|[^\"])*\"|[^\s#]*)"
    r"(?P<post>[ \t]*(?:#[^\r\n]*)?(?:\r?\n)?)\Z")


@dataclass(frozen=True)
class CronSecretWritten:
    path: Path
    created: bool  # the file did not exist and was created
    replaced: bool  # an existing (non-empty) CRON_SECRET was replaced
    length: int
    tail: str  # its last four characters, to tell it apart: never the value itself
    line: int  # the line it is on

    @property
    def masked(self) -> str:
        return f"…{self.tail} ({self.length} characters)"


class CronSecretExists(MigrateError):
    """The file already has a CRON_SECRET: nothing was written (replace only on the operator's choice)."""


def env_path(explicit: str | os.PathLike[str] | None, in_use: Path | None) -> Path:
    """The file to write: ``--env-file``, else the .env the settings came from, else ./.env."""
    if explicit is not None:
        return Path(explicit)
    return in_use if in_use is not None else Path(".env")


def existing_secret(path: Path) -> tuple[bool, int]:
    """(set, line) of CRON_SECRET in the file as it is now, read the safe way; (False, 0) when absent."""
    from .safe_files import open_dir

    with open_dir(path.parent if str(path.parent) else ".", what=".env directory") as directory:
        text, _ = _read(directory, path)
    found = _find(text or "", path)
    return (found is not None and bool(found[1]), found[2] if found else 0)


def add_cron_secret(path: str | os.PathLike[str], *, replace: bool = False) -> CronSecretWritten:
    """Write a new random CRON_SECRET into ``path`` (created 0600 when missing). Raises CronSecretExists
    when one is set and ``replace`` is False; MigrateError (with a fix) for a file it must not touch."""
    from .safe_files import open_dir

    path = Path(path)
    with open_dir(path.parent if str(path.parent) else ".", what=".env directory") as directory:
        text, before = _read(directory, path)
        value = secrets.token_hex(RANDOM_BYTES)
        new_text, line, replaced = _with_secret(text or "", path, value, replace)
        _write(directory, path, new_text.encode("utf-8"), before)
    return CronSecretWritten(path, before is None, replaced, len(value), value[-4:], line)


# -- reading ------------------------------------------------------------------------------------------------
def _read(directory, path: Path) -> tuple[str | None, os.stat_result | None]:
    """The file's text and its stat (None, None when it does not exist): only a regular file of the
    operator's that nobody else can change, never through a link."""
    st = directory.lstat(path.name)
    if st is None:
        return None, None
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file"
    elif st.st_uid != os.geteuid():
        problem = f"belongs to another user ({_owner(st.st_uid)})"
    elif st.st_mode & 0o022:
        problem = f"can be changed by other users (mode {stat.S_IMODE(st.st_mode):04o})"
    if problem:
        raise MigrateError(OperatorError(
            f"The env file {path} {problem}; it was not changed.",
            f"Use a .env file of your own that only you can change (chmod go-w {path}), or pass --env-file PATH."))
    fd = directory.open_read(path.name, st)
    try:
        data = os.read(fd, _LIMIT + 1)
    finally:
        os.close(fd)
    if len(data) > _LIMIT:
        raise MigrateError(OperatorError(f"The env file {path} is larger than 1 MB; it was not changed.",
                                         "Point --env-file at the .env file itself."))
    try:
        return data.decode("utf-8"), st
    except UnicodeDecodeError:
        raise MigrateError(OperatorError(f"The env file {path} is not UTF-8 text; it was not changed.",
                                         "Save it as UTF-8 text with KEY=value lines.")) from None


def _find(text: str, path: Path):
    """(binding text, current value, line number, offset) of CRON_SECRET, or None."""
    from dotenv.parser import parse_stream

    found, offset = [], 0
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        if binding.error:
            raise ConfigError(f"{path}, line {binding.original.line}: this line cannot be read; the file was not "
                              "changed.", "Write it as KEY=value (quote a value with spaces or '#').")
        if binding.key == NAME:
            blank = len(original) - len(original.lstrip("\r\n \t"))
            line = binding.original.line + original[:blank].count("\n")
            found.append((original, binding.value or "", line, offset))
        offset += len(original)
    if len(found) > 1:
        lines = " and ".join(str(f[2]) for f in found)
        raise MigrateError(OperatorError(f"{path} sets {NAME} more than once (lines {lines}); it was not changed.",
                                         f"Keep one {NAME} line in {path}, then run again."))
    return found[0] if found else None


def _with_secret(text: str, path: Path, value: str, replace: bool) -> tuple[str, int, bool]:
    """The new text, the line CRON_SECRET is on, and whether a set value was replaced."""
    found = _find(text, path)
    newline = "\r\n" if "\r\n" in text else "\n"
    if found is None:
        head = text if not text or text.endswith(("\n", "\r")) else text + newline
        return f"{head}{NAME}={value}{newline}", head.count("\n") + 1, False
    original, current, line, offset = found
    if current and not replace:
        raise CronSecretExists(OperatorError(
            f"{path} already sets {NAME} (line {line}); it was not changed.",
            "The application's cron jobs use the one that is there. To replace it anyway: "
            "migrate-tui cron-secret --force (or Replace in the wizard), then deploy the new value."))
    match = _BINDING.match(original)
    if match is not None:
        binding = match["pre"] + value + match["post"]
    else:  # written in a way the pattern does not know: the whole binding, its line ending kept
        ending = newline if original.endswith("\n") else ""
        blank = original[: len(original) - len(original.lstrip("\r\n \t"))]
        binding = f"{blank}{NAME}={value}{ending}"
    return text[:offset] + binding + text[offset + len(original):], line, bool(current)


# -- writing ------------------------------------------------------------------------------------------------
def _write(directory, path: Path, data: bytes, before: os.stat_result | None) -> None:
    """``data`` as the new ``path``: a 0600 temporary beside it, fsynced, then renamed over it (or linked to
    its name when it did not exist). The .env must still be the file that was read."""
    temporary = f".{path.name}.{secrets.token_hex(4)}.partial"
    fd = directory.create(temporary, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        now = directory.lstat(path.name)
        if before is None:
            directory.publish(temporary, path.name)  # fails if a file (or link) appeared meanwhile
            return
        if now is None or (now.st_ino, now.st_dev) != (before.st_ino, before.st_dev):
            raise MigrateError(OperatorError(f"{path} was replaced while it was being updated; it was not changed.",
                                             "Someone else changes this file: check it, then run again."))
        os.rename(temporary, path.name, src_dir_fd=directory.fd, dst_dir_fd=directory.fd)
        directory.fsync()
    except BaseException:
        directory.unlink(temporary)
        raise


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"
