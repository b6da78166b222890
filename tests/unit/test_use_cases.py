"""The use cases with the fake backend, wired by the real container."""

import asyncio
import hashlib
from pathlib import Path

import pytest
from dependency_injector import providers
from PIL import Image

from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend
from gpt_image_2_mcp.adapters.fallback_image_backend import FallbackImageBackend
from gpt_image_2_mcp.adapters.in_memory_spend_ledger import InMemorySpendLedger
from gpt_image_2_mcp.domain.errors import InvalidRequest, NotConfigured, OutputLocationError, SessionNotFound
from gpt_image_2_mcp.domain.outcomes import Placement
from gpt_image_2_mcp.domain.render_settings import ImageSize, OutputFormat, Quality, RenderOptions, RenderOverrides
from gpt_image_2_mcp.domain.services import EditInputs
from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER
from gpt_image_2_mcp.domain.values import GenerationRequest
from gpt_image_2_mcp.entrypoints.use_cases import resolve
from tests.conftest import make_container, write_png


async def test_generating_saves_every_image_at_the_requested_size(fake_container, tmp_path):
    options = RenderOptions(size=ImageSize(1536, 1024), n=3, quality=Quality.LOW)
    outcome = await fake_container.generate_image()(GenerationRequest("a red fox", options))
    assert len(outcome.images) == 3
    assert len({i.path for i in outcome.images}) == 3
    for image in outcome.images:
        assert Path(image.path).parent == tmp_path / "out"
        with Image.open(image.path) as decoded:
            assert decoded.size == (1536, 1024)
        assert image.size_bytes == Path(image.path).stat().st_size
    assert outcome.placeholder and "OPENAI_API_KEY" in outcome.notes[0]
    assert outcome.cost_usd > 0


class ArrivalRecorder:
    """An observer that notes what it was told and whether each image was already on disk."""

    def __init__(self, folder: Path, fail: bool = False) -> None:
        self.folder, self.fail, self.heard = folder, fail, []

    def arriving(self, images, inline):
        files_then = list(self.folder.glob("*")) if self.folder.exists() else []
        self.heard.append((tuple(images), inline, files_then))
        if self.fail:
            raise RuntimeError("a broken observer")


async def test_the_observer_hears_of_the_images_before_they_are_saved_under_the_same_ids(fake_container, tmp_path):
    recorder = ArrivalRecorder(tmp_path / "out")
    fake_container.arriving_images_observer.override(providers.Object(recorder))
    options = RenderOptions(size=ImageSize(1536, 1024), n=2, quality=Quality.LOW)
    outcome = await fake_container.generate_image()(GenerationRequest("a red fox", options), Placement(inline="full"))
    [(arrived, inline, files_then)] = recorder.heard
    assert inline == "full" and files_then == [], "told before the save, so its work can overlap the write"
    assert [a.image_id for a in arrived] == [i.image_id for i in outcome.images]
    assert [a.data for a in arrived] == [Path(i.path).read_bytes() for i in outcome.images]
    assert {(a.width, a.height, a.mime_type) for a in arrived} == {(1536, 1024, "image/png")}


async def test_an_observer_that_fails_does_not_stop_the_save(fake_container, tmp_path):
    recorder = ArrivalRecorder(tmp_path / "out", fail=True)
    fake_container.arriving_images_observer.override(providers.Object(recorder))
    outcome = await fake_container.generate_image()(GenerationRequest("x"))
    assert recorder.heard and Path(outcome.images[0].path).is_file()
    assert outcome.images[0].image_id in {a.image_id for a in recorder.heard[0][0]}


async def test_the_fake_backend_is_the_default_without_a_key():
    container = make_container()
    assert isinstance(container.backend(), FakeImageBackend)


async def test_with_a_key_the_openai_route_is_chosen():
    container = make_container(api_key="sk-test-123456")
    backend = await resolve(container.backend)
    assert isinstance(backend, FallbackImageBackend)


async def test_with_the_openai_backend_chosen_but_no_key_calls_explain_how_to_set_it():
    container = make_container(backend="openai")
    with pytest.raises(NotConfigured, match="OPENAI_API_KEY"):
        await container.generate_image()(GenerationRequest("x"))


async def test_jpeg_output_is_saved_as_jpeg(fake_container):
    options = RenderOptions(output_format=OutputFormat.JPEG, output_compression=60)
    outcome = await fake_container.generate_image()(GenerationRequest("x", options))
    assert outcome.images[0].path.endswith(".jpg")
    assert outcome.images[0].mime_type == "image/jpeg"


