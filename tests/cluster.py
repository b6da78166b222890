"""A team deployment on one machine, for tests and benchmarks: a real redis-server, N replicas of
`gpt-image-2-mcp serve --transport http` sharing it and one output folder, and a real HAProxy in front of them,
everything on 127.0.0.1.

    with Cluster(script, folder, replicas=3, latency_ms=1000).start() as cluster:
        cluster.url                   # http://127.0.0.1:<proxy>/mcp, round-robin over the replicas
        cluster.replicas[0].mcp_url   # one replica, directly

The replicas run in stateless mode (`GPT_IMAGE_2_HTTP_STATELESS=1`) by default: behind a load balancer without
sticky sessions, a handshake-era `Mcp-Session-Id` lives in one replica's memory and the next request may land
on another. HAProxy adds `X-Served-By: <replica name>` to every answer, so a test can see where a request went.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.redis_server import INSTALL_HINT as REDIS_HINT
from tests.redis_server import RedisServer, free_port

HAPROXY_HINT = "install haproxy: apt-get install haproxy"
STARTUP_S = 30.0
SERVED_BY = "x-served-by"
CHECK_INTERVAL_MS = 300
"""HAProxy's health-check interval: a killed replica leaves the rotation within two checks."""


def missing_tools() -> list[str]:
    """The install hints for what a cluster needs and this machine lacks (empty: it can run)."""
    needed = {"redis-server": REDIS_HINT, "haproxy": HAPROXY_HINT}
    return [hint for tool, hint in needed.items() if shutil.which(tool) is None]


def _get(url: str, timeout: float = 2.0) -> int:
    """The status of GET url, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def _tail(path: Path, limit: int = 3000) -> str:
    return path.read_text(errors="replace")[-limit:] if path.exists() else "(no log)"


@dataclass
class Replica:
    """One `serve --transport http` process; its stderr goes to a log file (a pipe nobody reads would fill)."""

    name: str
    script: str
    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> Replica:
        args = [self.script, "serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(self.port)]
        hosts = f"{self.env['GPT_IMAGE_2_ALLOWED_HOSTS']},127.0.0.1:{self.port}"  # the proxy's, and its own
        env = {**self.env, "GPT_IMAGE_2_ALLOWED_HOSTS": hosts}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, cwd=self.folder, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_until_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"replica {self.name} exited while starting. Its log:\n{_tail(self.log)}")
            if _get(f"{self.base}/healthz") == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"replica {self.name} did not answer /healthz in time. Its log:\n{_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as when a machine or container dies."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process is frozen where it is (it can then only be killed or continued)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.alive:
            self.process.send_signal(signal.SIGCONT)  # a paused process would not act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def peak_memory_kib(self) -> int:
        """VmHWM, the process's peak resident memory, from /proc (Linux)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def haproxy_config(port: int, replicas: list[Replica]) -> str:
    """A minimal production-shaped HAProxy config (the README shows the same one with a public address)."""
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
    return f"""\
global
    maxconn 2000

defaults
    mode http
    timeout connect 5s
    timeout client 15m      # an SSE answer stays open while an image is made (tasks/result waits for it)
    timeout server 15m
    timeout http-request 10s
    timeout check 2s
    retries 3
    option redispatch 1     # a connection refused by a dead replica is retried on another one

frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    default-server inter {CHECK_INTERVAL_MS}ms fall 2 rise 1
    http-response set-header X-Served-By %[srv_name]
{servers}
"""


