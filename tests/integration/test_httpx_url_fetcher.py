"""HttpxUrlFetcher against a bait HTTP server on 127.0.0.1, with a stubbed resolver.

No test connects anywhere but 127.0.0.1: the address rules are tested as a pure function, and names that
"resolve" to private addresses are refused before any connection is made.
"""

import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpt_image_2_mcp.adapters.httpx_url_fetcher import (
    HttpxUrlFetcher,
    UrlFetchFailed,
    UrlFetchRefused,
    is_public_address,
)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "fec0::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.1.2.3", "::127.0.0.1",
    "2002:7f00:1::", "2002:a9fe:a9fe::1", "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
])
def test_non_public_addresses_are_refused(address):
    assert is_public_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_are_allowed(address):
    assert is_public_address(ipaddress.ip_address(address)) is True


class Bait(BaseHTTPRequestHandler):
    hits: list
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.hits.append((self.path, self.headers.get("Host")))
        if self.path.startswith("/redirect/"):
            target = self.path.removeprefix("/redirect/")
            self.send_response(302)
            self.send_header("Location", target if "://" in target else "/" + target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        body = b"x" * (5000 if self.path == "/big" else 100)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bait():
    hits = []
    handler = type("Handler", (Bait,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


class Resolver:
    """Maps test names to addresses and counts lookups. Nothing here touches DNS."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    async def __call__(self, host, port):
        self.calls.append(host)
        return self.table[host]


async def test_a_name_resolving_to_loopback_is_refused_without_a_connection(bait):
    port, hits = bait
    fetcher = HttpxUrlFetcher(resolver=Resolver({"images.example.test": ["127.0.0.1"]}))
    with pytest.raises(UrlFetchRefused, match=r"127\.0\.0\.1"):
        await fetcher.fetch(f"http://images.example.test:{port}/a.png")
    assert hits == []


async def test_one_bad_address_among_good_ones_refuses_the_host(bait):
    port, hits = bait
    fetcher = HttpxUrlFetcher(resolver=Resolver({"mixed.test": ["93.184.216.34", "127.0.0.1"]}))
    with pytest.raises(UrlFetchRefused, match="GPT_IMAGE_2_ALLOWED_URL_HOSTS"):
        await fetcher.fetch(f"http://mixed.test:{port}/a.png")
    assert hits == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:9/x", "http://[::ffff:127.0.0.1]:9/x", "http://0.0.0.0:9/x"])
async def test_address_literals_are_checked_too(url):
    resolver = Resolver({})
    with pytest.raises(UrlFetchRefused):
        await HttpxUrlFetcher(resolver=resolver).fetch(url)
    assert resolver.calls == []


async def test_an_allowed_host_is_fetched_at_the_checked_address_with_its_own_name(bait):
    port, hits = bait
    resolver = Resolver({"intranet.test": ["127.0.0.1"]})
    fetcher = HttpxUrlFetcher(resolver=resolver, allowed_hosts=frozenset({"INTRANET.test"}))
    body, content_type = await fetcher.fetch(f"http://intranet.test:{port}/a.png")
    assert body == b"x" * 100 and content_type == "image/png"
    assert hits == [("/a.png", f"intranet.test:{port}")]
    assert resolver.calls == ["intranet.test"]  # one lookup: the connection used the checked address


async def test_every_redirect_hop_is_checked_again(bait):
    port, hits = bait
    resolver = Resolver({"intranet.test": ["127.0.0.1"], "internal.test": ["127.0.0.1"]})
    fetcher = HttpxUrlFetcher(resolver=resolver, allowed_hosts=frozenset({"intranet.test"}))
    with pytest.raises(UrlFetchRefused, match=r"internal\.test"):
        await fetcher.fetch(f"http://intranet.test:{port}/redirect/http://internal.test:{port}/secret")
    assert [path for path, _ in hits] == [f"/redirect/http://internal.test:{port}/secret"]
    assert resolver.calls == ["intranet.test", "internal.test"]


async def test_a_redirect_to_another_scheme_is_refused(bait):
    port, _ = bait
    fetcher = HttpxUrlFetcher(allow_private=True)
    with pytest.raises(UrlFetchRefused, match="only http and https"):
        await fetcher.fetch(f"http://127.0.0.1:{port}/redirect/file:///etc/passwd")


async def test_more_than_three_redirects_fail(bait):
    port, _ = bait
    chain = "a.png"
    for _ in range(4):
        chain = f"redirect/{chain}"
    with pytest.raises(UrlFetchFailed, match="redirected more than 3"):
        await HttpxUrlFetcher(allow_private=True).fetch(f"http://127.0.0.1:{port}/{chain}")


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_bodies_over_the_cap_are_refused(bait, path):
    port, _ = bait
    with pytest.raises(UrlFetchFailed, match="4,096"):
        await HttpxUrlFetcher(allow_private=True, max_bytes=4096).fetch(f"http://127.0.0.1:{port}{path}")


async def test_a_hung_server_times_out(bait):
    port, _ = bait
    started = time.monotonic()
    with pytest.raises(UrlFetchFailed, match=r"did not answer within 0\.5s"):
        await HttpxUrlFetcher(allow_private=True, timeout_s=0.5).fetch(f"http://127.0.0.1:{port}/slow")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/a.png", "gopher://x/"])
async def test_other_schemes_are_refused(url):
    with pytest.raises(UrlFetchRefused):
        await HttpxUrlFetcher(resolver=Resolver({})).fetch(url)


async def test_a_404_is_a_clear_failure(bait):
    port, _ = bait
    with pytest.raises(UrlFetchFailed, match="HTTP 404"):
        await HttpxUrlFetcher(allow_private=True).fetch(f"http://127.0.0.1:{port}/missing")
