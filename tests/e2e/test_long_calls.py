"""Long calls that outlive the client, and money spent once: MCP tasks over raw JSON-RPC (2025-11-25), the
sync-wait fallback with get_image_job, merged identical calls, idempotency keys and unclaimed results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path

import pytest
import redis

from tests.e2e.conftest import RawServer, stdio_client
from tests.fakes.fake_openai_server import FakeOpenAIServer, Scripted

KEY = "sk-test-long-calls-0123456789"
PAID = {"generate_image", "edit_image", "start_edit_session", "continue_edit_session"}


@pytest.fixture
def fake():
    with FakeOpenAIServer() as server:
        yield server


def openai_env(fake, tmp_path, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url,
            "GPT_IMAGE_2_STATE_URL": f"sqlite://{tmp_path / 'state.sqlite3'}", **extra}


def generated(fake) -> int:
    return len(fake.requests_to("/v1/images/generations"))


async def until_a_job_is(tmp_path, status: str, timeout_s: float = 30) -> None:
    """Wait until the state store records a job with `status` (read beside the server: WAL allows readers). A
    fixed sleep would race the first call's SDK import, which takes over a second on a slow machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(tmp_path / "state.sqlite3")) as db:
            if any(json.loads(data)["status"] == status for (data,) in db.execute("SELECT data FROM jobs")):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no job became {status} within {timeout_s} s")


def saved_files(tmp_path) -> list[Path]:
    out = tmp_path / "out"
    return sorted(out.iterdir()) if out.exists() else []


def task_call(server: RawServer, arguments: dict, ttl: int = 60_000) -> dict:
    return server.request("tools/call", {"name": "generate_image", "arguments": arguments, "task": {"ttl": ttl}})


def test_tasks_are_declared_and_a_task_runs_to_its_result(fake, tmp_path):
    fake.latency = 1.0
    server = RawServer(tmp_path, **openai_env(fake, tmp_path))
    try:
        initialize = server.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                                   "clientInfo": {"name": "again", "version": "0"}})
        tools = server.request("tools/list", {})["result"]["tools"]
        created = task_call(server, {"prompt": "a slow lighthouse", "inline": "none"})["result"]["task"]
        working = server.request("tasks/get", {"taskId": created["taskId"]})["result"]
        result = server.request("tasks/result", {"taskId": created["taskId"]})["result"]
        done = server.request("tasks/get", {"taskId": created["taskId"]})["result"]
        listed = server.request("tasks/list", {})["result"]["tasks"]
    finally:
        server.close()
    assert initialize["result"]["capabilities"]["tasks"]["requests"] == {"tools": {"call": {}}}
    supported = {t["name"] for t in tools if t.get("execution", {}).get("taskSupport") == "optional"}
    assert supported == PAID
    assert created["status"] == "working" and created["pollInterval"] > 0
    assert created["ttl"] == 15 * 60_000  # one minute was asked: raised, so the task cannot vanish mid-work
    assert created["createdAt"].endswith("+00:00") and created["lastUpdatedAt"]
    assert working["status"] == "working" and working["statusMessage"]
    assert not result.get("isError") and result["structuredContent"]["images"][0]["file_path"]
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": created["taskId"]}
    assert done["status"] == "completed"
    assert created["taskId"] in [t["taskId"] for t in listed]
    statuses = [n["params"]["status"] for n in server.notifications if n.get("method") == "notifications/tasks/status"]
    assert statuses == ["completed"]
    assert generated(fake) == 1


def test_a_keyed_task_keeps_its_result_for_the_keys_whole_window(fake, tmp_path):
    server = RawServer(tmp_path, **openai_env(fake, tmp_path))
    try:
        keyed = task_call(server, {"prompt": "kept", "inline": "none", "idempotency_key": "order-7"})
        plain = task_call(server, {"prompt": "not kept", "inline": "none"}, ttl=2 * 3600_000)
    finally:
        server.close()
    assert keyed["result"]["task"]["ttl"] == 24 * 3600_000  # the key's 24 h, not the task's minutes
    assert plain["result"]["task"]["ttl"] == 2 * 3600_000


def test_cancelling_a_task_aborts_the_request_and_writes_nothing(fake, tmp_path):
    fake.latency = 3.0
    server = RawServer(tmp_path, **openai_env(fake, tmp_path))
    try:
        created = task_call(server, {"prompt": "never finished", "inline": "none"})["result"]["task"]
        while generated(fake) == 0:  # the request reached the API
            time.sleep(0.05)
        cancelled = server.request("tasks/cancel", {"taskId": created["taskId"]})["result"]
        again = server.request("tasks/cancel", {"taskId": created["taskId"]})
        result = server.request("tasks/result", {"taskId": created["taskId"]})
        time.sleep(3.5)  # past the moment the API would have answered
    finally:
        server.close()
    assert cancelled["status"] == "cancelled"
    assert "already cancelled" in again["error"]["message"]
    assert "cancelled: cancelled; nothing was saved. Call the tool again" in result["error"]["message"]
    assert saved_files(tmp_path) == []


