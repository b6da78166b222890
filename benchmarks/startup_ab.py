"""Start-up of two installed servers, side by side: spawn each console script, send `initialize`, time the answer
(wall clock and the child's CPU time). The runs alternate so machine noise hits both alike.

    .venv/bin/python benchmarks/startup_ab.py OLD_SCRIPT NEW_SCRIPT [--openai] [--runs N]

`--openai` configures the OpenAI backend (its SDK is imported in the background) with a key and an address on
127.0.0.1 that is never called. Prints medians, one line per script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_once(script: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds to the initialize answer, CPU seconds of the whole child)."""
    cpu_before, started = children_cpu_s(), time.perf_counter()
    proc = subprocess.Popen([script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps(INITIALIZE) + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline(), "no answer to initialize"
    wall = time.perf_counter() - started
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stdout.close()
    return wall, children_cpu_s() - cpu_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs=2)
    parser.add_argument("--openai", action="store_true")
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_IMAGE_2_"))}
    env["GPT_IMAGE_2_OUTPUT_DIR"] = tempfile.mkdtemp(prefix="startup-ab-")
    if args.openai:
        env.update(OPENAI_API_KEY="sk-bench-0000000000", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    runs: dict[str, list[tuple[float, float]]] = {script: [] for script in args.scripts}
    for _ in range(args.runs):
        for script in args.scripts:
            runs[script].append(start_once(script, env))
    for script, samples in runs.items():
        wall = statistics.median(s[0] for s in samples) * 1000
        cpu = statistics.median(s[1] for s in samples) * 1000
        print(f"{script}: initialize answered in {wall:.0f} ms wall, {cpu:.0f} ms CPU (median of {args.runs})")


if __name__ == "__main__":
    main()
