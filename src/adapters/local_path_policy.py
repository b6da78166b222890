"""One policy for local paths: how a typed path is read, and which places images may not be read from or written to.

Both the image sink (writes) and the image source (reads) use this module, so a folder refused for one reason
is refused the same way everywhere. Every check looks at the path as given AND at its resolved form (symlinks
followed): the first catches `~/.ssh/x` even when ~/.ssh is itself a link, the second catches a harmless-looking
link that points into a refused folder.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

# Writes: no image belongs in an operating-system folder (Linux, macOS, Windows). /private/* are macOS's real
# /etc and /var, which the short names link to.
SYSTEM_DIRS = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/run",
    "/var/run", "/var/lib", "/var/log", "/System", "/Library", "/private/etc", "/private/var",
    "C:/Windows", "C:/Program Files", "C:/Program Files (x86)", "C:/ProgramData",
)

# Reads: images legitimately live in system folders (/usr/share/backgrounds, ...), so reads only refuse the
# kernel's virtual files (process memory, environment, devices) ...
NO_READ_SYSTEM_DIRS = ("/proc", "/sys", "/dev")
# ... and the system's own secrets. On macOS /etc is a link to /private/etc; both forms are caught because
# refused folders are compared in their resolved form too.
NO_READ_SYSTEM_SECRETS = (
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd",
    "/etc/master.passwd", "/etc/spwd.db",  # BSD and macOS password databases
    "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/etc/pki/tls/private",
    "/etc/krb5.keytab", "/etc/wireguard", "/etc/NetworkManager/system-connections",
    "C:/Windows/System32/config",  # the SAM and SECURITY registry hives
)

# Reads and writes: where people keep credentials under their home folder. An entry refuses itself and anything
# below it, so files (.netrc) and folders (.ssh) share one list. Images are never legitimately there, and a
# prompt-injected model asking for "~/.ssh/id_rsa as a reference image" must not get it uploaded.
HOME_CREDENTIALS = (
    # keys and key rings
    ".ssh", ".gnupg", ".password-store", ".local/share/keyrings", "Library/Keychains",
    # cloud and cluster CLIs
    ".aws", ".azure", ".config/gcloud", ".oci", ".kube", ".docker", ".config/containers/auth.json",
    ".terraform.d", ".vault-token", ".config/rclone", ".config/op",  # .config/op: the 1Password CLI
    # code hosts and package registries
    ".git-credentials", ".config/git/credentials", ".config/gh", ".config/hub", ".netrc", ".npmrc",
    ".pypirc", ".gem/credentials", ".cargo/credentials", ".cargo/credentials.toml", ".m2/settings.xml",
    # databases
    ".pgpass", ".my.cnf",
    # shell and REPL histories: pasted tokens end up there
    ".bash_history", ".zsh_history", ".local/share/fish/fish_history", ".python_history",
    ".psql_history", ".mysql_history",
)

_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


def path_from_user(text: str, base: Path | None = None) -> Path:
    """A path from what a user typed: absolute, ~, a Windows drive path, file:// (incl. UNC shares), or
    relative to `base` (the working directory when `base` is None)."""
    if text.lower().startswith("file:"):
        parsed = urlparse(text)
        raw = unquote(parsed.path)
        if parsed.netloc and parsed.netloc.lower() != "localhost":
            raw = f"//{parsed.netloc}{raw}"  # a UNC share
        if re.match(r"^/[A-Za-z]:[/\\]", raw):
            raw = raw[1:]  # file:///C:/Users/... -> C:/Users/...
        text = raw
    path = Path(text).expanduser()
    # On POSIX a drive path is not "absolute" to pathlib, but it must not be glued onto `base`.
    if not path.is_absolute() and not _DRIVE.match(text):
        path = (base or Path.cwd()) / path
    return path


_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]+://")  # two letters at least: C:/ is a drive, not a scheme


def is_other_url(text: str) -> bool:
    """Whether `text` is a URL of a scheme other than file: (a path of its own, which path_from_user reads)."""
    lowered = text.lower()
    return bool(_URL_SCHEME.match(lowered)) and not lowered.startswith("file:")


def climbs_out(text: str) -> bool:
    """Whether a relative path a user typed leads out of the folder it is taken from ('..' past its top), by name.
    Absolute, ~, drive and file:// paths are not relative: False."""
    if text.lower().startswith("file:") or _DRIVE.match(text):
        return False
    path = Path(text).expanduser()
    return not path.is_absolute() and Path(os.path.normpath(path)).parts[:1] == ("..",)


@functools.lru_cache(maxsize=256)
def _probe_case_insensitive(existing: str) -> bool:
    # The name with its case swapped opens the same object only on a case-insensitive file system. This asks
    # the file system itself, which is right for a case-sensitive APFS volume or a case-insensitive share
    # mounted on Linux, where a platform guess would be wrong. Cached: mounts do not change under a server.
    path = Path(existing)
    swapped = path.with_name(path.name.swapcase())
    try:
        return os.path.exists(swapped) and os.path.samefile(path, swapped)
    except OSError:  # vanished between the two looks
        return False


def case_insensitive_fs(folder: Path) -> bool:
    """Whether names in `folder` compare case-insensitively, probed on the nearest existing folder whose name
    has letters; the platform's usual answer (macOS and Windows: yes) when nothing can be probed."""
    if folder.is_absolute():
        for candidate in (folder, *folder.parents):
            # os.path.exists, not Path.exists: an unreadable parent must answer "no", not raise.
            if candidate.name != candidate.name.swapcase() and os.path.exists(candidate):
                return _probe_case_insensitive(str(candidate))
    return sys.platform in ("darwin", "win32")


