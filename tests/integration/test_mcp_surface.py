"""The MCP tool surface in-process (the SDK's client and server in one process) with the fake backend, and
over HTTP to the fake OpenAI server."""

import asyncio
import base64
import io
import itertools
from pathlib import Path

import anyio
import pytest
from dependency_injector import providers
from mcp.client import Client
from PIL import Image

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container, write_png


def server_for(tmp_path, **settings):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), **settings)
    return build_server(container), container


class RecordingCodec:
    """The real codec, keeping every preview it makes."""

    def __init__(self, codec, made: list) -> None:
        self._codec, self._made = codec, made

    def __getattr__(self, name):
        return getattr(self._codec, name)

    def preview(self, data, max_edge, max_bytes):
        preview = self._codec.preview(data, max_edge, max_bytes)
        self._made.append(preview)
        return preview


def recording_server(tmp_path, made: list):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
    container.codec.override(providers.Object(RecordingCodec(container.codec(), made)))
    return build_server(container)


def inline_bytes(result) -> int:
    return sum(len(block.data) for block in result.content if block.type == "image")


async def test_a_4k_result_is_previewed_within_the_edge_and_byte_limits(tmp_path):
    server, _ = server_for(tmp_path)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "a city at night", "size": "3840x2160"})
    assert not result.is_error
    image = next(b for b in result.content if b.type == "image")
    preview = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert max(preview.size) <= 1568 and inline_bytes(result) <= 750_000
    info = result.structured_content["images"][0]
    assert (info["width"], info["height"]) == (3840, 2160)
    with Image.open(info["file_path"]) as full:
        assert full.size == (3840, 2160)
    assert info["inline"]["width"] == preview.size[0]
    assert f"inline preview {preview.size[0]}x{preview.size[1]}" in result.content[0].text


async def test_the_byte_budget_is_shared_by_all_images_of_a_result(tmp_path):
    server, _ = server_for(tmp_path, preview_max_bytes=120_000, preview_max_edge=2048)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "many", "size": "2048x2048", "n": 3})
    assert len([b for b in result.content if b.type == "image"]) == 3
    assert inline_bytes(result) <= 120_000


async def test_inline_none_shows_no_image_and_inline_full_shows_the_original(tmp_path):
    server, _ = server_for(tmp_path)
    async with Client(server, mode="legacy") as client:
        none = await client.call_tool("generate_image", {"prompt": "x", "inline": "none"})
        full = await client.call_tool("generate_image", {"prompt": "x", "size": "1024x1024", "inline": "full",
                                                         "output_format": "jpeg"})
    small_budget, _ = server_for(tmp_path, preview_max_bytes=100_000)
    async with Client(small_budget, mode="legacy") as client:
        too_big = await client.call_tool("generate_image", {"prompt": "x", "size": "3840x2160", "inline": "full"})
    assert [b.type for b in none.content] == ["text", "resource_link"]
    original = Path(full.structured_content["images"][0]["file_path"]).read_bytes()
    assert base64.b64decode(next(b for b in full.content if b.type == "image").data) == original
    assert "over the inline budget" in too_big.content[0].text
    assert 0 < inline_bytes(too_big) <= 100_000


async def test_an_image_within_the_edge_and_byte_limits_is_shown_as_saved_without_a_preview(tmp_path):
    made = []
    server = recording_server(tmp_path, made)
    async with Client(server, mode="legacy") as client:  # one session: a server runs one lifespan
        small = await client.call_tool("generate_image", {"prompt": "x", "size": "1024x1024",
                                                          "output_format": "jpeg"})
        assert made == [], "nothing was decoded to show it"
        await client.call_tool("generate_image", {"prompt": "x", "size": "2048x2048"})
    block = next(b for b in small.content if b.type == "image")
    saved = Path(small.structured_content["images"][0]["file_path"]).read_bytes()
    assert base64.b64decode(block.data) == saved and block.mime_type == "image/jpeg"
    assert small.structured_content["images"][0]["inline"]["shown"] == "full"
    assert len(made) == 1, "an image over the edge limit is previewed (the recording codec is the one in use)"


async def test_no_preview_is_made_for_a_caller_who_will_not_be_shown_one(tmp_path):
    made = []
    server = recording_server(tmp_path, made)
    async with Client(server, mode="legacy") as client:
        none = await client.call_tool("generate_image", {"prompt": "x", "size": "2048x2048", "inline": "none"})
        full = await client.call_tool("generate_image", {"prompt": "x", "size": "2048x2048", "inline": "full"})
        assert made == [], "neither the head start as the image arrived nor the result made a preview"
        await client.call_tool("generate_image", {"prompt": "x", "size": "2048x2048"})
    assert [b.type for b in none.content] == ["text", "resource_link"]
    assert full.structured_content["images"][0]["inline"]["shown"] == "full"
    assert len(made) == 1, "the same image with the default inline mode is previewed"


