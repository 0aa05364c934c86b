"""Settings: every ``AWASI_*`` environment variable, validated once into a frozen object.

A missing or malformed variable fails at start with the variable's name
(``SettingsError``). Nothing here is read at import time: call ``Settings.from_env()``.
The table of variables in ``docs/SETTINGS.md`` is checked against this file by a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from awasi.mail import MailConfigError, SmtpConfig, check_sender

DEMO_CATALOG = Path(__file__).resolve().parent / "catalog" / "demo.yaml"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    # Where things are.
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    catalog: str = str(DEMO_CATALOG)
    data_dir: str = "/var/tmp/awasi"
    # HTTP.
    host: str = "127.0.0.1"
    intake_port: int = 8080
    router_port: int = 8081
    oversight_port: int = 8082
    # Base addresses the services use to link to each other (and to serve photos).
    intake_url: str = "http://127.0.0.1:8080"
    router_url: str = "http://127.0.0.1:8081"
    oversight_url: str = "http://127.0.0.1:8082"
    # The router as oversight reaches it server-side (the panel's case page reads a
    # case's internal notes there); empty: AWASI_ROUTER_URL. Inside a cluster, the
    # router's internal address, so the call never leaves the private network.
    router_internal_url: str = ""
    # How long that call may take before the page says the notes are unavailable.
    router_timeout_s: float = 2.0
    max_request_bytes: int = 1_048_576
    max_upload_bytes: int = 16_777_216
    # Largest file staff may send a citizen (router: a PDF or an image).
    attachment_max_bytes: int = 5_242_880
    shutdown_timeout_s: float = 10.0
    secret_key: str = "dev-insecure-secret-change-me"
    # Submissions per device (the signed device cookie; clients without one share one
    # bucket per address) and, higher, per client address (carrier NAT puts a whole
    # mobile network behind a few addresses).
    rate_limit_per_minute: int = 30
    rate_limit_per_address_per_minute: int = 300
    # Satisfaction survey answers per device per minute (the per-address ceiling above
    # applies too); one answer per device per unit per quarter counts anyway.
    survey_rate_limit_per_minute: int = 5
    # Failed logins per (account, client address) pair; the per-account and
    # per-address ceilings are much higher so a stranger cannot lock a named account
    # (or an office behind one address) out for everyone.
    login_rate_limit_per_minute: int = 10
    login_account_limit_per_minute: int = 100
    login_address_limit_per_minute: int = 100
    # Argon2 runs in its own small thread pool: each hash takes tens of MB, so the
    # number at once is bounded by this, not by the number of CPUs.
    password_hash_workers: int = 2
    # Reverse proxies whose forwarding headers are believed (comma-separated
    # addresses or networks); empty: none, the socket peer is the client.
    trusted_proxies: str = ""
    # Which header those proxies set: "x-forwarded" (X-Forwarded-For/-Proto/-Host)
    # or "forwarded" (RFC 7239). The other one is never believed.
    proxy_header: str = "x-forwarded"
    # Supports of public reports: per device or Telegram user, and per client address.
    support_rate_limit_per_minute: int = 10
    support_address_rate_limit_per_minute: int = 120
    # Maps (public reports, the form's pin): the tile server's URL template and the
    # attribution its licence asks for. Pages work as lists without it.
    map_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    map_tile_attribution: str = "© OpenStreetMap contributors"
    # Kafka.
    topic_partitions: int = 3
    topic_replication: int = 1
    kafka_idempotence: bool = False
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_rebalance_timeout_ms: int = 10_000
    kafka_request_timeout_ms: int = 10_000
    kafka_fetch_max_wait_ms: int = 500
    # Outbox, relay and consumers.
    relay_batch_size: int = 500
    relay_poll_interval_s: float = 0.5
    outbox_retention_days: int = 7
    consumer_max_retries: int = 5
    consumer_retry_backoff_s: float = 0.2
    # Database.
    db_pool_min: int = 2
    db_pool_max: int = 10
    # A second pool for background work (relay, consumers, scheduler), so a burst of
    # web requests holding every web connection cannot stall them.
    db_background_pool_min: int = 1
    db_background_pool_max: int = 5
    # Scheduler (oversight).
    scheduler_interval_s: float = 0.5
    # Audit anchoring and public statistics (oversight).
    audit_signing_key: str = ""
    audit_checkpoint_interval_s: float = 86_400.0
    audit_verify_min_interval_s: float = 10.0
    stats_refresh_s: float = 60.0
    # Telegram.
    telegram_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_api_url: str = "https://api.telegram.org"
    telegram_mode: str = "webhook"
    # E-mail to citizens who gave an address (intake). Empty: no e-mail is sent and
    # none is queued. smtp://user:password@host:port[?starttls=true] or smtps://...
    smtp_url: str = ""
    mail_from: str = ""
    # Logging.
    log_level: str = "INFO"
    log_json: bool = True
    # Tracing (awasi/tracing.py; on and off by the standard OTEL_* variables): also a
    # span per database query, by asyncpg's instrumentation. Off by default: measured
    # to multiply latencies on a loaded 2-core machine (docs/BENCHMARKS.md).
    trace_queries: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``AWASI_<FIELD>`` variables (``os.environ`` by default).

        Raises ``SettingsError`` naming the variable when a value does not parse.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = env_name(f.name)
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(var, raw, type(getattr(cls(), f.name)), f.name)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def validate(self) -> None:
        for port in ("intake_port", "router_port", "oversight_port"):
            value = getattr(self, port)
            if not 0 <= value <= 65535:
                raise SettingsError(f"{env_name(port)} must be a port number, got {value}")
        if self.topic_partitions < 1:
            raise SettingsError("AWASI_TOPIC_PARTITIONS must be at least 1")
        if self.telegram_mode not in ("webhook", "polling"):
            raise SettingsError("AWASI_TELEGRAM_MODE must be 'webhook' or 'polling'")
        if self.db_background_pool_max < 1 or self.db_background_pool_min < 0:
            raise SettingsError("AWASI_DB_BACKGROUND_POOL_MAX must be at least 1")
        if not 0 < self.router_timeout_s <= 60:
            raise SettingsError("AWASI_ROUTER_TIMEOUT_S must be more than 0 and at most 60")
        if self.audit_checkpoint_interval_s <= 0:
            raise SettingsError("AWASI_AUDIT_CHECKPOINT_INTERVAL_S must be positive")
        if self.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise SettingsError(
                "AWASI_KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            )

        for name in ("rate_limit_per_minute", "rate_limit_per_address_per_minute",
                     "survey_rate_limit_per_minute",
                     "login_rate_limit_per_minute", "login_account_limit_per_minute",
                     "login_address_limit_per_minute", "password_hash_workers"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{env_name(name)} must be at least 1")
        if not 1 <= self.attachment_max_bytes <= 100 * 1024 * 1024:
            raise SettingsError("AWASI_ATTACHMENT_MAX_BYTES must be between 1 and 104857600")
        if self.proxy_header not in ("x-forwarded", "forwarded"):
            raise SettingsError("AWASI_PROXY_HEADER must be 'x-forwarded' or 'forwarded'")
        self.trusted_proxy_networks()  # raises SettingsError naming the variable
        self.smtp()  # raises SettingsError naming the variable

    def router_base(self) -> str:
        """The router's address for server-side calls: AWASI_ROUTER_INTERNAL_URL, else
        AWASI_ROUTER_URL (without a trailing slash)."""
        return (self.router_internal_url or self.router_url).rstrip("/")

    def smtp(self) -> SmtpConfig | None:
        """``AWASI_SMTP_URL`` parsed, or None when e-mail is off (the variable empty).
        Raises ``SettingsError`` for a malformed address or a missing or malformed
        ``AWASI_MAIL_FROM``."""
        if not self.smtp_url.strip():
            return None
        try:
            config = SmtpConfig.parse(self.smtp_url)
            if not self.mail_from.strip():
                raise SettingsError("AWASI_MAIL_FROM is required when AWASI_SMTP_URL is set")
            check_sender(self.mail_from)
        except MailConfigError as e:
            raise SettingsError(str(e)) from e
        return config

    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """``AWASI_TRUSTED_PROXIES`` as networks (a lone address is a /32 or /128).
        Raises ``SettingsError`` for an entry that is neither."""
        out = []
        for item in self.trusted_proxies.split(","):
            if not item.strip():
                continue
            try:
                out.append(ip_network(item.strip(), strict=False))
            except ValueError as e:
                raise SettingsError(
                    f"AWASI_TRUSTED_PROXIES: {item.strip()!r} is not an address or network"
                ) from e
        return tuple(out)

    def require_database(self) -> str:
        if not self.database_url:
            raise SettingsError("AWASI_DATABASE_URL is not set (or run `awasi dev`)")
        return self.database_url

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap:
            raise SettingsError("AWASI_KAFKA_BOOTSTRAP is not set (or run `awasi dev`)")
        return self.kafka_bootstrap


def env_name(field_name: str) -> str:
    return "AWASI_" + field_name.upper()


def setting_names() -> list[str]:
    return [env_name(f.name) for f in fields(Settings)]


_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _parse(var: str, raw: str, kind: type, name: str) -> Any:
    if kind is bool:
        if raw.strip().lower() not in _BOOLS:
            raise SettingsError(f"{var} must be true or false, got {raw!r}")
        return _BOOLS[raw.strip().lower()]
    if kind not in (int, float):
        return raw
    try:
        return kind(raw)
    except ValueError as e:
        raise SettingsError(f"{var} must be a {kind.__name__}, got {raw!r}") from e
