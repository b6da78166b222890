"""MCP prompts: briefs for the common image jobs, written after OpenAI's prompting guidance for gpt-image-2
(scene, subject, details, then constraints; the intended use stated; literal text quoted and spelled out; "change
only X, keep everything else"; the preserve list repeated on every turn). Each returns one user message that
names the tool to call and the arguments to call it with, the image prompt among them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, UserMessage
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import AfterValidator, Field, ValidationError

from .icons import tool_icons
from .validation_messages import explain_prompt_arguments

Aspect = Literal["square", "landscape", "portrait"]
SIZES: dict[str, str] = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}
Quality = Literal["low", "medium", "high"]
MAX_SCENES = 8


_SIDES = "'square', 'landscape' or 'portrait'"
SquareAspect = Annotated[Aspect, Field(description=f"{_SIDES} (default 'square').")]
PortraitAspect = Annotated[Aspect, Field(description=f"{_SIDES} (default 'portrait').")]
LandscapeAspect = Annotated[Aspect, Field(description=f"{_SIDES} (default 'landscape').")]
_LEVELS = "'low' (drafts), 'medium' or 'high'"
HighQuality = Annotated[Quality, Field(description=f"{_LEVELS} (default 'high': detail, faces and small text "
                                                   "need it).")]
MediumQuality = Annotated[Quality, Field(description=f"{_LEVELS} (default 'medium': a good balance for a "
                                                     "series).")]


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text that is not blank")
    return text


Written = AfterValidator(_not_blank)
"""For an argument the brief is built from: a blank one would leave a hole in the image prompt."""


def _quoted(text: str) -> str:
    """Text in quotes the model reads as literal: typographic ones when the text holds straight ones itself."""
    return f"\u201c{text}\u201d" if '"' in text else f'"{text}"'


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def _lines(text: str) -> list[str]:
    return [line.strip().lstrip("-•*").strip() for line in text.splitlines() if line.strip()]


def _at_most_scenes(text: str) -> str:
    if not 1 <= len(_lines(text)) <= MAX_SCENES:
        raise ValueError(f"one to {MAX_SCENES} scenes, one per line")
    return text


def _spelled(name: str) -> str:
    """A name letter by letter: the guide's remedy for brand names the model would otherwise misspell."""
    return "-".join(ch for ch in name.upper() if not ch.isspace())


def _call(tool: str, arguments: dict[str, Any]) -> str:
    return f"Call `{tool}` with these arguments:\n```json\n{json.dumps(arguments, indent=2, ensure_ascii=False)}\n```"


def _message(goal: str, *steps: str) -> list[UserMessage]:
    return [UserMessage("\n\n".join((goal, *steps)))]


def product_shot(
    product: Annotated[str, Written, Field(description="The product, concretely: what it is, material, colour, "
                                                       "finish, and any label text exactly as printed.")],
    background: Annotated[str, Field(description="The backdrop (default 'seamless pure white').")] = (
        "seamless pure white"),
    use: Annotated[str, Field(description="Where the picture goes, e.g. 'e-commerce listing' (default), 'hero "
                                          "banner', 'catalogue page'; it sets framing and polish.")] = (
        "e-commerce listing"),
    aspect: SquareAspect = "square",
    quality: HighQuality = "high",
    reference_image: Annotated[str | None, Field(description="Optional path or URL of a photo of the real "
                                                             "product: the shot is then edited from it.")] = None,
) -> list[UserMessage]:
    """A studio product shot on a clean background, generated from a description or cut out of a photo."""
    common = {"size": SIZES[aspect], "quality": quality, "background": "opaque", "output_format": "png",
              "filename_prefix": "product"}
    finish = (f"Soft, even studio light from large diffused sources, highlights that show the material, a "
              f"subtle realistic contact shadow. Crisp silhouette, no halos or fringing. Photorealistic. No props, "
              f"no extra text, no watermark. For: {use}.")
    if reference_image:
        prompt = (f"Take the product from Image 1 ({product}) and place it, centred, on a {background} background. "
                  f"Preserve its exact shape, proportions, colours and label text; do not restyle it. Change only "
                  f"the background and the lighting polish; keep the product exactly the same. {finish}")
        call = _call("edit_image", {"prompt": prompt, "images": [reference_image], **common})
    else:
        prompt = (f"A studio product photograph on a {background} background: {product}, centred, filling about "
                  f"two thirds of the frame, seen from a slight three-quarter angle at eye level. Any label or "
                  f"printed text stays sharp and legible exactly as described. {finish}")
        call = _call("generate_image", {"prompt": prompt, **common})
    return _message(f"Make a product shot of {product} with gpt-image-2.", call,
                    "Background 'opaque' on purpose: many deployments refuse 'transparent' for gpt-image-2; cut "
                    "the backdrop out afterwards if a transparent file is needed. Give the user the saved path.")