async def test_the_preview_started_when_the_image_arrived_is_the_one_the_result_shows(tmp_path):
    made = []
    server = recording_server(tmp_path, made)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "a city", "size": "3840x2160", "n": 2})
    shown = [base64.b64decode(b.data) for b in result.content if b.type == "image"]
    assert len(made) == 2, "one preview per image, made once: as it arrived, not again for the result"
    assert sorted(shown) == sorted(preview.data for preview in made)
    for info in result.structured_content["images"]:
        assert info["inline"]["shown"] == "preview" and max(info["inline"]["width"], info["inline"]["height"]) <= 1568


async def test_progress_starts_at_once_beats_while_waiting_and_finishes(tmp_path):
    server, _ = server_for(tmp_path, fake_latency_ms=1600, heartbeat_s=0.3)
    events = []

    async def on_progress(progress, total, message):
        events.append((anyio.current_time(), progress, total, message))

    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "slow"}, progress_callback=on_progress)
    assert not result.is_error
    assert events[0][3].startswith("request accepted")
    beats = [e for e in events if "elapsed" in e[3]]
    assert len(beats) >= 3
    assert events.index(beats[0]) == 1  # the heartbeats fill the wait between the first and the last step
    assert all(b[1] > a[1] for a, b in itertools.pairwise(events))  # progress increases with every notification
    assert events[-1][1] == events[-1][2]


async def test_partial_images_arrive_as_progress_steps(tmp_path):
    server, _ = server_for(tmp_path, fake_latency_ms=300)
    messages = []

    async def on_progress(progress, total, message):
        messages.append((progress, total, message))

    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "p", "partial_images": 3, "save_partials": True},
                                        progress_callback=on_progress)
    partial_steps = [m for m in messages if m[2].startswith("partial image")]
    assert [m[0] for m in partial_steps] == [1, 2, 3] and all(m[1] == 5 for m in partial_steps)
    assert len(result.structured_content["partial_images"]) == 3


async def test_without_a_progress_token_no_progress_is_sent(tmp_path):
    server, _ = server_for(tmp_path, fake_latency_ms=500, heartbeat_s=0.1)
    seen = []

    async def on_message(message):
        seen.append(message)

    def progress_seen():
        return [m for m in seen if "Progress" in type(getattr(m, "root", m)).__name__]

    async def on_progress(*_):
        return None

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        silent = await client.call_tool("generate_image", {"prompt": "quiet"})
        after_silent = len(progress_seen())
        await client.call_tool("generate_image", {"prompt": "loud"}, progress_callback=on_progress)
    assert not silent.is_error
    assert after_silent == 0
    assert len(progress_seen()) >= 3  # the same handler does see progress once a token is sent


async def test_a_cancelled_call_writes_no_file_and_the_server_stays_responsive(tmp_path):
    server, container = server_for(tmp_path, fake_latency_ms=1500)
    async with Client(server, mode="legacy") as client:
        with anyio.move_on_after(0.3):
            await client.call_tool("generate_image", {"prompt": "never finished"})
        container.fake_backend().latency_s = 0
        result = await client.call_tool("generate_image", {"prompt": "next one"})
        await anyio.sleep(1.5)  # past the moment the cancelled call would have finished
    assert not result.is_error
    saved = Path(result.structured_content["images"][0]["file_path"]).name
    assert [p.name for p in (tmp_path / "out").iterdir()] == [saved]


async def test_cancelling_aborts_the_http_request_to_openai(tmp_path):
    from tests.fakes.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(latency=1.5) as fake:
        container = make_container(api_key="sk-cancel-0123456789", base_url=fake.base_url,
                                   output_dir=str(tmp_path / "out"))
        async with Client(build_server(container), mode="legacy") as client:
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, "generate_image", {"prompt": "cancelled"})
                while not fake.requests_to("/v1/images/generations"):  # noqa: ASYNC110 (the fake runs in threads)
                    await anyio.sleep(0.02)
                group.cancel_scope.cancel()
            fake.latency = 0
            result = await client.call_tool("generate_image", {"prompt": "next", "inline": "none"})
            await anyio.sleep(1.5)
    assert not result.is_error
    assert len(fake.requests_to("/v1/images/generations")) == 2
    assert len(list((tmp_path / "out").iterdir())) == 1


