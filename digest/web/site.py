"""What every reader page shares: the site (config, signer, templates, clock), the store
of the request, the reader a token names, and the answers (a page, a 404).

A token opens a page only when it verifies for that page's purpose, its key belongs to a
reader, and that reader still exists (in the config, or in the store); anything else is
the same 404 as an unknown path, whatever the reason, so a link says nothing about
readers it does not belong to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import Response, current_app, g, request
from jinja2 import Environment

from digest.config import Config, SubscriberSettings
from digest.links import Links
from digest.pipeline import open_store
from digest.readers import Reader, ReaderState, check_against_config
from digest.store import Store
from digest.tokens import Purpose, Signer
from digest.web.security import csrf_token

NOT_FOUND_BODY = b"not found\n"  # the body of `digest serve`'s 404, for every path


@dataclass(frozen=True, slots=True)
class Site:
    """The reader pages' settings, made once when the app is."""

    config: Config
    signer: Signer
    env: Environment
    now: Callable[[], datetime]

    @property
    def https(self) -> bool:
        return (self.config.output.base_url or "").startswith("https://")


@dataclass(frozen=True, slots=True)
class Who:
    """The reader a token names: a config reader (``stored`` None) or a store one."""

    key: str
    settings: SubscriberSettings
    stored: Reader | None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def from_config(self) -> bool:
        return self.stored is None

    @property
    def state(self) -> ReaderState | None:
        return self.stored.state if self.stored else None


def site() -> Site:
    return cast(Site, current_app.extensions["digest"])


def store() -> Store:
    """The request's store, opened on first use and closed when the request ends."""
    if "store" not in g:
        g.store = open_store(site().config)
    return cast(Store, g.store)


def close_store(_error: BaseException | None = None) -> None:
    opened = g.pop("store", None)
    if opened is not None:
        opened.close()


def links() -> Links:
    """Signed links under ``[output] base_url``, or the address this request came to."""
    base = site().config.output.base_url or request.url_root
    return Links(base.rstrip("/"), site().signer)


def now() -> datetime:
    return site().now()


def config_reader_named(name: str) -> SubscriberSettings | None:
    return next((s for s in site().config.subscribers if s.name == name), None)


def config_allows(reader: Reader) -> list[str]:
    """Why the config forbids this store reader (one of its names or addresses), if it does."""
    return check_against_config(reader.settings, site().config)


def reader_of(token: str, purpose: Purpose) -> tuple[Who, str] | None:
    """The reader ``token`` opens for ``purpose``, and the token's subject; None if the
    token does not verify or names no reader (any more)."""
    data = site().signer.verify(token, purpose, now())
    if data is None:
        return None
    name = store().reader_of_key(data.key)
    if name is None:
        return None
    configured = config_reader_named(name)
    if configured is not None:
        return Who(data.key, configured, None), data.subject
    stored = store().get_subscriber(name)
    if stored is None or check_against_config(stored.settings, site().config):
        return None  # removed, or shadowed by a config reader: not this link's reader
    return Who(data.key, stored.settings, stored), data.subject


def page(template: str, status: int = 200, **values: Any) -> Response:
    """A reader page from ``web/<template>.html.j2`` (autoescaped), with a CSRF token for
    its forms."""
    template_file = site().env.get_template(f"web/{template}.html.j2")
    body = template_file.render(csrf=csrf_token(), **values)
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def not_found() -> Response:
    return Response(NOT_FOUND_BODY, status=404, content_type="text/plain; charset=utf-8")


def plain(text: str, status: int) -> Response:
    return Response(text + "\n", status=status, content_type="text/plain; charset=utf-8")
