"""The fleet file (TOML): the databases a fleet run migrates, each read and checked before anything connects.

::

    [defaults]             # optional: applies to every target that does not say otherwise
    schema = "public"
    drill = false          # no restore drill / rehearsal (fleets of tiny databases)
    lock_wait = 10         # seconds to wait for another running migration (then: busy)
    lock_timeout = 5000    # ms: the migration's SET LOCAL lock_timeout (as --lock-timeout)

    [[target]]
    name = "staging"                      # letters, digits, '.', '_', '-': also its backup directory's name
    url_env = "STAGING_DATABASE_URL"      # the URL (with its password) comes from this environment variable
    wave = "staging"

    [[target]]
    name = "prod-eu"
    url = "postgresql://app@db-eu.internal:5432/app"   # a literal URL: never with a password (~/.pgpass)
    wave = "production"
    drill = true

Everything is checked up front and every problem is reported at once (:class:`FleetFileError`, exit 78):
unknown keys, duplicate names, missing variables, a password in the file, two targets resolving to the same
database (host/port/dbname after libpq's parsing, host lists included). The file itself is opened without
following a link and checked on the descriptor: a regular file of the operator's that others can neither read
nor write — it names the servers the passwords go to.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, MigrateError
from ..redact import password_guesses, redact
from ..settings import DEFAULT_LOCK_WAIT_S, Settings, check_identifier, load_settings
from ..url import conninfo, plain_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_LIMIT = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
TOP_KEYS = ("defaults", "target")
DEFAULT_KEYS = ("schema", "wave", "drill", "lock_wait", "lock_timeout")
TARGET_KEYS = ("name", "url", "url_env") + DEFAULT_KEYS
DEFAULT_WAVE = "default"
_PASSWORD_KEYS = ("password", "passwd", "pass", "pgpassword")


@dataclass(frozen=True)
class FleetTarget:
    name: str
    wave: str
    settings: Settings
    drill: bool | None = None  # None: the command line's choice; False: no drill nor rehearsal; True: always

    @property
    def masked_url(self) -> str:
        return self.settings.masked_url


@dataclass(frozen=True)
class Fleet:
    path: Path
    targets: tuple[FleetTarget, ...]

    @property
    def waves(self) -> tuple[str, ...]:
        """The waves in file order (the order in which each first appears)."""
        seen: list[str] = []
        for target in self.targets:
            if target.wave not in seen:
                seen.append(target.wave)
        return tuple(seen)

    def secrets(self) -> list[str]:
        return sorted({s for target in self.targets for s in target.settings.secrets()})

    def only(self, names: list[str]) -> "Fleet":
        """Just these targets (file order kept); an unknown name is a configuration error."""
        known = {t.name for t in self.targets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"--only names no target of {self.path}: {', '.join(unknown)}.",
                              f"Use the names of the file's [[target]] entries: {', '.join(sorted(known))}.")
        return Fleet(self.path, tuple(t for t in self.targets if t.name in names))


class FleetFileError(ConfigError):
    """Every problem of the file, reported at once (exit 78)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = tuple(problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"The fleet file {path} has {count} (listed above); nothing was attempted.",
                         "Fix each problem listed above (see README.md, Fleets), then run again.")


