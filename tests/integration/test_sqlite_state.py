"""The SQLite state file beyond the contract: real processes racing on one file, schema versions, first use."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import anyio
import pytest

from gpt_image_2_mcp.adapters import sqlite_database
from gpt_image_2_mcp.adapters.in_memory_spend_ledger import InMemorySpendLedger
from gpt_image_2_mcp.adapters.sqlite_database import MIGRATIONS, SqliteDatabase, use_wal
from gpt_image_2_mcp.adapters.sqlite_image_catalogue import SqliteImageCatalogue
from gpt_image_2_mcp.adapters.sqlite_job_store import FIRST_PAGE, PAGE_AFTER, SqliteJobStore, find_query
from gpt_image_2_mcp.adapters.sqlite_session_repository import SqliteSessionRepository
from gpt_image_2_mcp.adapters.sqlite_spend_ledger import SPENT, TOTALS, SqliteSpendLedger
from gpt_image_2_mcp.domain.errors import JobNotFound, StateStoreError
from gpt_image_2_mcp.domain.render_settings import RenderOptions
from gpt_image_2_mcp.domain.sessions import EditSession
from gpt_image_2_mcp.domain.spend import DAY_S, SpendEntry
from tests.contracts.stores import Clock
from tests.contracts.test_image_catalogue_contract import record
from tests.contracts.test_job_store_contract import NOW, job
from tests.contracts.test_spend_ledger_contract import TODAY, entry

ROUNDS = 25

# One writer process. Each round it reads the session, waits at a file barrier until the other writer has read it
# too, then appends the next turn: both append the same turn number at the same moment, so exactly one must win
# and the other must get SessionMovedOn. Prints the turns it won and the messages it lost with.
WRITER = """
import asyncio, json, os, sys, time
from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase
from gpt_image_2_mcp.adapters.sqlite_session_repository import SqliteSessionRepository
from gpt_image_2_mcp.adapters.sqlite_spend_ledger import SPENT, TOTALS, SqliteSpendLedger
from gpt_image_2_mcp.domain.errors import SessionMovedOn
from gpt_image_2_mcp.domain.sessions import Turn

path, folder, me, other, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

def barrier(number):
    open(os.path.join(folder, f"{number}-{me}"), "w").close()
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(folder, f"{number}-{other}")):
        if time.monotonic() > deadline:
            sys.exit(f"writer {me}: writer {other} never reached round {number}")
        time.sleep(0.001)

async def main():
    db = SqliteDatabase(path)
    repository = SqliteSessionRepository(db)
    won, lost = [], []
    for number in range(rounds):
        base = await repository.get("alice", "es_race")
        barrier(number)
        turn = Turn(base.next_turn, f"{me} round {number}", (f"/images/{me}-{number}.png",), time.time(),
                    len(base.turns))
        try:
            await repository.append_turn("alice", "es_race", turn)
            won.append(turn.turn)
        except SessionMovedOn as error:
            lost.append(str(error))
    db.close()
    print(json.dumps({"won": won, "lost": lost}))

asyncio.run(main())
"""

LEDGER_CALLS = 60

# One spender process: after a file barrier (so both run at once), it records the estimate and then the actual cost
# of LEDGER_CALLS calls of its own, and an estimate of each shared call (which the other process records too).
SPENDER = """
import asyncio, dataclasses, os, sys, time
from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase
from gpt_image_2_mcp.adapters.sqlite_spend_ledger import SqliteSpendLedger
from gpt_image_2_mcp.domain.spend import SpendEntry

path, folder, me, other, calls, at = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), \
    float(sys.argv[6])
open(os.path.join(folder, f"go-{me}"), "w").close()
while not os.path.exists(os.path.join(folder, f"go-{other}")):
    time.sleep(0.001)

async def main():
    db = SqliteDatabase(path)
    ledger = SqliteSpendLedger(db)
    for number in range(calls):
        mine = SpendEntry(owner="alice", call_id=f"{me}-{number}", tool="generate_image", estimated_usd=0.25,
                          at=at + number)
        await ledger.record(mine)
        await ledger.record(dataclasses.replace(mine, actual_usd=0.125))
        await ledger.record(SpendEntry(owner="alice", call_id=f"shared-{number}", tool="edit_image",
                                       estimated_usd=0.5, at=at + number))
    db.close()

