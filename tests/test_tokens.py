"""Signed link tokens: what verifies, and everything that must not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import ConfigError
from digest.tokens import Signer, secrets_from_env

NOW = datetime(2026, 3, 14, 7, 30, tzinfo=UTC)
SECRET = "s3cret-" + "x" * 20
OLD = "old-secret-" + "y" * 20


def test_a_token_verifies_for_its_purpose_only():
    signer = Signer([SECRET])
    token = signer.sign("manage", "KEYKEYKEY", "")
    data = signer.verify(token, "manage", NOW)
    assert data is not None and data.key == "KEYKEYKEY" and data.subject == ""
    assert signer.verify(token, "unsubscribe", NOW) is None
    assert signer.verify(token, "confirm", NOW) is None


def test_tokens_hold_no_address_and_changed_ones_fail():
    signer = Signer([SECRET])
    token = signer.sign("rate", "abc", "42")
    assert "alice" not in token and "@" not in token
    payload, mac = token.split(".")
    for altered in (
        payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac,
        payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"),
        Signer(["another-secret-" + "z" * 20]).sign("rate", "abc", "42"),
        token + ".x",
        "",
        "%%%.%%%",
        "a" * 5000,
    ):
        assert signer.verify(altered, "rate", NOW) is None, altered


def test_a_token_spelled_otherwise_does_not_verify():
    """base64 leaves the low bits of a MAC's last character unused: a token with them
    changed decodes to the same bytes, and is refused all the same."""
    signer = Signer([SECRET])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for n in range(20):
        token = signer.sign("manage", f"key{n}")
        twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
        assert signer.verify(token, "manage", NOW) is not None
        assert signer.verify(twin, "manage", NOW) is None, twin


def test_expired_tokens_fail_and_rotation_keeps_old_links():
    old = Signer([OLD])
    token = old.sign("confirm", "k", expires=NOW + timedelta(hours=48))
    rotated = Signer([SECRET, OLD])
    assert rotated.verify(token, "confirm", NOW) is not None
    assert rotated.verify(token, "confirm", NOW + timedelta(hours=49)) is None
    assert Signer([SECRET]).verify(token, "confirm", NOW) is None  # old secret dropped
    assert rotated.sign("confirm", "k") != old.sign("confirm", "k")  # the first one signs


def test_secrets_come_from_the_environment_and_errors_never_show_them(monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", f"{SECRET} {OLD}")
    assert secrets_from_env("DIGEST_WEB_SECRET") == [SECRET, OLD]
    monkeypatch.setenv("DIGEST_WEB_SECRET", "tiny-val")
    with pytest.raises(ConfigError) as caught:
        secrets_from_env("DIGEST_WEB_SECRET")
    assert "tiny-val" not in caught.value.message + caught.value.hint
    monkeypatch.delenv("DIGEST_WEB_SECRET")
    with pytest.raises(ConfigError, match="DIGEST_WEB_SECRET is not set"):
        secrets_from_env("DIGEST_WEB_SECRET")
