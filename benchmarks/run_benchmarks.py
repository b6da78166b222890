"""Benchmarks for gpt-image-2-mcp: spawns the installed server over stdio against a local fake OpenAI server.

Run from the project folder with the project installed:  .venv/bin/python benchmarks/run_benchmarks.py
Everything listens on 127.0.0.1; nothing leaves the machine. Prints a Markdown report on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp.client import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from tests.fakes.fake_openai_server import FakeOpenAIServer, encoded_image  # noqa: E402

SCRIPT = shutil.which("gpt-image-2-mcp", path=str(Path(sys.executable).parent)) or "gpt-image-2-mcp"
RUNS = 5
STARTUP_RUNS = 9
MiB = 1024 * 1024


def env_for(base_url: str, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_IMAGE_2_"))}
    env.update(OPENAI_API_KEY="sk-bench-0000000000", OPENAI_BASE_URL=base_url, GPT_IMAGE_2_OUTPUT_DIR=str(out))
    return env


def bare_import_once() -> float:
    """Spawn to 'imported' for the bare SDK import (timed to a printed line, like the server, not to exit)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "import mcp.server.mcpserver; print('ready', flush=True)"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout and proc.stdout.readline().strip() == "ready"
    elapsed = time.perf_counter() - started
    proc.wait(timeout=10)
    proc.stdout.close()
    return elapsed


def server_startup_once(env: dict[str, str]) -> tuple[float, float]:
    """Spawn to the initialize answer, and to the tools/list answer."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
    started = time.perf_counter()
    proc = subprocess.Popen([SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps(init) + "\n")
    proc.stdin.flush()
    json.loads(proc.stdout.readline())
    to_init = time.perf_counter() - started
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}) + "\n")
    proc.stdin.flush()
    json.loads(proc.stdout.readline())
    to_list = time.perf_counter() - started
    proc.stdin.close()
    proc.wait(timeout=10)
    proc.stdout.close()
    return to_init, to_list


def startup_seconds(env: dict[str, str]) -> tuple[float, float, float]:
    """Medians of bare import, server to initialize, server to tools/list; the runs alternate so that machine
    noise hits both sides alike."""
    bare, to_init, to_list = [], [], []
    for _ in range(STARTUP_RUNS):
        bare.append(bare_import_once())
        init, listed = server_startup_once(env)
        to_init.append(init)
        to_list.append(listed)
    return statistics.median(bare), statistics.median(to_init), statistics.median(to_list)


def server_pid(parent: int) -> int | None:
    """The spawned server: the newest child process of this benchmark running the console script."""
    for pid in sorted((int(p) for p in os.listdir("/proc") if p.isdigit()), reverse=True):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and "gpt-image-2-mcp" in cmdline:
            return pid
    return None


def memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


async def timed_calls(client: Client, size: str, runs: int) -> tuple[float, int]:
    times, inline = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        result = await client.call_tool("generate_image", {"prompt": "benchmark", "size": size})
        times.append(time.perf_counter() - started)
        assert not result.is_error, result.content
        inline = sum(len(b.data) for b in result.content if b.type == "image")
    return statistics.median(times), inline


async def call_benchmarks(out: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    with FakeOpenAIServer(latency=0.0, noisy_images=True) as fast:
        params = StdioServerParameters(command=SCRIPT, env=env_for(fast.base_url, out / "fast"))
        async with Client(params, mode="legacy") as client:
            await timed_calls(client, "1024x1024", 1)  # warm-up
            pid = server_pid(os.getpid())
            figures["call_1024"], figures["inline_1024"] = await timed_calls(client, "1024x1024", RUNS)
            before = memory(pid) if pid else {}
            figures["call_4k"], figures["inline_4k"] = await timed_calls(client, "3840x2160", RUNS)
            after = memory(pid) if pid else {}
            if before and after:
                figures["rss_before_4k_mib"] = before["VmRSS"] / MiB
                figures["peak_growth_4k_mib"] = (after["VmHWM"] - before["VmHWM"]) / MiB
                figures["peak_over_rss_4k_mib"] = (after["VmHWM"] - before["VmRSS"]) / MiB
        figures["png_bytes_4k"] = len(encoded_image(3840, 2160, "png", True))
    with FakeOpenAIServer(latency=1.0) as slow:
        params = StdioServerParameters(command=SCRIPT, env=env_for(slow.base_url, out / "slow"))
        async with Client(params, mode="legacy") as client:
            await client.call_tool("list_edit_sessions", {})
            started = time.perf_counter()
            results = await asyncio.gather(*[
                client.call_tool("generate_image", {"prompt": f"concurrent {i}", "size": "1024x1024",
                                                    "inline": "none"}) for i in range(8)])
            figures["concurrent_8x1s"] = time.perf_counter() - started
            assert not any(r.is_error for r in results)
            first: list[float] = []

            async def on_progress(progress, total, message):
                if not first:
                    first.append(time.perf_counter())

            started = time.perf_counter()
            await client.call_tool("generate_image", {"prompt": "progress", "inline": "none"},
                                   progress_callback=on_progress)
            figures["first_progress"] = first[0] - started if first else float("nan")
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with FakeOpenAIServer() as fake:
            env = env_for(fake.base_url, out / "startup")
            bare, to_init, to_list = startup_seconds(env)
        figures = asyncio.run(call_benchmarks(out))
    ok = lambda good: "met" if good else "MISSED"  # noqa: E731
    rows = [
        ("bare `python -c 'import mcp.server.mcpserver'`", f"{bare * 1000:.0f} ms", "", ""),
        ("start-up to `initialize` answered", f"{to_init * 1000:.0f} ms", f"≤ {1.5 * bare * 1000:.0f} ms (1.5×)",
         ok(to_init <= 1.5 * bare)),
        ("start-up to `tools/list` answered", f"{to_list * 1000:.0f} ms", "", ""),
        ("call overhead, 1024x1024, zero-latency backend", f"{figures['call_1024'] * 1000:.0f} ms", "", ""),
        ("call overhead, 3840x2160, zero-latency backend", f"{figures['call_4k'] * 1000:.0f} ms", "", ""),
        ("peak memory growth during 4K calls", f"{figures.get('peak_growth_4k_mib', float('nan')):.1f} MiB",
         "< 200 MiB", ok(figures.get("peak_growth_4k_mib", 1e9) < 200)),
        ("size of the 4K PNG the fake API returns", f"{figures['png_bytes_4k'] / MiB:.1f} MiB", "", ""),
        ("inline bytes, 4K result", f"{figures['inline_4k']:,.0f}", "< 1,000,000", ok(figures["inline_4k"] < 1e6)),
        ("8 concurrent calls, 1 s backend", f"{figures['concurrent_8x1s']:.2f} s", "< 1.3 s",
         ok(figures["concurrent_8x1s"] < 1.3)),
        ("time to first progress notification", f"{figures['first_progress'] * 1000:.0f} ms", "", ""),
    ]
    print(f"Python {sys.version.split()[0]} on {os.uname().sysname} {os.uname().machine}, {os.cpu_count()} cores; "
          f"medians of {STARTUP_RUNS} alternating runs (start-up) and {RUNS} runs (calls)\n")
    print("| measure | result | target | |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
