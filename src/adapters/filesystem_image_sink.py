"""FilesystemImageSink: atomic, never-overwriting image files in a safe folder."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import platformdirs

from gpt_image_2_mcp.domain.errors import OutputLocationError
from gpt_image_2_mcp.domain.ports import ImageSink, StoredFile
from gpt_image_2_mcp.domain.values import SavedImage

log = logging.getLogger(__name__)

APP_NAME = "gpt-image-2-mcp"
UNSAFE_SWITCH = "GPT_IMAGE_2_ALLOW_UNSAFE_OUTPUT_DIR=1"
_SYSTEM_DIRS = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/run",
    "/var/run", "/var/lib", "/var/log", "/System", "/Library", "/private/etc", "/private/var",
    "C:/Windows", "C:/Program Files", "C:/Program Files (x86)", "C:/ProgramData",
)
_HOME_SECRETS = (
    ".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", ".config/gcloud", ".config/gh",
    ".password-store", ".netrc", ".pgpass", ".git-credentials", ".npmrc", ".pypirc",
)
_UNSAFE_PREFIX = re.compile(r"[^A-Za-z0-9._-]+")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import, while single-threaded; mkstemp's 0600 is widened to what umask allows


def path_from_user(text: str, base: Path | None = None) -> Path:
    """A path from what a user typed: absolute, ~, relative to `base` (the working directory), or file://."""
    if text.lower().startswith("file:"):
        parsed = urlparse(text)
        raw = unquote(parsed.path)
        if parsed.netloc and parsed.netloc.lower() != "localhost":
            raw = f"//{parsed.netloc}{raw}"  # a UNC share
        if re.match(r"^/[A-Za-z]:[/\\]", raw):
            raw = raw[1:]  # file:///C:/Users/... -> C:/Users/...
        text = raw
    path = Path(text).expanduser()
    if not path.is_absolute() and not re.match(r"^[A-Za-z]:[/\\]", text):
        path = (base or Path.cwd()) / path
    return path


def _within(path: Path, folder: Path) -> bool:
    try:
        return path == folder or path.is_relative_to(folder)
    except ValueError:
        return False


def sensitive_reason(path: Path, home: Path | None = None) -> str | None:
    """Why `path` is a folder no image should be written to, or None."""
    resolved = Path(os.path.realpath(path))
    if resolved == Path(resolved.anchor):
        return "the filesystem root"
    for system in _SYSTEM_DIRS:
        if _within(resolved, Path(system)) or _within(path, Path(system)):
            return f"the system folder {system}"
    home = home or Path.home()
    for name in _HOME_SECRETS:
        secret = home / name
        if _within(resolved, Path(os.path.realpath(secret))) or _within(path, secret):
            return f"the credentials folder {secret}"
    return None


def default_output_dir(cwd: Path | None = None, data_dir: Path | None = None) -> Path:
    """A per-project folder under the OS user data folder: project = git root, else the working directory.

    Desktop clients start servers in '/', which names no project: that case gets 'default'.
    """
    cwd = (cwd or Path.cwd()).resolve()
    base = (data_dir or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))) / "images"
    project = next((p for p in (cwd, *cwd.parents) if (p / ".git").exists()), cwd)
    if project == Path(project.anchor) or project == Path.home():
        return base / "default"
    digest = hashlib.sha256(str(project).encode()).hexdigest()[:8]
    name = _UNSAFE_PREFIX.sub("-", project.name).strip("-.") or "project"
    return base / f"{name}-{digest}"


