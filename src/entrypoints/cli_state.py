"""`gpt-image-2-mcp sessions` and `gpt-image-2-mcp images`: what the state store holds, for a person or a script."""

from __future__ import annotations

import argparse
import json
import sys

from gpt_image_2_mcp.domain.sessions import LOCAL_OWNER

from .container import Container
from .tool_outputs import iso_time, session_info
from .use_cases import UseCases, resolve, shut_down

OWNER_HELP = (f"whose: '{LOCAL_OWNER}' (default) is the stdio and CLI user; a user of the HTTP server is "
              "ISSUER#SUBJECT, e.g. 'tokens-file#alice' or 'https://login.example.com/#alice'")


def _positive(text: str) -> int:
    """A count of one or more (argparse reports the message as an error with exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    sessions = sub.add_parser("sessions", help="list live edit sessions (most recently used first)")
    sessions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    images = sub.add_parser("images", help="list recent images from the catalogue (newest first)")
    images.add_argument("--limit", type=_positive, default=20, help="how many images (default 20)")
    images.add_argument("--json", action="store_true", help="print JSON instead of a table")
    spend = sub.add_parser("spend", help="what image calls cost, per UTC day, from the spend ledger")
    spend.add_argument("--days", type=_positive, default=7, help="how many days back, today included (default 7)")
    spend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for command in (sessions, images, spend):
        command.add_argument("--owner", default=LOCAL_OWNER, metavar="OWNER", help=OWNER_HELP)


async def list_sessions(container: Container, as_json: bool, owner: str = LOCAL_OWNER) -> int:
    try:
        sessions = await (await UseCases(container).sessions()).list(owner)
    finally:
        await shut_down(container)
    infos = [session_info(s) for s in sessions]
    if as_json:
        print(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        return 0
    if not infos:
        print("No live edit sessions.", file=sys.stderr)
    for info in infos:
        print(f"{info.session_id}  updated {info.updated_at}  {info.turns} turn(s)  {info.last_image_path}  "
              f"{_short(info.last_prompt)}")
    return 0


async def list_images(container: Container, limit: int, as_json: bool, owner: str = LOCAL_OWNER) -> int:
    try:
        page = await (await UseCases(container).library()).page(owner, None, max(1, limit))
    finally:
        await shut_down(container)
    rows = [{"id": r.image_id, "created_at": iso_time(r.created_at), "size": f"{r.image.width}x{r.image.height}",
             "path": r.image.path, "prompt": r.prompt, "session_id": r.session_id, "turn": r.turn}
            for r in page.records]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No images in the catalogue yet.", file=sys.stderr)
    for row in rows:
        print(f"{row['id']}  {row['created_at']}  {row['size']}  {row['path']}  {_short(row['prompt'])}")
    return 0


async def list_spend(container: Container, days: int, as_json: bool, owner: str = LOCAL_OWNER) -> int:
    try:
        guard = await resolve(container.spend_guard)
        totals = await guard.totals(owner, days)
    finally:
        await shut_down(container)
    rows = [{"day": t.day, "calls": t.calls, "estimated_usd": t.estimated_usd, "actual_usd": t.actual_usd}
            for t in totals]
    summary = {"days": max(1, days), "calls": sum(r["calls"] for r in rows),
               "estimated_usd": round(sum(r["estimated_usd"] for r in rows), 6),
               "actual_usd": round(sum(r["actual_usd"] for r in rows), 6)}
    if as_json:
        print(json.dumps({"total": summary, "per_day": rows}, indent=2))
        return 0
    for row in rows:
        print(f"{row['day']}  {row['calls']:>4} call(s)  estimated ${row['estimated_usd']:.4f}  "
              f"actual ${row['actual_usd']:.4f}")
    print(f"total, last {summary['days']} day(s): {summary['calls']} call(s), estimated "
          f"${summary['estimated_usd']:.4f}, actual ${summary['actual_usd']:.4f}")
    return 0


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
