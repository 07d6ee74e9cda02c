"""Process settings, read from the environment the same way locally and on Knative.

Every setting is an ``SLA_`` variable except ``K_SINK`` and ``PORT``, which Knative
sets. A secret may instead be given as a file with the ``_FILE`` variant
(``SLA_API_TOKEN_FILE=/var/run/secrets/sla/api-token``), the way Secrets are mounted;
giving both is an error. :func:`load_settings` turns a wrong value into
:class:`SettingsError`, one line per setting, naming the variable and its value, so a
function stops at start with a message an operator can act on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from sla.errors import SLAError

ENV_PREFIX: Final = "SLA_"

MIB: Final = 1024 * 1024

SECRET_FILE_PAIRS: Final = (
    ("prometheus_token", "prometheus_token_file"),
    ("webhook_token", "webhook_token_file"),
    ("api_token", "api_token_file"),
)
"""Each secret and the setting that may give it as a file instead."""

HIDDEN: Final = "<hidden>"


class SettingsError(SLAError, ValueError):
    """One or more settings are wrong; the message names each of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(problems))


def _readable_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"{path} is not a readable file")
    try:
        path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror}") from exc
    return path


SecretFile = Annotated[Path, AfterValidator(_readable_file)]
"""A file holding a secret, checked at start so a bad mount fails fast."""


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def _database_url(value: SecretStr) -> SecretStr:
    scheme = value.get_secret_value().split("://", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL")
    return value


def _redis_url(value: SecretStr) -> SecretStr:
    scheme = value.get_secret_value().split("://", 1)[0]
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


Positive = Annotated[int, Field(gt=0)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """Every setting of DESIGN.md's Settings table, with its default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # Storage. Unset database URL: an embedded PostgreSQL in the state directory.
    database_url: Annotated[SecretStr, AfterValidator(_database_url)] | None = None
    database_pool_size: Positive = 10
    embedded_postgres_dir: Path | None = None
    """Data directory of the embedded PostgreSQL; unset: the state directory."""
    redis_url: Annotated[SecretStr, AfterValidator(_redis_url)] | None = None
    cache_ttl_seconds: Positive = 60

    # Prometheus, the default datasource.
    prometheus_url: Annotated[str, AfterValidator(_http_url)] = "http://127.0.0.1:9090"
    prometheus_token: SecretStr | None = None
    prometheus_token_file: SecretFile | None = None
    prometheus_timeout_seconds: PositiveSeconds = 10.0
    scrape_interval_seconds: Positive = 60

    # Incremental accounting and evaluation fan-out.
    chunk_seconds: Positive = 3600
    chunk_settle_seconds: Annotated[int, Field(ge=0)] = 300
    evaluation_shard_size: Positive = 500
    evaluation_concurrency: Positive = 8
    snapshot_retention_days: Positive = 35
    spec_cache: bool = True
    """``sla eval`` keeps the definitions its files converted to in the user's cache
    directory and reuses them while the files and the library are unchanged."""

    # webhook-intake.
    webhook_token: SecretStr | None = None
    webhook_token_file: SecretFile | None = None
    webhook_basic_auth_file: SecretFile | None = None
    webhook_auth: Literal["required", "none"] = "required"
    webhook_max_body_bytes: Positive = 10 * MIB
    webhook_max_alerts: Positive = 5000

    # budget-api.
    api_token: SecretStr | None = None
    api_token_file: SecretFile | None = None
    api_read_auth: Literal["open", "token"] = "open"

    # Enforcement, for every policy at once.
    enforcement: Literal["on", "dry-run", "off"] = "on"
    enforcement_max_objects: Positive = 50
    allow_cross_namespace: bool = False
    status_write_min_seconds: Annotated[int, Field(ge=0)] = 300

    # slo-catalog's Kubernetes API. Unset: the pod's ServiceAccount (in-cluster).
    kubeconfig: Path | None = None
    """``SLA_KUBECONFIG``: a kubeconfig file to use instead, for running outside a
    cluster (``sla serve slo-catalog`` on a workstation)."""
    kube_context: str | None = None
    """``SLA_KUBE_CONTEXT``: the kubeconfig context; unset: its current context."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # Set by Knative, without the prefix: the broker ingress and the listening port.
    k_sink: Annotated[str, AfterValidator(_http_url)] | None = Field(
        default=None, validation_alias="K_SINK"
    )
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=8080, validation_alias="PORT"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("enforcement", "webhook_auth", "api_read_auth", mode="before")
    @classmethod
    def _lower_case_word(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        for secret, file_setting in SECRET_FILE_PAIRS:
            path: Path | None = getattr(self, file_setting)
            if path is None:
                continue
            if getattr(self, secret) is not None:
                raise ValueError(
                    f"{env_name(secret)} and {env_name(file_setting)} are both set; "
                    "give one of them"
                )
            # A trailing newline is how most tools write a secret file; it is not
            # part of the token.
            setattr(self, secret, SecretStr(path.read_text().strip()))
        return self


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()


def _is_secret(field: str) -> bool:
    # A *_FILE setting holds a path, which is safe to show.
    if field.endswith("_file"):
        return False
    return "token" in field or field in ("database_url", "redis_url")


def _describe(error: Any) -> str:
    location = error["loc"]
    if not location:
        return str(error["msg"]).removeprefix("Value error, ")
    field = str(location[0])
    name = env_name(field) if field in Settings.model_fields else field
    value = HIDDEN if _is_secret(field) else repr(error.get("input"))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}={value}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment; raise :class:`SettingsError` if wrong.

    ``overrides`` take precedence over the environment (command-line flags use them).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        # Not chained: pydantic's own message repeats every input, secrets included.
        raise SettingsError(problems) from None
