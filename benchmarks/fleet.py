"""A fleet in one command vs one command per database: ``migrate-tui fleet FILE run --yes --concurrency 8`` against
``--databases`` sequential ``migrate-tui run --yes`` calls, wall time and peak memory, in the same run.

    .venv/bin/python benchmarks/fleet.py                           # 50 databases, --concurrency 8, 2 runs
    .venv/bin/python benchmarks/fleet.py --databases 6 --runs 1    # a quick check that it works
    .venv/bin/python benchmarks/fleet.py --drill                   # both drill and rehearse every backup

Starts a throwaway PostgreSQL 18 (the embedded wheel) with PostgreSQL's default durability settings (``fsync`` on,
as in production), fills a template database (``--tables`` tables, the largest with ``--rows`` rows, keys,
indexes, a foreign key) and copies it into ``--databases`` databases. The fleet file (0600, one wave) names each
target's URL by an environment variable (``url_env``); the sequential calls get the same URL as ``DATABASE_URL``.

Both sides do the same work per database: the checklist, a verified plain backup into ``BACKUP_DIR/NAME/``, the
migration, and an audit log. By default both skip the restore drill and the rehearsal (``--skip-drill``: each
starts a throwaway server, which would dominate tiny databases); ``--drill`` makes both drill and rehearse.
Between measurements every database is put back (the new table dropped, the backups deleted), a CHECKPOINT, ``sync``
and 1 s of quiet; the order alternates per run (fleet first in odd runs). After each measurement every database is
checked to hold the new table and one backup.

Reported, per run and as medians: the wall times (the sequential side: the sum of its calls) and their ratio
(goal <= 0.25); the peak memory of the fleet's whole process tree (the fleet process and every descendant, pg_dump
included: RSS read from /proc every ``--interval`` ms and summed; the peak of the sum; goal <= 150 MB) and what it
was made of. A child caught between (v)fork and exec still runs the fleet's own interpreter on the fleet's own
pages, so the raw sum counts those pages twice; the peak without such children is reported beside it, with its
PSS (shared pages split between the processes that map them), and the fleet process's own high-water mark (VmHWM;
``ru_maxrss`` from wait4). The same for the largest sequential call. With ``--drill`` the throwaway servers count
while they are descendants (``pg_ctl`` daemonises them).

Where the time goes (the last run): each phase's time (checklist, backup, drill, rehearsal, migration) summed over
the targets from the audit logs; how many targets ran at once on average; what the sequential calls spent outside
the phases (interpreter start-up and imports: compare the control, ``migrate-tui run --help``); and the CPU time of
each side — migrate-tui itself, its children (pg_dump; reaped, from wait4) and the PostgreSQL server (its processes'
times from /proc, before and after) — which bounds how fast the fleet can be on this many CPUs.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migration.db import connect_url, outside_transaction  # noqa: E402
from migration.pgserver import LocalServer, embedded_bin_dir  # noqa: E402

CLI = str(ROOT / ".venv/bin/migrate-tui")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
MB = 1e6
GOAL_RATIO, GOAL_MB = 0.25, 150
PHASES = {"ChecklistFinished": "checklist", "BackupFinished": "backup", "DrillFinished": "drill",
          "RehearsalFinished": "rehearsal", "RunFinished": "migration"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="measurements of each side, the order alternating")
    parser.add_argument("--drill", action="store_true", help="both drill and rehearse (default: both --skip-drill)")
    parser.add_argument("--tables", type=int, default=4, help="tables per database")
    parser.add_argument("--rows", type=int, default=5000, help="rows of the largest table (the others fewer)")
    parser.add_argument("--interval", type=float, default=20, help="memory sampling interval, ms")
    args = parser.parse_args()

    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        print("needs the embedded PostgreSQL wheel: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    for package in ("migration", "headless"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="migrate-tui-bench-fleet-"))
    server = LocalServer(bin_dir, settings=()).start()  # PostgreSQL defaults: fsync on, as in production
    try:
        return bench(server, args, work)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def bench(server: LocalServer, args, work: Path) -> int:
    names = [f"fleet_{n:02d}" for n in range(1, args.databases + 1)]
    started = time.perf_counter()
    fill(server, names, args)
    with connect_url(server.url(names[0])) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        tables = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                              "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'").fetchone()[0] or 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k not in ("DATABASE_URL",)}
    env.pop("MIGRATE_AUDIT_LOG", None)
    variables = {name: f"FLEET_{name.upper()}_URL" for name in names}
    fleet_env = dict(env, **{variables[name]: server.url(name) for name in names})
    fleet_file = write_fleet_file(work, names, variables)
    drill_flags = [] if args.drill else ["--skip-drill"]
    work_done = "checklist, verified plain backup, " + (
        "restore drill and rehearsal, " if args.drill else "no drill nor rehearsal (--skip-drill on both sides), ")

    print(f"machine: {os.cpu_count()} CPUs, {_ram_gib():.0f} GiB RAM, load average {_load()}; Python "
          f"{platform.python_version()}; PostgreSQL {version} (embedded wheel, fsync on)")
    print(f"{args.databases} databases of {args.tables} tables ({int(tables) / MB:.1f} MB of rows and indexes), "
          f"{size / MB:.1f} MB each (filled in "
          f"{time.perf_counter() - started:.0f} s); one wave; per database: {work_done}migration, audit log")
    startup = [timed([CLI, "run", "--help"], env, work) for _ in range(5)]
    print(f"start-up control (`migrate-tui run --help`, interpreter + imports): median "
          f"{statistics.median(startup) * 1000:.0f} ms of 5")

    fleets: list[Measured] = []
    sequences: list[Sequential] = []
    for run in range(1, args.runs + 1):
        order = ("fleet", "sequential") if run % 2 else ("sequential", "fleet")
        print(f"\nrun {run} ({' first, then '.join(order)}):")
        for side in order:
            reset(server, names, work)
            if side == "fleet":
                out = work / f"fleet-{run}"
                m = measure([CLI, "fleet", str(fleet_file), "run", "--yes", "--concurrency", str(args.concurrency),
                             "--json", "--backup-dir", str(out / "backups"), "--audit-log", str(out / "audit.log"),
                             *drill_flags], fleet_env, work, out, args.interval, server)
                m.check_fleet(args.databases)
                m.phases.update(phases(out / "audit.log"))
                fleets.append(m)
                print(f"  fleet run --yes --concurrency {args.concurrency}: {m.wall:.2f} s, exit {m.code}, "
                      f"{m.outcomes}; CPU {m.cpu:.1f} s (pg_dump included), the server's {m.server_cpu:.1f} s\n"
                      f"    peak {m.memory()}")
            else:
                s = Sequential()
                for name in names:
                    out = work / f"seq-{run}" / name
                    m = measure([CLI, "run", "--yes", "--backup-dir", str(work / f"seq-{run}" / "backups" / name),
                                 "--audit-log", str(work / f"seq-{run}" / "audit.log"), *drill_flags],
                                dict(env, DATABASE_URL=server.url(name)), work, out, args.interval, server)
                    if m.code != 0:
                        raise SystemExit(f"migrate-tui run --yes failed on {name} (exit {m.code}):\n{m.output()}")
                    s.calls.append(m)
                s.phases = phases(work / f"seq-{run}" / "audit.log")
                sequences.append(s)
                peak = max(s.calls, key=lambda c: c.peak_rss)
                print(f"  {args.databases} x run --yes: {s.wall:.2f} s (the sum of the calls; per call median "
                      f"{statistics.median(c.wall for c in s.calls):.2f} s, {min(c.wall for c in s.calls):.2f}-"
                      f"{max(c.wall for c in s.calls):.2f} s), all exit 0; CPU {s.cpu:.1f} s, the server's "
                      f"{s.server_cpu:.1f} s\n"
                      f"    the largest call's peak {peak.memory()}")
            dump = verify(server, names, work, side, run)
        print(f"  every database migrated, one backup each ({dump / MB:.1f} MB plain dumps); ratio fleet / sequential: "
              f"{fleets[-1].wall / sequences[-1].wall:.3f}; load average {_load()}")

    report(fleets, sequences, statistics.median(startup), args)
    return 0


# --- the databases ---------------------------------------------------------------------------------------

TABLES = [
    ("customers", 0.2, "id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, "
                       "created_at timestamptz NOT NULL",
     "SELECT g, 'customer ' || g, 'c' || g || '@example.com', '2026-01-01'::timestamptz + g * interval '1 minute' "
     "FROM generate_series(1, {rows}) g"),
    ("orders", 1.0, "id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES public.customers, "
                    "total numeric(12, 2) NOT NULL, status text NOT NULL, placed_at timestamptz NOT NULL",
     "SELECT g, 1 + g % {parent}, (g % 997) / 3.0, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3], "
     "'2026-01-01'::timestamptz + g * interval '37 seconds' FROM generate_series(1, {rows}) g"),
    ("events", 0.6, "id bigint PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL",
     "SELECT g, 'kind-' || g % 7, jsonb_build_object('n', g, 'tag', md5(g::text)) FROM generate_series(1, {rows}) g"),
    ("settings", 0.01, "key text PRIMARY KEY, value text NOT NULL",
     "SELECT 'setting-' || g, md5(g::text) FROM generate_series(1, {rows}) g"),
]


def fill(server: LocalServer, names: list[str], args) -> None:
    """A template database, then one copy of it per target (CREATE DATABASE ... TEMPLATE)."""
    with connect_url(server.url()) as conn:
        outside_transaction(conn, "CREATE DATABASE fleet_template")
    with connect_url(server.url("fleet_template")) as conn:
        parent = 1
        for n in range(args.tables):
            table, share, columns, select = TABLES[n % len(TABLES)]
            name = table if n < len(TABLES) else f"{table}_{n}"
            rows = max(1, int(args.rows * share))
            if table == "orders" and n >= len(TABLES):
                columns = columns.replace("REFERENCES public.customers", "")
            conn.execute(f"CREATE TABLE public.{name} ({columns})")
            conn.execute(f"INSERT INTO public.{name} " + select.format(rows=rows, parent=parent))
            if table == "customers":
                parent = rows
            if table == "orders":
                conn.execute(f"CREATE INDEX ON public.{name} (customer_id, placed_at)")
        outside_transaction(conn, "VACUUM (FREEZE, ANALYZE)")
    with connect_url(server.url()) as conn:
        for name in names:
            outside_transaction(conn, f"CREATE DATABASE {name} TEMPLATE fleet_template")
        outside_transaction(conn, "CHECKPOINT")


def write_fleet_file(work: Path, names: list[str], variables: dict[str, str]) -> Path:
    path = work / "fleet.toml"
    lines = ["# benchmarks/fleet.py: one wave, every URL from the environment", "[defaults]", 'schema = "public"', ""]
    for n, name in enumerate(names, 1):
        lines += ["[[target]]", f'name = "db-{n:02d}"', f'url_env = "{variables[name]}"', 'wave = "production"', ""]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines))
    return path


def reset(server: LocalServer, names: list[str], work: Path) -> None:
    """Every database as before the migration; no backup anywhere; a quiet system."""
    for name in names:
        with connect_url(server.url(name)) as conn:
            conn.execute("DROP TABLE IF EXISTS public.database_backups")
    for path in work.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
    with connect_url(server.url()) as conn:
        outside_transaction(conn, "CHECKPOINT")
    os.sync()
    time.sleep(1.0)


def verify(server: LocalServer, names: list[str], work: Path, side: str, run: int) -> int:
    """Both sides did the whole work: the table in every database, one verified backup of each."""
    missing = []
    for name in names:
        with connect_url(server.url(name)) as conn:
            if conn.execute("SELECT to_regclass('public.database_backups')").fetchone()[0] is None:
                missing.append(name)
    root = work / (f"fleet-{run}" if side == "fleet" else f"seq-{run}") / "backups"
    dumps = list(root.glob("*/*.sql"))
    if missing or len(dumps) != len(names):
        raise SystemExit(f"{side}: not migrated: {missing or 'none'}; {len(dumps)} backups for {len(names)} databases")
    return sum(p.stat().st_size for p in dumps) // len(dumps)


# --- one measured command ----------------------------------------------------------------------------------

@dataclass
class Measured:
    wall: float = 0.0
    code: int = 0
    peak_rss: int = 0  # bytes: the peak of the tree's summed RSS
    peak_parts: str = ""  # what the peak was made of
    peak_real: int = 0  # bytes: the same without children between fork and exec
    real_parts: str = ""
    peak_pss: int = 0  # bytes: the summed PSS at the moment of peak_real
    cpu: float = 0.0  # s: user + system time of the process and its waited-for children (pg_dump)
    own_cpu: float = 0.0  # s: of the main process alone (its last sample)
    server_cpu: float = 0.0  # s: the PostgreSQL server's, meanwhile
    own_hwm: int = 0  # bytes: the root process's VmHWM (last read)
    maxrss: int = 0  # bytes: ru_maxrss from wait4 (the root or its largest waited-for child)
    samples: int = 0
    spawned: float = 0.0  # time.time() at the spawn and when reaped (to place the audit log's events)
    ended: float = 0.0
    out: Path | None = None
    outcomes: str = ""
    phases: dict = field(default_factory=dict)

    def memory(self, indent: str = "    ") -> str:
        return (f"{self.peak_rss / MB:.0f} MB RSS summed over the process tree ({self.peak_parts});\n{indent}"
                f"without children between fork and exec {self.peak_real / MB:.0f} MB ({self.real_parts}; PSS "
                f"{self.peak_pss / MB:.0f} MB);\n{indent}the main process's own VmHWM {self.own_hwm / MB:.0f} MB "
                f"(ru_maxrss {self.maxrss / MB:.0f} MB); {self.samples} samples")

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in (self.out / "stdout", self.out / "stderr"))

    def check_fleet(self, count: int) -> None:
        try:
            summary = json.loads((self.out / "stdout").read_text())
        except ValueError:
            summary = None
        if self.code != 0 or summary is None:
            raise SystemExit(f"the fleet run failed (exit {self.code}):\n{self.output()}")
        counts: dict[str, int] = {}
        for target in summary["targets"]:
            counts[target["outcome"]] = counts.get(target["outcome"], 0) + 1
        if counts.get("success") != count:
            raise SystemExit(f"the fleet did not migrate every target: {counts}")
        self.outcomes = ", ".join(f"{n} {k}" for k, n in counts.items())
        durations = [t["duration_ms"] / 1000 for t in summary["targets"]]
        self.phases["target"] = durations


@dataclass
class Sequential:
    calls: list[Measured] = field(default_factory=list)
    phases: dict = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return sum(c.wall for c in self.calls)

    @property
    def cpu(self) -> float:
        return sum(c.cpu for c in self.calls)

    @property
    def own_cpu(self) -> float:
        return sum(c.own_cpu for c in self.calls)

    @property
    def server_cpu(self) -> float:
        return sum(c.server_cpu for c in self.calls)


def measure(cmd: list[str], env: dict, cwd: Path, out: Path, interval_ms: float, server: LocalServer) -> Measured:
    """Run cmd to its end; wall time from spawn to reaped, memory sampled from /proc in a thread."""
    out.mkdir(parents=True, exist_ok=True)
    result = Measured(out=out)
    server_before = server_cpu(server)
    with open(out / "stdout", "wb") as stdout, open(out / "stderr", "wb") as stderr:
        result.spawned, started = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        sampler = TreeSampler(proc.pid, interval_ms / 1000)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        result.wall, result.ended = time.perf_counter() - started, time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
    result.code = proc.returncode
    result.maxrss = usage.ru_maxrss * 1024
    result.peak_rss, result.peak_parts = sampler.peak, sampler.parts
    result.peak_real, result.real_parts, result.peak_pss = sampler.peak_real, sampler.parts_real, sampler.peak_pss
    result.cpu = usage.ru_utime + usage.ru_stime
    result.own_cpu = min(result.cpu, max(sampler.own_cpu, result.cpu - sampler.children_cpu))
    result.server_cpu = server_cpu(server) - server_before
    result.own_hwm, result.samples = sampler.hwm, sampler.samples
    return result


class TreeSampler(threading.Thread):
    """Every ``interval`` s: the root process and all its descendants (parents from /proc/PID/stat, read once
    per new PID), each one's RSS from /proc/PID/statm, and the peak of their sum. A child between fork and exec
    still runs the root's program (/proc/PID/exe) on the root's own pages (vfork: the same memory; fork: shared
    copy-on-write), so a second peak leaves those out, with the PSS of its processes (smaps_rollup) read at each
    new peak. Also the root's VmHWM."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop = threading.Event()
        self.parent: dict[int, tuple[int, str]] = {}
        self.peak = self.peak_real = self.peak_pss = self.hwm = self.samples = 0
        self.parts = self.parts_real = ""
        self.exe = ""
        self.own_cpu = self.children_cpu = 0.0  # s: the root's own, and its reaped children's (last read)

    def run(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(self.interval):
                return

    def sample(self) -> None:
        pids = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        for pid in list(self.parent):
            if pid not in pids:
                del self.parent[pid]
        for pid in pids - self.parent.keys():
            stat = _read(f"/proc/{pid}/stat")
            if stat:
                name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
                self.parent[pid] = (int(rest[1]), name)
        tree, frontier = [self.root], [self.root]
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in self.parent.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            frontier = [c for p in frontier for c in children.get(p, ())]
            tree += frontier
        self.exe = self.exe or _exe(self.root)
        sizes: dict[int, int] = {}
        names: dict[int, str] = {}
        for pid in tree:
            statm = _read(f"/proc/{pid}/statm")
            if statm:
                sizes[pid] = int(statm.split()[1]) * PAGE
                exe = "" if pid == self.root else _exe(pid)
                names[pid] = "main" if pid == self.root else "fork before exec" if exe == self.exe else (
                    os.path.basename(exe) if exe else self.parent.get(pid, (0, "?"))[1])
        times = _cpu_fields(self.root)
        if times:
            self.own_cpu, self.children_cpu = times[0] + times[1], times[2] + times[3]
        for line in _read(f"/proc/{self.root}/status").splitlines():
            if line.startswith("VmHWM:"):
                self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
        self.samples += 1
        total = sum(sizes.values())
        if total > self.peak:
            self.peak, self.parts = total, _parts(sizes, names)
        real = {pid: size for pid, size in sizes.items() if names[pid] != "fork before exec"}
        if sum(real.values()) > self.peak_real:
            self.peak_real, self.parts_real = sum(real.values()), _parts(real, names)
            self.peak_pss = sum(_pss(pid) for pid in real)


def _parts(sizes: dict[int, int], names: dict[int, str]) -> str:
    groups: dict[str, list[int]] = {}
    for pid, size in sizes.items():
        groups.setdefault(names[pid], []).append(size)
    return " + ".join(f"{name} {sum(s) / MB:.0f}" if len(s) == 1 else f"{len(s)} x {name} {sum(s) / MB:.0f}"
                      for name, s in sorted(groups.items(), key=lambda item: item[0] != "main"))


def _cpu_fields(pid: int) -> list[float]:
    """utime, stime, cutime, cstime (s) of a process, or [] when it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return []
    rest = stat[stat.rindex(")") + 2:].split()
    return [int(x) / TICK for x in rest[11:15]]


def server_cpu(server: LocalServer) -> float:
    """CPU seconds the server has used: the postmaster's own and its reaped children's (ended backends), and
    every live child's."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    total = sum(_cpu_fields(postmaster))
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat and int(stat[stat.rindex(")") + 2:].split()[1]) == postmaster:
                total += sum(_cpu_fields(int(entry))[:2])
    return total


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _pss(pid: int) -> int:
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, ValueError):  # the process has ended (or is a zombie)
        return ""


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def phases(log: Path) -> dict[str, list[float]]:
    """Each phase's durations (s) from an audit log's *Finished lines."""
    found: dict[str, list[float]] = {}
    times = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        times.append(datetime.fromisoformat(entry["time"]).timestamp())
        phase = PHASES.get(entry.get("event"))
        if phase and isinstance(entry.get("duration_ms"), (int, float)):
            found.setdefault(phase, []).append(entry["duration_ms"] / 1000)
    if times:
        found["first_event"], found["last_event"] = [min(times)], [max(times)]
    return found