def logo(
    brand: Annotated[str, Written, Field(description="The name exactly as it must be spelled, e.g. 'Field & "
                                                     "Flour'.")],
    business: Annotated[str, Written, Field(description="What the brand does and for whom, in one line.")],
    personality: Annotated[str, Field(description="A few adjectives (default 'warm, simple, timeless').")] = (
        "warm, simple, timeless"),
    kind: Annotated[Literal["symbol", "wordmark", "combination", "app-icon"], Field(
        description="'symbol' (no text), 'wordmark' (the name only), 'combination' (default) or 'app-icon'.")] = (
        "combination"),
    colors: Annotated[str, Field(description="The palette (default 'two colours at most').")] = (
        "two colours at most"),
    variations: Annotated[int, Field(ge=1, le=4, description="How many options to draw, 1..4 (default 3).")] = 3,
) -> list[UserMessage]:
    """An original logo or app icon: a simple, scalable mark in a few variations to choose from."""
    shapes = {
        "symbol": "A symbol only, with no letters or words.",
        "wordmark": f"The name {_quoted(brand)} set as a custom wordmark, spelled exactly {_spelled(brand)}.",
        "combination": f"A simple symbol beside the name {_quoted(brand)}, spelled exactly {_spelled(brand)}.",
        "app-icon": "An app icon: one bold symbol on a rounded-square tile, no letters.",
    }
    prompt = (f"An original, non-infringing logo for {brand}, {business}. Personality: {personality}. "
              f"{shapes[kind]} Clean vector-like flat shapes, a strong silhouette and balanced negative space, so it "
              f"reads at favicon size and on a billboard alike. Palette: {colors}. No gradients unless essential. "
              f"One centred mark with generous padding on a plain white background. No mock-up, no watermark, no "
              f"other text.")
    call = _call("generate_image", {"prompt": prompt, "size": "1024x1024", "quality": "medium", "n": variations,
                                    "background": "opaque", "output_format": "png", "filename_prefix": "logo"})
    return _message(f"Design a logo for {brand}.", call,
                    "Show the user every variation with its path. Refine the chosen one with `edit_image` "
                    "(\"change only the colour of the symbol to ...; keep everything else the same\").")


def infographic(
    topic: Annotated[str, Written, Field(description="What the graphic explains.")],
    exact_text: Annotated[str, Written, Field(description="Every word that must appear, verbatim: the title on "
                                                          "the first line, then one label or short line per line.")],
    audience: Annotated[str, Field(description="Who reads it (default 'a general audience').")] = (
        "a general audience"),
    kind: Annotated[Literal["infographic", "flowchart", "diagram", "slide", "poster"], Field(
        description="'infographic' (default), 'flowchart', 'diagram', 'slide' or 'poster'.")] = "infographic",
    aspect: PortraitAspect = "portrait",
    quality: HighQuality = "high",
) -> list[UserMessage]:
    """An infographic, diagram or slide whose text must come out exactly as given."""
    title, *labels = _lines(exact_text) or [topic]
    words = "\n".join([f"Title: {_quoted(title)}", *(f"- {_quoted(label)}" for label in labels)])
    prompt = (f"A clean, flat {kind} for {audience} that explains {topic}. The title across the top, then the "
              f"content in a clear reading order, arrows or numbered steps where there is a sequence, a consistent "
              f"simple icon style, generous white space, high-contrast text.\n"
              f"Text (EXACT, verbatim, each once, no other words):\n{words}\n"
              f"Typography: a clean sans-serif; the title large and bold, labels readable at a glance. No tiny "
              f"text, no decorative clutter, no stock photos, no watermark.")
    call = _call("generate_image", {"prompt": prompt, "size": SIZES[aspect], "quality": quality,
                                    "background": "opaque", "output_format": "png", "filename_prefix": kind})
    return _message(f"Make {_a(kind)} about {topic} with exact text.", call,
                    "Then check every word in the image against the list. For a wrong word, call `edit_image` on "
                    "the saved file: 'Change only the text \"WRONG\" to \"RIGHT\"; keep everything else the "
                    "same.'")


