"""HttpxUrlFetcher: fetches reference images over http(s) without becoming a tool for reaching internal hosts.

Every hop's host is resolved once, every resolved address is checked, and the connection goes to a checked
address: the request URL carries the IP literal while the Host header keeps the original name, and for https
the `sni_hostname` request extension makes httpcore2 pass the original name as `server_hostname` to the TLS
handshake, so SNI and the certificate's hostname check are both against that name (never against the IP).
No second DNS lookup happens, so DNS rebinding has no window.

Each hop uses its own client: httpcore2's pool keys connections by (scheme, IP, port) only, so a shared pool
could reuse a TLS connection verified for one name for another name served from the same address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import anyio
import httpx2

from gpt_image_2_mcp.domain.errors import UrlFetchFailed, UrlFetchRefused
from gpt_image_2_mcp.domain.ports import UrlFetcher

from .special_addresses import IPAddress, is_link_local, is_public_address

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the host's IP addresses as strings. Raises OSError when the name does not resolve."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN_MAX = 200
_CONNECT_TIMEOUT_S = 10.0  # per address, so a dead first address leaves time for the next one
_HEADERS = {
    "Accept": "image/png,image/jpeg,image/webp,image/*;q=0.8,*/*;q=0.5",
    "User-Agent": "gpt-image-2-mcp (reference image fetch)",
}


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), run off the event loop; addresses in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_key(host: str) -> str:
    """How a host is compared with GPT_IMAGE_2_ALLOWED_URL_HOSTS: lower case, IDNA (punycode), canonical IPs."""
    host = host.strip().lower()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return httpx2.URL(f"http://{host}/").raw_host.decode("ascii") or host
    except (httpx2.InvalidURL, UnicodeError):
        return host


def _shown(url: httpx2.URL) -> str:
    """The URL as it may appear in a message: no userinfo, no query, no fragment, no endless path."""
    path = url.raw_path.decode("ascii").split("?", 1)[0]
    shown = f"{url.scheme}://{url.netloc.decode('ascii')}{path}"
    return shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 1] + "…"


def _status(code: int) -> str:
    """A status as shown in messages; the server's own reason phrase is not echoed (it is untrusted text)."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _describe(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class HttpxUrlFetcher(UrlFetcher):
    """Fetches http(s) URLs whose every hop resolves to public addresses only, pinned to the checked address.

    - `allowed_hosts`: exact host names (case-insensitive; IDNA names and IP literals are normalised) that skip
      the address check, for trusted intranet hosts (GPT_IMAGE_2_ALLOWED_URL_HOSTS).
    - `allow_private=True` turns the address check off entirely: for tests and benchmarks only, never in a
      server that takes URLs from a model or a user.
    - `ssl_context`: trust for https; None means the system's CAs (honouring SSL_CERT_FILE / SSL_CERT_DIR).
      Certificate and hostname verification are always on.
    - `timeout_s` bounds the whole fetch (DNS, connects, TLS, redirects and the body).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 20.0,
        max_bytes: int = 50 * 1024 * 1024,
        max_redirects: int = 3,
        allowed_hosts: frozenset[str] = frozenset(),
        resolver: Resolver = system_resolver,
        allow_private: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        remote_callers: bool = False,
    ) -> None:
        self._timeout_s = timeout_s
        self._remote_callers = remote_callers
        """Served over HTTP: a refusal's advice is for a user on another machine, the operator's goes to the log."""
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._allowed = frozenset(_host_key(h) for h in allowed_hosts if h.strip())
        self._resolver = resolver
        self._allow_private = allow_private
        self._ssl_context = ssl_context  # None until the first fetch: most servers never fetch a URL

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """(body, content type) of `url`, following at most max_redirects redirects, each one checked again."""
        first = self._parse(url.strip(), via=None)
        if self._ssl_context is None:  # reading the system's CA store takes ~30 ms: not on the event loop
            self._ssl_context = await anyio.to_thread.run_sync(lambda: httpx2.create_ssl_context(trust_env=True))
        try:
            with anyio.fail_after(self._timeout_s):
                return await self._fetch(first)
        except TimeoutError:
            raise UrlFetchFailed(f"{_shown(first)} did not answer within {self._timeout_s:g}s.") from None

    async def _fetch(self, url: httpx2.URL) -> tuple[bytes, str | None]:
        via: httpx2.URL | None = None
        for _hop in range(self._max_redirects + 1):
            host = url.raw_host.decode("ascii")
            addresses = await self._checked_addresses(host, url.port or _DEFAULT_PORTS[url.scheme], url, via)
            async with self._client() as client:
                response = await self._open(client, url, host, addresses)
                try:
                    if response.status_code in _REDIRECTS:
                        location = response.headers.get("location", "").strip()
                        if not location:
                            raise UrlFetchFailed(
                                f"{_shown(url)} answered HTTP {response.status_code} (a redirect) without a Location."
                            )
                        via, url = url, self._redirect_target(url, location)
                        continue
                    if not 200 <= response.status_code < 300:
                        raise UrlFetchFailed(f"{_shown(url)} answered HTTP {_status(response.status_code)}.")
                    return await self._body(response, url), response.headers.get("content-type")
                finally:
                    await response.aclose()
        raise UrlFetchFailed(f"{_shown(url)}: redirected more than {self._max_redirects} times; giving up.")

    def _parse(self, url: str, *, via: httpx2.URL | None) -> httpx2.URL:
        """The URL, if it is an absolute http(s) URL with a host and a valid port; messages never echo secrets."""
        context = f" (a redirect from {_shown(via)})" if via is not None else ""
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError, ValueError):
            raise UrlFetchRefused(f"this is not a valid http(s) URL{context}.") from None
        if parsed.scheme not in _DEFAULT_PORTS:
            scheme = f"{parsed.scheme}:" if parsed.scheme else "scheme-less"
            raise UrlFetchRefused(
                f"only http and https URLs can be fetched, not {scheme} URLs{context}. "
                "Pass a local file path for local images."
            )
        if not parsed.raw_host:
            raise UrlFetchRefused(f"{parsed.scheme}:// URL without a host{context}.")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise UrlFetchRefused(f"{_shown(parsed)} has an invalid port{context}.")
        return parsed

    def _redirect_target(self, url: httpx2.URL, location: str) -> httpx2.URL:
        try:
            target = url.join(location)
        except (httpx2.InvalidURL, TypeError, ValueError):
            raise UrlFetchRefused(f"{_shown(url)} redirected to an invalid URL.") from None
        return self._parse(str(target), via=url)

    async def _checked_addresses(self, host: str, port: int, url: httpx2.URL, via: httpx2.URL | None) -> list[str]:
        """The addresses to connect to: one lookup, and every address must be public unless the host is allowed."""
        addresses = [ipaddress.ip_address(host)] if _is_ip(host) else await self._resolve(host, port)
        if not (self._allow_private or _host_key(host) in self._allowed):
            for address in addresses:
                if not is_public_address(address):
                    reached = f" (reached by a redirect from {_shown(via)})" if via is not None else ""
                    what = f"{host} is" if _is_ip(host) else f"{host} resolves to {address},"
                    refusal = (f"{what} a private, loopback, link-local or otherwise non-public address, so "
                               f"{_shown(url)}{reached} is not fetched.")
                    raise UrlFetchRefused(self._advice(refusal, host, is_link_local(address)))
        return [str(a) for a in addresses]

    def _advice(self, refusal: str, host: str, link_local: bool) -> str:
        """What to do instead. Cloud metadata lives at link-local addresses: never suggest unlocking those."""
        unlock = f"set GPT_IMAGE_2_ALLOWED_URL_HOSTS={host} (comma-separated host names) to allow it"
        if self._remote_callers:  # their files are on another machine, and the server's settings are not theirs
            if not link_local:
                log.info("refused a URL on %s; if it is an intranet host you trust, %s", host, unlock)
            return (f"{refusal} Send the image as a data: URL (data:image/png;base64,...) or from a public https "
                    "URL instead.")
        if link_local:
            return f"{refusal} Download the image and pass its path instead."
        return (f"{refusal} Download the image and pass its path instead, or, if this is an intranet host you "
                f"trust, {unlock}.")

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            resolved = await self._resolver(host, port)
        except OSError as e:
            raise UrlFetchFailed(f"cannot resolve {host}: {e.strerror or e}.") from None
        try:
            addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in resolved))
        except ValueError:
            raise UrlFetchFailed(f"resolving {host} gave something that is not an IP address.") from None
        if not addresses:
            raise UrlFetchFailed(f"cannot resolve {host}: no addresses.")
        return addresses

    def _client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # a proxy would make its own DNS lookup and void the pinning
            verify=self._ssl_context,
            timeout=httpx2.Timeout(self._timeout_s, connect=min(self._timeout_s, _CONNECT_TIMEOUT_S)),
        )

    async def _open(self, client: httpx2.AsyncClient, url: httpx2.URL, host: str, addresses: list[str]
                    ) -> httpx2.Response:
        """Send the request to each checked address in turn until one connects; the name stays in Host and SNI."""
        extensions = {} if _is_ip(host) else {"sni_hostname": host}  # SNI + certificate check use this name
        headers = {**_HEADERS, "Host": url.netloc.decode("ascii")}
        failures: list[str] = []
        for address in addresses:
            try:
                request = client.build_request("GET", url.copy_with(host=address), headers=headers,
                                               extensions=extensions)
            except (httpx2.InvalidURL, ValueError) as e:
                failures.append(f"{address}: {_describe(e)}")
                continue
            try:
                return await client.send(request, stream=True)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as e:
                failures.append(f"{address}: {_describe(e)}")
            except httpx2.TimeoutException:
                raise TimeoutError from None
            except httpx2.HTTPError as e:
                raise UrlFetchFailed(f"could not fetch {_shown(url)}: {_describe(e)}.") from None
        raise UrlFetchFailed(f"could not connect to {_shown(url)} ({'; '.join(failures)}).")

    async def _body(self, response: httpx2.Response, url: httpx2.URL) -> bytes:
        """The decoded body, streamed: stops reading as soon as it passes max_bytes (decompressed bytes count)."""
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise UrlFetchFailed(f"{_shown(url)} is {int(declared):,} bytes; the limit is {self._max_bytes:,}.")
        chunks: list[bytes] = []
        received = 0
        try:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > self._max_bytes:
                    raise UrlFetchFailed(f"{_shown(url)} is larger than {self._max_bytes:,} bytes; giving up.")
                chunks.append(chunk)
        except httpx2.TimeoutException:
            raise TimeoutError from None
        except httpx2.HTTPError as e:
            raise UrlFetchFailed(f"the download of {_shown(url)} broke off: {_describe(e)}.") from None
        return b"".join(chunks)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
