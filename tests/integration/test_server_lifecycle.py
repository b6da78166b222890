"""The server's lifespan: the SDK is imported ahead of the first call without ever holding up shutdown, and
shutdown closes what was opened (the SDK client, the state file)."""

from __future__ import annotations

import threading

import anyio
import pytest
from mcp.client import Client

from gpt_image_2_mcp.adapters import openai_common
from gpt_image_2_mcp.entrypoints import openai_backend_resource
from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from gpt_image_2_mcp.entrypoints.use_cases import resolve, shut_down
from tests.conftest import make_container
from tests.integration.conftest import TEST_KEY


@pytest.fixture
def blocked_sdk_import(monkeypatch):
    """The SDK import, held in its thread until the test releases it."""
    release, started = threading.Event(), threading.Event()
    real = openai_backend_resource._import_adapters

    def held():
        started.set()
        release.wait(30)
        return real()

    monkeypatch.setattr(openai_backend_resource, "_import_adapters", held)
    yield started, release
    release.set()


async def test_the_sdk_import_starts_after_the_handshake_and_shutdown_does_not_wait_for_it(blocked_sdk_import,
                                                                                          tmp_path):
    started, release = blocked_sdk_import
    container = make_container(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", output_dir=str(tmp_path))
    server = build_server(container)
    with anyio.fail_after(20):  # a hang, not a timing: the import stays blocked until after the server ends
        async with server.settings.lifespan(server):
            assert not started.is_set()  # serving alone does not start it: `initialize` goes first
        async with Client(server, mode="legacy"):
            await anyio.to_thread.run_sync(started.wait, 10)
        assert not release.is_set()
    assert not container.sdk_import().done()  # still importing, and nobody waited for it


async def test_the_offline_backend_never_imports_the_sdk(blocked_sdk_import, tmp_path):
    started, _ = blocked_sdk_import
    server = build_server(make_container(backend="fake", output_dir=str(tmp_path)))
    async with Client(server, mode="legacy") as client:
        await client.list_tools()
    assert not started.is_set()


async def test_shutdown_closes_the_sdk_client_the_backend_opened(monkeypatch, fake_openai, tmp_path):
    built = []

    def recording(**kwargs):
        built.append(openai_common.build_client.__wrapped__(**kwargs))
        return built[-1]

    recording.__wrapped__ = openai_common.build_client  # type: ignore[attr-defined]
    monkeypatch.setattr(openai_common, "build_client", recording)
    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path))
    await resolve(container.backend)
    assert len(built) == 1 and not built[0].is_closed()

    await shut_down(container)

    assert built[0].is_closed()


async def test_shutdown_closes_the_state_file(tmp_path):
    container = make_container(backend="fake", output_dir=str(tmp_path), state_url=f"sqlite://{tmp_path}/s.sqlite3")
    await (await resolve(container.image_library)).page("local")
    database = container.sqlite_database()
    assert database._connection is not None

    await shut_down(container)

    assert database._connection is None


def test_building_the_server_imports_neither_pillow_nor_sqlite_nor_the_sdk(tmp_path):
    """What `initialize` needs is all a fresh process imports before it serves: Pillow (~10 ms, 2.5 MiB), sqlite3
    and the OpenAI SDK (~0.25 s, 13 MiB) come with the first use that needs them; a stdio server never imports
    the HTTP extras (pyjwt for auth, prometheus-client for metrics); pybase64 and the preview threads' pool come
    with the first image."""
    import os
    import subprocess
    import sys

    probe = ("import sys\n"
             "from gpt_image_2_mcp.entrypoints import cli\n"
             "from gpt_image_2_mcp.entrypoints.mcp_server import build_server\n"
             "build_server(cli.build_container(None))\n"
             "deferred = ('PIL', 'sqlite3', 'openai', 'redis', 'jwt', 'prometheus_client', 'pybase64',\n"
             "            'concurrent.futures.thread')\n"
             "print(sorted(m for m in deferred if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GPT_IMAGE_2_"))}
    env.update(OPENAI_API_KEY=TEST_KEY, GPT_IMAGE_2_OUTPUT_DIR=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_the_warm_up_starts_once_after_the_first_message_even_a_failing_one():
    from gpt_image_2_mcp.entrypoints.warm_up import WarmUpAfterFirstMessage

    events: list[str] = []
    middleware = WarmUpAfterFirstMessage(lambda: events.append("start"))

    async def failing(ctx):
        events.append("handled")
        raise RuntimeError("bad request")

    async def fine(ctx):
        events.append("handled")

    with pytest.raises(RuntimeError):
        await middleware(None, failing)  # type: ignore[arg-type]
    await middleware(None, fine)  # type: ignore[arg-type]
    assert events == ["handled", "start", "handled"]
