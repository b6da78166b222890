"""PillowImageCodec: reads, checks and downsizes images with Pillow."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from gpt_image_2_mcp.domain.errors import InputImageError
from gpt_image_2_mcp.domain.ports import ImageCodec
from gpt_image_2_mcp.domain.render_settings import MAX_PIXELS
from gpt_image_2_mcp.domain.values import InputImage, Preview, base64_length

# MPO: what Pillow calls a JPEG carrying more images after the first (cameras, phones: depth maps, previews).
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "MPO": "image/jpeg"}
ACCEPTED_INPUTS = "PNG, JPEG or WEBP"
_MP_ENTRIES = 0xB002  # the MP Extensions' list of individual images (CIPA DC-007): offset and size of each


def _open(data: bytes, source: str) -> Image.Image:
    if not data:
        raise InputImageError(f"{source} is empty: give a PNG, JPEG or WEBP image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputImageError(f"{source} is not a {ACCEPTED_INPUTS} image (its content is no image format "
                              "Pillow recognises).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputImageError(f"{source} declares more pixels than the API accepts ({MAX_PIXELS:,} at most); "
                              "it was not decoded. Downscale it first.") from None
    except (OSError, ValueError, SyntaxError) as e:  # malformed headers
        raise InputImageError(f"{source} is damaged ({e}); give a complete {ACCEPTED_INPUTS} image.") from None
    if image.format not in _MIME:
        raise InputImageError(f"{source} is {image.format or 'an unknown format'}; use {ACCEPTED_INPUTS}.")
    if image.width * image.height > MAX_PIXELS:
        raise InputImageError(
            f"{source} is {image.width}x{image.height} ({image.width * image.height:,} pixels); the API "
            f"accepts at most {MAX_PIXELS:,}. Downscale it first."
        )
    return image


_ORIENTATION = 0x0112
"""The EXIF tag by which a camera says "show this turned": 1 is upright."""


def _upright(image: Image.Image) -> tuple[bytes, Image.Image]:
    """A photo stored on its side with an EXIF turn, turned upright and re-encoded without the tag: the size a
    mask must match, and what the model is shown, are then what every viewer shows the user. A JPEG stays a
    JPEG (at quality 95: as PNG a camera photo would pass the upload limit); anything else becomes a PNG."""
    upright = ImageOps.exif_transpose(image)
    fmt = "JPEG" if image.format in ("JPEG", "MPO") else "PNG"
    out = io.BytesIO()
    upright.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    data = out.getvalue()
    return data, Image.open(io.BytesIO(data))


def _first_mpo_image(data: bytes, mpo: Image.Image, source: str) -> bytes:
    """The first image of an MPO file, byte for byte, minus its MP Extensions segment: a plain JPEG.

    Not re-encoded: an MPO's first image IS the leading JPEG of the file (SOI .. EOI, its length recorded in the
    MP entry list), so it is cut out losslessly. Only the APP2 "MPF" segment is dropped, as it describes images
    that are no longer there. The result must open as a JPEG of the same size and mode as Pillow's first frame."""
    damaged = InputImageError(f"{source} is a multi-picture JPEG (MPO) whose first image cannot be separated "
                              "cleanly; save it as a plain JPEG or PNG first.")
    entries = getattr(mpo, "mpinfo", {}).get(_MP_ENTRIES) or []
    size = entries[0].get("Size", 0) if entries and isinstance(entries[0], dict) else 0
    # Up to its last EOI (a writer may pad the recorded size; FF D9 never occurs inside compressed data).
    end = data.rfind(b"\xff\xd9", 0, min(size, len(data))) + 2
    if end < 4:
        raise damaged
    try:
        first = _without_mp_extensions(data[:end])
        with Image.open(io.BytesIO(first)) as check:
            same = (check.format, check.size, check.mode) == ("JPEG", mpo.size, mpo.mode)
    except (OSError, ValueError, SyntaxError):
        raise damaged from None
    if not same:
        raise damaged
    return first


