"""What a dump holds, read from its SQL text as it streams past: rows per table, and what a restore needs.

:class:`DumpReader` is fed the bytes of a plain dump (by the hashing follower, while pg_dump writes
it) or the SQL that ``pg_restore -f -`` prints from a custom or directory archive (during its
verification). It counts the lines of every ``COPY ... FROM stdin;`` block — one line per row in
COPY's text format, where a newline inside a value is written ``\\n`` — and, outside those blocks,
notes the extensions the dump creates, the sequence values it sets and the roles it names. The
server does no extra work for any of it.

The COPY data, nearly all of a large dump, is only searched for line ends and the ``\\.`` that
closes a block (C-speed ``bytes.find``/``count``); the few statement lines are parsed in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COPY_TAIL = re.compile(r"\s*(?:\(.*\))?\s*FROM stdin;$")
_EXTENSION = re.compile(r'^CREATE EXTENSION IF NOT EXISTS ("(?:[^"]|"")+"|[^\s;]+)')
_SETVAL = re.compile(r"^SELECT pg_catalog\.setval\('((?:[^']|'')+)', (-?\d+), (true|false)\);$")
_OWNER = re.compile(r"^ALTER .+ OWNER TO (.+);$")
_GRANT = re.compile(r"^GRANT .+ TO (.+?)(?: WITH (?:GRANT|ADMIN|INHERIT|SET) .*)?(?: GRANTED BY .+)?;$")
_REVOKE = re.compile(r"^REVOKE .+ FROM (.+?)(?: GRANTED BY .+)?;$")
_FOR_ROLE = re.compile(r"^ALTER DEFAULT PRIVILEGES FOR ROLE (.+?) (?:IN SCHEMA .+ )?(?:GRANT|REVOKE) ")
_POLICY = re.compile(r"^CREATE POLICY .+? TO (.+?)(?: USING .*| WITH CHECK .*|;)$")
_AUTHORIZATION = re.compile(r"^SET SESSION AUTHORIZATION '((?:[^']|'')+)';$")
_NOT_ROLES = {"PUBLIC", "CURRENT_USER", "SESSION_USER", "CURRENT_ROLE"}
_PARTIAL_IN_COPY = 3  # inside a COPY block only a line start can matter: '\.' and its newline
_MARK = b"\\.\n"


def split_identifiers(text: str) -> list[str]:
    """``public.t``, ``"My Schema"."T"``, ``a, "b c"``: the identifiers, unquoted, in order.

    Separators (``.``, ``,``, spaces) outside double quotes end an identifier; bare identifiers are
    kept as written (pg_dump quotes every one that is not lower case)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j, buf = i + 1, []
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        elif ch in "., ":
            i += 1
        else:
            j = i
            while j < n and text[j] not in "., ":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def take_qualified(text: str, pos: int = 0) -> tuple[list[str], int]:
    """The dotted name that starts at ``pos`` (``a.b``, ``"x y"."z"``): its parts, unquoted, and where it ends."""
    parts: list[str] = []
    n = len(text)
    while pos < n:
        if text[pos] == '"':
            j, buf = pos + 1, []
            while j < n:
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            pos = j + 1
        else:
            j = pos
            while j < n and text[j] not in '. ("':
                j += 1
            parts.append(text[pos:j])
            pos = j
        if pos < n and text[pos] == ".":
            pos += 1
            continue
        break
    return parts, pos


def quote_ident(name: str) -> str:
    """An identifier as PostgreSQL quotes it when needed (for display and manifest keys)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """``schema.name``, each part quoted when it needs it: a unique key for a table or sequence."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


@dataclass
class DumpContents:
    """What a dump holds: rows per table (``schema.table`` keys, quoted as needed) and what restoring it needs."""

    rows: dict[str, int] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)
    sequences: dict[str, list] = field(default_factory=dict)  # name -> [value, is_called]
    roles: set[str] = field(default_factory=set)
    open_block: str | None = None  # a COPY block that never ended (a truncated dump)

    def merge(self, other: "DumpContents") -> None:
        for name, count in other.rows.items():
            self.rows[name] = self.rows.get(name, 0) + count
        self.extensions += [e for e in other.extensions if e not in self.extensions]
        self.sequences.update(other.sequences)
        self.roles |= other.roles
        self.open_block = self.open_block or other.open_block

    def as_manifest(self) -> dict:
        return {"rows": dict(sorted(self.rows.items())), "extensions": sorted(self.extensions),
                "sequences": dict(sorted(self.sequences.items())), "roles": sorted(self.roles)}


