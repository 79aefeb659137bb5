"""Exit codes of every migrate-tui command: scripts rely on these, so they live here only."""

OK = 0  # success, or nothing needed (migration not needed, nothing to roll back)
FAILURE = 1  # the operation failed; nothing was left half-done
USAGE = 2  # bad command-line arguments (argparse's own code)
BUSY = 75  # another migration holds the lock (EX_TEMPFAIL): try again later
CONFIG = 78  # bad or missing configuration, or no terminal for the wizard (EX_CONFIG)
CANCELLED = 130  # interrupted by Ctrl+C / SIGTERM; everything rolled back


def __getattr__(name: str):
    """``BY_OUTCOME``, built on first use: the events module loads psycopg, which a backup does
    not need before pg_dump has started (PEP 562 module attribute)."""
    if name != "BY_OUTCOME":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .events import Outcome

    table = {
        Outcome.SUCCESS: OK,
        Outcome.NOT_NEEDED: OK,
        Outcome.FAILED: FAILURE,
        Outcome.CANCELLED: CANCELLED,
        Outcome.BUSY: BUSY,
    }
    globals()["BY_OUTCOME"] = table
    return table
