"""Keeping the password out of every output: URLs masked (``****``), secrets replaced in any text."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

def password_guesses(url: str) -> list[str]:
    """Everything in a (possibly malformed) URL/DSN that may be the password, for redaction."""
    guesses: set[str] = set()
    try:
        guesses.add(urlsplit(url).password or "")
    except ValueError:
        pass
    # USER:PASSWORD@ after the scheme (or at the start, for a mistyped scheme), up to the first
    # and up to the last '@' (a raw '@', '/', '?' or '#' in the password)
    rest = url.split("://", 1)[1] if "://" in url else re.sub(r"^[A-Za-z]+:?/+", "", url)
    for pattern in (r"^[^:@/?#\s]*:([^@]*)@", r"^[^:@/?#\s]*:(.*)@"):
        match = re.match(pattern, rest, re.ASCII)  # libpq's isspace(): ASCII whitespace only
        if match:
            guesses.add(match.group(1))
    # password=... in key=value form (quoted or not) and in a URL's query string
    for pattern in (r"password\s*=\s*'((?:[^'\\]|\\.)*)'?", r"password\s*=\s*(\S*)", r"password=([^&#\s]*)"):
        for match in re.finditer(pattern, url, re.ASCII):
            guesses.add(match.group(1))
            guesses.add(re.sub(r"\\(.)", r"\1", match.group(1)))
    for value in list(guesses):
        try:
            guesses.add(unquote(value, errors="strict"))
        except UnicodeDecodeError:
            pass
    return [g for g in guesses if len(g) >= 3]


MASKED_ALL = "postgresql://****@****"


def host_list(hosts: str, ports: str) -> str:
    """libpq's ``host`` and ``port`` lists as URL-style HOST:PORT pairs (one port for every host, or one
    port per host): ``host=h1,h2 port=5433,5432`` -> ``h1:5433,h2:5432``."""
    names, numbers = hosts.split(","), ports.split(",") if ports else [""]
    if len(numbers) == 1:
        numbers = numbers * len(names)
    if len(numbers) != len(names):  # libpq refuses it; show it as given
        return f"{hosts}:{ports}"
    return ",".join(f"{h}:{p}" if p else h for h, p in zip(names, numbers))


def mask_url(url: str) -> str:
    """The URL with its password replaced by ****; never raises, never leaks.

    When the URL is ambiguous (e.g. a raw '/', '?' or '#' in the password), everything but the
    scheme is masked rather than risk showing part of the password as a host or path.
    """
    try:
        return redact(_mask_url(url), password_guesses(url))
    except Exception:
        return MASKED_ALL


def _mask_url(url: str) -> str:
    if "://" not in url:
        from psycopg.conninfo import conninfo_to_dict  # key=value form: libpq reads it (any error: all masked)

        info = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
        user = info.get("user", "")
        host = info.get("host", "")
        port = info.get("port", "")
        db = info.get("dbname", "")
        cred = f"{quote(user)}:****@" if user else ("****@" if "password" in info else "")
        return f"postgresql://{cred}{host_list(host, port)}/{db}"
    parts = urlsplit(url)
    scheme, rest = url.split("://", 1)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]{0,30}$", scheme) or parts.fragment:
        return MASKED_ALL
    netloc = parts.netloc
    if "@" in rest and "@" not in netloc:
        return MASKED_ALL  # an '@' outside the authority: a raw '/' or '?' in the password
    userinfo = re.match(r"([^:@/?#]*):(.*)@", rest)  # up to the last '@'
    if userinfo and unquote(userinfo.group(2)) != unquote(parts.password or ""):
        return MASKED_ALL  # '@' in the query too: the parts cannot be told apart safely
    if "@" in netloc:
        cred, hostport = netloc.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        if ":" in cred:
            netloc = f"{user}:****@{hostport}" if user else f"****@{hostport}"
    query = "&".join(
        ("{}=****".format(p.split("=", 1)[0]) if p.split("=", 1)[0] in ("password", "sslpassword") else p)
        for p in parts.query.split("&")
        if p
    )
    return f"{parts.scheme}://{netloc}{parts.path}{'?' + query if query else ''}"


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Replace every secret (and its URL-encoded form) in text by ****."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "****")
    return text
