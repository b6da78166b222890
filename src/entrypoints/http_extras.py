"""What the server has only when served over HTTP: auth, metrics and signed download links, built before the
server (auth goes to its constructor, links to the tool runner) and installed on it after."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.mcpserver import MCPServer

from .auth import AuthSetup, ScopesMiddleware, auth_setup
from .container import Container
from .download_links import DownloadLinks, add_download_route
from .http_server import MCP_PATH
from .metrics import Metrics, MetricsMiddleware, add_metrics_route
from .settings import Settings
from .use_cases import UseCases


@dataclass(frozen=True, slots=True)
class HttpExtras:
    auth: AuthSetup | None
    metrics: Metrics
    links: DownloadLinks | None


def http_extras(container: Container, use_cases: UseCases, tools: frozenset[str]) -> HttpExtras:
    """Raises ConfigurationError for an incomplete auth configuration."""
    settings = container.settings()
    metrics = Metrics(tools)
    container.job_runner.add_kwargs(on_finished=metrics.job_finished)  # before anything resolves the runner
    metrics.count_jobs_in_flight(use_cases.running_jobs)
    return HttpExtras(auth_setup(settings), metrics, download_links(settings))


def download_links(settings: Settings) -> DownloadLinks | None:
    """Links only with a signing key; they point where the public URL serves /mcp from (loopback without one): a
    service published under a prefix (https://example.com/team-a/mcp) keeps it in its links."""
    if settings.url_signing_key is None:
        return None
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        path = parts.path.rstrip("/")
        prefix = path[: -len(MCP_PATH)] if path.endswith(MCP_PATH) else path
        base = f"{parts.scheme}://{parts.netloc}{prefix}"
    else:
        base = f"http://127.0.0.1:{settings.http_port}"
    return DownloadLinks(settings.url_signing_key.get_secret_value().encode(), base, settings.url_ttl_s)


def install_http_extras(server: MCPServer, extras: HttpExtras, use_cases: UseCases) -> None:
    """Middleware (metrics outermost, so refusals are counted and timed; then scopes) and the extra routes."""
    server.middleware.append(MetricsMiddleware(extras.metrics))
    if extras.auth is not None:
        server.middleware.append(ScopesMiddleware())
    add_metrics_route(server, extras.metrics)
    if extras.links is not None:
        add_download_route(server, extras.links, use_cases)
