"""The version of migrate-tui, from the installed package's metadata (pyproject.toml's ``version``)."""

from __future__ import annotations

import functools

DISTRIBUTION = "migrate-tui"


@functools.lru_cache(maxsize=1)
def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
