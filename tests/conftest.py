"""Shared fixtures: the real container with settings for offline runs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gpt_image_2_mcp.entrypoints.container import Container
from gpt_image_2_mcp.entrypoints.settings import Settings
from gpt_image_2_mcp.entrypoints.use_cases import shut_down

ENV_PREFIXES = ("OPENAI_", "GPT_IMAGE_2_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No test sees the developer's keys or folders; the user data folder is a temporary one."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


_made: list[Container] = []


def make_container(**settings) -> Container:
    container = Container()
    container.settings.override(Settings(**settings))
    _made.append(container)
    return container


@pytest.fixture(autouse=True)
async def shut_down_containers():
    """Close what each container opened (the SDK client, if a test resolved it) while the loop still runs."""
    yield
    while _made:
        await shut_down(_made.pop())


@pytest.fixture
def fake_container(tmp_path) -> Container:
    return make_container(backend="fake", output_dir=str(tmp_path / "out"))


def png_bytes(size=(64, 48), mode="RGB", color=(200, 30, 30, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color[: len(mode)] if mode != "RGBA" else color).save(buffer, "PNG")
    return buffer.getvalue()


def write_png(path, size=(64, 48), mode="RGB", color=(200, 30, 30, 255)):
    path.write_bytes(png_bytes(size, mode, color))
    return path


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server for the session (tests keep apart by namespace, or flush it). Without redis-server
    installed, tests that need it skip; under CI (CI set) they fail, since CI must run them."""
    import os
    import shutil

    from tests.redis_server import INSTALL_HINT, RedisServer

    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail(f"redis-server is not installed and CI is set: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    server = RedisServer().start()
    yield server
    server.stop()
