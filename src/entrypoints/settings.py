"""Settings from the environment (pydantic-settings). The API key is a SecretStr and stays one."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .state_location import StateLocation
from .validation_messages import explain_settings

SECRET_VARIABLES = frozenset({"OPENAI_API_KEY", "GPT_IMAGE_2_REQUEST_STATE_KEYS", "GPT_IMAGE_2_URL_SIGNING_KEY"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_STATE_KEY_BYTES = 32  # the SDK's AES-GCM request-state codec refuses shorter keys


def _env(name: str, *more: str) -> AliasChoices:
    return AliasChoices(name, *more)


class Settings(BaseSettings):
    """Every knob, read from environment variables (names as documented in the README)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, case_sensitive=False)

    api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    organization: str | None = Field(None, validation_alias=_env("OPENAI_ORG_ID", "OPENAI_ORGANIZATION"))
    project: str | None = Field(None, validation_alias=_env("OPENAI_PROJECT_ID", "OPENAI_PROJECT"))
    backend: Literal["auto", "openai", "fake"] = Field("auto", validation_alias=_env("GPT_IMAGE_2_BACKEND"))
    debug: bool = Field(False, validation_alias=_env("GPT_IMAGE_2_MCP_DEBUG"))

    output_dir: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_OUTPUT_DIR"))
    allow_unsafe_output_dir: bool = Field(False, validation_alias=_env("GPT_IMAGE_2_ALLOW_UNSAFE_OUTPUT_DIR"))
    enforce_roots: bool = Field(True, validation_alias=_env("GPT_IMAGE_2_ENFORCE_ROOTS"))

    session_max: int = Field(20, ge=0, validation_alias=_env("GPT_IMAGE_2_SESSION_MAX"))
    session_ttl_ms: int = Field(3_600_000, ge=0, validation_alias=_env("GPT_IMAGE_2_SESSION_TTL_MS"))

    responses_edit_model: str = Field("gpt-4.1-mini", validation_alias=_env("OPENAI_RESPONSES_EDIT_MODEL"))
    force_responses_edits: bool = Field(False, validation_alias=_env("OPENAI_FORCE_RESPONSES_EDITS"))

    max_attempts: int = Field(4, ge=1, le=10, validation_alias=_env("GPT_IMAGE_2_MAX_ATTEMPTS"))
    retry_max_seconds: float = Field(30.0, gt=0, validation_alias=_env("GPT_IMAGE_2_RETRY_MAX_SECONDS"))
    request_timeout_s: float = Field(300.0, gt=0, validation_alias=_env("GPT_IMAGE_2_REQUEST_TIMEOUT_S"))

    preview_max_edge: int = Field(1568, ge=64, validation_alias=_env("GPT_IMAGE_2_PREVIEW_MAX_EDGE"))
    preview_max_bytes: int = Field(750_000, ge=10_000, validation_alias=_env("GPT_IMAGE_2_PREVIEW_MAX_BYTES"))
    heartbeat_s: float = Field(2.0, gt=0, le=5.0, validation_alias=_env("GPT_IMAGE_2_HEARTBEAT_S"))

    allowed_url_hosts: str = Field("", validation_alias=_env("GPT_IMAGE_2_ALLOWED_URL_HOSTS"))
    url_fetch_timeout_s: float = Field(20.0, gt=0, validation_alias=_env("GPT_IMAGE_2_URL_FETCH_TIMEOUT_S"))

    fake_latency_ms: int = Field(0, ge=0, validation_alias=_env("GPT_IMAGE_2_FAKE_LATENCY_MS"))

    state_url: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_STATE_URL"))

    budget_usd_per_day: float | None = Field(None, gt=0, validation_alias=_env("GPT_IMAGE_2_BUDGET_USD_PER_DAY"))
    confirm_above_usd: float | None = Field(None, ge=0, validation_alias=_env("GPT_IMAGE_2_CONFIRM_ABOVE_USD"))

    sync_wait_s: float = Field(50.0, ge=0, validation_alias=_env("GPT_IMAGE_2_SYNC_WAIT_S"))
    """How long a plain tool call waits before answering with a job id (0: for ever)."""
    job_heartbeat_s: float = Field(5.0, gt=0, le=60, validation_alias=_env("GPT_IMAGE_2_JOB_HEARTBEAT_S"))

    transport: Literal["stdio", "http"] = Field("stdio", validation_alias=_env("GPT_IMAGE_2_TRANSPORT"))
    http_host: str = Field("127.0.0.1", min_length=1, validation_alias=_env("GPT_IMAGE_2_HTTP_HOST"))
    http_port: int = Field(8765, ge=1, le=65535, validation_alias=_env("GPT_IMAGE_2_HTTP_PORT"))
    http_stateless: bool = Field(False, validation_alias=_env("GPT_IMAGE_2_HTTP_STATELESS"))
    http_max_body_mb: int = Field(64, ge=1, le=1024, validation_alias=_env("GPT_IMAGE_2_HTTP_MAX_BODY_MB"))
    """The largest request body over HTTP (data: URLs of input images travel in it)."""
    allowed_hosts: str = Field("", validation_alias=_env("GPT_IMAGE_2_ALLOWED_HOSTS"))
    allowed_origins: str = Field("", validation_alias=_env("GPT_IMAGE_2_ALLOWED_ORIGINS"))
    public_url: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_PUBLIC_URL"))
    request_state_keys: SecretStr | None = Field(None, validation_alias=_env("GPT_IMAGE_2_REQUEST_STATE_KEYS"))
    """Comma-separated secrets shared by every replica (the first seals, all unseal)."""

    auth_jwks_url: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_AUTH_JWKS_URL"))
    auth_issuer: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_AUTH_ISSUER"))
    auth_audience: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_AUTH_AUDIENCE"))
    """What the tokens' `aud` must hold; default: GPT_IMAGE_2_PUBLIC_URL (RFC 8707)."""
    auth_tokens_file: str | None = Field(None, validation_alias=_env("GPT_IMAGE_2_AUTH_TOKENS_FILE"))

    url_signing_key: SecretStr | None = Field(None, validation_alias=_env("GPT_IMAGE_2_URL_SIGNING_KEY"))
    """HTTP: signs expiring download links (GET /images/{id}) in results; unset: no links."""
    url_ttl_s: int = Field(3600, ge=60, le=7 * 24 * 3600, validation_alias=_env("GPT_IMAGE_2_URL_TTL_S"))

    @field_validator("url_signing_key", mode="before")
    @classmethod
    def _signing_key_is_long_enough(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if len(text.strip().encode()) < MIN_STATE_KEY_BYTES:
            raise ValueError(f"a secret of at least {MIN_STATE_KEY_BYTES} bytes")
        return value

    @field_validator("auth_jwks_url", "auth_issuer", "auth_audience", "auth_tokens_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth_jwks_url")
    @classmethod
    def _jwks_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("an https:// URL of the identity provider's JSON Web Key Set")
        return value

    @property
    def auth_configured(self) -> bool:
        return bool(self.auth_jwks_url or self.auth_tokens_file)

    @property
    def audience(self) -> str | None:
        return self.auth_audience or self.public_url

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        return _http_url(value, "an http:// or https:// URL with a host, e.g. https://images.example.com/mcp")

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        # Checked here: the SDK would only fail on the first paid call, with a message about a missing protocol.
        return _http_url(value, "an http:// or https:// URL of the OpenAI API, e.g. https://api.openai.com/v1")

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_are_host_headers(cls, value: str) -> str:
        # A URL here would start the server fine and then answer every request 421.
        if any("/" in host or " " in host for host in _comma_list(value)):
            raise ValueError("comma-separated Host headers (host or host:port, no scheme or path), e.g. "
                             "images.example.com,images.example.com:443")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for origin in _comma_list(value):
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise ValueError("comma-separated origins (scheme://host[:port], no path), e.g. "
                                 "https://app.example.com")
        return value

    @field_validator("request_state_keys", mode="before")
    @classmethod
    def _state_keys_are_long_enough(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if any(len(key.strip().encode()) < MIN_STATE_KEY_BYTES for key in text.split(",")):
            raise ValueError(f"comma-separated secrets of at least {MIN_STATE_KEY_BYTES} bytes each "
                             "(make one with: python -c \"import secrets; print(secrets.token_hex(32))\")")
        return value

    @field_validator("state_url")
    @classmethod
    def _state_url_names_a_store(cls, value: str | None) -> str | None:
        StateLocation.parse(value)  # raises ValueError saying what is accepted
        return value

    @property
    def state(self) -> StateLocation:
        return StateLocation.parse(self.state_url)

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def resolved_backend(self) -> Literal["openai", "fake"]:
        """'auto' means the real API when a key is set, the offline fake otherwise."""
        if self.backend == "auto":
            return "openai" if self.api_key else "fake"
        return self.backend

    @property
    def url_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.allowed_url_hosts.split(",") if h.strip())

    @property
    def state_keys(self) -> list[str]:
        """The request-state keys, first (sealing) key first; empty: a random key per process."""
        text = self.request_state_keys.get_secret_value() if self.request_state_keys else ""
        return [key.strip() for key in text.split(",") if key.strip()]

    @property
    def http_loopback(self) -> bool:
        return self.http_host.strip("[]") in LOOPBACK_HOSTS

    @property
    def http_allowed_hosts(self) -> list[str]:
        """Host headers the HTTP transport accepts: configured, else loopback on our port (and the public URL's)."""
        if configured := _comma_list(self.allowed_hosts):
            return configured
        hosts = [f"{host}:{self.http_port}" for host in ("127.0.0.1", "localhost", "[::1]")]
        if self.public_url:
            hosts.append(urlsplit(self.public_url).netloc)
        return hosts

    @property
    def http_allowed_origins(self) -> list[str]:
        """Origin headers the HTTP transport accepts: configured, else the loopback origins of the allowed hosts."""
        if configured := _comma_list(self.allowed_origins):
            return configured
        origins = [f"http://{host}:{self.http_port}" for host in ("127.0.0.1", "localhost", "[::1]")]
        if self.public_url:
            parts = urlsplit(self.public_url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return origins

    @property
    def secrets(self) -> tuple[str, ...]:
        signing = (self.url_signing_key.get_secret_value(),) if self.url_signing_key else ()
        return ((self.api_key.get_secret_value(),) if self.api_key else ()) + tuple(self.state_keys) + signing


def _http_url(value: str | None, accepted: str) -> str | None:
    """An http(s) URL with a host, trimmed; None when blank. Raises ValueError saying what is `accepted`."""
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(accepted)
    return value.strip()


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


class ConfigurationError(Exception):
    """The environment holds values the server cannot run with; one line per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and explicit overrides, e.g. from the command line)."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise ConfigurationError(explain_settings(e, SECRET_VARIABLES)) from None
