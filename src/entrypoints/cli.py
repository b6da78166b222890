"""`gpt-image-2-mcp`: serve MCP on stdio (no arguments), or `generate` from the command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

import anyio

from gpt_image_2_mcp import __version__
from gpt_image_2_mcp.adapters.redaction import scrub
from gpt_image_2_mcp.domain.errors import ImageServerError
from gpt_image_2_mcp.domain.services import Placement
from gpt_image_2_mcp.domain.values import (
    Background,
    GenerationRequest,
    ImageSize,
    OutputFormat,
    Quality,
    RenderOptions,
)

from .container import Container
from .settings import Settings

log = logging.getLogger("gpt_image_2_mcp")


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
    container = Container()
    settings = Settings(**({"backend": backend} if backend else {}))
    container.settings.override(settings)
    return container


def announce(container: Container) -> None:
    settings = container.settings()
    choice = settings.resolved_backend
    if choice == "fake":
        reason = "no OPENAI_API_KEY is set" if settings.backend == "auto" else "GPT_IMAGE_2_BACKEND=fake"
        log.warning("Using the offline FAKE backend (%s): images are placeholders. Set OPENAI_API_KEY for real "
                    "gpt-image-2 images.", reason)
    elif not settings.api_key:
        log.warning("GPT_IMAGE_2_BACKEND=openai but OPENAI_API_KEY is not set: image calls will fail until it is.")
    else:
        log.info("Using OpenAI gpt-image-2 at %s", settings.base_url or "https://api.openai.com/v1")
    log.info("Images go to %s", settings.output_dir or container.sink().default_folder)


def serve(backend: str | None) -> None:
    # stdout is the JSON-RPC channel. Until the transport owns it (the SDK then diverts fd 1 to stderr for the
    # life of the server, so prints from any dependency land there), whatever gets printed goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from .mcp_server import build_server  # the MCP SDK is only imported when serving

        container = build_container(backend)
        configure_logging(container.settings())
        announce(container)
        server = build_server(container)
    server.run("stdio")


async def _generate(args: argparse.Namespace) -> int:
    container = build_container(args.backend)
    configure_logging(container.settings())
    announce(container)
    try:
        options = RenderOptions(
            size=ImageSize.parse(args.size), quality=Quality(args.quality), n=args.n,
            background=Background(args.background), output_format=OutputFormat(args.format),
            output_compression=args.compression,
        )
        outcome = await container.generate_image()(
            GenerationRequest(args.prompt, options), Placement(args.output_dir, args.prefix)
        )
    except ImageServerError as e:
        print(f"error: {scrub(str(e), container.settings().secrets)}", file=sys.stderr)
        return 2
    for note in outcome.notes:
        print(note, file=sys.stderr)
    for image in outcome.images:
        print(image.path)
    print(f"{len(outcome.images)} image(s), {outcome.images[0].width}x{outcome.images[0].height}, "
          f"estimated cost ${outcome.cost_usd:.4f}, backend {outcome.backend}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpt-image-2-mcp", description=(
        "MCP server for OpenAI gpt-image-2. With no command it serves MCP on stdio."))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="serve MCP on stdio (the default)")
    s.add_argument("--backend", choices=("auto", "openai", "fake"), help="override GPT_IMAGE_2_BACKEND")
    g = sub.add_parser("generate", help="generate images and print where they went")
    g.add_argument("prompt")
    g.add_argument("--size", default="auto")
    g.add_argument("--quality", default="auto", choices=[q.value for q in Quality])
    g.add_argument("--n", type=int, default=1)
    g.add_argument("--background", default="auto", choices=[b.value for b in Background])
    g.add_argument("--format", default="png", choices=[f.value for f in OutputFormat])
    g.add_argument("--compression", type=int, default=None)
    g.add_argument("--output-dir", default=None)
    g.add_argument("--prefix", default=None)
    g.add_argument("--backend", choices=("auto", "openai", "fake"), help="override GPT_IMAGE_2_BACKEND")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "generate":
        return anyio.run(_generate, args)
    serve(getattr(args, "backend", None))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
