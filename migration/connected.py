"""Where each DATABASE_URL last connected (light: no database driver, so the audit log can ask at start-up).

With a host list (``postgresql://u@h1:5433,h2:5432/db``, ``host=h1,h2``) libpq connects to the first host
that answers; what the tool shows (the check's Connection row, the audit log's target) names that host,
never the whole list as if it were one. :func:`migration.db.connect_url` records every connection here.
"""

from __future__ import annotations

import re

_last: dict[str, tuple[str, str]] = {}


def record(url: str, host: str, port: str) -> None:
    _last[url] = (host, port)


def server(url: str) -> tuple[str, str] | None:
    """(host, port) of the last connection made with this URL in this process, if any."""
    return _last.get(url)


def describe(host: str, port: str) -> str:
    """``host:port`` (an IPv6 address in brackets; a Unix-socket directory as is)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("/") else host
    return f"{shown}:{port}" if port else shown


_AUTHORITY = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?]*@)?)(?P<hosts>[^/?]*)(?P<tail>.*)$", re.S)


def lists_hosts(masked_url: str) -> bool:
    """Whether a (masked) URL names several hosts."""
    match = _AUTHORITY.match(masked_url)
    return match is not None and "," in match["hosts"]


def masked_target(masked_url: str, url: str) -> str:
    """The masked URL naming the host it connected to when it lists several; else unchanged."""
    found = server(url)
    match = _AUTHORITY.match(masked_url)
    if found is None or match is None or "," not in match["hosts"]:
        return masked_url
    return match["head"] + describe(*found) + match["tail"]
