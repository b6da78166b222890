"""One user can never list, read, continue, end or cancel another's work: the isolation table, each row through
the real HTTP protocol (two users of the tokens file, one server, one state store)."""

from __future__ import annotations

import json
import re

import pytest

from gpt_image_2_mcp.adapters.tokens_file_verifier import new_token
from tests.conftest import make_container
from tests.http_harness import RawMcpSession, bound_socket, serve_http


@pytest.fixture
def sock():
    listening = bound_socket()
    yield listening
    listening.close()


def tool(session: RawMcpSession, name: str, arguments: dict, **extra) -> dict:
    return session.post("tools/call", {"name": name, "arguments": arguments, **extra})["result"]


def refused(answer: dict) -> str:
    """The text of a refusal, whether a JSON-RPC error or a tool error; fails if it was not refused."""
    if "error" in answer:
        return answer["error"]["message"]
    result = answer.get("result", answer)
    assert result.get("isError"), f"expected a refusal, got {answer}"
    return result["content"][0]["text"]


@pytest.fixture(params=[False, True], ids=["sessions", "stateless"])
def two_users(tmp_path, sock, request):
    alice, alice_line = new_token("alice")
    bob, bob_line = new_token("bob")
    (tmp_path / "tokens").write_text(f"{alice_line}\n{bob_line}\n")
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                               transport="http", http_port=sock.getsockname()[1],
                               auth_tokens_file=str(tmp_path / "tokens"), http_stateless=request.param)
    return container, alice, bob


def alice_makes_things(alice: RawMcpSession) -> dict:
    image = tool(alice, "generate_image", {"prompt": "alice's fox", "inline": "none", "idempotency_key": "k1"})
    picture = image["structuredContent"]["images"][0]
    session = tool(alice, "start_edit_session", {"prompt": "warmer", "images": [picture["file_path"]],
                                                 "inline": "none"})
    task = alice.post("tools/call", {"name": "generate_image", "arguments": {"prompt": "a task", "inline": "none"},
                                     "task": {"ttl": 60_000}})["result"]["task"]
    return {"uri": picture["uri"], "path": picture["file_path"], "session": session["structuredContent"]["session_id"],
            "task": task["taskId"]}


async def test_bob_can_neither_see_nor_touch_anything_of_alices(two_users, sock, tmp_path):
    container, alice_token, bob_token = two_users
    async with serve_http(container, sock) as served:
        alice = await _opened(served.mcp_url, alice_token)
        bob = await _opened(served.mcp_url, bob_token)
        made = await _in_thread(alice_makes_things, alice)
        tried = await _in_thread(bob_tries_everything, bob, made, str(tmp_path / "out"))
        still = await _in_thread(alice_still_has_everything, alice, made)
    listed, refusals, idempotent = tried
    assert listed == {"sessions": [], "resources": [], "tasks": []}
    for row, text in refusals.items():
        assert text, row
        assert "alice" not in text.lower(), (row, text)
    assert "outside your folder on this server" in refusals["edit alice's file by path"]
    assert "outside the folder this server keeps your images in" in refusals["write into alice's folder"]
    assert idempotent != made["uri"]  # the same idempotency key is bob's own: no replay of alice's result
    assert still == {"session_turns": 2, "read": "image/png", "task": "completed", "sessions": 1, "resources": 4}


def bob_tries_everything(bob: RawMcpSession, made: dict, output_root: str) -> tuple[dict, dict, str]:
    listed = {
        "sessions": tool(bob, "list_edit_sessions", {})["structuredContent"]["sessions"],
        "resources": bob.post("resources/list")["result"]["resources"],
        "tasks": bob.post("tasks/list")["result"]["tasks"],
    }
    refusals = {
        "resources/read": refused(bob.post("resources/read", {"uri": made["uri"]})),
        "continue_edit_session": refused(bob.post("tools/call", {"name": "continue_edit_session", "arguments": {
            "session_id": made["session"], "prompt": "mine now"}})),
        "end_edit_session": refused(bob.post("tools/call", {"name": "end_edit_session", "arguments": {
            "session_id": made["session"]}})),
        "get_image_job": refused(bob.post("tools/call", {"name": "get_image_job", "arguments": {
            "job_id": made["task"], "wait_s": 0}})),
        "tasks/get": refused(bob.post("tasks/get", {"taskId": made["task"]})),
        "tasks/result": refused(bob.post("tasks/result", {"taskId": made["task"]})),
        "tasks/cancel": refused(bob.post("tasks/cancel", {"taskId": made["task"]})),
        "edit alice's file by path": refused(bob.post("tools/call", {"name": "edit_image", "arguments": {
            "prompt": "x", "images": [made["path"]]}})),
        "write into alice's folder": refused(bob.post("tools/call", {"name": "generate_image", "arguments": {
            "prompt": "x", "output_dir": made["path"].rsplit("/", 1)[0]}})),
    }
    twin = tool(bob, "generate_image", {"prompt": "alice's fox", "inline": "none", "idempotency_key": "k1"})
    return listed, refusals, twin["structuredContent"]["images"][0]["uri"]


def alice_still_has_everything(alice: RawMcpSession, made: dict) -> dict:
    turn = tool(alice, "continue_edit_session", {"session_id": made["session"], "prompt": "cooler", "inline": "none"})
    read = alice.post("resources/read", {"uri": made["uri"]})["result"]["contents"][0]
    result = alice.post("tasks/result", {"taskId": made["task"]})["result"]
    task = alice.post("tasks/get", {"taskId": made["task"]})["result"]
    assert not result.get("isError"), result
    return {"session_turns": turn["structuredContent"]["turn"], "read": read["mimeType"], "task": task["status"],
            "sessions": len(tool(alice, "list_edit_sessions", {})["structuredContent"]["sessions"]),
            "resources": len(alice.post("resources/list")["result"]["resources"])}


