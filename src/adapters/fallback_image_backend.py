"""FallbackImageBackend: direct Images API first, Responses API when the edits endpoint refuses gpt-image-2."""

from __future__ import annotations

import logging

from gpt_image_2_mcp.domain.errors import ModelNotSupportedOnEndpoint
from gpt_image_2_mcp.domain.ports import ImageBackend, PartialImageHandler
from gpt_image_2_mcp.domain.values import BackendResult, EditRequest, GenerationRequest

log = logging.getLogger(__name__)


class FallbackImageBackend(ImageBackend):
    """Routes edits. A rejection of the model by /v1/images/edits is remembered for the life of the
    process, so later edits go straight to the fallback; `force_fallback` pins edits there from the start."""

    def __init__(self, primary: ImageBackend, fallback: ImageBackend, force_fallback: bool = False) -> None:
        self._primary = primary
        self._fallback = fallback
        self.edits_use_fallback = force_fallback

    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        return await self._primary.generate(request, on_partial)

    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        if not self.edits_use_fallback:
            try:
                return await self._primary.edit(request, on_partial)
            except ModelNotSupportedOnEndpoint as e:
                log.warning("%s Switching edits to the Responses API for the life of this server.", e)
                self.edits_use_fallback = True
        return await self._fallback.edit(request, on_partial)