async def test_a_refused_output_folder_costs_nothing(fake_container):
    with pytest.raises(OutputLocationError, match="GPT_IMAGE_2_ALLOW_UNSAFE_OUTPUT_DIR"):
        await fake_container.generate_image()(GenerationRequest("x"), Placement(output_dir="/etc"))
    assert not fake_container.fake_backend().calls


async def test_a_filename_prefix_names_the_files(fake_container):
    outcome = await fake_container.generate_image()(GenerationRequest("x"), Placement(filename_prefix="logo/../x"))
    assert outcome.images[0].filename.startswith("logo-..-x-")
    assert Path(outcome.images[0].path).parent.name == "out"


async def test_editing_reads_inputs_and_matches_the_first_image_size(fake_container, tmp_path):
    first = write_png(tmp_path / "a.png", (320, 240))
    second = write_png(tmp_path / "b.png", (100, 100))
    mask = write_png(tmp_path / "mask.png", (320, 240), mode="RGBA", color=(0, 0, 0, 0))
    outcome = await fake_container.edit_image()("combine", EditInputs((str(first), str(second)), str(mask)))
    call = fake_container.fake_backend().calls[-1]
    assert [i.width for i in call.images] == [320, 100]
    assert call.mask is not None and call.mask.has_alpha
    assert (outcome.images[0].width, outcome.images[0].height) == (320, 240)


@pytest.mark.parametrize("edge", [1, 2, 7])
async def test_an_edit_of_a_tiny_image_gets_a_placeholder_big_enough_to_draw(fake_container, tmp_path, edge):
    tiny = write_png(tmp_path / "tiny.png", (edge, edge))
    outcome = await fake_container.edit_image()("make it red", EditInputs((str(tiny),)))
    assert (outcome.images[0].width, outcome.images[0].height) == (64, 64)  # it failed to draw (ValueError)


async def test_a_mask_of_the_wrong_size_is_refused_before_the_backend_is_called(fake_container, tmp_path):
    first = write_png(tmp_path / "a.png", (320, 240))
    mask = write_png(tmp_path / "mask.png", (64, 64), mode="RGBA")
    with pytest.raises(InvalidRequest, match="resize the mask"):
        await fake_container.edit_image()("x", EditInputs((str(first),), str(mask)))
    assert not fake_container.fake_backend().calls


async def test_a_session_continues_from_the_latest_turn_and_can_branch(fake_container, tmp_path):
    first = write_png(tmp_path / "a.png", (256, 256))
    sessions = fake_container.edit_sessions()
    started = await sessions.start("make it blue", EditInputs((str(first),)))
    assert started.turn == 1 and started.session_id
    second = await sessions.continue_(started.session_id, "add a hat")
    third = await sessions.continue_(started.session_id, "add a cat")
    branch = await sessions.continue_(started.session_id, "no, a dog", from_turn=1)
    calls = fake_container.fake_backend().calls
    assert calls[2].images[0].sha256 == hashlib.sha256(Path(second.images[0].path).read_bytes()).hexdigest()
    assert calls[3].images[0].sha256 == hashlib.sha256(Path(started.images[0].path).read_bytes()).hexdigest()
    assert (second.turn, third.turn, branch.turn, branch.parent_turn) == (2, 3, 4, 1)
    listed = (await sessions.list())[0]
    assert len(listed.turns) == 4 and listed.last.prompt == "no, a dog"
    assert all(Path(p).exists() for t in listed.turns for p in t.file_paths)


async def test_overrides_apply_to_one_turn_only(fake_container, tmp_path):
    first = write_png(tmp_path / "a.png", (256, 256))
    sessions = fake_container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(first),)), options=RenderOptions(quality=Quality.LOW))
    await sessions.continue_(started.session_id, "y", RenderOverrides(quality=Quality.HIGH))
    await sessions.continue_(started.session_id, "z")
    qualities = [c.options.quality for c in fake_container.fake_backend().calls]
    assert qualities == [Quality.LOW, Quality.HIGH, Quality.LOW]


async def test_two_turns_on_one_session_at_once_do_not_interleave(tmp_path):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), fake_latency_ms=50)
    first = write_png(tmp_path / "a.png", (256, 256))
    sessions = container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(first),)))
    a, b = await asyncio.gather(
        sessions.continue_(started.session_id, "one"), sessions.continue_(started.session_id, "two")
    )
    assert sorted([a.turn, b.turn]) == [2, 3]
    assert sorted([a.parent_turn, b.parent_turn]) == [1, 2]  # the second waited for the first


async def test_ended_sessions_cannot_continue(fake_container, tmp_path):
    first = write_png(tmp_path / "a.png", (256, 256))
    sessions = fake_container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(first),)))
    await sessions.end(started.session_id)
    with pytest.raises(SessionNotFound, match="start_edit_session"):
        await sessions.continue_(started.session_id, "y")


