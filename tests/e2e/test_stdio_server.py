"""The installed `gpt-image-2-mcp`, spawned over stdio and driven by the MCP SDK's own client."""

import base64
import io
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import write_png
from tests.e2e.conftest import server_env, stdio_client
from tests.fakes.fake_openai_server import FakeOpenAIServer

TOOLS = {"generate_image", "edit_image", "start_edit_session", "continue_edit_session", "end_edit_session",
         "list_edit_sessions", "get_image_job"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_all_seven_tools_are_listed_with_flat_described_schemas(tmp_path, mode):
    async with stdio_client(tmp_path, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        instructions = client.instructions
        resources_capability = client.server_capabilities.resources
    if mode == "legacy":  # the handshake era is told up front that new images are announced
        assert resources_capability is not None and resources_capability.list_changed is True
    assert set(tools) == TOOLS
    assert str(tmp_path / "out") in instructions and "multiples of 16" in instructions
    for tool in tools.values():
        assert tool.title and tool.description and tool.annotations is not None
        assert "\n " not in tool.description  # dedented
        schema = tool.input_schema
        assert schema["type"] == "object" and not {"anyOf", "oneOf", "allOf"} & set(schema)
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    for name in TOOLS - {"end_edit_session", "list_edit_sessions"}:  # get_image_job returns what they return
        assert "images" in tools[name].output_schema["properties"]
    assert tools["list_edit_sessions"].annotations.read_only_hint is True


async def test_generate_saves_the_image_and_returns_text_preview_link_and_structure(tmp_path):
    async with stdio_client(tmp_path) as client:
        result = await client.call_tool("generate_image", {"prompt": "a paper crane", "size": "1536x1024",
                                                           "filename_prefix": "crane"})
    assert not result.is_error, result.content
    text, image, link = result.content
    data = result.structured_content
    saved = Path(data["images"][0]["file_path"])
    assert saved.parent == tmp_path / "out" and saved.name.startswith("crane-")
    with Image.open(saved) as full:
        assert full.size == (1536, 1024)
    assert str(saved) in text.text and "1536x1024" in text.text and "PLACEHOLDER" in text.text
    assert "OPENAI_API_KEY" in text.text and "$" in text.text
    assert image.type == "image" and Image.open(io.BytesIO(base64.b64decode(image.data))).size == (1536, 1024)
    assert link.type == "resource_link" and link.size == saved.stat().st_size
    assert str(link.uri) == f"image://{data['images'][0]['image_id']}" == data["images"][0]["uri"]
    assert data["placeholder"] is True and data["backend"] == "fake"
    assert data["requested"]["size"] == "1536x1024" and data["applied"]["size"] == "1536x1024"
    assert data["cost_usd_estimated"] > 0 and data["usage"]["output_tokens"] > 0


async def test_bad_input_is_a_tool_error_that_says_what_to_do(tmp_path):
    async with stdio_client(tmp_path) as client:
        bad_size = await client.call_tool("generate_image", {"prompt": "x", "size": "5000x5000"})
        bad_n = await client.call_tool("generate_image", {"prompt": "x", "n": 20})
        long_key = await client.call_tool("generate_image", {"prompt": "x", "idempotency_key": "k" * 129})
        unknown_session = await client.call_tool("continue_edit_session", {"session_id": "nope", "prompt": "x"})
        ok = await client.call_tool("generate_image", {"prompt": "still alive", "inline": "none"})
    assert bad_size.is_error and "nearest valid size is 2880x2880" in bad_size.content[0].text
    assert bad_n.is_error and bad_n.content[0].text == (
        "Invalid arguments for generate_image: `n` was 20; it must be at most 10. Fix them and call "
        "generate_image again.")
    assert long_key.is_error and "it must be text of at most 128 characters" in long_key.content[0].text
    assert unknown_session.is_error and "list_edit_sessions" in unknown_session.content[0].text
    assert not ok.is_error and [b.type for b in ok.content] == ["text", "resource_link"]
    assert not (tmp_path / "out").exists() or len(list((tmp_path / "out").iterdir())) == 1


async def test_a_session_of_three_turns_with_a_branch_then_list_and_end(tmp_path):
    source = write_png(tmp_path / "photo.png", (320, 240))
    async with stdio_client(tmp_path) as client:
        started = await client.call_tool("start_edit_session", {"prompt": "make it warmer", "images": [str(source)],
                                                                "quality": "low"})
        sid = started.structured_content["session_id"]
        second = await client.call_tool("continue_edit_session", {"session_id": sid, "prompt": "add snow"})
        third = await client.call_tool("continue_edit_session", {"session_id": sid, "prompt": "add a fox"})
        branch = await client.call_tool("continue_edit_session",
                                        {"session_id": sid, "prompt": "add a dog instead", "from_turn": 2})
        listed = await client.call_tool("list_edit_sessions", {})
        ended = await client.call_tool("end_edit_session", {"session_id": sid})
        after = await client.call_tool("continue_edit_session", {"session_id": sid, "prompt": "more"})
        listed_after = await client.call_tool("list_edit_sessions", {})
    turns = [r.structured_content["turn"] for r in (started, second, third, branch)]
    assert turns == [1, 2, 3, 4] and branch.structured_content["parent_turn"] == 2
    assert second.structured_content["applied"]["quality"] == "low"  # session defaults carry over
    session = listed.structured_content["sessions"][0]
    assert session["session_id"] == sid and session["turns"] == 4
    assert session["last_prompt"] == "add a dog instead"
    assert session["last_image_path"] == branch.structured_content["images"][0]["file_path"]
    assert [t["parent_turn"] for t in session["history"]] == [None, 1, 2, 2]
    assert ended.structured_content["ended"] is True and len(ended.structured_content["file_paths"]) == 4
    assert all(Path(p).exists() for p in ended.structured_content["file_paths"])
    assert after.is_error and "start_edit_session" in after.content[0].text
    assert listed_after.structured_content["sessions"] == []


async def test_images_are_readable_as_resources(tmp_path):
    async with stdio_client(tmp_path) as client:
        result = await client.call_tool("generate_image", {"prompt": "a key", "inline": "none"})
        uri = result.structured_content["images"][0]["uri"]
        listed = await client.list_resources()
        read = await client.read_resource(uri)
    assert uri in [str(r.uri) for r in listed.resources]
    blob = base64.b64decode(read.contents[0].blob)
    assert blob == Path(result.structured_content["images"][0]["file_path"]).read_bytes()
    assert read.contents[0].mime_type == "image/png"


async def test_the_real_openai_route_over_http(tmp_path):
    with FakeOpenAIServer() as fake:
        async with stdio_client(tmp_path, OPENAI_API_KEY="sk-e2e-0123456789", OPENAI_BASE_URL=fake.base_url,
                                OPENAI_ORG_ID="org-e2e", OPENAI_PROJECT_ID="proj-e2e") as client:
            result = await client.call_tool("generate_image", {"prompt": "a real one", "size": "1024x1536",
                                                               "quality": "medium"})
        sent = fake.requests_to("/v1/images/generations")
    assert not result.is_error, result.content
    assert result.structured_content["backend"] == "openai" and result.structured_content["placeholder"] is False
    assert "PLACEHOLDER" not in result.content[0].text
    assert sent[0].json["size"] == "1024x1536" and sent[0].headers["openai-organization"] == "org-e2e"


NOISY_DEPENDENCY = """
import os
import PIL.ImageDraw

_draw = PIL.ImageDraw.Draw


def noisy(*args, **kwargs):
    print("NOISE FROM A DEPENDENCY")
    os.write(1, b"RAW FD NOISE\\n")
    return _draw(*args, **kwargs)


PIL.ImageDraw.Draw = noisy
"""


def stdout_buffering(env: dict[str, str], unbuffered: str | None) -> dict[str, str]:
    env = {k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"}
    return env if unbuffered is None else {**env, "PYTHONUNBUFFERED": unbuffered}


@pytest.mark.parametrize("unbuffered", ["1", None])
def test_stdout_carries_nothing_but_json_rpc(tmp_path, script, unbuffered):
    """Even when a dependency prints (to sys.stdout and straight to fd 1) in the middle of a tool call, and
    sys.stdout still buffers some of it at exit (Python's default: PYTHONUNBUFFERED unset)."""
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "sitecustomize.py").write_text(NOISY_DEPENDENCY)
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "generate_image", "arguments": {"prompt": "stdout check", "inline": "none"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "generate_image", "arguments": {"prompt": "x", "size": "nonsense"}}},
    ]
    proc = subprocess.Popen([script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path,
                            env=stdout_buffering(server_env(tmp_path, GPT_IMAGE_2_MCP_DEBUG="1",
                                                            PYTHONPATH=str(tmp_path / "noise")), unbuffered))
    for message in messages:
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    lines = []
    answered: set = set()
    while not {1, 2, 3, 4} <= answered:
        line = proc.stdout.readline()
        assert line, "the server closed stdout early"
        lines.append(line)
        answered.add(json.loads(line).get("id"))
    proc.stdin.close()
    proc.wait(timeout=30)
    with proc.stdout, proc.stderr:
        rest, stderr = proc.stdout.read(), proc.stderr.read()
    lines += rest.splitlines()
    parsed = [json.loads(line) for line in lines if line.strip()]  # every line is JSON ...
    assert all(m.get("jsonrpc") == "2.0" for m in parsed)  # ... and JSON-RPC
    results = {m.get("id"): m for m in parsed}
    assert results[3]["result"]["isError"] is False and results[4]["result"]["isError"] is True
    assert "FAKE backend" in stderr  # logs went to stderr
    assert "NOISE FROM A DEPENDENCY" in stderr and "RAW FD NOISE" in stderr  # and so did the noise


def test_the_cli_generates_and_prints_the_path(tmp_path, script):
    done = subprocess.run([script, "generate", "a small test", "--size", "1024x1024", "--backend", "fake"],
                          capture_output=True, text=True, timeout=60, env=server_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.exists() and path.parent == tmp_path / "out"
    assert "PLACEHOLDER" in done.stderr


def piped(script: str, tmp_path: Path, messages: list[dict], **env: str) -> list[dict]:
    """The server fed from a pipe that closes right after the last message, as `printf ... | server` does;
    every line it wrote back, parsed."""
    done = subprocess.run([script], input="".join(json.dumps(m) + "\n" for m in messages), capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env=server_env(tmp_path, **env))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


OPENING = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pipe", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def test_stdin_closing_after_the_last_request_still_gets_every_answer(tmp_path, script):
    # The SDK ended the connection at EOF and cancelled what was still running: the slow call's answer, and
    # most of the time even a quick one's, never came.
    answers = piped(script, tmp_path, [
        *OPENING,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "generate_image", "arguments": {"prompt": "a slow kite", "inline": "none"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "list_edit_sessions",
                                                                       "arguments": {}}},
    ], GPT_IMAGE_2_FAKE_LATENCY_MS="1500")
    by_id = {m["id"]: m for m in answers if "id" in m}
    assert set(by_id) == {1, 2, 3, 4}
    made = by_id[3]["result"]
    assert made["isError"] is False and Path(made["structuredContent"]["images"][0]["file_path"]).is_file()


def test_a_request_the_client_cancelled_does_not_hold_the_exit(tmp_path, script):
    answers = piped(script, tmp_path, [
        *OPENING,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "generate_image", "arguments": {"prompt": "never mind", "inline": "none"}}},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}},
    ], GPT_IMAGE_2_FAKE_LATENCY_MS="600000")  # ten minutes: the run's 60 s timeout fails the test if it waits
    assert [m.get("id") for m in answers if "id" in m] == [1]


