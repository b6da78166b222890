"""The Redis state adapters against a real redis-server: what the contract suites cannot show (namespacing,
many racing writers, failures, URLs, the schema key, the order of catalogue members)."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from gpt_image_2_mcp.adapters.redis_common import describe, redis_client
from gpt_image_2_mcp.adapters.redis_image_catalogue import RedisImageCatalogue, order_member
from gpt_image_2_mcp.adapters.redis_job_store import RedisJobStore
from gpt_image_2_mcp.adapters.redis_session_repository import RedisSessionRepository
from gpt_image_2_mcp.adapters.redis_spend_ledger import RETENTION_DAYS, RedisSpendLedger
from gpt_image_2_mcp.domain.errors import JobNotFound, SessionMovedOn, SessionNotFound, StateStoreError
from gpt_image_2_mcp.domain.sessions import Turn
from gpt_image_2_mcp.domain.spend import DAY_S
from tests.contracts.stores import Clock
from tests.contracts.test_image_catalogue_contract import record
from tests.contracts.test_job_store_contract import NOW, job
from tests.contracts.test_session_repository_contract import next_turn, session
from tests.contracts.test_spend_ledger_contract import TODAY, entry
from tests.redis_server import RedisServer, free_port

PASSWORD = "s3cret-Redis-pass"


@pytest.fixture
async def connect(redis_server):
    """Makes clients on an emptied test server (these tests look at every key in it) and closes them after."""
    made: list[Redis] = []

    def client(url: str = redis_server.url) -> Redis:
        made.append(Redis.from_url(url, decode_responses=True))
        return made[-1]

    await client().flushdb()
    yield client
    for each in made:
        await each.aclose()


async def test_every_key_starts_with_the_namespace(connect):
    namespace = "team-a:images"
    sessions, catalogue = RedisSessionRepository(connect(), namespace=namespace), RedisImageCatalogue(connect(),
                                                                                                    namespace)
    await sessions.add(session(1, owner="alice:admin"))
    await sessions.append_turn("alice:admin", "es_1", next_turn(await sessions.get("alice:admin", "es_1")))
    await catalogue.add([record(1), record(2, owner="bob")])
    await catalogue.remove("alice", "img_0001")
    keys = [key async for key in connect().scan_iter()]
    assert keys and all(key.startswith(f"{namespace}:") for key in keys)
    assert await connect().get(f"{namespace}:schema") == "1"


async def test_an_owner_with_a_colon_cannot_reach_anothers_session(connect):
    sessions = RedisSessionRepository(connect())
    await sessions.add(session(1, owner="a:b"))
    await sessions.add(session(2, owner="a"))
    with pytest.raises(SessionNotFound):
        await sessions.get("a", "b:es_1")
    assert [s.id for s in await sessions.list("a")] == ["es_2"]


async def test_two_clients_racing_many_appends_leave_one_unbroken_chain(connect):
    first, second = RedisSessionRepository(connect()), RedisSessionRepository(connect())
    await first.add(session(1))

    async def writer(repository: RedisSessionRepository, name: str, count: int) -> int:
        refused = 0
        for index in range(count):
            while True:
                base = await repository.get("alice", "es_1")
                turn = Turn(base.next_turn, f"{name}-{index}", (), base.last.created_at + 1, base.last.turn)
                try:
                    await repository.append_turn("alice", "es_1", turn)
                    break
                except SessionMovedOn:
                    refused += 1
        return refused

    refused = await asyncio.gather(writer(first, "A", 40), writer(second, "B", 40))
    turns = (await first.get("alice", "es_1")).turns
    assert [t.turn for t in turns] == list(range(1, 82))
    assert all(t.parent_turn == t.turn - 1 for t in turns[1:])
    assert sorted(t.prompt for t in turns[1:]) == sorted(f"{n}-{i}" for n in "AB" for i in range(40))
    assert sum(refused) > 0  # they did race: some appends lost and were retried


async def test_the_idle_ttl_is_redis_expiry_and_zero_means_none(connect):
    client = connect()
    await RedisSessionRepository(client, ttl_ms=60_000, namespace="ttl").add(session(1))
    await RedisSessionRepository(client, ttl_ms=0, namespace="none").add(session(1))
    for kind in ("session", "turns", "sessions"):
        suffix = "alice" if kind == "sessions" else "alice:es_1"
        assert 0 < await client.pttl(f"ttl:{kind}:{suffix}") <= 60_000
        assert await client.pttl(f"none:{kind}:{suffix}") == -1


async def test_an_expired_session_left_in_the_lru_set_does_not_push_a_live_one_out(connect):
    client = connect()
    sessions = RedisSessionRepository(client, max_sessions=2, namespace="cap")
    await sessions.add(session(1))
    await sessions.add(session(2))
    await client.delete("cap:session:alice:es_1", "cap:turns:alice:es_1")  # as expiry would
    await sessions.add(session(3))
    assert [s.id for s in await sessions.list("alice")] == ["es_3", "es_2"]
    assert await client.zrange("cap:sessions:alice", 0, -1) == ["es_2", "es_3"]


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
async def test_a_store_that_cannot_be_reached_is_named_without_its_password(connect, scheme):
    port = free_port()  # nothing listens there
    client = connect(f"{scheme}://:{PASSWORD}@127.0.0.1:{port}/0")
    for attempt in (RedisSessionRepository(client).get("alice", "es_1"), RedisImageCatalogue(client).page("alice"),
                    RedisSpendLedger(client).record(entry("a", 0.1))):
        with pytest.raises(StateStoreError, match="cannot be reached") as raised:
            await attempt
        assert f"{scheme}://127.0.0.1:{port}/0" in str(raised.value) and PASSWORD not in str(raised.value)


async def test_credentials_the_store_refuses_are_not_repeated(connect, redis_server):
    admin = connect()
    await admin.acl_setuser("state-app", enabled=True, passwords=["+the-right-one"], commands=["+@all"], keys=["*"])
    try:
        client = connect(f"redis://state-app:{PASSWORD}@127.0.0.1:{redis_server.port}/0")
        with pytest.raises(StateStoreError, match="refused the credentials") as raised:
            await RedisImageCatalogue(client).get("alice", "img_0001")
        assert f"127.0.0.1:{redis_server.port}" in str(raised.value) and PASSWORD not in str(raised.value)
    finally:
        await admin.acl_deluser("state-app")


def test_a_rediss_url_makes_a_tls_client_named_without_credentials():
    client = Redis.from_url(f"rediss://user:{PASSWORD}@cache.example.com:6380/2")  # no connection is made
    RedisSessionRepository(client)
    RedisImageCatalogue(client)
    assert describe(client) == "rediss://cache.example.com:6380/2"


async def test_the_schema_key_is_set_by_the_first_write_and_a_newer_one_is_refused(connect):
    client = connect()
    catalogue = RedisImageCatalogue(client, namespace="old")
    await catalogue.page("alice")
    assert await client.get("old:schema") is None  # a read writes nothing
    await catalogue.add([record(1)])
    assert await client.get("old:schema") == "1"
    await client.set("old:schema", "2")  # a newer server wrote here since
    for fresh in (RedisImageCatalogue(client, namespace="old"), RedisSessionRepository(client, namespace="old")):
        with pytest.raises(StateStoreError, match="newer gpt-image-2-mcp"):
            await fresh.list("alice") if isinstance(fresh, RedisSessionRepository) else await fresh.get("alice", "x")


async def test_pages_skip_records_lost_behind_the_catalogues_back(connect):
    client = connect()
    catalogue = RedisImageCatalogue(client, namespace="lost")
    await catalogue.add([record(n) for n in range(1, 6)])
    await client.delete("lost:image:alice:img_0004", "lost:image:alice:img_0003")  # e.g. a maxmemory policy
    first = await catalogue.page("alice", limit=2)
    rest = await catalogue.page("alice", first.next_cursor, limit=2)
    assert [r.image_id for r in (*first.records, *rest.records)] == ["img_0005", "img_0002", "img_0001"]
    assert await client.zcard("lost:images:alice") == 3


async def test_an_image_added_again_with_another_time_is_listed_once_in_its_new_place(connect):
    catalogue = RedisImageCatalogue(connect())
    await catalogue.add([record(1), record(2)])
    await catalogue.add([record(1, created_at=record(2).created_at + 10)])
    assert [r.image_id for r in (await catalogue.page("alice")).records] == ["img_0001", "img_0002"]


@given(st.lists(st.tuples(st.floats(allow_nan=False),
                          st.text(st.characters(blacklist_categories=("Cs",)), max_size=8))))
def test_catalogue_members_sort_byte_wise_in_newest_first_order(images):
    by_member = sorted(images, key=lambda image: order_member(*image).encode())  # Redis compares UTF-8 bytes
    assert [(-created, image_id) for created, image_id in by_member] == sorted(
        (-created, image_id) for created, image_id in images)


async def test_job_keys_stay_in_the_namespace_and_expire_when_the_ttl_runs_out(connect):
    client, namespace = connect(), "team-a:jobs"
    jobs = RedisJobStore(client, namespace, clock=Clock())
    await jobs.add(job(1, owner="alice:admin", idempotency_key="k:{1}"))
    await jobs.add(job(2, ttl_ms=None))
    keys = [key async for key in client.scan_iter()]
    assert keys and all(key.startswith(f"{namespace}:") for key in keys)
    assert await client.get(f"{namespace}:schema") == "1"
    left = await client.pttl(f"{namespace}:job:alice%3Aadmin:job_0001")
    assert 3_600_000 < left <= 3_601_000  # created 1 s after the clock's now, with an hour to live
    assert await client.pttl(f"{namespace}:job:alice:job_0002") == -1  # no ttl: never expires
    assert await client.exists(f"{namespace}:jobs-by-key:alice%3Aadmin:k%3A%7B1%7D") == 1


async def test_a_job_whose_ttl_ran_out_is_gone_before_any_sweep(connect):
    client, clock = connect(), Clock()
    jobs = RedisJobStore(client, "swept", clock=clock)
    await jobs.add(job(1, ttl_ms=1_000, idempotency_key="k"))
    await jobs.add(job(2, ttl_ms=None))
    clock.now = NOW + 2.001  # past job 1's ttl on this clock; Redis's key has a second or so left
    with pytest.raises(JobNotFound, match="job_0001"):
        await jobs.get("alice", "job_0001")
    assert await jobs.find("alice", fingerprint="fp1") is None
    assert await jobs.find("alice", idempotency_key="k") is None
    assert [j.job_id for j in (await jobs.page("alice")).jobs] == ["job_0002"]
    assert await client.exists("swept:job:alice:job_0001") == 1  # left out, not yet deleted
    assert await jobs.sweep(clock.now) == 1
    assert await jobs.sweep(clock.now) == 0
    assert sorted([key async for key in client.scan_iter("swept:*")]) == [
        "swept:job:alice:job_0002", "swept:jobs-by-fp:alice:fp2", "swept:jobs:alice", "swept:schema"]


async def test_redis_expires_the_job_itself_and_a_sweep_clears_what_named_it(connect):
    client = connect()
    jobs = RedisJobStore(client, "real")  # the real clock, as a server runs
    await jobs.add(job(1, created_at=time.time(), ttl_ms=50, idempotency_key="k"))
    await asyncio.sleep(0.2)
    assert await client.exists("real:job:alice:job_0001") == 0  # Redis's own expiry, no sweep yet
    assert await jobs.sweep(time.time()) == 1
    assert [key async for key in client.scan_iter("real:*")] == ["real:schema"]


async def test_members_of_jobs_gone_behind_the_stores_back_are_skipped_and_dropped(connect):
    client = connect()
    jobs = RedisJobStore(client, "lost", clock=Clock())
    for number in range(1, 6):
        await jobs.add(job(number, fingerprint="fp"))
    await client.delete("lost:job:alice:job_0004", "lost:job:alice:job_0005")  # e.g. a maxmemory policy
    first = await jobs.page("alice", limit=2)
    rest = await jobs.page("alice", first.next_cursor, limit=2)
    assert [j.job_id for j in (*first.jobs, *rest.jobs)] == ["job_0003", "job_0002", "job_0001"]
    assert rest.next_cursor is None
    assert (await jobs.find("alice", fingerprint="fp")).job_id == "job_0003"
    assert await client.zcard("lost:jobs:alice") == await client.zcard("lost:jobs-by-fp:alice:fp") == 3


async def test_find_since_a_jobs_own_created_at_includes_it(connect):
    jobs = RedisJobStore(connect(), "since", clock=Clock())
    for number in (1, 2, 3):
        await jobs.add(job(number, created_at=NOW + number / 10, fingerprint="fp"))
    assert (await jobs.find("alice", fingerprint="fp", since=NOW + 0.3)).job_id == "job_0003"
    assert await jobs.find("alice", fingerprint="fp", since=math.nextafter(NOW + 0.3, math.inf)) is None
    await jobs.save(job(3, created_at=NOW + 0.3, fingerprint="other"))
    assert await jobs.find("alice", fingerprint="fp", since=NOW + 0.2) == await jobs.get("alice", "job_0002")
    assert await jobs.find("alice", since=NOW + 0.3) == await jobs.get("alice", "job_0003")


async def test_jobs_sharing_a_created_at_page_in_id_order(connect):
    jobs = RedisJobStore(connect(), "ties", clock=Clock())
    for number in (3, 1, 5, 2, 4):
        await jobs.add(job(number, created_at=NOW))
    pages, cursor = [], None
    while True:
        page = await jobs.page("alice", cursor, limit=2)
        pages.append([j.job_id for j in page.jobs])
        if (cursor := page.next_cursor) is None:
            break
    assert pages == [["job_0001", "job_0002"], ["job_0003", "job_0004"], ["job_0005"]]


async def test_a_job_saved_again_with_another_time_and_fingerprint_is_found_only_as_it_is_now(connect):
    client = connect()
    jobs = RedisJobStore(client, "moved", clock=Clock())
    await jobs.add(job(1, fingerprint="old", idempotency_key="k1"))
    await jobs.add(job(2))
    await jobs.save(job(1, fingerprint="new", idempotency_key=None, created_at=NOW + 10, ttl_ms=None))
    assert [j.job_id for j in (await jobs.page("alice")).jobs] == ["job_0001", "job_0002"]
    assert await jobs.find("alice", fingerprint="old") is None
    assert await jobs.find("alice", idempotency_key="k1") is None
    assert (await jobs.find("alice", fingerprint="new")).created_at == NOW + 10
    assert await client.exists("moved:jobs-by-fp:alice:old", "moved:jobs-by-key:alice:k1") == 0
    assert await client.zcard("moved:jobs-expiry") == 1  # job 2's; job 1 has no ttl any more
    assert await client.pttl("moved:job:alice:job_0001") == -1


async def test_spend_keys_stay_in_the_namespace_and_expire_after_the_retention(connect):
    client, namespace = connect(), "team-a:spend"
    ledger = RedisSpendLedger(client, namespace)
    now = time.time()
    await ledger.record(entry("call:{1}", 0.2, 0.15, owner="alice:admin", at=now))
    await ledger.record(entry("b", 0.1, owner="bob", at=now))
    keys = [key async for key in client.scan_iter()]
    assert keys and all(key.startswith(f"{namespace}:") for key in keys)
    assert await client.get(f"{namespace}:schema") == "1"
    assert await client.hgetall(f"{namespace}:spend:alice%3Aadmin:call%3A%7B1%7D") == {
        "tool": "generate_image", "estimated_usd": "0.2", "actual_usd": "0.15", "at": repr(now)}
    assert await client.zrange(f"{namespace}:spend-by-time:alice%3Aadmin", 0, -1) == ["call:{1}"]
    retention = RETENTION_DAYS * DAY_S
    for key in (f"{namespace}:spend:bob:b", f"{namespace}:spend-by-time:bob"):
        assert retention - 60 < await client.ttl(key) <= retention + 1


async def test_two_clients_recording_spend_at_once_lose_none_and_leave_one_member_per_call(connect):
    first, second = RedisSpendLedger(connect(), "race"), RedisSpendLedger(connect(), "race")
    calls = 100

    async def spender(ledger: RedisSpendLedger, me: str) -> None:
        for number in range(calls):
            await ledger.record(entry(f"{me}-{number}", 0.25, 0.125, at=TODAY + number))
            # The other spender records the same call at once, at another time and with another cost, as an
            # estimate and its actual cost recorded by two processes would be.
            shared = entry(f"shared-{number}", 0.5, None if me == "A" else 0.4, at=TODAY + number + (me == "B"))
            await ledger.record(shared)

    await asyncio.gather(spender(first, "A"), spender(second, "B"))
    client = connect()
    members = await client.zrange("race:spend-by-time:alice", 0, -1, withscores=True)
    assert sorted(call for call, _ in members) == sorted(
        [f"{me}-{n}" for me in "AB" for n in range(calls)] + [f"shared-{n}" for n in range(calls)])
    for call, score in members:  # each member's time is its hash's: the two were written together
        assert float(await client.hget(f"race:spend:alice:{call}", "at")) == score
    spent = await first.spent_since("alice", TODAY)
    shared = sum(0.5 if score == TODAY + int(call[7:]) else 0.4 for call, score in members if call[:7] == "shared-")
    assert spent == pytest.approx(2 * calls * 0.125 + shared)


async def test_spend_entries_gone_behind_the_ledgers_back_are_skipped_and_dropped(connect):
    client = connect()
    ledger = RedisSpendLedger(client, "lost")
    for call in ("a", "b", "c"):
        await ledger.record(entry(call, 0.1, 0.1))
    await client.delete("lost:spend:alice:b")  # e.g. a maxmemory policy
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.2)
    assert [t.calls for t in await ledger.totals("alice", TODAY)] == [2]
    assert await client.zrange("lost:spend-by-time:alice", 0, -1) == ["a", "c"]


async def test_a_spend_entry_past_the_retention_is_gone_and_trimmed_from_the_owners_set(connect):
    client = connect()
    ledger = RedisSpendLedger(client, "old")
    retention = RETENTION_DAYS * DAY_S
    await ledger.record(entry("ancient", 1.0, 1.0, at=time.time() - retention - DAY_S))
    assert [key async for key in client.scan_iter("old:spend*")] == []  # expired on arrival, set and all
    await ledger.record(entry("old", 0.5, 0.5, at=TODAY - 10 * DAY_S))
    await ledger.record(entry("new", 0.1, 0.1, at=TODAY - 10 * DAY_S + retention + 1))  # 400 days and 1 s later
    assert await client.zrange("old:spend-by-time:alice", 0, -1) == ["new"]
    assert await ledger.spent_since("alice", 0) == pytest.approx(0.1)


async def test_a_redis_restart_in_the_middle_of_a_call_costs_a_pause_not_the_write():
    # The client the server uses (redis_common.redis_client): a write that meets the restart is tried again
    # once Redis is back, so a paid image's cost is still booked (its catalogue entry alike).
    server = RedisServer().start()
    client = redis_client(server.url)
    try:
        ledger = RedisSpendLedger(client, "restart")
        await ledger.record(entry("before", 0.1))
        port = server.port
        server.stop()
        restart = threading.Timer(0.3, lambda: server.start(attempts=1, port=port))
        restart.start()
        await ledger.record(entry("during", 0.2, 0.15))  # sent while nothing listens: refused, then retried
        restart.join()
        assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.15)  # a fresh store: the retried write
    finally:
        await client.aclose()
        server.stop()
