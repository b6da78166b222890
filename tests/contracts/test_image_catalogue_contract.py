"""One contract for every ImageCatalogue: memory, SQLite and Redis behave alike."""

from __future__ import annotations

import pytest

from gpt_image_2_mcp.domain.catalogue import ImageRecord
from gpt_image_2_mcp.domain.errors import ImageNotFound, InvalidRequest
from gpt_image_2_mcp.domain.values import SavedImage

NOW = 1_700_000_000.0


def record(number: int, owner: str = "alice", created_at: float | None = None) -> ImageRecord:
    image_id = f"img_{number:04d}"
    image = SavedImage(f"/images/{number}.png", f"{number}.png", 1024, 768, 1000 + number, "image/png", False,
                       (64769, 1000 + number), image_id)
    return ImageRecord(image_id, owner, image, f"prompt {number}", NOW + number if created_at is None else created_at,
                       {"size": "1024x768", "quality": "low"}, "es_1" if number % 2 else None,
                       number if number % 2 else None)


async def test_a_record_comes_back_as_it_was_stored(store):
    catalogue = store.catalogue()
    original = record(1)
    await catalogue.add([original])
    assert await catalogue.get("alice", "img_0001") == original


async def test_another_owners_image_is_not_found(store):
    catalogue = store.catalogue()
    await catalogue.add([record(1, owner="alice")])
    with pytest.raises(ImageNotFound, match="img_0001"):
        await catalogue.get("bob", "img_0001")
    assert (await catalogue.page("bob")).records == ()


async def test_pages_run_newest_first_without_gaps_or_repeats_even_as_images_arrive(store):
    catalogue = store.catalogue()
    await catalogue.add([record(n) for n in range(1, 8)])
    await catalogue.add([record(50, owner="bob")])
    first = await catalogue.page("alice", limit=3)
    await catalogue.add([record(100)])  # a new image between pages lands on page one, shifting nothing
    second = await catalogue.page("alice", first.next_cursor, limit=3)
    third = await catalogue.page("alice", second.next_cursor, limit=3)
    ids = [r.image_id for page in (first, second, third) for r in page.records]
    assert ids == [f"img_{n:04d}" for n in range(7, 0, -1)]
    assert third.next_cursor is None
    assert [r.image_id for r in (await catalogue.page("alice", limit=1)).records] == ["img_0100"]


async def test_images_made_in_the_same_instant_are_all_listed(store):
    catalogue = store.catalogue()
    await catalogue.add([record(n, created_at=NOW) for n in range(1, 6)])
    first = await catalogue.page("alice", limit=2)
    rest = await catalogue.page("alice", first.next_cursor, limit=10)
    assert sorted(r.image_id for r in (*first.records, *rest.records)) == [f"img_{n:04d}" for n in range(1, 6)]


async def test_a_removed_image_is_gone_and_removing_twice_is_harmless(store):
    catalogue = store.catalogue()
    await catalogue.add([record(1), record(2)])
    await catalogue.remove("alice", "img_0001")
    await catalogue.remove("alice", "img_0001")
    with pytest.raises(ImageNotFound):
        await catalogue.get("alice", "img_0001")
    assert [r.image_id for r in (await catalogue.page("alice")).records] == ["img_0002"]


async def test_a_cursor_this_server_never_gave_is_refused(store):
    with pytest.raises(InvalidRequest, match="cursor"):
        await store.catalogue().page("alice", "not-a-cursor")


async def test_a_new_process_on_the_same_store_sees_the_images(persistent_store):
    store = persistent_store
    await store.catalogue().add([record(1)])
    assert (await store.catalogue().get("alice", "img_0001")).prompt == "prompt 1"
