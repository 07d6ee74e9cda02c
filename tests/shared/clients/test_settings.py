"""Settings: defaults, secrets from files, and errors that name the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sla.runtime.settings import Settings, SettingsError, load_settings

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the variables they set."""
    for name in list(os.environ):
        if name.startswith("SLA_") or name in ("K_SINK", "PORT"):
            monkeypatch.delenv(name)


def test_defaults_follow_the_design() -> None:
    settings = load_settings()

    assert settings.model_dump() == {
        "database_url": None,
        "database_pool_size": 10,
        "embedded_postgres_dir": None,
        "redis_url": None,
        "cache_ttl_seconds": 60,
        "prometheus_url": "http://127.0.0.1:9090",
        "prometheus_token": None,
        "prometheus_token_file": None,
        "prometheus_timeout_seconds": 10.0,
        "scrape_interval_seconds": 60,
        "chunk_seconds": 3600,
        "chunk_settle_seconds": 300,
        "evaluation_shard_size": 500,
        "evaluation_concurrency": 8,
        "snapshot_retention_days": 35,
        "spec_cache": True,
        "webhook_token": None,
        "webhook_token_file": None,
        "webhook_basic_auth_file": None,
        "webhook_auth": "required",
        "webhook_max_body_bytes": 10 * MIB,
        "webhook_max_alerts": 5000,
        "api_token": None,
        "api_token_file": None,
        "api_read_auth": "open",
        "enforcement": "on",
        "enforcement_max_objects": 50,
        "allow_cross_namespace": False,
        "status_write_min_seconds": 300,
        "kubeconfig": None,
        "kube_context": None,
        "log_level": "INFO",
        "k_sink": None,
        "port": 8080,
    }


def test_values_come_from_prefixed_variables_and_knatives_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLA_DATABASE_POOL_SIZE", "4")
    monkeypatch.setenv("SLA_ENFORCEMENT", "dry-run")
    monkeypatch.setenv("SLA_ALLOW_CROSS_NAMESPACE", "true")
    monkeypatch.setenv("SLA_LOG_LEVEL", "debug")
    monkeypatch.setenv(
        "K_SINK", "http://broker-ingress.knative-eventing.svc/sla/default"
    )
    monkeypatch.setenv("PORT", "9000")

    settings = load_settings()

    assert settings.database_pool_size == 4
    assert settings.enforcement == "dry-run"
    assert settings.allow_cross_namespace is True
    assert settings.log_level == "DEBUG"
    assert settings.k_sink == "http://broker-ingress.knative-eventing.svc/sla/default"
    assert settings.port == 9000


def test_a_wrong_value_names_the_setting_and_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLA_DATABASE_POOL_SIZE", "ten")
    monkeypatch.setenv("SLA_ENFORCEMENT", "maybe")
    monkeypatch.setenv("PORT", "0")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert raised.value.problems == [
        "SLA_DATABASE_POOL_SIZE='ten': Input should be a valid integer, "
        "unable to parse string as an integer",
        "SLA_ENFORCEMENT='maybe': Input should be 'on', 'dry-run' or 'off'",
        "PORT='0': Input should be greater than or equal to 1",
    ]


def test_a_wrong_secret_is_named_but_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_DATABASE_URL", "mysql://admin:hunter2@db/sla")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value) == (
        "invalid settings:\nSLA_DATABASE_URL=<hidden>: must be a postgresql:// URL"
    )
    assert raised.value.__cause__ is None


def test_secrets_are_read_from_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "api").write_text("api-secret\n")
    (tmp_path / "webhook").write_text("hook-secret")
    (tmp_path / "prometheus").write_text("prom-secret\n")
    monkeypatch.setenv("SLA_API_TOKEN_FILE", str(tmp_path / "api"))
    monkeypatch.setenv("SLA_WEBHOOK_TOKEN_FILE", str(tmp_path / "webhook"))
    monkeypatch.setenv("SLA_PROMETHEUS_TOKEN_FILE", str(tmp_path / "prometheus"))

    settings = load_settings()

    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "api-secret"
    assert settings.webhook_token is not None
    assert settings.webhook_token.get_secret_value() == "hook-secret"
    assert settings.prometheus_token is not None
    assert settings.prometheus_token.get_secret_value() == "prom-secret"
    assert "api-secret" not in repr(settings)


def test_a_missing_secret_file_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLA_API_TOKEN_FILE", str(tmp_path / "absent"))

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert raised.value.problems == [
        f"SLA_API_TOKEN_FILE='{tmp_path}/absent': "
        f"{tmp_path}/absent is not a readable file"
    ]


def test_a_secret_and_its_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "api").write_text("from-file")
    monkeypatch.setenv("SLA_API_TOKEN", "from-env")
    monkeypatch.setenv("SLA_API_TOKEN_FILE", str(tmp_path / "api"))

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert raised.value.problems == [
        "SLA_API_TOKEN and SLA_API_TOKEN_FILE are both set; give one of them"
    ]


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLA_PROMETHEUS_URL", "http://prometheus:9090")

    settings = load_settings(prometheus_url="http://127.0.0.1:19090/")

    assert settings.prometheus_url == "http://127.0.0.1:19090"
    assert isinstance(settings, Settings)
