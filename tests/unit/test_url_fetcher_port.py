"""The URL fetcher is a domain port: the image source depends on the protocol, the errors are domain errors."""

import ast
import sys
import typing
from pathlib import Path

import pytest

from gpt_image_2_mcp.adapters.httpx_url_fetcher import HttpxUrlFetcher
from gpt_image_2_mcp.adapters.local_and_http_image_source import LocalAndHttpImageSource
from gpt_image_2_mcp.adapters.pillow_image_codec import PillowImageCodec
from gpt_image_2_mcp.domain import errors
from gpt_image_2_mcp.domain.ports import UrlFetcher
from tests.conftest import png_bytes

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "domain"


def test_the_httpx_fetcher_implements_the_port():
    assert UrlFetcher in HttpxUrlFetcher.__mro__  # subclasses the port explicitly (it is not runtime_checkable)
    assert typing.get_type_hints(LocalAndHttpImageSource.__init__)["fetcher"] is UrlFetcher


def test_fetch_errors_are_domain_errors():
    assert issubclass(errors.UrlFetchRefused, errors.InvalidRequest)  # the caller's URL breaks a rule
    assert issubclass(errors.UrlFetchFailed, errors.ImageServerError)
    assert not issubclass(errors.UrlFetchFailed, errors.InvalidRequest)


class StubFetcher(UrlFetcher):
    """Answers from a table; any other URL is refused or fails as the port says."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers, self.asked = answers, []

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        self.asked.append(url)
        if url.startswith("http://internal."):
            raise errors.UrlFetchRefused("internal.test is a private address.")
        if url not in self.answers:
            raise errors.UrlFetchFailed(f"{url} answered HTTP 404 Not Found.")
        return self.answers[url], "image/png"


async def test_the_image_source_takes_any_fetcher_that_implements_the_port():
    fetcher = StubFetcher({"https://images.test/a.png": png_bytes((40, 30))})
    source = LocalAndHttpImageSource(PillowImageCodec(), fetcher)
    image = await source.load("https://images.test/a.png", role="image 1")
    assert (image.width, image.height) == (40, 30) and fetcher.asked == ["https://images.test/a.png"]
    with pytest.raises(errors.InputImageError, match=r"image 1 \(http://internal\.test/x\): internal\.test is"):
        await source.load("http://internal.test/x", role="image 1")
    with pytest.raises(errors.InputImageError, match="404 Not Found"):
        await source.load("https://images.test/missing.png", role="image 1")


def test_the_domain_imports_nothing_but_the_standard_library():
    for module in sorted(DOMAIN.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", f"{module.name} imports {name}"
