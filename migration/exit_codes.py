"""Exit codes of every migrate-tui command: scripts rely on these, so they live here only, with the one
table from an operation's outcome to its exit code (every command and the wizard use it)."""

from .outcome import Outcome

OK = 0  # success, or nothing needed (migration not needed, nothing to roll back)
FAILURE = 1  # the operation failed or was refused; nothing was left half-done
USAGE = 2  # bad command-line arguments (argparse's own code)
BUSY = 75  # another migration holds the lock (EX_TEMPFAIL): try again later
CONFIG = 78  # bad or missing configuration, or no terminal for the wizard (EX_CONFIG)
CANCELLED = 130  # interrupted by Ctrl+C / SIGTERM / SIGHUP; everything rolled back

BY_OUTCOME = {
    Outcome.SUCCESS: OK,
    Outcome.NOT_NEEDED: OK,
    Outcome.NEEDS_CONFIRMATION: FAILURE,
    Outcome.CHANGED: FAILURE,
    Outcome.FAILED: FAILURE,
    Outcome.CANCELLED: CANCELLED,
    Outcome.BUSY: BUSY,
}


def for_outcome(outcome: Outcome | None) -> int:
    """The exit code of an operation that ended so (no outcome at all: a failure)."""
    return BY_OUTCOME.get(outcome, FAILURE) if outcome is not None else FAILURE
