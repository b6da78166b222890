"""OpenAIImagesBackend over real HTTP (the real openai SDK) against the fake OpenAI server."""

import base64
import io
import time

import pytest
from PIL import Image

from gpt_image_2_mcp.domain import errors
from gpt_image_2_mcp.domain.outcomes import Placement
from gpt_image_2_mcp.domain.render_settings import (
    Background,
    ImageSize,
    Moderation,
    OutputFormat,
    Quality,
    RenderOptions,
)
from gpt_image_2_mcp.domain.values import GenerationRequest
from gpt_image_2_mcp.entrypoints.use_cases import resolve
from tests.fakes.fake_openai_server import FakeOpenAIServer, Scripted
from tests.integration.conftest import TEST_KEY


async def generate(container, prompt="a lighthouse", **options):
    use_case = await resolve(container.generate_image)
    return await use_case(GenerationRequest(prompt, RenderOptions(**options)))


def files_in(tmp_path):
    folder = tmp_path / "out"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_a_generation_sends_every_setting_and_the_account_headers(openai_container, fake_openai, tmp_path):
    request = GenerationRequest(
        "a lighthouse at dusk",
        RenderOptions(size=ImageSize(1536, 1024), quality=Quality.HIGH, n=2, background=Background.OPAQUE,
                      output_format=OutputFormat.WEBP, output_compression=70, user="user-42"),
        Moderation.LOW,
    )
    outcome = await (await resolve(openai_container.generate_image))(request)
    sent = fake_openai.requests_to("/v1/images/generations")
    assert len(sent) == 1
    body = sent[0].json
    assert body["model"] == "gpt-image-2"
    assert (body["size"], body["quality"], body["n"], body["background"]) == ("1536x1024", "high", 2, "opaque")
    assert (body["output_format"], body["output_compression"], body["moderation"]) == ("webp", 70, "low")
    assert body["safety_identifier"] == "user-42" and "user" not in body
    assert "response_format" not in body
    headers = sent[0].headers
    assert headers["authorization"] == f"Bearer {TEST_KEY}"
    assert headers["openai-organization"] == "org-test" and headers["openai-project"] == "proj-test"
    assert len(outcome.images) == 2
    for image in outcome.images:
        with Image.open(image.path) as decoded:
            assert decoded.size == (1536, 1024) and decoded.format == "WEBP"
    assert outcome.request_id and outcome.request_id.startswith("req_")
    assert outcome.usage.output_tokens == 2000
    assert outcome.route == "images" and not outcome.placeholder


async def test_a_429_with_retry_after_is_waited_out_and_retried(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(429, "slow down", type="rate_limit_error",
                                                             headers={"retry-after-ms": "300"}))
    started = time.monotonic()
    outcome = await generate(openai_container)
    assert time.monotonic() - started >= 0.3
    assert len(fake_openai.requests_to("/v1/images/generations")) == 2
    assert len(outcome.images) == 1


async def test_a_500_is_retried(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(500, "boom", type="server_error"))
    outcome = await generate(openai_container)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 2
    assert outcome.images


async def test_a_persistent_500_fails_clearly_within_the_bounded_time(openai_container, fake_openai, tmp_path):
    fake_openai.script("generations", *[FakeOpenAIServer.error(500, "boom", type="server_error")] * 10)
    started = time.monotonic()
    with pytest.raises(errors.BackendUnavailable, match="after 3 attempts") as caught:
        await generate(openai_container)
    assert time.monotonic() - started < 5
    assert len(fake_openai.requests_to("/v1/images/generations")) == 3
    assert "try again" in str(caught.value).lower()
    assert files_in(tmp_path) == []


async def test_a_retry_after_beyond_the_budget_fails_at_once(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(429, "slow", type="rate_limit_error",
                                                             headers={"retry-after": "60"}))
    started = time.monotonic()
    with pytest.raises(errors.BackendRateLimited, match="wait 60s") as caught:
        await generate(openai_container)
    assert "after 1 attempt (" in str(caught.value)  # the count really made, not max_attempts
    assert time.monotonic() - started < 2
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1