# --- the report ----------------------------------------------------------------------------------------

def report(fleets: list[Measured], sequences: list[Sequential], startup: float, args) -> None:
    fleet_wall = statistics.median(m.wall for m in fleets)
    seq_wall = statistics.median(s.wall for s in sequences)
    ratio = fleet_wall / seq_wall
    peak = max(fleets, key=lambda m: m.peak_rss)
    real = max(fleets, key=lambda m: m.peak_real)
    ratios = ", ".join(f"{f.wall / s.wall:.3f}" for f, s in zip(fleets, sequences))
    print(f"\n== summary ({args.runs} run{'s' if args.runs != 1 else ''}, {args.databases} databases, "
          f"{'with' if args.drill else 'without'} drill and rehearsal on both sides)")
    print(f"  wall time: fleet --concurrency {args.concurrency} {fleet_wall:.2f} s vs {args.databases} sequential "
          f"run --yes {seq_wall:.2f} s (medians) -> ratio {ratio:.3f} (per run: {ratios}); goal <= {GOAL_RATIO}: "
          f"{'PASS' if ratio <= GOAL_RATIO else 'not met'}")
    fleet_cpu, seq_cpu = statistics.median(m.cpu for m in fleets), statistics.median(s.cpu for s in sequences)
    print(f"  client CPU (user + system, its children included; medians): fleet {fleet_cpu:.1f} s, sequential "
          f"{seq_cpu:.1f} s")
    print(f"  peak memory of the fleet's whole process tree, the highest of the runs (goal <= {GOAL_MB} MB):")
    print(f"    without children between fork and exec (they map the fleet's own pages; shared libraries still count "
          f"once per process, PSS splits them): "
          f"{real.peak_real / MB:.0f} MB ({real.real_parts}; PSS {real.peak_pss / MB:.0f} MB): "
          f"{'PASS' if real.peak_real <= GOAL_MB * MB else 'not met'}")
    print(f"    the raw sum of RSS over every process: {peak.peak_rss / MB:.0f} MB ({peak.peak_parts}): "
          f"{'PASS' if peak.peak_rss <= GOAL_MB * MB else 'not met'}")
    print(f"    the fleet process alone: VmHWM {max(m.own_hwm for m in fleets) / MB:.0f} MB")
    single = max((c for s in sequences for c in s.calls), key=lambda c: c.peak_rss)
    print(f"  for comparison, one run --yes: {single.peak_rss / MB:.0f} MB summed RSS ({single.peak_parts}), "
          f"VmHWM {single.own_hwm / MB:.0f} MB")

    print("\n== where the time goes (the last run of each; phase times from the audit logs, summed over targets)")
    f, s = fleets[-1], sequences[-1]
    names = [p for p in PHASES.values() if p in f.phases or p in s.phases]
    width = max(len(p) for p in names + ["target"])
    print(f"  {'phase':<{width}}  {'fleet: sum':>10}  {'mean':>7}  {'sequential: sum':>15}  {'mean':>7}")
    for phase in names:
        a, b = f.phases.get(phase, []), s.phases.get(phase, [])
        print(f"  {phase:<{width}}  {sum(a):>8.2f} s  {_mean(a):>5.3f} s  {sum(b):>13.2f} s  {_mean(b):>5.3f} s")
    seq_phases = sum(sum(s.phases.get(p, [])) for p in PHASES.values())
    per_target = f.phases.get("target", [])
    print(f"  fleet: {sum(per_target):.1f} s of target time in {f.wall:.1f} s of wall time = "
          f"{sum(per_target) / f.wall:.1f} targets at once on average (--concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs); a target took {_mean(per_target):.2f} s on average vs "
          f"{_mean([c.wall for c in s.calls]):.2f} s for a whole `run` call")
    print(f"  sequential: {seq_phases:.1f} s in the phases, {s.wall - seq_phases:.1f} s "
          f"({(s.wall - seq_phases) / s.wall:.0%}) outside them: interpreter start-up and imports (control: "
          f"{startup * 1000:.0f} ms x {args.databases} = {startup * args.databases:.1f} s), connecting, printing")
    cpus = os.cpu_count() or 1
    for label, m in (("fleet", f), ("sequential", s)):
        total = m.cpu + m.server_cpu
        print(f"  CPU, {label}: migrate-tui {m.own_cpu:.1f} s + its children {m.cpu - m.own_cpu:.1f} s + the server "
              f"{m.server_cpu:.1f} s = {total:.1f} s in {m.wall:.1f} s of wall time: {total / m.wall:.2f} of {cpus} "
              f"CPUs busy on average")
    floor = (f.cpu + f.server_cpu) / cpus
    print(f"  so even on an otherwise idle machine the fleet could not take less than {floor:.1f} s (its CPU on {cpus} "
          f"CPUs), nor much less than {f.own_cpu:.1f} s (its own Python work: one interpreter, one CPU at a time): "
          f"against these sequential calls, a ratio of ~{max(floor, f.own_cpu) / s.wall:.2f} at best")
    first, last = f.phases.get("first_event"), f.phases.get("last_event")
    if first and last:
        print(f"  fleet: {first[0] - f.spawned:.2f} s from the spawn to the first target's first event (start-up, the "
              f"file's checks), {f.ended - last[0]:.2f} s after the last event (the summary, exit)")
    print(f"load average after: {_load()}")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 ** 2
    return 0.0


if __name__ == "__main__":
    sys.exit(main())
