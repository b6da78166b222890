"""Inputs that must work: camera JPEGs that Pillow reads as MPO, and data: URLs with wrapped base64."""

import base64
import io

import pytest
from PIL import Image

from gpt_image_2_mcp.adapters.local_and_http_image_source import LocalAndHttpImageSource
from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec
from gpt_image_2_mcp.domain.errors import InputImageError
from gpt_image_2_mcp.domain.services import EditInputs
from gpt_image_2_mcp.entrypoints.use_cases import resolve
from tests.conftest import make_container, png_bytes
from tests.integration.conftest import TEST_KEY


def mpo_bytes(first=(96, 64), second=(48, 32)) -> bytes:
    """What a camera writes: a JPEG with a second JPEG appended, described by an APP2 'MPF' segment."""
    buffer = io.BytesIO()
    Image.new("RGB", first, (200, 30, 30)).save(
        buffer, "MPO", save_all=True, append_images=[Image.new("RGB", second, (0, 90, 200))])
    return buffer.getvalue()


def jpeg_markers(data: bytes) -> list[bytes]:
    """The APPn segment signatures of a JPEG, up to the scan."""
    found, position = [], 2
    while data[position + 1] != 0xDA:
        length = int.from_bytes(data[position + 2:position + 4], "big")
        found.append(data[position + 1:position + 2] + data[position + 4:position + 8])
        position += 2 + length
    return found


def source() -> LocalAndHttpImageSource:
    return LocalAndHttpImageSource(PillowImageCodec(), fetcher=None)  # type: ignore[arg-type]


# --- MPO ----------------------------------------------------------------------------------------------------------

def test_an_mpo_becomes_its_first_image_as_a_plain_jpeg_byte_for_byte():
    data = mpo_bytes()
    with Image.open(io.BytesIO(data)) as mpo:
        assert (mpo.format, mpo.n_frames) == ("MPO", 2)
        first_pixels = mpo.convert("RGB").tobytes()
    image = PillowImageCodec().decode_input(data, "image 1")
    assert (image.mime_type, image.width, image.height, image.filename) == ("image/jpeg", 96, 64, "image.jpg")
    with Image.open(io.BytesIO(image.data)) as sent:
        assert sent.format == "JPEG" and getattr(sent, "n_frames", 1) == 1
        assert sent.convert("RGB").tobytes() == first_pixels  # the same compressed data: not re-encoded
    assert b"\xe2MPF\x00" not in jpeg_markers(image.data)
    # Nothing but the MPF segment was removed from the leading JPEG, and nothing of the second image was kept.
    assert len(image.data) < len(data) and image.data.endswith(b"\xff\xd9")
    assert image.data[-200:] in data


def test_a_plain_jpeg_is_sent_as_it_is():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(buffer, "JPEG")
    image = PillowImageCodec().decode_input(buffer.getvalue(), "image 1")
    assert image.data == buffer.getvalue() and image.mime_type == "image/jpeg"


def test_an_mpo_whose_first_image_is_cut_short_is_refused():
    data = mpo_bytes()
    with Image.open(io.BytesIO(data)) as mpo:
        size = mpo.mpinfo[0xB002][0]["Size"]
    broken = data[: size // 2]  # the MP header still promises two images
    with pytest.raises(InputImageError, match="image 1"):
        PillowImageCodec().decode_input(broken, "image 1")


async def test_an_mpo_file_reaches_the_api_as_a_jpeg(fake_openai, tmp_path):
    container = make_container(api_key=TEST_KEY, base_url=fake_openai.base_url, output_dir=str(tmp_path / "out"))
    photo = tmp_path / "IMG_0001.JPG"
    photo.write_bytes(mpo_bytes((128, 96)))
    edit = await resolve(container.edit_image)
    outcome = await edit("brighter", EditInputs((str(photo),)))
    (name, content_type, data), = fake_openai.requests_to("/v1/images/edits")[0].files["image[]"]
    assert (name, content_type) == ("image-1.jpg", "image/jpeg")
    with Image.open(io.BytesIO(data)) as sent:
        assert (sent.format, sent.size) == ("JPEG", (128, 96))
    assert outcome.images


# --- data: URLs -----------------------------------------------------------------------------------------------------

PNG = png_bytes((40, 30))
B64 = base64.b64encode(PNG).decode()


def wrapped(text: str, width: int, newline: str) -> str:
    return newline.join(text[i:i + width] for i in range(0, len(text), width))


@pytest.mark.parametrize("payload", [
    pytest.param(base64.encodebytes(PNG).decode(), id="76 columns, LF (RFC 2045)"),
    pytest.param(wrapped(B64, 76, "\r\n"), id="76 columns, CRLF"),
    pytest.param(wrapped(B64, 64, "\n"), id="64 columns (PEM-like)"),
    pytest.param(wrapped(B64, 4, " "), id="spaces"),
    pytest.param(wrapped(B64, 10, "\t\f"), id="tabs and form feeds"),
    pytest.param(" \r\n" + B64 + "\r\n ", id="around"),
])
async def test_base64_with_ascii_whitespace_is_read(payload):
    image = await source().load("data:image/png;base64," + payload, role="image 1")
    assert image.data == PNG and (image.width, image.height) == (40, 30)


@pytest.mark.parametrize("junk", ["!", "*", "\u00a0", "\v", "\u2028", "%0A", "-", "_"])
async def test_other_characters_in_base64_are_still_refused(junk):
    payload = B64[:40] + junk + B64[40:]
    with pytest.raises(InputImageError, match="invalid base64"):
        await source().load("data:image/png;base64," + payload, role="image 1")


async def test_base64_cut_short_says_so_and_to_send_the_whole_image():
    with pytest.raises(InputImageError, match=r"cut short .* Send the whole image"):
        await source().load("data:image/png;base64," + B64[:-3], role="image 1")


async def test_a_folder_given_as_an_image_is_named_as_a_folder(tmp_path):
    with pytest.raises(InputImageError, match="is a folder, not an image file"):
        await source().load(str(tmp_path), role="image 1")


def turned_photo(stored=(800, 400), orientation: int = 6) -> bytes:
    """A camera JPEG stored on its side, with the EXIF tag that tells viewers to show it turned."""
    image = Image.new("RGB", stored, (200, 30, 30))
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


async def test_a_photo_turned_by_its_exif_tag_is_edited_upright_and_takes_an_upright_mask(tmp_path):
    # The mask had to match the stored (sideways) size, and the result came back sideways.
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(turned_photo())
    mask = tmp_path / "mask.png"
    Image.new("RGBA", (400, 800), (0, 0, 0, 0)).save(mask)
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"))
    edit = await resolve(container.edit_image)
    outcome = await edit("a red hat", EditInputs((str(photo),), str(mask)))
    sent = container.fake_backend().calls[-1].images[0]
    assert (sent.width, sent.height) == (400, 800)
    assert (outcome.images[0].width, outcome.images[0].height) == (400, 800)
    upright = PillowImageCodec().decode_input(photo.read_bytes(), "image 1")
    assert Image.open(io.BytesIO(upright.data)).getexif().get(0x0112) is None  # sent without the turn tag


def test_an_upright_photo_is_sent_as_it_is():
    data = turned_photo(orientation=1)
    assert PillowImageCodec().decode_input(data, "image 1").data == data