async def test_a_cancelled_turn_does_not_advance_the_session(tmp_path):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), fake_latency_ms=2000)
    first = write_png(tmp_path / "a.png", (256, 256))
    container.fake_backend().latency_s = 0
    sessions = container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(first),)))
    container.fake_backend().latency_s = 2
    before = set((tmp_path / "out").iterdir())
    task = asyncio.create_task(sessions.continue_(started.session_id, "y"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len((await sessions.list())[0].turns) == 1
    assert set((tmp_path / "out").iterdir()) == before


class SettlingGate(InMemorySpendLedger):
    """A ledger that holds the booking of a call's actual cost until told to go: the moment after the images
    were saved, where a cancellation used to lose them."""

    def __init__(self) -> None:
        super().__init__()
        self.settling, self.go = asyncio.Event(), asyncio.Event()

    async def record(self, entry):
        if entry.actual_usd is not None:
            self.settling.set()
            await self.go.wait()
        await super().record(entry)


def gated_container(tmp_path) -> tuple[object, SettlingGate]:
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://")
    ledger = SettlingGate()
    container.spend_ledger.override(providers.Object(ledger))  # before anything resolves the spend guard
    return container, ledger


async def cancelled_while_settling(ledger: SettlingGate, call) -> object:
    """Run `call`, cancel it while its cost is being booked, and return what it returned."""
    task = asyncio.create_task(call())
    await ledger.settling.wait()
    task.cancel()
    await asyncio.sleep(0)  # the cancellation lands before the booking can finish
    ledger.go.set()
    return await task


async def test_a_cancel_that_comes_once_the_images_are_saved_still_returns_them_booked_and_catalogued(tmp_path):
    container, ledger = gated_container(tmp_path)
    outcome = await cancelled_while_settling(
        ledger, lambda: container.generate_image()(GenerationRequest("late", RenderOptions(n=2))))
    assert all(Path(image.path).is_file() for image in outcome.images) and len(outcome.images) == 2
    assert await container.spend_ledger().spent_since(LOCAL_OWNER, 0) == 0  # the placeholders' $0, not the estimate
    listed = await container.image_catalogue().page(LOCAL_OWNER)
    assert {r.image_id for r in listed.records} == {i.image_id for i in outcome.images}


async def test_a_cancel_that_comes_once_a_turn_is_saved_still_records_the_turn(tmp_path):
    container, ledger = gated_container(tmp_path)
    sessions = container.edit_sessions()
    ledger.go.set()
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (256, 256))),)))
    ledger.go, ledger.settling = asyncio.Event(), asyncio.Event()
    outcome = await cancelled_while_settling(ledger, lambda: sessions.continue_(started.session_id, "late"))
    assert outcome.turn == 2 and Path(outcome.images[0].path).is_file()
    assert [t.turn for t in (await sessions.list())[0].turns] == [1, 2]


async def test_continuing_from_a_turn_whose_image_is_gone_says_so_and_points_to_from_turn(fake_container, tmp_path):
    sessions = fake_container.edit_sessions()
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (256, 256))),)))
    second = await sessions.continue_(started.session_id, "warmer")
    Path(second.images[0].path).unlink()
    with pytest.raises(InvalidRequest) as refused:
        await sessions.continue_(started.session_id, "cooler")
    message = str(refused.value)
    assert f"Turn 2 of session {started.session_id} cannot be continued" in message
    assert "from_turn" in message and "Check the path" not in message  # the caller never gave a path
    assert (await sessions.continue_(started.session_id, "cooler", from_turn=1)).turn == 3


async def test_a_sessions_turns_keep_its_output_folder_and_prefix_unless_a_turn_says_otherwise(fake_container,
                                                                                                  tmp_path):
    sessions = fake_container.edit_sessions()
    project, elsewhere = tmp_path / "my-project", tmp_path / "elsewhere"
    started = await sessions.start("x", EditInputs((str(write_png(tmp_path / "a.png", (256, 256))),)),
                                   placement=Placement(output_dir=str(project), filename_prefix="hero"))
    kept = await sessions.continue_(started.session_id, "warmer")
    moved = await sessions.continue_(started.session_id, "cooler",
                                     placement=Placement(output_dir=str(elsewhere), filename_prefix="alt"))
    for outcome, folder, prefix in ((started, project, "hero"), (kept, project, "hero"), (moved, elsewhere, "alt")):
        path = Path(outcome.images[0].path)
        assert (path.parent, path.name.split("-")[0]) == (folder, prefix)
