"""What the state store adds to a call: the SQLite operations a generate (catalogue one image) and an edit-session
turn (read the session, append the turn, catalogue the image) make, timed on a real file in a temp folder.

    .venv/bin/python benchmarks/state_overhead.py [--calls 500]

Prints p50/p95 per kind of call in milliseconds, against the 5 ms (p95) target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from gpt_image_2_mcp.adapters.sqlite_database import SqliteDatabase
from gpt_image_2_mcp.adapters.sqlite_image_catalogue import SqliteImageCatalogue
from gpt_image_2_mcp.adapters.sqlite_session_repository import SqliteSessionRepository
from gpt_image_2_mcp.domain.catalogue import ImageRecord, new_image_id
from gpt_image_2_mcp.domain.render_settings import RenderOptions
from gpt_image_2_mcp.domain.sessions import EditSession
from gpt_image_2_mcp.domain.values import SavedImage

TARGET_P95_MS = 5.0


def record(owner: str, session_id: str | None = None, turn: int | None = None) -> ImageRecord:
    image_id = new_image_id()
    image = SavedImage(f"/images/{image_id}.png", f"{image_id}.png", 1024, 1024, 1_500_000, "image/png", False,
                       (64769, 123456), image_id)
    return ImageRecord(image_id, owner, image, "a lighthouse at dusk, oil painting", time.time(),
                       {"size": "1024x1024", "quality": "medium"}, session_id, turn)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


async def measure(calls: int, folder: Path) -> dict[str, list[float]]:
    database = SqliteDatabase(str(folder / "state.sqlite3"))
    catalogue = SqliteImageCatalogue(database)
    sessions = SqliteSessionRepository(database, max_sessions=20, ttl_ms=3_600_000)
    session = EditSession(id="es_bench", created_at=time.time(), options=RenderOptions())
    session.record("start", ("/images/first.png",), time.time(), None, ("img_first",))
    await sessions.add(session)
    await catalogue.add([record("local")])  # warm: the file exists and is migrated, as after the first call
    timings: dict[str, list[float]] = {"generate (catalogue 1 image)": [], "session turn (get, append, catalogue)": []}
    for _ in range(calls):
        started = time.perf_counter()
        await catalogue.add([record("local")])
        timings["generate (catalogue 1 image)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        current = await sessions.get("local", "es_bench")
        turn = current.record("next", ("/images/next.png",), time.time(), current.last.turn, ("img_next",))
        await sessions.append_turn("local", "es_bench", turn)
        await catalogue.add([record("local", "es_bench", turn.turn)])
        timings["session turn (get, append, catalogue)"].append(time.perf_counter() - started)
    database.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        timings = asyncio.run(measure(args.calls, Path(folder)))
    print(f"| state operations per call, SQLite, {args.calls} calls | p50 | p95 | target (p95) |")
    print("|---|---|---|---|")
    for name, samples in timings.items():
        p50, p95 = percentiles(samples)
        verdict = "met" if p95 < TARGET_P95_MS else "MISSED"
        print(f"| {name} | {p50:.2f} ms | {p95:.2f} ms | < {TARGET_P95_MS:.0f} ms: {verdict} |")


if __name__ == "__main__":
    main()
