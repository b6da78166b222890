"""Streamable HTTP for real: uvicorn on 127.0.0.1 serving the app `serve --transport http` builds, driven by the
SDK's streamable HTTP client and by raw HTTP requests."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import anyio
import pytest
from mcp.client import Client

from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase
from gpt_image_2_mcp.adapters.sqlite_job_store import SqliteJobStore
from gpt_image_2_mcp.domain.errors import StateStoreError
from gpt_image_2_mcp.domain.jobs import JobStatus
from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER
from tests.conftest import make_container, write_png
from tests.http_harness import INITIALIZE, RawMcpSession, bound_socket, http, serve_http

TOOLS = {"generate_image", "edit_image", "start_edit_session", "continue_edit_session", "end_edit_session",
         "list_edit_sessions", "get_image_job"}


def http_container(tmp_path: Path, sock, **settings):
    return make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                          transport="http", http_port=sock.getsockname()[1], **settings)


@pytest.fixture
def sock():
    listening = bound_socket()
    yield listening
    listening.close()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_protocol_eras_list_the_tools_and_generate_over_http(tmp_path, sock, mode):
    async with serve_http(http_container(tmp_path, sock), sock) as served, Client(served.mcp_url, mode=mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("generate_image", {"prompt": "a paper crane", "inline": "none"})
        instructions = client.instructions
    assert tools == TOOLS
    assert "resources/read" in instructions and str(tmp_path) not in instructions  # remote: no server paths
    assert not result.is_error, result.content
    saved = Path(result.structured_content["images"][0]["file_path"])
    assert saved.parent == tmp_path / "out" and saved.is_file()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_progress_notifications_reach_the_http_client_while_the_call_runs(tmp_path, sock, mode):
    container = http_container(tmp_path, sock, fake_latency_ms=900, heartbeat_s=0.2)
    events = []

    async def on_progress(progress, total, message):
        events.append((progress, total, message))

    async with serve_http(container, sock) as served, Client(served.mcp_url, mode=mode) as client:
        result = await client.call_tool("generate_image", {"prompt": "slow"}, progress_callback=on_progress)
    assert not result.is_error
    assert events and events[0][2].startswith("request accepted")
    assert any("elapsed" in message for _, _, message in events)  # heartbeats, not only the steps
    assert events[-1][0] == events[-1][1]


async def test_a_foreign_host_header_is_misdirected_and_a_foreign_origin_forbidden(tmp_path, sock):
    async with serve_http(http_container(tmp_path, sock), sock) as served:
        rebinding = await http(served.mcp_url, "POST", INITIALIZE, {"Host": "evil.example"})
        cross_site = await http(served.mcp_url, "POST", INITIALIZE, {"Origin": "http://evil.example"})
        same_site = await http(served.mcp_url, "POST", INITIALIZE, {"Origin": served.base})
    assert rebinding.status == 421
    assert cross_site.status == 403
    assert same_site.status == 200
    [initialized] = [json.loads(line[5:]) for line in same_site.body.decode().splitlines() if line.startswith("data:")]
    assert initialized["result"]["capabilities"]["resources"]["listChanged"] is True  # new images are announced


async def test_configured_hosts_and_origins_replace_the_loopback_defaults(tmp_path, sock):
    container = http_container(tmp_path, sock, allowed_hosts="images.example.com",
                               allowed_origins="https://app.example.com")
    async with serve_http(container, sock) as served:
        loopback = await http(served.mcp_url, "POST", INITIALIZE)
        named = await http(served.mcp_url, "POST", INITIALIZE, {"Host": "images.example.com",
                                                                "Origin": "https://app.example.com"})
    assert loopback.status == 421
    assert named.status == 200


async def test_healthz_answers_ok_when_the_state_store_answers(tmp_path, sock):
    async with serve_http(http_container(tmp_path, sock), sock) as served:
        answer = await http(f"{served.base}/healthz")
    assert answer.status == 200 and answer.json() == {"status": "ok", "state": "ok"}


class BrokenLedger:
    async def spent_since(self, owner, since):
        raise StateStoreError("Redis at redis://:hunter2-secret@10.0.0.9:6379/0 refused the connection.")


async def test_healthz_is_503_with_a_one_line_reason_and_no_secret_when_the_store_fails(tmp_path, sock, caplog):
    container = http_container(tmp_path, sock)
    container.spend_ledger.override(BrokenLedger())
    async with serve_http(container, sock) as served:
        answer = await http(f"{served.base}/healthz")
    assert answer.status == 503
    body = answer.json()
    assert body["status"] == "unavailable" and body["reason"] == "the state store failed (the server's log says why)"
    assert "10.0.0.9" not in answer.body.decode()  # the page is public: where the store is stays in the log
    assert "refused the connection" in caplog.text and "hunter2" not in caplog.text


@pytest.mark.parametrize("stateless", [False, True])
async def test_output_dir_is_confined_to_the_output_folder(tmp_path, sock, stateless):
    container = http_container(tmp_path, sock, http_stateless=stateless)
    outside = tmp_path / "elsewhere"
    async with serve_http(container, sock) as served, Client(served.mcp_url, mode="legacy") as client:
        refused = await client.call_tool("generate_image", {"prompt": "x", "output_dir": str(outside)})
        escaping = await client.call_tool("generate_image", {"prompt": "x", "output_dir": "../elsewhere"})
        relative = await client.call_tool("generate_image", {"prompt": "x", "output_dir": "drafts", "inline": "none"})
    assert refused.is_error and "outside the folder this server keeps your images in" in refused.content[0].text
    assert escaping.is_error and "outside the folder this server keeps your images in" in escaping.content[0].text
    assert not outside.exists()
    assert not relative.is_error
    assert Path(relative.structured_content["images"][0]["file_path"]).parent == tmp_path / "out" / "drafts"


async def test_stateless_mode_refuses_to_read_local_files_outside_the_output_folder(tmp_path, sock):
    """Stateless, the server cannot ask for roots: it fails closed on its own output folder, never open."""
    container = http_container(tmp_path, sock, http_stateless=True)
    private = write_png(tmp_path / "private.png")
    (tmp_path / "out").mkdir()
    shared = write_png(tmp_path / "out" / "shared.png")
    async with serve_http(container, sock) as served, Client(served.mcp_url, mode="legacy") as client:
        refused = await client.call_tool("edit_image", {"prompt": "x", "images": [str(private)]})
        allowed = await client.call_tool("edit_image", {"prompt": "x", "images": [str(shared)], "inline": "none"})
    assert refused.is_error and "outside your folder on this server" in refused.content[0].text
    assert not allowed.is_error, allowed.content


async def test_request_parameters_that_do_not_fit_name_the_parameter_over_http_too(tmp_path, sock):
    async with serve_http(http_container(tmp_path, sock), sock) as served:
        session = await anyio.to_thread.run_sync(RawMcpSession(served.mcp_url).open)
        read = await session.call("resources/read", {})
        task = await session.call("tasks/get", {"taskId": 7})
    assert read["error"]["code"] == task["error"]["code"] == -32602
    assert "Invalid parameters for resources/read: `uri` is required" in read["error"]["message"]
    assert "`taskId` was 7; it must be text" in task["error"]["message"]


async def test_a_body_over_the_limit_is_told_its_size_the_limit_and_what_to_send_instead(tmp_path, sock):
    # The SDK's default (4 MiB) refused a 3 MB photo as a data: URL with a bare "Request body too large".
    container = http_container(tmp_path, sock, http_max_body_mb=8)
    photo = base64.b64encode(os.urandom(5 * 1024 * 1024)).decode()  # 6.7 MiB as text: over 4, under 8
    async with serve_http(container, sock) as served:
        session = await anyio.to_thread.run_sync(RawMcpSession(served.mcp_url).open)
        fits = await session.call("tools/call", {"name": "edit_image", "arguments": {
            "prompt": "x", "images": [f"data:image/png;base64,{photo}"]}})
        too_big = await http(served.mcp_url, "POST", {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
            "name": "edit_image", "arguments": {"prompt": "x", "images": [f"data:image/png;base64,{photo * 2}"]}}},
            {"Accept": "application/json, text/event-stream"})
    # Through to the server (the random bytes are no image): refused for what they are, not for their size.
    assert "not a PNG, JPEG or WEBP image" in json.dumps(fits), fits
    assert too_big.status == 413
    message = too_big.json()["error"]["message"]
    assert "13.3 MiB" in message and "at most 8 MiB" in message and "data: URL" in message


async def test_a_task_running_when_the_replica_stops_reads_as_failed_by_the_stop_not_cancelled(tmp_path, sock):
    # A rolling restart: the caller cancelled nothing, and another replica reads the task from the shared store.
    state = f"sqlite://{tmp_path / 'state.sqlite3'}"
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url=state, transport="http",
                               http_port=sock.getsockname()[1], fake_latency_ms=60_000)
    async with serve_http(container, sock) as served:
        session = await anyio.to_thread.run_sync(RawMcpSession(served.mcp_url).open)
        created = await session.call("tools/call", {"name": "generate_image", "task": {"ttl": 600_000},
                                                    "arguments": {"prompt": "never finished", "inline": "none"}})
    task_id = created["result"]["task"]["taskId"]
    database = SqliteDatabase(str(tmp_path / "state.sqlite3"))  # another replica's view of the shared store
    try:
        stopped = await SqliteJobStore(database).get(LOCAL_OWNER, task_id)
    finally:
        database.close()
    assert stopped.status is JobStatus.FAILED and "was stopped (a restart or a deploy)" in stopped.error


@pytest.mark.parametrize("body", [{"id": 1}, {"id": 2, "method": "ping"}, []])
async def test_a_body_that_is_json_but_not_json_rpc_is_told_so_in_one_line(tmp_path, sock, body):
    # The SDK answered with pydantic's whole report (model names, links to its site) under -32602.
    async with serve_http(http_container(tmp_path, sock), sock) as served:
        answer = await http(served.mcp_url, "POST", body, {"Accept": "application/json, text/event-stream"})
    error = answer.json()["error"]
    assert answer.status == 400 and error["code"] == -32600
    assert error["message"].startswith("Invalid request: not a JSON-RPC 2.0 message")
    assert "pydantic" not in error["message"]
