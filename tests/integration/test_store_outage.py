"""The state store (a real redis-server) is down when a paid image arrives: the image is saved and returned at
once, and its booking and catalogue entry are written once the store answers again."""

from __future__ import annotations

import anyio
from dependency_injector import providers
from mcp.client import Client

from gpt_image_2_mcp.domain.backlog import StoreBacklog
from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER
from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container
from tests.fakes.fake_openai_server import FakeOpenAIServer
from tests.redis_server import RedisServer

KEY = "sk-test-outage-0123456789abcdef"


async def until(check, what: str, tries: int = 600) -> None:
    """Poll `check` every 50 ms (30 s in all)."""
    for _ in range(tries):
        if await check():
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"never saw {what}")


async def test_an_image_that_arrives_during_an_outage_is_booked_and_catalogued_once_the_store_is_back(tmp_path):
    redis, fake = RedisServer().start(), FakeOpenAIServer(latency=1.5).start()
    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"),
                               state_url=redis.url)
    container.store_backlog.override(providers.Singleton(StoreBacklog, retry_every_s=0.2))
    results = []
    try:
        async with Client(build_server(container), mode="legacy") as client:

            async def call() -> None:
                results.append(await client.call_tool("generate_image", {"prompt": "during", "inline": "none"}))

            async with anyio.create_task_group() as group:
                group.start_soon(call)

                async def asked() -> bool:
                    return bool(fake.requests_to("/v1/images/generations"))

                await until(asked, "the API request")
                port = redis.port
                redis.stop()  # booked its estimate before; now the image arrives with the store gone
            [result] = results
            assert not result.is_error, result.content
            assert "not catalogued yet" in result.content[0].text
            redis.start(port=port)  # back, empty, at the same address
            backlog = container.store_backlog()

            async def written() -> bool:
                return backlog.pending == 0

            await until(written, "the backlog written")
            image = result.structured_content["images"][0]
            read = await client.read_resource(image["uri"])
            totals = await (await container.spend_guard()).totals(LOCAL_OWNER, 1)
    finally:
        redis.stop()
        fake.stop()
    assert read.contents and read.contents[0].uri == image["uri"]
    assert [(day.calls, day.actual_usd) for day in totals] == [(1, result.structured_content["cost_usd_estimated"])]
