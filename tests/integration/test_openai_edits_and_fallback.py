"""Edits over real HTTP: the direct endpoint, the Responses fallback, and inputs of every kind."""

import base64
import dataclasses
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from gpt_image_2_mcp.domain import errors
from gpt_image_2_mcp.domain.render_settings import ImageSize, Quality, RenderOptions
from gpt_image_2_mcp.domain.services import EditInputs
from gpt_image_2_mcp.entrypoints.use_cases import resolve
from tests.conftest import make_container, png_bytes, write_png
from tests.fakes.fake_openai_server import FakeOpenAIServer
from tests.integration.conftest import TEST_KEY

DALL_E_ONLY = FakeOpenAIServer.error(400, "Invalid value: 'gpt-image-2'. Value must be 'dall-e-2'.", param="model",
                                     code="invalid_value")


@pytest.fixture
def inputs(tmp_path):
    first = write_png(tmp_path / "first.png", (320, 240))
    second = write_png(tmp_path / "second.png", (128, 128), color=(0, 90, 200, 255))
    mask = write_png(tmp_path / "mask.png", (320, 240), mode="RGBA", color=(0, 0, 0, 0))
    return first, second, mask


async def test_a_direct_edit_sends_every_image_as_image_array_parts(openai_container, fake_openai, inputs):
    first, second, mask = inputs
    options = RenderOptions(size=ImageSize(1024, 1536), quality=Quality.LOW, n=2, user="u-1")
    outcome = await (await resolve(openai_container.edit_image))(
        "put them together", EditInputs((str(first), str(second)), str(mask)), options)
    sent = fake_openai.requests_to("/v1/images/edits")
    assert len(sent) == 1
    parts = sent[0].files
    assert [data for _, _, data in parts["image[]"]] == [first.read_bytes(), second.read_bytes()]
    assert parts["mask"][0][2] == mask.read_bytes()
    fields = {k: v[0] for k, v in sent[0].fields.items()}
    assert fields["model"] == "gpt-image-2" and fields["prompt"] == "put them together"
    assert (fields["size"], fields["quality"], fields["n"]) == ("1024x1536", "low", "2")
    assert fields["safety_identifier"] == "u-1"
    assert "input_fidelity" not in fields and "moderation" not in fields
    assert sent[0].headers["openai-project"] == "proj-test"
    assert outcome.route == "images" and len(outcome.images) == 2


async def test_the_fallback_uploads_edits_and_deletes_and_is_remembered(openai_container, fake_openai, inputs):
    first, second, mask = inputs
    fake_openai.script("edits", DALL_E_ONLY)
    edit = (await resolve(openai_container.edit_image))
    inputs = EditInputs((str(first), str(second)), str(mask))
    outcome = await edit("compose", inputs, RenderOptions(quality=Quality.HIGH))
    uploads = fake_openai.requests_to("/v1/files")
    assert len(uploads) == 3
    assert all(u.fields["purpose"] == ["vision"] for u in uploads)
    assert sorted(u.files["file"][0][2] for u in uploads) == sorted(
        [first.read_bytes(), second.read_bytes(), mask.read_bytes()])
    call = fake_openai.requests_to("/v1/responses")[0].json
    assert call["model"] == "gpt-4.1-mini"
    assert call["tool_choice"] == {"type": "image_generation"}
    tool = call["tools"][0]
    assert (tool["type"], tool["model"], tool["action"], tool["quality"]) == (
        "image_generation", "gpt-image-2", "edit", "high")
    content = call["input"][0]["content"]
    assert content[0] == {"type": "input_text", "text": "compose"}
    image_ids = [c["file_id"] for c in content[1:]]
    assert len(image_ids) == 2 and tool["input_image_mask"]["file_id"] not in image_ids
    assert fake_openai.uploaded_files == {}
    assert sorted(fake_openai.deleted_file_ids) == sorted([*image_ids, tool["input_image_mask"]["file_id"]])
    assert outcome.route == "responses" and "estimated" in outcome.notes[0]
    assert outcome.cost_usd >= 0.2  # includes the estimate for one high-quality image
    await edit("again", EditInputs((str(first),)))
    assert len(fake_openai.requests_to("/v1/images/edits")) == 1  # straight to the fallback now
    assert len(fake_openai.requests_to("/v1/responses")) == 2


@pytest.mark.parametrize("failure", [
    FakeOpenAIServer.error(400, "bad prompt"),
    FakeOpenAIServer.error(500, "boom", type="server_error"),
])
async def test_uploaded_files_are_deleted_when_the_responses_call_fails(openai_container, fake_openai, inputs,
                                                                         failure):
    first, second, _ = inputs
    fake_openai.script("edits", DALL_E_ONLY)
    fake_openai.script("responses", *[failure] * 5)
    with pytest.raises(errors.BackendError):
        await (await resolve(openai_container.edit_image))("compose", EditInputs((str(first), str(second))))
    assert len(fake_openai.requests_to("/v1/files")) == 2
    assert fake_openai.uploaded_files == {}
    assert len(fake_openai.deleted_file_ids) == 2


