"""Load through the load balancer: N concurrent MCP clients, each making M generate_image calls in a row, through
HAProxy to R stateless replicas on one Redis and one output folder (tests/cluster.py), on the fake backend with a
fixed latency standing in for the image API.

    .venv/bin/python benchmarks/load_replicas.py [--clients 50] [--calls 10] [--replicas 3] [--latency-ms 1000]

Needs redis-server and haproxy (apt-get install redis-server haproxy). Prints the machine, the errors (which must
be 0), p50/p95/max call latency, calls per second, how the proxy spread the requests, and each replica's peak
memory (VmHWM from /proc) after start-up and after the load; `--json` prints the same as JSON. Every prompt is
unique, so no call is merged with another (identical calls in flight share one job). Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp.client import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

from tests.cluster import SERVED_BY, Cluster, cpu_seconds, missing_tools  # noqa: E402

CALL_DEADLINE_S = 120.0
"""No call may take longer: the run always ends."""


def script_path() -> str:
    beside = Path(sys.executable).parent / "gpt-image-2-mcp"
    if not beside.exists():
        sys.exit("the gpt-image-2-mcp console script is not installed beside this Python (pip install -e .)")
    return str(beside)


async def one_client(url: str, client_no: int, calls: int, inline: str, latencies: list[float],
                     errors: list[str], served: Counter[str]) -> None:
    """One MCP client (its own connection pool) making `calls` generate_image calls one after another."""

    async def record(response) -> None:
        if name := response.headers.get(SERVED_BY):
            served[name] += 1

    try:
        async with create_mcp_http_client() as http:
            http.event_hooks = {"response": [record]}
            async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
                for call_no in range(calls):
                    prompt = f"load test, client {client_no}, call {call_no}: a lighthouse at dusk"
                    started = time.perf_counter()
                    try:
                        with_deadline = asyncio.wait_for(
                            client.call_tool("generate_image", {"prompt": prompt, "inline": inline}), CALL_DEADLINE_S)
                        result = await with_deadline
                    except Exception as e:  # a failed call is counted, and the client goes on
                        errors.append(f"client {client_no} call {call_no}: {type(e).__name__}: {e}")
                        continue
                    if result.is_error:
                        errors.append(f"client {client_no} call {call_no}: {result.content[0].text[:200]}")
                    else:
                        latencies.append(time.perf_counter() - started)
    except Exception as e:  # the client could not even connect
        errors.append(f"client {client_no}: {type(e).__name__}: {e}")


async def load(url: str, clients: int, calls: int, inline: str) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    served: Counter[str] = Counter()
    started = time.perf_counter()
    await asyncio.gather(*(one_client(url, n, calls, inline, latencies, errors, served) for n in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "calls": clients * calls, "ok": len(latencies), "errors": len(errors), "first_errors": errors[:5],
        "elapsed_s": elapsed, "calls_per_s": len(latencies) / elapsed,
        "p50_s": statistics.median(ordered) if ordered else None,
        "p95_s": ordered[max(0, int(len(ordered) * 0.95) - 1)] if ordered else None,
        "max_s": ordered[-1] if ordered else None,
        "requests_by_replica": dict(sorted(served.items())),
    }


async def warm_up(cluster: Cluster) -> None:
    """One call per replica, straight to it: the first call of a process pays for imports and a first store use."""
    for replica in cluster.replicas:
        async with Client(replica.mcp_url, mode="legacy") as client:
            await client.call_tool("generate_image", {"prompt": f"warm-up {replica.name}", "inline": "none"})


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    haproxy = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}",
            "cores": os.cpu_count(), "memory_gib": round(int(meminfo[1]) / 2**20, 1),
            "haproxy": " ".join(haproxy.split()[:3]), "redis": redis.split()[2] if redis else "?",
            # Other work on the machine competes for the same cores: say how busy it was when the run began.
            "load_average_1m": float(Path("/proc/loadavg").read_text().split()[0])}


def report(args: argparse.Namespace, facts: dict, result: dict, memory: dict) -> str:
    lines = [
        f"Python {facts['python']} on {facts['system']}, {facts['cores']} cores, {facts['memory_gib']} GiB; "
        f"{facts['haproxy']}, Redis {facts['redis']}; load average {facts['load_average_1m']:.2f} at the start",
        f"{args.clients} clients x {args.calls} calls through HAProxy to {args.replicas} stateless replicas, "
        f"fake backend with {args.latency_ms} ms latency, inline={args.inline}",
        "",
        "| measure | result |",
        "|---|---|",
        f"| calls | {result['calls']} |",
        f"| errors | {result['errors']} |",
        f"| p50 latency | {result['p50_s']:.2f} s |" if result["p50_s"] is not None else "| p50 latency | - |",
        f"| p95 latency | {result['p95_s']:.2f} s |" if result["p95_s"] is not None else "| p95 latency | - |",
        f"| max latency | {result['max_s']:.2f} s |" if result["max_s"] is not None else "| max latency | - |",
        f"| throughput | {result['calls_per_s']:.1f} calls/s ({result['elapsed_s']:.1f} s in all) |",
        "| requests by replica | " + ", ".join(f"{k} {v}" for k, v in result["requests_by_replica"].items()) + " |",
        "| CPU time during the load | " + ", ".join(f"{k} {v:.1f} s" for k, v in result["cpu_s"].items())
        + f" (of {facts['cores'] * result['elapsed_s']:.0f} core-seconds) |",
    ]
    for name, (before, after) in memory.items():
        lines.append(f"| peak memory (VmHWM) {name} | {before / 1024:.0f} MiB after start-up, "
                     f"{after / 1024:.0f} MiB after the load |")
    lines += [f"error: {e}" for e in result["first_errors"]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=10, help="calls per client, one after another")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=1000, help="the fake backend's time per image")
    parser.add_argument("--inline", choices=("preview", "none"), default="preview",
                        help="preview (the tools' default: an inline preview in every result) or none")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if missing := missing_tools():
        sys.exit("; ".join(missing))
    facts = machine()
    with tempfile.TemporaryDirectory(prefix="load-replicas-") as folder:
        # The production heartbeats (not the replica test's short ones): what a deployment writes to Redis.
        cluster = Cluster(script_path(), Path(folder), replicas=args.replicas, latency_ms=args.latency_ms,
                          GPT_IMAGE_2_JOB_HEARTBEAT_S="5", GPT_IMAGE_2_HEARTBEAT_S="2")
        with cluster.start():
            asyncio.run(warm_up(cluster))
            before = {r.name: r.peak_memory_kib() for r in cluster.replicas}
            cpu_before = {name: cpu_seconds(pid) for name, pid in cluster.pids().items()}
            client_cpu = time.process_time()
            result = asyncio.run(load(cluster.url, args.clients, args.calls, args.inline))
            cpu = {"client": time.process_time() - client_cpu}
            cpu.update({name: cpu_seconds(pid) - cpu_before[name] for name, pid in cluster.pids().items()})
            result["cpu_s"] = cpu
            memory = {r.name: (before[r.name], r.peak_memory_kib()) for r in cluster.replicas}
    if args.json:
        print(json.dumps({"machine": facts, "settings": vars(args), **result,
                          "peak_memory_kib": {k: {"after_start": b, "after_load": a} for k, (b, a) in memory.items()}},
                         indent=2))
    else:
        print(report(args, facts, result, memory))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
