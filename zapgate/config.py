"""One Settings object, read from ``ZAPGATE_*`` variables and ``.env``; fail-closed."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, FilePath, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from zapgate.webhooks import ssrf

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
SINK_ALLOWLIST_SETTING = "ZAPGATE_SINK_ALLOWLIST"
JWKS_ALLOWLIST_SETTING = "ZAPGATE_JWT_JWKS_ALLOWLIST"


def is_loopback_host(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


NODE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def default_node_name() -> str:
    """The host name and process id: unique among the processes of a cluster."""
    host = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:80] or "node"
    return f"{host}-{os.getpid()}"


def _is_url(value: str) -> bool:
    return "://" in value


class Settings(BaseSettings):
    """Everything the service can be told at start."""

    model_config = SettingsConfigDict(
        env_prefix="ZAPGATE_", env_file=".env", extra="ignore", validate_default=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str = ""
    redis_url: str | None = Field(default=None, repr=False)
    """Cluster mode: several nodes on one PostgreSQL database share work through Redis."""
    node_name: str = Field(default_factory=default_node_name, pattern=NODE_NAME)
    """This node's name in the cluster (default: host name and process id)."""
    lease_ttl_seconds: float = Field(default=15.0, ge=3, le=600)
    """How long a node is known alive after its last heartbeat (it beats every third of it)."""
    api_key: str | None = Field(default=None, repr=False)
    auth: Literal["on", "off"] = "on"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Proxies whose ``X-Forwarded-For``/``-Proto`` are believed (addresses or networks)."""
    default_engine: Literal["simulator", "wppconnect", "auto"] = "simulator"
    default_session: str = "default"
    default_country_code: str = Field(default="", pattern=r"^\d{0,3}$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"
    commit_batch_max: int = Field(default=256, ge=1)
    auth_cache_seconds: float = Field(default=30.0, ge=0)
    metrics_token: str | None = Field(default=None, repr=False, min_length=16)
    """A bearer token that reads ``GET /metrics`` (besides the operator's keys)."""
    access_log: bool = False
    """Log every HTTP answer as JSON (method, route template, status, ms, key id, client)."""
    metrics_per_session: bool = True
    """Outbox metrics per session; off: per tenant (bounds the series of a large fleet)."""
    otel_endpoint: str | None = Field(default=None, pattern=r"^(https?://\S+)?$")
    """An OTLP/HTTP traces URL (``http://collector:4318/v1/traces``): a span per HTTP request is
    exported there (``zapgate.tracing``); unset: no tracing, and nothing of it is loaded."""
    secrets_key: str | None = Field(default=None, repr=False, min_length=16)
    """Seals sessions' write-only secrets (Cloud API tokens) at rest; unset: a random key kept in
    the database (see ``zapgate.sessions.sealing``)."""
    jwt_secret: str | None = Field(default=None, repr=False)
    """HS256 secret: bearer JWTs signed with it are accepted (at least 32 characters)."""
    jwt_jwks_allowlist: str = ""
    """Hosts, IPs and networks the JWKS URL may reach despite the SSRF guard (the syntax of
    ``webhook_allowlist``, apart from it: admitting the provider admits no tenant's webhook)."""
    jwt_jwks: str | None = None
    """Bearer JWTs signed (RS256/ES256) by a key of this JWKS are accepted: a file (read again
    when it changes) or an https URL (fetched and cached, see ``auth/jwks.py``)."""
    jwt_jwks_ca_file: FilePath | None = None
    """CA certificates (PEM) the JWKS URL's server is verified with, instead of the system's."""
    jwt_jwks_refresh_seconds: float = Field(default=300.0, ge=30, le=86_400)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_tenant_claim: str = Field(default="tenant", min_length=1, max_length=100)
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    rate_limit_per_key: float = Field(default=50.0, ge=0, allow_inf_nan=False)
    rate_limit_burst: int = Field(default=100, ge=0)
    max_concurrent_requests_per_key: int = Field(default=4, ge=0)
    max_sessions_per_tenant: int = Field(default=20, ge=0)
    max_webhooks_per_tenant: int = Field(default=20, ge=0)
    max_sinks_per_tenant: int = Field(default=10, ge=0)
    max_queued_per_session: int = Field(default=10_000, ge=0)
    max_streams_per_key: int = Field(default=16, ge=0)
    auth_failures_per_minute: int = Field(default=60, ge=0)
    audit_auth_failures_per_minute: int = Field(default=600, ge=0)
    """Failed authentications recorded in the audit log per minute, all clients together (the
    caller is unknown, so they go to the operator's tenant); more are counted, not recorded."""
    limits_cache_seconds: float = Field(default=10.0, ge=0)
    idempotency_ttl_seconds: float = Field(default=86_400.0, gt=0)
    webhook_allowlist: str = ""
    media_url_allowlist: str = ""
    """Non-public hosts/IPs/CIDRs a ``media.url`` may be fetched from (the syntax of
    ``ZAPGATE_WEBHOOK_ALLOWLIST``, but apart from it: a fetch reads the whole answer back)."""
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = (
        0,
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        50400,
        72000,
        86400,
    )
    webhook_disable_after: int = Field(default=10, ge=1)
    sink_allowlist: str = ""
    """Non-public hosts/IPs/CIDRs a sink's broker may be at (internal brokers; the syntax of
    ``ZAPGATE_WEBHOOK_ALLOWLIST``, apart from it)."""
    sink_retry_schedule: Annotated[tuple[float, ...], NoDecode] = (
        0,
        1,
        2,
        5,
        10,
        30,
        60,
        120,
        300,
        600,
    )
    """Seconds before each new try of a sink's (or a bot's) delivery: short, since brokers come
    back fast (about 19 minutes in all by default). A Chatwoot mirror retries as webhooks do."""
    sink_disable_after: int = Field(default=5, ge=1)
    """Deliveries in a row that ran out of tries before a sink is turned off (``sink.disabled``);
    a broker refusing zapgate's credentials turns it off at the first."""
    sink_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long connecting to a broker, or one publish and its confirmation, may take."""
    webhook_secret_grace_seconds: float = Field(default=86_400.0, ge=0)
    media_store: Literal["local", "s3"] = "local"
    """Where media files go: ``<data_dir>/media``, or an S3-compatible bucket."""
    media_max_bytes: int = Field(default=16 * 1_048_576, ge=1024, le=2**31)
    """The largest file a message may carry (uploaded, in base64 JSON, or fetched by URL)."""
    media_url_ttl_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)
    """How long a signed media link works by default."""
    media_fetch_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    media_retention_days: int = Field(default=0, ge=0)
    """Media last used longer ago than this is deleted (0: kept); a tenant may override it."""
    public_url: str | None = None
    """The base URL clients reach this service at (``https://wa.example.com``): signed media
    links in events and webhooks are absolute with it, paths without it."""
    s3_bucket: str = ""
    s3_endpoint_url: str | None = None
    """An S3-compatible service (MinIO, R2, ...); None: AWS."""
    s3_region: str | None = None
    s3_prefix: str = ""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    """``path`` for most self-hosted S3s (MinIO) reached by an IP or a plain host name."""
    s3_access_key_id: str | None = Field(default=None, repr=False)
    """None: boto3's usual sources (AWS_* variables, profile, instance role)."""
    s3_secret_access_key: str | None = Field(default=None, repr=False)
    events_retention_days: float = Field(default=30.0, gt=0)
    deliveries_retention_days: float = Field(default=30.0, gt=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    send_rate_per_second: float = Field(default=1.0, ge=0)
    send_burst: int = Field(default=5, ge=1)
    send_recipient_spacing_seconds: float = Field(default=2.0, ge=0)
    send_jitter_seconds: float = Field(default=0.5, ge=0)
    send_retry_limit: int = Field(default=5, ge=0)
    send_retry_base_seconds: float = Field(default=1.0, gt=0)
    session_restart_limit: int = Field(default=5, ge=0)
    session_restart_base_seconds: float = Field(default=2.0, gt=0)
    session_restart_cap_seconds: float = Field(default=300.0, gt=0)
    session_stale_seconds: float = Field(default=120.0, gt=0)
    session_health_interval_seconds: float = Field(default=5.0, gt=0)
    terminal_qr: bool = True
    wppconnect_node: str = "node"
    wppconnect_chromium: str = "/usr/bin/chromium"
    wppconnect_headless: bool = True
    wppconnect_start_timeout_seconds: float = Field(default=60.0, gt=0)
    wppconnect_fake_page: Path | None = None
    simulator_pairing_seconds: float = Field(default=0.2, ge=0)
    simulator_ack_seconds: float = Field(default=0.05, ge=0)
    simulator_echo_contact: str = "5511900000000"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [entry.strip() for entry in value.split(",") if entry.strip()]
        if isinstance(value, list):
            for entry in value:
                try:
                    ipaddress.ip_network(str(entry))
                except ValueError:
                    raise ValueError(
                        "each entry is an IP address or network, such as 10.0.0.0/8"
                    ) from None
        return value

    @field_validator("webhook_retry_schedule", "sink_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_schedule", "sink_retry_schedule")
    @classmethod
    def _sane_schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError("a retry schedule needs one or more delays >= 0")
        return value

    @field_validator("api_key")
    @classmethod
    def _strong_key(cls, value: str | None) -> str | None:
        if (
            value is not None and len(value) < 32
        ):  # hashed with one SHA-256: it must be random enough
            raise ValueError("ZAPGATE_API_KEY must be at least 32 characters")
        return value or None

    @field_validator("jwt_secret")
    @classmethod
    def _strong_jwt_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 32:
            raise ValueError("ZAPGATE_JWT_SECRET must be at least 32 characters")
        return value or None

    @field_validator("jwt_jwks_allowlist")
    @classmethod
    def _jwks_allowlist(cls, value: str) -> str:
        ssrf.Allowlist.parse(value, JWKS_ALLOWLIST_SETTING)  # refuses a malformed entry
        return value

    @field_validator("sink_allowlist")
    @classmethod
    def _sink_allowlist(cls, value: str) -> str:
        ssrf.Allowlist.parse(value, SINK_ALLOWLIST_SETTING)  # refuses a malformed entry
        return value

    @field_validator("jwt_jwks", mode="before")
    @classmethod
    def _jwks_source(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value or None

    @field_validator("jwt_jwks")
    @classmethod
    def _jwks_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not _is_url(value):
            return value
        if not value.lower().startswith("https://"):
            raise ValueError(
                "a JWKS URL must be https (keys fetched over plain http could be replaced on "
                "the way, letting anyone sign tokens); for a provider reachable only over http, "
                "save its JWKS to a file and give its path"
            )
        allowlist = info.data.get("jwt_jwks_allowlist", "")
        return ssrf.check_url(value, ssrf.Allowlist.parse(allowlist, JWKS_ALLOWLIST_SETTING)).url

    @field_validator("jwt_jwks_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=value)
            except (ssl.SSLError, ValueError):
                raise ValueError(f"{value} holds no CA certificate in PEM form") from None
        return value

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'zapgate.db').resolve()}"
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "ZAPGATE_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        if self.redis_url is not None:
            if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("ZAPGATE_REDIS_URL must start with redis://, rediss:// or unix://")
            if self.is_sqlite:
                raise ValueError(
                    "cluster mode (ZAPGATE_REDIS_URL) needs PostgreSQL: set ZAPGATE_DATABASE_URL="
                    "postgresql+asyncpg://...; SQLite serves one node only"
                )
        if self.media_store == "s3" and not self.s3_bucket:
            raise ValueError("ZAPGATE_MEDIA_STORE=s3 needs ZAPGATE_S3_BUCKET")
        if self.public_url is not None:
            if not self.public_url.startswith(("http://", "https://")):
                raise ValueError("ZAPGATE_PUBLIC_URL must start with http:// or https://")
            self.public_url = self.public_url.rstrip("/")
        if self.auth == "off" and not is_loopback_host(self.host):
            raise ValueError(
                "ZAPGATE_AUTH=off is only allowed when ZAPGATE_HOST is a loopback address"
            )
        if self.auth == "off" and "*" in self.cors_origins:
            raise ValueError(
                "ZAPGATE_CORS_ORIGINS=* with ZAPGATE_AUTH=off would let any web page use the "
                "API; list the origins you trust"
            )
        return self

    @property
    def jwks_url(self) -> str | None:
        """``ZAPGATE_JWT_JWKS`` when it is a URL."""
        return self.jwt_jwks if self.jwt_jwks is not None and _is_url(self.jwt_jwks) else None

    @property
    def jwks_file(self) -> Path | None:
        """``ZAPGATE_JWT_JWKS`` when it is a file."""
        return Path(self.jwt_jwks) if self.jwt_jwks is not None and self.jwks_url is None else None

    @property
    def clustered(self) -> bool:
        """True when several nodes share the database (``ZAPGATE_REDIS_URL`` is set)."""
        return self.redis_url is not None

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """The URL the service answers on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
