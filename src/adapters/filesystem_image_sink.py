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
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from gpt_image_2_mcp.domain.errors import OutputLocationError
from gpt_image_2_mcp.domain.ports import ImageSink, StoredFile
from gpt_image_2_mcp.domain.values import SavedImage

from .local_path_policy import climbs_out, is_other_url, is_within, path_from_user, within_roots, write_refusal

log = logging.getLogger(__name__)

APP_NAME = "gpt-image-2-mcp"
UNSAFE_SWITCH = "GPT_IMAGE_2_ALLOW_UNSAFE_OUTPUT_DIR=1"
_UNSAFE_PREFIX = re.compile(r"[^\w.-]+")
"""What a file name's prefix may not hold: anything but letters and digits of any script, '_', '.' and '-' (so
'Café' and '写真' stay as they are; separators, spaces and characters Windows forbids become '-')."""
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import, while single-threaded; mkstemp's 0600 is widened to what umask allows


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
        confined: bool = False,
    ) -> None:
        # A relative GPT_IMAGE_2_OUTPUT_DIR was typed in a shell, so it means the working directory at start-up;
        # resolve it now, once, so a later change of directory cannot move the images.
        self._configured = Path(os.path.realpath(path_from_user(configured_dir))) if configured_dir else None
        self._allow_unsafe = allow_unsafe
        self._default = default_dir
        self._rescue = rescue_dir or Path(tempfile.gettempdir()) / f"{APP_NAME}-rescued"
        self._clock = clock
        # Served over HTTP, the callers are remote: the configured folder is the only place they may write to.
        self._confined = confined

    @property
    def default_folder(self) -> Path:
        """Where images go without an output_dir, and what a relative output_dir is taken from: absolute, resolved."""
        return self._configured or Path(os.path.realpath(self._default or default_output_dir()))

    def prepare(self, output_dir: str | None, roots: Sequence[str] | None = None) -> str:
        default = self.default_folder
        # Confined (served over HTTP), the first root is the caller's own folder: it is the default, and what a
        # relative output_dir is taken from.
        home = Path(roots[0]) if self._confined and roots else default
        output_dir = output_dir if output_dir and output_dir.strip() else None  # blank: as if left out
        if output_dir:
            self._check_text(output_dir, home)
        # A relative output_dir is taken from the default folder, never from the working directory: desktop
        # clients start servers in '/', where "images" would have meant /images.
        folder = path_from_user(output_dir, base=home) if output_dir else home
        if self._confined:  # first: for a remote caller, "outside your folder" is the answer, not a setting
            self._check_confined(folder, output_dir, roots or (str(default),))  # before any folder is made
        if not self._allow_unsafe and (reason := write_refusal(folder)):
            raise OutputLocationError(
                f"Refusing to write images into {folder}: it is {reason}. Choose another output_dir, or "
                f"set {UNSAFE_SWITCH} if you really mean it."
            )
        # The default folder is the server's own (or the user's configured one), so it and the folders below it
        # need no root: that is what makes a relative output_dir usable when the client shares roots.
        inside_default = is_within(Path(os.path.realpath(folder)), default)
        if not self._confined and output_dir and roots and not inside_default and not within_roots(folder, roots):
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

    def _check_text(self, output_dir: str, home: Path) -> None:
        """What no folder name can mean: refused as typed, before anything is resolved or made."""
        if "\0" in output_dir:
            raise OutputLocationError("output_dir contains a NUL character, which no folder name can hold. Give "
                                      "the folder's path without it.")
        if is_other_url(output_dir):
            raise OutputLocationError(
                f"output_dir {output_dir!r} is a URL; images are saved into a folder on this machine. Give a "
                f"folder path (absolute, ~/..., file://, or relative to {home}), or leave output_dir out.")
        if climbs_out(output_dir) and not self._confined:  # confined, _check_confined says where images may go
            raise OutputLocationError(
                f"output_dir {output_dir!r} leads out of the default output folder {home}: a relative output_dir "
                "is a folder inside it. Give an absolute path (or ~/...) to save elsewhere.")

    @staticmethod
    def _check_confined(folder: Path, output_dir: str | None, roots: Sequence[str]) -> None:
        # Confined, the roots are the server's own (the caller's folder under the output folder), and they bind
        # the default folder too: nothing is written outside them, whatever was asked, links followed.
        if not within_roots(folder, roots):
            raise OutputLocationError(
                f"output_dir {output_dir} is outside the folder this server keeps your images in ({roots[0]}): "
                "images can only be saved inside it. Give a folder relative to it (e.g. 'drafts'), or leave "
                "output_dir out."
            )

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
        stem = _UNSAFE_PREFIX.sub("-", unicodedata.normalize("NFC", prefix or "")).strip("-.")[:64] or "image"
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

    def is_intact(self, image: SavedImage) -> bool:
        try:
            stat = os.lstat(image.path)
        except OSError:
            return False
        same_file = image.file_id in (None, (stat.st_dev, stat.st_ino))
        return same_file and stat.st_size == image.size_bytes and not os.path.islink(image.path)

    def discard(self, image: SavedImage) -> None:
        if self.is_intact(image):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(image.path)

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
