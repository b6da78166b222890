"""Hostile and broken inputs through the real MCP protocol: every one is a tool error, nothing reaches the
OpenAI server, and nothing is fetched from an "internal" HTTP server."""

import base64
import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client
from PIL import Image

from gpt_image_2_mcp.entrypoints.mcp_server import build_server
from tests.conftest import make_container, png_bytes, write_png
from tests.fakes.fake_openai_server import FakeOpenAIServer


class Internal(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        self.hits.append(self.path)
        body = png_bytes((64, 64))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def internal():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Internal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key=abc\n")
    monkeypatch.setenv("HOME", str(home))
    files = tmp_path / "files"
    files.mkdir()
    (files / "notes.png").write_text("this is text, not a picture")
    (files / "empty.png").write_bytes(b"")
    (files / "truncated.png").write_bytes(png_bytes((256, 256), color=(1, 2, 3, 255))[:200])
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")
    (files / "bomb.png").write_bytes(bomb.getvalue())
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64)).save(jpeg, "JPEG")
    (files / "mask.jpg").write_bytes(jpeg.getvalue())
    write_png(files / "good.png", (64, 64))
    write_png(files / "small-mask.png", (32, 32), mode="RGBA")
    return tmp_path, files


def hostile_cases(files, port):
    good = str(files / "good.png")
    edit = lambda images, **extra: ("edit_image", {"prompt": "x", "images": images, **extra})  # noqa: E731
    return {
        "ssh key as image": edit(["~/.ssh/id_rsa"]),
        "aws credentials as mask": edit([good], mask="~/.aws/credentials"),
        "passwd": edit(["/etc/passwd"]),
        "proc environ": edit(["/proc/self/environ"]),
        "file url to shadow": edit(["file:///etc/shadow"]),
        "cloud metadata": edit(["http://169.254.169.254/latest/meta-data/iam/"]),
        "loopback literal": edit([f"http://127.0.0.1:{port}/internal.png"]),
        "localhost name": edit([f"http://localhost:{port}/internal.png"]),
        "mapped loopback": edit([f"http://[::ffff:127.0.0.1]:{port}/internal.png"]),
        "unspecified": edit([f"http://0.0.0.0:{port}/internal.png"]),
        "gopher": edit(["gopher://127.0.0.1:70/_x"]),
        "text data url": edit(["data:text/plain;base64,aGVsbG8="]),
        "garbage data url": edit(["data:image/png;base64,AAAA"]),
        "text file named png": edit([str(files / "notes.png")]),
        "empty file": edit([str(files / "empty.png")]),
        "truncated png": edit([str(files / "truncated.png")]),
        "decompression bomb": edit([str(files / "bomb.png")]),
        "missing file": edit([str(files / "nope.png")]),
        "jpeg mask": edit([good], mask=str(files / "mask.jpg")),
        "mask of another size": edit([good], mask=str(files / "small-mask.png")),
        "seventeen images": edit([good] * 17),
        "no images": edit([]),
        "write into etc": ("generate_image", {"prompt": "x", "output_dir": "/etc"}),
        "write into ssh": ("generate_image", {"prompt": "x", "output_dir": "~/.ssh"}),
        "write into proc": ("generate_image", {"prompt": "x", "output_dir": "/proc/self"}),
        "relative output_dir climbing out": ("generate_image", {"prompt": "x", "output_dir": "drafts/../../escaped"}),
        "url as output_dir": ("generate_image", {"prompt": "x", "output_dir": "http://127.0.0.1/x"}),
        "nul in output_dir": ("generate_image", {"prompt": "x", "output_dir": "drafts\0x"}),
        "nul in an image path": edit([good + "\0.png"]),
        "overlong prompt": ("generate_image", {"prompt": "x" * 32_001}),
        "impossible size": ("generate_image", {"prompt": "x", "size": "99999x99999"}),
        "n out of range": ("generate_image", {"prompt": "x", "n": 11}),
        "compression with png": ("generate_image", {"prompt": "x", "output_compression": 50}),
        "unknown quality": ("generate_image", {"prompt": "x", "quality": "ultra"}),
        "unknown session": ("continue_edit_session", {"session_id": "../../etc", "prompt": "x"}),
    }


async def test_every_hostile_input_is_a_tool_error_and_nothing_leaves(world, internal, tmp_path):
    _, files = world
    Internal.hits.clear()
    with FakeOpenAIServer() as fake:
        container = make_container(api_key="sk-hostile-0123456789", base_url=fake.base_url,
                                   output_dir=str(tmp_path / "out"))
        async with Client(build_server(container), mode="legacy") as client:
            results = {name: await client.call_tool(tool, args)
                       for name, (tool, args) in hostile_cases(files, internal).items()}
        assert fake.requests == []
    failures = {name: r.content for name, r in results.items() if not r.is_error}
    assert failures == {}
    assert Internal.hits == []
    secret_texts = ("BEGIN OPENSSH", "aws_secret_access_key")
    for name, result in results.items():
        text = result.content[0].text
        assert not any(s in text for s in secret_texts), name
        assert len(text) > 20, name
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "escaped").exists()


