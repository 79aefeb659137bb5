"""How much do progress and verification cost? Raw pg_dump vs ``migrate-tui backup``, same format.

    .venv/bin/python benchmarks/backup.py                 # pgbench scale 70: a database of ~1.05 GB
    .venv/bin/python benchmarks/backup.py --scale 5 --runs 3 --format custom

Starts a throwaway PostgreSQL 18 (the embedded wheel), fills it with ``pgbench -i -s SCALE``,
then alternates raw ``pg_dump`` and ``migrate-tui backup`` (a subprocess, as an operator runs it),
RUNS times each, and prints the medians and their ratio (goal: <= 1.05). The verification time
(from the backup's manifest) is reported separately, as is the ratio without it, the engine run
in-process (no interpreter start-up), the command's fixed start-up cost (``migrate-tui backup --help``:
interpreter + imports) and the client-side CPU seconds of each (pg_dump's own included), which a
busy machine skews less than wall-clock time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration.pgserver import LocalServer, embedded_bin_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale factor (70 ~ 1.05 GB, 1 ~ 15 MB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", choices=("plain", "custom"), default="plain")
    args = parser.parse_args()

    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        print("needs the embedded PostgreSQL wheel: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    # An installed migrate-tui has its bytecode compiled by pip; a checkout under PYTHONDONTWRITEBYTECODE
    # (set on some CI machines) would otherwise recompile every module at every start.
    compileall.compile_dir(str(ROOT / "migration"), quiet=1)
    compileall.compile_dir(str(ROOT / "tui"), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="migrate-tui-bench-"))
    server = LocalServer(bin_dir).start()
    try:
        env = dict(os.environ, PGPASSWORD=server.password)
        conninfo = f"host=127.0.0.1 port={server.port} user=postgres dbname=bench"
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                        "bench"], env=env, check=True)
        t = time.perf_counter()
        subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", str(args.scale), f"--dbname={conninfo}"],
                       env=env, check=True, capture_output=True)
        size = _scalar(server, "SELECT pg_database_size('bench')")
        print(f"database: pgbench scale {args.scale}, {size / 1e9:.2f} GB (created in {time.perf_counter() - t:.0f} s)")

        pg_dump = bin_dir / "pg_dump"
        ext = ".sql" if args.format == "plain" else ".dump"
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        cli_env.update(DATABASE_URL=server.url("bench"), PG_DUMP=str(pg_dump))
        from migration.backup import Backup
        from migration.pgtools import Locator
        from migration.settings import load_settings

        settings = load_settings(database_url=server.url("bench"), environ={})
        locator = Locator({"PG_DUMP": str(pg_dump)})
        raw_times, ours_times, engine_times, verify_times, out_sizes = [], [], [], [], []
        cpu: dict[str, list[float]] = {"raw": [], "ours": [], "engine": []}
        startup_times = []

        def raw_run(run: int) -> None:
            target = work / f"raw{ext}"
            c, t = _cpu(), time.perf_counter()
            subprocess.run([str(pg_dump), "--no-password", f"--format={args.format}", f"--file={target}",
                            f"--dbname={conninfo}"], env=env, check=True)
            raw_times.append(time.perf_counter() - t)
            cpu["raw"].append(_cpu() - c)
            target.unlink()

        def command_run(run: int) -> None:
            backup_dir = work / f"ours{run}"
            c, t = _cpu(), time.perf_counter()
            proc = subprocess.run([str(ROOT / ".venv/bin/migrate-tui"), "backup", "--format", args.format,
                                   "--backup-dir", str(backup_dir)], env=cli_env, capture_output=True, text=True,
                                  cwd=work)
            ours_times.append(time.perf_counter() - t)
            cpu["ours"].append(_cpu() - c)
            if proc.returncode != 0:
                raise SystemExit(f"migrate-tui backup failed:\n{proc.stdout}\n{proc.stderr}")
            manifest = json.loads(next(backup_dir.glob("*.manifest.json")).read_text())
            verify_times.append(manifest["verify_seconds"])
            out_sizes.append(manifest["size_bytes"])
            shutil.rmtree(backup_dir)

        def engine_run(run: int) -> None:  # the engine alone, in this process: no interpreter start-up
            backup_dir = work / f"engine{run}"
            c, t = _cpu(), time.perf_counter()
            result = Backup(settings, backup_dir=backup_dir, fmt=args.format, locator=locator).run()
            engine_times.append(time.perf_counter() - t)
            cpu["engine"].append(_cpu() - c)
            assert result.ok, result
            shutil.rmtree(backup_dir)

        # A first, unmeasured dump warms the server's and the kernel's caches for every contender.
        _quiesce(server)
        raw_run(0)
        raw_times.clear(), cpu["raw"].clear()
        load_before = os.getloadavg()[0]
        contenders = [raw_run, command_run, engine_run]
        for run in range(1, args.runs + 1):
            # Each run starts with a different contender, and each measurement starts on a quiet system:
            # dirty pages written, the freed blocks of the previous backup discarded, no checkpoint running.
            for contender in contenders[run - 1:] + contenders[:run - 1]:
                _quiesce(server)
                contender(run)
            t = time.perf_counter()  # the command's fixed cost: interpreter start-up and imports
            subprocess.run([str(ROOT / ".venv/bin/migrate-tui"), "backup", "--help"], env=cli_env,
                           capture_output=True, check=True)
            startup_times.append(time.perf_counter() - t)
            print(f"run {run}: raw pg_dump {raw_times[-1]:.2f} s, migrate-tui backup {ours_times[-1]:.2f} s "
                  f"(verification {verify_times[-1]:.2f} s), engine in-process {engine_times[-1]:.2f} s")

        raw, ours, engine, verify, startup = (statistics.median(x) for x in (
            raw_times, ours_times, engine_times, verify_times, startup_times))
        cpu_raw, cpu_ours, cpu_engine = (statistics.median(cpu[k]) for k in ("raw", "ours", "engine"))
        print(f"\nformat {args.format}, dump size {out_sizes[-1] / 1e6:.0f} MB, {args.runs} runs each (medians)")
        print(f"  raw pg_dump:          {raw:.2f} s")
        print(f"  migrate-tui backup:   {ours:.2f} s  (includes start-up, progress, sha256, verification)")
        print(f"  engine in-process:    {engine:.2f} s  (the same without interpreter start-up)")
        print(f"  verification:         {verify:.2f} s")
        print(f"  command start-up:     {startup:.2f} s  (migrate-tui backup --help: interpreter + imports)")
        print(f"  client CPU:           raw {cpu_raw:.2f} s, migrate-tui backup {cpu_ours:.2f} s, "
              f"engine {cpu_engine:.2f} s (pg_dump's own included; sha256 of the dump is most of the difference)")
        print(f"  ratio (goal <= 1.05): {ours / raw:.3f}")
        print(f"  ratio without verification: {(ours - verify) / raw:.3f}")
        print(f"  engine ratio (progress + sha256 + verification, no start-up): {engine / raw:.3f}")
        print(f"  load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs "
              f"(a busy machine skews wall-clock ratios)")
        return 0
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _quiesce(server: LocalServer) -> None:
    """Let the previous measurement's background work finish before the next one starts."""
    from migration.db import connect_url, outside_transaction

    with connect_url(server.url("bench")) as conn:
        outside_transaction(conn, "CHECKPOINT")
    os.sync()
    time.sleep(1.0)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _scalar(server: LocalServer, query: str):
    from migration.db import connect_url

    with connect_url(server.url("bench")) as conn:
        return conn.execute(query).fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
