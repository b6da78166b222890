"""End-to-end fixtures: the installed console script, spawned over stdio."""

from __future__ import annotations

import os
import shutil
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


def stdio_client(tmp_path: Path, mode: str = "legacy", cwd: Path | None = None, **env: str) -> Client:
    assert SCRIPT, "the gpt-image-2-mcp console script is not installed (pip install -e .)"
    params = StdioServerParameters(command=SCRIPT, args=[], env=server_env(tmp_path, **env), cwd=cwd or tmp_path)
    return Client(params, mode=mode)


@pytest.fixture
def script() -> str:
    assert SCRIPT, "the gpt-image-2-mcp console script is not installed (pip install -e .)"
    return SCRIPT
