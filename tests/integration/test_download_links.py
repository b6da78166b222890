"""Signed, expiring download links: made for each image over HTTP, served without a token, refused when altered,
moved to another owner's image, or expired."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gpt_image_2_mcp.adapters.tokens_file_verifier import new_token
from gpt_image_2_mcp.entrypoints.download_links import DownloadLinks, LinkRefused
from tests.conftest import make_container
from tests.http_harness import bound_socket, client_with_token, http, serve_http

KEY = b"k" * 32


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_a_link_names_its_owner_until_it_expires_and_not_after():
    clock = Clock()
    links = DownloadLinks(KEY, "https://images.example.com", ttl_s=600, clock=clock)
    url = links.url("img_1", "issuer#alice")
    assert url.startswith("https://images.example.com/images/img_1?")
    assert links.owner_of("img_1", query(url)) == "issuer#alice"
    clock.now += 601
    with pytest.raises(LinkRefused, match="expired"):
        links.owner_of("img_1", query(url))


@pytest.mark.parametrize("change", ["another image", "another owner", "later expiry", "another key", "no sig",
                                    "garbage owner", "non-ascii sig"])
def test_an_altered_link_is_refused(change):
    links = DownloadLinks(KEY, "https://x", ttl_s=600, clock=Clock())
    image_id, given = "img_1", query(links.url("img_1", "issuer#alice"))
    if change == "another image":
        image_id = "img_2"
    elif change == "another owner":
        given["o"] = base64.urlsafe_b64encode(b"issuer#bob").decode().rstrip("=")
    elif change == "later expiry":
        given["exp"] = str(int(given["exp"]) + 3600)
    elif change == "another key":
        links = DownloadLinks(b"z" * 32, "https://x", ttl_s=600, clock=Clock())
    elif change == "no sig":
        del given["sig"]
    elif change == "non-ascii sig":
        given["sig"] = "é"
    else:
        given["o"] = "%%%"
    with pytest.raises(LinkRefused):
        links.owner_of(image_id, given)


@pytest.fixture
def sock():
    listening = bound_socket()
    yield listening
    listening.close()


async def test_over_http_the_link_downloads_the_image_without_a_token_and_only_that_image(tmp_path, sock):
    token, line = new_token("alice")
    (tmp_path / "tokens").write_text(line + "\n")
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                               transport="http", http_port=sock.getsockname()[1],
                               auth_tokens_file=str(tmp_path / "tokens"), url_signing_key="s" * 40)
    async with serve_http(container, sock) as served:
        async with client_with_token(served.mcp_url, token) as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "inline": "none"})
        image = result.structured_content["images"][0]
        url = image["download_url"]
        downloaded = await http(url)
        moved = await http(url.replace(image["image_id"], "img_0000000000000000"))
        unsigned = await http(url.split("?")[0])
        signer = DownloadLinks(b"s" * 40, served.base, 600)
        unknown = await http(signer.url("img_0000000000000000", "tokens-file#alice"))  # validly signed
    assert url.startswith(f"{served.base}/images/{image['image_id']}?")
    assert downloaded.status == 200 and downloaded.body == Path(image["file_path"]).read_bytes()
    assert downloaded.headers["content-type"] == "image/png" and "no-store" in downloaded.headers["cache-control"]
    assert moved.status == 403 and unsigned.status == 403
    assert unknown.status == 404


async def test_without_a_signing_key_there_are_no_links(tmp_path, sock):
    container = make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                               transport="http", http_port=sock.getsockname()[1])
    async with serve_http(container, sock) as served:
        from mcp.client import Client

        async with Client(served.mcp_url, mode="legacy") as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "inline": "none"})
        route = await http(f"{served.base}/images/{result.structured_content['images'][0]['image_id']}")
    assert result.structured_content["images"][0]["download_url"] is None
    assert route.status == 404


@pytest.mark.parametrize("public_url, base", [
    ("https://images.example.com", "https://images.example.com/images/"),
    ("https://images.example.com/mcp", "https://images.example.com/images/"),
    ("https://example.com/team-a/mcp", "https://example.com/team-a/images/"),  # behind a shared reverse proxy
    ("https://example.com/team-a/", "https://example.com/team-a/images/"),
])
def test_links_keep_the_path_prefix_the_service_is_published_under(public_url, base):
    from gpt_image_2_mcp.entrypoints.http_extras import download_links
    from gpt_image_2_mcp.entrypoints.settings import Settings

    links = download_links(Settings(public_url=public_url, url_signing_key="s" * 40, transport="http",
                                    output_dir="/srv/images"))
    assert links.url("img_1", "alice").startswith(base + "img_1?")