async def test_a_single_possible_attempt_mentions_no_count(fake_openai, tmp_path):
    from tests.conftest import make_container

    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               max_attempts=1)
    fake_openai.script("generations", FakeOpenAIServer.error(503, "busy", type="server_error"))
    with pytest.raises(errors.BackendUnavailable, match=r"failed with 503 \(busy\)") as caught:
        await generate(container)
    assert "attempt" not in str(caught.value)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1


@pytest.mark.parametrize("hint", ["soon", "-5", "NaN", "inf", "-inf", "1e999", "Wed, 99 Foo 2025 25:61:00 GMT", ""])
async def test_an_unreadable_retry_after_is_ignored_and_the_call_backs_off_as_usual(openai_container, fake_openai,
                                                                                     hint):
    fake_openai.script("generations", FakeOpenAIServer.error(503, "busy", type="server_error",
                                                             headers={"Retry-After": hint}))
    outcome = await generate(openai_container)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 2
    assert len(outcome.images) == 1


async def test_an_unreadable_retry_after_ms_falls_back_to_retry_after(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(
        429, "slow", type="rate_limit_error", headers={"retry-after-ms": "later", "retry-after": "60"}))
    with pytest.raises(errors.BackendRateLimited, match="wait 60s"):
        await generate(openai_container)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1


async def test_a_400_is_never_retried(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(400, "Invalid size", param="size"))
    with pytest.raises(errors.BackendRejected, match="parameter size"):
        await generate(openai_container)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1


@pytest.mark.parametrize("status, kind, fragment", [
    (401, errors.BackendAuthenticationFailed, "OPENAI_API_KEY"),
    (403, errors.BackendPermissionDenied, "verified organization"),
])
async def test_auth_failures_say_what_to_fix(openai_container, fake_openai, status, kind, fragment):
    fake_openai.script("generations", FakeOpenAIServer.error(status, "nope"))
    with pytest.raises(kind, match=fragment):
        await generate(openai_container)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1


async def test_a_moderation_block_names_its_reason_and_request_id(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(
        400, "Your request was rejected by the safety system. safety_violations=[violence].",
        code="moderation_blocked", headers={"x-request-id": "req_blocked_1"}))
    with pytest.raises(errors.ContentPolicyViolation) as caught:
        await generate(openai_container)
    assert "violence" in str(caught.value) and "req_blocked_1" in str(caught.value)


async def test_a_refused_transparent_background_says_to_use_opaque(openai_container, fake_openai):
    fake_openai.script("generations", FakeOpenAIServer.error(
        400, "Transparent background is not supported for this model.", param="background"))
    with pytest.raises(errors.BackendRejected, match="background='opaque'"):
        await generate(openai_container, background=Background.TRANSPARENT)
    assert fake_openai.requests_to("/v1/images/generations")[0].json["background"] == "transparent"


@pytest.mark.parametrize("answer", [
    Scripted(status=200, body=b'{"data": [ {"b64_json": '),
    Scripted(status=200, json={"created": 1, "data": []}),
    Scripted(status=200, json={"created": 1, "data": [{"b64_json": "not base64!"}]}),
    Scripted(status=200, json={"created": 1, "data": [{"b64_json": "iVBO=Rw0K"}]}),  # padding inside
    Scripted(status=200, json={"created": 1, "data": [{"b64_json": "iVBORw0K\nGgo="}]}),  # strict: no newlines
])
async def test_unreadable_answers_are_clear_errors_and_leave_no_file(openai_container, fake_openai, tmp_path, answer):
    fake_openai.script("generations", answer)
    with pytest.raises(errors.BackendProtocolError):
        await generate(openai_container)
    assert files_in(tmp_path) == []


async def test_a_dropped_connection_is_retried(openai_container, fake_openai):
    fake_openai.script("generations", Scripted(drop=True))
    outcome = await generate(openai_container)
    assert outcome.images and len(fake_openai.requests_to("/v1/images/generations")) == 2


async def test_a_hung_request_times_out_with_a_hint(fake_openai, tmp_path):
    from tests.conftest import make_container

    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               request_timeout_s=0.3, max_attempts=2, retry_max_seconds=3)
    fake_openai.script("generations", Scripted(delay=2), Scripted(delay=2))
    with pytest.raises(errors.BackendUnavailable, match="GPT_IMAGE_2_REQUEST_TIMEOUT_S"):
        await generate(container)


