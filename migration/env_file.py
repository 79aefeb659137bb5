"""Reading a ``.env`` file: only one the operator owns and nobody else can change, every line parsed or
named (file and line) when it cannot be, never a silent skip that surfaces later as "DATABASE_URL is not set".

A ``.env`` in a directory other users can write to may have been planted: it names the server the password
goes to, so one that belongs to another user, or that others can write, is refused (exit 78).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from .errors import ConfigError

_LIMIT = 1 << 20  # a .env file is small; a huge one is not a .env file


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value pairs of the file (values expanded as python-dotenv does); ConfigError names any problem."""
    text = _read_own_file(path)
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            shown = binding.original.string.strip().split("=", 1)[0][:40]
            raise ConfigError(
                f"{path}, line {line}: this line cannot be read (it starts with '{shown}').",
                "Write it as KEY=value; a value with spaces or '#' goes in quotes, and every opening quote needs "
                "its closing quote on the same line (or a matching one for a multi-line value).")
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def _read_own_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"The env file {path} does not exist.",
                          "Check the --env-file path, or leave it out to use ./.env.") from None
    except OSError as exc:
        raise ConfigError(f"Could not read {path}: {exc.strerror}.",
                          "Make sure the file is readable by you.") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "is not a regular file"
        elif st.st_uid not in (os.geteuid(), 0):
            problem = f"belongs to another user ({_owner(st.st_uid)})"
        elif st.st_mode & 0o022:
            problem = f"can be changed by other users (mode {stat.S_IMODE(st.st_mode):04o})"
        if problem:
            raise ConfigError(
                f"The env file {path} {problem}; it was not read.",
                "It says which server gets the password: use a .env of your own that only you can change "
                f"(chmod go-w {path}), or pass --env-file PATH.")
        os.set_blocking(fd, True)
        data = handle.read(_LIMIT + 1)
    if len(data) > _LIMIT:
        raise ConfigError(f"The env file {path} is larger than 1 MB; it was not read.",
                          "Point --env-file at the .env file itself.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"Could not read {path}: it is not UTF-8 text.",
                          "Save it as UTF-8 text with KEY=value lines.") from None


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"