asyncio.run(main())
"""


@pytest.fixture
async def database(tmp_path):
    db = SqliteDatabase(str(tmp_path / "state.sqlite3"))
    yield db
    db.close()


def raw(path) -> sqlite3.Connection:
    return sqlite3.connect(str(path))


async def test_two_processes_appending_to_one_session_leave_a_linear_chain(tmp_path):
    path = tmp_path / "state.sqlite3"
    db = SqliteDatabase(str(path))
    repository = SqliteSessionRepository(db)
    start = EditSession(id="es_race", created_at=1.0, options=RenderOptions(), owner="alice")
    start.record("first", ("/images/first.png",), 1.0, None)
    await repository.add(start)
    finished: list[subprocess.CompletedProcess[bytes]] = []

    async def writer(me: str, other: str) -> None:
        command = [sys.executable, "-c", WRITER, str(path), str(tmp_path), me, other, str(ROUNDS)]
        finished.append(await anyio.run_process(command, check=False))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            group.start_soon(writer, "A", "B")
            group.start_soon(writer, "B", "A")
    assert [done.returncode for done in finished] == [0, 0], [done.stderr.decode() for done in finished]
    outcomes = [json.loads(done.stdout) for done in finished]

    turns = (await repository.get("alice", "es_race")).turns
    db.close()
    assert [t.turn for t in turns] == list(range(1, ROUNDS + 2))
    assert all(t.parent_turn == t.turn - 1 for t in turns[1:])  # each winner built on the turn just before it
    won = sorted(n for outcome in outcomes for n in outcome["won"])
    lost = [message for outcome in outcomes for message in outcome["lost"]]
    assert won == list(range(2, ROUNDS + 2))  # one winner per round
    assert len(lost) == ROUNDS and all("moved on to turn" in message for message in lost)


async def test_a_file_from_a_newer_release_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "state.sqlite3"
    newer = len(MIGRATIONS) + 1
    connection = raw(path)
    connection.execute(f"PRAGMA user_version = {newer}")
    connection.close()
    db = SqliteDatabase(str(path))
    with pytest.raises(StateStoreError, match=rf"schema version {newer}.*Upgrade gpt-image-2-mcp") as caught:
        await SqliteImageCatalogue(db).get("alice", "img_0001")
    db.close()
    assert str(path) in str(caught.value)
    connection = raw(path)
    assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []  # no table was made in it
    connection.close()


async def test_first_use_creates_the_folder_and_the_schema(tmp_path):
    path = tmp_path / "not" / "yet" / "state.sqlite3"
    db = SqliteDatabase(str(path))
    assert not path.parent.exists()  # opening is lazy: nothing happens before the first query
    await SqliteImageCatalogue(db).add([record(1)])
    db.close()
    connection = raw(path)
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "turns", "images"} <= tables
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    connection.close()


async def test_an_empty_file_is_migrated_from_version_zero(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.touch()
    db = SqliteDatabase(str(path))
    catalogue = SqliteImageCatalogue(db)
    await catalogue.add([record(1)])
    assert (await catalogue.get("alice", "img_0001")) == record(1)
    db.close()
    connection = raw(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    connection.close()


async def test_the_file_is_in_wal_mode(database):
    await SqliteImageCatalogue(database).add([record(1)])
    connection = raw(database.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # WAL is a property of the file
    connection.close()


async def test_a_file_that_is_not_a_database_fails_naming_the_file(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database, just some text long enough to have a header" * 10)
    db = SqliteDatabase(str(path))
    with pytest.raises(StateStoreError, match="point the state store at another file") as caught:
        await SqliteImageCatalogue(db).get("alice", "img_0001")
    db.close()
    assert str(path) in str(caught.value)


async def test_a_closed_database_opens_again_on_next_use(database):
    sessions = SqliteSessionRepository(database)
    start = EditSession(id="es_1", created_at=1.0, options=RenderOptions(), owner="alice")
    start.record("first", ("/images/first.png",), 1.0, None)
    await sessions.add(start)
    database.close()
    assert [s.id for s in await sessions.list("alice")] == ["es_1"]


async def test_a_write_that_raises_leaves_nothing_behind(database):
    def half_done(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO images (owner, image_id, created_at, data) VALUES ('alice', 'img_x', 1, '{}')")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        await database.write(half_done)
    assert await database.read(lambda c: c.execute("SELECT COUNT(*) FROM images").fetchone()[0]) == 0
    await SqliteImageCatalogue(database).add([record(1)])  # the connection is usable after the rollback


async def test_a_version_1_file_holding_sessions_gains_the_jobs_table_and_keeps_the_sessions(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite3"
    with monkeypatch.context() as old_release:  # the release before jobs knew migration 1 only
        old_release.setattr(sqlite_database, "MIGRATIONS", MIGRATIONS[:1])
        old = SqliteDatabase(str(path))
        start = EditSession(id="es_1", created_at=1.0, options=RenderOptions(), owner="alice")
        start.record("first", ("/images/first.png",), 1.0, None)
        await SqliteSessionRepository(old, ttl_ms=0).add(start)
        old.close()
    connection = raw(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
    connection.close()

    db = SqliteDatabase(str(path))
    jobs = SqliteJobStore(db, clock=Clock())
    await jobs.add(job(1))
    assert (await jobs.get("alice", "job_0001")).job_id == "job_0001"
    sessions = await SqliteSessionRepository(db, ttl_ms=0).list("alice")
    db.close()
    assert [(s.id, [t.prompt for t in s.turns]) for s in sessions] == [("es_1", ["first"])]
    connection = raw(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    connection.close()


async def test_a_job_whose_ttl_ran_out_is_gone_before_any_sweep(database):
    clock = Clock()
    jobs = SqliteJobStore(database, clock=clock)
    await jobs.add(job(1, ttl_ms=1_000, idempotency_key="k"))
    await jobs.add(job(2, ttl_ms=None))
    clock.now = NOW + 1 + 1  # exactly at the end of job 1's ttl: still there
    assert (await jobs.get("alice", "job_0001")).job_id == "job_0001"
    clock.now += 0.001
    with pytest.raises(JobNotFound, match="job_0001"):
        await jobs.get("alice", "job_0001")
    assert await jobs.find("alice", fingerprint="fp1") is None
    assert await jobs.find("alice", idempotency_key="k") is None
    assert [j.job_id for j in (await jobs.page("alice")).jobs] == ["job_0002"]
    count = "SELECT COUNT(*) FROM jobs"
    assert await database.read(lambda c: c.execute(count).fetchone()[0]) == 2  # left out, not yet deleted
    assert await jobs.sweep(clock.now) == 1
    assert await database.read(lambda c: c.execute(count).fetchone()[0]) == 1


async def test_find_and_page_use_the_indexes_and_sort_nothing(database):
    await SqliteJobStore(database).add(job(1))  # migrates the file
    cursor = {"created_at": NOW, "job_id": "job_0001"}
    plans = {
        "by fingerprint": find_query("alice", "fp1", None, 0.0),
        "by idempotency key": find_query("alice", None, "k", 0.0),
        "by both": find_query("alice", "fp1", "k", 0.0),
        "first page": (FIRST_PAGE, {"owner": "alice", "limit": 3}),
        "later page": (PAGE_AFTER, {"owner": "alice", "limit": 3, **cursor}),
    }
    for name, (query, parameters) in plans.items():
        plan = await database.read(lambda c, q=query, p=parameters: c.execute(
            f"EXPLAIN QUERY PLAN {q}", {**p, "now": NOW}).fetchall())
        details = " ".join(row[3] for row in plan)
        assert "USING INDEX jobs_" in details and "TEMP B-TREE" not in details, (name, details)


async def test_a_version_2_file_holding_jobs_and_sessions_gains_the_spend_table_and_keeps_them(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite3"
    with monkeypatch.context() as old_release:  # the release before the spend ledger knew migrations 1 and 2
        old_release.setattr(sqlite_database, "MIGRATIONS", MIGRATIONS[:2])
        old = SqliteDatabase(str(path))
        start = EditSession(id="es_1", created_at=1.0, options=RenderOptions(), owner="alice")
        start.record("first", ("/images/first.png",), 1.0, None)
        await SqliteSessionRepository(old, ttl_ms=0).add(start)
        await SqliteJobStore(old, clock=Clock()).add(job(1))
        old.close()
    connection = raw(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'spend'").fetchall() == []
    connection.close()

    db = SqliteDatabase(str(path))
    ledger = SqliteSpendLedger(db)
    await ledger.record(entry("a", 0.2, 0.15))
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.15)
    assert (await SqliteJobStore(db, clock=Clock()).get("alice", "job_0001")).job_id == "job_0001"
    sessions = await SqliteSessionRepository(db, ttl_ms=0).list("alice")
    db.close()
    assert [(s.id, [t.prompt for t in s.turns]) for s in sessions] == [("es_1", ["first"])]
    connection = raw(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 3
    connection.close()


async def test_two_processes_recording_spend_at_once_lose_no_entry(tmp_path):
    path = tmp_path / "state.sqlite3"
    db = SqliteDatabase(str(path))
    ledger = SqliteSpendLedger(db)
    await ledger.record(entry("before", 0.0))  # migrates the file before the race, as a running server would have
    finished: list[subprocess.CompletedProcess[bytes]] = []

    async def spender(me: str, other: str) -> None:
        command = [sys.executable, "-c", SPENDER, str(path), str(tmp_path), me, other, str(LEDGER_CALLS),
                   repr(TODAY + 60)]
        finished.append(await anyio.run_process(command, check=False))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            group.start_soon(spender, "A", "B")
            group.start_soon(spender, "B", "A")
    assert [done.returncode for done in finished] == [0, 0], [done.stderr.decode() for done in finished]

    rows = await db.read(lambda c: c.execute(
        "SELECT call_id, estimated_usd, actual_usd FROM spend WHERE call_id != 'before'").fetchall())
    spent = await ledger.spent_since("alice", TODAY)
    db.close()
    own = sorted(f"{me}-{n}" for me in "AB" for n in range(LEDGER_CALLS))
    assert sorted(call for call, *_ in rows if not call.startswith("shared-")) == own
    assert all(actual == 0.125 for call, _, actual in rows if not call.startswith("shared-"))
    assert sorted(call for call, *_ in rows if call.startswith("shared-")) == sorted(
        f"shared-{n}" for n in range(LEDGER_CALLS))  # recorded by both, one row each
    assert spent == pytest.approx(2 * LEDGER_CALLS * 0.125 + LEDGER_CALLS * 0.5)


async def test_a_call_in_the_last_millisecond_of_a_day_is_counted_on_that_day_as_in_memory(database):
    ledger, memory = SqliteSpendLedger(database), InMemorySpendLedger()
    for made in (ledger, memory):
        await made.record(entry("late", 0.1, 0.1, at=TODAY - 0.0004))  # 23:59:59.9996 yesterday
        await made.record(entry("early", 0.2, None, at=TODAY))
    assert await ledger.totals("alice", TODAY - DAY_S) == await memory.totals("alice", TODAY - DAY_S)
    assert [t.calls for t in await ledger.totals("alice", TODAY - DAY_S)] == [1, 1]
    assert await ledger.spent_since("alice", TODAY) == await memory.spent_since("alice", TODAY) == 0.2


async def test_spend_reads_use_the_owner_and_time_index(database):
    await SqliteSpendLedger(database).record(entry("a", 0.1))  # migrates the file
    for query in (SPENT, TOTALS):
        plan = await database.read(lambda c, q=query: c.execute(
            f"EXPLAIN QUERY PLAN {q}", {"owner": "alice", "since": TODAY}).fetchall())
        details = " ".join(row[3] for row in plan)
        assert "USING INDEX spend_by_time (owner=? AND at>?)" in details, details


async def test_recording_an_entry_again_without_its_actual_cost_clears_it(database):
    ledger = SqliteSpendLedger(database)
    await ledger.record(entry("a", 0.2, 0.15))
    await ledger.record(SpendEntry(owner="alice", call_id="a", tool="edit_image", estimated_usd=0.3, at=TODAY + 5))
    assert await ledger.spent_since("alice", TODAY) == pytest.approx(0.3)
    row = await database.read(lambda c: c.execute("SELECT tool, actual_usd, at FROM spend").fetchall())
    assert row == [("edit_image", None, TODAY + 5)]


class SwitchRefused:
    """A connection whose WAL switch is refused a few times: what SQLite answers, without waiting, to one of
    several processes that open a new file at the same moment."""

    def __init__(self, refusals: int, error: str = "database is locked") -> None:
        self.refusals, self.error, self.calls = refusals, error, 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.refusals:
            raise sqlite3.OperationalError(self.error)


def test_the_wal_switch_is_tried_again_while_the_file_is_locked_and_other_errors_are_not():
    locked = SwitchRefused(refusals=3)
    use_wal(locked)
    assert locked.calls == 4
    broken = SwitchRefused(refusals=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        use_wal(broken)
    assert broken.calls == 1
