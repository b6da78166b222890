"""The installed `gpt-image-2-mcp serve --transport http`, spawned as a process on a free 127.0.0.1 port and
driven by the SDK's streamable HTTP client and raw requests."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mcp.client import Client

from tests.e2e.conftest import server_env
from tests.http_harness import INITIALIZE, http, http_request
from tests.redis_server import free_port

STARTUP_S = 30


class HttpServerProcess:
    """`serve --transport http` as a child process; `start()` returns once /healthz answers."""

    def __init__(self, script: str, tmp_path: Path, *flags: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._args = [script, "serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(self.port), *flags]
        self._env = server_env(tmp_path, **{"GPT_IMAGE_2_STATE_URL": "memory://", **env})
        self._cwd = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> HttpServerProcess:
        self.process = subprocess.Popen(self._args, env=self._env, cwd=self._cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.stderr.read().decode()}")
            try:
                if http_request(f"{self.base}/healthz").status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the server did not answer /healthz in time")

    def stop(self) -> tuple[int, bytes, bytes]:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)  # what a service manager sends
        out, err = self.process.communicate(timeout=STARTUP_S)
        return self.process.returncode, out, err


@pytest.fixture
def http_server(script, tmp_path):
    server = HttpServerProcess(script, tmp_path).start()
    yield server
    if server.process and server.process.poll() is None:
        server.stop()


async def test_the_served_process_generates_with_progress_and_guards_its_host(http_server, tmp_path):
    progress = []

    async def on_progress(done, total, message):
        progress.append(message)

    async with Client(f"{http_server.base}/mcp", mode="legacy") as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "inline": "none"},
                                        progress_callback=on_progress)
    rebinding = await http(f"{http_server.base}/mcp", "POST", INITIALIZE, {"Host": "evil.example"})
    health = await http(f"{http_server.base}/healthz")
    code, out, err = http_server.stop()
    assert len(tools) == 7
    assert not result.is_error and Path(result.structured_content["images"][0]["file_path"]).parent == tmp_path / "out"
    assert progress and progress[0].startswith("request accepted")
    assert rebinding.status == 421 and health.status == 200
    assert code == -signal.SIGTERM and out == b""  # ended by the signal, after a clean shutdown; nothing on stdout
    assert b"Serving MCP over streamable HTTP" in err and b"Application shutdown complete" in err


def test_http_mode_without_an_output_folder_refuses_to_start_in_one_line(script, tmp_path):
    env = {k: v for k, v in server_env(tmp_path).items() if k != "GPT_IMAGE_2_OUTPUT_DIR"}
    done = subprocess.run([script, "serve", "--transport", "http", "--port", str(free_port())], env=env,
                          capture_output=True, timeout=STARTUP_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        "gpt-image-2-mcp: GPT_IMAGE_2_OUTPUT_DIR is not set: over HTTP the images go to one configured folder "
        "(shared by the replicas); set it to an absolute path."]


def test_a_bad_port_is_one_line_naming_the_variable(script, tmp_path):
    done = subprocess.run([script, "serve"], env=server_env(tmp_path, GPT_IMAGE_2_TRANSPORT="http",
                                                            GPT_IMAGE_2_HTTP_PORT="99999"),
                          capture_output=True, timeout=STARTUP_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "GPT_IMAGE_2_HTTP_PORT='99999'" in lines[0] and "at most 65535" in lines[0]


async def test_with_a_tokens_file_only_listed_tokens_get_in(script, tmp_path):
    from gpt_image_2_mcp.adapters.tokens_file_verifier import new_token
    from tests.http_harness import client_with_token

    token, line = new_token("dana")
    (tmp_path / "tokens").write_text(f"# team\n{line}\n")
    state = {"GPT_IMAGE_2_STATE_URL": f"sqlite://{tmp_path / 'state.sqlite3'}"}
    server = HttpServerProcess(script, tmp_path, GPT_IMAGE_2_AUTH_TOKENS_FILE=str(tmp_path / "tokens"),
                               **state).start()
    try:
        anonymous = await http(f"{server.base}/mcp", "POST", INITIALIZE)
        wrong = await http(f"{server.base}/mcp", "POST", INITIALIZE, {"Authorization": "Bearer gi2_guess"})
        async with client_with_token(f"{server.base}/mcp", token) as client:
            result = await client.call_tool("generate_image", {"prompt": "a kite", "inline": "none"})
    finally:
        _, _, err = server.stop()
    assert anonymous.status == 401 and wrong.status == 401
    assert "Bearer" in anonymous.headers["www-authenticate"]
    assert not result.is_error and "/out/u-" in result.structured_content["images"][0]["file_path"]
    assert token.encode() not in err  # never logged
    # An operator reads a team member's share of the state with --owner; the default is the local user's.
    def listed(*args: str) -> object:
        done = subprocess.run([script, *args, "--json"], env=server_env(tmp_path, **state), capture_output=True,
                              text=True, timeout=STARTUP_S)
        return json.loads(done.stdout)

    dana = ("--owner", "tokens-file#dana")
    assert listed("images") == [] and listed("spend")["total"]["calls"] == 0
    assert [image["path"] for image in listed("images", *dana)] == [result.structured_content["images"][0]["file_path"]]
    assert listed("spend", *dana)["total"]["calls"] == 1


def test_token_new_from_the_installed_script(script):
    done = subprocess.run([script, "token", "new", "erin"], capture_output=True, timeout=STARTUP_S)
    token, line = done.stdout.decode().splitlines()
    assert done.returncode == 0 and line.startswith("erin sha256:") and token.startswith("gi2_")