def photoreal_portrait(
    subject: Annotated[str, Written, Field(description="Who: age, look, clothing, expression, what they are "
                                                       "doing.")],
    setting: Annotated[str, Field(description="Where (default 'a quiet café by a window').")] = (
        "a quiet café by a window"),
    lighting: Annotated[str, Field(description="The light and mood (default 'soft natural window light').")] = (
        "soft natural window light"),
    framing: Annotated[Literal["close-up", "head-and-shoulders", "half-body", "full-body"], Field(
        description="'close-up', 'head-and-shoulders' (default), 'half-body' or 'full-body'.")] = (
        "head-and-shoulders"),
    aspect: PortraitAspect = "portrait",
    quality: HighQuality = "high",
) -> list[UserMessage]:
    """A natural, photorealistic portrait that looks like a real, unretouched photograph."""
    frames = {"close-up": "a close-up of the face", "head-and-shoulders": "framed head and shoulders",
              "half-body": "framed from the waist up", "full-body": "full body visible, feet included"}
    prompt = (f"A photorealistic candid photograph of {subject}, {frames[framing]}, in {setting}. Shot like a real "
              f"photo on a 50 mm lens at eye level, shallow depth of field; {lighting}. Real skin texture with pores "
              f"and fine lines, natural hair strands, true-to-life colour, subtle film grain. A natural, unposed "
              f"moment. No glamour retouching, no plastic skin, no text, no watermark.")
    call = _call("generate_image", {"prompt": prompt, "size": SIZES[aspect], "quality": quality,
                                    "output_format": "png", "filename_prefix": "portrait"})
    return _message("Make a photorealistic portrait with gpt-image-2.", call,
                    "For changes to the result (expression, clothing, light), use `edit_image` on the saved file "
                    "and say what must stay: the face, identity, pose and framing.")


def local_edit(
    image: Annotated[str, Written, Field(description="The picture to edit: a path, file:// URL or http(s) URL.")],
    change: Annotated[str, Written, Field(description="The one change to make, e.g. 'make the mug red'.")],
    keep: Annotated[str, Field(description="What must stay exactly as it is (default: everything else).")] = "",
    mask: Annotated[str | None, Field(description="Optional PNG mask, the size of the image, with an alpha "
                                                  "channel: transparent where the change goes.")] = None,
    quality: HighQuality = "high",
) -> list[UserMessage]:
    """A precise local edit: change only one thing in a picture and keep everything else as it is."""
    kept = keep or ("the composition, framing and camera angle, every other object, any person's face and "
                    "identity, the colours, saturation, contrast and lighting, and any text")
    prompt = (f"Change only this: {change}. Keep everything else exactly the same: {kept}. Do not add, remove or "
              f"move anything else.")
    arguments: dict[str, Any] = {"prompt": prompt, "images": [image]}
    if mask:
        arguments["mask"] = mask
    arguments.update({"size": "auto", "quality": quality, "output_format": "png", "filename_prefix": "edit"})
    mask_hint = ("The mask's transparent pixels mark where the change may happen." if mask else
                 "No mask was given, so the prompt alone confines the change. For a strictly local change, pass "
                 "`mask`: a PNG the size of the image with an alpha channel, transparent over the area to change "
                 "and opaque everywhere else.")
    return _message(f"Edit {image}: {change}, and nothing else.", _call("edit_image", arguments), mask_hint,
                    "For another change to the result, repeat the keep list in the next prompt, or use "
                    "`start_edit_session` for several rounds.")


