"""Every failure explains itself, through the installed console script: tool errors read the same with and
without a progress token, bad configuration is one line per variable, Ctrl-C is quiet."""

import contextlib
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import write_png
from tests.e2e.conftest import RawServer, server_env, stdio_client
from tests.fakes.fake_openai_server import FakeOpenAIServer


def without_request_id(text: str) -> str:
    return re.sub(r"\(request id: [^)]*\)", "(request id)", text)


def error_table(tmp_path):
    """(tool, arguments, a fragment the error must contain) for failures from every layer."""
    image = write_png(tmp_path / "in.png", (64, 64))
    return [
        ("generate_image", {"prompt": "x", "size": "1000x1000"}, "nearest valid size is"),
        ("generate_image", {"prompt": "x", "n": 0}, "`n` was 0; it must be at least 1"),
        ("edit_image", {"prompt": "x", "images": [str(tmp_path / "missing.png")]}, "no such image file"),
        ("continue_edit_session", {"session_id": "es_nope", "prompt": "x"}, "list_edit_sessions"),
        ("generate_image", {"prompt": "x", "output_dir": "/etc/images"}, "GPT_IMAGE_2_ALLOW_UNSAFE_OUTPUT_DIR"),
        ("edit_image", {"prompt": "x", "images": [str(image)], "output_format": "png", "output_compression": 5},
         "jpeg and webp only"),
        ("generate_image", {"prompt": "refused by the API"}, "OpenAI rejected the request"),
    ]


async def test_every_error_reads_the_same_with_and_without_a_progress_token(tmp_path):
    async def ignore(*_):
        return None

    with FakeOpenAIServer() as fake:
        fake.script("generations", *[FakeOpenAIServer.error(400, "prompt refused for this test")] * 2)
        env = {"OPENAI_API_KEY": "sk-test-errors-0123456789", "OPENAI_BASE_URL": fake.base_url}
        async with stdio_client(tmp_path, **env) as client:
            for tool, arguments, fragment in error_table(tmp_path):
                plain = await client.call_tool(tool, arguments)
                tracked = await client.call_tool(tool, arguments, progress_callback=ignore)
                assert plain.is_error and tracked.is_error, (tool, arguments)
                assert fragment in plain.content[0].text, plain.content[0].text
                # The same text, but for the request id each API answer carries.
                assert without_request_id(tracked.content[0].text) == without_request_id(plain.content[0].text)


def run_script(script, tmp_path, *args, **env):
    return subprocess.run([script, *args], env=server_env(tmp_path, **env), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_bad_configuration_is_one_line_per_variable_and_exit_2(script, tmp_path):
    bad = {"GPT_IMAGE_2_BACKEND": "bogus", "GPT_IMAGE_2_HEARTBEAT_S": "10", "GPT_IMAGE_2_SESSION_TTL_MS": "-5",
           "GPT_IMAGE_2_MAX_ATTEMPTS": "0"}
    for args in ([], ["generate", "x"]):
        result = run_script(script, tmp_path, *args, **bad)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 4, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert any("GPT_IMAGE_2_BACKEND='bogus'" in line and "'auto', 'openai' or 'fake'" in line for line in lines)
        assert any(line.startswith("gpt-image-2-mcp: GPT_IMAGE_2_HEARTBEAT_S='10'") for line in lines)


def test_a_bad_key_value_is_never_echoed(script, tmp_path):
    result = run_script(script, tmp_path, GPT_IMAGE_2_MAX_ATTEMPTS="lots", OPENAI_API_KEY="sk-secret-canary-123456")
    assert result.returncode == 2 and "sk-secret-canary" not in result.stderr


SLOW_IMPORT = """
import importlib.abc, os, sys, time

class SlowCli(importlib.abc.MetaPathFinder):
    # Holds the import of the command line for a while, after saying so: the moment a Ctrl-C used to land in.
    def find_spec(self, name, path, target=None):
        if name == "gpt_image_2_mcp.entrypoints.cli":
            open(os.environ["LOADING_MARKER"], "w").close()
            time.sleep(20)
        return None

sys.meta_path.insert(0, SlowCli())
"""


@pytest.mark.parametrize(("command", "sent", "code"), [
    (["generate", "a kite"], signal.SIGINT, 130), (["generate", "a kite"], signal.SIGTERM, 143),
    (["images"], signal.SIGINT, 130), ([], signal.SIGINT, 130),
])
def test_a_signal_while_the_program_is_still_loading_ends_it_quietly(script, tmp_path, command, sent, code):
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW_IMPORT)
    marker = tmp_path / "loading"
    proc = subprocess.Popen([script, *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=server_env(tmp_path, PYTHONPATH=str(tmp_path / "slow"), LOADING_MARKER=str(marker)))
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.02)
        proc.send_signal(sent)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code and out == "" and "Traceback" not in err, err


