"""Large databases: parallel directory backups, the drill against a raw parallel restore, and what the drill's
counting costs the production server. Every ratio is measured in this one run.

    .venv/bin/python benchmarks/drill.py                    # ~1.1 GB of 8 similar tables (--size-gb 1.2), and pgbench scale 70
    .venv/bin/python benchmarks/drill.py --runs 5 --only several

Starts a throwaway PostgreSQL 18 (the embedded wheel) as the "production" server and fills two databases:
``several`` (``--tables`` tables of similar size, ``--size-gb`` in all, each with a primary key) and
``pgbench`` (``pgbench -i -s SCALE``: one dominant table). On each, alternating the order per run:

1. ``migrate-tui backup --format directory --jobs N`` against raw single-job ``pg_dump --format=plain``
   (goal: ratio <= 0.75 on ``several``; the one-table case is reported too).
2. ``migrate-tui drill BACKUP --jobs N`` against the same directory restored by raw ``pg_restore --jobs N``
   into a freshly started local server with the same settings (started, database created, restored,
   removed, all timed): goal <= 1.15.
3. The production server's read work (``pg_stat_user_tables``: scans and tuples read; ``pg_stat_database``:
   tuples returned/fetched, blocks) during a raw ``pg_dump``, ``migrate-tui backup`` (default options,
   which count the rows from the dump), ``migrate-tui drill`` (which does not connect to it at all), and
   ``migrate-tui backup --exact`` for contrast: the goal is 0 extra reads of user tables by default.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration.db import connect_url, outside_transaction  # noqa: E402
from migration.pgserver import LocalServer, embedded_bin_dir  # noqa: E402

CLI = str(ROOT / ".venv/bin/migrate-tui")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.2, help="total size of the several-tables database")
    parser.add_argument("--tables", type=int, default=8)
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale factor (70 ~ 1.05 GB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=("several", "pgbench"), default=None)
    args = parser.parse_args()

    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        print("needs the embedded PostgreSQL wheel: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    compileall.compile_dir(str(ROOT / "migration"), quiet=1)
    compileall.compile_dir(str(ROOT / "headless"), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="migrate-tui-bench-drill-"))
    server = LocalServer(bin_dir).start()
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; PostgreSQL 18.6 (embedded), "
              f"{args.runs} runs, --jobs {args.jobs}")
        names = [args.only] if args.only else ["several", "pgbench"]
        results = {}
        for name in names:
            t = time.perf_counter()
            (fill_several if name == "several" else fill_pgbench)(server, bin_dir, args)
            size = _scalar(server, name, "SELECT pg_database_size(current_database())")
            print(f"\n== {name}: {size / 1e9:.2f} GB, {_tables(server, name)} (filled in "
                  f"{time.perf_counter() - t:.0f} s)")
            results[name] = bench(server, bin_dir, name, args, work)
        print("\n== summary (medians)")
        for name, r in results.items():
            print(f"  {name}: backup --format directory --jobs {args.jobs} {r['backup']:.2f} s vs raw pg_dump plain "
                  f"{r['raw_dump']:.2f} s -> ratio {r['backup'] / r['raw_dump']:.3f}"
                  + (" (goal <= 0.75)" if name == "several" else "")
                  + f"; control raw pg_dump --jobs {args.jobs}: {r['raw_parallel'] / r['raw_dump']:.3f}")
            print(f"  {name}: drill {r['drill']:.2f} s vs raw pg_restore --jobs {args.jobs} into a fresh server "
                  f"{r['raw_restore']:.2f} s -> ratio {r['drill'] / r['raw_restore']:.3f} (goal <= 1.15); the drill's "
                  f"pg_restore {r['drill_restore']:.2f} s, the rest of the operation {r['drill_rest']:.2f} s (server start "
                  f"and sha256 check, roles, counting, comparison, removal), interpreter start-up and output "
                  f"{r['drill_startup']:.2f} s")
            print(f"  {name}: extra reads of user tables by migrate-tui backup over raw pg_dump: "
                  f"{r['extra_backup']}; by the drill: {r['extra_drill']} (goal 0); with --exact: {r['extra_exact']}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


# --- the databases ---------------------------------------------------------------------------------------

def fill_several(server: LocalServer, bin_dir: Path, args) -> None:
    _createdb(server, "several")
    rows = int(args.size_gb * 1e9 / args.tables / 175)  # ~175 bytes per row with its primary key entry
    with connect_url(server.url("several")) as conn:
        for n in range(1, args.tables + 1):
            conn.execute(f"CREATE TABLE public.t{n} (id bigint PRIMARY KEY, a int NOT NULL, b text NOT NULL, "
                         "c timestamptz NOT NULL, d numeric(12, 2))")
            conn.execute(f"INSERT INTO public.t{n} SELECT g, g % 1000, md5(g::text) || md5((g + {n})::text), "
                         f"'2026-01-01'::timestamptz + g * interval '1 second', g / 7.0 "
                         f"FROM generate_series(1, {rows}) g")
        outside_transaction(conn, "VACUUM (FREEZE, ANALYZE)")
        outside_transaction(conn, "CHECKPOINT")


def fill_pgbench(server: LocalServer, bin_dir: Path, args) -> None:
    _createdb(server, "pgbench")
    env = dict(PATH=os.environ.get("PATH", ""), PGPASSWORD=server.password)
    subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", str(args.scale),
                    f"--dbname=host=127.0.0.1 port={server.port} user=postgres dbname=pgbench"], env=env,
                   check=True, capture_output=True)
    with connect_url(server.url("pgbench")) as conn:
        outside_transaction(conn, "VACUUM (FREEZE, ANALYZE)")
        outside_transaction(conn, "CHECKPOINT")


def _createdb(server: LocalServer, name: str) -> None:
    with connect_url(server.url()) as conn:
        outside_transaction(conn, f"CREATE DATABASE {name}")


# --- the measurements --------------------------------------------------------------------------------------

def bench(server: LocalServer, bin_dir: Path, name: str, args, work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=server.url(name), MIGRATE_AUDIT_LOG=os.devnull)
    raw_env = dict(PATH=os.environ.get("PATH", ""), PGPASSWORD=server.password)
    conninfo = f"host=127.0.0.1 port={server.port} user=postgres dbname={name}"
    times: dict[str, list[float]] = {"raw_dump": [], "raw_parallel": [], "backup": [], "raw_restore": [], "drill": []}
    kept = work / f"{name}-kept"

    def raw_dump(run: int) -> None:
        target = work / "raw.sql"
        t = time.perf_counter()
        subprocess.run([str(bin_dir / "pg_dump"), "--no-password", "--format=plain", f"--file={target}",
                        f"--dbname={conninfo}"], env=raw_env, check=True)
        times["raw_dump"].append(time.perf_counter() - t)
        target.unlink()

    def raw_parallel(run: int) -> None:  # the control: what the hardware gives --jobs, without any checking
        target = work / "raw.dir"
        t = time.perf_counter()
        subprocess.run([str(bin_dir / "pg_dump"), "--no-password", "--format=directory", f"--jobs={args.jobs}",
                        "--compress=0", f"--file={target}", f"--dbname={conninfo}"], env=raw_env, check=True)
        times["raw_parallel"].append(time.perf_counter() - t)
        shutil.rmtree(target)

    def backup(run: int) -> None:
        out = work / f"{name}-b{run}"
        t = time.perf_counter()
        _cli(env, work, "backup", "--format", "directory", "--jobs", str(args.jobs), "--backup-dir", str(out))
        times["backup"].append(time.perf_counter() - t)
        if not kept.exists():
            out.rename(kept)
        else:
            shutil.rmtree(out)

    print(f"  backups: raw pg_dump plain (one job) vs migrate-tui backup --format directory --jobs {args.jobs} "
          f"(control: raw pg_dump --format directory --jobs {args.jobs}, nothing checked)")
    _quiesce(server, name)
    raw_dump(0)  # warms the server's and the kernel's caches for both
    times["raw_dump"].clear()
    contenders = [raw_dump, backup, raw_parallel]
    for run in range(1, args.runs + 1):
        for contender in contenders[run % 3:] + contenders[:run % 3]:
            _quiesce(server, name)
            contender(run)
        print(f"    run {run}: raw {times['raw_dump'][-1]:.2f} s, directory --jobs {args.jobs} {times['backup'][-1]:.2f} s"
              f" (control {times['raw_parallel'][-1]:.2f} s); load average {os.getloadavg()[0]:.2f}")

    (archive,) = [p for p in kept.iterdir() if p.suffix == ".dir"]
    manifest = json.loads(Path(f"{archive}.manifest.json").read_text())
    print(f"    the kept backup: {manifest['size_bytes'] / 1e6:.0f} MB in {len(manifest['files'])} files, "
          f"compression {manifest.get('compression')}, pg_dump done {manifest['dump_seconds']:.2f} s after the start, "
          f"verified in {manifest['verify_seconds']:.2f} s, "
          f"{manifest['rows_total']:,} rows counted")

    def raw_restore(run: int) -> None:
        from migration.drill.local import SETTINGS

        t = time.perf_counter()
        copy = LocalServer(bin_dir, settings=SETTINGS).start()
        try:
            _createdb(copy, name)
            subprocess.run([str(bin_dir / "pg_restore"), "--no-password", "--exit-on-error", f"--jobs={args.jobs}",
                            f"--dbname=host=127.0.0.1 port={copy.port} user=postgres dbname={name}", str(archive)],
                           env=dict(raw_env, PGPASSWORD=copy.password), check=True)
        finally:
            copy._run("pg_ctl", "-D", str(copy.data_dir), "-m", "immediate", "-w", "stop", check=False)
            shutil.rmtree(copy.root, ignore_errors=True)
        times["raw_restore"].append(time.perf_counter() - t)

    def drill(run: int) -> None:
        t = time.perf_counter()
        _cli(env, work, "drill", str(archive), "--jobs", str(args.jobs))
        times["drill"].append(time.perf_counter() - t)
        recorded = json.loads(Path(f"{archive}.manifest.json").read_text())["drill"]  # its own phases' times
        times.setdefault("drill_restore", []).append(recorded["restore_s"])
        times.setdefault("drill_inside", []).append(recorded["elapsed_s"])
        times.setdefault("drill_rest", []).append(recorded["elapsed_s"] - recorded["restore_s"])
        times.setdefault("drill_startup", []).append(times["drill"][-1] - recorded["elapsed_s"])

    print(f"  restores: raw pg_restore --jobs {args.jobs} into a fresh server vs migrate-tui drill --jobs {args.jobs}")
    for run in range(1, args.runs + 1):
        for contender in ([raw_restore, drill] if run % 2 else [drill, raw_restore]):
            _quiesce(server, name)
            contender(run)
        print(f"    run {run}: raw {times['raw_restore'][-1]:.2f} s, drill {times['drill'][-1]:.2f} s (of which its "
              f"pg_restore {times['drill_restore'][-1]:.2f} s, the operation {times['drill_inside'][-1]:.2f} s); "
              f"load average {os.getloadavg()[0]:.2f}")

    print("  the production server's read work (pg_stat_user_tables: scans / tuples; pg_stat_database: tuples "
          "returned+fetched / blocks)")
    reads = {}
    for label, command in (
            ("nothing (the measurement itself)", lambda: None),
            ("raw pg_dump", lambda: subprocess.run([str(bin_dir / "pg_dump"), "--no-password", "--format=plain",
                                                    "--file=/dev/null", f"--dbname={conninfo}"], env=raw_env,
                                                   check=True)),
            ("migrate-tui backup", lambda: _cli(env, work, "backup", "--backup-dir", str(work / "r1"))),
            ("migrate-tui drill", lambda: _cli(env, work, "drill", str(archive), "--jobs", str(args.jobs))),
            ("migrate-tui backup --exact", lambda: _cli(env, work, "backup", "--exact", "--backup-dir",
                                                        str(work / "r2")))):
        before = _reads(server, name)
        command()
        time.sleep(1.0)  # the sessions have ended; their statistics are flushed when they exit
        after = _reads(server, name)
        reads[label] = delta = {k: after[k] - before[k] for k in after}
        print(f"    {label:<33} user tables: {delta['scans']} scans, {delta['tuples']:,} tuples read; database: "
              f"{delta['returned'] + delta['fetched']:,} tuples, {delta['blocks']:,} blocks")
    for folder in ("r1", "r2"):
        shutil.rmtree(work / folder, ignore_errors=True)
    shutil.rmtree(kept, ignore_errors=True)

    def extra(label: str) -> str:
        d, raw = reads[label], reads["raw pg_dump"]
        return f"{d['scans'] - raw['scans']} scans / {d['tuples'] - raw['tuples']:,} tuples"

    return {**{k: statistics.median(v) for k, v in times.items()},
            "extra_backup": extra("migrate-tui backup"),
            "extra_drill": _minus(reads["migrate-tui drill"], reads["nothing (the measurement itself)"]),
            "extra_exact": extra("migrate-tui backup --exact")}


def _minus(a: dict, b: dict) -> str:
    return (f"{a['scans'] - b['scans']} scans / {a['tuples'] - b['tuples']:,} tuples of user tables, "
            f"{(a['returned'] + a['fetched']) - (b['returned'] + b['fetched']):,} tuples / "
            f"{a['blocks'] - b['blocks']:,} blocks in the whole database")


def _cli(env: dict, cwd: Path, *args: str) -> None:
    proc = subprocess.run([CLI, *args], env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"migrate-tui {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def _reads(server: LocalServer, name: str) -> dict[str, int]:
    with connect_url(server.url(name)) as conn:
        scans, tuples = conn.execute(
            "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0), "
            "coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) FROM pg_stat_user_tables").fetchone()
        returned, fetched, blocks = conn.execute(
            "SELECT tup_returned, tup_fetched, blks_read + blks_hit FROM pg_stat_database "
            "WHERE datname = current_database()").fetchone()
    return {"scans": int(scans), "tuples": int(tuples), "returned": int(returned), "fetched": int(fetched),
            "blocks": int(blocks)}


def _quiesce(server: LocalServer, name: str) -> None:
    with connect_url(server.url(name)) as conn:
        outside_transaction(conn, "CHECKPOINT")
    os.sync()
    time.sleep(1.0)


def _scalar(server: LocalServer, name: str, query: str):
    with connect_url(server.url(name)) as conn:
        return conn.execute(query).fetchone()[0]


def _tables(server: LocalServer, name: str) -> str:
    rows = sorted(_scalar(server, name, "SELECT array_agg(pg_total_relation_size(c.oid)) FROM pg_class c "
                                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                                        "AND n.nspname = 'public'") or [], reverse=True)
    return f"{len(rows)} tables, the largest {rows[0] / 1e6:.0f} MB" if rows else "no tables"


if __name__ == "__main__":
    sys.exit(main())
