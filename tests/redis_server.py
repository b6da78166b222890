"""A real, throwaway redis-server for tests: 127.0.0.1 only, a free port, no persistence, a temporary folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

INSTALL_HINT = "install redis-server: apt-get install redis-server"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; it is released for the caller to use)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """`start()` runs redis-server and returns once it answers PING; `stop()` ends it and removes its folder."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or shutil.which("redis-server")
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 3, port: int | None = None) -> RedisServer:
        """On a free port, or on `port` (a restart, as its clients see one: same address, empty store)."""
        if not self.executable:
            raise RuntimeError(INSTALL_HINT)
        self._folder = Path(tempfile.mkdtemp(prefix="redis-test-"))
        for _ in range(attempts):  # another process may take the free port before redis-server binds it
            self.port = port or free_port()
            self._process = subprocess.Popen(
                [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                 "no", "--dir", str(self._folder), "--logfile", str(self._folder / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if self._wait_for_ping(deadline=time.monotonic() + 10):
                return self
            self._end_process()
        log = (self._folder / "redis.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING after {attempts} attempts. Its log:\n{log}")

    def stop(self) -> None:
        self._end_process()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _wait_for_ping(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False  # it exited: the port was taken, or it cannot run
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _end_process(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