def _without_mp_extensions(jpeg: bytes) -> bytes:
    """`jpeg` without APP2 "MPF" segments: walks the marker segments up to the start of the scan."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start of image")
    kept, position = [jpeg[:2]], 2
    while position + 4 <= len(jpeg):
        if jpeg[position] != 0xFF:
            raise ValueError("no JPEG marker where one was due")
        marker = jpeg[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:  # start of scan: the compressed data and everything after stay as they are
            break
        length = int.from_bytes(jpeg[position + 2:position + 4], "big")
        segment = jpeg[position:position + 2 + length]
        if length < 2 or len(segment) != 2 + length:
            raise ValueError("truncated JPEG segment")
        if not (marker == 0xE2 and segment[4:8] == b"MPF\0"):
            kept.append(segment)
        position += 2 + length
    kept.append(jpeg[position:])
    return b"".join(kept)


class PillowImageCodec(ImageCodec):
    """Decodes every input fully before it may leave the machine, and makes inline previews."""

    def probe(self, data: bytes) -> tuple[int, int, str]:
        image = _open(data, "The image")
        return image.width, image.height, _MIME[image.format or "PNG"]

    def decode_input(self, data: bytes, source: str) -> InputImage:
        """Check that `data` is a whole, decodable image of an accepted format and size. An MPO (a camera JPEG
        with more images appended) becomes its first image, as a plain JPEG."""
        image = _open(data, source)
        if image.format == "MPO":
            data = _first_mpo_image(data, image, source)
            image = _open(data, source)
        try:
            image.load()  # a truncated file fails here, not at the API
        except (OSError, SyntaxError, ValueError) as e:
            raise InputImageError(f"{source} is damaged or truncated ({e}); give a complete image.") from e
        if image.getexif().get(_ORIENTATION, 1) != 1:
            data, image = _upright(image)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        return InputImage(data, _MIME[image.format or "PNG"], image.width, image.height, source, has_alpha)

    def preview(self, data: bytes, max_edge: int, max_bytes: int) -> Preview:
        """A JPEG (or WEBP, for transparency) no longer than `max_edge` whose base64 fits in `max_bytes`."""
        image = Image.open(io.BytesIO(data))
        if max(image.size) > max_edge:
            # Not loaded first: thumbnail() lets a JPEG decode at 1/2, 1/4 or 1/8 scale (draft), and with a reducing
            # gap of 1 it box-reduces by the whole factor first, which does the antialiasing; what is left is a
            # shrink by less than 2 (3840 -> 1920 -> 1568), where a Hamming filter takes half Lanczos' time (4K: ~30 ms
            # instead of ~60 ms) and stays within 34 dB PSNR of it even on pure noise.
            image.thumbnail((max_edge, max_edge), Image.Resampling.HAMMING, reducing_gap=1.0)
        image.load()
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        # JPEG encodes ~30x faster than WEBP at a similar size; WEBP is kept for alpha and as the second try.
        formats = ("WEBP",) if has_alpha else ("JPEG", "WEBP")
        smallest: Preview | None = None
        for edge_scale in (1.0, 0.75, 0.5, 0.35, 0.25, 0.15):
            candidate = image
            if edge_scale < 1.0:
                candidate = image.resize(
                    (max(1, int(image.width * edge_scale)), max(1, int(image.height * edge_scale))),
                    Image.Resampling.LANCZOS,
                )
            for quality in (85, 70, 55, 40):
                for fmt in formats:
                    encoded = self._encode(candidate, fmt, quality, has_alpha)
                    if smallest is None or len(encoded.data) < len(smallest.data):
                        smallest = encoded
                    if base64_length(len(encoded.data)) <= max_bytes:
                        return encoded
        assert smallest is not None
        return smallest

    @staticmethod
    def _encode(image: Image.Image, fmt: str, quality: int, has_alpha: bool) -> Preview:
        buffer = io.BytesIO()
        mode = "RGBA" if has_alpha else "RGB"
        # convert() copies even to the same mode: a 4K RGB copy is ~5 ms and 25 MB for nothing.
        (image if image.mode == mode else image.convert(mode)).save(buffer, fmt, quality=quality, method=0)
        return Preview(buffer.getvalue(), f"image/{fmt.lower()}", image.width, image.height)

