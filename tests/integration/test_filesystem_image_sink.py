"""FilesystemImageSink on a real filesystem (tmp_path)."""

import errno
import os
import re
from pathlib import Path

import pytest

from gpt_image_2_mcp.adapters.filesystem_image_sink import FilesystemImageSink, default_output_dir
from gpt_image_2_mcp.domain.errors import OutputLocationError


def test_names_carry_time_random_suffix_and_label(tmp_path):
    sink = FilesystemImageSink(default_dir=tmp_path)
    folder = sink.prepare(None)
    stored = sink.save(b"abc", folder=folder, extension="png", prefix=None, label="2")
    assert re.fullmatch(r"image-\d{8}-\d{6}-[0-9a-f]{6}-2\.png", stored.filename)
    assert Path(stored.path).read_bytes() == b"abc" and stored.size_bytes == 3
    umask = os.umask(0)
    os.umask(umask)
    assert Path(stored.path).stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


@pytest.mark.parametrize("prefix, stem", [
    ("Café", "Café"), ("写真", "写真"), ("naïve logo", "naïve-logo"), ("Ελληνικά", "Ελληνικά"),
    ("Cafe\u0301", "Café"),  # decomposed é: written composed, as the user typed it on another system
    ("a/b\\c:d*e?", "a-b-c-d-e"), ("../..", "image"),
])
def test_a_prefix_keeps_letters_of_any_script_and_drops_what_a_file_name_cannot_hold(tmp_path, prefix, stem):
    stored = FilesystemImageSink(default_dir=tmp_path).save(b"x", folder=str(tmp_path), extension="png",
                                                             prefix=prefix, label=None)
    assert stored.filename.startswith(f"{stem}-") and Path(stored.path).parent == tmp_path


def test_nothing_is_ever_overwritten_and_no_temporary_file_is_left(tmp_path, monkeypatch):
    sink = FilesystemImageSink(default_dir=tmp_path)
    monkeypatch.setattr("secrets.token_hex", lambda n: "ab" * n)  # force the same name every time
    first = sink.save(b"one", folder=str(tmp_path), extension="png", prefix="x", label=None)
    second = sink.save(b"two", folder=str(tmp_path), extension="png", prefix="x", label=None)
    assert first.path != second.path
    assert Path(first.path).read_bytes() == b"one" and Path(second.path).read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.filename, second.filename])


def test_a_failed_write_is_rescued_to_the_temp_folder(tmp_path, monkeypatch):
    rescue = tmp_path / "rescue"
    sink = FilesystemImageSink(default_dir=tmp_path / "out", rescue_dir=rescue)
    folder = sink.prepare(None)
    real_write = FilesystemImageSink._write

    def full_disk(target, name, data, rescued):
        if Path(target) == Path(folder):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(target, name, data, rescued)

    monkeypatch.setattr(FilesystemImageSink, "_write", staticmethod(full_disk))
    stored = sink.save(b"paid for", folder=folder, extension="png", prefix=None, label=None)
    assert stored.rescued and Path(stored.path).parent == rescue
    assert Path(stored.path).read_bytes() == b"paid for"
    assert list(Path(folder).iterdir()) == []


def test_a_write_that_fails_half_way_leaves_no_partial_file(tmp_path, monkeypatch):
    sink = FilesystemImageSink(default_dir=tmp_path / "out", rescue_dir=tmp_path / "rescue")
    folder = sink.prepare(None)

    def broken_link(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "link", broken_link)
    monkeypatch.setattr(os, "replace", broken_link)
    with pytest.raises(OutputLocationError, match="Free some disk space"):
        sink.save(b"x", folder=folder, extension="png", prefix=None, label=None)
    assert list(Path(folder).iterdir()) == [] and list((tmp_path / "rescue").iterdir()) == []


