"""What the bench scripts share: the embedded PostgreSQL and broker in a throwaway
folder, a migrated database, the services as ``awasi serve`` processes (started,
waited for, measured, stopped), the machine's load with each figure, percentiles.

Each script keeps its own CLI, measurements and output; only this start-up and
tear-down boilerplate lives here (one place, so a change of how a service starts or
which settings a bench needs is made once).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from awasi.cli import migrate_all
from awasi.embedded import EmbeddedPostgres, EmbeddedStack, free_port
from tests.support.services import wait_ready

SERVICES = ("intake", "router", "oversight")


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank, no interpolation); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def load() -> str:
    """The load average (1 and 5 minutes): a shared machine's figures mean little
    without it (docs/BENCHMARKS.md)."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def log(message: str) -> None:
    """``message`` with the UTC time and the load average, flushed at once."""
    print(f"[{datetime.now(UTC):%H:%M:%S} {load()}] {message}", flush=True)


def start_stack(prefix: str, where: str = "/tmp") -> tuple[Path, EmbeddedStack]:
    """A new folder under ``where`` (kept short: PostgreSQL's socket lives there) with
    PostgreSQL and the broker started in it. The caller stops the stack."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=where))
    stack = EmbeddedStack(root)  # stops PostgreSQL again if the broker fails to start
    stack.start()
    return root, stack


@contextlib.asynccontextmanager
async def scratch_postgres(prefix: str, where: str = "/tmp") -> AsyncIterator[EmbeddedPostgres]:
    """PostgreSQL alone in a new folder under ``where``, for a bench that measures
    queries without the services; stopped and removed on the way out."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=where))
    pg = EmbeddedPostgres(root / "pg")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def print_case(name: str, times: list[float], note: str, width: int = 36) -> float:
    """One measured case as the query benches print it (p50 and p99 in ms, a note
    such as the plan's indexes, the load); returns its p99 in ms."""
    p50, p99 = pct(times, 50) * 1000, pct(times, 99) * 1000
    print(f"{name:<{width}} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  [{note}]"
          f"  load {os.getloadavg()[0]:.2f}", flush=True)
    return p99


def verdict(worst_p99_ms: float, target_ms: float = 100) -> int:
    """Print the worst p99 against the target; the exit status (0 when met)."""
    ok = worst_p99_ms <= target_ms
    print(f"worst p99 {worst_p99_ms:.1f} ms; target <= {target_ms:.0f} ms:"
          f" {'met' if ok else 'NOT MET'}")
    return 0 if ok else 1


async def create_database(pg: EmbeddedPostgres, name: str) -> str:
    """Create database ``name``, apply every service's migrations; its DSN."""
    admin = await asyncpg.connect(pg.uri("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = pg.uri(name)
    await migrate_all(dsn)
    return dsn


def service_env(dsn: str, bootstrap: str, ports: dict[str, int],
                base: dict[str, str] | None = None, *, fetch_wait_ms: int = 20
                ) -> dict[str, str]:
    """The environment of ``awasi serve`` for a bench: ``base`` (default: this
    process's) with the database, the broker, each service's port (``ports`` by
    service name), no rate limit, short consumer-group timings (Tansu's joins are
    slow with the defaults: docs TESTING), a throwaway secret key."""
    env = dict(os.environ if base is None else base)
    env.update({
        "AWASI_DATABASE_URL": dsn, "AWASI_KAFKA_BOOTSTRAP": bootstrap,
        "AWASI_RATE_LIMIT_PER_MINUTE": "100000000", "AWASI_LOG_LEVEL": "WARNING",
        "AWASI_KAFKA_SESSION_TIMEOUT_MS": "6000", "AWASI_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "AWASI_KAFKA_REBALANCE_TIMEOUT_MS": "6000", "AWASI_RELAY_POLL_INTERVAL_S": "0.2",
        # Tansu holds every fetch for the full wait (Apache Kafka answers at once).
        "AWASI_KAFKA_FETCH_MAX_WAIT_MS": str(fetch_wait_ms),
        # `awasi serve` refuses the built-in development key.
        "AWASI_SECRET_KEY": secrets.token_hex(32),
    })
    env.update({f"AWASI_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return env


def spawn(service: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``awasi serve SERVICE`` as a child process, its stderr appended to ``log_path``."""
    with log_path.open("ab") as err:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "awasi", "serve", service], env=env,
            stdout=subprocess.DEVNULL, stderr=err)


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], wait_s: float = 15) -> None:
    """SIGTERM each process still running, wait up to ``wait_s``, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux /proc); NaN if unknown."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc); with
    ``children``, plus those of its children that have exited and were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds the PostgreSQL server in ``data_dir`` has used so far: the
    postmaster, its live processes (backends, autovacuum, checkpointer...) and those
    that have exited (the postmaster waits for each). Unlike wall time, CPU per unit
    of work moves less with the load of a shared machine (caches and cores are
    still shared: compare runs at similar loads)."""
    master = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(master, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                total += cpu_seconds(int(stat.parent.name), children=True)
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile: counted in the postmaster's children
    return total


class Services:
    """The services as ``awasi serve`` processes sharing one environment, each on the
    port ``env`` names; logs in ``root/<name>.log``. ``start`` again after ``stop``
    restarts them (on the same ports)."""

    def __init__(self, names: Iterable[str], env: dict[str, str], root: Path) -> None:
        self.names = list(names)
        self.env = env
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.env[f'AWASI_{name.upper()}_PORT']}"

    async def start(self, timeout_s: float = 180) -> None:
        """Start every service, then wait until each answers ``/readyz``."""
        for name in self.names:
            self.procs[name] = spawn(name, self.env, self.root / f"{name}.log")
        for name, proc in self.procs.items():
            await wait_ready(self.url(name), proc, timeout_s, name=name)

    def stop(self) -> None:
        stop_processes(self.procs.values())

    def rss_mb(self) -> dict[str, float]:
        return {name: rss_mb(proc.pid) for name, proc in self.procs.items()}

    def cpu_seconds(self) -> dict[str, float]:
        return {name: cpu_seconds(proc.pid) for name, proc in self.procs.items()}


def ports_for(names: Iterable[str]) -> dict[str, int]:
    """A free port on 127.0.0.1 for each service name."""
    return {name: free_port() for name in names}
