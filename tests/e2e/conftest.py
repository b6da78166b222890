"""End-to-end fixtures: the installed console script, spawned over stdio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

SCRIPT = shutil.which("gpt-image-2-mcp", path=str(Path(sys.executable).parent)) or shutil.which("gpt-image-2-mcp")


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_IMAGE_2_"))}
    env.update({"GPT_IMAGE_2_OUTPUT_DIR": str(tmp_path / "out"), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    env.update(extra)
    return env


def stdio_client(tmp_path: Path, mode: str = "legacy", cwd: Path | None = None, message_handler=None,
                 **env: str) -> Client:
    assert SCRIPT, "the gpt-image-2-mcp console script is not installed (pip install -e .)"
    params = StdioServerParameters(command=SCRIPT, args=[], env=server_env(tmp_path, **env), cwd=cwd or tmp_path)
    return Client(params, mode=mode, message_handler=message_handler)


@pytest.fixture
def script() -> str:
    assert SCRIPT, "the gpt-image-2-mcp console script is not installed (pip install -e .)"
    return SCRIPT


class RawServer:
    """The installed server driven with raw JSON-RPC over its stdin/stdout, so a test can kill it at will."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.proc = subprocess.Popen([SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=server_env(tmp_path, **env), cwd=tmp_path,
                                     text=True)
        self._next_id = 0
        self.notifications: list[dict] = []
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "raw", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def start_request(self, method: str, params: dict) -> int:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def wait_for(self, request_id: int) -> dict:
        assert self.proc.stdout
        while line := self.proc.stdout.readline():
            message = json.loads(line)
            if message.get("id") == request_id:
                return message
            self.notifications.append(message)
        raise AssertionError("the server closed stdout")

    def request(self, method: str, params: dict) -> dict:
        return self.wait_for(self.start_request(method, params))

    def call(self, tool: str, arguments: dict) -> dict:
        return self.request("tools/call", {"name": tool, "arguments": arguments})["result"]

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean-up of any kind
        self.close()

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        self.proc.wait(timeout=30)