def consistent_character(
    character: Annotated[str, Written, Field(description="The character, distinctively: face, hair, build, "
                                                         "clothing, colours. It is repeated word for word in every "
                                                         "scene.")],
    scenes: Annotated[str, Written, AfterValidator(_at_most_scenes), Field(
        description=f"The scenes in order, one per line (1..{MAX_SCENES}).")],
    style: Annotated[str, Field(description="The look of every picture (default 'clean digital "
                                            "illustration').")] = "clean digital illustration",
    reference_image: Annotated[str | None, Field(description="Optional path or URL of an existing picture of "
                                                             "the character to start from.")] = None,
    aspect: LandscapeAspect = "landscape",
    quality: MediumQuality = "medium",
) -> list[UserMessage]:
    """One character kept consistent across several scenes, through an edit session."""
    keep = (f"Keep the character exactly the same as in the input image: {character}; the same face, proportions, "
            f"hair, clothing and colours. Style: {style}.")
    first, *later = _lines(scenes)
    steps = []
    if reference_image:
        reference = reference_image
    else:
        reference = "<path of the reference image from step 1>"
        sheet = (f"A character reference picture in {style}: {character}. Full body, front view, neutral pose, "
                 f"plain light background, even light. No text, no watermark.")
        steps.append("Step 1, the reference: " + _call("generate_image", {
            "prompt": sheet, "size": "1024x1536", "quality": quality, "filename_prefix": "character"}))
    size = SIZES[aspect]
    steps.append(f"Step {len(steps) + 1}, scene 1: " + _call("start_edit_session", {
        "prompt": f"New scene: {first}. {keep}", "images": [reference], "size": size, "quality": quality,
        "filename_prefix": "scene"}))
    for number, scene in enumerate(later, start=2):
        steps.append(f"Step {len(steps) + 1}, scene {number}: " + _call("continue_edit_session", {
            "session_id": "<session_id from scene 1>", "prompt": f"New scene: {scene}. {keep}"}))
    steps.append("If the character drifts in a scene, redo it with `continue_edit_session` and `from_turn` set to "
                  "an earlier good turn, or call `edit_image` with images [the reference, the drifted scene]: "
                  "'Image 1 is the character reference. Make the character in Image 2 match Image 1 exactly; "
                  "change nothing else.' End with `end_edit_session` and list every scene's path for the user.")
    return _message(f"Draw {len(later) + 1} scene(s) with the same character.", *steps)


class GuidedPrompt(Prompt):
    """A prompt whose argument errors say which argument and what it accepts (JSON-RPC invalid params),
    instead of the SDK's bare "Error rendering prompt"."""

    async def render(self, arguments: dict[str, Any] | None, context: Any) -> Any:
        given = set(arguments or {})
        names = [argument.name for argument in self.arguments or []]
        if unknown := sorted(given - set(names)):
            raise MCPError(INVALID_PARAMS, f"Prompt {self.name} has no argument {', '.join(unknown)}; it takes "
                                           f"{', '.join(names)}.")
        missing = [a for a in self.arguments or [] if a.required and a.name not in given]
        if missing:
            needed = "; ".join(f"`{a.name}` ({(a.description or '').rstrip('.')})" for a in missing)
            raise MCPError(INVALID_PARAMS, f"Prompt {self.name} needs {needed}.")
        try:
            return await super().render(arguments, context)
        except ValueError as e:
            if isinstance(e.__cause__, ValidationError):
                raise MCPError(INVALID_PARAMS, explain_prompt_arguments(self.name, e.__cause__)) from None
            raise


PROMPTS: tuple[tuple[Callable[..., list[UserMessage]], str, str], ...] = (
    (product_shot, "Product shot on a clean background", "generate_image"),
    (logo, "Logo or app icon", "generate_image"),
    (infographic, "Infographic or diagram with exact text", "generate_image"),
    (photoreal_portrait, "Photorealistic portrait", "generate_image"),
    (local_edit, "Precise local edit", "edit_image"),
    (consistent_character, "Consistent character across scenes", "start_edit_session"),
)


def register_prompts(server: MCPServer) -> None:
    """Add every prompt to the server, each with the icon of the tool it leads to."""
    for fn, title, tool in PROMPTS:
        server.add_prompt(GuidedPrompt.from_function(
            fn, title=title, description=inspect.cleandoc(fn.__doc__ or ""), icons=tool_icons(tool)))
