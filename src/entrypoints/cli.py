"""`gpt-image-2-mcp`: serve MCP on stdio (no arguments), or `generate` from the command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import anyio

from gpt_image_2_mcp import __version__
from gpt_image_2_mcp.adapters.redaction import scrub
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.render_settings import SIZE_RULES, Background, OutputFormat, Quality, RenderOptions
from gpt_image_2_mcp.domain.services import Placement
from gpt_image_2_mcp.domain.values import GenerationRequest

from .cli_state import add_commands as add_state_commands
from .cli_state import list_images, list_sessions
from .container import Container
from .settings import ConfigurationError, Settings, load_settings
from .tool_arguments import render_overrides
from .use_cases import UseCases, shut_down

log = logging.getLogger("gpt_image_2_mcp")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a program ended by Ctrl-C
INTERACTIVE_HINT = (
    "This is an MCP server speaking JSON-RPC on stdin/stdout; it is waiting for an MCP client. Add it to your "
    "client's configuration, try it with `gpt-image-2-mcp generate \"a red fox\"`, or with the MCP Inspector: "
    "`npx @modelcontextprotocol/inspector gpt-image-2-mcp`. Ctrl-C to quit."
)


class RedactingFormatter(logging.Formatter):
    """Scrubs API keys from every formatted line, tracebacks included."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self._secrets)


def configure_logging(settings: Settings) -> None:
    """Logs go to stderr only; stdout belongs to JSON-RPC."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(settings.secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if settings.debug else logging.INFO)
    if not settings.debug:
        for noisy in ("httpx2", "httpcore2", "openai", "mcp", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def build_container(backend: str | None = None) -> Container:
    """The container over settings from the environment. Raises ConfigurationError for bad values."""
    container = Container()
    container.settings.override(load_settings(**({"backend": backend} if backend else {})))
    return container


def announce(settings: Settings, output_folder: Path | None = None) -> None:
    choice = settings.resolved_backend
    if choice == "fake":
        reason = "no OPENAI_API_KEY is set" if settings.backend == "auto" else "GPT_IMAGE_2_BACKEND=fake"
        log.warning("Using the offline FAKE backend (%s): images are placeholders. Set OPENAI_API_KEY for real "
                    "gpt-image-2 images.", reason)
    elif not settings.api_key:
        log.warning("GPT_IMAGE_2_BACKEND=openai but OPENAI_API_KEY is not set: image calls will fail until it is.")
    else:
        log.info("Using OpenAI gpt-image-2 at %s", settings.base_url or "https://api.openai.com/v1")
    if output_folder is not None:
        log.info("Images go to %s", output_folder)
    log.info("Sessions and the image catalogue are kept in %s", settings.state)


def serve(backend: str | None) -> NoReturn:
    # stdout is the JSON-RPC channel. Until the transport owns it (the SDK then diverts fd 1 to stderr for the
    # life of the server, so prints from any dependency land there), whatever gets printed goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from .mcp_server import build_server  # the MCP SDK is only imported when serving

        container = build_container(backend)
        settings = container.settings()
        configure_logging(settings)
        announce(settings, container.sink().default_folder)
        server = build_server(container)
        if sys.stdin.isatty():
            log.warning(INTERACTIVE_HINT)
    server.run("stdio")
    leave_now(0)


def leave_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown.

    By the time serving ends the lifespan has closed what the server opened (SDK client, state store) and the
    transport has written its last line. What remains is tearing down ~1,500 modules, ~0.2 s that a client which
    closed stdin waits for, and that nothing of ours needs: flush what is buffered and leave.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def _generate(args: argparse.Namespace) -> int:
    container = build_container(args.backend)
    settings = container.settings()
    configure_logging(settings)
    announce(settings)  # no folder: the paths of the images are printed at the end
    try:
        options = render_overrides({
            "size": args.size, "quality": args.quality, "n": args.n, "background": args.background,
            "output_format": args.format, "output_compression": args.compression,
        }).apply_to(RenderOptions())
        generate = await UseCases(container).generate()
        placement = Placement(_from_shell(args.output_dir), args.prefix)
        outcome = await generate(GenerationRequest(args.prompt, options), placement)
    except ImageServerError as e:
        print(f"error: {scrub(str(e), settings.secrets)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        await shut_down(container)
    for note in outcome.notes:
        print(note, file=sys.stderr)
    for image in outcome.images:
        print(image.path)
    print(f"{len(outcome.images)} image(s), {outcome.images[0].width}x{outcome.images[0].height}, "
          f"estimated cost ${outcome.cost_usd:.4f}, backend {outcome.backend}", file=sys.stderr)
    return 0


def _from_shell(folder: str | None) -> str | None:
    """A folder typed in a shell means the shell's folder (a tool's relative output_dir means the default one)."""
    if folder is None or folder.lower().startswith("file:"):
        return folder
    return str(Path(folder).expanduser().absolute())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpt-image-2-mcp", description=(
        "MCP server for OpenAI gpt-image-2. With no command it serves MCP on stdio."))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="serve MCP on stdio (the default)")
    s.add_argument("--backend", choices=("auto", "openai", "fake"), help="override GPT_IMAGE_2_BACKEND")
    g = sub.add_parser("generate", help="generate images and print where they went")
    g.add_argument("prompt")
    g.add_argument("--size", default="auto", help=SIZE_RULES)
    g.add_argument("--quality", default="auto", choices=[q.value for q in Quality])
    g.add_argument("--n", type=int, default=1, help="how many images, 1..10")
    g.add_argument("--background", default="auto", choices=[b.value for b in Background])
    g.add_argument("--format", default="png", choices=[f.value for f in OutputFormat])
    g.add_argument("--compression", type=int, default=None, help="0..100, jpeg and webp only")
    g.add_argument("--output-dir", default=None, help="folder for the images (default: the server's folder)")
    g.add_argument("--prefix", default=None, help="file name prefix")
    g.add_argument("--backend", choices=("auto", "openai", "fake"), help="override GPT_IMAGE_2_BACKEND")
    add_state_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "generate":
            return anyio.run(_generate, args)
        if args.command == "sessions":
            return anyio.run(list_sessions, build_container(), args.json)
        if args.command == "images":
            return anyio.run(list_images, build_container(), args.limit, args.json)
        return serve(getattr(args, "backend", None))
    except ConfigurationError as e:
        for line in e.lines:
            print(f"gpt-image-2-mcp: {line}", file=sys.stderr)
        return EXIT_USAGE
    except ImageServerError as e:  # e.g. the state store cannot be reached
        print(f"gpt-image-2-mcp: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