def _fold(path: Path) -> Path:
    # Case-insensitive file systems (APFS, NTFS) also ignore Unicode normalisation, so compare NFC forms too.
    return Path(unicodedata.normalize("NFC", str(path)).casefold())


def is_within(path: Path, folder: Path, *, case_insensitive: bool | None = None) -> bool:
    """Whether `path` is `folder` or below it, by name (no symlinks followed). Case is ignored when the file
    system holding `folder` ignores it; `case_insensitive` overrides that detection (None: detect)."""
    if case_insensitive is None:
        case_insensitive = case_insensitive_fs(folder)
    if case_insensitive:
        path, folder = _fold(path), _fold(folder)
    return path == folder or path.is_relative_to(folder)


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _first_hit(path: Path, folders: Iterable[Path], case_insensitive: bool | None) -> Path | None:
    # Compare the path as given and as resolved with each folder as named and as resolved: a link on either
    # side (a link into ~/.ssh, or ~/.ssh itself a link elsewhere) must not open a way round the refusal.
    forms = {path, _resolved(path)}
    texts = [_loose(str(form)) for form in forms]
    for folder in folders:
        named = str(folder)
        resolved = os.path.realpath(named) if folder.is_absolute() else named
        # Most folders are ruled out by their text alone, before the case probe and pathlib's comparison, which
        # cost ~20 times as much; those two decide for the few that are not.
        if not (_may_contain(named, texts) or _may_contain(resolved, texts)):
            continue
        fold = case_insensitive_fs(folder) if case_insensitive is None else case_insensitive  # probe once
        if any(is_within(p, t, case_insensitive=fold) for p in forms for t in {folder, Path(resolved)}):
            return folder
    return None


def _loose(text: str) -> str | None:
    """An ASCII path's text with case and separator style folded away; None for any other text."""
    return text.lower().replace("\\", "/") if text.isascii() else None


def _may_contain(folder: str, loose_paths: Sequence[str | None]) -> bool:
    """False only when no path can be within `folder` by any rule is_within applies. A path within a folder has
    the folder's parts as its first parts; for ASCII text, folding case (what every case rule comes to there)
    and separators keeps that a prefix of the text. Non-ASCII text (Unicode forms) is left to is_within."""
    prefix = _loose(folder)
    return prefix is None or any(text is None or text.startswith(prefix) for text in loose_paths)


def _credential_reason(path: Path, home: Path | None, case_insensitive: bool | None) -> str | None:
    homes = (home,) if home else _homes_holding(path)
    hit = _first_hit(path, (h / name for h in homes for name in HOME_CREDENTIALS), case_insensitive)
    return f"the credentials folder {hit}" if hit else None


def _homes_holding(path: Path) -> list[Path]:
    """$HOME, and any account's home (from the password database) the path may lie in: a server started with
    HOME pointing elsewhere must still keep out of the user's ~/.ssh, and one run as root out of everyone's.
    Only homes the path can be in are checked, so the usual call costs what it did."""
    texts = [_loose(str(form)) for form in (path, _resolved(path))]
    others = [home for home in _account_homes() if _may_contain(str(home), texts)]
    return list(dict.fromkeys([Path.home(), *others]))


@functools.cache
def _account_homes() -> tuple[Path, ...]:
    try:
        import pwd
    except ImportError:  # Windows: no password database; $HOME is the home
        return ()
    homes = (Path(entry.pw_dir) for entry in pwd.getpwall())
    # "/" (daemons) would put every path "in" a home, and its credentials are not a user's.
    return tuple(dict.fromkeys(home for home in homes if home.is_absolute() and home != Path(home.anchor)))


def write_refusal(path: Path, home: Path | None = None, *, case_insensitive: bool | None = None) -> str | None:
    """Why no image may be written into the folder `path` (the filesystem root, a system folder, a
    credentials folder under `home`), or None when it may."""
    resolved = _resolved(path)
    if resolved == Path(resolved.anchor):
        return "the filesystem root"
    if hit := _first_hit(path, map(Path, SYSTEM_DIRS), case_insensitive):
        return f"the system folder {hit}"
    return _credential_reason(path, home, case_insensitive)


def read_refusal(path: Path, home: Path | None = None, *, case_insensitive: bool | None = None) -> str | None:
    """Why the file `path` may not be read as an image (kernel virtual files, system secrets, credentials
    under `home`), or None when it may. Ordinary system folders stay readable: images live there too."""
    if hit := _first_hit(path, map(Path, NO_READ_SYSTEM_DIRS), case_insensitive):
        return f"the system folder {hit}"
    if hit := _first_hit(path, map(Path, NO_READ_SYSTEM_SECRETS), case_insensitive):
        return f"the system secret {hit}"
    return _credential_reason(path, home, case_insensitive)


def within_roots(path: Path, roots: Sequence[str], *, case_insensitive: bool | None = None) -> bool:
    """Whether `path`, resolved, is inside one of the client's roots (file:// URIs or paths, also resolved)."""
    resolved = _resolved(path)
    return any(
        is_within(resolved, _resolved(path_from_user(root)), case_insensitive=case_insensitive) for root in roots
    )
