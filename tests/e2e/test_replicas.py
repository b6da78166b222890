"""Three replicas on one Redis and one output folder behind a real HAProxy are one service (`tests/cluster.py`).

The replicas run in stateless mode (`GPT_IMAGE_2_HTTP_STATELESS=1`), the mode a team deploys behind a load
balancer without sticky sessions: a handshake-era `Mcp-Session-Id` lives in the memory of the replica that
issued it, so the next request, sent to another replica, would be refused (the last test shows it). Stateless,
every request stands alone; sessions, images, jobs and tasks live in Redis and the images in the shared folder,
so any replica serves any request. Progress still reaches the caller: it travels on the request's own SSE answer.

Flows go through HAProxy, or straight to one replica where a flow needs a particular one. Under CI a missing
haproxy or redis-server fails these tests (they must run there); elsewhere they skip.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tests.cluster import SERVED_BY, Cluster, Replica, missing_tools
from tests.conftest import write_png
from tests.e2e.conftest import SCRIPT
from tests.raw_mcp_http import RawMcpSession, RpcError

LATENCY_MS = 2000
"""The fake backend's time per image: long enough that a replica is reliably killed while its job runs."""
POLL_DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    if missing := missing_tools():
        if os.environ.get("CI"):
            pytest.fail(f"the replica test cannot run and CI is set: {'; '.join(missing)}")
        pytest.skip("; ".join(missing))
    assert SCRIPT, "the gpt-image-2-mcp console script is not installed (pip install -e .)"
    with Cluster(SCRIPT, tmp_path_factory.mktemp("cluster"), replicas=3, latency_ms=LATENCY_MS).start() as running:
        yield running


@pytest.fixture(autouse=True)
def whole_cluster(cluster: Cluster):
    """Every test starts with three live replicas, whatever the one before it killed."""
    cluster.revive()
    yield
    cluster.revive()


@pytest.fixture
def photo(cluster: Cluster) -> str:
    """A picture in the shared folder: stateless replicas cannot ask a client for its roots, so they read local
    files only from their own output folder (fail closed)."""
    (cluster.output_dir / "uploads").mkdir(exist_ok=True)
    return str(write_png(cluster.output_dir / "uploads" / f"photo-{time.monotonic_ns()}.png", size=(256, 256)))


@contextlib.asynccontextmanager
async def sdk_client(url: str, served_by: list[str] | None = None, mode: str = "legacy") -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client; with `served_by`, it records HAProxy's X-Served-By of every answer."""

    async def record(response) -> None:
        if served_by is not None and (name := response.headers.get(SERVED_BY)):
            served_by.append(name)

    async with create_mcp_http_client() as http:
        http.event_hooks = {"response": [record]}
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def turn_of(result) -> tuple[str, int, Path]:
    assert not result.is_error, result.content
    content = result.structured_content
    return content["session_id"], content["turn"], Path(content["images"][0]["file_path"])


async def test_an_edit_session_started_on_one_replica_continues_on_the_others(cluster, photo):
    a, b, _ = cluster.replicas
    served_by: list[str] = []
    async with sdk_client(a.mcp_url) as on_a:
        started = turn_of(await on_a.call_tool("start_edit_session", {"prompt": "a red bicycle", "images": [photo],
                                                                      "inline": "none"}))
    async with sdk_client(b.mcp_url) as on_b:
        continued = turn_of(await on_b.call_tool("continue_edit_session", {
            "session_id": started[0], "prompt": "make it blue", "inline": "none"}))
    async with sdk_client(cluster.url, served_by) as through_proxy:
        third = turn_of(await through_proxy.call_tool("continue_edit_session", {
            "session_id": started[0], "prompt": "add a basket", "inline": "none"}))
        listed = await through_proxy.call_tool("list_edit_sessions", {})

    assert [started[:2], continued[:2], third[:2]] == [(started[0], 1), (started[0], 2), (started[0], 3)]
    for _, _, image in (started, continued, third):
        assert image.parent == cluster.output_dir and image.is_file()
    (session,) = [s for s in listed.structured_content["sessions"] if s["session_id"] == started[0]]
    assert session["turns"] == 3 and session["last_image_path"] == str(third[2])
    assert len(set(served_by)) >= 2, served_by  # round robin: the proxied requests were spread over replicas


def test_a_task_created_on_one_replica_is_polled_and_fetched_on_another(cluster):
    a, b, c = cluster.replicas
    on_a, on_b, on_c = RawMcpSession(a.mcp_url), RawMcpSession(b.mcp_url), RawMcpSession(c.mcp_url)
    capabilities = on_a.initialize()["capabilities"]
    on_b.initialize()
    on_c.initialize()

    created = on_a.call_tool("generate_image", {"prompt": "a paper lantern", "inline": "none"},
                             task={"ttl": 60_000}).result["task"]
    polled = on_b.request("tasks/get", {"taskId": created["taskId"]}).result
    fetched = on_b.request("tasks/result", {"taskId": created["taskId"]}).result
    afterwards = on_c.request("tasks/get", {"taskId": created["taskId"]}).result
    through_proxy = RawMcpSession(cluster.url)
    through_proxy.initialize()
    listed = through_proxy.request("tasks/list", {}).result

    assert "tasks" in capabilities and on_a.session_id is None  # stateless: no session id to carry around
    assert created["status"] == "working"
    assert polled["taskId"] == created["taskId"] and polled["status"] in ("working", "completed")
    assert fetched.get("isError") is not True, fetched
    (image,) = fetched["structuredContent"]["images"]
    assert Path(image["file_path"]).is_file() and Path(image["file_path"]).parent == cluster.output_dir
    assert fetched["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": created["taskId"]}
    assert afterwards["status"] == "completed"
    assert created["taskId"] in [task["taskId"] for task in listed["tasks"]]


