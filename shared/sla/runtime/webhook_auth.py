"""Who may post to webhook-intake: a bearer token, basic-auth users, or (on
purpose only) anyone.

Sources, any of which may be given (a request passing either is let in):

- ``SLA_WEBHOOK_TOKEN`` or ``SLA_WEBHOOK_TOKEN_FILE``: one bearer token, what
  Alertmanager sends with ``http_config.authorization.credentials`` (or
  ``credentials_file``); surrounding whitespace in the file is not part of it.
- ``SLA_WEBHOOK_BASIC_AUTH_FILE``: users for ``http_config.basic_auth``, one
  ``user:password`` per line, in UTF-8, passwords in plain text. The user ends at
  the first colon (RFC 7617 forbids one in a user id); the password is the rest of
  the line, colons included. Blank lines and lines starting with ``#`` are skipped;
  a line's surrounding whitespace is not part of it. Hashed htpasswd entries
  (``$apr1$``, ``$2y$``, ``{SHA}`` …) are refused at start: comparing a hash needs
  the hash's own slow function, and a plain secret compared in constant time is as
  safe inside a Secret.

Without any of them the function refuses to start, unless ``SLA_WEBHOOK_AUTH=none``
says an open webhook is meant; ``none`` together with credentials is refused too,
since one of the two is a mistake.

Secrets are compared as SHA-256 digests with :func:`hmac.compare_digest`: constant
time, and the digests' equal lengths hide the secret's length as well. Every
configured user is compared on every request, so timing does not tell which user
names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sla.runtime.settings import Settings, SettingsError

HASHED_PREFIXES: Final = (
    "$apr1$",
    "$2a$",
    "$2b$",
    "$2y$",
    "$1$",
    "$5$",
    "$6$",
    "{SHA}",
)
"""How htpasswd and crypt(3) mark a hashed password."""

MAX_HEADER_CHARS: Final = 8192
"""No real credential is longer; a longer header is refused without decoding it."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Credentials:
    """What a request must present; ``open`` True lets any request in."""

    token: bytes | None = None
    users: tuple[tuple[bytes, bytes], ...] = ()
    open: bool = False

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401."""
        schemes = (["Bearer"] if self.token else []) + (["Basic"] if self.users else [])
        return ", ".join(f'{scheme} realm="webhook-intake"' for scheme in schemes)

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries valid credentials."""
        if self.open:
            return True
        if not authorization or len(authorization) > MAX_HEADER_CHARS:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.token is not None:
            return hmac.compare_digest(_digest(value.strip()), self.token)
        if scheme == "basic" and self.users:
            return self._allows_basic(value.strip())
        return False

    def _allows_basic(self, encoded: str) -> bool:
        pair = _decode_basic(encoded)
        if pair is None:
            return False
        user, password = _digest(pair[0]), _digest(pair[1])
        allowed = False
        for known_user, known_password in self.users:
            # No short cut: every entry costs the same whether or not it matches.
            same_user = hmac.compare_digest(user, known_user)
            same_password = hmac.compare_digest(password, known_password)
            allowed |= same_user & same_password
        return allowed


def load_credentials(settings: Settings) -> Credentials:
    """The credentials the settings give; SettingsError when there are none (and
    the webhook is not meant to be open) or the users file is malformed."""
    token = settings.webhook_token
    path = settings.webhook_basic_auth_file
    configured = token is not None or path is not None
    if settings.webhook_auth == "none":
        if configured:
            raise SettingsError(
                [
                    "SLA_WEBHOOK_AUTH=none: credentials are configured as well; "
                    "remove them or SLA_WEBHOOK_AUTH"
                ]
            )
        return Credentials(open=True)
    if not configured:
        raise SettingsError(
            [
                "webhook-intake needs credentials: set SLA_WEBHOOK_TOKEN, "
                "SLA_WEBHOOK_TOKEN_FILE or SLA_WEBHOOK_BASIC_AUTH_FILE, or "
                "SLA_WEBHOOK_AUTH=none for an open webhook"
            ]
        )
    secret = None if token is None else token.get_secret_value().strip()
    if secret == "":
        raise SettingsError(["SLA_WEBHOOK_TOKEN: the token is empty"])
    users = () if path is None else read_users(path)
    return Credentials(token=None if secret is None else _digest(secret), users=users)


def read_users(path: Path) -> tuple[tuple[bytes, bytes], ...]:
    """The ``user:password`` lines of a basic-auth file, as digests."""
    setting = f"SLA_WEBHOOK_BASIC_AUTH_FILE={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError([f"{setting}: cannot be read: {error}"]) from None
    users: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        problem = _entry_problem(entry, users)
        if problem:
            # The line number, never the line: it holds a password.
            problems.append(f"{setting}: line {number}: {problem}")
            continue
        user, _, password = entry.partition(":")
        users[user] = password
    if not users and not problems:
        problems.append(f"{setting}: no user:password line in it")
    if problems:
        raise SettingsError(problems)
    return tuple((_digest(user), _digest(pw)) for user, pw in users.items())


def _entry_problem(entry: str, users: dict[str, str]) -> str:
    user, colon, password = entry.partition(":")
    if not colon or not user or not password:
        return "expected user:password, both non-empty"
    if user in users:
        return "the user appears on an earlier line too"
    if password.startswith(HASHED_PREFIXES):
        return "hashed passwords are not supported; write the password itself"
    return ""


def _decode_basic(encoded: str) -> tuple[str, str] | None:
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = text.partition(":")
    return (user, password) if colon else None