@pytest.mark.parametrize("folder", ["/etc", "/etc/cron.d", "/proc/self", "/usr/bin", "/", "~/.ssh", "~/.aws/x"])
def test_sensitive_folders_are_refused(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(OutputLocationError, match="GPT_IMAGE_2_ALLOW_UNSAFE_OUTPUT_DIR"):
        FilesystemImageSink(default_dir=tmp_path).prepare(folder)


def test_a_symlink_into_a_system_folder_is_refused(tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    with pytest.raises(OutputLocationError, match="/etc"):
        FilesystemImageSink(default_dir=tmp_path).prepare(str(link))


def test_the_unsafe_switch_lifts_the_refusal(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    sink = FilesystemImageSink(default_dir=tmp_path, allow_unsafe=True)
    assert sink.prepare("~/.ssh/images") == str((tmp_path / ".ssh" / "images").resolve())


def test_an_output_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputLocationError):
        FilesystemImageSink(default_dir=tmp_path).prepare(str(tmp_path / "file"))


def test_the_default_folder_is_per_project_under_the_user_data_folder(tmp_path):
    repo = tmp_path / "My Project"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    data = tmp_path / "data"
    from_root = default_output_dir(repo, data)
    from_deep = default_output_dir(repo / "src" / "deep", data)
    assert from_root == from_deep
    assert from_root.parent == data / "images" and re.fullmatch(r"My-Project-[0-9a-f]{8}", from_root.name)
    other = tmp_path / "other"
    other.mkdir()
    assert default_output_dir(other, data) != from_root


def test_a_server_started_in_the_filesystem_root_gets_a_sensible_folder(tmp_path):
    assert default_output_dir(Path("/"), tmp_path) == tmp_path / "images" / "default"


def test_the_environment_folder_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sink = FilesystemImageSink(configured_dir="pictures")
    assert sink.prepare(None) == str(tmp_path / "pictures")


def test_the_environment_folder_is_resolved_once_at_start_up(tmp_path, monkeypatch):
    start, later = tmp_path / "start", tmp_path / "later"
    start.mkdir()
    later.mkdir()
    monkeypatch.chdir(start)
    sink = FilesystemImageSink(configured_dir="pictures")
    monkeypatch.chdir(later)
    assert sink.default_folder == start / "pictures"
    assert sink.prepare("png") == str(start / "pictures" / "png")


def test_the_default_folder_is_absolute_and_resolved(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert FilesystemImageSink(default_dir=tmp_path / "link").default_folder == real
    assert FilesystemImageSink(configured_dir=str(tmp_path / "link")).default_folder == real


def test_a_relative_output_dir_lands_under_the_default_folder_never_the_working_directory(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    sink = FilesystemImageSink(default_dir=tmp_path / "default")
    folder = sink.prepare("images")
    assert folder == str(tmp_path / "default" / "images")
    stored = sink.save(b"x", folder=folder, extension="png", prefix=None, label=None)
    assert Path(stored.path).parent == tmp_path / "default" / "images"
    assert list(cwd.iterdir()) == []


def test_a_relative_output_dir_follows_the_configured_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sink = FilesystemImageSink(configured_dir=str(tmp_path / "configured"), default_dir=tmp_path / "unused")
    assert sink.prepare("cats/big") == str(tmp_path / "configured" / "cats" / "big")


def test_a_relative_output_dir_that_climbs_out_of_the_default_folder_is_refused_as_typed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    sink = FilesystemImageSink(default_dir=tmp_path / "out")
    for climbing in ("../.ssh", "..", "drafts/../../elsewhere"):
        with pytest.raises(OutputLocationError, match="leads out of the default output folder"):
            sink.prepare(climbing)
    with pytest.raises(OutputLocationError, match=r"credentials folder .*\.ssh"):
        sink.prepare("~/.ssh")  # said outright, it meets the folder checks
    assert sink.prepare("drafts/../kept") == str(tmp_path / "out" / "kept")
    assert not (tmp_path / "elsewhere").exists()


def test_an_output_dir_no_folder_can_be_is_refused_and_a_blank_one_is_the_default(tmp_path):
    sink = FilesystemImageSink(default_dir=tmp_path / "out")
    with pytest.raises(OutputLocationError, match="is a URL"):
        sink.prepare("http://127.0.0.1/x")
    with pytest.raises(OutputLocationError, match="NUL character"):
        sink.prepare("drafts\0x")
    assert sink.prepare("   ") == str(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_folders_inside_the_default_folder_need_no_root_but_others_do(tmp_path):
    sink = FilesystemImageSink(default_dir=tmp_path / "default")
    roots = [(tmp_path / "project").as_uri()]
    assert sink.prepare("images", roots=roots) == str(tmp_path / "default" / "images")
    with pytest.raises(OutputLocationError, match="GPT_IMAGE_2_ENFORCE_ROOTS=0"):
        sink.prepare(str(tmp_path / "elsewhere"), roots=roots)  # outside the default folder, and in no root
    assert not (tmp_path / "elsewhere").exists()
    assert sink.prepare(str(tmp_path / "project" / "art"), roots=roots) == str(tmp_path / "project" / "art")


def test_a_confined_sink_writes_only_under_its_configured_folder(tmp_path):
    """Served over HTTP the callers are remote: no output_dir may leave the configured folder, by path or link."""
    sink = FilesystemImageSink(configured_dir=str(tmp_path / "out"), confined=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    assert sink.prepare("drafts") == str(tmp_path / "out" / "drafts")
    assert sink.prepare(str(tmp_path / "out" / "abs")) == str(tmp_path / "out" / "abs")
    for escaping in (str(tmp_path / "elsewhere"), "../elsewhere", "link/elsewhere", "~"):
        with pytest.raises(OutputLocationError, match="outside the folder this server keeps your images in"):
            sink.prepare(escaping)
    assert not (tmp_path / "elsewhere").exists()