async def test_progress_reaches_a_client_through_the_load_balancer(cluster):
    events: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        events.append((progress, total, message))

    async with sdk_client(cluster.url) as client:
        result = await client.call_tool("generate_image", {"prompt": "a slow sunrise", "inline": "none"},
                                        progress_callback=on_progress)
    assert not result.is_error, result.content
    assert events and events[0][2].startswith("request accepted")
    assert any("elapsed" in (message or "") for _, _, message in events)  # heartbeats while the image is made
    assert events[-1][0] == events[-1][1]


async def test_a_client_on_the_2026_era_generates_and_reads_back_through_the_load_balancer(cluster):
    served_by: list[str] = []
    async with sdk_client(cluster.url, served_by, mode="auto") as client:
        result = await client.call_tool("generate_image", {"prompt": "a glass marble", "inline": "none"})
        assert not result.is_error, result.content
        (image,) = result.structured_content["images"]
        read = await client.read_resource(image["uri"])
        version = client.protocol_version
    assert version in MODERN_PROTOCOL_VERSIONS, version
    (content,) = read.contents
    assert base64.b64decode(content.blob) == Path(image["file_path"]).read_bytes()
    assert len(set(served_by)) >= 2, served_by


def test_a_killed_replica_loses_no_session_or_image_and_its_task_reads_as_failed(cluster, photo):
    a, b, _ = cluster.replicas
    on_a, on_b = RawMcpSession(a.mcp_url), RawMcpSession(b.mcp_url)
    on_a.initialize()
    on_b.initialize()
    image = on_a.call_tool("generate_image", {"prompt": "a finished image", "inline": "none"}).result
    session = on_a.call_tool("start_edit_session", {"prompt": "a finished turn", "images": [photo],
                                                      "inline": "none"}).result
    task = on_a.call_tool("generate_image", {"prompt": "never finished", "inline": "none"},
                          task={"ttl": 60_000}).result["task"]

    a.pause()  # frozen mid-flight: what B reads now is what A left behind
    before_the_kill = on_b.request("tasks/get", {"taskId": task["taskId"]}).result
    a.kill()

    saved = image["structuredContent"]["images"][0]
    session_id = session["structuredContent"]["session_id"]
    sessions = on_b.call_tool("list_edit_sessions", {}).result["structuredContent"]["sessions"]
    read = on_b.request("resources/read", {"uri": saved["uri"]}).result
    failed = poll_until_finished(on_b, task["taskId"])
    with pytest.raises(RpcError) as result_error:
        on_b.request("tasks/result", {"taskId": task["taskId"]})
    proxied = [RawMcpSession(cluster.url).request("tools/list") for _ in range(6)]

    assert before_the_kill["status"] != "completed", "the job finished before its replica was killed"
    assert session_id in [s["session_id"] for s in sessions]
    assert base64.b64decode(read["contents"][0]["blob"]) == Path(saved["file_path"]).read_bytes()
    assert failed["status"] == "failed", cluster.logs()
    assert "server process that ran this job stopped" in failed["statusMessage"]
    assert "failed" in str(result_error.value) and "stopped before the image was saved" in str(result_error.value)
    assert all(len(reply.result["tools"]) == 7 for reply in proxied)  # the proxy routes around the dead replica
    assert a.name not in {reply.served_by for reply in proxied}


def poll_until_finished(session: RawMcpSession, task_id: str) -> dict:
    """tasks/get until the task leaves `working` (a dead holder is judged after four silent heartbeats)."""
    deadline = time.monotonic() + POLL_DEADLINE_S
    while True:
        task = session.request("tasks/get", {"taskId": task_id}).result
        if task["status"] != "working" or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


def test_a_handshake_session_id_is_known_only_to_the_replica_that_issued_it(cluster):
    """Why the cluster is stateless: two stateful replicas on the same store do not share handshake sessions."""
    env = {**cluster.replica_env(), "GPT_IMAGE_2_HTTP_STATELESS": "0"}
    stateful = [Replica(f"stateful{i}", SCRIPT, cluster.folder, env).spawn() for i in (1, 2)]
    try:
        deadline = time.monotonic() + 30
        for replica in stateful:
            replica.wait_until_healthy(deadline)
        on_first = RawMcpSession(stateful[0].mcp_url)
        on_first.initialize()
        elsewhere = RawMcpSession(stateful[1].mcp_url, session_id=on_first.session_id)
        with pytest.raises(RpcError) as refused:
            elsewhere.request("tools/list")
        assert on_first.session_id and len(on_first.request("tools/list").result["tools"]) == 7
        assert refused.value.status == 404 and "Session not found" in str(refused.value)
    finally:
        for replica in stateful:
            replica.stop()