def test_cancelling_a_streaming_call_after_a_partial_image_leaves_no_file(fake, tmp_path):
    fake.script("generations", Scripted(drip=0.0001))  # a stream that takes seconds: cancelled in the middle
    server = RawServer(tmp_path, **openai_env(fake, tmp_path))
    try:
        created = task_call(server, {"prompt": "streamed", "inline": "none", "partial_images": 3,
                                     "save_partials": True})["result"]["task"]
        for _ in range(600):  # until the first partial image is saved
            if saved_files(tmp_path):
                break
            time.sleep(0.05)
        assert saved_files(tmp_path), "no partial image arrived"
        cancelled = server.request("tasks/cancel", {"taskId": created["taskId"]})["result"]
        result = server.request("tasks/result", {"taskId": created["taskId"]})
    finally:
        server.close()
    assert cancelled["status"] == "cancelled"
    assert "nothing was saved" in result["error"]["message"]
    assert saved_files(tmp_path) == []


def test_a_tool_error_completes_the_task_with_is_error_and_an_unknown_task_is_not_found(fake, tmp_path):
    server = RawServer(tmp_path, **openai_env(fake, tmp_path))
    try:
        bad = task_call(server, {"prompt": "x", "size": "1000x1000"})["result"]["task"]
        refused = task_call(server, {"prompt": "x", "n": 40})["result"]["task"]
        bad_result = server.request("tasks/result", {"taskId": bad["taskId"]})["result"]
        refused_result = server.request("tasks/result", {"taskId": refused["taskId"]})["result"]
        unknown = server.request("tasks/get", {"taskId": "job_0000000000000000"})
    finally:
        server.close()
    assert bad_result["isError"] and "nearest valid size" in bad_result["content"][0]["text"]
    assert refused_result["isError"] and "`n` was 40" in refused_result["content"][0]["text"]
    assert "No job or task" in unknown["error"]["message"]
    assert generated(fake) == 0


def test_a_task_asked_to_live_less_than_a_slow_call_is_still_there_after_that_ttl(fake, tmp_path):
    # A task that vanished mid-work answered "No job or task ... Start the call again": paying twice.
    fake.latency = 2.0
    server = RawServer(tmp_path, **openai_env(fake, tmp_path))
    try:
        created = task_call(server, {"prompt": "short-lived", "inline": "none"}, ttl=1_000)["result"]["task"]
        time.sleep(1.2)  # past the ttl asked for, while the image is still being made
        during = server.request("tasks/get", {"taskId": created["taskId"]})
        result = server.request("tasks/result", {"taskId": created["taskId"]})
    finally:
        server.close()
    assert created["ttl"] == 15 * 60_000
    assert during["result"]["status"] == "working"
    assert not result["result"].get("isError") and generated(fake) == 1


async def test_a_plain_call_past_the_sync_wait_returns_a_job_that_get_image_job_finishes(fake, tmp_path):
    fake.latency = 5.0
    env = openai_env(fake, tmp_path, GPT_IMAGE_2_SYNC_WAIT_S="2")
    async with stdio_client(tmp_path, **env) as client:
        pending = await client.call_tool("generate_image", {"prompt": "a slow castle", "inline": "none"})
        waited = await client.call_tool("get_image_job", {"job_id": pending.structured_content["job_id"],
                                                          "wait_s": 10})
    assert not pending.is_error and pending.structured_content["status"] == "working"
    assert "get_image_job" in pending.content[0].text and pending.structured_content["job_id"]
    assert not waited.is_error and waited.structured_content["status"] == "completed"
    assert Path(waited.structured_content["images"][0]["file_path"]).exists()
    assert generated(fake) == 1


async def test_identical_calls_in_flight_make_one_request(fake, tmp_path):
    fake.latency = 1.0
    async with stdio_client(tmp_path, **openai_env(fake, tmp_path)) as client:
        results = await asyncio.gather(*[client.call_tool("generate_image", {"prompt": "one fox", "inline": "none"})
                                         for _ in range(5)])
    assert generated(fake) == 1
    paths = {r.structured_content["images"][0]["file_path"] for r in results}
    assert len(paths) == 1 and not any(r.is_error for r in results)
    assert sum("shares its result" in r.content[0].text for r in results) == 4


