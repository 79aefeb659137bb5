"""Splitting a fleet between machines or CI jobs: ``--shard K/N`` (K counts from 0, like a Kubernetes Indexed
Job's ``JOB_COMPLETION_INDEX``).

The rule: sort the targets by name; the target at position ``i`` of that order belongs to shard ``i mod N``.
Every target is in exactly one shard, the shards differ in size by at most one, and the split depends only on
the names (not on the file's order or the machine), so every job that reads the same file agrees on it. Within a
shard, the targets keep their waves and file order.
"""

from __future__ import annotations

import re
from typing import Mapping

from ..errors import ConfigError
from .file import Fleet

JOB_INDEX_VAR = "JOB_COMPLETION_INDEX"


def shard_of(names, k: int, n: int) -> set[str]:
    """The names of shard ``k`` of ``n``."""
    return {name for index, name in enumerate(sorted(names)) if index % n == k}


def parse_shard(text: str | None, count: int | None, environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(K, N) from ``--shard K/N``, or from $JOB_COMPLETION_INDEX with ``--shard-count N``; None: no sharding."""
    if text is not None:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise ConfigError(f"--shard must be K/N (e.g. 0/4), got '{text}'.",
                              "Pass --shard K/N with 0 <= K < N: this machine runs shard K of N (K counts from 0).")
        k, n = int(match.group(1)), int(match.group(2))
        source = "--shard"
    elif count is not None:
        index = environ.get(JOB_INDEX_VAR, "").strip()
        if not index.isdigit():
            raise ConfigError(f"--shard-count {count} is given but ${JOB_INDEX_VAR} is not set to a number.",
                              f"Run it in a Kubernetes Indexed Job (it sets ${JOB_INDEX_VAR}), or pass --shard K/N.")
        k, n, source = int(index), count, f"${JOB_INDEX_VAR} with --shard-count"
    else:
        return None
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"{source}: shard {k} of {n} does not exist (K counts from 0 and must be below N).",
                          f"Use K between 0 and {max(n - 1, 0)} with N >= 1, e.g. --shard 0/{max(n, 1)}.")
    return k, n


def select_shard(fleet: Fleet, k: int, n: int) -> Fleet:
    names = shard_of([t.name for t in fleet.targets], k, n)
    return Fleet(fleet.path, tuple(t for t in fleet.targets if t.name in names))


class Selection:
    """``--only NAME…`` and ``--shard K/N``: the targets of a fleet this run takes (``fleet FILE …`` and the Fleet
    screen alike); :attr:`description` names the choice ("" for the whole file). The result may be empty."""

    def __init__(self, only: list[str] | None, shard: tuple[int, int] | None) -> None:
        self.only, self.shard = only, shard
        parts = ([f"only {', '.join(only)}"] if only else []) + ([f"shard {shard[0]}/{shard[1]}"] if shard else [])
        self.description = "; ".join(parts)

    def __call__(self, fleet: Fleet) -> Fleet:
        if self.only:
            fleet = fleet.only(self.only)
        if self.shard is not None:
            fleet = select_shard(fleet, *self.shard)
        return fleet
