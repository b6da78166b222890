"""`gpt-image-2-mcp`: serve MCP on stdio (no arguments) or over HTTP (`serve --transport http`), or `generate`,
`edit`, `sessions`, `images` from a shell."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

import anyio

from gpt_image_2_mcp import __version__
from gpt_image_2_mcp.adapters.redaction import scrub
from gpt_image_2_mcp.domain.errors import ImageServerError

from . import cli_images
from .cli_state import add_commands as add_state_commands
from .cli_state import list_images, list_sessions, list_spend
from .container import Container
from .interrupts import StdioInterrupts, pass_on
from .settings import ConfigurationError, Settings, load_settings
from .stdout_guard import StdoutLost, stdout_lost, writing_stdout

log = logging.getLogger("gpt_image_2_mcp")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a program ended by Ctrl-C
EXIT_TERMINATED = 143  # and by SIGTERM
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


def configure_logging(settings: Settings, quiet: bool = False) -> None:
    """Logs go to stderr only; stdout belongs to JSON-RPC. Quiet: errors only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(settings.secrets))
    if quiet:  # on the handler too: loggers with a level of their own (the SDKs') would pass a root-only limit
        handler.setLevel(logging.ERROR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR if quiet else logging.DEBUG if settings.debug else logging.INFO)
    if not settings.debug:
        for noisy in ("httpx2", "httpcore2", "openai", "mcp", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def build_container(backend: str | None = None, **overrides: object) -> Container:
    """The container over settings from the environment (command-line flags, when given, win). Raises
    ConfigurationError for bad values."""
    given = {name: value for name, value in {"backend": backend, **overrides}.items() if value is not None}
    container = Container()
    container.settings.override(load_settings(**given))
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


def serve(args: argparse.Namespace) -> int:
    # fd 0 or 1 closed by whoever started us; read here, as the redirect below puts stderr in stdout's place
    closed = sys.stdin is None or sys.stdout is None
    interrupts = StdioInterrupts(leave_now, EXIT_INTERRUPTED, EXIT_TERMINATED)
    interrupts.while_starting()
    # stdout is the JSON-RPC channel. Until the transport owns it (the SDK then diverts fd 1 to stderr for the
    # life of the server, so prints from any dependency land there), whatever gets printed goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from .mcp_server import build_server  # the MCP SDK is only imported when serving

        container = build_container(getattr(args, "backend", None), **_serve_overrides(args))
        settings = container.settings()
        if settings.transport == "stdio" and closed:  # over stdio there is no channel to serve on
            print("gpt-image-2-mcp: stdin or stdout is closed. An MCP client starts this server with pipes on "
                  "both; for HTTP, run `gpt-image-2-mcp serve --transport http`.", file=sys.stderr)
            return EXIT_USAGE
        if settings.transport == "http":
            from .http_server import check_http_settings, serve_http

            check_http_settings(settings)
        configure_logging(settings)
        announce(settings, container.sink().default_folder)
        server = build_server(container, interrupts if settings.transport == "stdio" else None)
        interrupts.before_serving()  # uvicorn and asyncio each install their own handler
        if settings.transport == "http":
            return serve_http(server, container)
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
    # The transport has handed fd 1 back to the JSON-RPC channel; whatever a dependency printed and sys.stdout
    # still buffers is not a message, so it goes where the rest of that noise went while serving: stderr.
    with contextlib.suppress(OSError):
        os.dup2(2, 1)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _serve_overrides(args: argparse.Namespace) -> dict[str, object]:
    return {"transport": getattr(args, "transport", None), "http_host": getattr(args, "host", None),
            "http_port": getattr(args, "port", None), "http_stateless": getattr(args, "stateless", None) or None}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpt-image-2-mcp", description=(
        "MCP server for OpenAI gpt-image-2. With no command it serves MCP on stdio."))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="serve MCP on stdio (the default) or over streamable HTTP")
    s.add_argument("--backend", choices=("auto", "openai", "fake"), help="override GPT_IMAGE_2_BACKEND")
    s.add_argument("--transport", choices=("stdio", "http"), help="override GPT_IMAGE_2_TRANSPORT (default stdio)")
    s.add_argument("--host", help="HTTP: the address to listen on (GPT_IMAGE_2_HTTP_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="HTTP: the port to listen on (GPT_IMAGE_2_HTTP_PORT, default 8765)")
    s.add_argument("--stateless", action="store_true",
                   help="HTTP: no sessions kept between requests, for replicas without sticky sessions "
                        "(GPT_IMAGE_2_HTTP_STATELESS=1)")
    t = sub.add_parser("token", help="bearer tokens for GPT_IMAGE_2_AUTH_TOKENS_FILE")
    t_sub = t.add_subparsers(dest="token_command", required=True)
    new = t_sub.add_parser("new", help="print a fresh token (once) and the tokens-file line that grants it")
    new.add_argument("subject", help="who the token is for (no spaces), e.g. alice@example.com")
    cli_images.add_commands(sub)
    add_state_commands(sub)
    return p


def new_token(subject: str) -> int:
    """The token on stdout's first line, the tokens-file line on the second; the explanation on stderr."""
    from gpt_image_2_mcp.adapters.tokens_file_verifier import TokensFileError
    from gpt_image_2_mcp.adapters.tokens_file_verifier import new_token as make

    try:
        token, line = make(subject)
    except TokensFileError as e:
        print(f"gpt-image-2-mcp: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"A new token for {subject}, shown this once (only its digest is kept): give it to {subject}, who "
          "sends it as `Authorization: Bearer <token>`. Then add the second line to GPT_IMAGE_2_AUTH_TOKENS_FILE "
          "(the server reads the file again when it changes).", file=sys.stderr)
    print(token)
    print(line)
    return 0


def _run(command: Callable[..., Awaitable[int]], *args: object) -> int:
    """A command under the event loop, Ctrl-C handed to it: from here a Ctrl-C cancels what runs (launch.py
    ended the process on the spot while nothing was open)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return anyio.run(command, *args)


def _listing(command: Callable[..., Awaitable[int]], *args: object) -> int:
    """A listing (sessions, images, spend): what can fail past its reads of the store is writing stdout."""
    with writing_stdout():
        return _run(command, *args)


_terminated = False


def terminate_like_ctrl_c() -> None:
    """SIGTERM (timeout, systemd, docker stop, a CI cancel) stops a generate or edit the way Ctrl-C does: the call
    is cancelled, its estimate released from the day's budget and no temporary file left; the default handler
    would end the process on the spot."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        global _terminated
        _terminated = True
        # Whatever Ctrl-C would do now: under the event loop, its handler cancels the call (so the steps after
        # the save still finish and report), rather than a KeyboardInterrupt raised in the middle of a write.
        pass_on(signal.getsignal(signal.SIGINT), signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def printable_anywhere() -> None:
    """What stdout or stderr cannot encode (a path with 'ü' under an ASCII locale, a Windows code page) is printed
    escaped ('\\xfc'), not raised: a traceback there came after the image was paid for, and lost its path."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    printable_anywhere()
    args = parser().parse_args(argv)
    try:
        if args.command in cli_images.COMMANDS:
            terminate_like_ctrl_c()
            container = build_container(args.backend)
            configure_logging(container.settings(), args.quiet)
            announce(container.settings())  # no folder: the paths of the images are printed at the end
            return _run(cli_images.run, args, container)
        if args.command == "sessions":
            return _listing(list_sessions, build_container(), args.json, args.owner)
        if args.command == "images":
            return _listing(list_images, build_container(), args.limit, args.json, args.owner)
        if args.command == "token":
            return new_token(args.subject)
        if args.command == "spend":
            return _listing(list_spend, build_container(), args.days, args.json, args.owner)
        return serve(args)
    except ConfigurationError as e:
        for line in e.lines:
            print(f"gpt-image-2-mcp: {line}", file=sys.stderr)
        return EXIT_USAGE
    except ImageServerError as e:  # e.g. the state store cannot be reached
        print(f"gpt-image-2-mcp: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_TERMINATED if _terminated else EXIT_INTERRUPTED
    except StdoutLost as lost:
        return stdout_lost(lost)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
