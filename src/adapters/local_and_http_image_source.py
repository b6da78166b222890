"""LocalAndHttpImageSource: reference images from paths, file:// URLs, data: URLs and http(s) URLs."""

from __future__ import annotations

import binascii
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote_to_bytes

import anyio.to_thread

from gpt_image_2_mcp.domain.errors import InputImageError, UrlFetchFailed, UrlFetchRefused
from gpt_image_2_mcp.domain.ports import ImageCodec, ImageSource, UrlFetcher
from gpt_image_2_mcp.domain.values import MAX_INPUT_BYTES, InputImage

from .local_path_policy import is_other_url, path_from_user, read_refusal, within_roots

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.IGNORECASE)

def _describe(reference: str) -> str:
    """How an input is named in messages: data URLs are shortened, never echoed whole."""
    return reference if not reference.lower().startswith("data:") else reference[:40] + "…"


def _refuse_other_schemes(reference: str, name: str) -> None:
    """A URL of a scheme other than file: is refused as such, not looked for as a file named "ftp:/host/x.png"."""
    if reference.lower().startswith("image://"):
        raise InputImageError(f"{name} is a resource link; give the image's file_path (in the result beside its "
                              "link) instead.")
    if is_other_url(reference):
        raise InputImageError(f"{name} uses an unsupported scheme. Give a file path, a file:// URL, an http(s):// "
                              "URL or a data:image/...;base64 URL.")


class LocalAndHttpImageSource(ImageSource):
    """Every input is decoded with Pillow before it may be uploaded; local reads honour the client's roots."""

    def __init__(self, codec: ImageCodec, fetcher: UrlFetcher, confined: bool = False,
                 own_folder: Path | None = None) -> None:
        self._codec = codec
        self._fetcher = fetcher
        # Served over HTTP, the roots are the server's own (the caller's folder): relative paths are taken
        # from it, and the way out is not a setting the remote caller could change.
        self._confined = confined
        # The default output folder: the images this server made there can be edited further whatever the
        # client's roots, as they can be written there whatever the roots (not when confined: it holds every
        # caller's folder).
        self._own_folder = own_folder

    async def load(self, reference: str, *, role: str, roots: Sequence[str] | None = None) -> InputImage:
        reference = reference.strip()
        name = f"{role} ({_describe(reference)})"
        lowered = reference.lower()
        if lowered.startswith("data:"):
            data = self._from_data_url(reference, name)
        elif lowered.startswith(("http://", "https://")):
            data = await self._from_http(reference, name)
        else:
            data = await anyio.to_thread.run_sync(self._from_disk, reference, name, roots)
        return await anyio.to_thread.run_sync(self._codec.decode_input, data, name)

    async def digest(self, reference: str, *, role: str, roots: Sequence[str] | None = None) -> str:
        reference = reference.strip()
        if reference.lower().startswith(("data:", "http://", "https://")):
            return hashlib.sha256(reference.encode()).hexdigest()  # a URL is not fetched just to be compared
        name = f"{role} ({_describe(reference)})"
        data = await anyio.to_thread.run_sync(self._from_disk, reference, name, roots)
        return hashlib.sha256(data).hexdigest()

    def _from_disk(self, reference: str, name: str, roots: Sequence[str] | None) -> bytes:
        _refuse_other_schemes(reference, name)
        if "\0" in reference:
            raise InputImageError(f"{name} contains a NUL character, which no file name can hold. Give the image's "
                                  "path without it.")
        confined = self._confined
        base = Path(roots[0]) if confined and roots else Path.cwd()  # what a relative path is taken from
        path = path_from_user(reference, base=base)
        resolved = Path(os.path.realpath(path))
        if read_refusal(path):
            raise InputImageError(f"{name}: reading from {resolved.parent} is not allowed. Use an image file "
                                  "from your project or pictures folder.")
        if confined and roots and not within_roots(resolved, roots):
            raise InputImageError(
                f"{name} is outside your folder on this server ({roots[0]}). Use an image made here (its "
                "file_path), an http(s):// URL or a data:image/...;base64 URL."
            )
        readable = (*roots, str(self._own_folder)) if roots and self._own_folder and not confined else roots
        if readable and not within_roots(resolved, readable):
            raise InputImageError(
                f"{name} is outside the folders this client shared with the server (roots: "
                f"{', '.join(readable)}). Move the image into one of them, or set GPT_IMAGE_2_ENFORCE_ROOTS=0."
            )
        try:
            if resolved.is_dir():
                raise InputImageError(f"{name}: {path} is a folder, not an image file. Name an image inside it.")
            if not resolved.is_file():
                raise InputImageError(f"{name}: no such image file at {path}. Check the path (relative paths "
                                      f"are taken from {base}).")
            size = resolved.stat().st_size
            if size >= MAX_INPUT_BYTES:
                raise InputImageError(f"{name} is {size:,} bytes; each image must be under 50 MB.")
            return resolved.read_bytes()
        except OSError as e:
            raise InputImageError(f"{name} cannot be read: {e.strerror or e}.") from e

    @staticmethod
    def _from_data_url(reference: str, name: str) -> bytes:
        match = _DATA_URL.match(reference)
        if not match:
            raise InputImageError(f"{name} is not a valid data URL; use data:image/png;base64,<data>.")
        payload = reference[match.end():]
        limit = MAX_INPUT_BYTES * 4 // 3 + 4
        if match.group(3) and len(payload) <= 2 * limit:
            # Base64 wrapped at 76 characters (RFC 2045), with CRLF or spaces, is common: ASCII whitespace (as in
            # WHATWG's forgiving-base64) is dropped; anything else that is not base64 is still refused below.
            payload = payload.translate({0x09: None, 0x0A: None, 0x0C: None, 0x0D: None, 0x20: None})
        if len(payload) > limit:
            raise InputImageError(f"{name} is larger than 50 MB.")
        try:
            if match.group(3):
                import pybase64  # only data: URLs need it: not imported at start-up

                return pybase64.b64decode(payload, validate=True)
            return unquote_to_bytes(payload)
        except (binascii.Error, ValueError) as e:
            raise InputImageError(f"{name} has invalid base64 data: it is cut short or holds characters base64 "
                                  f"does not use ({e}). Send the whole image, encoded again.") from e

    async def _from_http(self, reference: str, name: str) -> bytes:
        try:
            data, _content_type = await self._fetcher.fetch(reference)
        except (UrlFetchRefused, UrlFetchFailed) as e:
            raise InputImageError(f"{name}: {e}") from e
        return data
