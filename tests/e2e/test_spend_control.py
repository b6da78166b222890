"""Money is spent knowingly: a daily budget refuses before any request, an expensive call is confirmed through
MCP elicitation (or refused, naming confirm_cost), and the ledger's totals match what the results said."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import anyio
import pytest
import redis
from mcp.client import Client
from mcp.types import ElicitResult

from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container, write_png
from tests.e2e.conftest import server_env, stdio_client
from tests.fakes.fake_openai_server import FakeOpenAIServer, Scripted, encoded_b64

KEY = "sk-test-spend-0123456789abcdef"


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


def env_for(fake, tmp_path, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url,
            "GPT_IMAGE_2_STATE_URL": f"sqlite://{tmp_path / 'state.sqlite3'}", **extra}


def generated(fake) -> int:
    return len(fake.requests_to("/v1/images/generations"))


async def test_a_call_past_the_daily_budget_is_refused_before_any_request_with_the_figures(fake, tmp_path):
    async with stdio_client(tmp_path, **env_for(fake, tmp_path, GPT_IMAGE_2_BUDGET_USD_PER_DAY="0.1")) as client:
        refused = await client.call_tool("generate_image", {"prompt": "x", "quality": "high", "inline": "none"})
        requests_after_refusal = generated(fake)
        cheap = await client.call_tool("generate_image", {"prompt": "x", "quality": "low", "inline": "none"})
    assert refused.is_error and requests_after_refusal == 0
    text = refused.content[0].text
    assert "$0.2110" in text and "$0.10 budget" in text and "GPT_IMAGE_2_BUDGET_USD_PER_DAY" in text
    assert not cheap.is_error and generated(fake) == 1


async def test_an_edit_of_many_large_references_is_estimated_with_them_and_refused_by_the_budget(fake, tmp_path):
    # The references are billed as image input tokens: 16 of 2 MP cost far more than the low-quality image made.
    images = [str(write_png(tmp_path / f"ref{i}.png", (2048, 1024))) for i in range(16)]
    async with stdio_client(tmp_path, **env_for(fake, tmp_path, GPT_IMAGE_2_BUDGET_USD_PER_DAY="0.05")) as client:
        refused = await client.call_tool("edit_image", {"prompt": "x", "images": images, "quality": "low",
                                                        "size": "1024x1024", "inline": "none"})
    assert refused.is_error and "GPT_IMAGE_2_BUDGET_USD_PER_DAY" in refused.content[0].text
    assert "$0.2681" in refused.content[0].text  # $0.0060 for the image, $0.2621 for its references
    assert fake.requests_to("/v1/images/edits") == []


async def test_the_ledger_totals_match_the_costs_the_results_reported(fake, tmp_path, script):
    env = env_for(fake, tmp_path)
    async with stdio_client(tmp_path, **env) as client:
        results = [await client.call_tool("generate_image", {"prompt": f"image {i}", "quality": q, "inline": "none"})
                   for i, q in enumerate(("low", "medium"))]
    spend = subprocess.run([script, "spend", "--json"], env=server_env(tmp_path, **env), capture_output=True,
                           text=True, timeout=60)
    report = json.loads(spend.stdout)
    reported = sum(r.structured_content["cost_usd_estimated"] for r in results)
    assert report["total"]["calls"] == 2
    assert report["total"]["actual_usd"] == pytest.approx(reported)
    assert report["per_day"][-1]["estimated_usd"] == pytest.approx(0.006 + 0.053)


USAGE = {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
         "output_tokens": 1000, "total_tokens": 1050}


async def test_an_answer_with_an_unreadable_image_keeps_the_readable_one_and_books_what_was_charged(
        fake, tmp_path, script):
    # One good image and one that is not an image (a mangled answer): both were paid for.
    good = encoded_b64(1024, 1024, "png")
    fake.script("generations",
                Scripted(status=200, json={"created": 1, "data": [{"b64_json": good}, {"b64_json": "aGVsbG8="}],
                                           "usage": USAGE}),
                Scripted(status=200, json={"created": 2, "data": [{"b64_json": "aGVsbG8="}], "usage": USAGE}))
    env = env_for(fake, tmp_path)
    async with stdio_client(tmp_path, **env) as client:
        mixed = await client.call_tool("generate_image", {"prompt": "two cats", "n": 2, "inline": "none"})
        broken = await client.call_tool("generate_image", {"prompt": "one cat", "inline": "none"})
    assert not mixed.is_error, mixed.content
    [image] = mixed.structured_content["images"]
    assert Path(image["file_path"]).is_file()
    kept = [p for p in (tmp_path / "out").iterdir() if str(p) != image["file_path"]]
    assert len(kept) == 2 and all(str(p) in mixed.content[0].text + broken.content[0].text for p in kept)
    assert broken.is_error and "not a readable image" in broken.content[0].text
    spend = subprocess.run([script, "spend", "--json"], env=server_env(tmp_path, **env), capture_output=True,
                           text=True, timeout=60)
    report = json.loads(spend.stdout)
    assert report["total"]["calls"] == 2
    assert report["total"]["actual_usd"] == pytest.approx(2 * mixed.structured_content["cost_usd_estimated"])


def answer(action: str, confirm: bool | None = None):
    async def callback(context, params):
        assert "$0.0530" in params.message
        return ElicitResult(action=action, content=None if confirm is None else {"confirm": confirm})

    return callback


@pytest.mark.parametrize("callback, outcome", [
    (answer("accept", True), "made"),
    (answer("accept", False), "declined"),
    (answer("decline"), "declined"),
    (answer("cancel"), "declined"),
    (None, "not asked"),  # a client without elicitation
])
async def test_an_expensive_call_is_confirmed_through_elicitation(fake, tmp_path, callback, outcome):
    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"),
                               confirm_above_usd=0.01, state_url="memory://")
    async with Client(build_server(container), mode="legacy", elicitation_callback=callback) as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "quality": "medium", "inline": "none"})
    told = result.content[0].text
    assert result.is_error is (outcome != "made")
    assert generated(fake) == (1 if outcome == "made" else 0)
    if outcome == "not asked":
        assert "confirm_cost: true" in told and "$0.0530" in told
    if outcome == "declined":  # the user's answer: the model is not told how to get round it
        assert "The user declined this call" in told and "$0.0530" in told and "confirm_cost" not in told


async def test_the_sync_wait_does_not_run_out_while_the_user_is_still_deciding(fake, tmp_path):
    # Nothing is sent until the user answers: "still being made, do not call again" would be untrue.
    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"),
                               confirm_above_usd=0.01, state_url="memory://", sync_wait_s=1.5)

    async def slow_yes(context, params):
        await anyio.sleep(3.0)  # much longer than the sync wait; what follows the answer takes well under it
        return ElicitResult(action="accept", content={"confirm": True})

    async with Client(build_server(container), mode="legacy", elicitation_callback=slow_yes) as client:
        # A cheap call first (below the threshold), finished, so the SDK is loaded before the timed one.
        warm = await client.call_tool("generate_image", {"prompt": "warm", "quality": "low", "inline": "none"})
        await client.call_tool("get_image_job", {"job_id": warm.structured_content["job_id"], "wait_s": 30})
        result = await client.call_tool("generate_image", {"prompt": "x", "quality": "medium", "inline": "none"})
    assert not result.is_error and result.structured_content["status"] == "completed"
    assert generated(fake) == 2


async def test_confirm_cost_goes_ahead_without_asking(fake, tmp_path):
    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"),
                               confirm_above_usd=0.01, state_url="memory://")
    async with Client(build_server(container), mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "quality": "medium", "inline": "none",
                                                           "confirm_cost": True})
    assert not result.is_error and generated(fake) == 1


async def test_a_call_the_budget_refuses_is_never_put_to_the_user(fake, tmp_path):
    asked = []

    async def callback(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"),
                               confirm_above_usd=0.01, budget_usd_per_day=0.05, state_url="memory://")
    async with Client(build_server(container), mode="legacy", elicitation_callback=callback) as client:
        refused = await client.call_tool("generate_image", {"prompt": "x", "quality": "medium", "inline": "none"})
    assert refused.is_error and "GPT_IMAGE_2_BUDGET_USD_PER_DAY" in refused.content[0].text
    assert asked == [] and generated(fake) == 0


async def test_calls_sent_together_cannot_pass_the_budget_between_them(fake, tmp_path):
    container = make_container(api_key=KEY, base_url=fake.base_url, output_dir=str(tmp_path / "out"),
                               budget_usd_per_day=0.05, state_url=f"sqlite://{tmp_path / 'state.sqlite3'}")
    results = []
    async with Client(build_server(container), mode="legacy") as client:

        async def one(i: int) -> None:
            results.append(await client.call_tool("generate_image", {"prompt": f"cheap {i}", "quality": "low",
                                                                     "inline": "none"}))

        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(one, i)
    refused = [r for r in results if r.is_error]
    assert 1 <= generated(fake) <= 8  # each is estimated at $0.0060: eight fit in $0.05, a ninth does not
    assert len(refused) == 20 - generated(fake)
    assert all("GPT_IMAGE_2_BUDGET_USD_PER_DAY" in r.content[0].text for r in refused)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_two_server_processes_on_one_store_cannot_pass_the_budget_between_them(fake, tmp_path, store, request):
    # Two replicas of one deployment: each books on the shared store, so the check and the booking must be one
    # step of the store, not of either process.
    env = env_for(fake, tmp_path, GPT_IMAGE_2_BUDGET_USD_PER_DAY="0.05")
    if store == "redis":
        server = request.getfixturevalue("redis_server")
        with redis.Redis.from_url(server.url) as client:
            client.flushdb()
        env["GPT_IMAGE_2_STATE_URL"] = server.url
    results = []
    async with contextlib.AsyncExitStack() as stack:  # both replicas up before the first call goes out
        replicas = [await stack.enter_async_context(stdio_client(tmp_path, **env)) for _ in range(2)]

        async def one(i: int) -> None:
            results.append(await replicas[i % 2].call_tool(
                "generate_image", {"prompt": f"call {i}", "quality": "low", "inline": "none"}))

        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(one, i)
    refused = [r for r in results if r.is_error]
    assert 1 <= generated(fake) <= 8  # each is estimated at $0.0060: eight fit in $0.05, a ninth does not
    assert len(results) == 20 and len(refused) == 20 - generated(fake)
    assert all("GPT_IMAGE_2_BUDGET_USD_PER_DAY" in r.content[0].text for r in refused)
