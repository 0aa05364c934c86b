"""`awasi dev` runs the whole platform on the embedded default and stops cleanly;
`awasi serve` answers a request in flight and exits on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import psutil
import pytest

from awasi.db import create_pool
from awasi.embedded import EmbeddedBroker, free_port
from awasi.identity import add_user
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.slow


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - 127.0.0.1
            return r.status == 200
    except OSError:
        return False


def test_awasi_dev_starts_everything_and_stops_leaving_nothing(tmp_root: Path) -> None:
    data_dir = tmp_root / f"dev{free_port()}"
    ports = {name: free_port() for name in ("intake", "router", "oversight")}
    env = {**__import__("os").environ,
           "AWASI_INTAKE_PORT": str(ports["intake"]), "AWASI_ROUTER_PORT": str(ports["router"]),
           "AWASI_OVERSIGHT_PORT": str(ports["oversight"]),
           "AWASI_KAFKA_SESSION_TIMEOUT_MS": "1000", "AWASI_KAFKA_HEARTBEAT_INTERVAL_MS": "200",
           "AWASI_KAFKA_REBALANCE_TIMEOUT_MS": "1000"}
    dev = subprocess.Popen([sys.executable, "-m", "awasi", "dev", "--data-dir", str(data_dir)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not all(_healthy(f"http://127.0.0.1:{p}/healthz") for p in ports.values()):
            assert dev.poll() is None, "awasi dev exited early"
            assert time.monotonic() < deadline, "services did not come up"
            time.sleep(0.3)
        children = psutil.Process(dev.pid).children(recursive=True)
        assert len(children) >= 4, "three services and the broker run as child processes"
        postgres_pid = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(postgres_pid)
    finally:
        dev.send_signal(signal.SIGINT)
        out = dev.communicate(timeout=60)[0].decode()
    assert dev.returncode == 0, out
    assert "awasi dev: stopped" in out
    time.sleep(0.5)
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left behind: {leftovers}"
    assert (not psutil.pid_exists(postgres_pid)
            or psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE)
    # The database is kept between runs.
    assert (data_dir / "pg" / "PG_VERSION").exists()
    # The demo data was loaded (by awasi dev itself: `awasi seed demo` alone refuses),
    # and the services ran with a key made for this folder, not the public default.
    assert "demo staff (password for all:" in out
    # The services' logs are readable lines, each service's name in front; no JSON.
    lines = out.splitlines()
    assert not [line for line in lines if line.startswith("{")]
    assert {line.split(" ", 1)[0] for line in lines} & {"intake", "router", "oversight"}
    key = data_dir / "secret_key"
    assert key.stat().st_mode & 0o077 == 0
    assert len(key.read_text().strip()) == 64


async def test_serve_drains_an_in_flight_request_and_exits_cleanly_on_sigterm(
        database_url: str, broker: EmbeddedBroker) -> None:
    svc = ServiceProcess("router", database_url, broker.bootstrap)
    svc.start()
    try:
        await svc.wait_healthy()
        pool = await create_pool(database_url, min_size=1, max_size=1)
        try:
            await add_user(pool, username="drain.staff", password="rahasia-drain-1",
                           role="staff", agency="MDN-DISDUKCAPIL")
        finally:
            await pool.close()
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{svc.url}/api/v1/auth/login", json={
                    "username": "drain.staff", "password": "rahasia-drain-1"}) as r:
                assert r.status == 200, await r.text()
                auth = {"Authorization": f"Bearer {(await r.json())['token']}"}
            async with session.get(f"{svc.url}/api/v1/tickets", headers=auth) as r:
                tag = r.headers["ETag"]

            async def long_poll() -> int:
                async with session.get(f"{svc.url}/api/v1/tickets", params={"wait": "30"},
                                       headers=auth | {"If-None-Match": tag}) as r:
                    await r.read()
                    return r.status

            # A request in flight (a long-poll waiting for the queue to change) when
            # the signal comes: it gets its answer, not a reset connection.
            poll = asyncio.ensure_future(long_poll())
            await asyncio.sleep(0.5)
            assert not poll.done()
            assert svc.process is not None
            svc.process.send_signal(signal.SIGTERM)
            assert await poll == 304
        assert svc.wait_exit(30) == 0
    finally:
        svc.kill()


def test_dev_services_log_readable_lines_and_serve_keeps_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import os

    from awasi import jsonlog
    from awasi.devstack import service_env
    from awasi.settings import Settings

    settings = Settings.from_env({})
    saved = os.environ.pop("AWASI_LOG_JSON", None)
    try:
        assert service_env(settings, "postgresql://x", "127.0.0.1:1")["AWASI_LOG_JSON"] == "false"
        os.environ["AWASI_LOG_JSON"] = "true"  # the developer's own choice wins
        assert service_env(settings, "postgresql://x", "127.0.0.1:1")["AWASI_LOG_JSON"] == "true"
    finally:
        os.environ.pop("AWASI_LOG_JSON", None)
        if saved is not None:
            os.environ["AWASI_LOG_JSON"] = saved
    assert Settings.from_env({}).log_json is True  # `awasi serve`'s default stays JSON

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        jsonlog.configure("router", "INFO", json_output=False)
        with jsonlog.event_context("c-42", "e-7"):
            logging.getLogger("awasi.events.relay").info("published", extra={"n": 3})
        jsonlog.configure("router", "INFO", json_output=True)
        logging.getLogger("awasi.events.relay").info("published")
    finally:
        root.handlers[:], root.level = handlers, level
    text, as_json = capsys.readouterr().err.strip().splitlines()
    assert text.startswith("router ")
    assert "INFO" in text and "awasi.events.relay: published" in text
    assert text.endswith("complaint_id=c-42 event_id=e-7 n=3")
    assert __import__("json").loads(as_json)["service"] == "router"
