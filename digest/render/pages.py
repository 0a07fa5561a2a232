"""Render a digest as a web page, a subscriber's index of pages, and a Markdown digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from jinja2 import Environment

from digest.models import digest_slug
from digest.render.context import DigestView


@dataclass(frozen=True, slots=True)
class IndexEntry:
    date: date
    seq: int

    @property
    def slug(self) -> str:
        return digest_slug(self.date, self.seq)


def render_page(env: Environment, view: DigestView) -> str:
    return env.get_template("page.html.j2").render(digest=view)


def render_index(
    env: Environment,
    subscriber: str,
    entries: list[IndexEntry],
    feed_links: list[tuple[str, str]] | None = None,
) -> str:
    return env.get_template("index.html.j2").render(
        subscriber=subscriber, entries=entries, feed_links=feed_links or []
    )


def render_markdown(env: Environment, view: DigestView) -> str:
    return env.get_template("digest.md.j2").render(digest=view)
