"""GPT_IMAGE_2_STATE_URL: every accepted form, and a refusal that says what is accepted."""

import pytest

from gpt_image_2_mcp.entrypoints.state_location import StateLocation, without_credentials


@pytest.mark.parametrize("text, kind, path", [
    (None, "sqlite", None),
    ("  ", "sqlite", None),
    ("memory://", "memory", None),
    ("sqlite:///var/lib/gpt/state.sqlite3", "sqlite", "/var/lib/gpt/state.sqlite3"),
    ("sqlite:////var/lib/gpt/state.sqlite3", "sqlite", "/var/lib/gpt/state.sqlite3"),
    ("sqlite:///tmp/with%20space.sqlite3", "sqlite", "/tmp/with space.sqlite3"),
    ("redis://localhost:6379/0", "redis", None),
    ("redis://:secret@10.0.0.5:6380/2", "redis", None),
    ("rediss://user:secret@cache.example:6380", "redis", None),
])
def test_every_documented_form_is_accepted(text, kind, path):
    location = StateLocation.parse(text)
    assert location.kind == kind
    if path:
        assert location.path == path


def test_the_default_is_a_file_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert StateLocation.parse(None).path == str(tmp_path / "gpt-image-2-mcp" / "state.sqlite3")


@pytest.mark.parametrize("text, fragment", [
    ("postgres://db/x", "one of sqlite:///"),
    ("sqlite:///", "absolute path"),
    ("sqlite://relative/x.sqlite3", "absolute path"),
    ("sqlite:relative.sqlite3", "absolute path"),
    ("redis://host:port/0", "numeric port"),
    ("redis:///0", "with a host"),
    ("redis://host:6379/zero", "database is a number"),
    ("memory://somewhere", "one of"),
])
def test_a_url_that_names_no_store_says_what_is_accepted(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        StateLocation.parse(text)


def test_credentials_never_show():
    location = StateLocation.parse("redis://:hunter2@cache:6379/0")
    assert "hunter2" not in str(location)
    assert without_credentials("rediss://me:pw@h:1/0") == "rediss://***@h:1/0"
