"""What guards every reader page: CSRF tokens on forms, per-client limits on posts, and
the security headers.

CSRF is a signed double submit: a random value in a cookie (HttpOnly, SameSite=Lax,
Secure under https), and in each form the HMAC of that value under a key derived from
``[web] secret_env`` (``Signer.session_keys``, so rotation keeps open forms working). A
post is taken only when its form's token is the MAC of its cookie. Another site can
neither read the cookie nor make the MAC. The RFC 8058 one-click unsubscribe is the one
exemption: mail providers post it with no cookie, and its own link token authorises it.

Posts are counted per client (its IP address, after ``ProxyFix`` believed
``trusted_proxies`` proxies) in the store's event log rather than in memory: the count
holds across `digest serve` processes and restarts, and follows the app's clock, so the
limits are tested with a fixed one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from flask import Response, current_app, g, request

from digest.store.web import hashed

if TYPE_CHECKING:
    from digest.web.site import Site

COOKIE = "digest_csrf"
SECURE_COOKIE = "__Host-digest_csrf"  # only over https: bound to this host, path /
FIELD = "csrf_token"
ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's body
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PRUNE_EVERY = timedelta(minutes=10)
EVENTS_KEPT = timedelta(days=1)  # the longest window a limit looks back


def _site() -> Site:
    return cast("Site", current_app.extensions["digest"])


def _cookie_name() -> str:
    return SECURE_COOKIE if _site().https else COOKIE


def _mac(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, b"csrf\0" + nonce.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _nonce() -> str:
    """The visitor's cookie value, made (and sent with the response) on first need."""
    if "csrf_nonce" not in g:
        sent = request.cookies.get(_cookie_name(), "")
        g.csrf_new = not (16 <= len(sent) <= 64)
        g.csrf_nonce = secrets.token_urlsafe(24) if g.csrf_new else sent
    return str(g.csrf_nonce)


def csrf_token() -> str:
    """The token a form of this page carries."""
    return _mac(_site().signer.session_keys[0], _nonce())


def csrf_valid() -> bool:
    """Whether the posted form carries the token of the visitor's cookie."""
    sent = request.cookies.get(_cookie_name(), "")
    token = request.form.get(FIELD, "")
    if not sent or not token or len(token) > 64:
        return False
    valid = False
    for key in _site().signer.session_keys:  # every key: the time does not tell which
        valid |= hmac.compare_digest(token, _mac(key, sent))
    return valid


def is_one_click() -> bool:
    """An RFC 8058 one-click unsubscribe post (urlencoded or multipart)."""
    return request.path.startswith("/unsubscribe/") and (
        request.form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    )


def client() -> str:
    """The client as the limits count it: its address, hashed."""
    return hashed(request.remote_addr or "-")


def within_client_limits() -> bool:
    """Count this post against its client's limits; False once a limit is passed."""
    from digest.web.site import now, store  # the site depends on this module

    web = _site().config.web
    at = now()
    _prune(at)
    if not store().claim_event(
        "post", client(), at, limit=web.posts_per_client_per_minute, per=timedelta(minutes=1)
    ):
        return False
    if request.path == "/subscribe":
        return store().claim_event(
            "signup", client(), at, limit=web.signups_per_client_per_hour, per=timedelta(hours=1)
        )
    return True


def _prune(at: datetime) -> None:
    """Forget events no limit looks at any more, every few minutes rather than per post."""
    from digest.web.site import store

    last = current_app.config.get("DIGEST_PRUNED_AT")
    if last is None or at - last >= PRUNE_EVERY:
        current_app.config["DIGEST_PRUNED_AT"] = at
        store().prune_events(at - EVENTS_KEPT)


def secure(response: Response) -> Response:
    """The headers every reader page carries, and the CSRF cookie when it is new."""
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    if not request.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    if g.get("csrf_new"):
        response.set_cookie(
            _cookie_name(),
            str(g.csrf_nonce),
            httponly=True,
            samesite="Lax",
            secure=_site().https,
            path="/",
        )
    return response
