"""The reader pages as a Flask app, mounted by `digest serve` beside the feeds and pages.

Routes: ``/subscribe`` (when ``[web] signup = "open"``), ``/confirm/<token>``,
``/manage/<token>``, ``/unsubscribe/<token>``, ``/rate/<token>/up|down|clear``,
``/ratings/<token>`` and ``/static/``. A GET never changes anything (mail scanners
prefetch links); each change is a POST from a form with a CSRF token, counted against
its client's limits. Every answer carries the security headers (``security.secure``);
every refusal of a token is the plain 404 of an unknown path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from digest.config import Config
from digest.pipeline import templates_of
from digest.render.environment import builtin_templates, make_environment
from digest.tokens import signer_from_env
from digest.web import ratings, reader, signup
from digest.web.security import csrf_valid, is_one_click, secure, within_client_limits
from digest.web.site import Site, close_store, not_found, plain

MAX_BODY_BYTES = 32 * 1024  # the largest form (preferences) is well under this

log = logging.getLogger("digest")


class PagesApp(Flask):
    """Flask, logging a failed request to the "digest" logger (whose filter redacts the
    tokens in paths) rather than through a handler of its own."""

    def log_exception(self, exc_info: Any) -> None:
        log.error("web: %s %s failed", request.method, request.path, exc_info=exc_info)


def create_app(
    config: Config, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Flask | None:
    """The reader pages for ``config``, or None when ``[web] secret_env`` is not set
    (then no link is signed, and no reader page exists)."""
    signer = signer_from_env(config.web.secret_env)
    if signer is None:
        return None
    app = PagesApp(
        "digest.web",
        root_path=str(builtin_templates()),
        static_folder=str(builtin_templates() / "web" / "static"),
        static_url_path="/static",
    )
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=(config.output.base_url or "").startswith("https://"),
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.extensions["digest"] = Site(config, signer, make_environment(templates_of(config)), now)
    if config.web.signup == "open":
        app.register_blueprint(signup.signup_pages)
    app.register_blueprint(signup.confirm_pages)
    app.register_blueprint(reader.pages)
    app.register_blueprint(ratings.pages)
    app.before_request(_guard_posts)
    app.after_request(secure)
    app.teardown_request(close_store)
    app.register_error_handler(HTTPException, _http_error)
    proxies = config.web.trusted_proxies
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


def _guard_posts() -> Response | None:
    """Every post: within its client's limits, then with a valid CSRF token (the RFC 8058
    one-click unsubscribe aside)."""
    if request.method != "POST":
        return None
    if not within_client_limits():
        return plain("too many requests from your address; wait a minute and try again", 429)
    if not is_one_click() and not csrf_valid():
        return plain(
            "this form has expired or was not sent from this site; reload the page and try again",
            403,
        )
    return None


def _http_error(error: HTTPException) -> Response:
    """Flask's own refusals as short plain text; a 404 as every unknown path's."""
    if error.code == 404:
        return not_found()
    if error.code == 413:
        return plain(f"the form is too large (at most {MAX_BODY_BYTES} bytes)", 413)
    response = plain(error.description or error.name, error.code or 500)
    if error.code == 405:
        response.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or ())
    return response
