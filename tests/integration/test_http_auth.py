"""Auth over real HTTP: JWTs from an identity provider on 127.0.0.1 (keys made by the test), RFC 9728 metadata,
401 with WWW-Authenticate, and scopes per tool and per method."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import make_container
from tests.fakes.fake_identity_provider import FakeIdentityProvider, other_private_key
from tests.http_harness import INITIALIZE, bound_socket, client_with_token, http, serve_http


@pytest.fixture
def idp():
    with FakeIdentityProvider() as provider:
        yield provider


@pytest.fixture
def sock():
    listening = bound_socket()
    yield listening
    listening.close()


def public_url(sock) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


def authed_container(tmp_path, sock, idp, **settings):
    return make_container(backend="fake", output_dir=str(tmp_path / "out"), state_url="memory://",
                          transport="http", http_port=sock.getsockname()[1], public_url=public_url(sock),
                          auth_jwks_url=idp.jwks_url, auth_issuer=idp.issuer, **settings)


async def test_no_token_is_401_pointing_at_the_protected_resource_metadata(tmp_path, sock, idp):
    async with serve_http(authed_container(tmp_path, sock, idp), sock) as served:
        refused = await http(served.mcp_url, "POST", INITIALIZE)
        challenge = refused.headers["www-authenticate"]
        metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
        metadata = await http(metadata_url)
        health = await http(f"{served.base}/healthz")
    assert refused.status == 401 and challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert metadata_url == f"{served.base}/.well-known/oauth-protected-resource/mcp"
    assert metadata.status == 200
    assert metadata.json()["resource"] == served.mcp_url
    assert [url.rstrip("/") for url in metadata.json()["authorization_servers"]] == [idp.issuer]
    assert health.status == 200  # outside auth


@pytest.mark.parametrize("case", ["bad signature", "expired", "wrong audience", "wrong issuer"])
async def test_a_bad_token_is_401(tmp_path, sock, idp, case):
    tokens = {
        "bad signature": lambda: idp.token(audience=public_url(sock), key=other_private_key()),
        "expired": lambda: idp.token(audience=public_url(sock), expires_in=-3600),
        "wrong audience": lambda: idp.token(audience="http://127.0.0.1:1/mcp"),
        "wrong issuer": lambda: idp.token(audience=public_url(sock), issuer="http://127.0.0.1:1"),
    }
    async with serve_http(authed_container(tmp_path, sock, idp), sock) as served:
        refused = await http(served.mcp_url, "POST", INITIALIZE, {"Authorization": f"Bearer {tokens[case]()}"})
    assert refused.status == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_good_token_generates_into_the_callers_own_folder(tmp_path, sock, idp, mode):
    token = idp.token("alice", audience=public_url(sock))
    async with serve_http(authed_container(tmp_path, sock, idp), sock) as served:
        async with client_with_token(served.mcp_url, token, mode=mode) as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "inline": "none"})
            listed = await client.list_resources()
    assert not result.is_error, result.content
    saved = result.structured_content["images"][0]["file_path"]
    assert saved.startswith(str(tmp_path / "out" / "u-")) and "alice" not in saved
    assert [str(r.uri) for r in listed.resources] == [result.structured_content["images"][0]["uri"]]


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_each_tool_and_method_needs_its_scope(tmp_path, sock, idp, era):
    reader = idp.token("rita", audience=public_url(sock), scopes="images:read")
    maker = idp.token("mark", audience=public_url(sock), scopes="images:generate")
    async with serve_http(authed_container(tmp_path, sock, idp), sock) as served:
        async with client_with_token(served.mcp_url, reader, mode=era) as client:
            tools = await client.list_tools()  # listing is allowed to every valid token
            generate = await client.call_tool("generate_image", {"prompt": "x"})
            edit = await client.call_tool("start_edit_session", {"prompt": "x", "images": ["a.png"]})
            sessions = await client.call_tool("list_edit_sessions", {})
        async with client_with_token(served.mcp_url, maker, mode=era) as client:
            made = await client.call_tool("generate_image", {"prompt": "x", "inline": "none"})
            with pytest.raises(MCPError, match="lacks the scope images:read"):
                await client.list_resources()
            job = await client.call_tool("get_image_job", {"job_id": "job_0000000000000000"})
    assert len(tools.tools) == 7
    assert generate.is_error and "lacks the scope images:generate" in generate.content[0].text
    assert edit.is_error and "lacks the scope images:edit" in edit.content[0].text
    assert not sessions.is_error
    assert not made.is_error
    assert job.is_error and "images:read" in job.content[0].text


async def test_binding_beyond_loopback_without_auth_is_refused(tmp_path):
    from gpt_image_2_mcp.entrypoints.http_server import check_http_settings
    from gpt_image_2_mcp.entrypoints.settings import ConfigurationError, load_settings

    with pytest.raises(ConfigurationError) as raised:
        check_http_settings(load_settings(transport="http", http_host="0.0.0.0", output_dir=str(tmp_path)))
    [line] = raised.value.lines
    assert "GPT_IMAGE_2_HTTP_HOST=0.0.0.0 is not a loopback address and no authentication" in line
    check_http_settings(load_settings(transport="http", http_host="::1", output_dir=str(tmp_path)))
