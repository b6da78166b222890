"""Bursts of concurrent tool calls on two installed servers, alternating, against one fake OpenAI server with a
1 s latency: the server's own cost of many calls at once, free of the machine's drift between runs. Prints each
burst's time and, per server, the median and mean.

    .venv/bin/python benchmarks/concurrency_ab.py OLD_SCRIPT NEW_SCRIPT [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from benchmarks.run_benchmarks import concurrently, env_for
from tests.fakes.fake_openai_server import FakeOpenAIServer

BURSTS = 3


async def bursts(script: str, base_url: str, out: Path, calls: int) -> list[float]:
    """One server, warmed by a call, then BURSTS bursts of `calls` different calls at once."""
    async with Client(StdioServerParameters(command=script, env=env_for(base_url, out)), mode="legacy") as client:

        async def tool(i: int) -> None:
            result = await client.call_tool("generate_image", {"prompt": f"{out.name} {i}", "inline": "none"})
            assert not result.is_error, result.content

        await tool(-1)
        return [await concurrently(calls, lambda i, k=k: tool(i + 1000 * k)) for k in range(BURSTS)]


async def compare(scripts: list[str], rounds: int, calls: int) -> None:
    taken: dict[str, list[float]] = {script: [] for script in scripts}
    with FakeOpenAIServer(latency=1.0) as slow, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for index, script in enumerate(scripts if round_ % 2 == 0 else scripts[::-1]):  # both orders
                times = await bursts(script, slow.base_url, Path(tmp) / f"r{round_}s{index}", calls)
                taken[script] += times
                print(f"round {round_} {script}: {', '.join(f'{t:.2f} s' for t in times)}", flush=True)
    for script, times in taken.items():
        print(f"{script}: median {statistics.median(times):.3f} s, mean {statistics.mean(times):.3f} s "
              f"({len(times)} bursts of {calls})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(compare(args.scripts, args.rounds, args.calls))


if __name__ == "__main__":
    main()