async def test_messages_name_the_input_and_the_way_out(world, internal, tmp_path):
    _, files = world
    with FakeOpenAIServer() as fake:
        container = make_container(api_key="sk-hostile-0123456789", base_url=fake.base_url,
                                   output_dir=str(tmp_path / "out"))
        async with Client(build_server(container), mode="legacy") as client:
            metadata = await client.call_tool("edit_image", {"prompt": "x", "images": [
                str(files / "good.png"), "http://169.254.169.254/latest/"]})
            intranet = await client.call_tool("edit_image", {"prompt": "x", "images": ["http://10.1.2.3/a.png"]})
            truncated = await client.call_tool("edit_image", {"prompt": "x", "images": [str(files / "truncated.png")]})
            gopher = await client.call_tool("edit_image", {"prompt": "x", "images": ["gopher://127.0.0.1:70/_x"]})
            link = await client.call_tool("edit_image", {"prompt": "x", "images": ["image://img_0123456789abcdef"]})
            climbing = await client.call_tool("generate_image", {"prompt": "x", "output_dir": "../escaped"})
            nul = await client.call_tool("edit_image", {"prompt": "x", "images": [str(files / "good.png") + "\0"]})
    assert "image 2" in metadata.content[0].text and "169.254.169.254" in metadata.content[0].text
    assert "GPT_IMAGE_2_ALLOWED_URL_HOSTS" not in metadata.content[0].text  # never suggest unlocking metadata
    assert "GPT_IMAGE_2_ALLOWED_URL_HOSTS=10.1.2.3" in intranet.content[0].text
    assert "truncated.png" in truncated.content[0].text
    assert "unsupported scheme" in gopher.content[0].text and "no such image file" not in gopher.content[0].text
    assert "resource link" in link.content[0].text and "file_path" in link.content[0].text
    assert "leads out of the default output folder" in climbing.content[0].text
    assert "NUL character" in nul.content[0].text and "image 1" in nul.content[0].text


TOOL_ARGUMENTS = st.fixed_dictionaries({}, optional={
    "prompt": st.one_of(st.text(max_size=50), st.integers(), st.none()),
    "size": st.one_of(st.text(max_size=12), st.sampled_from(["auto", "1024x1024", "16x16", "3840x2160"])),
    "quality": st.one_of(st.sampled_from(["auto", "low", "medium", "high"]), st.text(max_size=5)),
    "n": st.one_of(st.integers(-5, 20), st.text(max_size=3)),
    "background": st.sampled_from(["auto", "opaque", "transparent", "x"]),
    "output_format": st.sampled_from(["png", "jpeg", "webp", "gif"]),
    "output_compression": st.one_of(st.none(), st.integers(-10, 120)),
    "inline": st.sampled_from(["preview", "full", "none", "weird"]),
    "partial_images": st.integers(-1, 5),
    # No "//": a generated URL must never make the server resolve or reach a host outside this machine.
    "images": st.lists(st.text(max_size=30).filter(lambda t: "//" not in t), max_size=3),
    "from_turn": st.integers(-2, 5),
    "session_id": st.text(max_size=10),
    "filename_prefix": st.one_of(st.none(), st.text(max_size=20)),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool=st.sampled_from(["generate_image", "edit_image", "start_edit_session", "continue_edit_session",
                             "end_edit_session", "list_edit_sessions"]), arguments=TOOL_ARGUMENTS)
def test_no_arguments_make_the_server_fail_at_the_protocol_level(tmp_path, tool, arguments):
    async def run():
        container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
        async with Client(build_server(container), mode="legacy") as client:
            result = await client.call_tool(tool, arguments)
            assert result.content and result.content[0].type == "text"
            follow_up = await client.call_tool("list_edit_sessions", {})
            assert not follow_up.is_error

    import anyio

    anyio.run(run)


def test_a_good_data_url_reaches_the_backend_byte_for_byte(tmp_path):
    """The other side of the hostile table: a good data URL is accepted, decoded and sent as it was."""
    original = png_bytes((64, 64))
    data_url = "data:image/png;base64," + base64.b64encode(original).decode()

    async def run():
        container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
        async with Client(build_server(container), mode="legacy") as client:
            result = await client.call_tool("edit_image", {"prompt": "x", "images": [data_url]})
        assert not result.is_error
        assert container.fake_backend().calls[-1].images[0].sha256 == hashlib.sha256(original).hexdigest()
        assert (result.structured_content["images"][0]["width"], result.structured_content["images"][0]["height"]) \
            == (64, 64)

    import anyio

    anyio.run(run)