class Proxy:
    """`haproxy -f <config> -db` in the foreground as a child process (never the system service)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "haproxy.log"

    def start(self, replicas: list[Replica], deadline: float) -> Proxy:
        config = self.folder / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, replicas))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([shutil.which("haproxy") or "haproxy", "-f", str(config), "-db"],
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited at start. Its output:\n{_tail(self.log)}")
            if _get(f"http://127.0.0.1:{self.port}/healthz") == 200:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"haproxy did not pass /healthz on in time. Its output:\n{_tail(self.log)}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Cluster:
    """Redis, `replicas` servers on it with one shared output folder, HAProxy in front. `start()`, `stop()`;
    `revive()` restarts any replica that was killed, on its old port (HAProxy's config names it)."""

    def __init__(self, script: str, folder: Path, replicas: int = 3, latency_ms: int = 0, stateless: bool = True,
                 **env: str) -> None:
        self.folder = folder
        self.output_dir = folder / "images"
        self.redis = RedisServer()
        self.proxy = Proxy(folder, free_port())
        self._script = str(Path(script).absolute())
        self._count = replicas
        self._latency_ms = latency_ms
        self._stateless = stateless
        self._extra_env = env
        self.request_state_key = secrets.token_hex(32)
        self.replicas: list[Replica] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}/mcp"

    def replica_env(self) -> dict[str, str]:
        """What every replica shares: the store, the folder, the request-state key and the proxy's address."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_IMAGE_2_"))}
        env.update({
            "GPT_IMAGE_2_BACKEND": "fake",
            "GPT_IMAGE_2_STATE_URL": self.redis.url,
            "GPT_IMAGE_2_OUTPUT_DIR": str(self.output_dir),
            "GPT_IMAGE_2_HTTP_STATELESS": "1" if self._stateless else "0",
            "GPT_IMAGE_2_REQUEST_STATE_KEYS": self.request_state_key,
            # Requests arrive through the proxy with its Host header: it must be allowed (each replica adds
            # its own address for direct requests).
            "GPT_IMAGE_2_ALLOWED_HOSTS": f"127.0.0.1:{self.proxy.port}",
            "GPT_IMAGE_2_FAKE_LATENCY_MS": str(self._latency_ms),
            # Short beats, so a dead replica's job is judged failed within seconds, not 20 s.
            "GPT_IMAGE_2_JOB_HEARTBEAT_S": "0.5",
            "GPT_IMAGE_2_HEARTBEAT_S": "0.5",
        })
        env.update(self._extra_env)
        return env

    def start(self) -> Cluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(exist_ok=True)
        try:
            self.redis.start()
            env = self.replica_env()
            for index in range(self._count):
                data = self.folder / f"xdg-{index}"  # nothing of the state lives here: it is all in Redis
                self.replicas.append(Replica(f"r{index + 1}", self._script, self.folder,
                                             {**env, "XDG_DATA_HOME": str(data)}))
            for replica in self.replicas:  # started together, so the start-ups overlap
                replica.spawn()
            deadline = time.monotonic() + STARTUP_S
            for replica in self.replicas:
                replica.wait_until_healthy(deadline)
            self.proxy.start(self.replicas, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def revive(self) -> None:
        """Restart every replica that is not running (same port, same environment) and wait for it."""
        dead = [replica for replica in self.replicas if not replica.alive]
        for replica in dead:
            replica.process = None
            replica.spawn()
        deadline = time.monotonic() + STARTUP_S
        for replica in dead:
            replica.wait_until_healthy(deadline)

    def stop(self) -> None:
        self.proxy.stop()
        for replica in self.replicas:
            replica.stop()
        self.redis.stop()

    def pids(self) -> dict[str, int]:
        """The live processes of the cluster by name: each replica, haproxy and redis."""
        named = {r.name: r.process.pid for r in self.replicas if r.process is not None}
        if self.proxy.process is not None:
            named["haproxy"] = self.proxy.process.pid
        if self.redis.pid is not None:
            named["redis"] = self.redis.pid
        return named

    def logs(self) -> str:
        """Every process's log tail, for a failing assertion's message."""
        parts = [f"--- {r.name}\n{_tail(r.log, 1500)}" for r in self.replicas]
        return "\n".join([*parts, f"--- haproxy\n{_tail(self.proxy.log, 1500)}"])

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
