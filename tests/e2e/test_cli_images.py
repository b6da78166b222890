"""`gpt-image-2-mcp generate` and `edit` as a shell user runs them: the installed console script, the fake
backend, relative paths taken from the shell's folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from gpt_image_2_mcp.domain.render_settings import SIZE_RULES
from tests.e2e.conftest import server_env
from tests.fakes.fake_openai_server import FakeOpenAIServer
from tests.redis_server import free_port


def run(script: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([script, *args], cwd=cwd, env=server_env(cwd, **env), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def shell_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shell"
    folder.mkdir()
    return folder


def test_edit_takes_relative_images_and_output_dir_from_the_shell_and_prints_the_structured_result(script,
                                                                                                  tmp_path):
    cwd = shell_folder(tmp_path)
    made = run(script, cwd, "generate", "a teapot", "--size", "1536x1024", "--output-dir", "drafts", "--quiet")
    assert made.returncode == 0, made.stderr
    original = Path(made.stdout.strip())
    relative = str(original.relative_to(cwd))  # drafts/image-….png
    edited = run(script, cwd, "edit", "make the teapot blue", "--image", relative, "--output-dir", "final",
                 "--quality", "low", "--prefix", "blue", "--json")
    assert edited.returncode == 0, edited.stderr
    result = json.loads(edited.stdout)
    (image,) = result["images"]
    assert Path(image["file_path"]).parent == cwd / "final" and image["filename"].startswith("blue-")
    assert (image["width"], image["height"]) == (1536, 1024)  # an edit keeps the input's size under 'auto'
    assert image["uri"] == f"image://{image['image_id']}"
    assert result["requested"]["images"] == [str(original)] and result["applied"]["quality"] == "low"
    assert result["backend"] == "fake" and result["placeholder"] is True and result["cost_usd_estimated"] > 0
    assert "PLACEHOLDER" in edited.stderr  # not quiet: the notes and the summary go to stderr
    assert "estimated cost $" in edited.stderr and "(placeholder: nothing was spent)" in edited.stderr
    catalogue = json.loads(run(script, cwd, "images", "--json", "--limit", "1").stdout)
    assert catalogue[0]["id"] == image["image_id"] and catalogue[0]["prompt"] == "make the teapot blue"


def test_an_output_dir_with_a_colon_is_a_folder_of_the_shell_and_an_empty_one_the_default(script, tmp_path):
    cwd = shell_folder(tmp_path)
    stamped = run(script, cwd, "generate", "a clock", "--output-dir", "run-10:52", "--quiet")
    empty = run(script, cwd, "generate", "a clock", "--output-dir", "", "--quiet")
    assert stamped.returncode == 0 and empty.returncode == 0, stamped.stderr + empty.stderr
    assert Path(stamped.stdout.strip()).parent == cwd / "run-10:52"
    assert Path(empty.stdout.strip()).parent == cwd / "out"  # GPT_IMAGE_2_OUTPUT_DIR, not the shell's folder


def test_a_call_above_the_confirmation_threshold_goes_ahead_with_confirm_cost(script, tmp_path):
    cwd = shell_folder(tmp_path)
    with FakeOpenAIServer() as fake:
        env = {"OPENAI_API_KEY": "sk-confirm-0123456789", "OPENAI_BASE_URL": fake.base_url,
               "GPT_IMAGE_2_CONFIRM_ABOVE_USD": "0.001"}
        refused = run(script, cwd, "generate", "a vase", "--quiet", **env)
        sent_after_refusal = len(fake.requests_to("/v1/images/generations"))
        confirmed = run(script, cwd, "generate", "a vase", "--quiet", "--confirm-cost", **env)
    assert refused.returncode == 2 and "--confirm-cost" in refused.stderr and "$0.0010" in refused.stderr
    assert sent_after_refusal == 0
    assert confirmed.returncode == 0 and Path(confirmed.stdout.strip()).is_file()


def test_the_fake_backend_spends_nothing_so_it_asks_no_confirmation_and_meets_no_budget(script, tmp_path):
    cwd = shell_folder(tmp_path)
    made = run(script, cwd, "generate", "a vase", "--quiet", GPT_IMAGE_2_CONFIRM_ABOVE_USD="0.001",
               GPT_IMAGE_2_BUDGET_USD_PER_DAY="0.001")
    assert made.returncode == 0 and Path(made.stdout.strip()).is_file(), made.stderr


def test_sigterm_cancels_a_call_like_ctrl_c_and_releases_its_estimate(script, tmp_path):
    cwd = shell_folder(tmp_path)
    state = tmp_path / "state.sqlite3"
    proc = subprocess.Popen([script, "generate", "a slow kite", "--quiet"], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server_env(cwd, GPT_IMAGE_2_FAKE_LATENCY_MS="30000",
                                           GPT_IMAGE_2_STATE_URL=f"sqlite://{state}"))
    try:
        deadline = time.monotonic() + 30
        while not booked(state) and time.monotonic() < deadline:  # the estimate is on the ledger: it is in flight
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143 and out == "" and "Traceback" not in err
    with contextlib.closing(sqlite3.connect(state)) as db:  # sqlite3's own `with` does not close
        assert db.execute("SELECT actual_usd FROM spend").fetchall() == [(0.0,)]  # released, not left pending
    assert not (cwd / "out").exists() or list((cwd / "out").iterdir()) == []


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_once_the_images_are_saved_still_reports_books_and_catalogues_them(script, tmp_path, sent, code):
    # The test holds the state file's write lock from the moment the estimate is booked, so the call saves its
    # images and then waits to book their cost: the signal comes exactly there. It used to lose the outcome:
    # files on disk, nothing printed, nothing catalogued, the estimate left on the ledger.
    cwd = shell_folder(tmp_path)
    state, out = tmp_path / "state.sqlite3", cwd / "out"
    proc = subprocess.Popen([script, "generate", "a late kite", "--n", "2", "--quiet"], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server_env(cwd, GPT_IMAGE_2_FAKE_LATENCY_MS="1000",
                                           GPT_IMAGE_2_STATE_URL=f"sqlite://{state}"))
    try:
        wait_for(lambda: booked(state))
        with contextlib.closing(sqlite3.connect(state, isolation_level=None)) as lock:
            lock.execute("BEGIN IMMEDIATE")  # the settle now waits (busy timeout 10 s)
            wait_for(lambda: len(list(out.glob("*.png"))) == 2)
            proc.send_signal(sent)
            time.sleep(0.5)  # not a measurement: time for the signal to land while the booking waits
            lock.execute("COMMIT")
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code and "Traceback" not in stderr, stderr
    assert sorted(stdout.split()) == sorted(str(p) for p in out.glob("*.png"))
    assert "Interrupted once the images were saved" in stderr
    with contextlib.closing(sqlite3.connect(state)) as db:
        assert db.execute("SELECT actual_usd FROM spend").fetchall() == [(0.0,)]  # booked: the fake's $0
        assert db.execute("SELECT count(*) FROM images").fetchone() == (2,)


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def booked(state: Path) -> bool:
    if not state.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(state)) as db:
            return bool(db.execute("SELECT count(*) FROM spend").fetchone()[0])
    except sqlite3.OperationalError:  # the server is still creating its tables
        return False


def test_quiet_prints_only_the_paths_and_nothing_on_stderr(script, tmp_path):
    cwd = shell_folder(tmp_path)
    generated = run(script, cwd, "generate", "two cups", "--n", "2", "-q")
    paths = generated.stdout.splitlines()
    assert generated.returncode == 0 and generated.stderr == ""
    assert len(paths) == 2 and all(Path(p).is_absolute() and Path(p).exists() for p in paths)
    edited = run(script, cwd, "edit", "compose them", "--image", *paths, "--quiet")
    assert edited.returncode == 0 and edited.stderr == ""
    (path,) = edited.stdout.splitlines()
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_quiet_silences_warnings_of_a_real_api_call_too(script, tmp_path):
    cwd = shell_folder(tmp_path)
    with FakeOpenAIServer() as fake:
        env = {"OPENAI_API_KEY": "sk-quiet-0123456789", "OPENAI_BASE_URL": fake.base_url}
        busy = FakeOpenAIServer.error(429, "slow down", type="rate_limit_error", headers={"retry-after": "0"})
        fake.script("generations", busy)
        loud = run(script, cwd, "generate", "a kite", **env)
        fake.script("generations", busy)
        quiet = run(script, cwd, "generate", "a kite", "--quiet", **env)
    assert loud.returncode == quiet.returncode == 0, loud.stderr + quiet.stderr
    assert "retrying" in loud.stderr  # the retry warned ...
    assert "estimated cost $" in loud.stderr and "nothing was spent" not in loud.stderr  # a real call's cost
    assert quiet.stderr == "" and Path(quiet.stdout.strip()).is_file()  # ... except under --quiet


def test_edit_with_a_mask_and_the_mask_is_checked(script, tmp_path):
    cwd = shell_folder(tmp_path)
    Image.new("RGB", (1024, 1024), "white").save(cwd / "photo.png")
    mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (300, 300, 700, 700))  # transparent where the change goes
    mask.save(cwd / "mask.png")
    Image.new("RGBA", (512, 512), (0, 0, 0, 0)).save(cwd / "small-mask.png")
    masked = run(script, cwd, "edit", "a vase here", "--image", "photo.png", "--mask", "mask.png", "--json", "-q")
    wrong = run(script, cwd, "edit", "a vase here", "--image", "photo.png", "--mask", "small-mask.png", "-q")
    assert masked.returncode == 0, masked.stderr
    assert json.loads(masked.stdout)["requested"]["mask"] == str(cwd / "mask.png")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.startswith("error: ") and "mask" in wrong.stderr and "1024x1024" in wrong.stderr


def test_failures_say_what_to_fix_and_exit_2(script, tmp_path):
    cwd = shell_folder(tmp_path)
    no_image = run(script, cwd, "edit", "x")
    missing = run(script, cwd, "edit", "x", "--image", "nope.png", "-q")
    bad_size = run(script, cwd, "generate", "x", "--size", "1000x1000", "-q")
    assert no_image.returncode == 2 and "--image" in no_image.stderr
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.splitlines() == [missing.stderr.strip()]  # one line, no traceback
    assert str(cwd / "nope.png") in missing.stderr
    assert bad_size.returncode == 2 and "nearest valid size" in bad_size.stderr
    assert not list(cwd.rglob("*.png"))


def test_every_option_has_help_and_size_states_the_rules(script, tmp_path):
    for command in ("generate", "edit"):
        shown = run(script, tmp_path, command, "--help")
        assert shown.returncode == 0
        text = " ".join(shown.stdout.split())  # argparse wraps lines
        assert SIZE_RULES in text
        for option in ("--quality", "--n N", "--background", "--format", "--compression", "--output-dir",
                       "--prefix", "--backend", "--json", "--quiet"):
            assert option in text, (command, option)
    edit_help = " ".join(run(script, tmp_path, "edit", "--help").stdout.split())
    assert "--mask PATH PNG with an alpha channel" in edit_help and "--image PATH [PATH ...] 1..16" in edit_help


def test_a_full_stdout_is_said_on_stderr_with_the_saved_paths_and_a_closed_one_ends_quietly(script, tmp_path):
    cwd = shell_folder(tmp_path)
    env = server_env(cwd)
    with open("/dev/full", "w") as full:
        on_full = subprocess.run([script, "generate", "a kite", "-q"], cwd=cwd, env=env, stdout=full,
                                 stderr=subprocess.PIPE, text=True, timeout=60)
        listing = subprocess.run([script, "images"], cwd=cwd, env=env, stdout=full, stderr=subprocess.PIPE,
                                 text=True, timeout=60)
    reader, writer = os.pipe()
    os.close(reader)  # the reader went away before a line was written, as `| head -0` would
    try:
        closed = subprocess.run([script, "generate", "a kite", "-q"], cwd=cwd, env=env, stdout=writer,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    saved = min((cwd / "out").glob("*.png"), key=lambda p: p.stat().st_mtime_ns)  # the first call's
    assert on_full.returncode == 2 and "Traceback" not in on_full.stderr
    assert "cannot write to stdout (No space left on device)" in on_full.stderr and str(saved) in on_full.stderr
    assert listing.returncode == 2 and "cannot write to stdout" in listing.stderr
    assert closed.returncode == 141 and closed.stderr == ""
    assert len(list((cwd / "out").glob("*.png"))) == 2  # both calls saved their image all the same


def test_a_terminal_that_cannot_show_a_path_or_prompt_gets_it_escaped_not_a_traceback(script, tmp_path):
    # An ASCII stdout (a narrow locale; Windows redirecting to a file uses its code page) and an 'ü' in the
    # folder: the image was paid for, so its path must come out, escaped, with exit 0.
    cwd = shell_folder(tmp_path)
    made = run(script, cwd, "generate", "a cat", "--output-dir", "Bilder-ü", "--quiet", PYTHONIOENCODING="ascii")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().endswith(".png") and "Bilder-\\xfc" in made.stdout
    listed = run(script, cwd, "images", PYTHONIOENCODING="ascii")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr and "Bilder-\\xfc" in listed.stdout


def test_a_prompt_the_locale_cannot_decode_reaches_the_api_as_the_terminal_typed_it(script, tmp_path):
    cwd = shell_folder(tmp_path)
    made = subprocess.run([script, "generate", "漢字の猫".encode(), "--json"], cwd=cwd, capture_output=True,
                          timeout=60, stdin=subprocess.DEVNULL,
                          env=server_env(cwd, LC_ALL="POSIX", PYTHONUTF8="0", PYTHONIOENCODING="utf-8"))
    assert made.returncode == 0, made.stderr.decode(errors="replace")
    assert json.loads(made.stdout)["prompt"] == "漢字の猫"


def test_started_with_stdout_or_stdin_closed_it_says_so_and_names_the_saved_image(script, tmp_path):
    # A launcher that closes the descriptors it does not use: a traceback, and the paid image's path lost.
    cwd = shell_folder(tmp_path)

    def closed(redirect: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f'"$0" "$@" {redirect}', script, *args], cwd=cwd, env=server_env(cwd),
                              capture_output=True, text=True, timeout=60)

    made = closed(">&-", "generate", "a cat", "--quiet")
    assert made.returncode == 2 and "Traceback" not in made.stderr
    [saved] = list((cwd / "out").glob("*.png"))  # server_env's output folder
    assert "cannot write to stdout (stdout is closed)" in made.stderr and str(saved) in made.stderr
    for redirect in ("<&-", ">&-"):
        served = closed(redirect)
        assert served.returncode == 2 and "stdin or stdout is closed" in served.stderr, served.stderr


def test_over_http_a_closed_stdin_is_no_matter(script, tmp_path):
    # A service manager may start the HTTP server with no stdin at all: it needs none.
    port = free_port()
    with subprocess.Popen(["bash", "-c", f'exec "$0" serve --transport http --port {port} <&-', script],
                          cwd=tmp_path, env=server_env(tmp_path), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as server:
        try:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                        assert answer.status == 200
                        break
                except OSError:
                    assert server.poll() is None, server.stderr.read()
                    time.sleep(0.1)
            else:
                raise AssertionError("the HTTP server never answered /healthz")
        finally:
            server.terminate()
            server.wait(timeout=30)
