"""The local-path policy as pure functions: a fake home under tmp_path, explicit case rules where they matter."""

import os
import sys
from pathlib import Path

import pytest

from gpt_image_2_mcp.adapters import local_path_policy as policy
from gpt_image_2_mcp.adapters.local_path_policy import (
    case_insensitive_fs,
    is_within,
    path_from_user,
    read_refusal,
    within_roots,
    write_refusal,
)

# The tables below are the specification: they are written out, not read from the module, so dropping an entry
# from the policy fails a test.
SYSTEM_FOLDERS = [
    "/etc", "/proc", "/sys", "/dev", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/run",
    "/var/run", "/var/lib", "/var/log", "/System", "/Library", "/private/etc", "/private/var",
    "C:/Windows", "C:/Program Files", "C:/Program Files (x86)", "C:/ProgramData",
]
HOME_CREDENTIALS = [
    ".ssh", ".gnupg", ".password-store", ".local/share/keyrings", "Library/Keychains",
    ".aws", ".azure", ".config/gcloud", ".oci", ".kube", ".docker", ".config/containers/auth.json",
    ".terraform.d", ".vault-token", ".config/rclone", ".config/op",
    ".git-credentials", ".config/git/credentials", ".config/gh", ".config/hub", ".netrc", ".npmrc",
    ".pypirc", ".gem/credentials", ".cargo/credentials", ".cargo/credentials.toml", ".m2/settings.xml",
    ".pgpass", ".my.cnf",
    ".bash_history", ".zsh_history", ".local/share/fish/fish_history", ".python_history",
    ".psql_history", ".mysql_history",
]
NO_READ_SYSTEM_FOLDERS = ["/proc", "/sys", "/dev"]
NO_READ_SYSTEM_SECRETS = [
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd",
    "/etc/master.passwd", "/etc/spwd.db", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private",
    "/etc/pki/tls/private", "/etc/krb5.keytab", "/etc/wireguard", "/etc/NetworkManager/system-connections",
    "C:/Windows/System32/config",
]


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("system", SYSTEM_FOLDERS)
def test_every_system_folder_refuses_writes_into_it_and_below(system, home):
    for path in (path_from_user(system), path_from_user(f"{system}/images")):
        reason = write_refusal(path, home)
        assert reason and reason.startswith("the system folder ")
        named = Path(reason.removeprefix("the system folder "))
        # Named as given, or as another listed folder it links into (/var/run -> /run on Linux).
        assert named == Path(system) or Path(os.path.realpath(system)).is_relative_to(named)


def test_the_filesystem_root_refuses_writes(home):
    assert write_refusal(Path("/"), home) == "the filesystem root"


@pytest.mark.parametrize("name", HOME_CREDENTIALS)
def test_every_home_credentials_entry_refuses_reads_and_writes(name, home):
    expected = f"the credentials folder {home / name}"
    assert write_refusal(home / name, home) == expected
    assert write_refusal(home / name / "images", home) == expected
    assert read_refusal(home / name, home) == expected
    assert read_refusal(home / name / "key.png", home) == expected


@pytest.mark.parametrize("folder", NO_READ_SYSTEM_FOLDERS)
def test_kernel_virtual_folders_refuse_reads(folder, home):
    assert read_refusal(Path(folder) / "self" / "environ", home) == f"the system folder {folder}"


@pytest.mark.parametrize("secret", NO_READ_SYSTEM_SECRETS)
def test_system_secrets_refuse_reads(secret, home):
    assert read_refusal(path_from_user(secret), home) == f"the system secret {Path(secret)}"
    assert read_refusal(path_from_user(f"{secret}/inner"), home) == f"the system secret {Path(secret)}"


@pytest.mark.parametrize("allowed", [
    "/usr/share/backgrounds/sky.png",  # images live in ordinary system folders
    "/etc/passwd",  # not a secret
    "/etc/sshd-banner.png",  # a sibling with the same prefix as /etc/ssh
])
def test_ordinary_system_files_stay_readable(allowed, home):
    assert read_refusal(Path(allowed), home) is None


@pytest.mark.parametrize("name", ["Pictures/a.png", ".sshfoo/a.png", ".config/ghost/a.png", ".dockerignore"])
def test_ordinary_home_places_are_allowed(name, home):
    assert read_refusal(home / name, home) is None
    assert write_refusal(home / name, home) is None


