"""Settings: read from the environment once, typed and validated at start.

No other module reads the environment. A bad value stops the start with one
line naming the variable (`SettingsError`).
"""

from __future__ import annotations

import enum
import os
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(Exception):
    """A variable is missing, malformed or insecure for the chosen environment."""


PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
ServiceSpec = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}=https?://[^\s,]+$", description="name=url")
]
RateSpec = Annotated[
    str, msgspec.Meta(pattern=r"^[1-9][0-9]*/[0-9]+(\.[0-9]+)?$", description="units/seconds")
]


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Every knob of the service; field `foo_bar` is read from `FOO_BAR`."""

    sevenp_env: Environment = Environment.DEVELOPMENT
    host: str = "0.0.0.0"  # noqa: S104 - a server listens on all interfaces by default
    port: Port = 8000
    database_url: str | None = None
    database_read_url: str | None = None
    database_read_max_lag_seconds: PositiveFloat = 10.0
    redis_url: str | None = None
    redis_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "sevenp:"
    data_dir: str = ".data"

    # Granian
    workers: PositiveInt = 1
    runtime_threads: PositiveInt = 1
    backlog: PositiveInt = 16384
    backpressure: PositiveInt = 16384
    http: Literal["auto", "1", "2"] = "1"
    http_header_read_timeout_seconds: Annotated[float, msgspec.Meta(ge=0.001, le=60)] = 10.0
    http_keep_alive: bool = True
    drain_seconds: PositiveFloat = 10.0

    # PostgreSQL pool
    db_pool_min: Annotated[int, msgspec.Meta(ge=0)] = 2
    db_pool_max: PositiveInt = 10
    db_pool_max_waiting: PositiveInt = 2048
    db_timeout_seconds: PositiveFloat = 5.0
    db_statement_timeout_ms: PositiveInt = 10_000
    slow_query_ms: PositiveFloat = 100.0

    # HTTP
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: PositiveInt = 1_048_576
    trusted_proxies: tuple[str, ...] = ()

    # Rate limits: "units/seconds" per policy
    rate_limit_enabled: bool = True
    rate_limit_general: RateSpec = "1000/900"
    rate_limit_api: RateSpec = "100/60"
    rate_limit_auth: RateSpec = "5/900"
    rate_limit_flush_seconds: PositiveFloat = 0.1
    rate_limit_max_keys: PositiveInt = 1_000_000

    # Cache (course reads and searches)
    cache_enabled: bool = True
    cache_local_max_entries: PositiveInt = 2000
    cache_local_ttl_seconds: PositiveFloat = 1.0
    cache_ttl_seconds: PositiveFloat = 300.0

    # Health
    health_interval_seconds: PositiveFloat = 5.0
    health_probe_timeout_seconds: PositiveFloat = 2.0
    health_memory_limit_mb: PositiveInt = 4096
    services: tuple[ServiceSpec, ...] = ()

    # Audit log
    audit_retention_days: PositiveInt = 365
    audit_flush_seconds: PositiveFloat = 0.5
    audit_batch_rows: PositiveInt = 200
    audit_queue_max: PositiveInt = 10_000

    # Identity
    jwt_secret: str | None = None
    jwt_private_key_file: str | None = None
    jwt_public_key_file: str | None = None
    jwt_issuer: str = "sevenp"
    jwt_audience: str = "sevenp-api"
    access_token_ttl_seconds: PositiveInt = 900
    refresh_token_ttl_seconds: PositiveInt = 7 * 24 * 3600
    refresh_token_remember_ttl_seconds: PositiveInt = 30 * 24 * 3600
    max_failed_logins: PositiveInt = 5
    lockout_seconds: PositiveInt = 2 * 3600
    argon2_memory_kib: Annotated[int, msgspec.Meta(ge=8192)] = 19456
    argon2_time_cost: Annotated[int, msgspec.Meta(ge=1)] = 2
    argon2_parallelism: PositiveInt = 1
    hash_concurrency: PositiveInt = 2
    hash_queue_max: Annotated[int, msgspec.Meta(ge=0)] = 64
    mail_url: str = "console://"
    mail_from: str = "no-reply@sevenp.local"
    mail_poll_seconds: PositiveFloat = 2.0
    session_flush_seconds: PositiveFloat = 5.0
    session_resync_seconds: PositiveFloat = 5.0

    # Retention
    retention_horizon_days: PositiveInt = 30
    retention_interval_seconds: PositiveFloat = 3600.0

    # Telemetry: the standard OpenTelemetry variables, then the server's own
    otel_sdk_disabled: bool = False
    otel_service_name: str = "sevenp"
    otel_exporter_otlp_endpoint: str | None = None
    otel_traces_sampler: Literal[
        "parentbased_traceidratio", "parentbased_always_on", "parentbased_always_off"
    ] = "parentbased_traceidratio"
    otel_traces_sampler_arg: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01
    otel_metric_export_interval: PositiveInt = 60_000
    metrics_token: str | None = None
    metrics_dir: str | None = None
    metrics_share_seconds: PositiveFloat = 5.0
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool | None = None
    access_log_sample: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    access_log_slow_ms: PositiveFloat = 500.0

    def rate(self, spec: str) -> tuple[int, float]:
        units, seconds = spec.split("/", 1)
        return int(units), float(seconds)

    def service_urls(self) -> dict[str, str]:
        """The downstream services of `SERVICES`, by name."""
        return {name: url for name, _, url in (spec.partition("=") for spec in self.services)}

    @property
    def is_production(self) -> bool:
        return self.sevenp_env is Environment.PRODUCTION

    @property
    def is_development(self) -> bool:
        return self.sevenp_env is Environment.DEVELOPMENT

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (self.log_format == "auto" and self.is_production)

    @property
    def access_logged(self) -> bool:
        return self.json_logs if self.access_log is None else self.access_log


def _is_list_field(annotation: Any) -> bool:
    return typing.get_origin(annotation) is tuple


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Decode and validate settings; raise `SettingsError` naming the bad variable."""
    env = os.environ if environ is None else environ
    hints = msgspec.structs.fields(Settings)
    values: dict[str, Any] = {}
    for field in hints:
        name = field.name.upper()
        if name in env and env[name] != "":
            raw = env[name]
            values[field.name] = (
                [part.strip() for part in raw.split(",") if part.strip()]
                if _is_list_field(field.type)
                else raw
            )
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_variable(str(exc))) from None
    _refuse_insecure(settings)
    return settings