class DumpReader:
    """Fed a dump's SQL text in chunks of any size (:meth:`feed`); :meth:`finish` gives its :class:`DumpContents`."""

    def __init__(self, in_copy: str | None = None) -> None:
        """``in_copy``: the text starts inside a COPY block, counted under this name (the data file of a
        directory-format archive: its rows, then the end mark)."""
        self.contents = DumpContents()
        self._table: str | None = in_copy  # the COPY block being read
        self._rows = 0
        if in_copy is not None:
            self.contents.rows[in_copy] = 0
        self._partial: bytes | None = None  # an unfinished line carried over from the previous chunk
        self.bytes_fed = 0

    @property
    def rows_so_far(self) -> int:
        """Rows of the blocks read so far, the one being read included."""
        return sum(self.contents.rows.values()) + self._rows

    @property
    def in_copy(self) -> str | None:
        """The table whose COPY block is being read (None between blocks)."""
        return self._table

    def feed(self, buf: bytes | bytearray, n: int | None = None) -> None:
        """The next ``n`` bytes of the dump (``buf`` may be a reused buffer: nothing keeps a reference)."""
        n = len(buf) if n is None else n
        self.bytes_fed += n
        start = 0
        if self._partial is not None:
            nl = buf.find(b"\n", 0, n)
            if nl < 0:
                self._keep_partial(self._partial + bytes(buf[:n]))
                return
            line = self._partial + bytes(buf[:nl + 1])
            self._partial = None
            self._lines(line, 0, len(line))
            start = nl + 1
        end = buf.rfind(b"\n", start, n) + 1
        if end <= start:
            if start < n:
                self._keep_partial(bytes(buf[start:n]))
            return
        self._lines(buf, start, end)
        if end < n:
            self._keep_partial(bytes(buf[end:n]))

    def finish(self) -> DumpContents:
        if self._partial:
            line = self._partial + b"\n"
            self._partial = None
            self._lines(line, 0, len(line))
        if self._table is not None:
            self.contents.open_block = self._table
        return self.contents

    # -- inside -----------------------------------------------------------------------------------
    def _keep_partial(self, data: bytes) -> None:
        if self._table is not None and len(data) > _PARTIAL_IN_COPY:
            data = b"x" * _PARTIAL_IN_COPY  # a long row's start: only 'it is not the end mark' matters
        self._partial = data

    def _lines(self, buf, pos: int, end: int) -> None:
        """Complete lines buf[pos:end] (end is just after a newline)."""
        while pos < end:
            if self._table is not None:
                if buf.startswith(_MARK, pos, end):
                    self._end_block()
                    pos += len(_MARK)
                    continue
                idx = buf.find(b"\n" + _MARK, pos, end)
                if idx < 0:
                    self._rows += buf.count(b"\n", pos, end)
                    return
                self._rows += buf.count(b"\n", pos, idx + 1)
                self._end_block()
                pos = idx + 1 + len(_MARK)
            else:
                nl = buf.find(b"\n", pos, end)
                self._statement(bytes(buf[pos:nl]).decode("utf-8", errors="replace"))
                pos = nl + 1

    def _end_block(self) -> None:
        rows = self.contents.rows
        rows[self._table] = rows.get(self._table, 0) + self._rows
        self._table, self._rows = None, 0

    def _statement(self, line: str) -> None:
        if not line or line.startswith("--"):
            return
        if line.startswith("COPY "):
            parts, end = take_qualified(line, len("COPY "))
            if _COPY_TAIL.match(line, end):
                if len(parts) == 2:
                    self._table, self._rows = qualified(*parts), 0
                    self.contents.rows.setdefault(self._table, 0)
            return
        if line.startswith("CREATE EXTENSION"):
            match = _EXTENSION.match(line)
            if match:
                name = split_identifiers(match.group(1))[0]
                if name not in self.contents.extensions:
                    self.contents.extensions.append(name)
            return
        if line.startswith("SELECT pg_catalog.setval("):
            match = _SETVAL.match(line)
            if match:
                parts = split_identifiers(match.group(1).replace("''", "'"))
                if len(parts) == 2:
                    self.contents.sequences[qualified(*parts)] = [int(match.group(2)), match.group(3) == "true"]
            return
        self._roles(line)

    def _roles(self, line: str) -> None:
        for pattern in (_OWNER, _GRANT, _REVOKE, _FOR_ROLE, _POLICY, _AUTHORIZATION):
            match = pattern.match(line)
            if match:
                text = match.group(1)
                names = [text.replace("''", "'")] if pattern is _AUTHORIZATION else split_identifiers(text)
                for name in names:
                    if name and name.upper() not in _NOT_ROLES and not name.startswith("pg_"):
                        self.contents.roles.add(name)
                return