def test_case_is_ignored_only_on_case_insensitive_file_systems(home):
    shouting = home / ".SSH" / "id_rsa"
    assert read_refusal(shouting, home, case_insensitive=True) == f"the credentials folder {home / '.ssh'}"
    assert write_refusal(home / ".SSH", home, case_insensitive=True) == f"the credentials folder {home / '.ssh'}"
    assert write_refusal(Path("/ETC/cron.d"), home, case_insensitive=True) == "the system folder /etc"
    assert read_refusal(shouting, home, case_insensitive=False) is None
    assert write_refusal(home / ".SSH", home, case_insensitive=False) is None


def test_unicode_forms_of_a_home_are_compared_by_the_full_rules(tmp_path):
    # A home named with a composed é, a path that spells it with e + a combining accent (as macOS hands names
    # over): on a case-insensitive file system both are the same folder, and the refusal must see that.
    home = tmp_path / "Jos\u00e9"
    home.mkdir()
    decomposed = Path(str(home).replace("\u00e9", "e\u0301")) / ".SSH"
    assert write_refusal(decomposed, home, case_insensitive=True) == f"the credentials folder {home / '.ssh'}"
    assert read_refusal(decomposed / "id_rsa", home, case_insensitive=True) == f"the credentials folder {home / '.ssh'}"
    assert write_refusal(decomposed, home, case_insensitive=False) is None
    assert write_refusal(home / "Pictures", home, case_insensitive=True) is None


def test_folders_the_path_cannot_be_in_are_ruled_out_without_probing_the_file_system(home, monkeypatch):
    probed: list[Path] = []
    monkeypatch.setattr(policy, "case_insensitive_fs", lambda folder: probed.append(folder) or False)
    assert write_refusal(home / "Pictures" / "cats", home) is None
    assert probed == []  # ~60 refused folders, none of them a prefix of the path's text
    assert write_refusal(home / ".ssh" / "keys", home) == f"the credentials folder {home / '.ssh'}"
    assert probed == [home / ".ssh"]


def test_is_within_compares_by_whole_names():
    assert is_within(Path("/a/b/c"), Path("/a/b"), case_insensitive=False)
    assert is_within(Path("/a/b"), Path("/a/b"), case_insensitive=False)
    assert not is_within(Path("/a/bc"), Path("/a/b"), case_insensitive=False)
    assert not is_within(Path("/A/B/c"), Path("/a/b"), case_insensitive=False)
    assert is_within(Path("/A/B/c"), Path("/a/b"), case_insensitive=True)
    # Case-insensitive file systems also ignore Unicode normalisation: é composed vs e + combining accent.
    assert is_within(Path("/Users/Jos\u00e9/x"), Path("/users/jose\u0301"), case_insensitive=True)


def test_a_symlink_into_a_refused_folder_is_refused(tmp_path, home):
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("secret")
    innocent = tmp_path / "holiday.png"
    innocent.symlink_to(home / ".ssh" / "id_rsa")
    folder_link = tmp_path / "pictures"
    folder_link.symlink_to(home / ".ssh")
    assert read_refusal(innocent, home) == f"the credentials folder {home / '.ssh'}"
    assert write_refusal(folder_link, home) == f"the credentials folder {home / '.ssh'}"
    etc_link = tmp_path / "etc-link"
    etc_link.symlink_to("/etc")
    assert write_refusal(etc_link, home) == "the system folder /etc"


def test_a_credentials_folder_that_is_itself_a_link_is_refused_where_it_points(tmp_path, home):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id_rsa").write_text("secret")
    (home / ".ssh").symlink_to(keys)
    assert read_refusal(keys / "id_rsa", home) == f"the credentials folder {home / '.ssh'}"
    assert write_refusal(keys, home) == f"the credentials folder {home / '.ssh'}"


