"""Signed links: opaque tokens that say which reader (and paper) a link is for.

A token is ``PAYLOAD.MAC``, both base64url without padding. The payload holds the
reader's *key*, a random string the store gives each reader (never the address or the
name), an optional subject (a paper's id, for rating links) and an optional expiry; the
MAC is HMAC-SHA256 over the token's *purpose* and the payload, cut to 128 bits. The
purpose is not in the token but bound by the MAC, so a manage token does not open an
unsubscribe or a confirmation route, and nothing in the token can be changed without
the secret.

Rotation: the secrets come from one environment variable, separated by spaces. The
first signs; a token signed by any of them verifies, so links in emails already sent
keep working while an old secret is phased out. Every comparison is constant time.

Each secret is never used directly: keys for tokens and for the pages' sessions are
derived from it for their one job, so a value that leaks from one use says nothing of
the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from digest.errors import ConfigError

Purpose = Literal["confirm", "manage", "unsubscribe", "rate", "ratings", "feed"]
PURPOSES: tuple[str, ...] = ("confirm", "manage", "unsubscribe", "rate", "ratings", "feed")
MAC_BYTES = 16
MAX_TOKEN_CHARS = 600  # longer input is refused before any decoding
_SEP = "\x1f"  # cannot occur in a reader key, a paper id or a number
MIN_SECRET_CHARS = 16


@dataclass(frozen=True, slots=True)
class TokenData:
    """What a valid token says."""

    key: str  # the reader's key (store: reader_keys)
    subject: str  # a paper's id for rating links, else ""
    expires: int | None  # Unix time after which the token is refused, or None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: bytes, use: str) -> bytes:
    return hmac.new(secret, f"paper-digest {use} v1".encode(), hashlib.sha256).digest()


class Signer:
    """Signs and verifies tokens with a list of secrets (the first signs)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("a Signer needs at least one secret")
        raw = [s.encode("utf-8") for s in secrets]
        self._keys = [_derive(s, "tokens") for s in raw]
        self.session_keys = [_derive(s, "sessions") for s in raw]

    def sign(
        self,
        purpose: Purpose,
        key: str,
        subject: str = "",
        expires: datetime | None = None,
    ) -> str:
        """A token for ``purpose`` and the reader with ``key`` (and ``subject``)."""
        stamp = str(int(expires.timestamp())) if expires is not None else ""
        payload = _SEP.join((key, subject, stamp)).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(self._keys[0], purpose, payload))}"

    def verify(self, token: str, purpose: Purpose, now: datetime) -> TokenData | None:
        """What ``token`` says, or None if it is malformed, forged, altered, signed for
        another purpose or expired. None whatever the reason: callers answer 404 alike."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        encoded, mac_text = token.split(".")
        try:
            payload, mac = _unb64(encoded), _unb64(mac_text)
        except (binascii.Error, ValueError):
            return None
        if _b64(payload) != encoded or _b64(mac) != mac_text:
            return None  # spelled otherwise (the unused bits of a last character): altered
        valid = False
        for secret_key in self._keys:  # every key is tried: the time does not tell which
            valid |= hmac.compare_digest(mac, self._mac(secret_key, purpose, payload))
        if not valid:
            return None
        try:
            key, subject, stamp = payload.decode("utf-8").split(_SEP)
        except (UnicodeDecodeError, ValueError):
            return None
        expires = int(stamp) if stamp.isdigit() else None
        if stamp and expires is None:
            return None
        if expires is not None and now.timestamp() > expires:
            return None
        return TokenData(key=key, subject=subject, expires=expires)

    @staticmethod
    def _mac(secret_key: bytes, purpose: str, payload: bytes) -> bytes:
        message = purpose.encode("ascii") + b"\0" + payload
        return hmac.new(secret_key, message, hashlib.sha256).digest()[:MAC_BYTES]


def secrets_from_env(variable: str) -> list[str]:
    """The secrets in ``variable`` (space separated, first signs), or a ConfigError that
    names the variable and never shows its value."""
    value = os.environ.get(variable, "")
    secrets = value.split()
    if not secrets:
        raise ConfigError(
            f"[web] secret_env: the environment variable {variable} is not set",
            hint=f'export {variable}="$(python3 -c "import secrets; '
            f'print(secrets.token_urlsafe(32))")"',
        )
    short = [k for k, s in enumerate(secrets, 1) if len(s) < MIN_SECRET_CHARS]
    if short:
        raise ConfigError(
            f"[web] secret_env: secret number {short[0]} in {variable} is shorter than "
            f"{MIN_SECRET_CHARS} characters; a short secret can be guessed",
            hint='generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    return secrets


def signer_from_env(variable: str | None) -> Signer | None:
    """The signer for ``[web] secret_env``, or None when no secret is configured."""
    return Signer(secrets_from_env(variable)) if variable else None