async def test_a_remote_callers_refusals_name_their_own_folder_and_no_server_setting(tmp_path, sock):
    bob_token, bob_line = new_token("bob")
    (tmp_path / "tokens").write_text(f"{bob_line}\n")
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                               transport="http", http_port=sock.getsockname()[1],
                               auth_tokens_file=str(tmp_path / "tokens"))
    async with serve_http(container, sock) as served:
        bob = await _opened(served.mcp_url, bob_token)
        made = await _in_thread(tool, bob, "generate_image", {"prompt": "x", "inline": "none"})
        mine = made["structuredContent"]["images"][0]
        folder = mine["file_path"].rsplit("/", 1)[0]
        system = await _in_thread(lambda: refused(bob.post("tools/call", {"name": "generate_image", "arguments": {
            "prompt": "x", "output_dir": "/etc"}})))
        missing = await _in_thread(lambda: refused(bob.post("tools/call", {"name": "edit_image", "arguments": {
            "prompt": "x", "images": ["sketch.png"]}})))
        intranet = await _in_thread(lambda: refused(bob.post("tools/call", {"name": "edit_image", "arguments": {
            "prompt": "x", "images": ["http://10.1.2.3/a.png"]}})))  # refused before any connection
    # /etc is first of all not his folder; a server setting is nothing a remote caller can change
    assert f"outside the folder this server keeps your images in ({folder})" in system
    assert "GPT_IMAGE_2_" not in system
    # nor can he pass a path from his own machine: what is left to him is a data: URL or a public one
    assert "10.1.2.3" in intranet and "data: URL" in intranet and "public https URL" in intranet
    assert "GPT_IMAGE_2_" not in intranet and "pass its path" not in intranet
    assert f"no such image file at {folder}/sketch.png" in missing
    assert f"relative paths are taken from {folder})" in missing


async def _opened(url: str, token: str) -> RawMcpSession:
    return await _in_thread(lambda: RawMcpSession(url, token).open())


async def _in_thread(fn, *args):
    import anyio

    return await anyio.to_thread.run_sync(lambda: fn(*args))


async def test_budgets_are_per_user(tmp_path, sock):
    """The fake backend spends nothing, so this one runs the OpenAI adapter against the fake OpenAI server."""
    from tests.fakes.fake_openai_server import FakeOpenAIServer

    alice_token, alice_line = new_token("alice")
    bob_token, bob_line = new_token("bob")
    (tmp_path / "tokens").write_text(f"{alice_line}\n{bob_line}\n")
    with FakeOpenAIServer() as fake:
        first, second, bobs = await _spend_as_two_users(fake, tmp_path, sock, alice_token, bob_token)
    assert not first["result"].get("isError")
    assert "budget" in refused(second)
    assert not bobs["result"].get("isError"), bobs  # alice's spending is not bob's


async def _spend_as_two_users(fake, tmp_path, sock, alice_token, bob_token):
    container = make_container(backend="openai", api_key="sk-test-budget-0123456789", base_url=fake.base_url,
                               output_dir=str(tmp_path / "out"), state_url="memory://", transport="http",
                               http_port=sock.getsockname()[1], auth_tokens_file=str(tmp_path / "tokens"),
                               budget_usd_per_day=0.01)
    cheap = {"prompt": "x", "quality": "low", "size": "1024x1024", "inline": "none"}  # ~$0.006 each

    def spend(session: RawMcpSession, prompt: str) -> dict:
        return session.post("tools/call", {"name": "generate_image", "arguments": {**cheap, "prompt": prompt}})

    async with serve_http(container, sock) as served:
        alice = await _opened(served.mcp_url, alice_token)
        bob = await _opened(served.mcp_url, bob_token)
        first = await _in_thread(spend, alice, "one")
        second = await _in_thread(spend, alice, "two")
        bobs = await _in_thread(spend, bob, "three")
    return first, second, bobs


async def test_openai_is_told_the_signed_in_user_not_whoever_the_caller_claims_to_be(tmp_path, sock):
    # The safety identifier is what OpenAI holds responsible for abuse: bob may not pin his calls on alice.
    from tests.fakes.fake_openai_server import FakeOpenAIServer

    alice_token, alice_line = new_token("alice")
    bob_token, bob_line = new_token("bob")
    (tmp_path / "tokens").write_text(f"{alice_line}\n{bob_line}\n")
    with FakeOpenAIServer() as fake:
        container = make_container(backend="openai", api_key="sk-test-safety-0123456789", base_url=fake.base_url,
                                   output_dir=str(tmp_path / "out"), state_url="memory://", transport="http",
                                   http_port=sock.getsockname()[1], auth_tokens_file=str(tmp_path / "tokens"))
        async with serve_http(container, sock) as served:
            alice, bob = await _opened(served.mcp_url, alice_token), await _opened(served.mcp_url, bob_token)
            for session, claimed in ((bob, "alice@example.com"), (bob, None), (alice, None)):
                arguments = {"prompt": f"x {claimed}", "quality": "low", "inline": "none", "user": claimed}
                answer = await _in_thread(tool, session, "generate_image", arguments)
                assert not answer.get("isError"), answer
            long = await _in_thread(lambda: refused(bob.post("tools/call", {"name": "generate_image", "arguments": {
                "prompt": "x", "user": "u" * 65}})))
        sent = [r.json.get("safety_identifier") for r in fake.requests_to("/v1/images/generations")]
    bobs_claim, bobs_own, alices = sent
    assert bobs_claim == bobs_own and re.fullmatch(r"[0-9a-f]{32}", bobs_own) and alices != bobs_own
    assert "alice@example.com" not in json.dumps(sent)
    assert "`user`" in long and "64" in long