def test_a_call_that_asks_the_client_something_after_stdin_closed_does_not_hold_the_exit(tmp_path, script):
    # A client with roots is asked for them during the call; over a closed stdin no answer can come.
    opening = [{**OPENING[0], "params": {**OPENING[0]["params"], "capabilities": {"roots": {}}}}, OPENING[1]]
    answers = piped(script, tmp_path, [*opening, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "generate_image", "arguments": {"prompt": "where to?", "inline": "none"}}}])
    assert [m["method"] for m in answers if "method" in m and "id" in m] == ["roots/list"]


def test_lines_that_are_not_json_rpc_messages_are_answered_as_json_rpc_asks(tmp_path, script):
    # The SDK noted such lines at debug level only: the client waited for an answer that never came.
    done = subprocess.run([script], input="".join(line + "\n" for line in [
        json.dumps(OPENING[0]), "this is not json", '{"jsonrpc": "2.0", "id": 7}', '{"id": 8, "method": "ping"}',
        '{"jsonrpc": "2.0", "id": null, "method": "ping"}', '{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}',
        json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping"}),
    ]), capture_output=True, text=True, timeout=60, cwd=tmp_path, env=server_env(tmp_path))
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    errors = [(a["id"], a["error"]["code"]) for a in answers if "error" in a]
    # (an id of null or 1.5 is no id: the parser reads the line as a notification, which nothing answers)
    assert errors == [(None, -32700), (7, -32600), (8, -32600), (None, -32600), (None, -32600)]
    assert {"id": 9, "jsonrpc": "2.0", "result": {}} in answers  # and it goes on serving
    assert done.stderr.count("refused a line on stdin") == 5