async def test_cancelling_one_call_leaves_the_identical_call_merged_into_its_job_to_finish(tmp_path):
    from tests.fakes.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(latency=1.5) as fake:
        container = make_container(api_key="sk-merged-0123456789", base_url=fake.base_url,
                                   output_dir=str(tmp_path / "out"))
        runner = container.job_runner()
        submitted = []
        submit = runner.submit

        async def counted_submit(*args, **kwargs):
            submission = await submit(*args, **kwargs)
            submitted.append(submission)
            return submission

        runner.submit = counted_submit
        call = {"prompt": "shared", "inline": "none"}
        results = []
        async with Client(build_server(container), mode="legacy") as client:
            first = anyio.CancelScope()

            async def first_call():
                with first:
                    await client.call_tool("generate_image", call)

            async def second_call():
                results.append(await client.call_tool("generate_image", call))

            async with anyio.create_task_group() as group:
                group.start_soon(first_call)
                while len(submitted) < 1:  # noqa: ASYNC110 (waits on the server's own task)
                    await anyio.sleep(0.01)
                group.start_soon(second_call)
                while len(submitted) < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                first.cancel()
    assert submitted[0].job.job_id == submitted[1].job.job_id  # merged: one job, one API request
    assert not results[0].is_error, results[0].content[0].text
    assert Path(results[0].structured_content["images"][0]["file_path"]).is_file()
    assert len(fake.requests_to("/v1/images/generations")) == 1


async def test_roots_confine_reads_and_output_dir_on_the_handshake_era(tmp_path):
    from mcp.types import ListRootsResult, Root

    inside = tmp_path / "project"
    inside.mkdir()
    outside_image = write_png(tmp_path / "outside.png", (64, 64))
    inside_image = write_png(inside / "inside.png", (64, 64))

    async def roots(_ctx):
        return ListRootsResult(roots=[Root(uri=inside.as_uri(), name="project")])

    server, container = server_for(tmp_path)
    async with Client(server, mode="legacy", list_roots_callback=roots) as client:
        read_out = await client.call_tool("edit_image", {"prompt": "x", "images": [str(outside_image)]})
        write_out = await client.call_tool("generate_image", {"prompt": "x", "output_dir": str(tmp_path / "else")})
        ok = await client.call_tool("edit_image", {"prompt": "x", "images": [str(inside_image)],
                                                   "output_dir": str(inside / "out")})
        default_dir = await client.call_tool("generate_image", {"prompt": "x"})
        made_here = default_dir.structured_content["images"][0]["file_path"]  # in the default folder, no root
        edited = await client.call_tool("edit_image", {"prompt": "x", "images": [made_here]})
        session = await client.call_tool("start_edit_session", {"prompt": "x", "images": [made_here]})
    assert read_out.is_error and "GPT_IMAGE_2_ENFORCE_ROOTS=0" in read_out.content[0].text
    assert inside.as_uri() in read_out.content[0].text
    assert write_out.is_error and "roots" in write_out.content[0].text
    assert not ok.is_error and not default_dir.is_error
    assert not edited.is_error and not session.is_error, (edited.content[0].text, session.content[0].text)
    assert len(container.fake_backend().calls) == 4


async def test_roots_enforcement_can_be_switched_off(tmp_path):
    from mcp.types import ListRootsResult, Root

    outside_image = write_png(tmp_path / "outside.png", (64, 64))

    async def roots(_ctx):
        return ListRootsResult(roots=[Root(uri=(tmp_path / "nowhere").as_uri())])

    server, _ = server_for(tmp_path, enforce_roots=False)
    async with Client(server, mode="legacy", list_roots_callback=roots) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [str(outside_image)]})
    assert not result.is_error


class OverlapCountingBackend(FakeImageBackend):
    """The fake backend, counting how many generate calls are in flight at once."""

    def __init__(self) -> None:
        super().__init__(latency_s=0.3)
        self.in_flight = self.peak = 0

    async def generate(self, request, on_partial=None):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().generate(request, on_partial)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_concurrent_calls_run_in_parallel(tmp_path, mode):
    server, container = server_for(tmp_path)
    counting = OverlapCountingBackend()
    container.fake_backend.override(counting)
    async with Client(server, mode=mode) as client:
        results = await asyncio.gather(*[client.call_tool("generate_image", {"prompt": f"p{i}", "inline": "none"})
                                         for i in range(4)])
    assert not any(r.is_error for r in results)
    assert counting.peak == 4  # all four were in the backend at once: not serialised


async def test_a_replayed_result_whose_file_was_deleted_says_so(tmp_path):
    server, _ = server_for(tmp_path)
    call = {"prompt": "a keyed lamp", "idempotency_key": "lamp-1"}
    async with Client(server, mode="legacy") as client:
        first = await client.call_tool("generate_image", call)
        saved = Path(first.structured_content["images"][0]["file_path"])
        saved.unlink()
        replayed = await client.call_tool("generate_image", call)
    assert not replayed.is_error  # the result is still the call's result: its path, its cost
    text = replayed.content[0].text
    assert f"No inline preview of {saved.name}" in text and "moved, deleted or replaced" in text
    assert "files on disk are complete" not in text
