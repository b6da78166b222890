"""Streamable HTTP at /mcp (both protocol eras, through the SDK), /healthz beside it, served by uvicorn."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gpt_image_2_mcp.adapters.redaction import scrub

from .auth import check_binding
from .body_limit import MIB, ExplainedBodyLimit
from .container import Container
from .invalid_messages import ExplainedInvalidMessages
from .settings import ConfigurationError, Settings
from .state_location import without_credentials
from .use_cases import resolve

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PROBE_OWNER = "healthz-probe"
"""A made-up owner for the health probe: the query touches the store without reading anyone's records."""
HEALTH_TIMEOUT_S = 5.0


def check_http_settings(settings: Settings) -> None:
    """What HTTP mode needs beyond stdio; raises ConfigurationError with one line per problem."""
    lines = []
    if not settings.output_dir:
        lines.append("GPT_IMAGE_2_OUTPUT_DIR is not set: over HTTP the images go to one configured folder "
                     "(shared by the replicas); set it to an absolute path.")
    if lines:
        raise ConfigurationError(lines)
    check_binding(settings)


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Always explicit: the SDK switches DNS-rebinding protection off for any host but loopback if left None."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.http_allowed_hosts,
        allowed_origins=settings.http_allowed_origins,
    )


def add_health_route(server: MCPServer, container: Container) -> None:
    """GET /healthz: 200 when the process and its state store answer, 503 with a one-line reason otherwise.

    Outside auth (a custom route), so it says nothing but ok or why not: no URLs, no owners, no secrets."""
    settings = container.settings()

    @server.custom_route("/healthz", methods=["GET"], include_in_schema=False)
    async def healthz(_request: Request) -> Response:
        try:
            with anyio.fail_after(HEALTH_TIMEOUT_S):
                ledger = await resolve(container.spend_ledger)
                await ledger.spent_since(HEALTH_PROBE_OWNER, time.time())
        except TimeoutError:
            return _unhealthy(f"the state store did not answer within {HEALTH_TIMEOUT_S:g} s")
        except Exception as e:  # any failure of the store is the answer, not a crash of the probe
            # The page is public: where the store is and what failed go to the log, for the operator.
            detail = scrub(without_credentials(str(e)), settings.secrets) or type(e).__name__
            log.warning("health check: the state store failed: %s", detail)
            return _unhealthy("the state store failed (the server's log says why)")
        return JSONResponse({"status": "ok", "state": "ok"})


def _unhealthy(reason: str) -> Response:
    return JSONResponse({"status": "unavailable", "state": "error", "reason": reason}, status_code=503)


def build_http_app(server: MCPServer, container: Container) -> Starlette:
    """The Starlette app: the SDK's streamable HTTP endpoint (SSE responses, so progress reaches the caller)
    plus our routes. Its lifespan is the SDK session manager's, which runs the server's own lifespan (jobs,
    the state store) once for the life of the process and closes them on shutdown."""
    settings = container.settings()
    add_health_route(server, container)
    max_body = settings.http_max_body_mb * MIB
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        json_response=False,  # never True: a JSON response drops every progress notification
        stateless_http=settings.http_stateless,
        transport_security=transport_security(settings),
        host=settings.http_host,
        max_request_body_size=max_body,
    )
    app.add_middleware(ExplainedInvalidMessages)
    app.add_middleware(ExplainedBodyLimit, max_bytes=max_body)
    return app


def uvicorn_config(app: Any, settings: Settings) -> Any:
    import uvicorn

    # log_config=None: uvicorn keeps to the root logger we set up (stderr, secrets scrubbed) instead of its
    # own handlers; no access log (it would name every caller's path and address at INFO).
    return uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None,
                          access_log=False, lifespan="on", server_header=False)


def serve_http(server: MCPServer, container: Container) -> int:
    """Serve until interrupted; the lifespan closes jobs and the state store on the way out."""
    import uvicorn

    settings = container.settings()
    app = build_http_app(server, container)
    log.info("Serving MCP over streamable HTTP at http://%s:%d%s%s", _url_host(settings.http_host),
             settings.http_port, MCP_PATH, " (stateless)" if settings.http_stateless else "")
    if not settings.http_loopback and not (settings.public_url or settings.allowed_hosts):
        log.warning("Listening on %s, but only loopback Host headers are accepted (421 otherwise): set "
                    "GPT_IMAGE_2_PUBLIC_URL or GPT_IMAGE_2_ALLOWED_HOSTS to the name clients use.", settings.http_host)
    uvicorn.Server(uvicorn_config(app, settings)).run()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
