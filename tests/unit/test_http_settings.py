"""HTTP settings: loopback by default, explicit lists when configured, bad values told in one line each."""

import pytest

from gpt_image_2_mcp.entrypoints.settings import ConfigurationError, load_settings


def test_hosts_and_origins_default_to_loopback_on_the_configured_port():
    settings = load_settings(http_port=9000)
    assert settings.transport == "stdio" and settings.http_host == "127.0.0.1" and settings.http_loopback
    assert settings.http_allowed_hosts == ["127.0.0.1:9000", "localhost:9000", "[::1]:9000"]
    assert settings.http_allowed_origins == ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"]


def test_the_public_url_joins_the_defaults_and_configured_lists_replace_them(monkeypatch):
    settings = load_settings(public_url="https://images.example.com/mcp")
    assert "images.example.com" in settings.http_allowed_hosts
    assert "https://images.example.com" in settings.http_allowed_origins
    monkeypatch.setenv("GPT_IMAGE_2_ALLOWED_HOSTS", "a.example:443, b.example")
    monkeypatch.setenv("GPT_IMAGE_2_ALLOWED_ORIGINS", "https://a.example")
    configured = load_settings()
    assert configured.http_allowed_hosts == ["a.example:443", "b.example"]
    assert configured.http_allowed_origins == ["https://a.example"]


def test_request_state_keys_are_a_comma_list_of_long_secrets_kept_out_of_messages(monkeypatch):
    long_a, long_b = "a" * 32, "b" * 40
    monkeypatch.setenv("GPT_IMAGE_2_REQUEST_STATE_KEYS", f"{long_a}, {long_b}")
    settings = load_settings()
    assert settings.state_keys == [long_a, long_b]
    assert long_a in settings.secrets  # scrubbed from logs like the API key
    monkeypatch.setenv("GPT_IMAGE_2_REQUEST_STATE_KEYS", f"{long_a},too-short-secret")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    [line] = raised.value.lines
    assert line.startswith("GPT_IMAGE_2_REQUEST_STATE_KEYS=(hidden) is not accepted: it must be comma-separated")
    assert "too-short-secret" not in line


@pytest.mark.parametrize(("name", "value", "says"), [
    ("GPT_IMAGE_2_TRANSPORT", "sse", "one of 'stdio' or 'http'"),
    ("GPT_IMAGE_2_HTTP_PORT", "0", "at least 1"),
    ("GPT_IMAGE_2_PUBLIC_URL", "ftp://x", "an http:// or https:// URL"),
    ("OPENAI_BASE_URL", "notaurl", "an http:// or https:// URL of the OpenAI API"),
    ("OPENAI_BASE_URL", "ftp://127.0.0.1/v1", "an http:// or https:// URL of the OpenAI API"),
    ("GPT_IMAGE_2_ALLOWED_HOSTS", "https://images.example.com", "Host headers (host or host:port"),
    ("GPT_IMAGE_2_ALLOWED_HOSTS", "a.example, b.example/mcp", "no scheme or path"),
    ("GPT_IMAGE_2_ALLOWED_ORIGINS", "images.example.com", "origins (scheme://host[:port]"),
    ("GPT_IMAGE_2_ALLOWED_ORIGINS", "https://a.example/app", "no path"),
])
def test_bad_http_values_are_one_line_each(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    [line] = raised.value.lines
    assert line.startswith(f"{name}=") and says in line


def test_the_url_signing_key_is_a_long_secret_kept_out_of_messages(monkeypatch):
    monkeypatch.setenv("GPT_IMAGE_2_URL_SIGNING_KEY", "short-signing-secret")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    [line] = raised.value.lines
    assert line.startswith("GPT_IMAGE_2_URL_SIGNING_KEY=(hidden)") and "short-signing-secret" not in line
    monkeypatch.setenv("GPT_IMAGE_2_URL_SIGNING_KEY", "x" * 32)
    assert "x" * 32 in load_settings().secrets


def test_dns_rebinding_protection_stays_on_for_every_bind_address():
    """The SDK would switch it off for a non-loopback host left without settings: ours are always explicit."""
    from gpt_image_2_mcp.entrypoints.http_server import transport_security

    for host in ("127.0.0.1", "0.0.0.0", "::", "images.internal"):
        security = transport_security(load_settings(http_host=host, public_url="https://images.example.com/mcp"))
        assert security.enable_dns_rebinding_protection is True
        assert "images.example.com" in security.allowed_hosts and "evil.example" not in security.allowed_hosts


def test_an_openai_base_url_typed_with_spaces_is_trimmed(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", " http://127.0.0.1:9/v1 ")
    assert load_settings().base_url == "http://127.0.0.1:9/v1"