def read_fleet(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None, *,
               lock_wait: float | None = None) -> Fleet:
    """The checked fleet; raises ConfigError (one problem with the file itself) or FleetFileError (all of them).
    ``lock_wait``: the command line's ``--lock-wait``: it overrides the file's ``lock_wait`` for every target."""
    path = Path(path)
    env = os.environ if environ is None else environ
    text = _read_own_file(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The fleet file {path} is not valid TOML: {redact(str(exc), _guesses(text))}.",
                          "Write it as in README.md (Fleets): a [defaults] table and [[target]] entries.") from None
    problems: list[str] = []
    _password_anywhere(document, problems)
    for key in document:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key '{key}' (expected {', '.join(TOP_KEYS)})")
    defaults = document.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("[defaults] must be a table")
        defaults = {}
    for key in defaults:
        if key not in DEFAULT_KEYS and key.lower() not in _PASSWORD_KEYS:
            problems.append(f"[defaults]: unknown key '{key}' (expected {', '.join(DEFAULT_KEYS)})")
    entries = document.get("target", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append("'target' must be a list of [[target]] tables")
        entries = []
    if not entries and isinstance(document.get("target", []), list):
        problems.append("no [[target]] entry: a fleet needs at least one target")
    targets: list[FleetTarget] = []
    names: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        if lock_wait is not None:
            entry = {**entry, "lock_wait": lock_wait}
        target = _target(number, entry, defaults, env, names, problems)
        if target is not None:
            targets.append(target)
    _same_database(targets, problems)
    if problems:
        raise FleetFileError(path, problems)
    return Fleet(path, tuple(targets))


def _target(number: int, entry: dict[str, Any], defaults: dict[str, Any], env: Mapping[str, str],
            names: dict[str, int], problems: list[str]) -> FleetTarget | None:
    name = entry.get("name")
    label = f"target {number}"
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{label}: 'name' must be 1-63 letters, digits, '.', '_' or '-' (starting with a letter or "
                        f"digit), got {name!r}" if name is not None else f"{label}: 'name' is missing")
    else:
        label = f"target '{name}'"
        if name in names:
            problems.append(f"{label}: the name is used twice (targets {names[name]} and {number})")
        else:
            names[name] = number
    for key in entry:
        if key not in TARGET_KEYS and key.lower() not in _PASSWORD_KEYS:
            problems.append(f"{label}: unknown key '{key}' (expected {', '.join(TARGET_KEYS)})")
    value = {**defaults, **entry}
    url = _url(label, entry, env, problems)
    usable = url is not None  # enough to build its settings (for the same-database check) despite other problems
    schema = value.get("schema")
    if schema is not None:
        if not isinstance(schema, str):
            problems.append(f"{label}: 'schema' must be a string")
            usable = False
        else:
            try:
                check_identifier(schema)
            except ConfigError as exc:
                problems.append(f"{label}: {exc.error.message}")
                usable = False
    wave = value.get("wave", DEFAULT_WAVE)
    if not isinstance(wave, str) or not wave.strip():
        problems.append(f"{label}: 'wave' must be a non-empty string")
    drill = value.get("drill")
    if drill is not None and not isinstance(drill, bool):
        problems.append(f"{label}: 'drill' must be true or false")
    lock_wait = value.get("lock_wait", DEFAULT_LOCK_WAIT_S)
    if isinstance(lock_wait, bool) or not isinstance(lock_wait, (int, float)) or not 0 <= lock_wait <= 86_400:
        problems.append(f"{label}: 'lock_wait' must be a number of seconds (0 to 86400)")
        lock_wait = DEFAULT_LOCK_WAIT_S
    lock_timeout = value.get("lock_timeout")
    if lock_timeout is not None and (isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int)):
        problems.append(f"{label}: 'lock_timeout' must be a whole number of milliseconds")
        usable = False
    if not usable:
        return None
    try:
        settings = load_settings(environ=env, database_url=url, schema=schema, lock_wait_s=float(lock_wait),
                                 lock_timeout_ms=lock_timeout)
    except ConfigError as exc:  # its words name DATABASE_URL: here the URL came from the file or a variable
        source = entry["url_env"] if "url_env" in entry else "its url"
        problems.append(f"{label}: {exc.error.message.replace('DATABASE_URL', source)}")
        return None
    return FleetTarget(str(name), str(wave), settings, drill if isinstance(drill, bool) else None)


