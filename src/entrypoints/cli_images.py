"""`gpt-image-2-mcp generate` and `gpt-image-2-mcp edit`: the image tools from a shell, with the tools' options.

Output: the saved paths on stdout, one a line, and a summary on stderr; `--json` prints the tools' structured
result (`ImageToolOutput`) instead; `--quiet` leaves stdout to the paths (or the JSON) and stderr to errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, get_args

from pydantic.fields import FieldInfo

from gpt_image_2_mcp.adapters.redaction import scrub, scrub_all
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.render_settings import SIZE_RULES, Moderation, RenderOptions
from gpt_image_2_mcp.domain.services import EditInputs, Outcome, Placement
from gpt_image_2_mcp.domain.spend import Confirmation
from gpt_image_2_mcp.domain.values import MAX_EDIT_INPUTS, GenerationRequest

from .container import Container
from .interrupts import pass_on
from .presentation import Presenter, nothing_spent
from .stdout_guard import writing_stdout
from .tool_arguments import (
    BackgroundArg,
    Compression,
    FormatArg,
    ModerationArg,
    N,
    Prefix,
    QualityArg,
    render_overrides,
    requested,
)
from .use_cases import UseCases, shut_down

COMMANDS = ("generate", "edit")
EXIT_FAILED = 2  # the code a bad configuration exits with too: the command could not do what was asked
BACKENDS = ("auto", "openai", "fake")
# A scheme and "//" (http://, file:///...) or a data: URL: "run-10:52" is a folder name, C:\... a Windows path.
_URL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]+://|data:|file:)", re.IGNORECASE)


def _help(annotated: Any, with_default: bool = True) -> str:
    """The tool argument's own description, so the command line and the tools say the same thing."""
    text = next(m.description for m in get_args(annotated)[1:] if isinstance(m, FieldInfo))
    return text.replace("%", "%%") + (" (default: %(default)s)" if with_default else "")


def _choices(annotated: Any) -> tuple[str, ...]:
    return get_args(get_args(annotated)[0])


def _add_render_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--size", default="auto", help=f"'auto' or WxH; {SIZE_RULES} (default: %(default)s)")
    command.add_argument("--quality", default="auto", choices=_choices(QualityArg), help=_help(QualityArg))
    command.add_argument("--n", type=int, default=1, help=_help(N))
    command.add_argument("--background", default="auto", choices=_choices(BackgroundArg), help=_help(BackgroundArg))
    command.add_argument("--format", default="png", choices=_choices(FormatArg), help=_help(FormatArg))
    command.add_argument("--compression", type=int, default=None, help=_help(Compression, with_default=False))
    command.add_argument("--output-dir", default=None, metavar="FOLDER", help=(
        "folder for the images; a relative one is inside the shell's folder (default: the server's output "
        "folder, GPT_IMAGE_2_OUTPUT_DIR)"))
    command.add_argument("--prefix", default=None, help=_help(Prefix, with_default=False))
    command.add_argument("--backend", choices=BACKENDS, help="override GPT_IMAGE_2_BACKEND for this command")
    command.add_argument("--json", action="store_true", help="print the structured result (the tools' output "
                                                            "schema: paths, sizes, image ids, cost) as JSON")
    command.add_argument("--quiet", "-q", action="store_true", help="print only the paths (or the JSON) on "
                                                                   "stdout and nothing on stderr but errors")
    command.add_argument("--confirm-cost", action="store_true", help=(
        "go ahead with a call estimated above GPT_IMAGE_2_CONFIRM_ABOVE_USD (without it, such a call is refused)"))


def shell_text(text: str) -> str:
    """A prompt as the shell passed it. Under a locale that cannot decode it (LC_ALL=C with UTF-8 mode off),
    Python keeps the undecodable bytes as surrogates, which no API request can carry: they are decoded as the
    UTF-8 a terminal sends."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "replace")
    return text


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The generate and edit subcommands."""
    generate = sub.add_parser("generate", help="generate images from a prompt and print where they went",
                              description="Generate images with gpt-image-2 and print their paths.")
    generate.add_argument("prompt", type=shell_text, help="what to draw, in plain language")
    _add_render_options(generate)
    generate.add_argument("--moderation", default="auto", choices=_choices(ModerationArg), help=_help(ModerationArg))
    edit = sub.add_parser("edit", help="edit or compose images and print where the results went",
                          description="Edit one image, or compose several, with gpt-image-2 and print the paths.")
    edit.add_argument("prompt", type=shell_text, help="what to change, in plain language")
    edit.add_argument("--image", dest="images", action="extend", nargs="+", required=True, metavar="PATH",
                      help=f"1..{MAX_EDIT_INPUTS} reference images (repeat or list several; the first is the one "
                           "edited): paths relative to the shell's folder, file://, http(s):// or data: URLs; PNG, "
                           "JPEG or WEBP")
    edit.add_argument("--mask", default=None, metavar="PATH", help=(
        "PNG with an alpha channel, the size of the first image: transparent pixels mark where to edit"))
    _add_render_options(edit)


