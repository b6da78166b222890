"""OpenAIImagesBackend: gpt-image-2 through /v1/images/generations and /v1/images/edits."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import openai

from gpt_image_2_mcp.domain import errors
from gpt_image_2_mcp.domain.ports import ImageBackend, PartialImageHandler
from gpt_image_2_mcp.domain.render_settings import RenderOptions
from gpt_image_2_mcp.domain.values import (
    MODEL,
    BackendResult,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    Route,
    Usage,
)

from .openai_common import decode_b64, output_fields
from .openai_errors import translate
from .openai_retry import RetryPolicy
from .redaction import scrub

log = logging.getLogger(__name__)


def usage_from(raw: Any) -> Usage | None:
    if raw is None:
        return None
    details = getattr(raw, "input_tokens_details", None)
    text = getattr(details, "text_tokens", None)
    image = getattr(details, "image_tokens", None)
    total_in = getattr(raw, "input_tokens", 0) or 0
    return Usage(
        input_text_tokens=text if text is not None else total_in,
        input_image_tokens=image or 0,
        output_tokens=getattr(raw, "output_tokens", 0) or 0,
        # Not in the SDK's typed model yet; its models keep fields they do not know.
        cached_input_tokens=getattr(details, "cached_tokens", 0) or 0,
    )


def render_params(options: RenderOptions) -> dict[str, Any]:
    params: dict[str, Any] = {"model": MODEL, "n": options.n, **output_fields(options)}
    if options.user:
        params["safety_identifier"] = options.user
    return params


class OpenAIImagesBackend(ImageBackend):
    """The Images API. The SDK's own retries are off; RetryPolicy is the one retry edge."""

    def __init__(self, client: openai.AsyncOpenAI, retry: RetryPolicy, secrets: tuple[str, ...] = ()) -> None:
        self._client = client
        self._retry = retry
        self._secrets = secrets

    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        params = render_params(request.options) | {"prompt": request.prompt, "moderation": request.moderation.value}
        return await self._call(self._client.images.generate, params, request.options, on_partial)

    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        params = render_params(request.options) | {
            "prompt": request.prompt,
            # Always a list: the SDK then sends repeated image[] parts, which gpt-image-2 requires.
            "image": [(f"image-{i + 1}.{img.filename.split('.')[-1]}", img.data, img.mime_type)
                      for i, img in enumerate(request.images)],
        }
        if request.mask is not None:
            params["mask"] = ("mask.png", request.mask.data, "image/png")
        return await self._call(self._client.images.edit, params, request.options, on_partial)

    async def _call(
        self,
        method: Callable[..., Awaitable[Any]],
        params: dict[str, Any],
        options: RenderOptions,
        on_partial: PartialImageHandler | None,
    ) -> BackendResult:
        streaming = bool(on_partial and options.partial_images)
        if streaming:
            params = params | {"stream": True, "partial_images": options.partial_images}
        log.debug("images request: %s", {k: v for k, v in params.items() if k not in ("image", "mask", "prompt")})
        try:
            if streaming:
                # The attempt's deadline covers the whole stream; consuming it is never retried (see RetryPolicy).
                return await self._retry.run_streaming(
                    lambda: method(**params), lambda stream: self._consume_stream(stream, options, on_partial)
                )
            response = await self._retry.run(lambda: method(**params))
        except errors.ImageServerError:
            raise
        except Exception as e:  # RetryPolicy's CallFailed carries the number of attempts really made
            raise translate(e, secrets=self._secrets) from None
        return self._result(response, options)

    def _result(self, response: Any, options: RenderOptions) -> BackendResult:
        request_id = getattr(response, "_request_id", None)
        data = getattr(response, "data", None) or []
        images = tuple(
            GeneratedImage(decode_b64(item.b64_json, request_id), options.output_format, item.revised_prompt)
            for item in data
        )
        if not images:
            raise errors.BackendProtocolError(
                "The API answered 200 without any image. Try again; if it persists, rephrase the prompt.",
                request_id=request_id,
            )
        applied = {key: value for key in ("size", "quality", "background", "output_format")
                   if (value := getattr(response, key, None))}
        return BackendResult(images, usage_from(response.usage), route=Route.IMAGES, applied=applied,
                             request_id=request_id)

    async def _consume_stream(
        self, stream: Any, options: RenderOptions, on_partial: PartialImageHandler
    ) -> BackendResult:
        request_id = stream.response.headers.get("x-request-id")
        completed = None
        try:
            async for event in stream:
                if event.type.endswith("partial_image"):
                    await on_partial(event.partial_image_index, decode_b64(event.b64_json, request_id))
                elif event.type.endswith("completed"):
                    completed = event
        except errors.ImageServerError:
            raise
        except Exception as e:
            raise errors.BackendProtocolError(
                f"The image stream broke off before the final image ({type(e).__name__}: "
                f"{scrub(str(e), self._secrets)}). The image was not saved; try again.", request_id=request_id
            ) from None
        finally:
            with anyio.CancelScope(shield=True):  # also when the deadline cancelled the read: free the connection
                await stream.close()
        if completed is None:
            raise errors.BackendProtocolError(
                "The image stream ended before the final image arrived, so it was not saved; try again.",
                request_id=request_id,
            )
        image = GeneratedImage(decode_b64(completed.b64_json, request_id), options.output_format)
        applied = {key: value for key in ("size", "quality", "background", "output_format")
                   if (value := getattr(completed, key, None))}
        return BackendResult((image,), usage_from(getattr(completed, "usage", None)), route=Route.IMAGES,
                             applied=applied, request_id=request_id)
