"""OpenAIResponsesBackend: gpt-image-2 through the Responses API's image_generation tool."""

from __future__ import annotations

import functools
import logging
from typing import Any

import anyio
import openai

from gpt_image_2_mcp.domain import errors
from gpt_image_2_mcp.domain.ports import ImageBackend, PartialImageHandler
from gpt_image_2_mcp.domain.pricing import host_model_is_priced
from gpt_image_2_mcp.domain.render_settings import RenderOptions
from gpt_image_2_mcp.domain.values import (
    MODEL,
    BackendResult,
    EditRequest,
    GeneratedImage,
    GenerationRequest,
    InputImage,
    Route,
    Usage,
)

from .openai_common import decode_b64, output_fields, run_concurrently
from .openai_errors import translate
from .openai_retry import CallFailed, RetryPolicy

log = logging.getLogger(__name__)


class OpenAIResponsesBackend(ImageBackend):
    """Uploads inputs as files, forces the image_generation tool on a host model, and always deletes
    the uploads afterwards. The tool makes one image per call, so n > 1 runs n calls concurrently."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        retry: RetryPolicy,
        host_model: str = "gpt-4.1-mini",
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._client = client
        self._retry = retry
        self._host_model = host_model
        self._secrets = secrets

    async def generate(
        self, request: GenerationRequest, on_partial: PartialImageHandler | None = None
    ) -> BackendResult:
        tool = self._tool(request.options, "generate") | {"moderation": request.moderation.value}
        return await self._run(request.prompt, request.options, tool, [])

    async def edit(self, request: EditRequest, on_partial: PartialImageHandler | None = None) -> BackendResult:
        inputs = (*request.images, *((request.mask,) if request.mask else ()))
        file_ids: dict[int, str] = {}  # position in `inputs` -> uploaded file id
        try:
            await run_concurrently(
                functools.partial(self._upload, image, position, file_ids) for position, image in enumerate(inputs)
            )
            tool = self._tool(request.options, "edit")
            if request.mask is not None:
                tool["input_image_mask"] = {"file_id": file_ids[len(inputs) - 1]}
            image_ids = [file_ids[position] for position in range(len(request.images))]
            return await self._run(request.prompt, request.options, tool, image_ids)
        finally:
            # Shielded: a failed or cancelled call still removes what it uploaded.
            with anyio.CancelScope(shield=True):
                await self._delete_all(list(file_ids.values()))

    async def _upload(self, image: InputImage, position: int, file_ids: dict[int, str]) -> None:
        try:
            created = await self._retry.run(
                lambda: self._client.files.create(file=(image.filename, image.data, image.mime_type), purpose="vision")
            )
        except Exception as e:
            raise self._translate(e) from None
        file_ids[position] = created.id

    async def _delete_all(self, file_ids: list[str]) -> None:
        async def delete(file_id: str) -> None:
            try:
                await self._retry.run(lambda: self._client.files.delete(file_id))
            except Exception as e:  # never mask the edit's own outcome; leave a trace instead
                cause = e.error if isinstance(e, CallFailed) else e
                log.error("could not delete uploaded file %s: %s", file_id, type(cause).__name__)

        await run_concurrently(functools.partial(delete, file_id) for file_id in file_ids)

    def _tool(self, options: RenderOptions, action: str) -> dict[str, Any]:
        return {"type": "image_generation", "model": MODEL, "action": action, **output_fields(options)}

    async def _run(
        self, prompt: str, options: RenderOptions, tool: dict[str, Any], image_ids: list[str]
    ) -> BackendResult:
        content: list[dict[str, Any]] = [{"type": "input_text", "text": prompt}]
        content += [{"type": "input_image", "file_id": file_id} for file_id in image_ids]
        params: dict[str, Any] = {
            "model": self._host_model,
            "input": [{"role": "user", "content": content}],
            "tools": [tool],
            "tool_choice": {"type": "image_generation"},
        }
        if options.user:
            params["safety_identifier"] = options.user
        responses = await self._create_all(params, options.n)
        return self._result(responses, options)

    async def _create_all(self, params: dict[str, Any], n: int) -> list[Any]:
        """n calls at once: the tool makes one image per call. Each call's failure is its own (its error in its
        place): the images the others made were paid for, and are kept."""
        answers: list[Any] = [None] * n

        async def one(index: int) -> None:
            try:
                answers[index] = await self._retry.run(lambda: self._client.responses.create(**params))
            except Exception as e:
                answers[index] = self._translate(e)

        await run_concurrently(functools.partial(one, index) for index in range(n))
        return answers

    def _result(self, answers: list[Any], options: RenderOptions) -> BackendResult:
        images: list[GeneratedImage] = []
        failures: list[Exception] = []
        usage = Usage(host_model=self._host_model)
        request_id = None
        applied: dict[str, object] = {}
        for answer in answers:
            try:
                image, call = self._image_of(answer, options)
            except Exception as e:  # this call's failure; the others' images stand
                failures.append(e)
                continue
            request_id = getattr(answer, "_request_id", None) or request_id
            images.append(image)
            applied = {key: value for key in ("size", "quality", "background", "output_format")
                       if (value := getattr(call, key, None))}
            if answer.usage is not None:
                usage = Usage(
                    host_model=self._host_model,
                    host_input_tokens=usage.host_input_tokens + answer.usage.input_tokens,
                    host_output_tokens=usage.host_output_tokens + answer.usage.output_tokens,
                )
        if not images:
            raise failures[0]
        notes = (self._note(options),)
        if failures:
            notes += (f"{len(failures)} of the {len(answers)} images failed and were not made: {failures[0]}",)
        return BackendResult(tuple(images), usage, route=Route.RESPONSES, applied=applied, request_id=request_id,
                             notes=notes, unpriced_images=len(images))

    def _image_of(self, answer: Any, options: RenderOptions) -> tuple[GeneratedImage, Any]:
        """The image one Responses call made, and its image_generation_call; raises that call's failure."""
        if isinstance(answer, Exception):
            raise answer
        request_id = getattr(answer, "_request_id", None)
        call = next((item for item in answer.output or [] if item.type == "image_generation_call"), None)
        if call is None:
            raise errors.BackendProtocolError(
                "The Responses API answered without an image_generation_call. Try again.", request_id=request_id)
        if call.status == "failed" or call.error is not None:
            raise self._call_failure(call, request_id)
        return GeneratedImage(decode_b64(call.result, request_id), options.output_format, call.revised_prompt), call

    def _note(self, options: RenderOptions) -> str:
        note = (
            f"Served by the Responses API route (host model {self._host_model}) because the direct edits "
            f"endpoint refused gpt-image-2 or OPENAI_FORCE_RESPONSES_EDITS is set; the image cost is estimated, "
            "as this route's usage covers only the host model's text."
        )
        if options.partial_images:
            note += " This route does not stream, so no partial images were produced."
        if not host_model_is_priced(self._host_model):
            note += f" The host model's text tokens are not priced ({self._host_model} is not in the price table)."
        return note

    def _call_failure(self, call: Any, request_id: str | None) -> errors.BackendError:
        error = call.error
        message = getattr(error, "message", None) or "the image_generation call failed"
        if getattr(error, "code", None) == "moderation_blocked":
            details = getattr(error, "moderation_details", None)
            categories = ", ".join(getattr(details, "categories", None) or []) or "unspecified"
            return errors.ContentPolicyViolation(
                f"OpenAI's safety system blocked this edit (categories: {categories}; {message}). Rephrase the "
                "prompt or use other images.", request_id=request_id)
        return errors.BackendRejected(f"The image_generation call failed: {message}. Try again.",
                                      request_id=request_id)

    def _translate(self, e: Exception) -> errors.ImageServerError:
        # RetryPolicy's CallFailed carries the number of attempts really made; translate puts it in the text.
        return translate(e, secrets=self._secrets)