def _name_variable(message: str) -> str:
    # msgspec reports e.g. "Expected `int` >= 1 - at `$.port`"
    if "$." in message:
        field = message.rsplit("$.", 1)[1].split("[", 1)[0].rstrip("`")
        head = message.split(" - at ", 1)[0]
        return f"invalid {field.upper()}: {head}"
    return f"invalid settings: {message}"


def _refuse_insecure(settings: Settings) -> None:
    if len(settings.service_urls()) != len(settings.services):
        raise SettingsError("invalid SERVICES: each service name may appear once")
    if settings.audit_queue_max < settings.audit_batch_rows:
        raise SettingsError("invalid AUDIT_QUEUE_MAX: must be at least AUDIT_BATCH_ROWS")
    if settings.workers > 1 and not settings.redis_url:
        raise SettingsError(
            "invalid WORKERS: more than one worker needs REDIS_URL, or workers' actors diverge"
        )
    if not settings.is_production:
        return
    has_keys = settings.jwt_private_key_file is not None
    if not has_keys and (not settings.jwt_secret or len(settings.jwt_secret.encode()) < 32):
        raise SettingsError("invalid JWT_SECRET: production needs a secret of at least 32 bytes")
    if "*" in settings.cors_origins:
        raise SettingsError("invalid CORS_ORIGINS: production refuses the wildcard origin")
    if settings.mail_url.startswith("console:"):
        raise SettingsError("invalid MAIL_URL: production refuses the console mail sender")
