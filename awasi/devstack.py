"""``awasi dev``: the embedded stack, migrations, demo data and the three services as
child processes, all stopped together on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from awasi.cli import SERVICES
from awasi.embedded import EmbeddedStack, _die_with_parent
from awasi.secretkey import dev_audit_signing_key, dev_secret_key
from awasi.settings import Settings

DATABASE = "awasi"


async def _ensure_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def service_env(settings: Settings, database_url: str, bootstrap: str,
                secret_key: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AWASI_DATABASE_URL": database_url,
        "AWASI_KAFKA_BOOTSTRAP": bootstrap,
        "AWASI_INTAKE_PORT": str(settings.intake_port),
        "AWASI_ROUTER_PORT": str(settings.router_port),
        "AWASI_OVERSIGHT_PORT": str(settings.oversight_port),
    })
    if secret_key:
        env["AWASI_SECRET_KEY"] = secret_key
    # A person reads this terminal: readable lines with the service's name in front
    # (awasi.jsonlog.TextFormatter), unless they asked for JSON themselves.
    env.setdefault("AWASI_LOG_JSON", "false")
    # A dev machine has no public address for Telegram's webhook: poll instead.
    if not settings.kafka_bootstrap:
        # The embedded Tansu broker holds every fetch for the whole wait even when data
        # is there: a short wait keeps each hop fast (Apache Kafka answers at once).
        env.setdefault("AWASI_KAFKA_FETCH_MAX_WAIT_MS", "20")
    if env.get("AWASI_TELEGRAM_TOKEN") and not env.get("AWASI_TELEGRAM_MODE"):
        env["AWASI_TELEGRAM_MODE"] = "polling"
    return env


def wait_healthy(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - our own 127.0.0.1
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _seed_demo(settings: Settings) -> None:
    """Load the demo data in this process: the ``awasi seed demo`` command refuses to
    run without ``--force``, and only ``awasi dev`` may load it without asking."""
    from awasi import demo

    try:
        demo.print_people(asyncio.run(demo.seed(settings)))
    except Exception as e:  # noqa: BLE001 - a failed seed must not stop the dev stack
        print(f"awasi dev: loading the demo data failed: {e!r}", flush=True)


def run(settings: Settings, data_dir: Path, *, seed: bool = True) -> int:
    """Run until interrupted; return the exit code. Everything started is stopped."""
    from awasi.cli import migrate_all, replay_all

    data_dir.mkdir(parents=True, exist_ok=True)
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    children: list[subprocess.Popen[bytes]] = []
    stack = EmbeddedStack(data_dir)
    print(f"awasi dev: data folder {data_dir} (the database is kept between runs)", flush=True)
    stack.start()
    try:
        if settings.database_url:
            database_url = settings.database_url
        else:
            asyncio.run(_ensure_database(stack.postgres.uri("postgres"), DATABASE))
            database_url = stack.postgres.uri(DATABASE)
        bootstrap = settings.kafka_bootstrap or stack.broker.bootstrap
        asyncio.run(migrate_all(database_url))
        # The embedded broker forgot everything when it last stopped: republish what
        # the outbox still holds; consumers skip what they had applied.
        since = datetime.now(UTC) - timedelta(days=settings.outbox_retention_days)
        asyncio.run(replay_all(database_url, since, list(SERVICES)))
        # `awasi serve` refuses the built-in key: unless the developer set their own,
        # use one made for this data folder (kept there, so sessions survive a restart).
        secret_key = (settings.secret_key if os.environ.get("AWASI_SECRET_KEY")
                      else dev_secret_key(data_dir))
        env = service_env(settings, database_url, bootstrap, secret_key)
        # Oversight's audit signing key: kept in the dev folder, so checkpoints stay
        # verifiable across restarts (`awasi serve oversight` refuses to run without one).
        env["AWASI_DATA_DIR"] = str(data_dir)
        env["AWASI_AUDIT_SIGNING_KEY"] = (settings.audit_signing_key
                                          or dev_audit_signing_key(data_dir))
        if seed:
            _seed_demo(settings.with_(database_url=database_url, secret_key=secret_key))
        for name in SERVICES:
            children.append(subprocess.Popen(  # noqa: S603 - our own command
                [sys.executable, "-m", "awasi", "serve", name], env=env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            ))
        for name in SERVICES:
            port = getattr(settings, f"{name}_port")
            url = f"http://127.0.0.1:{port}"
            ok = wait_healthy(f"{url}/healthz")
            print(f"awasi dev: {name:<9} {url}  {'up' if ok else 'NOT RESPONDING'}", flush=True)
        print("awasi dev: press Ctrl-C to stop", flush=True)
        while not stop_requested:
            for child in children:
                if child.poll() is not None:
                    print(f"awasi dev: a service exited with {child.returncode}; stopping",
                          flush=True)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(settings.shutdown_timeout_s + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        stack.stop()
        print("awasi dev: stopped", flush=True)
