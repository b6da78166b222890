"""Closing stdin ends the server: what it opened is closed first, then the process leaves without the interpreter's
teardown."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import RawServer, server_env


def test_closing_stdin_ends_the_server_with_its_state_file_closed(tmp_path):
    state = tmp_path / "state.sqlite3"
    server = RawServer(tmp_path, GPT_IMAGE_2_STATE_URL=f"sqlite://{state}")
    result = server.call("generate_image", {"prompt": "a lighthouse", "inline": "none"})
    assert not result.get("isError"), result
    assert (tmp_path / "state.sqlite3-wal").exists()  # open in WAL mode while serving

    server.close()

    assert server.proc.returncode == 0
    # SQLite removes the WAL file when its last connection closes: shutdown closed it (no interpreter teardown
    # is left to do it after the fast exit).
    assert not (tmp_path / "state.sqlite3-wal").exists()
    listed = RawServer(tmp_path, GPT_IMAGE_2_STATE_URL=f"sqlite://{state}")
    try:
        assert len(listed.request("resources/list", {})["result"]["resources"]) == 1
    finally:
        listed.close()


def test_what_the_server_logged_reaches_stderr_before_it_leaves(tmp_path, script):
    proc = subprocess.run([script], input="", capture_output=True, text=True, env=server_env(tmp_path), timeout=60)
    assert proc.returncode == 0
    assert "Sessions and the image catalogue are kept in" in proc.stderr  # the last line logged at start-up
    assert proc.stdout == ""
