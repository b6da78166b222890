"""Process-level figures for the benchmarks: start-up to `initialize`, idle memory, and exit after stdin closes,
each beside its floor (a bare `import mcp.server.mcpserver` in the same interpreter, doing the same things).

CPU time is read from /proc/PID/task/*/schedstat (nanoseconds on a CPU, every live thread) at the moment the
answer arrives, so it is the CPU spent up to the answer, not the process's whole life. Linux only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
# The floor: the SDK import, a line on stdout when done, then waiting on stdin like a server does.
BARE = "import sys, mcp.server.mcpserver; print('ready', flush=True); sys.stdin.read()"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Start:
    """One spawn: wall and CPU seconds to the answer, resident memory once idle, seconds from EOF to exit."""

    wall_s: float
    cpu_s: float
    rss_mib: float
    exit_s: float


def cpu_seconds(pid: int) -> float:
    """CPU time of every live thread of `pid` (schedstat: ns on a CPU)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that just ended
            continue
    return total / 1e9


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return int(value.split()[0]) * 1024 / MiB
    return float("nan")


def _exit_after_eof(proc: subprocess.Popen) -> float:
    assert proc.stdin
    started = time.perf_counter()
    proc.stdin.close()
    proc.wait(timeout=30)
    return time.perf_counter() - started


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)


def python_of(script: str) -> str:
    """The interpreter of an installed console script (its venv's python), for a floor in the same environment."""
    beside = Path(script).parent / "python"
    return str(beside) if beside.exists() else sys.executable


def bare_once(python: str, env: dict[str, str], settle_s: float) -> Start:
    started = time.perf_counter()
    proc = _spawn([python, "-c", BARE], env)
    assert proc.stdout and proc.stdout.readline().strip() == "ready"
    wall, cpu = time.perf_counter() - started, cpu_seconds(proc.pid)
    time.sleep(settle_s)
    rss = rss_mib(proc.pid)
    exit_s = _exit_after_eof(proc)
    proc.stdout.close()
    return Start(wall, cpu, rss, exit_s)


def server_once(script: str, env: dict[str, str], settle_s: float) -> Start:
    """Spawn, `initialize`, wait `settle_s` (background warm-up ends), read memory, close stdin, time the exit.
    With settle_s=0 the exit is timed while the start-up work is still in flight."""
    started = time.perf_counter()
    proc = _spawn([script], env)
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps(INITIALIZE) + "\n")
    proc.stdin.flush()
    assert "result" in json.loads(proc.stdout.readline()), "no answer to initialize"
    wall, cpu = time.perf_counter() - started, cpu_seconds(proc.pid)
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    proc.stdin.flush()
    time.sleep(settle_s)
    rss = rss_mib(proc.pid)
    exit_s = _exit_after_eof(proc)
    proc.stdout.close()
    return Start(wall, cpu, rss, exit_s)


def alternate(script: str, env: dict[str, str], runs: int, settle_s: float) -> tuple[list[Start], list[Start]]:
    """(bare runs, server runs), alternating so that machine noise hits both alike."""
    bare, server = [], []
    for _ in range(runs):
        bare.append(bare_once(python_of(script), env, settle_s))
        server.append(server_once(script, env, settle_s))
    return bare, server


def server_pid(parent: int, name: str = "gpt-image-2-mcp") -> int | None:
    """The spawned server: the newest child process of `parent` whose command line names the console script."""
    for pid in sorted((int(p) for p in os.listdir("/proc") if p.isdigit()), reverse=True):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and name in cmdline:
            return pid
    return None