async def test_a_call_that_joins_or_replays_another_is_shown_the_image_as_it_asked(fake, tmp_path):
    # `inline` is how a caller sees the result, not what the call makes: one API request, each caller's view.
    fake.latency = 1.0
    async with stdio_client(tmp_path, **openai_env(fake, tmp_path)) as client:
        hidden, shown = await asyncio.gather(
            client.call_tool("generate_image", {"prompt": "a shared fox", "inline": "none"}),
            client.call_tool("generate_image", {"prompt": "a shared fox", "inline": "preview"}))
        keyed = {"prompt": "a keyed owl", "idempotency_key": "owl-1"}
        first = await client.call_tool("generate_image", {**keyed, "inline": "none"})
        replayed = await client.call_tool("generate_image", {**keyed, "inline": "preview"})
    assert generated(fake) == 2
    kinds = [[block.type for block in result.content] for result in (hidden, shown, first, replayed)]
    assert "image" not in kinds[0] and "image" in kinds[1]
    assert "image" not in kinds[2] and "image" in kinds[3]
    assert "no new API request" in replayed.content[0].text


async def test_an_idempotency_key_replays_across_restarts_and_processes_and_refuses_other_arguments(fake, tmp_path):
    call = {"prompt": "a keyed boat", "inline": "none", "idempotency_key": "boat-1"}
    env = openai_env(fake, tmp_path)
    async with stdio_client(tmp_path, **env) as client:
        first = await client.call_tool("generate_image", call)
    async with stdio_client(tmp_path, **env) as client, stdio_client(tmp_path, **env) as other:
        replayed = await client.call_tool("generate_image", call)
        from_other = await other.call_tool("generate_image", call)
        conflict = await other.call_tool("generate_image", {**call, "prompt": "another boat"})
    assert generated(fake) == 1
    path = first.structured_content["images"][0]["file_path"]
    for again in (replayed, from_other):
        assert again.structured_content["images"][0]["file_path"] == path
        assert "no new API request" in again.content[0].text
    assert conflict.is_error and "boat-1" in conflict.content[0].text and "different call" in conflict.content[0].text


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_the_same_call_sent_to_two_server_processes_at_once_is_paid_once(fake, tmp_path, store, request):
    # A client retry through a load balancer, two tabs: the two processes look for each other's job in the same
    # instant, so only the store can decide which one starts it.
    env = openai_env(fake, tmp_path)
    if store == "redis":
        env["GPT_IMAGE_2_STATE_URL"] = request.getfixturevalue("redis_server").url
        with redis.Redis.from_url(env["GPT_IMAGE_2_STATE_URL"]) as client:
            client.flushdb()
    async with contextlib.AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(stdio_client(tmp_path, **env)) for _ in range(2)]
        await asyncio.gather(*(r.call_tool("generate_image", {"prompt": "warm", "inline": "none"}) for r in replicas))
        fake.latency = 0.15  # long enough for both to look before either stores a job
        calls = [{"prompt": f"a keyed cat {i}", "inline": "none", "idempotency_key": f"cat-{i}"} for i in range(5)]
        calls += [{"prompt": f"an unkeyed dog {i}", "inline": "none"} for i in range(5)]
        before = generated(fake)
        pairs = [await asyncio.gather(*(r.call_tool("generate_image", call) for r in replicas)) for call in calls]
    assert generated(fake) - before == len(calls)
    for pair in pairs:
        assert not any(r.is_error for r in pair), [r.content[0].text for r in pair]
        assert len({r.structured_content["images"][0]["file_path"] for r in pair}) == 1
        assert len({r.structured_content["job_id"] for r in pair}) == 1