async def test_forced_fallback_never_touches_the_edits_endpoint(fake_openai, tmp_path, inputs):
    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               force_responses_edits=True, responses_edit_model="gpt-4.1")
    edit = await resolve(container.edit_image)
    outcome = await edit("x", EditInputs((str(inputs[0]),)), options=RenderOptions(n=2))
    assert fake_openai.requests_to("/v1/images/edits") == []
    responses = fake_openai.requests_to("/v1/responses")
    assert len(responses) == 2 and responses[0].json["model"] == "gpt-4.1"  # one call per image: the tool has no n
    assert len(outcome.images) == 2 and outcome.route == "responses"
    assert fake_openai.uploaded_files == {}


class _ImageHandler(BaseHTTPRequestHandler):
    payload = png_bytes((200, 100))

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def image_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/picture.png"
    server.shutdown()
    server.server_close()


async def test_inputs_of_every_kind_reach_the_api_byte_for_byte(fake_openai, tmp_path, image_host, monkeypatch):
    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               allowed_url_hosts="127.0.0.1")
    path = write_png(tmp_path / "a b.png", (64, 64))
    rel = write_png(tmp_path / "rel.png", (80, 64))
    file_url = path.as_uri()
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes((96, 64))).decode()
    monkeypatch.chdir(tmp_path)
    await (await resolve(container.edit_image))(
        "x", EditInputs((str(path), "rel.png", file_url, data_url, image_host)))
    parts = fake_openai.requests_to("/v1/images/edits")[0].files["image[]"]
    sizes = [Image.open(__import__("io").BytesIO(data)).size for _, _, data in parts]
    assert sizes == [(64, 64), (80, 64), (64, 64), (96, 64), (200, 100)]
    assert parts[1][2] == rel.read_bytes()


async def test_a_streamed_edit_reports_partials_and_saves_the_final_image(openai_container, fake_openai, inputs):
    steps = []

    async def progress(done, total, message):
        steps.append(message)

    from gpt_image_2_mcp.domain.outcomes import Placement

    edit = await resolve(openai_container.edit_image)
    outcome = await edit("x", EditInputs((str(inputs[0]),)), options=RenderOptions(partial_images=2),
                         placement=Placement(), progress=progress)
    sent = fake_openai.requests_to("/v1/images/edits")[0].fields
    assert sent["stream"] == ["true"] and sent["partial_images"] == ["2"]
    assert [m for m in steps if m.startswith("partial")] == ["partial image 1 of 2 received",
                                                             "partial image 2 of 2 received"]
    assert len(outcome.images) == 1 and (outcome.images[0].width, outcome.images[0].height) == (320, 240)


async def test_a_moderation_block_on_the_responses_route_names_its_categories(fake_openai, tmp_path, inputs):
    from tests.fakes.fake_openai_server import Scripted

    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               force_responses_edits=True)
    blocked = {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-4.1-mini", "status": "completed",
        "parallel_tool_calls": True, "tool_choice": {"type": "image_generation"}, "tools": [],
        "output": [{"type": "image_generation_call", "id": "ig_1", "status": "failed", "result": None,
                    "error": {"code": "moderation_blocked", "message": "blocked", "type": "image_generation_error",
                              "moderation_details": {"categories": ["violence"], "moderation_stage": "input"}}}],
    }
    fake_openai.script("responses", Scripted(json=blocked))
    with pytest.raises(errors.ContentPolicyViolation, match="violence"):
        await (await resolve(container.edit_image))("x", EditInputs((str(inputs[0]),)))
    assert fake_openai.uploaded_files == {}
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


async def test_on_the_responses_route_one_failed_variation_keeps_the_images_the_others_made(fake_openai, tmp_path,
                                                                                           inputs):
    # n=3 is three Responses calls at once; the one that fails must not throw away two paid images.
    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               force_responses_edits=True, max_attempts=1)
    fake_openai.script("responses", dataclasses.replace(FakeOpenAIServer.error(400, "blocked"), delay=0.5))
    options = RenderOptions(n=3)
    outcome = await (await resolve(container.edit_image))("x", EditInputs((str(inputs[0]),)), options)
    assert len(outcome.images) == 2 and all((tmp_path / "out" / i.filename).is_file() for i in outcome.images)
    assert any("1 of the 3 images failed" in note for note in outcome.notes)
    assert len(fake_openai.requests_to("/v1/responses")) == 3
