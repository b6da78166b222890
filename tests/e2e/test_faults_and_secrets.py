"""Faults from the API and the disk, through the installed server over stdio; and the key never leaks."""

import json
import subprocess
from pathlib import Path

import pytest
from mcp.client import Client

from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container, write_png
from tests.e2e.conftest import server_env
from tests.fakes.fake_openai_server import FakeOpenAIServer, Scripted

KEY = "sk-proj-LEAKCANARY-7f3a9c2e5b1d4f8a"
E = FakeOpenAIServer.error


def drive(script: str, env: dict, calls: list[tuple[str, dict]], cwd: Path) -> tuple[list[dict], str, str]:
    """Raw JSON-RPC over the server's stdin/stdout; returns (messages, raw stdout, stderr)."""
    proc = subprocess.Popen([script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd)
    send = [{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    send += [{"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": {"name": n, "arguments": a}}
             for i, (n, a) in enumerate(calls)]
    raw = []
    for message in send:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        if "id" in message:  # one call at a time: scripted faults are consumed in order
            while True:  # notifications (e.g. resources/list_changed) may come first
                line = proc.stdout.readline()
                assert line, "server died"
                raw.append(line)
                if json.loads(line).get("id") == message["id"]:
                    break
    proc.stdin.close()
    proc.wait(timeout=60)
    with proc.stdout, proc.stderr:
        rest, stderr = proc.stdout.read(), proc.stderr.read()
    stdout = "".join(raw) + rest
    return [json.loads(line) for line in stdout.splitlines() if line.strip()], stdout, stderr


def test_every_fault_ends_as_a_clear_error_or_a_retry_and_the_key_never_leaks(tmp_path, script):
    echo = f"Incorrect API key provided: {KEY}."
    fake = FakeOpenAIServer().start()
    try:
        fake.script("generations",
                    E(401, echo, code="invalid_api_key"),                               # 1: auth, echoing the key
                    E(429, f"Rate limit for {KEY}", type="rate_limit_error"),           # 2: 429 without Retry-After
                    E(429, "slow", type="rate_limit_error", headers={"retry-after": "0"}),  # ... with one
                    Scripted(),                                                          # ... then success
                    E(502, f"bad gateway {KEY}", type="server_error"),                  # 3: 502, 503, 500
                    E(503, "unavailable", type="server_error"),
                    E(500, f"boom {KEY}", type="server_error"),
                    *[Scripted(drop=True)] * 3,                                          # 4: connection reset
                    *[Scripted(delay=2)] * 3,                                            # 5: hung connection
                    Scripted(body=b'{"data": [ {"b64_json": '),                          # 6: malformed JSON
                    Scripted(json={"created": 1, "data": []}),                           # 7: no images
                    Scripted(cut_stream_after=1),                                        # 8: stream cut
                    E(400, f"Your request was rejected by the safety system. {KEY}",     # 9: moderation
                      code="moderation_blocked"))
        env = server_env(tmp_path, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake.base_url, GPT_IMAGE_2_MCP_DEBUG="1",
                         GPT_IMAGE_2_MAX_ATTEMPTS="3", GPT_IMAGE_2_RETRY_MAX_SECONDS="30",
                         GPT_IMAGE_2_REQUEST_TIMEOUT_S="0.5")
        gen = ("generate_image", {"prompt": "x", "inline": "none"})
        calls = [gen, gen, gen, gen, gen, gen, gen,
                 ("generate_image", {"prompt": "x", "partial_images": 1, "inline": "none"}), gen, gen]
        messages, stdout, stderr = drive(script, env, calls, tmp_path)
    finally:
        fake.stop()
    results = {m["id"]: m["result"] for m in messages if "result" in m and m["id"]}
    texts = {i: r["content"][0]["text"] for i, r in results.items()}
    assert [results[i]["isError"] for i in range(1, 11)] == [True, False, True, True, True, True, True, True, True,
                                                             False]
    assert "OPENAI_API_KEY" in texts[1]
    assert "try again" in texts[3].lower() and "after 3 attempts" in texts[3]
    assert "reach the image API" in texts[4]
    assert "GPT_IMAGE_2_REQUEST_TIMEOUT_S" in texts[5]
    assert "not valid JSON" in texts[6] and "without any image" in texts[7]
    assert "before the final image" in texts[8]
    assert "safety system" in texts[9] and "request id" in texts[9]
    assert KEY not in stdout and KEY not in stderr
    assert "[redacted]" in stdout  # the key was in the API's words, and it was scrubbed
    assert "DEBUG" in stderr  # debug logging was on
    out = tmp_path / "out"
    assert sorted(p.suffix for p in out.iterdir()) == [".png", ".png"]  # calls 2 and 10 only; nothing partial


async def test_an_unwritable_folder_after_the_api_answered_rescues_the_image(tmp_path, monkeypatch):
    import tempfile

    from gpt_image_2_mcp.adapters.filesystem_image_sink import FilesystemImageSink

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    real_write = FilesystemImageSink._write

    def disk_full(folder, name, data, rescued):
        if Path(folder) == out:
            raise OSError(28, "No space left on device")
        return real_write(folder, name, data, rescued)

    monkeypatch.setattr(FilesystemImageSink, "_write", staticmethod(disk_full))
    container = make_container(backend="fake", output_dir=str(out))
    async with Client(build_server(container), mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "precious", "inline": "none"})
    assert not result.is_error
    info = result.structured_content["images"][0]
    assert info["rescued"] is True and Path(info["file_path"]).parent == tmp_path / "tmp" / "gpt-image-2-mcp-rescued"
    assert "RESCUED" in result.content[0].text and info["file_path"] in result.content[0].text


@pytest.mark.parametrize("mode", ["legacy"])
async def test_a_missing_key_with_the_openai_backend_is_a_clear_error(tmp_path, mode):
    container = make_container(backend="openai", output_dir=str(tmp_path / "out"))
    source = write_png(tmp_path / "a.png", (64, 64))
    async with Client(build_server(container), mode=mode) as client:
        tools = await client.list_tools()
        generated = await client.call_tool("generate_image", {"prompt": "x"})
        edited = await client.call_tool("edit_image", {"prompt": "x", "images": [str(source)]})
    assert len(tools.tools) == 7
    for result in (generated, edited):
        assert result.is_error and "OPENAI_API_KEY" in result.content[0].text