def _url(label: str, entry: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> str | None:
    if "url" in entry and "url_env" in entry:
        problems.append(f"{label}: give either 'url' or 'url_env', not both")
        return None
    if "url_env" in entry:
        variable = entry["url_env"]
        if not isinstance(variable, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
            problems.append(f"{label}: 'url_env' must name an environment variable, got {variable!r}")
            return None
        url = env.get(variable, "")
        if not url.strip():
            problems.append(f"{label}: the environment variable {variable} is not set (export {variable}="
                            "postgresql://USER:PASSWORD@HOST:5432/DBNAME)")
            return None
        return url
    if "url" in entry:
        url = entry["url"]
        if not isinstance(url, str) or not url.strip():
            problems.append(f"{label}: 'url' must be a connection URL")
            return None
        if _has_password(url):  # reported by _password_anywhere, with the fix
            return None
        return url
    problems.append(f"{label}: neither 'url_env' nor 'url' is given (add url_env = \"NAME_OF_A_VARIABLE\")")
    return None


def _has_password(text: str) -> bool:
    plain = plain_url(text)
    if plain is not None:
        return bool(plain.password)
    try:
        return bool(conninfo(text).get("password"))
    except MigrateError:
        return bool(re.search(r"password\s*=", text, re.I)) or bool(re.match(r"^[a-z]+://[^/@]*:[^/@]*@", text, re.I))


def _password_anywhere(document: Any, problems: list[str], where: str = "") -> None:
    """A password key, or a URL with a password, anywhere in the file: refused, never echoed."""
    if isinstance(document, dict):
        for key, value in document.items():
            place = f"{where}.{key}" if where else str(key)
            if str(key).lower() in _PASSWORD_KEYS:
                problems.append(f"'{place}': a password in the fleet file is refused (it would sit in a file "
                                "other tools copy, back up and show); put the URL in an environment variable and "
                                "name it with url_env, or keep the password in ~/.pgpass")
            else:
                _password_anywhere(value, problems, place)
    elif isinstance(document, list):
        for index, value in enumerate(document, 1):
            _password_anywhere(value, problems, f"{where}[{index}]")
    elif isinstance(document, str) and _looks_like_url(document) and _has_password(document):
        problems.append(f"'{where}': this URL has a password in it, refused (the file is read by other tools); use "
                        "url_env = \"A_VARIABLE\" with the URL in that environment variable, or leave the password "
                        "out of the URL and keep it in ~/.pgpass")


def _looks_like_url(text: str) -> bool:
    return "://" in text or bool(re.search(r"\b(host|dbname|user|password)\s*=", text))


def _guesses(text: str) -> list[str]:
    return [g for line in text.splitlines() for g in password_guesses(line)]


def _same_database(targets: list[FleetTarget], problems: list[str]) -> None:
    """Two targets that resolve to one database (one of their host:port pairs in common, the same dbname)."""
    seen: dict[tuple[str, str, str], str] = {}
    for target in targets:
        info = target.settings.target
        hosts = [h.strip().lower() or "localhost" for h in info["host"].split(",")]
        ports = [p.strip() or "5432" for p in info["port"].split(",")]
        if len(ports) == 1:
            ports = ports * len(hosts)
        clash = None
        keys = [(h, p, info["dbname"]) for h, p in zip(hosts, ports)]
        for key in keys:
            if key in seen and seen[key] != target.name:
                clash = seen[key]
                problems.append(f"targets '{clash}' and '{target.name}' are the same database "
                                f"({key[0]}:{key[1]}/{key[2]}); a fleet migrates each database once")
                break
        for key in keys:
            seen.setdefault(key, target.name)


def _read_own_file(path: Path) -> str:
    """Opened without following a link; checked on the descriptor: a regular file of the operator's, not readable
    nor writable by others (it names the servers the passwords go to)."""
    fix = f"chmod 600 {path} (and chown it to yourself), or point at a fleet file of your own"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"The fleet file {path} does not exist.", "Check the path given to migrate-tui fleet.") \
            from None
    except OSError as exc:
        import errno

        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
        raise ConfigError(f"The fleet file {path} cannot be read: {reason}.",
                          "Point migrate-tui fleet at the fleet file itself (not a link), one you can read.") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        mode = stat.S_IMODE(st.st_mode)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "is not a regular file"
        elif st.st_uid != os.geteuid():
            problem = f"belongs to another user (uid {st.st_uid})"
        elif mode & 0o022:
            problem = f"can be changed by other users (mode {mode:04o})"
        elif mode & 0o004:
            problem = f"is readable by every user of this machine (mode {mode:04o})"
        if problem:
            raise ConfigError(f"The fleet file {path} {problem}; it was not read.", fix)
        os.set_blocking(fd, True)
        data = handle.read(_LIMIT + 1)
    if len(data) > _LIMIT:
        raise ConfigError(f"The fleet file {path} is larger than 1 MB; it was not read.",
                          "Point migrate-tui fleet at the fleet file itself.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"The fleet file {path} is not UTF-8 text.", "Save it as UTF-8 TOML.") from None
