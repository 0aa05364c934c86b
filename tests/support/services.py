"""Running services in tests: in-process (through the same app factory, on a real
socket) or as real child processes that a test can SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from awasi.embedded import _die_with_parent, free_port
from awasi.settings import Settings
from tests.support.stack import process_env
from tests.support.wait import eventually


@contextlib.asynccontextmanager
async def running_app(app: web.Application) -> AsyncIterator[TestClient]:
    """Serve ``app`` on 127.0.0.1 (a random port) and yield a client bound to it."""
    server = TestServer(app, host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def running_service(name: str, settings: Settings, *, tracer_provider: Any = None,
                          ) -> AsyncIterator[TestClient]:
    """The service ``name`` through its app factory; given ``tracer_provider``, its
    spans go there (awasi/tracing.py: the app's provider is a collaborator)."""
    from awasi.cli import service_module
    from awasi.web import keys

    app = service_module(name).create_app(settings)
    if tracer_provider is not None:
        app[keys.TRACER_PROVIDER] = tracer_provider
    async with running_app(app) as client:
        yield client


async def wait_ready(url: str, process: subprocess.Popen[bytes],
                     timeout: float = 30.0,  # noqa: ASYNC109 - one deadline for the poll
                     *, name: str | None = None) -> None:
    """Poll ``{url}/readyz`` until it answers 200. Raises ``RuntimeError`` if the
    process exits first, ``AssertionError`` after ``timeout`` seconds."""
    name = name or url
    async with aiohttp.ClientSession() as session:
        async def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            try:
                async with session.get(f"{url}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, within=timeout, what=f"{name} ready", interval=0.1)


@dataclass
class ServiceProcess:
    """``awasi serve NAME`` as a real process."""

    name: str
    database_url: str
    bootstrap: str
    port: int = 0
    extra_env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = process_env(self.database_url, self.bootstrap)
        env[f"AWASI_{self.name.upper()}_PORT"] = str(self.port)
        env.update(self.extra_env or {})
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "awasi", "serve", self.name], env=env,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("AWASI_TEST_LOGS") else subprocess.DEVNULL,
            # Dies with the test session, even when that is killed: no orphans.
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )

    async def wait_healthy(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        assert self.process is not None
        await wait_ready(self.url, self.process, timeout, name=self.name)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)
