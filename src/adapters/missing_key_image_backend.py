"""MissingKeyImageBackend: stands in for OpenAI when the real backend is chosen but no key is set."""

from __future__ import annotations

from gpt_image_2_mcp.domain.errors import NotConfigured
from gpt_image_2_mcp.domain.ports import ImageBackend, PartialImageHandler
from gpt_image_2_mcp.domain.values import BackendResult, EditRequest, GenerationRequest

MESSAGE = (
    "GPT_IMAGE_2_BACKEND=openai but OPENAI_API_KEY is not set. Add OPENAI_API_KEY to the server's environment "
    "(in the MCP client's config) and restart it, or set GPT_IMAGE_2_BACKEND=fake for offline placeholders."
)


class MissingKeyImageBackend(ImageBackend):
    """Lets the server start and list its tools without a key; only a call that needs OpenAI fails."""

    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        raise NotConfigured(MESSAGE)

    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        raise NotConfigured(MESSAGE)
