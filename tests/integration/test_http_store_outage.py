"""The state store (a real redis-server) stops under a running HTTP server: what a caller is told for the
methods that have no tool result to carry the error. The store failing is the server's trouble, not the
request's: an internal error that says what is wrong, and 503 on a download link, never "no such image"."""

from __future__ import annotations

from pathlib import Path

import anyio
from mcp.types import INTERNAL_ERROR

from tests.conftest import make_container, write_png
from tests.http_harness import RawMcpSession, bound_socket, http, serve_http
from tests.redis_server import RedisServer


async def test_with_the_store_down_resources_and_tasks_are_internal_errors_and_links_say_try_again(tmp_path):
    redis, sock = RedisServer().start(), bound_socket()
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url=redis.url,
                               transport="http", http_port=sock.getsockname()[1], url_signing_key="s" * 40)
    try:
        async with serve_http(container, sock) as served:
            session = await anyio.to_thread.run_sync(RawMcpSession(served.mcp_url).open)
            made = await session.call("tools/call", {"name": "generate_image",
                                                     "arguments": {"prompt": "before", "inline": "none"}})
            image = made["result"]["structuredContent"]["images"][0]
            assert (await http(image["download_url"])).status == 200
            redis.stop()
            answers = {
                "resources/read": await session.call("resources/read", {"uri": image["uri"]}),
                "resources/list": await session.call("resources/list"),
                "tasks/list": await session.call("tasks/list"),
                "tools/call as a task": await session.call("tools/call", {
                    "name": "generate_image", "arguments": {"prompt": "during"}, "task": {}}),
            }
            tool = await session.call("tools/call", {"name": "list_edit_sessions", "arguments": {}})
            link = await http(image["download_url"])
    finally:
        redis.stop()
    for method, answer in answers.items():
        assert answer.get("error", {}).get("code") == INTERNAL_ERROR, (method, answer)
        assert "state store is not answering just now" in answer["error"]["message"], (method, answer)
        assert "redis" not in answer["error"]["message"].lower(), (method, answer)  # where it is: the log's
    told = tool["result"]["content"][0]["text"]
    assert tool["result"]["isError"] and "state store is not answering just now" in told and "redis" not in told
    assert link.status == 503 and link.headers.get("retry-after") == "5"
    assert "try the link again" in link.body.decode() and "redis" not in link.body.decode().lower()


async def test_a_store_failure_inside_a_running_call_reaches_a_remote_caller_without_the_stores_address(tmp_path):
    # The session's record fails when the turn's image arrives: the job records the error, and every replica
    # shows it (tasks/result, get_image_job) for the job's whole life; it must be worded for the caller.
    redis, sock = RedisServer().start(), bound_socket()
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url=redis.url,
                               transport="http", http_port=sock.getsockname()[1], fake_latency_ms=1000)
    try:
        async with serve_http(container, sock) as served:
            session = await anyio.to_thread.run_sync(RawMcpSession(served.mcp_url).open)
            (tmp_path / "out").mkdir(exist_ok=True)
            image = str(write_png(tmp_path / "out" / "in.png", (64, 64)))  # over HTTP: inside the folder
            async with anyio.create_task_group() as group:
                answers = []

                async def start() -> None:
                    answers.append(await session.call("tools/call", {"name": "start_edit_session", "arguments": {
                        "prompt": "x", "images": [image], "inline": "none"}}))

                group.start_soon(start)
                backend = container.fake_backend()
                for _ in range(300):  # until the call is in the backend (booked, its 1 s begun)
                    if backend.calls:
                        break
                    await anyio.sleep(0.02)
                redis.stop()
    finally:
        redis.stop()
    told = answers[0]["result"]["content"][0]["text"]
    assert answers[0]["result"]["isError"] and "state store is not answering just now" in told, told
    assert "redis" not in told.lower() and "saved at: " in told
    assert Path(told.rsplit("saved at: ", 1)[1].rstrip(".")).is_file()