def test_the_case_probe_asks_the_file_system(tmp_path):
    plain = tmp_path / "Plain"
    plain.mkdir()
    if (tmp_path / "pLAIN").exists():
        pytest.skip("the temporary folder is on a case-insensitive file system")
    assert not case_insensitive_fs(plain)
    assert not case_insensitive_fs(plain / "not-yet" / "made")  # probes the nearest existing folder
    # A case-swapped twin that opens the same folder is what a case-insensitive file system looks like.
    twin = tmp_path / "Twin"
    twin.mkdir()
    (tmp_path / "tWIN").symlink_to(twin)
    assert case_insensitive_fs(twin)
    assert case_insensitive_fs(twin / "not-yet")


def test_the_case_probe_falls_back_to_the_platform_when_nothing_has_letters():
    assert case_insensitive_fs(Path("/")) == (sys.platform in ("darwin", "win32"))


@pytest.mark.parametrize("text, expected", [
    ("file:///home/me/a.png", "/home/me/a.png"),
    ("file:///C:/Users/me/a.png", "C:/Users/me/a.png"),
    ("FILE:///C:/Users/me/a.png", "C:/Users/me/a.png"),
    ("file://localhost/tmp/x%20y.png", "/tmp/x y.png"),
    ("file://server/share/a.png", "//server/share/a.png"),
    ("C:\\Users\\me\\a.png", "C:\\Users\\me\\a.png"),
    ("D:/pictures/a.png", "D:/pictures/a.png"),
])
def test_paths_from_users_accept_file_urls_and_windows_paths(text, expected):
    assert str(path_from_user(text, base=Path("/base"))) == expected


def test_relative_paths_join_the_base_and_tilde_means_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert path_from_user("images/a.png", base=tmp_path) == tmp_path / "images" / "a.png"
    assert path_from_user("~/a.png", base=Path("/elsewhere")) == tmp_path / "home" / "a.png"
    monkeypatch.chdir(tmp_path)
    assert path_from_user("a.png") == tmp_path / "a.png"


def test_roots_contain_only_what_resolves_inside_them(tmp_path):
    project = tmp_path / "project"
    (project / "art").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    (project / "escape").symlink_to(other)
    roots = [project.as_uri()]
    assert within_roots(project / "art" / "a.png", roots)
    assert within_roots(project, roots)
    assert not within_roots(other / "a.png", roots)
    assert not within_roots(project / ".." / "other" / "a.png", roots)
    assert not within_roots(project / "escape" / "a.png", roots)  # a link inside the root pointing out
    assert within_roots(other / "a.png", [project.as_uri(), str(other)])  # plain paths are roots too


def test_a_root_given_through_a_link_contains_the_real_folder(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert within_roots(real / "a.png", [(tmp_path / "link").as_uri()])


def test_roots_follow_the_case_rule(tmp_path):
    project = tmp_path / "Project"
    project.mkdir()
    shouted = [Path(str(project).upper()).as_uri()]
    assert within_roots(project / "a.png", shouted, case_insensitive=True)
    assert not within_roots(project / "a.png", shouted, case_insensitive=False)


def test_percent_encoded_roots_are_decoded(tmp_path):
    spaced = tmp_path / "my project"
    spaced.mkdir()
    assert "%20" in spaced.as_uri()
    assert within_roots(spaced / "a.png", [spaced.as_uri()])


@pytest.mark.parametrize("text, climbs", [
    ("..", True), ("../x", True), ("a/../../x", True), ("../../x", True),
    ("a/../b", False), ("drafts", False), ("./x", False), ("..x", False),
    ("/abs/../..", False), ("~/..", False), ("file:///tmp/../..", False), ("C:/x/../..", False),
])
def test_climbs_out_tells_a_relative_path_leaving_its_folder(text, climbs):
    assert policy.climbs_out(text) is climbs


@pytest.mark.skipif(sys.platform == "win32", reason="the password database is POSIX")
def test_the_accounts_own_home_is_guarded_even_with_home_pointing_elsewhere(tmp_path, monkeypatch):
    import pwd

    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("HOME", str(tmp_path))  # a server started by a tool that redirects HOME
    assert write_refusal(real_home / ".ssh") == f"the credentials folder {real_home / '.ssh'}"
    assert read_refusal(real_home / ".aws" / "credentials") == f"the credentials folder {real_home / '.aws'}"
    assert write_refusal(tmp_path / ".ssh") == f"the credentials folder {tmp_path / '.ssh'}"  # $HOME's too
    assert write_refusal(real_home / "Pictures" / "drafts") is None