def stored_jobs(tmp_path) -> list[dict]:
    """The jobs in the servers' state file; none while it has not been made (read-only: never made here)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{tmp_path / 'state.sqlite3'}?mode=ro", uri=True)) as db:
            return [json.loads(data) for (data,) in db.execute("SELECT data FROM jobs")]
    except sqlite3.OperationalError:  # no file, or no table yet
        return []


def until_stored(tmp_path, what: str, check, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check(jobs := stored_jobs(tmp_path)):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"the store never showed {what} within {timeout_s} s")


def test_a_call_joined_from_another_server_process_outlives_the_first_callers_departure(fake, tmp_path):
    # Replica A runs the job; the same call on replica B joins it. A's caller going away must not stop the job
    # B's caller waits for (A used to count only its own callers, and cancelled it).
    fake.latency = 2.0
    env = openai_env(fake, tmp_path)
    a, b = RawServer(tmp_path, **env), RawServer(tmp_path, **env)
    try:
        call = {"name": "generate_image", "arguments": {"prompt": "a lighthouse", "inline": "none"}}
        first = a.start_request("tools/call", call)
        until_stored(tmp_path, "a working job", lambda jobs: [j["status"] for j in jobs] == ["working"])
        joined = b.start_request("tools/call", call)
        until_stored(tmp_path, "a caller elsewhere", lambda jobs: jobs[0]["callers_elsewhere"] == 1)
        a.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": first}})
        result = b.wait_for(joined)["result"]
    finally:
        a.close()
        b.close()
    assert result["isError"] is False, result["content"][0]["text"]
    assert Path(result["structuredContent"]["images"][0]["file_path"]).is_file()
    assert generated(fake) == 1 and [j["status"] for j in stored_jobs(tmp_path)] == ["completed"]


async def test_a_retry_with_the_key_of_a_failed_call_reaches_the_api_and_is_then_replayed(fake, tmp_path):
    call = {"prompt": "a keyed kite", "inline": "none", "idempotency_key": "kite-1"}
    fake.script("generations", FakeOpenAIServer.error(503, "overloaded", type="server_error"))
    async with stdio_client(tmp_path, **openai_env(fake, tmp_path, GPT_IMAGE_2_MAX_ATTEMPTS="1")) as client:
        failed = await client.call_tool("generate_image", call)
        retried = await client.call_tool("generate_image", call)
        replayed = await client.call_tool("generate_image", call)
    assert failed.is_error and not retried.is_error and generated(fake) == 2
    assert "no new API request" not in retried.content[0].text
    assert replayed.structured_content["images"] == retried.structured_content["images"]
    assert "no new API request" in replayed.content[0].text


def test_closing_stdin_finishes_the_work_callers_were_told_would_go_on(fake, tmp_path):
    # A client restart closes stdin right after it was told "the work goes on; come back for it" (a plain call
    # past the sync wait, and a task): the server finishes and records both before it exits.
    fake.latency = 2.0
    env = openai_env(fake, tmp_path, GPT_IMAGE_2_SYNC_WAIT_S="0.3")
    server = RawServer(tmp_path, **env)
    plain = server.call("generate_image", {"prompt": "a slow lighthouse", "inline": "none"})
    task = task_call(server, {"prompt": "a slow harbour", "inline": "none"})["result"]["task"]
    server.close()  # stdin closed: returns once the process has exited
    assert plain["structuredContent"]["status"] == "working" and generated(fake) == 2
    again = RawServer(tmp_path, **env)
    try:
        job = again.call("get_image_job", {"job_id": plain["structuredContent"]["job_id"]})
        task_status = again.request("tasks/get", {"taskId": task["taskId"]})["result"]
    finally:
        again.close()
    assert job["isError"] is False and Path(job["structuredContent"]["images"][0]["file_path"]).is_file()
    assert task_status["status"] == "completed"
    assert generated(fake) == 2


async def test_a_paid_result_nobody_received_is_handed_to_the_next_identical_call(fake, tmp_path):
    fake.latency = 2.0
    env = openai_env(fake, tmp_path, GPT_IMAGE_2_SYNC_WAIT_S="0.5")
    async with stdio_client(tmp_path, **env) as client:
        gone = await client.call_tool("generate_image", {"prompt": "an unclaimed owl", "inline": "none"})
        assert gone.structured_content["status"] == "working"
        await until_a_job_is(tmp_path, "completed")  # it finished; nobody asked for it
        again = await client.call_tool("generate_image", {"prompt": "an unclaimed owl", "inline": "none"})
    assert generated(fake) == 1
    assert again.structured_content["status"] == "completed"
    assert "caller went away" in again.content[0].text


def test_a_task_whose_server_process_died_reads_as_failed_from_another_process(fake, tmp_path):
    fake.latency = 30.0
    env = openai_env(fake, tmp_path, GPT_IMAGE_2_JOB_HEARTBEAT_S="0.5")
    first = RawServer(tmp_path, **env)
    created = task_call(first, {"prompt": "orphaned", "inline": "none"})["result"]["task"]
    while generated(fake) == 0:
        time.sleep(0.05)
    first.kill()
    other = RawServer(tmp_path, **env)
    try:
        deadline = time.monotonic() + 30
        status = other.request("tasks/get", {"taskId": created["taskId"]})["result"]
        while status["status"] == "working" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = other.request("tasks/get", {"taskId": created["taskId"]})["result"]
        result = other.request("tasks/result", {"taskId": created["taskId"]})
    finally:
        other.close()
    assert status["status"] == "failed"
    assert "server process that ran this job stopped" in status["statusMessage"]
    assert "failed" in result["error"]["message"]
