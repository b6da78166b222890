"""Benchmarks for gpt-image-2-mcp: spawns the installed server over stdio against a local fake OpenAI server, and
prints each figure beside its floor (what the same work costs without our server) and the ratio.

    .venv/bin/python benchmarks/run_benchmarks.py [--script PATH] [--runs N] [--no-bytecode-cache]

`--script` measures another installed console script (e.g. an older tree's venv) with this same harness.
Every process spawned (server and floor alike) reads and writes bytecode under one fresh PYTHONPYCACHEPREFIX,
primed by unmeasured spawns: what an installed server has after its first start (pip compiles at install, uv on
first import). `--no-bytecode-cache` keeps PYTHONDONTWRITEBYTECODE as set: an editable install then compiles the
project's own modules at every start.
Everything listens on 127.0.0.1; nothing leaves the machine. Prints a Markdown table on stdout; takes ~3 minutes.

Floors: start-up, memory and exit against a bare `python -c "import mcp.server.mcpserver"` run by the script's own
interpreter (waiting on stdin as a server does); a tool call against the `openai` SDK alone making the same request
to the same fake (the server's share is the difference of the medians); concurrency against the SDK alone at the
same concurrency. Measure a venv with the runtime dependencies only (`pip install .`) to see what users get: the
test extras bring `rich` (through import-linter), which the MCP SDK then imports at start-up (~12 ms, 1 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from mcp.client import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from benchmarks import processes  # noqa: E402
from tests.fakes.fake_openai_server import FakeOpenAIServer, encoded_image  # noqa: E402

DEFAULT_SCRIPT = shutil.which("gpt-image-2-mcp", path=str(Path(sys.executable).parent)) or "gpt-image-2-mcp"
Row = tuple[str, str, str, str, str, str]
"""measure, result, floor, ratio, target, verdict."""


BYTECODE: dict[str, str] = {}
"""Set by main(): the bytecode settings every spawned process gets."""


def env_for(base_url: str, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_IMAGE_2_"))}
    if BYTECODE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(BYTECODE)
    env.update(OPENAI_API_KEY="sk-bench-0000000000", OPENAI_BASE_URL=base_url, GPT_IMAGE_2_OUTPUT_DIR=str(out),
               GPT_IMAGE_2_STATE_URL=f"sqlite://{out}/state.sqlite3")
    return env


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def verdict(good: bool) -> str:
    return "met" if good else "MISSED"


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- start-up, memory, exit -------------------------------------------------------------------------------------

def process_rows(script: str, env: dict[str, str], runs: int) -> list[Row]:
    processes.alternate(script, env, 1, settle_s=2.0)  # unmeasured: fills the bytecode cache, SDK included
    bare, server = processes.alternate(script, env, runs, settle_s=1.0)
    _, hurried = processes.alternate(script, env, max(3, runs // 2), settle_s=0.0)
    b_wall, s_wall = median([r.wall_s for r in bare]), median([r.wall_s for r in server])
    b_cpu, s_cpu = median([r.cpu_s for r in bare]), median([r.cpu_s for r in server])
    b_rss, s_rss = median([r.rss_mib for r in bare]), median([r.rss_mib for r in server])
    b_exit = median([r.exit_s for r in bare])
    s_exit, h_exit = median([r.exit_s for r in server]), median([r.exit_s for r in hurried])
    return [
        ("`initialize` answered, wall", ms(s_wall), ms(b_wall), f"{s_wall / b_wall:.2f}×", "≤ 1.1×",
         verdict(s_wall <= 1.1 * b_wall)),
        ("`initialize` answered, CPU", ms(s_cpu), ms(b_cpu), f"{s_cpu / b_cpu:.2f}×", "≤ 1.1×",
         verdict(s_cpu <= 1.1 * b_cpu)),
        ("idle memory after `initialize` (VmRSS, 1 s later)", f"{s_rss:.1f} MiB", f"{b_rss:.1f} MiB",
         f"{s_rss / b_rss:.2f}×", "≤ 85 MiB", verdict(s_rss <= 85)),
        ("exit after stdin closes, idle", ms(s_exit), ms(b_exit), f"{s_exit / b_exit:.1f}×", "≤ 50 ms",
         verdict(s_exit <= 0.05)),
        ("exit after stdin closes, right after `initialize`", ms(h_exit), ms(b_exit), f"{h_exit / b_exit:.1f}×",
         "≤ 50 ms", verdict(h_exit <= 0.05)),
    ]


# -- tool calls ---------------------------------------------------------------------------------------------------

def raw_client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-bench-0000000000", base_url=base_url, max_retries=0)


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def call_share(client: Client, raw: openai.AsyncOpenAI, pid: int | None, size: str, runs: int
                     ) -> dict[str, float]:
    """Alternate the MCP tool call and the SDK alone, same request; medians, server CPU per call, inline bytes."""
    inline = 0

    async def tool() -> None:
        nonlocal inline
        result = await client.call_tool("generate_image", {"prompt": "benchmark", "size": size})
        assert not result.is_error, result.content
        inline = sum(len(b.data) for b in result.content if b.type == "image")

    async def sdk() -> None:
        await raw.images.generate(model="gpt-image-2", prompt="benchmark", size=size)  # type: ignore[arg-type]

    await tool()
    await sdk()  # warm: connections open, lazy imports done
    calls, floors, cpus = [], [], []
    for _ in range(runs):
        cpu_before = processes.cpu_seconds(pid) if pid else 0.0
        calls.append(await timed(tool))
        cpus.append(processes.cpu_seconds(pid) - cpu_before if pid else float("nan"))
        floors.append(await timed(sdk))
    return {"call": median(calls), "floor": median(floors), "cpu": median(cpus), "inline": inline}


async def call_rows(script: str, out: Path, runs: int) -> tuple[list[Row], dict[str, float]]:
    extra: dict[str, float] = {}
    with FakeOpenAIServer(latency=0.0, noisy_images=True) as fake:
        raw = raw_client(fake.base_url)
        params = StdioServerParameters(command=script, env=env_for(fake.base_url, out / "calls"))
        async with Client(params, mode="legacy") as client:
            pid = processes.server_pid(os.getpid())
            small = await call_share(client, raw, pid, "1024x1024", runs * 3)
            before = processes.rss_mib(pid, "VmHWM") if pid else float("nan")
            large = await call_share(client, raw, pid, "3840x2160", runs)
            extra["peak_growth_4k_mib"] = (processes.rss_mib(pid, "VmHWM") - before) if pid else float("nan")
        await raw.close()
    extra["inline_4k"] = large["inline"]
    rows = []
    for label, figures, target in (("1024x1024", small, 0.025), ("3840x2160", large, 0.120)):
        share = figures["call"] - figures["floor"]
        rows.append((f"server's share of a warm {label} call (p50; server CPU {ms(figures['cpu'])})",
                     ms(share), f"{ms(figures['floor'])} SDK alone; {ms(figures['call'])} whole call",
                     f"{figures['call'] / figures['floor']:.2f}×", f"≤ {ms(target)}", verdict(share <= target)))
    return rows, extra


# -- concurrency, first progress ----------------------------------------------------------------------------------

async def concurrently(count: int, call: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*[call(i) for i in range(count)])
    return time.perf_counter() - started


async def concurrency_rows(script: str, out: Path) -> list[Row]:
    rows: list[Row] = []
    with FakeOpenAIServer(latency=1.0) as slow:
        raw = raw_client(slow.base_url)
        params = StdioServerParameters(command=script, env=env_for(slow.base_url, out / "slow"))
        async with Client(params, mode="legacy") as client:

            async def tool(i: int) -> None:
                result = await client.call_tool("generate_image", {"prompt": f"concurrent {i}", "inline": "none"})
                assert not result.is_error, result.content

            async def sdk(i: int) -> None:
                await raw.images.generate(model="gpt-image-2", prompt=f"concurrent {i}")

            await asyncio.gather(tool(0), sdk(0))  # warm both
            for count, target in ((8, 1.25), (50, 1.6)):
                floor = median([await concurrently(count, sdk) for _ in range(2)])
                took = median([await concurrently(count, tool) for _ in range(2)])
                rows.append((f"{count} concurrent calls, 1 s backend", f"{took:.2f} s", f"{floor:.2f} s SDK alone",
                             f"{took / floor:.2f}×", f"≤ {target} s", verdict(took <= target)))
            rows.append(await first_progress_row(client))
        await raw.close()
    return rows


async def first_progress_row(client: Client) -> Row:
    first: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if not first:
            first.append(time.perf_counter())

    started = time.perf_counter()
    await client.call_tool("generate_image", {"prompt": "progress", "inline": "none"}, progress_callback=on_progress)
    took = first[0] - started if first else float("nan")
    return ("time to first progress notification", ms(took), "", "", "", "")


# -- the first call after start -----------------------------------------------------------------------------------

async def first_edit_once(script: str, env: dict[str, str], source: Path, pause_s: float, warm_runs: int
                          ) -> tuple[float, float]:
    async def edit(client: Client) -> None:
        result = await client.call_tool("edit_image", {"prompt": "first", "images": [str(source)]})
        assert not result.is_error, result.content

    async with Client(StdioServerParameters(command=script, env=env), mode="legacy") as client:
        await asyncio.sleep(pause_s)  # 0: right after the handshake, while the SDK is still being imported
        first = await timed(lambda: edit(client))
        warm = median([await timed(lambda: edit(client)) for _ in range(warm_runs)])
    return first, warm


async def first_edit_rows(script: str, out: Path, spawns: int) -> list[Row]:
    source = out / "reference.png"
    source.write_bytes(encoded_image(1024, 1024, "png"))
    rows: list[Row] = []
    with FakeOpenAIServer(latency=0.0) as fake:
        for pause_s, label in ((0.0, "right after the handshake"), (1.0, "1 s after the handshake")):
            firsts, warms = [], []
            for i in range(spawns):
                env = env_for(fake.base_url, out / f"first{pause_s}-{i}")
                first, warm = await first_edit_once(script, env, source, pause_s, 5)
                firsts.append(first)
                warms.append(warm)
            first, warm = median(firsts), median(warms)
            rows.append((f"first edit, {label}", ms(first), f"{ms(warm)} warm edit", f"+{ms(first - warm)}",
                         "≤ warm + 150 ms", verdict(first - warm <= 0.150)))
    return rows


# -- report -------------------------------------------------------------------------------------------------------

async def measure_calls(script: str, out: Path, runs: int) -> tuple[list[Row], dict[str, float]]:
    rows, extra = await call_rows(script, out, runs)
    rows += await concurrency_rows(script, out)
    rows += await first_edit_rows(script, out, spawns=3)
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default=DEFAULT_SCRIPT, help="the installed console script to measure")
    parser.add_argument("--runs", type=int, default=7, help="start-up spawns and 4K calls (1024 calls: 3×)")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if not args.no_bytecode_cache:
            BYTECODE["PYTHONPYCACHEPREFIX"] = str(out / "pycache")
        with FakeOpenAIServer() as fake:
            rows = process_rows(args.script, env_for(fake.base_url, out / "startup"), args.runs)
        more, extra = asyncio.run(measure_calls(args.script, out, args.runs))
    rows += more
    rows.append(("peak memory growth during 4K calls (VmHWM)", f"{extra['peak_growth_4k_mib']:.1f} MiB", "", "",
                 "< 200 MiB", verdict(extra["peak_growth_4k_mib"] < 200)))
    rows.append(("inline bytes, 4K result", f"{extra['inline_4k']:,.0f}", "", "", "< 1,000,000",
                 verdict(extra["inline_4k"] < 1e6)))
    print(f"Python {sys.version.split()[0]} on {os.uname().sysname} {os.uname().machine}, {os.cpu_count()} cores; "
          f"{args.script}; medians of {args.runs} alternating spawns (start-up), {args.runs * 3} and {args.runs} "
          f"alternating calls (1024x1024, 3840x2160); bytecode {'cached' if BYTECODE else 'as the environment says'}"
          "\n")
    print("| measure | result | floor | ratio | target | |\n|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