TINY_ANSWER = {"created": 1, "data": [{"b64_json": base64.b64encode(b"x" * 60).decode()}]}


async def test_an_answer_dripping_a_byte_at_a_time_ends_at_the_attempt_deadline(fake_openai, tmp_path):
    """Each byte comes well within the per-read timeout, yet the whole answer would take ~10 s: each attempt is
    cut at GPT_IMAGE_2_REQUEST_TIMEOUT_S and retried, and the error counts the attempts really made."""
    from tests.conftest import make_container

    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               request_timeout_s=1, max_attempts=2, retry_max_seconds=5)
    fake_openai.script("generations", *[Scripted(json=TINY_ANSWER, drip=0.08)] * 3)
    with pytest.raises(errors.BackendUnavailable, match=r"within 1s after 2 attempts\. .*REQUEST_TIMEOUT_S"):
        await generate(container)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 2
    assert files_in(tmp_path) == []


async def test_a_dripping_stream_ends_at_the_deadline_and_is_not_retried(fake_openai, tmp_path):
    """The deadline covers consuming the stream; a stream that began is never retried (partials may have gone
    out, the image is being billed)."""
    from tests.conftest import make_container

    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"),
                               request_timeout_s=1, max_attempts=3, retry_max_seconds=5)
    fake_openai.script("generations", *[Scripted(drip=0.05)] * 3)
    steps = []

    async def progress(done, total, message):
        steps.append(message)

    request = GenerationRequest("a boat", RenderOptions(partial_images=1))
    with pytest.raises(errors.BackendUnavailable, match=r"within 1s after 1 attempt\. .*REQUEST_TIMEOUT_S"):
        await (await resolve(container.generate_image))(request, Placement(), progress)
    assert len(fake_openai.requests_to("/v1/images/generations")) == 1
    assert not any("partial" in step for step in steps)
    assert files_in(tmp_path) == []


async def test_streaming_turns_partial_images_into_callbacks(openai_container, fake_openai, tmp_path):
    steps = []

    async def progress(done, total, message):
        steps.append((done, total, message))

    request = GenerationRequest("a boat", RenderOptions(size=ImageSize(1024, 1024), partial_images=2))
    outcome = await (await resolve(openai_container.generate_image))(request, Placement(save_partials=True), progress)
    assert fake_openai.requests_to("/v1/images/generations")[0].json["stream"] is True
    assert [s for s in steps if "partial" in s[2]] == [
        (1, 4, "partial image 1 of 2 received"), (2, 4, "partial image 2 of 2 received")]
    assert steps[-1][0] == steps[-1][1] == 4
    assert len(outcome.partials) == 2 and len(outcome.images) == 1
    assert outcome.usage is not None


async def test_a_stream_cut_after_saved_partials_names_the_partials_it_kept(openai_container, fake_openai, tmp_path):
    fake_openai.script("generations", Scripted(cut_stream_after=2))
    request = GenerationRequest("a boat", RenderOptions(partial_images=2))

    async def progress(*_):
        return None

    with pytest.raises(errors.BackendProtocolError) as raised:
        await (await resolve(openai_container.generate_image))(request, Placement(save_partials=True), progress)
    kept = [path.name for path in files_in(tmp_path)]
    assert len(kept) == 2 and all("partial" in name for name in kept)
    message = str(raised.value)
    assert "before the final image" in message and "Nothing was saved" not in message
    assert "2 partial image(s) received before that were kept" in message
    assert all(name in message for name in kept)


async def test_a_stream_cut_before_the_final_image_is_a_clear_error(openai_container, fake_openai, tmp_path):
    fake_openai.script("generations", Scripted(cut_stream_after=1))
    request = GenerationRequest("a boat", RenderOptions(partial_images=2))

    async def progress(*_):
        return None

    with pytest.raises(errors.BackendProtocolError, match="before the final image"):
        await (await resolve(openai_container.generate_image))(request, Placement(), progress)
    assert files_in(tmp_path) == []


def decode(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))