def from_shell(path: str | None) -> str | None:
    """A path typed in a shell is relative to the shell's folder (a tool's relative output_dir means the default
    folder); URLs (file:, http(s):, data:) pass unchanged."""
    if path is None or _URL.match(path):
        return path
    return str(Path(path).expanduser().absolute())


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The command line in the tools' argument names."""
    arguments = {"size": args.size, "quality": args.quality, "n": args.n, "background": args.background,
                 "output_format": args.format, "output_compression": args.compression,
                 # An empty --output-dir (an unset shell variable, say) means the default folder, not the shell's.
                 "output_dir": from_shell((args.output_dir or "").strip() or None), "filename_prefix": args.prefix}
    if args.command == "edit":
        arguments.update(images=[from_shell(image) for image in args.images], mask=from_shell(args.mask))
    else:
        arguments["moderation"] = args.moderation
    return arguments


async def _confirmed(estimate_usd: float) -> Confirmation:
    return Confirmation.CONFIRMED  # --confirm-cost: the user said yes before the estimate was made


async def _make(args: argparse.Namespace, arguments: dict[str, Any], container: Container) -> Outcome:
    options = render_overrides(arguments).apply_to(RenderOptions())
    placement = Placement(arguments["output_dir"], arguments["filename_prefix"],
                          confirm=_confirmed if args.confirm_cost else None)
    if args.command == "edit":
        inputs = EditInputs(tuple(arguments["images"]), arguments["mask"])
        return await (await UseCases(container).edit())(args.prompt, inputs, options, placement)
    request = GenerationRequest(args.prompt, options, Moderation(arguments["moderation"]))
    return await (await UseCases(container).generate())(request, placement)


async def run(args: argparse.Namespace, container: Container) -> int:
    """Run generate or edit with a prepared container; the exit code."""
    secrets = container.settings().secrets
    arguments = _arguments(args)
    interrupted = note_ctrl_c()
    try:
        outcome = await _make(args, arguments, container)
    except ImageServerError as e:
        print(f"error: {scrub(str(e), secrets)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await shut_down(container)
    with writing_stdout(saved=[image.path for image in outcome.images]):
        _report(args, arguments, container, outcome)
    if interrupted.is_set():  # too late to stop: the images were paid for and saved, and are reported above
        print("Interrupted once the images were saved: they are kept.", file=sys.stderr)
        raise KeyboardInterrupt
    return 0


def note_ctrl_c() -> threading.Event:
    """Set when Ctrl-C (or SIGTERM, which takes the same handler) comes while the call runs; the event loop's
    own handler still cancels it. A cancellation after the save lets the call finish, so it must be told."""
    seen = threading.Event()
    on_ctrl_c = signal.getsignal(signal.SIGINT)

    def noting(signum: int, frame: FrameType | None) -> None:
        seen.set()
        pass_on(on_ctrl_c, signum, frame)

    signal.signal(signal.SIGINT, noting)
    return seen


def _report(args: argparse.Namespace, arguments: dict[str, Any], container: Container, outcome: Outcome) -> None:
    secrets = container.settings().secrets
    if args.json:
        settings = container.settings()
        presenter = Presenter(container.codec(), container.sink(), settings.preview_max_edge,
                              settings.preview_max_bytes)
        infos = [presenter.image_info(image) for image in outcome.images]
        output = presenter.structured(outcome, infos, [], requested(arguments))
        print(json.dumps(scrub_all(output.model_dump(mode="json"), secrets), indent=2))
    else:
        for image in outcome.images:
            print(image.path)
    if not args.quiet:
        _summarise(outcome)


def _summarise(outcome: Outcome) -> None:
    for note in outcome.notes:
        print(note, file=sys.stderr)
    first = outcome.images[0]
    print(f"{len(outcome.images)} image(s), {first.width}x{first.height}, estimated cost ${outcome.cost_usd:.4f}"
          f"{nothing_spent(outcome)}, backend {outcome.backend}", file=sys.stderr)
