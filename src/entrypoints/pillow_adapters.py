"""The adapters built on Pillow, imported when first used rather than at start-up.

Pillow costs ~10 ms and ~2.5 MiB to import, and answering `initialize` needs no image: the container builds these
through the functions below, which import their adapter module when called, and the codec defers even that to
its first method call (the presenter and the workflow hold it from start-up on).
"""

from __future__ import annotations

from gpt_image_2_mcp.domain.ports import ImageBackend, ImageCodec
from gpt_image_2_mcp.domain.values import InputImage, Preview


class PillowCodecOnFirstUse(ImageCodec):
    """PillowImageCodec, imported and built at its first use."""

    def __init__(self) -> None:
        self._codec: ImageCodec | None = None

    def _pillow(self) -> ImageCodec:
        if self._codec is None:  # two threads may both build one: harmless, the codec has no state
            from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec

            self._codec = PillowImageCodec()
        return self._codec

    def probe(self, data: bytes) -> tuple[int, int, str]:
        return self._pillow().probe(data)

    def decode_input(self, data: bytes, source: str) -> InputImage:
        return self._pillow().decode_input(data, source)

    def preview(self, data: bytes, max_edge: int, max_bytes: int) -> Preview:
        return self._pillow().preview(data, max_edge, max_bytes)


def fake_image_backend(latency_s: float) -> ImageBackend:
    """The offline placeholder backend (draws with Pillow)."""
    from gpt_image_2_mcp.adapters.fake_image_backend import FakeImageBackend

    return FakeImageBackend(latency_s=latency_s)
