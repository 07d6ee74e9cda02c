"""webhook-intake's credentials: where they come from and what they let in."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sla.runtime.settings import SettingsError, load_settings
from sla.runtime.webhook_auth import Credentials, load_credentials, read_users


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def credentials(monkeypatch: pytest.MonkeyPatch, **env: str) -> Credentials:
    for name in ("SLA_WEBHOOK_TOKEN", "SLA_WEBHOOK_TOKEN_FILE", "SLA_WEBHOOK_AUTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SLA_WEBHOOK_BASIC_AUTH_FILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_credentials(load_settings())


def test_bearer_token_lets_in_exactly_that_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed = credentials(monkeypatch, SLA_WEBHOOK_TOKEN="s3cret")

    assert allowed.allows("Bearer s3cret")
    assert allowed.allows("BEARER   s3cret ")
    assert not allowed.allows("Bearer s3cre")
    assert not allowed.allows("Bearer s3cret2")
    assert not allowed.allows(basic("s3cret", "s3cret"))
    assert not allowed.allows(None)
    assert not allowed.allows("Bearer " + "x" * 10_000)


def test_users_file_format(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# comment\n\n  alice:pw:with:colons  \nbob:é\n")

    allowed = Credentials(users=read_users(users))

    assert allowed.allows(basic("alice", "pw:with:colons"))
    assert allowed.allows(basic("bob", "é"))
    assert not allowed.allows(basic("alice", "é"))
    assert not allowed.allows(basic("carol", "pw:with:colons"))
    assert not allowed.allows("Basic not-base64!")
    assert not allowed.allows("Basic " + base64.b64encode(b"no-colon").decode())
    assert not allowed.allows("Bearer pw:with:colons")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param("", "no user:password line", id="empty"),
        pytest.param("alice\n", "line 1: expected user:password", id="no-colon"),
        pytest.param(":pw\n", "line 1: expected user:password", id="no-user"),
        pytest.param("a:1\na:2\n", "line 2: the user appears", id="twice"),
        pytest.param(
            "alice:$apr1$salt$hash\n", "line 1: hashed passwords", id="htpasswd"
        ),
    ],
)
def test_malformed_users_file_is_refused_naming_the_line_not_the_secret(
    tmp_path: Path, content: str, problem: str
) -> None:
    users = tmp_path / "users"
    users.write_text(content)

    with pytest.raises(SettingsError) as error:
        read_users(users)

    assert problem in str(error.value)
    assert "$apr1$salt$hash" not in str(error.value)


def test_no_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="needs credentials"):
        credentials(monkeypatch)


def test_open_webhook_only_on_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = credentials(monkeypatch, SLA_WEBHOOK_AUTH="none")

    assert opened.allows(None)
    with pytest.raises(SettingsError, match="SLA_WEBHOOK_AUTH=none"):
        credentials(monkeypatch, SLA_WEBHOOK_AUTH="none", SLA_WEBHOOK_TOKEN="t")


def test_empty_token_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("\n")

    with pytest.raises(SettingsError, match="empty"):
        credentials(monkeypatch, SLA_WEBHOOK_TOKEN_FILE=str(token))


def test_challenge_names_every_configured_scheme(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("a:b\n")

    both = Credentials(token=b"x" * 32, users=read_users(users))

    assert (
        both.challenge == 'Bearer realm="webhook-intake", Basic realm="webhook-intake"'
    )