class FilesystemImageSink(ImageSink):
    """Writes images atomically (temp file, then link into place) and never replaces an existing file."""

    def __init__(
        self,
        configured_dir: str | None = None,
        allow_unsafe: bool = False,
        default_dir: Path | None = None,
        rescue_dir: Path | None = None,
        clock=time.localtime,
    ) -> None:
        self._configured = configured_dir
        self._allow_unsafe = allow_unsafe
        self._default = default_dir
        self._rescue = rescue_dir or Path(tempfile.gettempdir()) / f"{APP_NAME}-rescued"
        self._clock = clock

    @property
    def default_folder(self) -> Path:
        if self._configured:
            return path_from_user(self._configured)
        return self._default or default_output_dir()

    def prepare(self, output_dir: str | None, roots: Sequence[str] | None = None) -> str:
        folder = path_from_user(output_dir) if output_dir else self.default_folder
        if not self._allow_unsafe and (reason := sensitive_reason(folder)):
            raise OutputLocationError(
                f"Refusing to write images into {folder}: it is {reason}. Choose another output_dir, or "
                f"set {UNSAFE_SWITCH} if you really mean it."
            )
        if output_dir and roots:
            resolved = Path(os.path.realpath(folder))
            if not any(_within(resolved, Path(os.path.realpath(path_from_user(r)))) for r in roots):
                raise OutputLocationError(
                    f"output_dir {folder} is outside the folders this client shared with the server "
                    f"(roots: {', '.join(roots)}). Pick a folder inside one of them, leave output_dir out "
                    "to use the default folder, or set GPT_IMAGE_2_ENFORCE_ROOTS=0."
                )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputLocationError(
                f"Cannot create the output folder {folder}: {e.strerror or e}. Choose a writable output_dir."
            ) from e
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise OutputLocationError(
                f"The output folder {folder} is not a writable folder. Choose a writable output_dir."
            )
        return str(folder.resolve())

    def save(self, data: bytes, *, folder: str, extension: str, prefix: str | None, label: str | None) -> StoredFile:
        name = self._filename(extension, prefix, label)
        try:
            return self._write(Path(folder), name, data, rescued=False)
        except OSError as first:
            log.error("could not write %s into %s (%s); rescuing it to %s", name, folder, first, self._rescue)
            try:
                self._rescue.mkdir(parents=True, exist_ok=True)
                return self._write(self._rescue, name, data, rescued=True)
            except OSError as second:
                raise OutputLocationError(
                    f"Could not save the image to {folder} ({first.strerror or first}) nor to the rescue "
                    f"folder {self._rescue} ({second.strerror or second}). Free some disk space or choose "
                    "another output_dir."
                ) from second

    def _filename(self, extension: str, prefix: str | None, label: str | None) -> str:
        stem = _UNSAFE_PREFIX.sub("-", prefix or "").strip("-.")[:64] or "image"
        stamp = time.strftime("%Y%m%d-%H%M%S", self._clock())
        suffix = f"-{_UNSAFE_PREFIX.sub('-', label)}" if label else ""
        return f"{stem}-{stamp}-{secrets.token_hex(3)}{suffix}.{extension}"

    @staticmethod
    def _write(folder: Path, name: str, data: bytes, rescued: bool) -> StoredFile:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            target = folder / name
            while True:
                try:
                    os.link(tmp, target)  # fails if the target exists: nothing is ever overwritten
                    break
                except FileExistsError:
                    pass
                except OSError:  # a filesystem without hard links
                    if not target.exists():
                        os.replace(tmp, target)
                        break
                target = folder / f"{Path(name).stem}-{secrets.token_hex(2)}{target.suffix}"
            written = target.lstat()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return StoredFile(str(target), target.name, len(data), rescued, (written.st_dev, written.st_ino))

    def read_back(self, image: SavedImage) -> bytes:
        # O_NOFOLLOW: a symlink put where the image was is refused, not followed; the device, inode and size
        # then show whether the file is still the one written (not a replacement, not rewritten).
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(image.path, flags)
        except OSError as e:
            raise OutputLocationError(
                f"{image.path} can no longer be read ({e.strerror or e}); it was moved, deleted or replaced."
            ) from e
        with os.fdopen(fd, "rb") as file:
            stat = os.fstat(file.fileno())
            same = image.file_id in (None, (stat.st_dev, stat.st_ino)) and stat.st_size == image.size_bytes
            if not same:
                raise OutputLocationError(
                    f"{image.path} is no longer the file this server wrote (it was replaced or changed); "
                    "it is not served."
                )
            return file.read()
