"""Does the migration depend on the size of the database? Empty database vs one with 10^7 rows elsewhere.

    .venv/bin/python benchmarks/migration_scale.py                  # 10,000,000 rows (about 1.3 GB)
    .venv/bin/python benchmarks/migration_scale.py --rows 1000000 --runs 15

Starts a throwaway PostgreSQL 18 (the embedded wheel, default durability settings), creates two
databases: ``empty`` and ``big`` (an ``orders`` table of --rows rows made with generate_series,
with a primary key and a secondary index, plus a ``customers`` table; vacuumed, frozen and analyzed
so autovacuum does not run during the measurement). Then it
alternates the migration (the engine's eight steps, exactly as ``migrate-tui run`` runs them,
in-process so interpreter start-up is not measured) on each database, --runs times, dropping
the new table between runs, and prints the medians and their ratio (goal: <= 1.1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration.pgserver import LocalServer, embedded_bin_dir  # noqa: E402

FILL = """
CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO public.customers SELECT g, 'customer ' || g FROM generate_series(1, 100000) g;
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12, 2) NOT NULL,
                     status text NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO public.orders SELECT g, 1 + g % 100000, (g % 10000) / 100.0, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3],
                          timestamptz '2025-01-01' + g * interval '1 second'
FROM generate_series(1, {rows}) g;
CREATE INDEX orders_customer_idx ON public.orders (customer_id);
VACUUM (ANALYZE, FREEZE);
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in the big database's orders table")
    parser.add_argument("--runs", type=int, default=21, help="migrations per database (alternating)")
    args = parser.parse_args()

    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        print("needs the embedded PostgreSQL wheel: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    from migration.db import connect_url, create_database, outside_transaction
    from migration.events import Outcome
    from migration.runner import Migration
    from migration.settings import load_settings

    server = LocalServer(bin_dir, settings=()).start()  # PostgreSQL defaults: fsync on, as in production
    try:
        with connect_url(server.url()) as conn:  # pinned sessions, as the tool's own
            version = conn.execute("SHOW server_version").fetchone()[0]
            for name in ("empty", "big"):
                create_database(conn, name, "postgres")
        t = time.perf_counter()
        with connect_url(server.url("big")) as conn:
            for statement in FILL.format(rows=args.rows).split(";\n"):
                if statement.strip().startswith("VACUUM"):
                    outside_transaction(conn, statement)
                elif statement.strip():
                    conn.execute(statement)
            outside_transaction(conn, "CHECKPOINT")
            size = conn.execute("SELECT pg_database_size('big')").fetchone()[0]
        print(f"PostgreSQL {version}; big database: {args.rows:,} orders rows + 100,000 customers, "
              f"{size / 1e9:.2f} GB (filled in {time.perf_counter() - t:.0f} s)")

        def migrate(dbname: str) -> float:
            settings = load_settings(database_url=server.url(dbname), environ={})
            t0 = time.perf_counter()
            result = Migration(settings, lambda event: None).run()
            elapsed = time.perf_counter() - t0
            if result.outcome is not Outcome.SUCCESS:
                raise SystemExit(f"the migration failed on {dbname}: {result.message} {result.error}")
            with connect_url(server.url(dbname)) as conn:
                conn.execute("DROP TABLE public.database_backups")
            return elapsed

        migrate("empty"), migrate("big")  # warm-up: caches, first connections
        times: dict[str, list[float]] = {"empty": [], "big": []}
        for _ in range(args.runs):
            for name in ("empty", "big"):
                times[name].append(migrate(name))
        med = {name: statistics.median(values) for name, values in times.items()}
        for name, values in times.items():
            print(f"  {name:5}: median {med[name] * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms  "
                  f"max {max(values) * 1000:7.1f} ms  ({len(values)} runs)")
        ratio = med["big"] / med["empty"]
        print(f"ratio big/empty (medians): {ratio:.3f}  (goal <= 1.1: {'met' if ratio <= 1.1 else 'MISSED'})")
        print(f"ratio big/empty (fastest runs, less noise): {min(times['big']) / min(times['empty']):.3f}")
        return 0
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
