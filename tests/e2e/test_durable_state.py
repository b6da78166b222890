"""State outlives the process: sessions and images survive kill -9 and are shared by processes on one store."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from pathlib import Path

import pytest
import redis

from tests.conftest import write_png
from tests.e2e.conftest import RawServer, server_env, stdio_client


@pytest.fixture(params=["sqlite", "redis"])
def state_env(request, tmp_path) -> dict[str, str]:
    """The state store the processes of one test share: an SQLite file, or a real redis-server (emptied first,
    since the server keeps its default namespace)."""
    if request.param == "sqlite":
        return {"GPT_IMAGE_2_STATE_URL": f"sqlite://{tmp_path / 'state.sqlite3'}"}
    server = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as client:
        client.flushdb()
    return {"GPT_IMAGE_2_STATE_URL": server.url}


def text_of(result: dict) -> str:
    return result["content"][0]["text"]


def test_a_session_survives_kill_minus_9_in_the_middle_of_a_turn(tmp_path, state_env):
    image = write_png(tmp_path / "in.png", (64, 64))
    first = RawServer(tmp_path, GPT_IMAGE_2_FAKE_LATENCY_MS="400", **state_env)
    started = first.call("start_edit_session", {"prompt": "a cat", "images": [str(image)], "inline": "none"})
    session_id = started["structuredContent"]["session_id"]
    second = first.call("continue_edit_session", {"session_id": session_id, "prompt": "a hat", "inline": "none"})
    assert second["structuredContent"]["turn"] == 2
    first.start_request("tools/call", {"name": "continue_edit_session", "arguments": {
        "session_id": session_id, "prompt": "never finished", "inline": "none"}})
    first.kill()  # in the middle of turn 3

    after = RawServer(tmp_path, **state_env)
    try:
        listed = after.call("list_edit_sessions", {})["structuredContent"]["sessions"]
        assert [(s["session_id"], s["turns"]) for s in listed] == [(session_id, 2)]
        third = after.call("continue_edit_session", {"session_id": session_id, "prompt": "a bow",
                                                     "inline": "none"})
        assert (third["structuredContent"]["turn"], third["structuredContent"]["parent_turn"]) == (3, 2)
        link = next(b for b in started["content"] if b["type"] == "resource_link")
        read = after.request("resources/read", {"uri": link["uri"]})["result"]["contents"][0]
        path = Path(started["structuredContent"]["images"][0]["file_path"])
        assert base64.b64decode(read["blob"]) == path.read_bytes()
    finally:
        after.close()


def test_the_same_call_right_after_kill_minus_9_runs_anew_instead_of_joining_the_dead_job(tmp_path, state_env):
    arguments = {"prompt": "a lighthouse at dusk", "inline": "none"}
    first = RawServer(tmp_path, GPT_IMAGE_2_FAKE_LATENCY_MS="30000", **state_env)
    first.start_request("tools/call", {"name": "generate_image", "arguments": arguments,
                                       "_meta": {"progressToken": 1}})
    while not any(n.get("method") == "notifications/progress" for n in first.notifications):
        first.notifications.append(json.loads(first.proc.stdout.readline()))  # until the job is under way
    first.kill()

    after = RawServer(tmp_path, **state_env)  # restarted at once: the dead job has missed no heartbeat yet
    try:
        again = after.call("generate_image", arguments)
    finally:
        after.close()
    assert again["isError"] is False, again  # it joined the dead job and failed ~20 s later
    assert Path(again["structuredContent"]["images"][0]["file_path"]).is_file()
    assert "shares its result" not in json.dumps(again)


def test_two_processes_continuing_one_session_at_once_never_lose_or_repeat_a_turn(tmp_path, state_env):
    image = write_png(tmp_path / "in.png", (64, 64))
    servers = [RawServer(tmp_path, GPT_IMAGE_2_FAKE_LATENCY_MS="500", **state_env) for _ in range(2)]
    try:
        started = servers[0].call("start_edit_session", {"prompt": "x", "images": [str(image)], "inline": "none"})
        session_id = started["structuredContent"]["session_id"]
        results: dict[int, dict] = {}

        def continue_on(index: int) -> None:
            results[index] = servers[index].call("continue_edit_session", {
                "session_id": session_id, "prompt": f"from process {index}", "inline": "none"})

        threads = [threading.Thread(target=continue_on, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        won = [r for r in results.values() if not r.get("isError")]
        lost = [r for r in results.values() if r.get("isError")]
        assert len(won) + len(lost) == 2 and won
        for loser in lost:  # a clear "moved on", with the paid-for image kept on disk
            assert "moved on to turn 2" in text_of(loser) and "continue_edit_session again" in text_of(loser)
            kept = text_of(loser).rsplit("saved at: ", 1)[1].rstrip(".")
            assert Path(kept).exists()
        history = servers[1].call("list_edit_sessions", {})["structuredContent"]["sessions"][0]["history"]
        turns = [t["turn"] for t in history]
        assert turns == list(range(1, len(turns) + 1)) and len(turns) == 1 + len(won)
        assert sorted(r["structuredContent"]["turn"] for r in won) == turns[1:]
    finally:
        for server in servers:
            server.close()


async def test_resources_list_pages_through_images_and_new_images_are_announced(tmp_path, state_env):
    seen = []

    async def on_message(message):
        seen.append(type(getattr(message, "root", message)).__name__)

    async with stdio_client(tmp_path, message_handler=on_message, **state_env) as client:
        made = [await client.call_tool("generate_image", {"prompt": f"image {i}", "inline": "none", "n": 2})
                for i in range(3)]
        first = await client.list_resources()
        uris = [str(r.uri) for r in first.resources]
        cursor = first.next_cursor
        while cursor:
            page = await client.list_resources(cursor=cursor)
            uris += [str(r.uri) for r in page.resources]
            cursor = page.next_cursor
        templates = await client.list_resource_templates()
        preview = await client.read_resource(made[0].structured_content["images"][0]["uri"] + "/preview")
    expected = [i["uri"] for r in reversed(made) for i in r.structured_content["images"]]
    assert sorted(uris) == sorted(expected) and len(uris) == 6
    assert {t.uri_template for t in templates.resource_templates} >= {"image://{image_id}",
                                                                      "image://{image_id}/preview"}
    assert preview.contents[0].mime_type in ("image/jpeg", "image/webp")
    assert seen.count("ResourceListChangedNotification") == 3


async def test_an_image_whose_file_is_away_reads_as_a_clear_error_leaves_the_list_and_comes_back_with_it(
        tmp_path, state_env):
    async with stdio_client(tmp_path, **state_env) as client:
        kept = await client.call_tool("generate_image", {"prompt": "kept", "inline": "none"})
        away = await client.call_tool("generate_image", {"prompt": "away", "inline": "none"})
        image = away.structured_content["images"][0]
        Path(image["file_path"]).rename(tmp_path / "elsewhere.png")  # a disk unmounted, a file moved away
        with pytest.raises(Exception, match="cannot be served"):
            await client.read_resource(image["uri"])
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        (tmp_path / "elsewhere.png").rename(image["file_path"])  # and back, as it was
        back = await client.read_resource(image["uri"])
        listed_again = [str(r.uri) for r in (await client.list_resources()).resources]
    assert listed == [kept.structured_content["images"][0]["uri"]]
    assert back.contents and listed_again == [image["uri"], kept.structured_content["images"][0]["uri"]]


def test_a_page_of_images_is_filled_past_the_ones_whose_files_are_gone(tmp_path, state_env, script):
    server = RawServer(tmp_path, **state_env)
    made = [server.call("generate_image", {"prompt": f"image {i}", "inline": "none"}) for i in range(4)]
    server.close()
    paths = [m["structuredContent"]["images"][0]["file_path"] for m in made]
    for gone in paths[2:]:  # the two newest
        Path(gone).unlink()
    listed = subprocess.run([script, "images", "--limit", "2", "--json"], env=server_env(tmp_path, **state_env),
                            capture_output=True, text=True, timeout=60)
    assert [i["path"] for i in json.loads(listed.stdout)] == [paths[1], paths[0]]  # not an empty page


def test_the_cli_lists_sessions_and_recent_images(tmp_path, state_env, script):
    image = write_png(tmp_path / "in.png", (64, 64))
    server = RawServer(tmp_path, **state_env)
    started = server.call("start_edit_session", {"prompt": "a red kite", "images": [str(image)], "inline": "none"})
    server.call("generate_image", {"prompt": "a lighthouse", "inline": "none"})
    server.close()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([script, *args], env=server_env(tmp_path, **state_env), capture_output=True,
                              text=True, timeout=60)

    sessions = json.loads(cli("sessions", "--json").stdout)
    assert [s["session_id"] for s in sessions] == [started["structuredContent"]["session_id"]]
    images = json.loads(cli("images", "--limit", "1", "--json").stdout)
    assert [i["prompt"] for i in images] == ["a lighthouse"]
    table = cli("images").stdout
    assert "a red kite" in table and "a lighthouse" in table
    assert started["structuredContent"]["images"][0]["file_path"] in table
