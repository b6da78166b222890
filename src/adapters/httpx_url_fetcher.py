"""HttpxUrlFetcher: fetches reference images over http(s) without becoming a tool for reaching internal hosts.

Every hop's host is resolved once, every address is checked, and the connection goes to the checked address
(the Host header, SNI and certificate check keep the original name), so DNS rebinding has no window.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_REDIRECTS = {301, 302, 303, 307, 308}
ALLOW_HINT = "If this is an intranet host you trust, list it in GPT_IMAGE_2_ALLOWED_URL_HOSTS."


class UrlFetchRefused(Exception):
    """The URL may not be fetched: scheme, or a host that resolves to a non-public address."""


class UrlFetchFailed(Exception):
    """The fetch was allowed but did not produce an image body."""


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses; embedded IPv4 addresses are judged too."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_public_address(ip.sixtofour)
        if ip.teredo is not None:
            return all(is_public_address(embedded) for embedded in ip.teredo)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _NAT64_LOCAL:
            return False
        if int(ip) >> 32 == 0:  # IPv4-compatible ::a.b.c.d (and :: and ::1)
            return False
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
        or ip.is_unspecified
    )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _redact(url: str) -> str:
    """The URL as it may appear in a message: no userinfo, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class HttpxUrlFetcher:
    """`allow_private=True` turns the address check off entirely: for tests and benchmarks only."""

    def __init__(
        self,
        *,
        timeout_s: float = 20.0,
        max_bytes: int = 50 * 1024 * 1024,
        max_redirects: int = 3,
        allowed_hosts: frozenset[str] = frozenset(),
        resolver: Resolver = system_resolver,
        allow_private: bool = False,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._allowed = frozenset(h.lower() for h in allowed_hosts)
        self._resolver = resolver
        self._allow_private = allow_private

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """(body, content type) of `url`, following at most max_redirects checked redirects."""
        try:
            with anyio.fail_after(self._timeout_s):
                return await self._fetch(url)
        except TimeoutError:
            raise UrlFetchFailed(f"{_redact(url)} did not answer within {self._timeout_s:g}s.") from None

    async def _fetch(self, url: str) -> tuple[bytes, str | None]:
        async with httpx2.AsyncClient(follow_redirects=False, trust_env=False, timeout=self._timeout_s) as client:
            for _hop in range(self._max_redirects + 1):
                request = await self._pinned_request(client, url)
                try:
                    response = await client.send(request, stream=True)
                except httpx2.HTTPError as e:
                    raise UrlFetchFailed(f"could not fetch {_redact(url)}: {type(e).__name__}.") from None
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise UrlFetchFailed(f"{_redact(url)} answered HTTP {response.status_code}.")
                    return await self._body(response, url), response.headers.get("content-type")
                finally:
                    await response.aclose()
        raise UrlFetchFailed(f"{_redact(url)} redirected more than {self._max_redirects} times.")

    async def _pinned_request(self, client: httpx2.AsyncClient, url: str) -> httpx2.Request:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlFetchRefused(f"only http and https URLs can be fetched, not {parts.scheme or 'this'}: URLs.")
        host = (parts.hostname or "").lower()
        if not host:
            raise UrlFetchRefused(f"{_redact(url)} names no host.")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self._checked_address(host, port)
        target = httpx2.URL(url).copy_with(host=address)
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
        return client.build_request(
            "GET", target, headers={"Host": host_header, "Accept": "image/png,image/jpeg,image/webp,*/*;q=0.5"},
            extensions={"sni_hostname": host},
        )

    async def _checked_address(self, host: str, port: int) -> str:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self._resolver(host, port)
            except OSError as e:
                raise UrlFetchFailed(f"cannot resolve {host}: {e}.") from None
        if not addresses:
            raise UrlFetchFailed(f"cannot resolve {host}.")
        if not (self._allow_private or host in self._allowed):
            for address in addresses:
                if not is_public_address(ipaddress.ip_address(address.split("%")[0])):
                    raise UrlFetchRefused(
                        f"{host} points to {address}, a private, loopback, link-local or otherwise non-public "
                        f"address; such URLs are not fetched. Download the image and pass its path instead. "
                        f"{ALLOW_HINT}"
                    )
        return addresses[0]

    async def _body(self, response: httpx2.Response, url: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise UrlFetchFailed(f"{_redact(url)} is {int(declared):,} bytes; the limit is {self._max_bytes:,}.")
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > self._max_bytes:
                raise UrlFetchFailed(f"{_redact(url)} is larger than {self._max_bytes:,} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)