def test_ctrl_c_while_serving_exits_quietly(script, tmp_path):
    proc = subprocess.Popen([script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=server_env(tmp_path), text=True)
    try:
        assert "Images go to" in proc.stderr.readline() + proc.stderr.readline()  # serving
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        stderr = proc.stderr.read()
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_in_the_middle_of_a_call_exits_quietly_having_recorded_the_job_as_cancelled(
        script, tmp_path, sent, code):
    """Once serving, asyncio cancels the server on Ctrl-C; the SDK's stdin reader is a worker thread blocked in
    read(), so without the lifespan ending the process the server waited for stdin for ever. SIGTERM (a client
    done waiting after closing stdin, systemd, docker stop) takes the same path: it used to end the process on
    the spot, the job left working and its estimate booked."""
    state = tmp_path / "state.sqlite3"
    proc = subprocess.Popen([script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=server_env(tmp_path, GPT_IMAGE_2_STATE_URL=f"sqlite://{state}",
                                           GPT_IMAGE_2_FAKE_LATENCY_MS="60000"), text=True)
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "generate_image", "arguments": {"prompt": "interrupted"}, "_meta": {"progressToken": 7}}},
    ]
    try:
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        seen = [proc.stdout.readline()]
        while "request accepted" not in seen[-1] and len(seen) < 5:  # until the call is under way
            seen.append(proc.stdout.readline())
        assert "request accepted" in seen[-1], seen
        proc.send_signal(sent)
        proc.wait(timeout=30)  # stdin is still open
        stderr = proc.stderr.read()
    finally:
        proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert proc.returncode == code
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    with contextlib.closing(sqlite3.connect(state)) as db:  # sqlite3's own `with` commits but does not close
        jobs = [json.loads(data) for (data,) in db.execute("SELECT data FROM jobs")]
        spend = db.execute("SELECT actual_usd FROM spend").fetchall()
    assert [job["status"] for job in jobs] == ["cancelled"]
    assert spend == [(0.0,)]  # the estimate released, not left counting against the budget
    assert not list((tmp_path / "out").glob("**/*.png"))


def test_run_by_hand_in_a_terminal_it_says_what_it_is_once(script, tmp_path):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the server on a terminal
        os.execve(script, [script], server_env(tmp_path))
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while b"waiting for an MCP client" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                seen += os.read(fd, 4096)
    finally:
        os.kill(pid, signal.SIGINT)
        os.waitpid(pid, 0)
        os.close(fd)
    assert seen.count(b"waiting for an MCP client") == 1
    assert b"gpt-image-2-mcp generate" in seen


def test_python_dash_m_works_like_the_console_script(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gpt_image_2_mcp", "generate", "a fox", "--output-dir",
                             str(tmp_path / "m")], env=server_env(tmp_path), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / "m"))


def test_the_cli_output_dir_is_the_shells_folder_and_no_default_folder_is_made(script, tmp_path):
    result = subprocess.run([script, "generate", "a fox", "--output-dir", "here"], cwd=tmp_path,
                            env=server_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / "here"))
    assert "Images go to" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("relative", ["images", "a/b"])
async def test_a_relative_output_dir_lands_in_the_default_folder_never_in_the_working_directory(tmp_path, relative):
    async with stdio_client(tmp_path, cwd=tmp_path) as client:
        result = await client.call_tool("generate_image", {"prompt": "x", "output_dir": relative, "inline": "none"})
    assert not result.is_error, result.content[0].text
    path = result.structured_content["images"][0]["file_path"]
    assert path.startswith(str(tmp_path / "out" / relative))
    assert not (tmp_path / relative).exists()


@pytest.mark.parametrize("url", ["postgres://db/x", "sqlite:///", "redis://:hunter2@host:port/0"])
def test_a_bad_state_url_is_one_line_naming_the_variable_and_never_the_password(script, tmp_path, url):
    result = run_script(script, tmp_path, GPT_IMAGE_2_STATE_URL=url)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("gpt-image-2-mcp: GPT_IMAGE_2_STATE_URL=")
    assert "hunter2" not in result.stderr


def test_request_parameters_that_do_not_fit_name_the_parameter_to_fix(tmp_path):
    # The SDK answered all of these with a bare "Invalid request parameters".
    server = RawServer(tmp_path)
    try:
        answers = {method: server.request(method, params)["error"] for method, params in [
            ("tasks/get", {}),
            ("tools/call", {"name": "generate_image", "arguments": {"prompt": "x"}, "task": {"ttl": "soon"}}),
            ("resources/read", {}),
            ("prompts/get", {"name": "refine_image", "arguments": {"change": 7}}),
        ]}
    finally:
        server.close()
    assert {error["code"] for error in answers.values()} == {-32602}
    assert "`taskId` is required" in answers["tasks/get"]["message"]
    assert "`task.ttl` was 'soon'; it must be a whole number" in answers["tools/call"]["message"]
    assert "`uri` is required" in answers["resources/read"]["message"]
    assert "`arguments.change` was 7; it must be text" in answers["prompts/get"]["message"]
