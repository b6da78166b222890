"""A use case whose resource is still being built (the OpenAI SDK importing) survives a caller that is cancelled."""

import asyncio

from dependency_injector import providers

from gpt_image_2_mcp.entrypoints.use_cases import resolve


async def test_a_cancelled_first_caller_does_not_poison_a_resource_still_being_built():
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_resource():
        started.set()
        await release.wait()
        yield "backend"

    backend = providers.Resource(slow_resource)
    provider = providers.Singleton(lambda backend: f"use case over {backend}", backend=backend)
    first = asyncio.create_task(resolve(provider))
    await started.wait()
    first.cancel()  # how a job is cancelled: Task.cancel(), as when its only caller goes away
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled()
    release.set()
    assert await asyncio.wait_for(resolve(provider), 5) == "use case over backend"
    await backend.shutdown()
